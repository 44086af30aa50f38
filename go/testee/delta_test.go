package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"

	"github.com/dsxir/dsxir-checkpoint/go/checkpoint"
	conformancev1 "github.com/dsxir/dsxir-checkpoint/go/testee/conformancev1"
)

// deltaCase is one request of commands 6 or 7 and its expected answer.
type deltaCase struct {
	name       string
	req        *conformancev1.Request
	output     []byte // nil for a refusal
	kind, path string
	rule       string
}

func deltaRequest(c conformancev1.Command, base, input []byte) *conformancev1.Request {
	return &conformancev1.Request{Command: c, Input: input, Base: base}
}

// checkDeltaAnswers runs the cases through serve and through the one-shot
// functions, which must agree.
func checkDeltaAnswers(t *testing.T, cases []deltaCase) {
	t.Helper()
	reqs := make([]*conformancev1.Request, len(cases))
	for i, c := range cases {
		reqs[i] = c.req
	}
	for i, got := range roundTrip(t, reqs) {
		c := cases[i]
		var out []byte
		var oneShot *conformancev1.Refusal
		if c.req.GetCommand() == conformancev1.Command_COMMAND_REENCODE_DELTA {
			out, oneShot = reencodeDelta(c.req.GetInput())
		} else {
			out, oneShot = applyDelta(c.req.GetBase(), c.req.GetInput())
		}
		if c.output != nil {
			if got.GetRefusal() != nil || !bytes.Equal(got.GetOutput(), c.output) || !bytes.Equal(out, c.output) {
				t.Errorf("%s: %v, want output %x", c.name, got, c.output)
			}
			continue
		}
		r := got.GetRefusal()
		if r == nil || r.GetExitCode() != statusRefused || r.GetKind() != c.kind || r.GetPath() != c.path || r.GetRule() != c.rule {
			t.Errorf("%s: %v, want refusal %s %s %s", c.name, got, c.kind, c.path, c.rule)
			continue
		}
		if !proto.Equal(r, oneShot) {
			t.Errorf("%s: serve answers %v, the one-shot command %v", c.name, r, oneShot)
		}
		prefix := c.kind + ": " + c.path + ": "
		if !strings.HasPrefix(r.GetMessage(), prefix) || strings.Contains(r.GetMessage(), "\n") ||
			(c.rule != "" && !strings.HasSuffix(r.GetMessage(), " (rule "+c.rule+")")) {
			t.Errorf("%s: message %q", c.name, r.GetMessage())
		}
	}
}

