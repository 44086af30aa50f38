package checkpoint

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	cp := validCheckpoint(t)
	if got := mustRoundTrip(t, mustEncode(t, cp)); !proto.Equal(got, cp) {
		t.Fatalf("decoded checkpoint differs")
	}
}

// The canonical encoding writes an explicit score of 0.0 as 19 00..00 and
// nothing for an absent score (FORMAT.md §2 rule 2), and keeps -0.0.
func TestCanonicalPresence(t *testing.T) {
	e := &v1.TrialLogEntry{Score: f64(0.0), Status: v1.TrialStatus_TRIAL_STATUS_OK}
	if got, want := hex.EncodeToString(marshal(t, e)), "1900000000000000002001"; got != want {
		t.Fatalf("entry with score 0.0: %s, want %s", got, want)
	}
	e.Score = nil
	if got, want := hex.EncodeToString(marshal(t, e)), "2001"; got != want {
		t.Fatalf("entry without score: %s, want %s", got, want)
	}
	e.Score = f64(math.Copysign(0, -1))
	if got, want := hex.EncodeToString(marshal(t, e)), "1900000000000000802001"; got != want {
		t.Fatalf("entry with score -0.0: %s, want %s", got, want)
	}
	// A oneof member is written even at its default value.
	if got, want := hex.EncodeToString(marshal(t, mustTerm(t, false))), "1000"; got != want {
		t.Fatalf("Term false: %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(marshal(t, mustTerm(t, 0))), "1800"; got != want {
		t.Fatalf("Term 0: %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(marshal(t, mustTerm(t, ""))), "3200"; got != want {
		t.Fatalf("Term \"\": %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(marshal(t, mustTerm(t, nil))), "0a00"; got != want {
		t.Fatalf("Term nil: %s, want %s", got, want)
	}
}

// Field order: known fields ascending (proto3 optional fields in place),
// unknown fields last in the order read.
func TestCanonicalFieldOrder(t *testing.T) {
	cp := validCheckpoint(t)
	b := mustEncode(t, cp)
	assertAscending(t, b)
	for _, e := range cp.Progress.TrialLog {
		assertAscending(t, marshal(t, e))
	}
	assertAscending(t, marshal(t, cp.Progress))

	// An unknown field (99) after the known ones is kept and written back
	// where it stood.
	body := b[:len(b)-TrailerSize]
	withUnknown := seal(protowire.AppendVarint(protowire.AppendTag(bytes.Clone(body), 99, protowire.VarintType), 7))
	cp2, err := Decode(withUnknown)
	if err != nil {
		t.Fatal(err)
	}
	out := mustEncode(t, cp2)
	if !bytes.Equal(out, withUnknown) {
		t.Fatalf("re-encoding with an unknown field:\n got %x\nwant %x", out, withUnknown)
	}

	// Fields out of order, or an unknown field among the known ones, are
	// not the canonical encoding: refused (FORMAT.md §2.2).
	var in []byte
	in = protowire.AppendTag(in, 2, protowire.BytesType)
	in = protowire.AppendString(in, "s1")
	in = protowire.AppendTag(in, 99, protowire.VarintType)
	in = protowire.AppendVarint(in, 7)
	rest := body
	for len(rest) > 0 {
		num, typ, n := protowire.ConsumeTag(rest)
		m := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if num != 2 {
			in = append(in, rest[:n+m]...)
		}
		rest = rest[n+m:]
	}
	_, err = Decode(seal(in))
	if ruleOf(t, err) != RuleWireOrder || shapeField(t, err) != InputPath {
		t.Fatalf("out-of-order input: %v", err)
	}
}

func assertAscending(t *testing.T, b []byte) {
	t.Helper()
	last := protowire.Number(0)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag")
		}
		if num < last { // equal numbers are the items of a repeated field
			t.Fatalf("field %d written after field %d", num, last)
		}
		last = num
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		b = b[n+m:]
	}
}

func TestDecodeRefusals(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(cp *v1.Checkpoint)
		field string
	}{
		{"no format", func(cp *v1.Checkpoint) { cp.Format = "" }, "format"},
		{"wrong format", func(cp *v1.Checkpoint) { cp.Format = "dsxir.optimizer_session.checkpoint/v1" }, "format"},
		{"leading zero", func(cp *v1.Checkpoint) { cp.Format = "dsxir.optimizer_session.checkpoint/v01.0" }, "format"},
		{"major 2", func(cp *v1.Checkpoint) { cp.Format = "dsxir.optimizer_session.checkpoint/v2.0" }, "format"},
		{"no session id", func(cp *v1.Checkpoint) { cp.SessionId = "" }, "session_id"},
		{"no optimizer", func(cp *v1.Checkpoint) { cp.Optimizer = "" }, "optimizer"},
		{"empty option key", func(cp *v1.Checkpoint) { cp.OptimizerOpts[1].Key = "" }, "optimizer_opts[1].key"},
		{"option without value", func(cp *v1.Checkpoint) { cp.OptimizerOpts[2].Value = nil }, "optimizer_opts[2].value"},
		{"option term without kind", func(cp *v1.Checkpoint) { cp.OptimizerOpts[0].Value = &v1.Term{} }, "optimizer_opts[0].value"},
		{"option NaN", func(cp *v1.Checkpoint) {
			cp.OptimizerOpts[0].Value = &v1.Term{Kind: &v1.Term_FloatValue{FloatValue: goNaN}}
		}, "optimizer_opts[0].value.float_value"},
		{"empty program module", func(cp *v1.Checkpoint) { cp.ProgramModule = str("") }, "program_module"},
		{"short hash", func(cp *v1.Checkpoint) { cp.TrainsetHash = cp.TrainsetHash[:31] }, "trainset_hash"},
		{"no created_at", func(cp *v1.Checkpoint) { cp.CreatedAt = nil }, "created_at"},
		{"nanos", func(cp *v1.Checkpoint) { cp.CreatedAt.Nanos = 1_000_000_000 }, "created_at.nanos"},
		{"negative nanos", func(cp *v1.Checkpoint) { cp.CreatedAt.Nanos = -1 }, "created_at.nanos"},
		{"year 0", func(cp *v1.Checkpoint) { cp.CreatedAt.Seconds = -62135596801 }, "created_at.seconds"},
		{"nanos before seconds", func(cp *v1.Checkpoint) { cp.UpdatedAt = &timestamppb.Timestamp{Seconds: -1e12, Nanos: -5} }, "updated_at.nanos"},
		{"year 10000", func(cp *v1.Checkpoint) { cp.UpdatedAt.Seconds = 253402300800 }, "updated_at.seconds"},
		{"no progress", func(cp *v1.Checkpoint) { cp.Progress = nil }, "progress"},
		{"trial idx", func(cp *v1.Checkpoint) { cp.Progress.TrialLog[1].TrialIdx = 5 }, "progress.trial_log[1].trial_idx"},
		{"NaN score", func(cp *v1.Checkpoint) { cp.Progress.TrialLog[1].Score = f64(goNaN) }, "progress.trial_log[1].score"},
		{"unspecified trial status", func(cp *v1.Checkpoint) {
			cp.Progress.TrialLog[1].Status = v1.TrialStatus_TRIAL_STATUS_UNSPECIFIED
		}, "progress.trial_log[1].status"},
		{"unknown trial status", func(cp *v1.Checkpoint) { cp.Progress.TrialLog[0].Status = 9 }, "progress.trial_log[0].status"},
		{"unsorted stats", func(cp *v1.Checkpoint) {
			e := cp.Progress.TrialLog[0].Stats.Entries
			e[0], e[1] = e[1], e[0]
		}, "progress.trial_log[0].stats.entries[1].key"},
		{"duplicate stats key", func(cp *v1.Checkpoint) {
			e := cp.Progress.TrialLog[0].Stats.Entries
			e[1].Key = e[0].Key
		}, "progress.trial_log[0].stats.entries[1].key"},
		{"error entry without value", func(cp *v1.Checkpoint) {
			cp.Progress.TrialLog[1].Error.Entries[0].Value = nil
		}, "progress.trial_log[1].error.entries[0]"},
		{"stats entry without key", func(cp *v1.Checkpoint) {
			cp.Progress.TrialLog[0].Stats.Entries[1].Key = nil
		}, "progress.trial_log[0].stats.entries[1]"},
		{"key checked before value presence", func(cp *v1.Checkpoint) {
			e := cp.Progress.TrialLog[0].Stats.Entries[0]
			e.Key, e.Value = &v1.Term{}, nil
		}, "progress.trial_log[0].stats.entries[0].key"},
		{"no started_at", func(cp *v1.Checkpoint) { cp.Progress.StartedAt = nil }, "progress.started_at"},
		{"NaN best", func(cp *v1.Checkpoint) { cp.Progress.BestScore = f64(goNaN) }, "progress.best_score"},
		{"best score alone", func(cp *v1.Checkpoint) { cp.Progress.BestTrialIdx = nil }, "progress.best_trial_idx"},
		{"best idx alone", func(cp *v1.Checkpoint) { cp.Progress.BestScore = nil }, "progress.best_score"},
		{"best idx out of range", func(cp *v1.Checkpoint) { cp.Progress.BestTrialIdx = u64(2) }, "progress.best_trial_idx"},
		{"best idx names error", func(cp *v1.Checkpoint) {
			cp.Progress.BestTrialIdx = u64(1)
			cp.Progress.TrialLog[1].Score = f64(0)
		}, "progress.best_trial_idx"},
		{"best -0.0 vs 0.0", func(cp *v1.Checkpoint) { cp.Progress.BestScore = f64(math.Copysign(0, -1)) }, "progress.best_trial_idx"},
		{"best entry without score", func(cp *v1.Checkpoint) { cp.Progress.TrialLog[0].Score = nil }, "progress.best_trial_idx"},
		{"completed", func(cp *v1.Checkpoint) { cp.Progress.Completed = 2 }, "progress.completed"},
		{"errors", func(cp *v1.Checkpoint) { cp.Progress.Errors = 0 }, "progress.errors"},
		{"attempts", func(cp *v1.Checkpoint) { cp.Progress.Attempts = 1 }, "progress.attempts"},
		{"artifact", func(cp *v1.Checkpoint) {
			cp.BestProgramArtifact.Entries[0].Key = &v1.Term{}
		}, "best_program_artifact.entries[0].key"},
		{"no sampler format", func(cp *v1.Checkpoint) { cp.SamplerFormat = nil }, "sampler_format"},
		{"no sampler module", func(cp *v1.Checkpoint) { cp.SamplerFormat.Module = "" }, "sampler_format.module"},
		{"sampler version 0", func(cp *v1.Checkpoint) { cp.SamplerFormat.Version = 0 }, "sampler_format.version"},
		{"unspecified status", func(cp *v1.Checkpoint) { cp.Status = 0 }, "status"},
		{"unknown status", func(cp *v1.Checkpoint) { cp.Status = 6 }, "status"},
		{"terminal reason bigint", func(cp *v1.Checkpoint) {
			cp.TerminalReason = &v1.Term{Kind: &v1.Term_BigintValue{BigintValue: []byte{0x7f}}}
		}, "terminal_reason.bigint_value"},
		// Order: the first failing check wins.
		{"session id before progress", func(cp *v1.Checkpoint) { cp.SessionId = ""; cp.Progress = nil }, "session_id"},
		{"trial log before started_at", func(cp *v1.Checkpoint) {
			cp.Progress.StartedAt = nil
			cp.Progress.TrialLog[1].Status = 0
		}, "progress.trial_log[1].status"},
		{"attempts after completed", func(cp *v1.Checkpoint) { cp.Progress.Attempts = 0; cp.Progress.Completed = 5 }, "progress.completed"},
		{"status before terminal reason", func(cp *v1.Checkpoint) { cp.Status = 0; cp.TerminalReason = &v1.Term{} }, "status"},
		{"unknown direction", func(cp *v1.Checkpoint) { cp.Direction = 2 }, "direction"},
		{"negative direction", func(cp *v1.Checkpoint) { cp.Direction = -1 }, "direction"},
		{"terminal reason before direction", func(cp *v1.Checkpoint) { cp.Direction = 2; cp.TerminalReason = &v1.Term{} }, "terminal_reason"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cp := validCheckpoint(t)
			c.edit(cp)
			if _, err := Encode(cp); err == nil {
				t.Fatalf("Encode accepted it")
			} else if ic := (*InvalidCheckpoint)(nil); !errors.As(err, &ic) || ic.Path != c.field {
				t.Fatalf("Encode: %v, want field %s", err, c.field)
			}
			b, err := proto.Marshal(cp)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Decode(seal(b))
			if err == nil {
				t.Fatalf("Decode accepted it")
			}
			if got := shapeField(t, err); got != c.field {
				t.Fatalf("field %q, want %q (%v)", got, c.field, err)
			}
			if !strings.HasPrefix(err.Error(), "checkpoint_shape: "+c.field+": ") {
				t.Fatalf("message %q does not name the field", err.Error())
			}
		})
	}
}

