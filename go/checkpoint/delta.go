package checkpoint

import (
	"bytes"
	"regexp"
	"sort"
	"strconv"
	"unicode/utf8"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Checkpoint deltas (FORMAT.md §13): what one commit adds to a checkpoint,
// its base. A delta is sealed and scanned as a checkpoint is (the trailer,
// the grammar with CheckpointDelta as the top-level message, the size and
// weight limits), then checked by the rules of §13.1; ApplyDelta makes the
// new checkpoint of §13.2.

const (
	// DeltaFormatV1 is the delta format identifier this package writes
	// (FORMAT.md §13); readers accept any v1 minor.
	DeltaFormatV1 = "dsxir.optimizer_session.delta/v1.0"
	// ReasonDeltaShape is the kind of a refusal of a delta (*InvalidDelta).
	ReasonDeltaShape = "delta_shape"
	// DeltaKeptMask is the set of Checkpoint fields a delta may keep from its
	// base, as kept's bits (bit n for field n): fields 3-7 and 10-15.
	DeltaKeptMask uint32 = 0xFCF8
)

var (
	// deltaSchema is the field table of CheckpointDelta and every message below it.
	deltaSchema = buildSchema((&v1.CheckpointDelta{}).ProtoReflect().Descriptor(), map[protoreflect.FullName]*messageInfo{})

	deltaFormatPattern = regexp.MustCompile(`^dsxir\.optimizer_session\.delta/v1\.(0|[1-9][0-9]*)$`)

	checkpointFields = (&v1.Checkpoint{}).ProtoReflect().Descriptor().Fields()
	progressNumber   = checkpointFields.ByName("progress").Number()
	trialLogNumber   = (&v1.Progress{}).ProtoReflect().Descriptor().Fields().ByName("trial_log").Number()
)

// InvalidDelta reports delta bytes or a delta that break a rule of FORMAT.md
// §13 or of the byte grammar (§2), or a delta that does not apply to its
// base (§13.2). Path names the offending field or message ("head.session_id",
// "head.progress.trial_log[0].status", "<input>"), Detail says what is wrong
// and Rule is the id of the rule it breaks (delta_rules.go, or an input.*,
// wire.* or term.depth id of rules.go); Rule is "" for an argument that
// breaks no rule (a nil delta).
type InvalidDelta struct {
	Path   string
	Detail string
	Rule   string
}

// Error reads "delta_shape: <path>: <detail> (rule <id>)", without the
// parenthesis when Rule is "".
func (e *InvalidDelta) Error() string {
	return ReasonDeltaShape + ": " + e.Path + ": " + e.Detail + ruleSuffix(e.Rule)
}

func invalidDelta(rule, path, detail string) *InvalidDelta {
	return &InvalidDelta{Path: path, Detail: detail, Rule: rule}
}

// asDelta turns a refusal of the byte grammar into a refusal of the delta.
func asDelta(err *InvalidCheckpoint) *InvalidDelta {
	return &InvalidDelta{Path: err.Path, Detail: err.Detail, Rule: err.Rule}
}

// DecodeDelta reads delta bytes (FORMAT.md §13.1): the size limit, the
// checksum trailer, the byte grammar of §2 with CheckpointDelta as the
// top-level message (paths below the head read "head." and the checkpoint's
// path), the weight limit, then the rules of §13.1 in their order. A refusal
// is an *InvalidDelta. The head is not checked by the rules of §7: what
// counts is the checkpoint ApplyDelta makes. Unknown fields are kept, and
// EncodeDelta(DecodeDelta(b)) is b for every b it accepts.
func DecodeDelta(data []byte) (*v1.CheckpointDelta, error) {
	body, gerr := checkGrammarOf(deltaSchema, data)
	if gerr != nil {
		return nil, asDelta(gerr)
	}
	d := &v1.CheckpointDelta{}
	if err := (proto.UnmarshalOptions{}).Unmarshal(body, d); err != nil {
		// Bytes that pass the grammar always parse; a failure here is a bug
		// of this package, reported as the closest rule.
		return nil, invalidDelta(RuleWireTruncated, InputPath, "the protobuf runtime cannot parse bytes the grammar accepts: "+parseError(err))
	}
	if err := checkDelta(d); err != nil {
		return nil, err
	}
	return d, nil
}

// EncodeDelta returns the canonical bytes of d (FORMAT.md §13, §2.5): known
// fields in number order, then the unknown fields it was read with, then the
// checksum trailer. It refuses, with an *InvalidDelta, exactly what
// DecodeDelta refuses (the grammar, the size and weight limits, the rules of
// §13.1), so the bytes it writes are always read back; then it screens the
// head for credentials as Encode screens a checkpoint (FORMAT.md §10), a
// refusal that is an *InvalidCheckpoint with a "head." path and no rule.
func EncodeDelta(d *v1.CheckpointDelta) ([]byte, error) {
	if d == nil {
		return nil, invalidDelta("", InputPath, "no delta")
	}
	if p := firstNilElement(d.ProtoReflect(), ""); p != "" {
		return nil, invalidDelta("", p, "missing element (a nil element has no encoding)")
	}
	size := marshalOptions.Size(d)
	if size+TrailerSize > MaxInputSize {
		return nil, invalidDelta(RuleInputTooLarge, InputPath, "the delta would be "+strconv.Itoa(size+TrailerSize)+" bytes, more than the limit of "+strconv.Itoa(MaxInputSize))
	}
	b, err := proto.MarshalOptions{Deterministic: true, UseCachedSize: true}.MarshalAppend(make([]byte, 0, size+TrailerSize), d)
	if err != nil {
		// The Go runtime refuses to write a string that is not UTF-8; name it
		// as the grammar would.
		if bad := firstBadString(d.ProtoReflect(), ""); bad != "" {
			return nil, invalidDelta(RuleWireUTF8, bad, "not well-formed UTF-8")
		}
		return nil, invalidDelta("", InputPath, "cannot encode: "+parseError(err))
	}
	if len(b)+TrailerSize > MaxInputSize {
		return nil, invalidDelta(RuleInputTooLarge, InputPath, "the delta would be "+strconv.Itoa(len(b)+TrailerSize)+" bytes, more than the limit of "+strconv.Itoa(MaxInputSize))
	}
	if gerr := checkBodyOf(deltaSchema, b, len(b)+TrailerSize); gerr != nil {
		return nil, asDelta(gerr)
	}
	if err := checkDelta(d); err != nil {
		return nil, err
	}
	// A writer screens what it writes (FORMAT.md §10), the head as a
	// checkpoint: the head as a reader reads it back from these bytes, so
	// that a Go-built value the bytes do not hold (a typed nil) is not looked
	// into.
	written := &v1.CheckpointDelta{}
	if err := (proto.UnmarshalOptions{}).Unmarshal(b, written); err != nil {
		return nil, invalidDelta("", InputPath, "cannot read the bytes written: "+parseError(err))
	}
	if cerr := (&credentialWalk{}).checkpoint(written.GetHead()); cerr != nil {
		return nil, invalid(cerr.Rule, "head."+cerr.Path, cerr.Detail)
	}
	return appendTrailer(b), nil
}

// ValidateDelta applies the rules of FORMAT.md §13.1 that follow the byte
// grammar to d, in their order, and returns the first failure as an
// *InvalidDelta, or nil.
func ValidateDelta(d *v1.CheckpointDelta) error {
	if err := checkDelta(d); err != nil {
		return err
	}
	return nil
}

// checkDelta applies the rules of §13.1 in their order.
func checkDelta(d *v1.CheckpointDelta) *InvalidDelta {
	if d == nil {
		return invalidDelta("", InputPath, "no delta")
	}
	if !deltaFormatPattern.MatchString(d.GetFormat()) {
		return invalidDelta(RuleDeltaFormat, "format", "wrong delta format "+strconv.Quote(d.GetFormat())+", want dsxir.optimizer_session.delta/v1.<minor>")
	}
	if d.GetBaseGeneration() == 0 {
		return invalidDelta(RuleDeltaBaseGeneration, "base_generation", "the base generation is 0")
	}
	head := d.GetHead()
	if head == nil {
		return invalidDelta(RuleDeltaHead, "head", "missing head")
	}
	kept := d.GetKept()
	if extra := kept &^ DeltaKeptMask; extra != 0 {
		return invalidDelta(RuleDeltaKept, "kept", "bits 0x"+strconv.FormatUint(uint64(extra), 16)+" are outside the fields a delta may keep (mask 0xfcf8)")
	}
	hm := head.ProtoReflect()
	for n := 0; n < 32; n++ {
		if kept&(1<<n) == 0 {
			continue
		}
		fd := checkpointFields.ByNumber(protoreflect.FieldNumber(n))
		if hm.Has(fd) {
			return invalidDelta(RuleDeltaKeptInHead, "head."+string(fd.Name()), "the head holds field "+strconv.Itoa(n)+", which the delta keeps from the base")
		}
	}
	return nil
}

// ApplyDelta makes the checkpoint that delta makes of base (FORMAT.md
// §13.2), with its canonical bytes (what Encode writes). base must be a valid
// checkpoint (as Decode returns it); delta is checked by the rules of §13.1.
// It refuses with an *InvalidDelta when the delta breaks a rule of §13.1,
// when head.session_id is not the base's (delta.session) or base_trials is
// not the length of the base's trial log (delta.base_trials). The new
// checkpoint is the head, with each field kept set to the base's (absent
// when the base's is, unknown fields inside it included) and, when the head
// has a progress, the base's trial entries before the head's. It is then
// checked as a reader checks its bytes (the size, the grammar and the weight
// limit, then every rule of §7) and screened as Encode screens (FORMAT.md
// §10); a refusal of it is a *ResumeMismatch of reason "checkpoint_shape"
// with the new checkpoint's paths (Rule "" for a credential). Neither base
// nor delta is modified, and the result shares no message with them.
func ApplyDelta(base *v1.Checkpoint, delta *v1.CheckpointDelta) (*v1.Checkpoint, []byte, error) {
	if base == nil {
		return nil, nil, invalid("", InputPath, "no base checkpoint")
	}
	if err := checkDelta(delta); err != nil {
		return nil, nil, err
	}
	if p := firstNilElement(delta.ProtoReflect(), ""); p != "" {
		return nil, nil, invalidDelta("", p, "missing element (a nil element has no encoding)")
	}
	head := delta.GetHead()
	if head.GetSessionId() != base.GetSessionId() {
		return nil, nil, invalidDelta(RuleDeltaSession, "head.session_id", "session "+strconv.Quote(head.GetSessionId())+" is not the base's "+strconv.Quote(base.GetSessionId()))
	}
	baseLog := base.GetProgress().GetTrialLog()
	if delta.GetBaseTrials() != uint64(len(baseLog)) {
		return nil, nil, invalidDelta(RuleDeltaBaseTrials, "base_trials", "is "+strconv.FormatUint(delta.GetBaseTrials(), 10)+", the base's trial log has "+strconv.Itoa(len(baseLog))+" entries")
	}
	out := proto.Clone(head).(*v1.Checkpoint)
	om, bm := out.ProtoReflect(), base.ProtoReflect()
	for n := 0; n < 32; n++ {
		if delta.GetKept()&(1<<n) == 0 {
			continue
		}
		fd := checkpointFields.ByNumber(protoreflect.FieldNumber(n))
		if !bm.Has(fd) {
			om.Clear(fd)
			continue
		}
		v := bm.Get(fd)
		switch {
		case fd.IsList():
			dst, src := om.Mutable(fd).List(), v.List()
			for i := 0; i < src.Len(); i++ {
				dst.Append(protoreflect.ValueOfMessage(proto.Clone(src.Get(i).Message().Interface()).ProtoReflect()))
			}
		case fd.Message() != nil:
			om.Set(fd, protoreflect.ValueOfMessage(proto.Clone(v.Message().Interface()).ProtoReflect()))
		case fd.Kind() == protoreflect.BytesKind:
			om.Set(fd, protoreflect.ValueOfBytes(bytes.Clone(v.Bytes())))
		default:
			om.Set(fd, v)
		}
	}
	if out.Progress != nil {
		appended := out.Progress.TrialLog
		log := make([]*v1.TrialLogEntry, 0, len(baseLog)+len(appended))
		for _, e := range baseLog {
			log = append(log, proto.Clone(e).(*v1.TrialLogEntry))
		}
		out.Progress.TrialLog = append(log, appended...)
	}
	b, err := sealResult(out)
	if err != nil {
		return nil, nil, shape(out.GetSessionId(), err)
	}
	return out, b, nil
}

// sealResult writes the checkpoint a delta makes, refusing it in a reader's
// order (FORMAT.md §7): the size, the grammar and the weight of its bytes,
// then the rules of §7, then the credential screen of a writer (§10).
func sealResult(cp *v1.Checkpoint) ([]byte, *InvalidCheckpoint) {
	size := marshalOptions.Size(cp)
	if size+TrailerSize > MaxInputSize {
		return nil, invalid(RuleInputTooLarge, InputPath, "the checkpoint would be "+strconv.Itoa(size+TrailerSize)+" bytes, more than the limit of "+strconv.Itoa(MaxInputSize))
	}
	b, err := proto.MarshalOptions{Deterministic: true, UseCachedSize: true}.MarshalAppend(make([]byte, 0, size+TrailerSize), cp)
	if err != nil {
		if bad := firstBadString(cp.ProtoReflect(), ""); bad != "" {
			return nil, invalid(RuleWireUTF8, bad, "not well-formed UTF-8")
		}
		return nil, invalid("", InputPath, "cannot encode: "+parseError(err))
	}
	if len(b)+TrailerSize > MaxInputSize {
		return nil, invalid(RuleInputTooLarge, InputPath, "the checkpoint would be "+strconv.Itoa(len(b)+TrailerSize)+" bytes, more than the limit of "+strconv.Itoa(MaxInputSize))
	}
	if gerr := checkBody(b, len(b)+TrailerSize); gerr != nil {
		return nil, gerr
	}
	if verr := validateCheckpoint(cp); verr != nil {
		return nil, verr
	}
	if cerr := (&credentialWalk{}).checkpoint(cp); cerr != nil {
		return nil, cerr
	}
	return appendTrailer(b), nil
}

// NewDelta writes the delta of next over base (FORMAT.md §13.2, "Writing a
// delta"): the head is next without the base's trial entries and without
// the kept fields, which are every field of DeltaKeptMask that next holds
// with the same bytes as base. next's trial log must start with the base's
// entries. baseGeneration is the store generation of base. The delta is
// checked as EncodeDelta checks it; ApplyDelta(base, delta) gives next back.
func NewDelta(base, next *v1.Checkpoint, baseGeneration uint64) (*v1.CheckpointDelta, error) {
	if base == nil || next == nil {
		return nil, invalidDelta("", InputPath, "no base or no new checkpoint")
	}
	baseLog := base.GetProgress().GetTrialLog()
	nextLog := next.GetProgress().GetTrialLog()
	if len(nextLog) < len(baseLog) {
		return nil, invalidDelta("", "head.progress.trial_log", "the new trial log is shorter than the base's")
	}
	for i, e := range baseLog {
		if !proto.Equal(e, nextLog[i]) {
			return nil, invalidDelta("", index("head.progress.trial_log", i), "the new trial log does not start with the base's entries")
		}
	}
	head := &v1.Checkpoint{}
	hm, nm, bm := head.ProtoReflect(), next.ProtoReflect(), base.ProtoReflect()
	var kept uint32
	fields := make([]protoreflect.FieldDescriptor, 0, checkpointFields.Len())
	for i := 0; i < checkpointFields.Len(); i++ {
		fields = append(fields, checkpointFields.Get(i))
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i].Number() < fields[j].Number() })
	for _, fd := range fields {
		if !nm.Has(fd) {
			continue
		}
		n := fd.Number()
		if n < 32 && DeltaKeptMask&(1<<n) != 0 && bm.Has(fd) {
			same, err := sameField(fd, nm, bm)
			if err != nil {
				return nil, err
			}
			if same {
				kept |= 1 << n
				continue
			}
		}
		if fd.Number() == progressNumber {
			continue // below: without the base's entries
		}
		hm.Set(fd, nm.Get(fd))
	}
	hm.SetUnknown(nm.GetUnknown())
	head = proto.Clone(head).(*v1.Checkpoint)
	if np := next.GetProgress(); np != nil {
		pm := (&v1.Progress{}).ProtoReflect()
		np.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Number() != trialLogNumber {
				pm.Set(fd, v)
			}
			return true
		})
		pm.SetUnknown(np.ProtoReflect().GetUnknown())
		p := proto.Clone(pm.Interface()).(*v1.Progress)
		for _, e := range nextLog[len(baseLog):] {
			p.TrialLog = append(p.TrialLog, proto.Clone(e).(*v1.TrialLogEntry))
		}
		head.Progress = p
	}
	d := &v1.CheckpointDelta{
		Format:         DeltaFormatV1,
		BaseGeneration: baseGeneration,
		BaseTrials:     uint64(len(baseLog)),
		Head:           head,
		Kept:           kept,
	}
	if err := checkDelta(d); err != nil {
		return nil, err
	}
	return d, nil
}

