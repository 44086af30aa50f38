package checkpoint

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The constants of delta_rules.go are exactly the ids of
// spec/delta-rules-v1.json, once each, and none is a checkpoint rule id.
func TestDeltaRuleConstantsAreTheSpecIDs(t *testing.T) {
	consts := stringConstants(t, "delta_rules.go", "RuleDelta")
	for _, id := range consts {
		if !IsDeltaRule(id) || IsRule(id) {
			t.Fatalf("%s: IsDeltaRule %v, IsRule %v", id, IsDeltaRule(id), IsRule(id))
		}
	}
	ids := specRuleIDs(t, "delta-rules-v1.json")
	if len(ids) != 7 || len(deltaRuleIDs) != len(consts) {
		t.Fatalf("%d spec ids, %d constants, %d in IsDeltaRule", len(ids), len(consts), len(deltaRuleIDs))
	}
	sameIDs(t, "delta_rules.go", consts, ids)
}

// nextOf is base after two more trials (an ok one that becomes the best,
// an error) and a new sampler blob, with the time moved on.
func nextOf(t *testing.T, base *v1.Checkpoint) *v1.Checkpoint {
	t.Helper()
	next := proto.Clone(base).(*v1.Checkpoint)
	if _, err := RecordTrial(next, Trial{Score: f64(0.75), Stats: Map{{"tokens", 7}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := RecordTrial(next, Trial{Status: v1.TrialStatus_TRIAL_STATUS_ERROR, Error: Map{{"message", "x"}}}); err != nil {
		t.Fatal(err)
	}
	next.SamplerBlob = []byte{9, 9}
	next.UpdatedAt = &timestamppb.Timestamp{Seconds: 1700000200}
	return next
}

// deltaOf is the delta of next over base, checked to be sealed and read back.
func deltaOf(t *testing.T, base, next *v1.Checkpoint) (*v1.CheckpointDelta, []byte) {
	t.Helper()
	d, err := NewDelta(base, next, 3)
	if err != nil {
		t.Fatalf("NewDelta: %v", err)
	}
	return roundTripDelta(t, d)
}

// roundTripDelta seals d and reads it back, checking that what is read
// seals to the same bytes; it returns what was read and the bytes.
func roundTripDelta(t *testing.T, d *v1.CheckpointDelta) (*v1.CheckpointDelta, []byte) {
	t.Helper()
	b, err := EncodeDelta(d)
	if err != nil {
		t.Fatalf("EncodeDelta: %v", err)
	}
	back, err := DecodeDelta(b)
	if err != nil {
		t.Fatalf("DecodeDelta: %v", err)
	}
	again, err := EncodeDelta(back)
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("re-encoding differs (%v):\n got %x\nwant %x", err, again, b)
	}
	return back, b
}

func TestDeltaRoundTripAndApply(t *testing.T) {
	base := validCheckpoint(t)
	next := nextOf(t, base)
	d, b := deltaOf(t, base, next)
	// Unchanged: optimizer, options, program module, trainset hash, created_at,
	// artifact, sampler format, status, terminal reason; direction is held by neither.
	want := uint32(1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<10 | 1<<12 | 1<<13 | 1<<14)
	if d.GetKept() != want {
		t.Fatalf("kept %#x, want %#x", d.GetKept(), want)
	}
	if d.GetBaseTrials() != 2 || len(d.GetHead().GetProgress().GetTrialLog()) != 2 || d.GetHead().GetProgress().GetTrialLog()[0].GetTrialIdx() != 2 {
		t.Fatalf("head holds the wrong entries: %v", d.GetHead().GetProgress())
	}
	full := mustEncode(t, next)
	if len(b) >= len(full) {
		t.Fatalf("the delta (%d bytes) is not smaller than the checkpoint (%d)", len(b), len(full))
	}
	baseBefore := marshal(t, base)
	got, gotBytes, err := ApplyDelta(base, d)
	if err != nil {
		t.Fatalf("ApplyDelta: %v", err)
	}
	if !bytes.Equal(gotBytes, full) {
		t.Fatalf("applied bytes differ:\n got %x\nwant %x", gotBytes, full)
	}
	if enc, err := Encode(got); err != nil || !bytes.Equal(enc, full) {
		t.Fatalf("Encode of the result: %v", err)
	}
	if !bytes.Equal(marshal(t, base), baseBefore) {
		t.Fatal("ApplyDelta changed the base")
	}
	// The result shares nothing with the base or the delta.
	got.OptimizerOpts[0].Key = "changed"
	got.Progress.TrialLog[0].DurationMs = 1
	got.Progress.TrialLog[3].DurationMs = 1
	if base.OptimizerOpts[0].Key == "changed" || base.Progress.TrialLog[0].DurationMs == 1 || d.Head.Progress.TrialLog[1].DurationMs == 1 {
		t.Fatal("the result shares messages with its inputs")
	}
}

// A field kept when the base does not hold it is absent from the result.
func TestApplyKeptAbsentInBase(t *testing.T) {
	base := validCheckpoint(t)
	base.ProgramModule = nil
	next := nextOf(t, base)
	d, _ := deltaOf(t, base, next)
	if d.GetKept()&(1<<5) != 0 {
		t.Fatal("NewDelta keeps a field neither holds")
	}
	d.Kept |= 1 << 5
	got, _, err := ApplyDelta(base, d)
	if err != nil {
		t.Fatal(err)
	}
	if got.ProgramModule != nil {
		t.Fatalf("program_module %q, want absent", got.GetProgramModule())
	}
	// Keeping the sampler format of a base that has none makes a result
	// that §7 refuses at the result's path.
	base2 := proto.Clone(base).(*v1.Checkpoint)
	base2.SamplerFormat = nil
	d.Kept |= 1 << 12
	_, _, err = ApplyDelta(base2, d)
	if f := shapeField(t, err); f != "sampler_format" || ruleOf(t, err) != RuleSamplerFormatRequired {
		t.Fatalf("got %v", err)
	}
}

// unknownVarint appends an unknown varint field to m.
func unknownVarint(m proto.Message, num protowire.Number, v uint64) {
	r := m.ProtoReflect()
	u := protowire.AppendTag(bytes.Clone(r.GetUnknown()), num, protowire.VarintType)
	r.SetUnknown(protowire.AppendVarint(u, v))
}

// Unknown fields of the delta and of its head are kept byte for byte; those
// inside a kept value come from the base into the result.
func TestDeltaUnknownFields(t *testing.T) {
	base := validCheckpoint(t)
	unknownVarint(base.SamplerFormat, 7, 42)
	unknownVarint(base.OptimizerOpts[1].Value, 20, 1)
	base, err := Decode(mustEncode(t, base))
	if err != nil {
		t.Fatal(err)
	}
	next := nextOf(t, base)
	unknownVarint(next, 99, 5)
	unknownVarint(next.Progress, 50, 6)
	unknownVarint(next.Progress.TrialLog[2], 30, 8)
	d, err := NewDelta(base, next, 1)
	if err != nil {
		t.Fatal(err)
	}
	if d.GetKept()&(1<<12|1<<4) != 1<<12|1<<4 {
		t.Fatalf("kept %#x does not keep the sampler format and the options", d.GetKept())
	}
	unknownVarint(d, 6, 1)
	unknownVarint(d, 6, 2)
	back, _ := roundTripDelta(t, d)
	if !bytes.Equal(back.ProtoReflect().GetUnknown(), []byte{0x30, 1, 0x30, 2}) {
		t.Fatalf("the delta's unknown fields: %x", back.ProtoReflect().GetUnknown())
	}
	_, got, err := ApplyDelta(base, back)
	if err != nil {
		t.Fatal(err)
	}
	want := mustEncode(t, next)
	if !bytes.Equal(got, want) {
		t.Fatalf("applied bytes differ:\n got %x\nwant %x", got, want)
	}
	// A kept sampler format that now differs is not kept.
	next.SamplerFormat.Version = 2
	if d2, err := NewDelta(base, next, 1); err != nil || d2.GetKept()&(1<<12) != 0 || d2.GetHead().GetSamplerFormat().GetVersion() != 2 {
		t.Fatalf("changed sampler format: %v, kept %#x", err, d2.GetKept())
	}
}

// deltaRefusal checks that err is an *InvalidDelta of rule at path whose
// message ends with the rule.
func deltaRefusal(t *testing.T, err error, rule, path string) {
	t.Helper()
	var id *InvalidDelta
	if !errors.As(err, &id) {
		t.Fatalf("error %v (%T) is not an *InvalidDelta", err, err)
	}
	if id.Rule != rule || id.Path != path {
		t.Fatalf("rule %q at %q, want %q at %q: %v", id.Rule, id.Path, rule, path, err)
	}
	if !strings.HasPrefix(err.Error(), "delta_shape: "+path+": ") || strings.HasSuffix(err.Error(), " (rule "+rule+")") != (rule != "") {
		t.Fatalf("message %q", err.Error())
	}
}

// Each rule of §13.1 and §13.2, refused at its path by the reader, the
// writer and apply alike.
func TestDeltaRules(t *testing.T) {
	base := validCheckpoint(t)
	cases := []struct {
		name, rule, path string
		edit             func(d *v1.CheckpointDelta)
	}{
		{"format empty", RuleDeltaFormat, "format", func(d *v1.CheckpointDelta) { d.Format = "" }},
		{"format checkpoint", RuleDeltaFormat, "format", func(d *v1.CheckpointDelta) { d.Format = FormatV1 }},
		{"format major 2", RuleDeltaFormat, "format", func(d *v1.CheckpointDelta) { d.Format = "dsxir.optimizer_session.delta/v2.0" }},
		{"format leading zero", RuleDeltaFormat, "format", func(d *v1.CheckpointDelta) { d.Format = "dsxir.optimizer_session.delta/v1.01" }},
		{"format newline", RuleDeltaFormat, "format", func(d *v1.CheckpointDelta) { d.Format = DeltaFormatV1 + "\n" }},
		{"base generation", RuleDeltaBaseGeneration, "base_generation", func(d *v1.CheckpointDelta) { d.BaseGeneration = 0 }},
		{"no head", RuleDeltaHead, "head", func(d *v1.CheckpointDelta) { d.Head = nil }},
		{"kept bit 2", RuleDeltaKept, "kept", func(d *v1.CheckpointDelta) { d.Kept |= 1 << 2 }},
		{"kept bit 9", RuleDeltaKept, "kept", func(d *v1.CheckpointDelta) { d.Kept |= 1 << 9 }},
		{"kept bit 31", RuleDeltaKept, "kept", func(d *v1.CheckpointDelta) { d.Kept |= 1 << 31 }},
		{"kept in head", RuleDeltaKeptInHead, "head.optimizer_opts", func(d *v1.CheckpointDelta) {
			d.Head.SamplerBlob = []byte{1}
			d.Head.OptimizerOpts = base.OptimizerOpts
		}},
		{"kept in head, lowest", RuleDeltaKeptInHead, "head.trainset_hash", func(d *v1.CheckpointDelta) {
			d.Head.TerminalReason = base.TerminalReason
			d.Head.TrainsetHash = base.TrainsetHash
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			next := nextOf(t, base)
			d, err := NewDelta(base, next, 3)
			if err != nil {
				t.Fatal(err)
			}
			c.edit(d)
			_, err = EncodeDelta(d)
			deltaRefusal(t, err, c.rule, c.path)
			deltaRefusal(t, ValidateDelta(d), c.rule, c.path)
			_, _, err = ApplyDelta(base, d)
			deltaRefusal(t, err, c.rule, c.path)
			// The reader refuses the same bytes the same way.
			_, err = DecodeDelta(seal(marshal(t, d)))
			deltaRefusal(t, err, c.rule, c.path)
		})
	}
}

func TestApplyDeltaRules(t *testing.T) {
	base := validCheckpoint(t)
	next := nextOf(t, base)
	d, _ := deltaOf(t, base, next)

	other := proto.Clone(d).(*v1.CheckpointDelta)
	other.Head.SessionId = "s2"
	other.BaseTrials = 5 // the session comes first
	_, _, err := ApplyDelta(base, other)
	deltaRefusal(t, err, RuleDeltaSession, "head.session_id")

	trials := proto.Clone(d).(*v1.CheckpointDelta)
	trials.BaseTrials = 1
	_, _, err = ApplyDelta(base, trials)
	deltaRefusal(t, err, RuleDeltaBaseTrials, "base_trials")

	// The result's paths: the first appended entry is trial_log[2].
	idx := proto.Clone(d).(*v1.CheckpointDelta)
	idx.Head.Progress.TrialLog[0].TrialIdx = 0
	_, _, err = ApplyDelta(base, idx)
	if f := shapeField(t, err); f != "progress.trial_log[2].trial_idx" || ruleOf(t, err) != RuleTrialTrialIdx {
		t.Fatalf("got %v", err)
	}
	// A head without progress makes a checkpoint without one.
	noProgress := proto.Clone(d).(*v1.CheckpointDelta)
	noProgress.Head.Progress = nil
	_, _, err = ApplyDelta(base, noProgress)
	if f := shapeField(t, err); f != "progress" || ruleOf(t, err) != RuleProgressRequired {
		t.Fatalf("got %v", err)
	}
	// Counters are the head's: they must count the base's entries too.
	counters := proto.Clone(d).(*v1.CheckpointDelta)
	counters.Head.Progress.Completed = 1
	_, _, err = ApplyDelta(base, counters)
	if f := shapeField(t, err); f != "progress.completed" || ruleOf(t, err) != RuleCountersCompleted {
		t.Fatalf("got %v", err)
	}
	// The head is not checked by §7 on its own: a head whose options are
	// unsorted Terms is read, and refused only in the result.
	bad := proto.Clone(d).(*v1.CheckpointDelta)
	bad.Kept &^= 1 << 4
	bad.Head.OptimizerOpts = []*v1.OptionEntry{{Key: "k"}}
	b, err := EncodeDelta(bad)
	if err != nil {
		t.Fatalf("EncodeDelta refuses a head §7 would refuse: %v", err)
	}
	if _, err := DecodeDelta(b); err != nil {
		t.Fatal(err)
	}
	_, _, err = ApplyDelta(base, bad)
	if f := shapeField(t, err); f != "optimizer_opts[0].value" || ruleOf(t, err) != RuleOptimizerOptsValueRequired {
		t.Fatalf("got %v", err)
	}
	// A credential in the result is refused as Encode refuses it, with no rule.
	cred := proto.Clone(d).(*v1.CheckpointDelta)
	cred.Kept &^= 1 << 4
	cred.Head.OptimizerOpts = []*v1.OptionEntry{{Key: "api_key", Value: mustTerm(t, "sk-abcdefghijklmnopqrstuvwxyz0123456789")}}
	_, _, err = ApplyDelta(base, cred)
	if f := shapeField(t, err); f != "optimizer_opts[0].key" || ruleOf(t, err) != "" {
		t.Fatalf("got %v", err)
	}
	_, err = EncodeDelta(cred)
	var ic *InvalidCheckpoint
	if !errors.As(err, &ic) || ic.Path != "head.optimizer_opts[0].key" || ic.Rule != "" {
		t.Fatalf("EncodeDelta of a credential: %v", err)
	}
}

// deltaBody is the body of a delta with the given head body, hand-written.
func deltaBody(head []byte, rest ...byte) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, DeltaFormatV1)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendBytes(b, head)
	return append(b, rest...)
}

