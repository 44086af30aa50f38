package checkpoint

import (
	"bytes"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Limits and identifiers of FORMAT.md.
const (
	// MaxInputSize is the largest checkpoint a reader accepts (256 MiB, §3.6).
	MaxInputSize = 268435456
	// MaxTermDepth is the deepest Term a reader accepts and a writer builds (§3.6).
	MaxTermDepth = 24
	// FormatV1 is the identifier this package writes (§4); readers accept
	// any v1 minor.
	FormatV1 = "dsxir.optimizer_session.checkpoint/v1.1"
	// InputPath is the field path of size and parse failures.
	InputPath = "<input>"

	// Timestamp range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z (§3.5).
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300799
)

// recursionLimit is the protobuf nesting limit of DecodeTrainsetTerm, whose
// input is any protobuf encoding of a Term. Go counts the top-level message
// against its limit, the other official runtimes count only nested messages
// against a limit of 100; 101 here refuses exactly the inputs those runtimes
// refuse. A checkpoint needs none: its grammar bounds the nesting by the
// Term depth.
const recursionLimit = 101

var (
	unmarshalOptions = proto.UnmarshalOptions{RecursionLimit: recursionLimit}
	marshalOptions   = proto.MarshalOptions{Deterministic: true}
	formatPattern    = regexp.MustCompile(`^dsxir\.optimizer_session\.checkpoint/v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)
)

// Decode reads checkpoint bytes (FORMAT.md §7): it checks the size limit,
// the checksum trailer, the byte grammar of §2 and the weight limit, parses
// the body, then applies every check of §7 in its order. A refusal is a
// *ResumeMismatch with Reason "checkpoint_shape" whose Field is the path of
// the first offending field (or message, §2.3) and Rule the id of the rule
// it breaks. Decode accepts exactly the bytes Encode writes: for every b it
// accepts, Encode(Decode(b)) is b.
func Decode(data []byte) (*v1.Checkpoint, error) {
	body, gerr := checkGrammar(data)
	if gerr != nil {
		return nil, shape("", gerr)
	}
	cp := &v1.Checkpoint{}
	if err := (proto.UnmarshalOptions{}).Unmarshal(body, cp); err != nil {
		// Bytes that pass the grammar always parse; a failure here is a bug
		// of this package, reported as the closest rule.
		return nil, shape("", invalid(RuleWireTruncated, InputPath, "the protobuf runtime cannot parse bytes the grammar accepts: "+parseError(err)))
	}
	if err := validateCheckpoint(cp); err != nil {
		return nil, shape(cp.GetSessionId(), err)
	}
	return cp, nil
}

// Encode validates cp with the reader's rules (an *InvalidCheckpoint naming
// the first offending field), refuses a credential (FORMAT.md §10, see
// Screen; EncodeRedacted redacts instead) and returns its canonical encoding
// (FORMAT.md §2): the body, checked by the grammar and the size and weight
// limits, then the checksum trailer. Unknown fields read from a newer minor
// version are kept, after the known fields of their message.
func Encode(cp *v1.Checkpoint) ([]byte, error) {
	if err := validateCheckpoint(cp); err != nil {
		return nil, err
	}
	if err := (&credentialWalk{}).checkpoint(cp); err != nil {
		return nil, err
	}
	return marshalCheckpoint(cp)
}

// marshalCheckpoint writes a validated checkpoint: deterministic
// serialization (known fields in number order, then unknown fields as read),
// the grammar and the limits on the bytes produced, and the trailer.
func marshalCheckpoint(cp *v1.Checkpoint) ([]byte, error) {
	size := marshalOptions.Size(cp)
	if size+TrailerSize > MaxInputSize {
		return nil, invalid(RuleInputTooLarge, InputPath, "the checkpoint would be "+strconv.Itoa(size+TrailerSize)+" bytes, more than the limit of "+strconv.Itoa(MaxInputSize))
	}
	b, err := proto.MarshalOptions{Deterministic: true, UseCachedSize: true}.MarshalAppend(make([]byte, 0, size+TrailerSize), cp)
	if err != nil {
		return nil, invalid("", InputPath, "cannot encode: "+parseError(err))
	}
	if len(b)+TrailerSize > MaxInputSize {
		return nil, invalid(RuleInputTooLarge, InputPath, "the checkpoint would be "+strconv.Itoa(len(b)+TrailerSize)+" bytes, more than the limit of "+strconv.Itoa(MaxInputSize))
	}
	if gerr := checkBody(b, len(b)+TrailerSize); gerr != nil {
		return nil, gerr
	}
	return appendTrailer(b), nil
}

// Validate applies the checks of FORMAT.md §7 (after parsing) to cp and
// returns the first failure as an *InvalidCheckpoint, or nil.
func Validate(cp *v1.Checkpoint) error {
	if err := validateCheckpoint(cp); err != nil {
		return err
	}
	return nil
}

// ValidateTerm applies the Term checks of FORMAT.md §7 to t (a root Term);
// paths in the error start with "term" (t itself).
func ValidateTerm(t *v1.Term) error {
	if err := checkTerm(t, "term", 1); err != nil {
		return err
	}
	return nil
}

// parseError renders a protobuf parse error on one plain line (the Go
// runtime may put a no-break space in its messages).
func parseError(err error) string {
	return strings.NewReplacer("\u00a0", " ", "\n", " ", "\r", " ").Replace(err.Error())
}

// invalid is the refusal of rule (an id of rules.go, or "" for no reader
// rule) at path.
func invalid(rule, path, detail string) *InvalidCheckpoint {
	return &InvalidCheckpoint{Path: path, Detail: detail, Rule: rule}
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// checkString refuses text that is not valid UTF-8, which no checkpoint
// holds (a decoded message always has it right; the grammar refuses it).
func checkString(s, path string) *InvalidCheckpoint {
	if !utf8.ValidString(s) {
		return invalid(RuleWireUTF8, path, "not valid UTF-8")
	}
	return nil
}

// checkRequiredString refuses empty text (rule) and text checkString refuses.
func checkRequiredString(s, path, rule string) *InvalidCheckpoint {
	if s == "" {
		return invalid(rule, path, "missing or empty")
	}
	return checkString(s, path)
}

func checkTimestamp(ts *timestamppb.Timestamp, path string) *InvalidCheckpoint {
	if ts == nil {
		return invalid(RuleTimestampRequired, path, "missing timestamp")
	}
	if ts.Nanos < 0 || ts.Nanos >= 1_000_000_000 {
		return invalid(RuleTimestampNanos, path+".nanos", strconv.FormatInt(int64(ts.Nanos), 10)+" is outside [0, 1e9)")
	}
	if ts.Seconds < minTimestampSeconds || ts.Seconds > maxTimestampSeconds {
		return invalid(RuleTimestampSeconds, path+".seconds", strconv.FormatInt(ts.Seconds, 10)+" is outside 0001-01-01..9999-12-31")
	}
	return nil
}

func checkFormat(f string) *InvalidCheckpoint {
	if f == "" {
		return invalid(RuleFormatRequired, "format", "missing format identifier")
	}
	m := formatPattern.FindStringSubmatch(f)
	if m == nil {
		return invalid(RuleFormatShape, "format", "wrong format "+strconv.Quote(f))
	}
	if m[1] != "1" {
		return invalid(RuleFormatMajor, "format", "unsupported major version "+m[1]+" in "+strconv.Quote(f))
	}
	return nil
}

func validateCheckpoint(cp *v1.Checkpoint) *InvalidCheckpoint {
	if cp == nil {
		return invalid("", InputPath, "no checkpoint")
	}
	if err := checkFormat(cp.GetFormat()); err != nil {
		return err
	}
	if err := checkRequiredString(cp.GetSessionId(), "session_id", RuleSessionIDRequired); err != nil {
		return err
	}
	if err := checkRequiredString(cp.GetOptimizer(), "optimizer", RuleOptimizerRequired); err != nil {
		return err
	}
	for i, opt := range cp.GetOptimizerOpts() {
		p := index("optimizer_opts", i)
		if opt == nil {
			return invalid("", p, "missing option entry (a nil element has no encoding)")
		}
		if err := checkRequiredString(opt.GetKey(), p+".key", RuleOptimizerOptsKeyRequired); err != nil {
			return err
		}
		if opt.GetValue() == nil {
			return invalid(RuleOptimizerOptsValueRequired, p+".value", "missing value")
		}
		if err := checkTerm(opt.GetValue(), p+".value", 1); err != nil {
			return err
		}
	}
	if cp.ProgramModule != nil {
		if err := checkRequiredString(cp.GetProgramModule(), "program_module", RuleProgramModuleNotEmpty); err != nil {
			return err
		}
	}
	if n := len(cp.GetTrainsetHash()); n != 32 {
		return invalid(RuleTrainsetHashLength, "trainset_hash", "must be 32 bytes, got "+strconv.Itoa(n))
	}
	if err := checkTimestamp(cp.GetCreatedAt(), "created_at"); err != nil {
		return err
	}
	if err := checkTimestamp(cp.GetUpdatedAt(), "updated_at"); err != nil {
		return err
	}
	if err := checkProgress(cp.GetProgress()); err != nil {
		return err
	}
	if a := cp.GetBestProgramArtifact(); a != nil {
		if err := checkTermMap(a, "best_program_artifact", termMapLevel); err != nil {
			return err
		}
	}
	sf := cp.GetSamplerFormat()
	if sf == nil {
		return invalid(RuleSamplerFormatRequired, "sampler_format", "missing sampler format")
	}
	if err := checkRequiredString(sf.GetModule(), "sampler_format.module", RuleSamplerFormatModuleRequired); err != nil {
		return err
	}
	if sf.GetVersion() < 1 {
		return invalid(RuleSamplerFormatVersionMin, "sampler_format.version", "must be at least 1")
	}
	if _, ok := statusNames[cp.GetStatus()]; !ok {
		return invalid(RuleStatusKnown, "status", "unknown session status "+strconv.Itoa(int(cp.GetStatus())))
	}
	if tr := cp.GetTerminalReason(); tr != nil {
		if err := checkTerm(tr, "terminal_reason", 1); err != nil {
			return err
		}
	}
	return checkDirection(cp.GetDirection())
}

// checkDirection refuses a direction number other than higher (0, also a
// v1.0 checkpoint's) and lower (1).
func checkDirection(d v1.Direction) *InvalidCheckpoint {
	if d != v1.Direction_DIRECTION_HIGHER && d != v1.Direction_DIRECTION_LOWER {
		return invalid(RuleDirectionKnown, "direction", "unknown direction "+strconv.Itoa(int(d)))
	}
	return nil
}

func checkProgress(pr *v1.Progress) *InvalidCheckpoint {
	if pr == nil {
		return invalid(RuleProgressRequired, "progress", "missing progress")
	}
	var ok, failed uint64
	for i, e := range pr.GetTrialLog() {
		p := index("progress.trial_log", i)
		if e == nil {
			return invalid("", p, "missing trial log entry (a nil element has no encoding)")
		}
		if e.GetTrialIdx() != uint64(i) {
			return invalid(RuleTrialTrialIdx, p+".trial_idx", "is "+strconv.FormatUint(e.GetTrialIdx(), 10)+", must be its position "+strconv.Itoa(i))
		}
		if e.Score != nil && math.IsNaN(*e.Score) {
			return invalid(RuleFloatNaN, p+".score", "NaN is not allowed")
		}
		switch e.GetStatus() {
		case v1.TrialStatus_TRIAL_STATUS_OK:
			ok++
		case v1.TrialStatus_TRIAL_STATUS_ERROR:
			failed++
		default:
			return invalid(RuleTrialStatus, p+".status", "trial status must be OK or ERROR, got "+strconv.Itoa(int(e.GetStatus())))
		}
		if e.GetStats() != nil {
			if err := checkTermMap(e.GetStats(), p+".stats", termMapLevel); err != nil {
				return err
			}
		}
		if e.GetError() != nil {
			if err := checkTermMap(e.GetError(), p+".error", termMapLevel); err != nil {
				return err
			}
		}
		if e.CandidateId != nil {
			if err := checkString(*e.CandidateId, p+".candidate_id"); err != nil {
				return err
			}
		}
		if e.ErrorClass != nil {
			if err := checkString(*e.ErrorClass, p+".error_class"); err != nil {
				return err
			}
		}
	}
	if err := checkTimestamp(pr.GetStartedAt(), "progress.started_at"); err != nil {
		return err
	}
	if pr.BestScore != nil && math.IsNaN(*pr.BestScore) {
		return invalid(RuleFloatNaN, "progress.best_score", "NaN is not allowed")
	}
	// The one that is missing is reported.
	if pr.BestScore == nil && pr.BestTrialIdx != nil {
		return invalid(RuleBestPair, "progress.best_score", "best_score and best_trial_idx must be set together")
	}
	if pr.BestScore != nil && pr.BestTrialIdx == nil {
		return invalid(RuleBestPair, "progress.best_trial_idx", "best_score and best_trial_idx must be set together")
	}
	if pr.BestTrialIdx != nil {
		idx := *pr.BestTrialIdx
		log := pr.GetTrialLog()
		if idx >= uint64(len(log)) {
			return invalid(RuleBestTrialIdxRange, "progress.best_trial_idx", "names no entry of the trial log")
		}
		best := log[idx]
		if best.GetStatus() != v1.TrialStatus_TRIAL_STATUS_OK || best.Score == nil {
			return invalid(RuleBestTrialIdxTrial, "progress.best_trial_idx", "names a trial that is not an ok trial with a score")
		}
		if math.Float64bits(*best.Score) != math.Float64bits(*pr.BestScore) {
			return invalid(RuleBestScore, "progress.best_trial_idx", "names an entry whose score differs from best_score")
		}
	}
	if pr.GetCompleted() != ok {
		return invalid(RuleCountersCompleted, "progress.completed", "is "+strconv.FormatUint(pr.GetCompleted(), 10)+", the trial log has "+strconv.FormatUint(ok, 10)+" ok entries")
	}
	if pr.GetErrors() != failed {
		return invalid(RuleCountersErrors, "progress.errors", "is "+strconv.FormatUint(pr.GetErrors(), 10)+", the trial log has "+strconv.FormatUint(failed, 10)+" error entries")
	}
	if pr.GetAttempts() < ok+failed {
		return invalid(RuleCountersAttempts, "progress.attempts", "is "+strconv.FormatUint(pr.GetAttempts(), 10)+", less than completed + errors")
	}
	return nil
}

// termMapLevel is the level of the keys and values of a TermMap field
// (stats, error, best_program_artifact): the map itself counts as one level,
// as a map_value Term does.
const termMapLevel = 2

// checkTerm applies the Term checks to t, found at path, at nesting level
// level (a root Term is at level 1). A Term deeper than MaxTermDepth is
// reported at its first descendant found at level MaxTermDepth+1, before any
// other check of that descendant.
func checkTerm(t *v1.Term, path string, level int) *InvalidCheckpoint {
	if err := checkTermNode(t, path, level); err != nil {
		return err
	}
	switch k := t.GetKind().(type) {
	case *v1.Term_ListValue:
		return checkItems(k.ListValue.GetItems(), join(path, "list_value"), level)
	case *v1.Term_TupleValue:
		return checkItems(k.TupleValue.GetItems(), join(path, "tuple_value"), level)
	case *v1.Term_MapValue:
		return checkTermMap(k.MapValue, join(path, "map_value"), level+1)
	}
	return nil
}

// checkTermNode applies the checks of one Term that do not look into its
// items or entries: depth, kind set, NaN, bigint, UTF-8.
func checkTermNode(t *v1.Term, path string, level int) *InvalidCheckpoint {
	if level > MaxTermDepth {
		return invalid(RuleTermDepth, path, "nesting deeper than "+strconv.Itoa(MaxTermDepth))
	}
	if k := t.GetKind(); k == nil || reflect.ValueOf(k).IsNil() { // a Go-built Term may hold a typed nil
		return invalid(RuleTermKind, path, "term has no kind")
	}
	switch k := t.GetKind().(type) {
	case *v1.Term_FloatValue:
		if math.IsNaN(k.FloatValue) {
			return invalid(RuleFloatNaN, join(path, "float_value"), "NaN is not allowed")
		}
	case *v1.Term_BigintValue:
		if msg := checkBigint(k.BigintValue); msg != "" {
			return invalid(RuleTermBigint, join(path, "bigint_value"), msg)
		}
	case *v1.Term_StringValue:
		return checkString(k.StringValue, join(path, "string_value"))
	case *v1.Term_AtomValue:
		return checkString(k.AtomValue, join(path, "atom_value"))
	}
	return nil
}

func checkItems(items []*v1.Term, path string, level int) *InvalidCheckpoint {
	for i, it := range items {
		if err := checkTerm(it, index(path+".items", i), level+1); err != nil {
			return err
		}
	}
	return nil
}

// checkTermMap checks a TermMap whose keys and values are at level level.
// Per entry, in order: key present, key valid, value present, value valid,
// key greater than the previous key.
func checkTermMap(m *v1.TermMap, path string, level int) *InvalidCheckpoint {
	var prev []byte
	for i, e := range m.GetEntries() {
		p := index(path+".entries", i)
		if e.GetKey() == nil {
			return invalid(RuleTermMapKeyRequired, p, "map entry has no key")
		}
		if err := checkTerm(e.GetKey(), p+".key", level); err != nil {
			return err
		}
		if e.GetValue() == nil {
			return invalid(RuleTermMapValueRequired, p, "map entry has no value")
		}
		if err := checkTerm(e.GetValue(), p+".value", level); err != nil {
			return err
		}
		kb, err := marshalOptions.Marshal(e.GetKey())
		if err != nil {
			return invalid("", p+".key", "cannot encode key: "+parseError(err))
		}
		if i > 0 {
			switch c := bytes.Compare(prev, kb); {
			case c == 0:
				return invalid(RuleTermMapOrder, p+".key", "duplicate map key")
			case c > 0:
				return invalid(RuleTermMapOrder, p+".key", "keys are not sorted by their canonical bytes")
			}
		}
		prev = kb
	}
	return nil
}

// checkBigint returns why b is not a valid bigint_value, or "".
func checkBigint(b []byte) string {
	if len(b) == 0 {
		return "empty bigint"
	}
	if len(b) > 1 && ((b[0] == 0x00 && b[1]&0x80 == 0) || (b[0] == 0xff && b[1]&0x80 != 0)) {
		return "bigint is not minimal"
	}
	if len(b) <= 8 {
		return "bigint fits in int64; it must be an int_value"
	}
	return ""
}

var statusNames = map[v1.SessionStatus]string{
	v1.SessionStatus_SESSION_STATUS_RUNNING:   "running",
	v1.SessionStatus_SESSION_STATUS_PAUSED:    "paused",
	v1.SessionStatus_SESSION_STATUS_COMPLETED: "completed",
	v1.SessionStatus_SESSION_STATUS_FAILED:    "failed",
	v1.SessionStatus_SESSION_STATUS_CANCELLED: "cancelled",
}
