package checkpoint

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestCRC32C(t *testing.T) {
	if got := crc32c([]byte("123456789")); got != 0xE3069283 {
		t.Fatalf("CRC-32C of 123456789: %08x", got)
	}
	b := seal([]byte{1, 2, 3})
	if !bytes.Equal(b[3:8], []byte{0xfd, 0xff, 0xff, 0xff, 0x0f}) || binary.LittleEndian.Uint32(b[8:]) != crc32c([]byte{1, 2, 3}) {
		t.Fatalf("trailer %x", b)
	}
}

// Every prefix and every single-bit flip of a valid checkpoint is refused,
// by the trailer or the checksum (FORMAT.md §2.1).
func TestTrailerPrefixesAndBitFlips(t *testing.T) {
	good, err := Encode(validCheckpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(good); err != nil {
		t.Fatal(err)
	}
	n := len(good)
	for i := 0; i < n; i++ {
		_, err := Decode(good[:i])
		if err == nil {
			t.Fatalf("prefix of %d bytes accepted", i)
		}
		if r := ruleOf(t, err); (r != RuleInputTrailer && r != RuleInputChecksum) || shapeField(t, err) != InputPath {
			t.Fatalf("prefix of %d bytes: %v", i, err)
		}
	}
	in := bytes.Clone(good)
	for i := 0; i < n; i++ {
		for bit := 0; bit < 8; bit++ {
			in[i] ^= 1 << bit
			_, err := Decode(in)
			in[i] ^= 1 << bit
			want := RuleInputChecksum
			if i >= n-TrailerSize && i < n-4 {
				want = RuleInputTrailer
			}
			if err == nil || ruleOf(t, err) != want || shapeField(t, err) != InputPath {
				t.Fatalf("bit %d of byte %d flipped: %v, want %s", bit, i, err, want)
			}
		}
	}
}

// lenField is field num (wire type LEN) holding content.
func lenField(num protowire.Number, content []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), content)
}

func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// fieldsOf returns the canonical bytes of each set field of m, by number.
func fieldsOf(t *testing.T, m proto.Message) map[protowire.Number][]byte {
	t.Helper()
	out := map[protowire.Number][]byte{}
	r := m.ProtoReflect()
	r.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		single := r.New()
		single.Set(fd, v)
		out[fd.Number()] = marshal(t, single.Interface())
		return true
	})
	return out
}

// bodyWith is the body of m with field num's bytes replaced by raw (nil
// drops the field), fields in number order.
func bodyWith(t *testing.T, m proto.Message, num protowire.Number, raw []byte) []byte {
	t.Helper()
	fields := fieldsOf(t, m)
	fields[num] = raw
	var out []byte
	for n := protowire.Number(1); n < 64; n++ {
		out = append(out, fields[n]...)
	}
	return out
}

// base is the valid checkpoint the wire cases edit: no terminal reason and
// a higher direction, so its body ends with status (13).
func base(t *testing.T) *v1.Checkpoint {
	cp := validCheckpoint(t)
	cp.TerminalReason = nil
	return cp
}