// The byte grammar with CheckpointDelta on top: the checkpoint's rules, at
// the delta's paths.
func TestDeltaGrammar(t *testing.T) {
	entry := []byte{0x08, 0x01, 0x20, 0x00} // trial_idx 1, status 0 written
	progress := protowire.AppendBytes([]byte{0x0a}, entry)
	head := protowire.AppendBytes([]byte{0x4a}, progress)
	cases := []struct {
		name       string
		in         []byte
		rule, path string
	}{
		{"empty", nil, RuleInputTrailer, InputPath},
		{"checksum", func() []byte { b := seal(deltaBody(nil)); b[0] ^= 1; return b }(), RuleInputChecksum, InputPath},
		{"too large", make([]byte, MaxInputSize+1), RuleInputTooLarge, InputPath},
		{"head entry default", seal(deltaBody(head)), RuleWireDefault, "head.progress.trial_log[0].status"},
		{"head truncated", seal(deltaBody([]byte{0x12, 0x05})), RuleWireTruncated, "head"},
		{"kept written as 0", seal(deltaBody(nil, 0x28, 0x00)), RuleWireDefault, "kept"},
		{"kept over uint32", seal(deltaBody(nil, 0x28, 0x80, 0x80, 0x80, 0x80, 0x10)), RuleWireRange, "kept"},
		{"base generation written as 0", seal([]byte{0x10, 0x00}), RuleWireDefault, "base_generation"},
		{"order", seal(append(deltaBody(nil), 0x10, 0x01)), RuleWireOrder, InputPath},
		{"head twice", seal(append(deltaBody(nil), 0x22, 0x00)), RuleWireOrder, InputPath},
		{"format not UTF-8", seal([]byte{0x0a, 0x01, 0xff}), RuleWireUTF8, "format"},
		{"trailer number", seal([]byte{0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00}), RuleWireTag, InputPath},
		// Grammar first: a delta with no head and an overlong varint is wire.varint.
		{"grammar before rules", seal([]byte{0x18, 0x81, 0x00}), RuleWireVarint, "base_trials"},
		{"rules after grammar", seal([]byte{0x0a, 0x01, 'x'}), RuleDeltaFormat, "format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeDelta(c.in)
			deltaRefusal(t, err, c.rule, c.path)
		})
	}
	// A checkpoint is not a delta, and a delta is not a checkpoint.
	cpBytes := mustEncode(t, validCheckpoint(t))
	if _, err := DecodeDelta(cpBytes); err == nil {
		t.Fatal("a checkpoint read as a delta")
	}
	base := validCheckpoint(t)
	_, db := deltaOf(t, base, nextOf(t, base))
	if _, err := Decode(db); err == nil {
		t.Fatal("a delta read as a checkpoint")
	}
}