func TestDecodeAcceptsMinorVersions(t *testing.T) {
	for _, f := range []string{"dsxir.optimizer_session.checkpoint/v1.0", "dsxir.optimizer_session.checkpoint/v1.7", "dsxir.optimizer_session.checkpoint/v1.123"} {
		cp := validCheckpoint(t)
		cp.Format = f
		if _, err := Decode(sealed(t, cp)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// Direction (field 15, v1.1): lower is written after terminal_reason;
// higher, the default, is not written, and an explicit 0 on the wire is
// read as higher and dropped by the re-encoding.
func TestDirection(t *testing.T) {
	cp := validCheckpoint(t)
	higher := mustEncode(t, cp)
	cp.Direction = v1.Direction_DIRECTION_LOWER
	lower := mustEncode(t, cp)
	if want := seal(append(bytes.Clone(higher[:len(higher)-TrailerSize]), 0x78, 0x01)); !bytes.Equal(lower, want) {
		t.Fatalf("direction lower:\n got %x\nwant %x", lower, want)
	}
	got, err := Decode(lower)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetDirection() != v1.Direction_DIRECTION_LOWER {
		t.Fatalf("decoded direction %v", got.GetDirection())
	}
	// An explicit 0 (higher) is the default written: refused.
	body := higher[:len(higher)-TrailerSize]
	_, err = Decode(seal(append(bytes.Clone(body), 0x78, 0x00)))
	if ruleOf(t, err) != RuleWireDefault || shapeField(t, err) != "direction" {
		t.Fatalf("explicit direction 0: %v", err)
	}
	_, err = Decode(seal(append(bytes.Clone(body), 0x78, 0x02)))
	if got := shapeField(t, err); got != "direction" {
		t.Fatalf("direction 2: field %q", got)
	}
	if want := "checkpoint_shape: direction: unknown direction 2 (rule direction.known)"; err.Error() != want {
		t.Fatalf("direction 2: %q, want %q", err.Error(), want)
	}
}

func TestDecodeInputFailures(t *testing.T) {
	for name, c := range map[string]struct {
		in   []byte
		rule string
	}{
		"empty":             {nil, RuleInputTrailer},
		"short":             {[]byte{0xfd, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0}, RuleInputTrailer},
		"no trailer":        {[]byte{0x0a, 0x05, 'a', 'b', 'c', 'd', 'e', 0, 0, 0}, RuleInputTrailer},
		"wrong checksum":    {append([]byte{0xfd, 0xff, 0xff, 0xff, 0x0f}, 1, 2, 3, 4), RuleInputChecksum},
		"truncated":         {seal([]byte{0x0a, 0x05, 'a'}), RuleWireTruncated},
		"bad wire type":     {seal([]byte{0x0f}), RuleWireTag},
		"group":             {seal([]byte{0x0b}), RuleWireTag},
		"varint overflow":   {seal(bytes.Repeat([]byte{0xff}, 11)), RuleWireVarint},
		"timestamp message": {sealed(t, &timestamppb.Timestamp{Seconds: 5}), RuleWireTag},
	} {
		_, err := Decode(c.in)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if f, r := shapeField(t, err), ruleOf(t, err); f != InputPath || r != c.rule {
			t.Errorf("%s: %s at %s, want %s at <input>", name, r, f, c.rule)
		}
	}
	// An empty body is a message without fields: it fails on the format.
	if _, err := Decode(seal(nil)); err == nil || shapeField(t, err) != "format" {
		t.Errorf("empty body: %v", err)
	}
	// Invalid UTF-8 is refused at its field.
	if _, err := Decode(seal([]byte{0x12, 0x01, 0xff})); ruleOf(t, err) != RuleWireUTF8 || shapeField(t, err) != "session_id" {
		t.Errorf("invalid UTF-8: %v", err)
	}
}

func TestDecodeSizeLimit(t *testing.T) {
	big := make([]byte, MaxInputSize+1)
	_, err := Decode(big)
	if err == nil || shapeField(t, err) != InputPath {
		t.Fatalf("oversized input: %v", err)
	}
}

// nestedListTerm returns the bytes of a Term made of depth nested lists
// around a scalar (depth counts the scalar: depth 1 is the bare scalar).
func nestedListTerm(depth int) []byte {
	t := protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 1) // bool true
	for i := 1; i < depth; i++ {
		list := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), t)
		t = protowire.AppendBytes(protowire.AppendTag(nil, 9, protowire.BytesType), list)
	}
	return t
}