func TestWireRules(t *testing.T) {
	cp := base(t)
	body := marshal(t, cp)
	plus := func(suffix ...byte) []byte { return cat(body, suffix) }
	term := func(content ...byte) []byte { return plus(lenField(14, content)...) }
	// Progress with trial_log[1] replaced.
	progressWith := func(entry1 []byte) []byte {
		pr := cp.Progress
		rest := proto.Clone(pr).(*v1.Progress)
		rest.TrialLog = nil
		p := cat(lenField(1, marshal(t, pr.TrialLog[0])), lenField(1, entry1), marshal(t, rest))
		return bodyWith(t, cp, 9, lenField(9, p))
	}
	sampler := func(content []byte) []byte { return bodyWith(t, cp, 12, lenField(12, content)) }
	ts := func(num protowire.Number, content []byte) []byte { return bodyWith(t, cp, num, lenField(num, content)) }
	entry1 := marshal(t, cp.Progress.TrialLog[1])
	tenBytes := func(last byte) []byte {
		return append(bytes.Repeat([]byte{0xff}, 9), last)
	}

	cases := []struct {
		name       string
		body       []byte
		rule, path string
	}{
		{"tag cut short", plus(0x80), RuleWireTruncated, InputPath},
		{"tag not minimal", plus(0xf0, 0x00, 0x01), RuleWireVarint, InputPath},
		{"tag of 2^32", plus(0x80, 0x80, 0x80, 0x80, 0x10, 0x01), RuleWireVarint, InputPath},
		{"field 0", plus(0x02, 0x00), RuleWireTag, InputPath},
		{"trailer number in the body", plus(0xfd, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0), RuleWireTag, InputPath},
		{"group", plus(0x83, 0x01), RuleWireTag, InputPath},
		{"end group", plus(0x84, 0x01), RuleWireTag, InputPath},
		{"wire type 6", plus(0x86, 0x01), RuleWireTag, InputPath},
		{"wire type 7", plus(0x87, 0x01), RuleWireTag, InputPath},
		{"decreasing number", plus(lenField(12, marshal(t, cp.SamplerFormat))...), RuleWireOrder, InputPath},
		{"singular field twice", plus(0x68, 0x01), RuleWireOrder, InputPath},
		{"unknown field twice with two wire types", plus(cat(varintField(16, 1), []byte{0x85, 0x01, 0, 0, 0, 0})...), RuleWireOrder, InputPath},
		{"known field, wrong wire type", plus(0x70, 0x01), RuleWireTag, InputPath},
		{"enum as LEN", plus(0x7a, 0x00), RuleWireTag, InputPath},
		{"order before wire type", plus(0x6a, 0x00), RuleWireOrder, InputPath},
		{"two kinds", term(0x10, 0x01, 0x18, 0x02), RuleWireOneof, "terminal_reason"},
		{"unknown field cut short in a Term", term(0x10, 0x01, 0x65, 0x00), RuleWireTruncated, "terminal_reason"},
		{"only an unknown field in a Term", term(0x60, 0x01), RuleTermKind, "terminal_reason"},
		{"the same kind twice", term(0x10, 0x01, 0x10, 0x01), RuleWireOrder, "terminal_reason"},
		{"value cut short", plus(0x78, 0x80), RuleWireTruncated, InputPath},
		{"value not minimal", plus(0x78, 0x81, 0x00), RuleWireVarint, "direction"},
		{"value over 64 bits", plus(append([]byte{0x78}, tenBytes(0x02)...)...), RuleWireVarint, "direction"},
		{"eleven bytes", plus(append([]byte{0x78}, tenBytes(0x81)...)...), RuleWireVarint, "direction"},
		{"length not minimal", plus(0x72, 0x80, 0x00), RuleWireVarint, "terminal_reason"},
		{"length past the end", plus(0x72, 0x05, 0x10), RuleWireTruncated, InputPath},
		{"length cut short", plus(0x72, 0x80), RuleWireTruncated, InputPath},
		{"double cut short", term(0x29, 0, 0), RuleWireTruncated, "terminal_reason"},
		{"unknown varint not minimal", plus(0x80, 0x01, 0x80, 0x00), RuleWireVarint, InputPath},
		{"unknown length past the end", plus(0x82, 0x01, 0x02, 0x00), RuleWireTruncated, InputPath},
		{"unknown I64 cut short", plus(0x81, 0x01, 0, 0, 0), RuleWireTruncated, InputPath},
		{"bool 2", term(0x10, 0x02), RuleWireRange, "terminal_reason.bool_value"},
		{"enum 2^31", plus(append([]byte{0x78}, protowire.AppendVarint(nil, 1<<31)...)...), RuleWireRange, "direction"},
		{"enum 2^64-2^31-1", plus(append([]byte{0x78}, protowire.AppendVarint(nil, 1<<64-1<<31-1)...)...), RuleWireRange, "direction"},
		{"uint32 2^32", sampler(cat([]byte{0x0a, 0x01, 'm'}, varintField(2, 1<<32))), RuleWireRange, "sampler_format.version"},
		{"version 0 written", sampler([]byte{0x0a, 0x01, 'm', 0x10, 0x00}), RuleWireDefault, "sampler_format.version"},
		{"empty module written", sampler([]byte{0x0a, 0x00, 0x10, 0x01}), RuleWireDefault, "sampler_format.module"},
		{"surrogate", term(0x32, 0x03, 0xed, 0xa0, 0x80), RuleWireUTF8, "terminal_reason.string_value"},
		{"overlong UTF-8", term(0x42, 0x02, 0xc0, 0x80), RuleWireUTF8, "terminal_reason.atom_value"},
		{"above U+10FFFF", term(0x32, 0x04, 0xf4, 0x90, 0x80, 0x80), RuleWireUTF8, "terminal_reason.string_value"},
		{"status 0 written", bodyWith(t, cp, 13, varintField(13, 0)), RuleWireDefault, "status"},
		{"nanos 0 written", ts(8, cat(varintField(1, 1700000100), varintField(2, 0))), RuleWireDefault, "updated_at.nanos"},
		{"nanos over int32", ts(7, cat(varintField(1, 1), varintField(2, 1<<31))), RuleWireRange, "created_at.nanos"},
		{"timestamp fields out of order", ts(7, cat(varintField(2, 1), varintField(1, 1))), RuleWireOrder, "created_at"},
		{"empty session id written", bodyWith(t, cp, 2, lenField(2, nil)), RuleWireDefault, "session_id"},
		{"in a trial", progressWith(cat(entry1, []byte{0x20, 0x02})), RuleWireOrder, "progress.trial_log[1]"},
		{"trial status 0", progressWith(cat(varintField(1, 1), varintField(4, 0))), RuleWireDefault, "progress.trial_log[1].status"},
		{"trial_idx 0 written", progressWith(cat(varintField(1, 0), varintField(4, 2))), RuleWireDefault, "progress.trial_log[1].trial_idx"},
		{"in a stats key", progressWith(cat(varintField(1, 1), varintField(4, 2),
			lenField(5, lenField(1, cat(lenField(1, []byte{0x10, 0x01, 0x10, 0x00}), lenField(2, []byte{0x10, 0x01})))))),
			RuleWireOrder, "progress.trial_log[1].stats.entries[0].key"},
		{"in an option's list", bodyWith(t, cp, 4, cat(lenField(4, marshal(t, cp.OptimizerOpts[0])),
			lenField(4, cat([]byte{0x0a, 0x01, 'k'}, lenField(2, lenField(9, cat(lenField(1, []byte{0x10, 0x01}), lenField(1, []byte{0x10, 0x05})))))))),
			RuleWireRange, "optimizer_opts[1].value.list_value.items[1].bool_value"},
		{"map entry twice a key", bodyWith(t, cp, 10, lenField(10, lenField(1, cat(lenField(1, []byte{0x10, 0x01}), lenField(1, []byte{0x10, 0x01}))))),
			RuleWireOrder, "best_program_artifact.entries[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(seal(c.body))
			if err == nil {
				t.Fatalf("accepted %x", c.body)
			}
			if r, p := ruleOf(t, err), shapeField(t, err); r != c.rule || p != c.path {
				t.Fatalf("%s at %s, want %s at %s: %v", r, p, c.rule, c.path, err)
			}
			if !strings.HasSuffix(err.Error(), " (rule "+c.rule+")") {
				t.Fatalf("message %q", err.Error())
			}
		})
	}
}

