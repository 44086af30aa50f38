package checkpoint

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ReasonCheckpointShape is the reason of a ResumeMismatch for bytes that are
// not a valid checkpoint.
const ReasonCheckpointShape = "checkpoint_shape"

// The reasons of the resume gate (FORMAT.md §8).
const (
	ReasonOptimizer      = "optimizer"
	ReasonSamplerFormat  = "sampler_format"
	ReasonSamplerVersion = "sampler_version"
	ReasonTrainsetHash   = "trainset_hash"
	ReasonDirection      = "direction"
)

// ResumeMismatch reports that a checkpoint cannot be used to resume a
// session.
//
// With Reason "checkpoint_shape" the bytes are not a valid checkpoint: Field
// is the path of the offending field (e.g. "progress.trial_log[3].score",
// "<input>" for size and parse failures), Rule the id of the rule it breaks
// (rules.go, e.g. RuleFloatNaN), Detail describes the problem and SessionID
// is the session id read, if any.
// Otherwise Reason is one of "optimizer", "sampler_format",
// "sampler_version", "trainset_hash" or "direction", Expected is what the
// caller asked for and Got what the checkpoint holds.
type ResumeMismatch struct {
	SessionID string
	Reason    string
	Expected  any
	Got       any
	Field     string
	Detail    string
	Rule      string
}

// Error reads "checkpoint_shape: <field>: <detail> (rule <id>)" for a
// checkpoint that is not valid, else the resume gate's message.
func (e *ResumeMismatch) Error() string {
	if e.Reason == ReasonCheckpointShape {
		return "checkpoint_shape: " + e.Field + ": " + e.Detail + ruleSuffix(e.Rule)
	}
	got, exp := show(e.Got), show(e.Expected)
	template, ok := gateMessages[e.Reason]
	if !ok {
		template = "the checkpoint has {got}; this run expects {exp}."
	}
	return fmt.Sprintf("cannot resume session %q: %s: ", e.SessionID, e.Reason) +
		strings.NewReplacer("{got}", got, "{exp}", exp).Replace(template)
}

// gateMessages are the resume gate's messages of FORMAT.md §8, the same text
// in every language.
var gateMessages = map[string]string{
	ReasonOptimizer: "the checkpoint was written by optimizer {got}; this run is {exp}. " +
		"Resume with {got}, or start a new session.",
	ReasonSamplerFormat: "the checkpoint's sampler is {got}; this run's is {exp}. " +
		"Resume with sampler {got}, or start a new session.",
	ReasonSamplerVersion: "the checkpoint holds sampler state version {got}; this run accepts {exp}. " +
		"Accept version {got} if the sampler can read it, or start a new session.",
	ReasonTrainsetHash: "the checkpoint was made on the trainset with hash {got}; this run's hash is {exp}. " +
		"Pass the same trainset, or start a new session.",
	ReasonDirection: "the checkpoint's scores are better when {got}; this run's are better when {exp}. " +
		"Resume with direction {got}, or start a new session.",
}

// AlreadyTerminal reports that a session has ended (completed, failed or
// cancelled) and cannot go on.
type AlreadyTerminal struct {
	SessionID string
	// Status is the lower-case status name: "completed", "failed" or "cancelled".
	Status string
}

func (e *AlreadyTerminal) Error() string {
	return fmt.Sprintf("session %q is already terminal: status=%s", e.SessionID, e.Status)
}

// InvalidTransition reports a transition that the session's current
// (non-terminal) status does not allow (FORMAT.md §9), e.g. resuming a
// running session.
type InvalidTransition struct {
	SessionID string
	// Status is the lower-case name of the current status: "running" or "paused".
	Status string
	// Action is what was asked: "record a trial", "pause", "resume",
	// "complete", "fail" or "cancel".
	Action string
}

func (e *InvalidTransition) Error() string {
	return fmt.Sprintf("session %q cannot %s while %s", e.SessionID, e.Action, e.Status)
}

// InvalidCheckpoint reports a checkpoint, Term or value that breaks a rule of
// FORMAT.md when it is written or converted. Path names the offending field
// (or, for Go values, the element), Detail says what is wrong with it, and
// Rule is the id of the reader's rule it breaks (rules.go); Rule is "" for
// a refusal that is no reader rule: a credential (FORMAT.md §10) or an
// argument with no checkpoint form (a Go type ToTerm does not take, a trial
// status other than ok or error).
type InvalidCheckpoint struct {
	Path   string
	Detail string
	Rule   string
}

// Error reads "<path>: <detail> (rule <id>)", without the parenthesis when
// Rule is "".
func (e *InvalidCheckpoint) Error() string { return e.Path + ": " + e.Detail + ruleSuffix(e.Rule) }

func ruleSuffix(rule string) string {
	if rule == "" {
		return ""
	}
	return " (rule " + rule + ")"
}

// shape turns a validation failure into the reader's refusal.
func shape(sessionID string, err *InvalidCheckpoint) *ResumeMismatch {
	return &ResumeMismatch{SessionID: sessionID, Reason: ReasonCheckpointShape, Field: err.Path, Detail: err.Detail, Rule: err.Rule}
}

// show renders a value of a ResumeMismatch: nil as "none", bytes as lowercase
// hex, a set of versions as "[1,2,10]" (in numeric order), anything else
// with %v.
func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "none"
	case []byte:
		return hex.EncodeToString(x)
	case []uint32:
		sorted := append([]uint32(nil), x...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		parts := make([]string, len(sorted))
		for i, n := range sorted {
			parts[i] = strconv.FormatUint(uint64(n), 10)
		}
		return "[" + strings.Join(parts, ",") + "]"
	default:
		return fmt.Sprint(x)
	}
}