// sameField reports whether field fd has the same bytes in a and b.
func sameField(fd protoreflect.FieldDescriptor, a, b protoreflect.Message) (bool, *InvalidDelta) {
	one := func(m protoreflect.Message) ([]byte, *InvalidDelta) {
		tmp := (&v1.Checkpoint{}).ProtoReflect()
		tmp.Set(fd, m.Get(fd))
		out, err := marshalOptions.Marshal(tmp.Interface())
		if err != nil {
			return nil, invalidDelta("", join("head", string(fd.Name())), "cannot encode: "+parseError(err))
		}
		return out, nil
	}
	ab, err := one(a)
	if err != nil {
		return false, err
	}
	bb, err := one(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(ab, bb), nil
}

// firstBadString is the path of the first string of m (at path) that is not
// valid UTF-8, in the order the grammar reads the bytes, or "".
func firstBadString(m protoreflect.Message, path string) string {
	fields := m.Descriptor().Fields()
	order := make([]protoreflect.FieldDescriptor, 0, fields.Len())
	for i := 0; i < fields.Len(); i++ {
		order = append(order, fields.Get(i))
	}
	sort.Slice(order, func(i, j int) bool { return order[i].Number() < order[j].Number() })
	for _, fd := range order {
		if !m.Has(fd) {
			continue
		}
		p := join(path, string(fd.Name()))
		v := m.Get(fd)
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				ip := index(p, i)
				if fd.Kind() == protoreflect.StringKind {
					if !utf8.ValidString(l.Get(i).String()) {
						return ip
					}
				} else if fd.Message() != nil {
					if bad := firstBadString(l.Get(i).Message(), ip); bad != "" {
						return bad
					}
				}
			}
		case fd.Message() != nil:
			if bad := firstBadString(v.Message(), p); bad != "" {
				return bad
			}
		case fd.Kind() == protoreflect.StringKind:
			if !utf8.ValidString(v.String()) {
				return p
			}
		}
	}
	return ""
}

// firstNilElement is the path of the first nil element of a repeated
// message field in m (at path) or below it, or "".
func firstNilElement(m protoreflect.Message, path string) string {
	bad := ""
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil {
			return true
		}
		p := join(path, string(fd.Name()))
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && bad == ""; i++ {
				e := l.Get(i).Message()
				if !e.IsValid() {
					bad = index(p, i)
				} else {
					bad = firstNilElement(e, index(p, i))
				}
			}
		} else if !fd.IsMap() {
			bad = firstNilElement(v.Message(), p)
		}
		return bad == ""
	})
	return bad
}