// What the grammar accepts besides the writer's own output: unknown fields
// of every wire type, never looked into, kept byte for byte where they stood.
func TestUnknownFieldsKept(t *testing.T) {
	cp := base(t)
	stamp := cat(varintField(1, 1700000000), varintField(2, 5), varintField(3, 0), lenField(4, []byte{0xff, 0xff}))
	entry := cat(marshal(t, cp.Progress.TrialLog[1]), lenField(9, []byte{0x0b, 0x0c}), varintField(10, 0))
	rest := proto.Clone(cp.Progress).(*v1.Progress)
	rest.TrialLog = nil
	progress := cat(lenField(1, marshal(t, cp.Progress.TrialLog[0])), lenField(1, entry), marshal(t, rest),
		[]byte{0x45, 1, 2, 3, 4}, []byte{0x49, 1, 2, 3, 4, 5, 6, 7, 8})
	fields := fieldsOf(t, cp)
	fields[7] = lenField(7, stamp)
	fields[9] = lenField(9, progress)
	var in []byte
	for n := protowire.Number(1); n < 16; n++ {
		in = append(in, fields[n]...)
	}
	in = cat(in, varintField(16, 3), varintField(16, 4), lenField(17, []byte{0xff}), []byte{0x95, 0x01, 0, 0, 0, 0})
	got := mustRoundTrip(t, seal(in))
	if got.GetCreatedAt().GetNanos() != 5 || len(got.GetCreatedAt().ProtoReflect().GetUnknown()) == 0 {
		t.Fatalf("created_at %v", got.GetCreatedAt())
	}
}