// The weight limit counts the head's messages against the delta's length;
// EncodeDelta refuses what DecodeDelta refuses.
func TestDeltaWeight(t *testing.T) {
	// Empty trial entries (2 bytes each, weight 104) until the limit is passed.
	var entries []byte
	n := 0
	for {
		n++
		entries = append(entries, 0x0a, 0x00)
		size := len(entries) + 64 // about the rest of the delta
		if int64(n)*weightTrialLogEntry+2*weightMessage > WeightLimit(size)+1000 {
			break
		}
	}
	progress := protowire.AppendBytes([]byte{0x4a}, entries)
	in := seal(deltaBody(progress))
	_, err := DecodeDelta(in)
	deltaRefusal(t, err, RuleInputWeight, InputPath)

	d := &v1.CheckpointDelta{Format: DeltaFormatV1, BaseGeneration: 1, Head: &v1.Checkpoint{Progress: &v1.Progress{}}}
	for i := 0; i < n; i++ {
		d.Head.Progress.TrialLog = append(d.Head.Progress.TrialLog, &v1.TrialLogEntry{})
	}
	_, err = EncodeDelta(d)
	deltaRefusal(t, err, RuleInputWeight, InputPath)
	// Well under the limit, the same shape is read.
	d.Head.Progress.TrialLog = d.Head.Progress.TrialLog[:n/8]
	if _, err := EncodeDelta(d); err != nil {
		t.Fatal(err)
	}
}

