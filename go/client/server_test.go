package client

// These tests drive the Python server (python -m dsxir.cli serve, from the
// repository's .venv made by `make setup`) over loopback. Without the
// venv they fail: the client is only tested against the real server.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dsxir/dsxir-checkpoint/go/checkpoint"
	checkpointstorev1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/checkpoint_store/v1"
	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// testToken is the bearer token the main test server requires.
const testToken = "go-client-test-token-0123456789"

// repoRoot is the repository's top folder (this package is go/client).
var repoRoot = func() string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return root
}()

// pythonPath is the venv's interpreter; the tests fail when it is missing.
func pythonPath(t *testing.T) string {
	t.Helper()
	python := filepath.Join(repoRoot, ".venv", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("the Python server is needed: %s is missing (run `make setup`): %v", python, err)
	}
	return python
}

// server is one running Python server.
type server struct {
	addr   string
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan error
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var (
	serversMu sync.Mutex
	servers   = map[string]*server{}
	startErrs = map[string]error{}
)

// sharedServer starts the server named name once (args: options beyond
// --store memory: --listen 127.0.0.1:0) and returns it; TestMain stops it.
func sharedServer(t *testing.T, name string, env []string, args ...string) *server {
	t.Helper()
	python := pythonPath(t)
	serversMu.Lock()
	defer serversMu.Unlock()
	if s, ok := servers[name]; ok {
		return s
	}
	if err, ok := startErrs[name]; ok {
		t.Fatalf("server %s did not start: %v", name, err)
	}
	s, err := startServer(python, env, args...)
	if err != nil {
		startErrs[name] = err
		t.Fatalf("server %s did not start: %v", name, err)
	}
	servers[name] = s
	return s
}

// mainServer is a memory store that requires testToken.
func mainServer(t *testing.T) *server {
	t.Helper()
	return sharedServer(t, "main", []string{"DSXIR_GO_TEST_TOKEN=" + testToken}, "--token-env", "DSXIR_GO_TEST_TOKEN")
}

func startServer(python string, env []string, args ...string) (*server, error) {
	argv := append([]string{"-m", "dsxir.cli", "serve",
		"--store", "memory:", "--listen", "127.0.0.1:0", "--grace", "2", "--workers", "8"}, args...)
	cmd := exec.Command(python, argv...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), env...)
	dieWithTest(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	lines := make(chan string)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			lines <- scanner.Text()
		}
		close(lines)
	}()
	go func() { s.done <- cmd.Wait() }()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				<-s.done
				return nil, fmt.Errorf("server exited before serving; stderr:\n%s", s.stderr.String())
			}
			if addr, found := strings.CutPrefix(line, "serving on "); found {
				s.addr = addr
				go func() {
					for range lines { // drain "shutting down", "stopped"
					}
				}()
				return s, nil
			}
		case <-timeout:
			_ = cmd.Process.Kill()
			<-s.done
			return nil, fmt.Errorf("server did not report its address within 60 s; stderr:\n%s", s.stderr.String())
		}
	}
}

// stop ends the server with SIGTERM (graceful shutdown) and reports how it exited.
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			return fmt.Errorf("server %s exited with %v; stderr:\n%s", s.addr, err, s.stderr.String())
		}
		return nil
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("server %s did not stop within 20 s of SIGTERM", s.addr)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	serversMu.Lock()
	for name, s := range servers {
		if err := s.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping server %s: %v\n", name, err)
			code = 1
		}
	}
	if tlsDir != "" {
		_ = os.RemoveAll(tlsDir)
	}
	serversMu.Unlock()
	os.Exit(code)
}