// The writer checks its own bytes by the grammar: unknown fields set in Go
// that break it are refused with the grammar's rule.
func TestEncodeChecksItsBytes(t *testing.T) {
	cp := validCheckpoint(t)
	cp.ProtoReflect().SetUnknown(protoreflect.RawFields{0x0b})
	if _, err := Encode(cp); ruleOf(t, err) != RuleWireTag || invalidPath(t, err) != InputPath {
		t.Fatalf("group in unknown fields: %v", err)
	}
	cp = validCheckpoint(t)
	cp.Progress.StartedAt.ProtoReflect().SetUnknown(protoreflect.RawFields{0x08, 0x01})
	if _, err := Encode(cp); ruleOf(t, err) != RuleWireOrder || invalidPath(t, err) != "progress.started_at" {
		t.Fatalf("seconds written twice: %v", err)
	}
	cp = validCheckpoint(t)
	cp.TerminalReason.ProtoReflect().SetUnknown(protoreflect.RawFields{0x60, 0x80, 0x00})
	if _, err := Encode(cp); ruleOf(t, err) != RuleWireVarint || invalidPath(t, err) != "terminal_reason" {
		t.Fatalf("an unknown varint that is not minimal: %v", err)
	}
}

// A Term keeps an unknown field beside its kind (a field of a later
// version; it is no second kind).
func TestTermUnknownFieldKept(t *testing.T) {
	cp := base(t)
	b := seal(cat(marshal(t, cp), lenField(14, []byte{0x10, 0x01, 0x60, 0x07})))
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := Encode(got); err != nil || !bytes.Equal(out, b) {
		t.Fatalf("re-encoding %x (%v), want %x", out, err, b)
	}
}

func TestEncodeSizeLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 256 MiB")
	}
	cp := validCheckpoint(t)
	cp.SamplerBlob = make([]byte, MaxInputSize-8)
	_, err := Encode(cp)
	if ruleOf(t, err) != RuleInputTooLarge || invalidPath(t, err) != InputPath {
		t.Fatalf("%v", err)
	}
}

// The weights of FORMAT.md §2.4, counted by hand for validCheckpoint.
func TestWeightOfAKnownCheckpoint(t *testing.T) {
	w, err := scanBody(marshal(t, validCheckpoint(t)))
	if err != nil {
		t.Fatal(err)
	}
	// options 3 x (entry + Term); created_at, updated_at, progress; 2 trials;
	// stats (map, 2 x (entry, key, value)); error (map, 1 entry); started_at;
	// artifact (map; entry, key, value; entry, key, value, list);
	// sampler_format; terminal_reason (Term, list, atom Term, nil Term, TermNull).
	want := int64(3*96 + 3*48 + 2*104 + (48 + 2*144) + (48 + 144) + 48 + (48 + 144 + 192) + 48 + (48 + 48 + 48 + 48 + 8))
	if w != want {
		t.Fatalf("weight %d, want %d", w, want)
	}
}

// A log of empty trials (2 bytes, weight 104 each) just under and just
// over the weight limit.
func TestWeightLimit(t *testing.T) {
	cp := base(t)
	cp.Progress = &v1.Progress{StartedAt: &timestamppb.Timestamp{Seconds: 1}}
	body0 := marshal(t, cp)
	w0, serr := scanBody(body0)
	if serr != nil {
		t.Fatal(serr)
	}
	progress := marshal(t, cp.Progress)
	build := func(n int) []byte {
		p := make([]byte, 0, 2*n+len(progress))
		for i := 0; i < n; i++ {
			p = append(p, 0x0a, 0x00)
		}
		p = append(p, progress...)
		return seal(bodyWith(t, cp, 9, lenField(9, p)))
	}
	// Each trial adds 2 bytes (plus at most 3 of the progress length) and
	// weight 104; find the largest n that stays within the limit.
	n := int((int64(weightFactor*(len(body0)+TrailerSize)) + weightBase - w0) / (104 - 2*weightFactor))
	for {
		in := build(n + 1)
		if w0+104*int64(n+1) > WeightLimit(len(in)) {
			break
		}
		n++
	}
	under := build(n)
	if w0+104*int64(n) > WeightLimit(len(under)) {
		t.Fatalf("n=%d is over the limit", n)
	}
	_, err := Decode(under)
	if r := ruleOf(t, err); r != RuleTrialStatus {
		t.Fatalf("%d empty trials: %v, want the trial status check after the grammar", n, err)
	}
	_, err = Decode(build(n + 1))
	if ruleOf(t, err) != RuleInputWeight || shapeField(t, err) != InputPath {
		t.Fatalf("%d empty trials: %v, want input.weight", n+1, err)
	}
}