func withTerminalReason(t *testing.T, term []byte) []byte {
	cp := validCheckpoint(t)
	cp.TerminalReason = nil
	b := marshal(t, cp)
	return protowire.AppendBytes(protowire.AppendTag(b, 14, protowire.BytesType), term)
}

func TestTermDepthLimit(t *testing.T) {
	if _, err := Decode(seal(withTerminalReason(t, nestedListTerm(24)))); err != nil {
		t.Fatalf("depth 24: %v", err)
	}
	_, err := Decode(seal(withTerminalReason(t, nestedListTerm(25))))
	want := "terminal_reason" + strings.Repeat(".list_value.items[0]", 24)
	if err == nil || shapeField(t, err) != want || ruleOf(t, err) != RuleTermDepth {
		t.Fatalf("depth 25: %v, want field %s", err, want)
	}
}

// The parser of DecodeTrainsetTerm refuses what the official runtimes
// refuse: more than 100 nested messages below the top-level message.
func TestRecursionLimit(t *testing.T) {
	// A Term of n nested lists around a bool nests 2n+1 messages.
	term := func(n int) []byte { return nestedListTerm(n + 1) }
	var tm v1.Term
	if err := unmarshalOptions.Unmarshal(term(50), &tm); err != nil { // 101 messages
		t.Fatalf("101 nested messages refused: %v", err)
	}
	if err := unmarshalOptions.Unmarshal(protowire.AppendBytes(protowire.AppendTag(nil, 9, protowire.BytesType), protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), term(50))), &tm); err == nil {
		t.Fatalf("103 nested messages accepted")
	}
	// 102 messages: Term{list_value: {}} (2) wrapped in 50 list levels.
	even := protowire.AppendBytes(protowire.AppendTag(nil, 9, protowire.BytesType), nil)
	for i := 0; i < 50; i++ {
		even = protowire.AppendBytes(protowire.AppendTag(nil, 9, protowire.BytesType), protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), even))
	}
	if err := unmarshalOptions.Unmarshal(even, &tm); err == nil {
		t.Fatalf("102 nested messages accepted")
	}
	// In a checkpoint the grammar stops at the Term depth, long before.
	_, err := Decode(seal(withTerminalReason(t, term(51))))
	if ruleOf(t, err) != RuleTermDepth {
		t.Fatalf("104 nested messages: %v, want term.depth", err)
	}
}