func TestServeDeltas(t *testing.T) {
	m, read := load(t)
	baseBytes := read(m.Valid[0].Binpb)
	base, err := checkpoint.Decode(baseBytes)
	if err != nil {
		t.Fatal(err)
	}
	next := proto.Clone(base).(*v1.Checkpoint)
	if next.Status != v1.SessionStatus_SESSION_STATUS_RUNNING {
		next.Status = v1.SessionStatus_SESSION_STATUS_RUNNING
		next.TerminalReason = nil
	}
	score := 0.5
	if _, err := checkpoint.RecordTrial(next, checkpoint.Trial{Score: &score}); err != nil {
		t.Fatal(err)
	}
	next.UpdatedAt = &timestamppb.Timestamp{Seconds: next.GetUpdatedAt().GetSeconds() + 1}
	want, err := checkpoint.Encode(next)
	if err != nil {
		t.Fatal(err)
	}
	d, err := checkpoint.NewDelta(base, next, 4)
	if err != nil {
		t.Fatal(err)
	}
	deltaBytes, err := checkpoint.EncodeDelta(d)
	if err != nil {
		t.Fatal(err)
	}
	seal := func(d *v1.CheckpointDelta) []byte {
		body, err := proto.MarshalOptions{Deterministic: true}.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return sealBody(body)
	}
	edit := func(f func(*v1.CheckpointDelta)) []byte {
		c := proto.Clone(d).(*v1.CheckpointDelta)
		f(c)
		return seal(c)
	}
	badBase := bytes.Clone(baseBytes)
	badBase[len(badBase)-1] ^= 1
	reencode, apply := conformancev1.Command_COMMAND_REENCODE_DELTA, conformancev1.Command_COMMAND_APPLY_DELTA
	n := len(base.GetProgress().GetTrialLog())
	checkDeltaAnswers(t, []deltaCase{
		{name: "reencode", req: deltaRequest(reencode, nil, deltaBytes), output: deltaBytes},
		{name: "apply", req: deltaRequest(apply, baseBytes, deltaBytes), output: want},
		{name: "reencode a checkpoint", req: deltaRequest(reencode, nil, baseBytes), kind: "delta_shape", path: "<input>", rule: "wire.tag"},
		{name: "reencode empty", req: deltaRequest(reencode, nil, nil), kind: "delta_shape", path: "<input>", rule: "input.trailer"},
		{name: "reencode kept", req: deltaRequest(reencode, nil, edit(func(c *v1.CheckpointDelta) { c.Kept |= 1 })), kind: "delta_shape", path: "kept", rule: "delta.kept"},
		{name: "base refused", req: deltaRequest(apply, badBase, deltaBytes), kind: "checkpoint_shape", path: "<input>", rule: "input.checksum"},
		{name: "base before delta", req: deltaRequest(apply, badBase, nil), kind: "checkpoint_shape", path: "<input>", rule: "input.checksum"},
		{name: "delta refused", req: deltaRequest(apply, baseBytes, edit(func(c *v1.CheckpointDelta) { c.Format = "x" })), kind: "delta_shape", path: "format", rule: "delta.format"},
		{name: "session", req: deltaRequest(apply, baseBytes, edit(func(c *v1.CheckpointDelta) { c.Head.SessionId = "other" })), kind: "delta_shape", path: "head.session_id", rule: "delta.session"},
		{name: "base trials", req: deltaRequest(apply, baseBytes, edit(func(c *v1.CheckpointDelta) { c.BaseTrials++ })), kind: "delta_shape", path: "base_trials", rule: "delta.base_trials"},
		{name: "result", req: deltaRequest(apply, baseBytes, edit(func(c *v1.CheckpointDelta) { c.Head.Progress.TrialLog[0].TrialIdx++ })),
			kind: "checkpoint_shape", path: "progress.trial_log[" + strconv.Itoa(n) + "].trial_idx", rule: "trial.trial_idx"},
	})
}

// sealBody appends the checksum trailer of FORMAT.md §2.1 to body.
func sealBody(body []byte) []byte {
	sum := crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli))
	out := append(bytes.Clone(body), 0xfd, 0xff, 0xff, 0xff, 0x0f)
	return binary.LittleEndian.AppendUint32(out, sum)
}

// The delta vectors of tests/vectors/delta through serve.
func TestServeDeltaVectors(t *testing.T) {
	dir := filepath.Join(vectorsDir, "delta")
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("tests/vectors/delta/manifest.json does not exist")
	}
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Cases []struct {
			Name, Base, Delta, Result string
			Refused                   *struct{ Stage, Rule, Field string }
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	read := func(rel string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var cases []deltaCase
	for _, v := range m.Cases {
		base, delta := read(v.Base), read(v.Delta)
		c := deltaCase{name: v.Name, req: deltaRequest(conformancev1.Command_COMMAND_APPLY_DELTA, base, delta)}
		if v.Refused == nil {
			c.output = read(v.Result)
		} else {
			c.kind, c.path, c.rule = "delta_shape", v.Refused.Field, v.Refused.Rule
			if v.Refused.Stage == "result" {
				c.kind = "checkpoint_shape"
			}
		}
		cases = append(cases, c)
		if v.Refused == nil || v.Refused.Stage != "read" {
			cases = append(cases, deltaCase{name: v.Name + " (reencode)", req: deltaRequest(conformancev1.Command_COMMAND_REENCODE_DELTA, nil, delta), output: delta})
		} else {
			cases = append(cases, deltaCase{name: v.Name + " (reencode)", req: deltaRequest(conformancev1.Command_COMMAND_REENCODE_DELTA, nil, delta),
				kind: "delta_shape", path: v.Refused.Field, rule: v.Refused.Rule})
		}
	}
	if len(cases) == 0 {
		t.Fatal("the delta manifest lists no case")
	}
	checkDeltaAnswers(t, cases)
}