func TestWeightLimitFormula(t *testing.T) {
	for _, c := range []struct{ size, want int64 }{{0, 50331648}, {100, 700 + 50331648}, {268435456, 7*268435456 + 50331648}} {
		if got := WeightLimit(int(c.size)); got != c.want {
			t.Errorf("WeightLimit(%d) = %d, want %d", c.size, got, c.want)
		}
	}
}

// A log of empty trials whose weight is exactly the limit, the input's
// length tuned by the sampler blob (which weighs nothing): accepted by the
// grammar; one byte shorter (the limit 7 lower), refused.
func TestWeightExactlyAtTheLimit(t *testing.T) {
	cp := base(t)
	cp.Progress = &v1.Progress{StartedAt: &timestamppb.Timestamp{Seconds: 1}}
	cp.SamplerBlob = []byte("x")
	w0, serr := scanBody(marshal(t, cp))
	if serr != nil {
		t.Fatal(serr)
	}
	progress := marshal(t, cp.Progress)
	build := func(n, blob int) []byte {
		p := make([]byte, 0, 2*n+len(progress))
		for i := 0; i < n; i++ {
			p = append(p, 0x0a, 0x00)
		}
		p = append(p, progress...)
		cp.SamplerBlob = bytes.Repeat([]byte("x"), blob)
		return seal(bodyWith(t, cp, 9, lenField(9, p)))
	}
	n := int((weightBase-w0)/(104-2*weightFactor)) - 40
	blob := 0
	for {
		excess := w0 + 104*int64(n) - weightBase
		if excess%weightFactor == 0 {
			blob = int(excess/weightFactor) - len(build(n, 1)) + 1
			if blob > 127 {
				t.Fatalf("the search started past the limit (n=%d, blob=%d)", n, blob)
			}
			if blob >= 2 {
				break
			}
		}
		n++
	}
	at, shorter := build(n, blob), build(n, blob-1)
	weight := w0 + 104*int64(n)
	if weight != WeightLimit(len(at)) || len(shorter) != len(at)-1 || weight != WeightLimit(len(shorter))+weightFactor {
		t.Fatalf("n=%d blob=%d: weight %d, limits %d and %d", n, blob, weight, WeightLimit(len(at)), WeightLimit(len(shorter)))
	}
	_, err := Decode(at)
	if r := ruleOf(t, err); r != RuleTrialStatus {
		t.Fatalf("weight at the limit: %v, want the trial status check after the grammar", err)
	}
	_, err = Decode(shorter)
	if ruleOf(t, err) != RuleInputWeight || shapeField(t, err) != InputPath {
		t.Fatalf("one byte shorter: %v, want input.weight", err)
	}
	want := "weight " + strconv.FormatInt(weight, 10) + " is over the limit of " + strconv.FormatInt(weight-weightFactor, 10)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("one byte shorter: %q does not say %q", err.Error(), want)
	}
}

// BenchmarkDecode decodes a checkpoint of 10,000 trials with five float
// statistics each; BenchmarkScan runs the grammar alone on the same bytes.
func benchInput(b *testing.B) []byte {
	b.Helper()
	cp := &v1.Checkpoint{
		Format: FormatV1, SessionId: "s", Optimizer: "o", TrainsetHash: make([]byte, 32),
		CreatedAt: &timestamppb.Timestamp{Seconds: 1}, UpdatedAt: &timestamppb.Timestamp{Seconds: 1},
		Progress:      &v1.Progress{StartedAt: &timestamppb.Timestamp{Seconds: 1}},
		SamplerFormat: &v1.SamplerFormat{Module: "m", Version: 1}, Status: v1.SessionStatus_SESSION_STATUS_RUNNING,
	}
	for i := 0; i < 10000; i++ {
		stats, err := ToTerm(Map{{"a", 0.5}, {"b", 1.5}, {"c", 2.5}, {"d", 3.5}, {"e", float64(i)}})
		if err != nil {
			b.Fatal(err)
		}
		cp.Progress.TrialLog = append(cp.Progress.TrialLog, &v1.TrialLogEntry{TrialIdx: uint64(i), Score: f64(float64(i)),
			Status: v1.TrialStatus_TRIAL_STATUS_OK, Stats: stats.GetMapValue(), DurationMs: 1000})
		cp.Progress.Completed++
		cp.Progress.Attempts++
	}
	out, err := Encode(cp)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

func BenchmarkDecode(b *testing.B) {
	in := benchInput(b)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Decode(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScan(b *testing.B) {
	in := benchInput(b)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := checkGrammar(in); err != nil {
			b.Fatal(err)
		}
	}
}
