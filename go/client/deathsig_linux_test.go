package client

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes the server exit when the test process dies without
// stopping it (a killed or timed-out go test).
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