func dial(t *testing.T, s *server, opts ...Option) *Client {
	t.Helper()
	c, err := Dial(s.addr, append([]Option{WithTimeout(20 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatalf("Dial(%s): %v", s.addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// sample builds a valid checkpoint of a session.
func sample(t *testing.T, sessionID, optimizer string, status v1.SessionStatus, updated time.Time, completed uint64) *v1.Checkpoint {
	t.Helper()
	term := func(v any) *v1.Term {
		x, err := checkpoint.ToTerm(v)
		if err != nil {
			t.Fatalf("ToTerm(%v): %v", v, err)
		}
		return x
	}
	score := 0.5
	var trials []*v1.TrialLogEntry
	for i := uint64(0); i < completed; i++ {
		idx := i
		trials = append(trials, &v1.TrialLogEntry{
			TrialIdx: idx, Score: &score, Status: v1.TrialStatus_TRIAL_STATUS_OK,
			Stats: term(map[string]any{"tokens": int64(100 + i)}).GetMapValue(), DurationMs: 10,
		})
	}
	progress := &v1.Progress{
		TrialLog:  trials,
		Attempts:  completed,
		Completed: completed,
		StartedAt: timestamppb.New(baseTime.Add(-time.Hour)),
	}
	if completed > 0 {
		best := uint64(0)
		progress.BestScore = &score
		progress.BestTrialIdx = &best
	}
	return &v1.Checkpoint{
		Format:        checkpoint.FormatV1,
		SessionId:     sessionID,
		Optimizer:     optimizer,
		OptimizerOpts: []*v1.OptionEntry{{Key: "num_trials", Value: term(int64(10))}},
		TrainsetHash:  bytes.Repeat([]byte{0xab}, 32),
		CreatedAt:     timestamppb.New(baseTime.Add(-time.Hour)), // one session's samples are legal successors
		UpdatedAt:     timestamppb.New(updated),
		Progress:      progress,
		SamplerBlob:   []byte{1, 2, 3},
		SamplerFormat: &v1.SamplerFormat{Module: "demo.RandomSearch", Version: 1},
		Status:        status,
	}
}

var baseTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustPut(t *testing.T, c *Client, cp *v1.Checkpoint, expected uint64) uint64 {
	t.Helper()
	g, err := c.Put(testContext(t), cp, expected)
	if err != nil {
		t.Fatalf("Put(%s, %d): %v", cp.GetSessionId(), expected, err)
	}
	return g
}

func wantConflict(t *testing.T, err error, expected, actual uint64) {
	t.Helper()
	conflict, ok := err.(*ConflictError)
	if !ok {
		t.Fatalf("error %v (%T), want *ConflictError", err, err)
	}
	if conflict.Expected != expected || conflict.Actual != actual {
		t.Fatalf("conflict %+v, want expected %d actual %d", conflict, expected, actual)
	}
}

func TestPutGetConflictDelete(t *testing.T) {
	c := dial(t, mainServer(t), WithToken(testToken))
	ctx := testContext(t)
	id := "go-cas"
	if err := c.Delete(ctx, id); err != nil {
		t.Fatalf("Delete of a missing session: %v", err)
	}
	first := sample(t, id, "demo.Opt", v1.SessionStatus_SESSION_STATUS_RUNNING, baseTime, 1)
	if g := mustPut(t, c, first, 0); g != 1 {
		t.Fatalf("create: generation %d, want 1", g)
	}

	// Creating again and committing on a generation that is not stored conflict.
	_, err := c.Put(ctx, first, 0)
	wantConflict(t, err, 0, 1)
	if conflict := err.(*ConflictError); conflict.SessionID != id {
		t.Fatalf("conflict names session %q, want %q", conflict.SessionID, id)
	}
	second := sample(t, id, "demo.Opt", v1.SessionStatus_SESSION_STATUS_RUNNING, baseTime.Add(time.Minute), 2)
	if g := mustPut(t, c, second, 1); g != 2 {
		t.Fatalf("commit on 1: generation %d, want 2", g)
	}
	_, err = c.Put(ctx, first, 1) // stale: the generation read before the last commit
	wantConflict(t, err, 1, 2)
	_, err = c.Put(ctx, sample(t, "go-cas-missing", "demo.Opt", v1.SessionStatus_SESSION_STATUS_RUNNING, baseTime, 0), 5)
	wantConflict(t, err, 5, 0)

	got, generation, err := c.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if generation != 2 {
		t.Fatalf("Get: generation %d, want 2", generation)
	}
	want, _ := checkpoint.Encode(second)
	gotBytes, err := checkpoint.Encode(got)
	if err != nil || !bytes.Equal(gotBytes, want) {
		t.Fatalf("Get returned another checkpoint (err %v)", err)
	}

	if err := c.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, _, err = c.Get(ctx, id)
	notFound, ok := err.(*NotFoundError)
	if !ok || notFound.SessionID != id {
		t.Fatalf("Get after Delete: %v (%T), want *NotFoundError for %q", err, err, id)
	}
	if err := c.Delete(ctx, id); err != nil {
		t.Fatalf("second Delete (idempotent): %v", err)
	}
	if g := mustPut(t, c, first, 0); g != 1 {
		t.Fatalf("create after delete: generation %d, want 1", g)
	}
	if err := c.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func TestList(t *testing.T) {
	c := dial(t, mainServer(t), WithToken(testToken))
	c.pageSize = 2 // several pages of AIP-158 paging
	ctx := testContext(t)
	running, completed := v1.SessionStatus_SESSION_STATUS_RUNNING, v1.SessionStatus_SESSION_STATUS_COMPLETED
	sessions := []*v1.Checkpoint{
		sample(t, "go-list-a", "go.list.Alpha", running, baseTime, 1),
		sample(t, "go-list-b", "go.list.Alpha", completed, baseTime.Add(2*time.Hour), 3),
		sample(t, "go-list-c", "go.list.Beta", running, baseTime.Add(3*time.Hour), 0),
		sample(t, "go-list-d", "go.list.Alpha", running, baseTime.Add(4*time.Hour), 2),
		sample(t, "go-list-e", "go.list.Alpha", running, baseTime.Add(5*time.Hour), 1),
	}
	for _, cp := range sessions {
		_ = c.Delete(ctx, cp.GetSessionId())
		mustPut(t, c, cp, 0)
	}
	t.Cleanup(func() {
		for _, cp := range sessions {
			_ = c.Delete(context.Background(), cp.GetSessionId())
		}
	})
	ids := func(filter ListFilter) []string {
		t.Helper()
		found, err := c.List(ctx, filter)
		if err != nil {
			t.Fatalf("List(%+v): %v", filter, err)
		}
		var out []string
		for _, s := range found {
			if strings.HasPrefix(s.GetSessionId(), "go-list-") {
				out = append(out, s.GetSessionId())
			}
		}
		return out
	}
	check := func(filter ListFilter, want ...string) {
		t.Helper()
		if got := ids(filter); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("List(%+v) = %v, want %v", filter, got, want)
		}
	}
	check(ListFilter{}, "go-list-a", "go-list-b", "go-list-c", "go-list-d", "go-list-e")
	check(ListFilter{Optimizer: "go.list.Alpha"}, "go-list-a", "go-list-b", "go-list-d", "go-list-e")
	check(ListFilter{Optimizer: "go.list.Alpha", Status: running}, "go-list-a", "go-list-d", "go-list-e")
	check(ListFilter{Status: completed, Optimizer: "go.list.Alpha"}, "go-list-b")
	check(ListFilter{Optimizer: "go.list.Alpha", UpdatedSince: baseTime.Add(4 * time.Hour)}, "go-list-d", "go-list-e")
	check(ListFilter{Optimizer: "go.list.Gamma"})

	found, err := c.List(ctx, ListFilter{Optimizer: "go.list.Alpha", Status: completed})
	if err != nil || len(found) != 1 {
		t.Fatalf("List: %v, %v", found, err)
	}
	s := found[0]
	if s.GetGeneration() != 1 || s.GetCompleted() != 3 || s.GetTrials() != 3 || s.GetBestScore() != 0.5 ||
		!s.GetUpdatedAt().AsTime().Equal(baseTime.Add(2*time.Hour)) || s.GetStatus() != completed {
		t.Fatalf("summary %v does not describe go-list-b", s)
	}

	// A page token used with other filters is refused as a request field.
	page, err := c.stub.ListSessions(ctx, &checkpointstorev1.ListSessionsRequest{PageSize: 1, Optimizer: "go.list.Alpha"})
	if err != nil || page.GetNextPageToken() == "" {
		t.Fatalf("first page: %v, %v", page, err)
	}
	_, err = c.stub.ListSessions(ctx, &checkpointstorev1.ListSessionsRequest{PageSize: 1, PageToken: page.GetNextPageToken(), Optimizer: "go.list.Beta"})
	var invalid *InvalidRequestError
	if mapped := fromStatus(err, ""); !asType(mapped, &invalid) || invalid.Field != "page_token" {
		t.Fatalf("mismatched page token: %v (%T), want *InvalidRequestError on page_token", mapped, mapped)
	}
}

// commitFromPython commits cp through the Python client (GrpcStore) and
// returns the generation it reports.
func commitFromPython(t *testing.T, s *server, cp *v1.Checkpoint, expected uint64) uint64 {
	t.Helper()
	body, err := checkpoint.Encode(cp)
	if err != nil {
		t.Fatal(err)
	}
	script := `import os, sys
from dsxir.optimizer_session import checkpoint
from dsxir.store.grpc import GrpcStore
cp = checkpoint.decode(sys.stdin.buffer.read())
expected = int(sys.argv[2]) or None
with GrpcStore(sys.argv[1], token=os.environ["DSXIR_GO_TEST_TOKEN"], timeout=20) as store:
    print(store.put(cp, expected_generation=expected))
`
	cmd := exec.Command(pythonPath(t), "-c", script, s.addr, fmt.Sprint(expected))
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "DSXIR_GO_TEST_TOKEN="+testToken)
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("Python client: %v\n%s", err, out)
	}
	var generation uint64
	if _, err := fmt.Sscan(string(out), &generation); err != nil {
		t.Fatalf("Python client printed %q", out)
	}
	return generation
}

// nextEvent is the next event of w, which must be of type want on session id.
func nextEvent(t *testing.T, w *Watch, id string, want checkpointstorev1.WatchEventType) *Event {
	t.Helper()
	ev, err := w.Recv()
	if err != nil {
		t.Fatalf("Recv (waiting for %v): %v", want, err)
	}
	if ev.Type != want || ev.SessionID != id {
		t.Fatalf("event %v on %q, want %v on %q", ev.Type, ev.SessionID, want, id)
	}
	return ev
}

func TestWatch(t *testing.T) {
	s := mainServer(t)
	watcher := dial(t, s, WithToken(testToken))
	writer := dial(t, s, WithToken(testToken)) // another client, another connection
	ctx := testContext(t)
	id := "go-watch"
	_ = writer.Delete(ctx, id)

	w, err := watcher.Watch(ctx, id)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Close()
	next := func(want checkpointstorev1.WatchEventType) *Event {
		t.Helper()
		return nextEvent(t, w, id, want)
	}
	if ev := next(checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_INITIAL); ev.Session != nil {
		t.Fatalf("initial event of a missing session has a summary: %v", ev.Session)
	}

	mustPut(t, writer, sample(t, id, "go.watch.Opt", v1.SessionStatus_SESSION_STATUS_RUNNING, baseTime, 1), 0)
	ev := next(checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_COMMITTED)
	if ev.Session.GetGeneration() != 1 || ev.Session.GetOptimizer() != "go.watch.Opt" || ev.Session.GetCompleted() != 1 {
		t.Fatalf("commit event %v, want generation 1 of go.watch.Opt with 1 completed", ev.Session)
	}

	// A commit made by the Python client is seen too, and Get decodes it.
	pythonCp := sample(t, id, "go.watch.Opt", v1.SessionStatus_SESSION_STATUS_COMPLETED, baseTime.Add(time.Minute), 4)
	if g := commitFromPython(t, s, pythonCp, 1); g != 2 {
		t.Fatalf("Python commit: generation %d, want 2", g)
	}
	ev = next(checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_COMMITTED)
	if ev.Session.GetGeneration() != 2 || ev.Session.GetCompleted() != 4 ||
		ev.Session.GetStatus() != v1.SessionStatus_SESSION_STATUS_COMPLETED {
		t.Fatalf("commit event %v, want generation 2, completed, 4 trials", ev.Session)
	}
	got, generation, err := writer.Get(ctx, id)
	if err != nil || generation != 2 || got.GetProgress().GetCompleted() != 4 {
		t.Fatalf("Get after the Python commit: %v, %d, %v", got, generation, err)
	}
	_, err = writer.Put(ctx, got, 1)
	wantConflict(t, err, 1, 2)

	if err := writer.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ev := next(checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_DELETED); ev.Session != nil {
		t.Fatalf("delete event has a summary: %v", ev.Session)
	}

	// Re-created after the delete: generation 1 again.
	mustPut(t, writer, sample(t, id, "go.watch.Opt", v1.SessionStatus_SESSION_STATUS_RUNNING, baseTime, 1), 0)
	if ev := next(checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_COMMITTED); ev.Session.GetGeneration() != 1 {
		t.Fatalf("commit after delete: %v, want generation 1", ev.Session)
	}

	// Watching an existing session starts with its summary.
	w2, err := watcher.Watch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	ev, err = w2.Recv()
	if err != nil || ev.Type != checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_INITIAL || ev.Session.GetGeneration() != 1 {
		t.Fatalf("initial event of an existing session: %v, %v", ev, err)
	}
	// Events not yet read when the watch is closed are dropped.
	mustPut(t, writer, pythonCp, 1)
	if ev := next(checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_COMMITTED); ev.Session.GetGeneration() != 2 {
		t.Fatalf("second commit: %v, want generation 2", ev.Session)
	}
	w2.Close()
	if _, err := w2.Recv(); err != ioEOF {
		t.Fatalf("Recv after Close: %v, want io.EOF", err)
	}
	w.Close()
	if _, err := w.Recv(); err != ioEOF {
		t.Fatalf("Recv after Close: %v, want io.EOF", err)
	}
	_ = writer.Delete(ctx, id)
}

func TestAuthentication(t *testing.T) {
	s := mainServer(t)
	ctx := testContext(t)
	for name, opts := range map[string][]Option{
		"no token":    nil,
		"wrong token": {WithToken("not-the-right-token-0123456789")},
	} {
		c := dial(t, s, opts...)
		for call, err := range map[string]error{
			"Get":    func() error { _, _, err := c.Get(ctx, "go-auth"); return err }(),
			"Put":    func() error { _, err := c.Put(ctx, sample(t, "go-auth", "o", 1, baseTime, 0), 0); return err }(),
			"List":   func() error { _, err := c.List(ctx, ListFilter{}); return err }(),
			"Delete": c.Delete(ctx, "go-auth"),
			"Watch": func() error {
				w, err := c.Watch(ctx, "go-auth")
				if err != nil {
					return err
				}
				defer w.Close()
				_, err = w.Recv()
				return err
			}(),
		} {
			var unauth *UnauthenticatedError
			var service *ServiceError
			if !asType(err, &unauth) || !asType(err, &service) || service.Reason != checkpointstorev1.ErrorReason_UNAUTHENTICATED.String() {
				t.Errorf("%s, %s: %v (%T), want *UnauthenticatedError with reason UNAUTHENTICATED", name, call, err, err)
			}
		}
	}
	if _, err := Dial(s.addr, WithToken("short")); err == nil {
		t.Fatal("Dial accepted a token of 5 characters")
	}
	if _, err := Dial(s.addr, WithToken("has a space in it, 0123456789")); err == nil {
		t.Fatal("Dial accepted a token with spaces")
	}
}

func TestRefusals(t *testing.T) {
	c := dial(t, mainServer(t), WithToken(testToken))
	ctx := testContext(t)

	// Refused locally by checkpoint.Encode: nothing is sent.
	bad := sample(t, "go-refused", "demo.Opt", v1.SessionStatus_SESSION_STATUS_RUNNING, baseTime, 1)
	bad.TrainsetHash = []byte{1, 2, 3}
	_, err := c.Put(ctx, bad, 0)
	var invalid *checkpoint.InvalidCheckpoint
	if !asType(err, &invalid) || invalid.Path != "trainset_hash" {
		t.Fatalf("Put of a bad checkpoint: %v (%T), want *checkpoint.InvalidCheckpoint on trainset_hash", err, err)
	}
	if _, _, err := c.Get(ctx, "go-refused"); !asType(err, new(*NotFoundError)) {
		t.Fatalf("a refused checkpoint was stored: %v", err)
	}

	// A session id the server's store refuses.
	_, err = c.Put(ctx, sample(t, "../escape", "demo.Opt", v1.SessionStatus_SESSION_STATUS_RUNNING, baseTime, 0), 0)
	if !asType(err, new(*InvalidSessionIDError)) {
		t.Fatalf("Put with session id ../escape: %v (%T), want *InvalidSessionIDError", err, err)
	}
	if _, _, err := c.Get(ctx, ".hidden"); !asType(err, new(*InvalidSessionIDError)) {
		t.Fatalf("Get of .hidden: %v (%T), want *InvalidSessionIDError", err, err)
	}

	// Refused by the server: every invalid vector of tests/vectors, with its field.
	manifest := readManifest(t)
	for _, vector := range manifest.Invalid {
		data := readVector(t, vector.Binpb)
		_, err := c.putEncoded(ctx, data, "", 0)
		var refused *checkpoint.InvalidCheckpoint
		if !asType(err, &refused) || refused.Path != vector.Field || refused.Rule != vector.Rule {
			t.Errorf("invalid vector %s: %v (%T), want *checkpoint.InvalidCheckpoint on %s, rule %s", vector.Name, err, err, vector.Field, vector.Rule)
		}
	}

	if _, err := c.Put(ctx, bad, 1<<63); !asType(err, new(*InvalidRequestError)) {
		t.Fatalf("expected generation 2^63: %v (%T), want *InvalidRequestError", err, err)
	}
}

// TestVectorsRoundTrip stores every valid vector (and the one of a newer
// minor) through the server and reads it back byte for byte.
func TestVectorsRoundTrip(t *testing.T) {
	c := dial(t, mainServer(t), WithToken(testToken))
	ctx := testContext(t)
	manifest := readManifest(t)
	vectors := append(append([]manifestEntry(nil), manifest.Valid...), manifest.Unknown...)
	if len(vectors) < 2 {
		t.Fatalf("manifest lists %d valid vectors", len(vectors))
	}
	for _, vector := range vectors {
		data := readVector(t, vector.Binpb)
		cp, err := checkpoint.Decode(data)
		if err != nil {
			t.Fatalf("%s: %v", vector.Name, err)
		}
		id := cp.GetSessionId()
		if err := c.Delete(ctx, id); err != nil {
			t.Fatalf("%s: Delete: %v", vector.Name, err)
		}
		if g, err := c.Put(ctx, cp, 0); err != nil || g != 1 {
			t.Fatalf("%s: Put: %d, %v", vector.Name, g, err)
		}
		got, _, err := c.Get(ctx, id)
		if err != nil {
			t.Fatalf("%s: Get: %v", vector.Name, err)
		}
		out, err := checkpoint.Encode(got)
		if err != nil || !bytes.Equal(out, data) {
			t.Errorf("%s: the checkpoint read back encodes to other bytes (%v)", vector.Name, err)
		}
		if err := c.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUnavailable(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	_ = listener.Close() // nothing listens there now
	c, err := Dial(addr, WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _, err = c.Get(testContext(t), "s1")
	var unavailable *UnavailableError
	if !asType(err, &unavailable) || unavailable.Code.String() != "Unavailable" {
		t.Fatalf("Get from %s: %v (%T), want *UnavailableError", addr, err, err)
	}
}

// TestTLSAndMessageLimit runs a second server with TLS (a certificate made
// here) and a 64 KiB message limit.
func TestTLSAndMessageLimit(t *testing.T) {
	s, certPEM := tlsServer(t)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(certPEM) {
		t.Fatal("bad certificate")
	}
	c := dial(t, s, WithTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}))
	ctx := testContext(t)
	if err := c.Delete(ctx, "go-tls"); err != nil {
		t.Fatalf("Delete over TLS: %v", err)
	}
	cp := sample(t, "go-tls", "demo.Opt", v1.SessionStatus_SESSION_STATUS_RUNNING, baseTime, 2)
	if g := mustPut(t, c, cp, 0); g != 1 {
		t.Fatalf("create over TLS: generation %d", g)
	}
	if _, g, err := c.Get(ctx, "go-tls"); err != nil || g != 1 {
		t.Fatalf("Get over TLS: %d, %v", g, err)
	}

	big := sample(t, "go-big", "demo.Opt", v1.SessionStatus_SESSION_STATUS_RUNNING, baseTime, 0)
	big.SamplerBlob = bytes.Repeat([]byte{7}, 100*1024)
	_, err := c.Put(ctx, big, 0)
	if !asType(err, new(*ResourceExhaustedError)) {
		t.Fatalf("Put of 100 KiB to a 64 KiB server: %v (%T), want *ResourceExhaustedError", err, err)
	}

	// Plaintext to a TLS server does not get through.
	plain := dial(t, s, WithTimeout(5*time.Second))
	if _, _, err := plain.Get(ctx, "go-tls"); !asType(err, new(*UnavailableError)) {
		t.Fatalf("plaintext to TLS: %v (%T), want *UnavailableError", err, err)
	}
}

var (
	tlsDir  string // the certificate and key of the TLS server; TestMain removes it
	tlsCert []byte
)

// tlsServer is a server with TLS (a certificate made here) and a 64 KiB
// message limit; it returns the certificate to trust.
func tlsServer(t *testing.T) (*server, []byte) {
	t.Helper()
	serversMu.Lock()
	if tlsDir == "" {
		dir, err := os.MkdirTemp("", "dsxir-go-client-tls-")
		if err != nil {
			serversMu.Unlock()
			t.Fatal(err)
		}
		certPEM, keyPEM := selfSigned(t)
		for name, data := range map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM} {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				serversMu.Unlock()
				t.Fatal(err)
			}
		}
		tlsDir, tlsCert = dir, certPEM
	}
	dir, cert := tlsDir, tlsCert
	serversMu.Unlock()
	s := sharedServer(t, "tls", nil, "--tls-cert", filepath.Join(dir, "cert.pem"),
		"--tls-key", filepath.Join(dir, "key.pem"), "--max-message-bytes", "65536")
	return s, cert
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// TestWatchEnds: a watch ends with io.EOF when its context is cancelled
// during Recv, and with *UnavailableError when the server shuts down.
func TestWatchEnds(t *testing.T) {
	c := dial(t, mainServer(t), WithToken(testToken))
	ctx, cancel := context.WithCancel(testContext(t))
	w, err := c.Watch(ctx, "go-watch-ends")
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := w.Recv(); err != nil || ev.Type != checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_INITIAL {
		t.Fatalf("initial event: %v, %v", ev, err)
	}
	time.AfterFunc(200*time.Millisecond, cancel)
	if _, err := w.Recv(); err != ioEOF {
		t.Fatalf("Recv when the context is cancelled: %v (%T), want io.EOF", err, err)
	}

	s, err := startServer(pythonPath(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	defer func() {
		if s != nil {
			_ = s.stop()
		}
	}()
	c2 := dial(t, s)
	w2, err := c2.Watch(testContext(t), "go-watch-ends")
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if ev, err := w2.Recv(); err != nil || ev.Type != checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_INITIAL {
		t.Fatalf("initial event: %v, %v", ev, err)
	}
	server := s
	s = nil
	go func() { stopped <- server.stop() }()
	_, err = w2.Recv()
	var unavailable *UnavailableError
	if !asType(err, &unavailable) {
		t.Fatalf("Recv when the server shuts down: %v (%T), want *UnavailableError", err, err)
	}
	// Like every error of the service, it names a value of ErrorReason.
	if r, declared := checkpointstorev1.ErrorReason_value[unavailable.Reason]; !declared || checkpointstorev1.ErrorReason(r) == checkpointstorev1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		t.Fatalf("Recv when the server shuts down: reason %q is not an ErrorReason", unavailable.Reason)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}