// EncodeDelta names a string that is not UTF-8 where the reader would.
func TestEncodeDeltaUTF8(t *testing.T) {
	d := &v1.CheckpointDelta{Format: DeltaFormatV1, BaseGeneration: 1, Head: &v1.Checkpoint{
		Progress: &v1.Progress{TrialLog: []*v1.TrialLogEntry{{}, {CandidateId: str("\xff")}}},
	}}
	_, err := EncodeDelta(d)
	deltaRefusal(t, err, RuleWireUTF8, "head.progress.trial_log[1].candidate_id")
	d.Format = "\xfe"
	_, err = EncodeDelta(d)
	deltaRefusal(t, err, RuleWireUTF8, "format")
	if _, err := EncodeDelta(nil); err == nil {
		t.Fatal("nil delta encoded")
	}
}

// A nil element of a Go-built head has no encoding: EncodeDelta and
// ApplyDelta refuse it (no rule), naming it.
func TestDeltaNilElement(t *testing.T) {
	base := validCheckpoint(t)
	d := &v1.CheckpointDelta{Format: DeltaFormatV1, BaseGeneration: 1, BaseTrials: 2, Head: &v1.Checkpoint{
		SessionId: base.SessionId,
		Progress:  &v1.Progress{TrialLog: []*v1.TrialLogEntry{{TrialIdx: 2, Stats: &v1.TermMap{Entries: []*v1.TermMapEntry{nil}}}}},
	}}
	_, err := EncodeDelta(d)
	deltaRefusal(t, err, "", "head.progress.trial_log[0].stats.entries[0]")
	_, _, err = ApplyDelta(base, d)
	deltaRefusal(t, err, "", "head.progress.trial_log[0].stats.entries[0]")
	// A typed nil kind is no kind: written as an empty Term, screened as read.
	d.Head.Progress.TrialLog[0].Stats = nil
	d.Head.TerminalReason = &v1.Term{Kind: (*v1.Term_ListValue)(nil)}
	b, err := EncodeDelta(d)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeDelta(b)
	if err != nil || back.GetHead().GetTerminalReason() == nil || back.GetHead().GetTerminalReason().GetKind() != nil {
		t.Fatalf("read back: %v %v", err, back)
	}
}

// NewDelta refuses a new checkpoint whose trial log does not extend the base's.
func TestNewDeltaNotAnExtension(t *testing.T) {
	base := validCheckpoint(t)
	next := nextOf(t, base)
	next.Progress.TrialLog[1].DurationMs = 5
	if _, err := NewDelta(base, next, 1); err == nil {
		t.Fatal("accepted a rewritten trial log")
	}
	if _, err := NewDelta(next, base, 1); err == nil {
		t.Fatal("accepted a shorter trial log")
	}
	if _, err := NewDelta(base, nextOf(t, base), 0); err == nil {
		t.Fatal("accepted base generation 0")
	}
}