func TestBigintValidation(t *testing.T) {
	cases := map[string]string{
		"":                       "empty",
		"00":                     "fits",
		"007f":                   "not minimal",
		"ff80":                   "not minimal",
		"7fffffffffffffff":       "fits",
		"8000000000000000":       "fits",
		"000000000000000001":     "not minimal",
		"008000000000000000":     "",
		"ff7fffffffffffffff":     "",
		"ffff7fffffffffffffff":   "not minimal",
		"0100000000000000000000": "",
	}
	for h, want := range cases {
		b, _ := hex.DecodeString(h)
		got := checkBigint(b)
		if (want == "") != (got == "") || (want != "" && !strings.Contains(got, want)) {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
}

// Encode refuses, without panicking, checkpoints built in Go with nil
// elements where the wire format cannot hold them.
func TestEncodeNilElements(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(cp *v1.Checkpoint)
		field string
	}{
		{"nil checkpoint", nil, InputPath},
		{"nil option", func(cp *v1.Checkpoint) { cp.OptimizerOpts[1] = nil }, "optimizer_opts[1]"},
		{"nil trial", func(cp *v1.Checkpoint) { cp.Progress.TrialLog[0] = nil }, "progress.trial_log[0]"},
		{"nil map entry", func(cp *v1.Checkpoint) { cp.BestProgramArtifact.Entries[0] = nil }, "best_program_artifact.entries[0]"},
		{"nil list item", func(cp *v1.Checkpoint) {
			cp.TerminalReason = &v1.Term{Kind: &v1.Term_ListValue{ListValue: &v1.TermList{Items: []*v1.Term{nil}}}}
		}, "terminal_reason.list_value.items[0]"},
		{"nil oneof wrapper", func(cp *v1.Checkpoint) { cp.TerminalReason = &v1.Term{Kind: (*v1.Term_BoolValue)(nil)} }, "terminal_reason"},
		{"invalid UTF-8 candidate", func(cp *v1.Checkpoint) { cp.Progress.TrialLog[0].CandidateId = str("\xff") }, "progress.trial_log[0].candidate_id"},
		{"invalid UTF-8 string term", func(cp *v1.Checkpoint) {
			cp.TerminalReason = &v1.Term{Kind: &v1.Term_StringValue{StringValue: "\xff"}}
		}, "terminal_reason.string_value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cp *v1.Checkpoint
			if c.edit != nil {
				cp = validCheckpoint(t)
				c.edit(cp)
			}
			_, err := Encode(cp)
			if err == nil {
				t.Fatal("accepted")
			}
			if got := invalidPath(t, err); got != c.field {
				t.Fatalf("path %q, want %q (%v)", got, c.field, err)
			}
		})
	}
	// A nil message-valued oneof member is an empty one, as the runtime writes it.
	cp := validCheckpoint(t)
	cp.TerminalReason = &v1.Term{Kind: &v1.Term_MapValue{}}
	b := mustEncode(t, cp)
	back, err := Decode(b)
	if err != nil || back.TerminalReason.GetMapValue() == nil || len(back.TerminalReason.GetMapValue().Entries) != 0 {
		t.Fatalf("%v %v", back.GetTerminalReason(), err)
	}
}
