// Reads checkpoint files with the Go module github.com/dsxir/dsxir-checkpoint/go.
// One line per file: its name, session id, status number, trial count and
// whether the canonical re-encoding equals the bytes read.
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dsxir/dsxir-checkpoint/go/checkpoint"
)

func main() {
	for _, path := range os.Args[1:] {
		data, err := os.ReadFile(path)
		if err != nil {
			fail(err)
		}
		cp, err := checkpoint.Decode(data)
		if err != nil {
			fail(fmt.Errorf("%s: %w", path, err))
		}
		out, err := checkpoint.Encode(cp)
		if err != nil {
			fail(fmt.Errorf("%s: %w", path, err))
		}
		same := "different"
		if bytes.Equal(out, data) {
			same = "identical"
		}
		fmt.Printf("%s session_id=%s status=%d trials=%d reencoded=%s\n",
			strings.TrimSuffix(filepath.Base(path), ".binpb"), cp.GetSessionId(),
			int32(cp.GetStatus()), len(cp.GetProgress().GetTrialLog()), same)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
