package checkpoint

import (
	"bytes"
	"fmt"
	"math"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The transitions of FORMAT.md §9. Each one checks everything before it
// changes anything: a refused call returns an error and leaves cp as it was.
// A terminal session (completed, failed, cancelled) refuses every transition
// with *AlreadyTerminal; any other move the table does not allow is refused
// with *InvalidTransition. Every transition sets updated_at to now.

// Trial is one finished trial, as RecordTrial appends it to the trial log.
type Trial struct {
	// Score is the trial's score, nil for none. NaN is refused.
	Score *float64
	// Status is TRIAL_STATUS_OK or TRIAL_STATUS_ERROR; the zero value
	// (TRIAL_STATUS_UNSPECIFIED) means OK.
	Status v1.TrialStatus
	// CandidateID names the candidate tried, nil for none.
	CandidateID *string
	// Stats and Error are nil, a Map, a map[string]any or a *v1.TermMap.
	// Error may also be a Go error, stored as {"class": its type, "message":
	// its text}, with ErrorClass defaulting to its type.
	Stats any
	Error any
	// ErrorClass is the error's class name, nil for none.
	ErrorClass *string
	// DurationMs is the trial's wall-clock duration in milliseconds.
	DurationMs uint64
	// SamplerBlob, when not nil, replaces the checkpoint's sampler state.
	SamplerBlob []byte
	// BestProgramArtifact, when not nil (a Map, a map[string]any or a
	// *v1.TermMap), replaces the stored artifact.
	BestProgramArtifact any
	// RedactSecrets stores "[redacted]" in place of each credential
	// (FORMAT.md §10) instead of refusing the trial.
	RedactSecrets bool
}

// requireStatus refuses a transition of cp unless its status is one of allowed.
func requireStatus(cp *v1.Checkpoint, action string, allowed ...v1.SessionStatus) error {
	if cp == nil {
		return invalid("", InputPath, "no checkpoint")
	}
	status := cp.GetStatus()
	if IsTerminal(status) {
		return &AlreadyTerminal{SessionID: cp.GetSessionId(), Status: StatusName(status)}
	}
	for _, a := range allowed {
		if status == a {
			return nil
		}
	}
	name := StatusName(status)
	if name == "" {
		name = "unspecified"
	}
	return &InvalidTransition{SessionID: cp.GetSessionId(), Status: name, Action: action}
}

// RecordTrial appends the next finished trial to a running session and
// returns its index, the length of the log before it. It counts the attempt
// and the ok or error outcome; the trial becomes best only when it is ok,
// has a score, and the score is strictly better than the best so far:
// greater when cp's direction is DIRECTION_HIGHER (the default), lower when
// it is DIRECTION_LOWER. The first of equal scores stays best; -0.0 and 0.0
// are equal.
//
// Refused, leaving cp unchanged: a session that is not running
// (*AlreadyTerminal, *InvalidTransition); a direction other than higher or
// lower (*InvalidCheckpoint, path "direction"); a NaN score, a status other than
// ok or error, stats, errors or an artifact with no Term map form, text that
// is not valid UTF-8, and credentials unless t.RedactSecrets
// (*InvalidCheckpoint naming the path, e.g. "stats.entries[0].value.string_value").
func RecordTrial(cp *v1.Checkpoint, t Trial) (uint64, error) {
	if err := requireStatus(cp, "record a trial", v1.SessionStatus_SESSION_STATUS_RUNNING); err != nil {
		return 0, err
	}
	direction := cp.GetDirection()
	if err := checkDirection(direction); err != nil {
		return 0, err
	}
	status := t.Status
	if status == v1.TrialStatus_TRIAL_STATUS_UNSPECIFIED {
		status = v1.TrialStatus_TRIAL_STATUS_OK
	}
	if status != v1.TrialStatus_TRIAL_STATUS_OK && status != v1.TrialStatus_TRIAL_STATUS_ERROR {
		return 0, invalid("", "status", fmt.Sprintf("must be ok or error, got %d", int32(t.Status)))
	}
	if t.Score != nil && math.IsNaN(*t.Score) {
		return 0, invalid(RuleFloatNaN, "score", "NaN is not allowed")
	}
	w := &credentialWalk{redact: t.RedactSecrets}
	entry := &v1.TrialLogEntry{Status: status, DurationMs: t.DurationMs}
	if t.Score != nil {
		score := *t.Score
		entry.Score = &score
	}
	if t.CandidateID != nil {
		if err := checkString(*t.CandidateID, "candidate_id"); err != nil {
			return 0, err
		}
		text, err := w.text(*t.CandidateID, "candidate_id")
		if err != nil {
			return 0, err
		}
		entry.CandidateId = &text
	}
	errorValue, errorClass := t.Error, t.ErrorClass
	if goErr, ok := errorValue.(error); ok {
		class := fmt.Sprintf("%T", goErr)
		errorValue = Map{{Key: "class", Value: class}, {Key: "message", Value: goErr.Error()}}
		if errorClass == nil {
			errorClass = &class
		}
	}
	if errorClass != nil {
		if err := checkString(*errorClass, "error_class"); err != nil {
			return 0, err
		}
		class := *errorClass
		entry.ErrorClass = &class
	}
	var err *InvalidCheckpoint
	if entry.Stats, err = screenedMap(w, t.Stats, "stats"); err != nil {
		return 0, err
	}
	if entry.Error, err = screenedMap(w, errorValue, "error"); err != nil {
		return 0, err
	}
	artifact, err := screenedMap(w, t.BestProgramArtifact, "best_program_artifact")
	if err != nil {
		return 0, err
	}

	// Nothing is refused from here on.
	if cp.Progress == nil {
		cp.Progress = &v1.Progress{}
	}
	pr := cp.Progress
	idx := uint64(len(pr.TrialLog))
	entry.TrialIdx = idx
	pr.TrialLog = append(pr.TrialLog, entry)
	pr.Attempts++
	if status == v1.TrialStatus_TRIAL_STATUS_OK {
		pr.Completed++
		if entry.Score != nil && (pr.BestScore == nil || better(direction, *entry.Score, *pr.BestScore)) {
			best, bestIdx := *entry.Score, idx
			pr.BestScore, pr.BestTrialIdx = &best, &bestIdx
		}
	} else {
		pr.Errors++
	}
	if t.SamplerBlob != nil {
		cp.SamplerBlob = bytes.Clone(t.SamplerBlob)
	}
	if artifact != nil {
		cp.BestProgramArtifact = artifact
	}
	cp.UpdatedAt = timestamppb.Now()
	return idx, nil
}

// better reports whether score beats best in direction d: strictly greater
// for higher, strictly lower for lower.
func better(d v1.Direction, score, best float64) bool {
	if d == v1.Direction_DIRECTION_LOWER {
		return score < best
	}
	return score > best
}

// screenedMap converts v (nil, Map, map[string]any or *v1.TermMap) to a
// canonical, screened copy; nil for nil.
func screenedMap(w *credentialWalk, v any, root string) (*v1.TermMap, *InvalidCheckpoint) {
	if v == nil {
		return nil, nil
	}
	var m *v1.TermMap
	switch x := v.(type) {
	case *v1.TermMap:
		if x == nil {
			return nil, nil
		}
		c, err := canonicalMap(x, root, termMapLevel)
		if err != nil {
			return nil, err
		}
		m = c
	case Map, map[string]any:
		t, err := toTerm(x, root, 1)
		if err != nil {
			return nil, err
		}
		m = t.GetMapValue()
	default:
		return nil, invalid("", root, fmt.Sprintf("unsupported type %T: want a Map, a map[string]any or a *TermMap", v))
	}
	if w.redact {
		// Redaction rewrites in place; the caller's values stay as they were.
		m, _ = proto.Clone(m).(*v1.TermMap)
	}
	if err := w.termMap(m, root, false); err != nil {
		return nil, err
	}
	return m, nil
}

// Pause moves a running session to paused.
func Pause(cp *v1.Checkpoint) error {
	if err := requireStatus(cp, "pause", v1.SessionStatus_SESSION_STATUS_RUNNING); err != nil {
		return err
	}
	move(cp, v1.SessionStatus_SESSION_STATUS_PAUSED, nil)
	return nil
}

// Resume moves a paused session back to running.
func Resume(cp *v1.Checkpoint) error {
	if err := requireStatus(cp, "resume", v1.SessionStatus_SESSION_STATUS_PAUSED); err != nil {
		return err
	}
	move(cp, v1.SessionStatus_SESSION_STATUS_RUNNING, nil)
	return nil
}

// Cancel moves a running or paused session to cancelled. reason, when not
// nil, is any value ToTerm takes (a *v1.Term included) and is stored in
// terminal_reason; a reason with no Term form or holding a credential
// (FORMAT.md §10) is refused with an *InvalidCheckpoint naming "reason…".
// So for Complete and Fail.
func Cancel(cp *v1.Checkpoint, reason any) error {
	return terminate(cp, "cancel", v1.SessionStatus_SESSION_STATUS_CANCELLED, reason,
		v1.SessionStatus_SESSION_STATUS_RUNNING, v1.SessionStatus_SESSION_STATUS_PAUSED)
}

// Complete moves a running session to completed, with an optional reason
// (see Cancel).
func Complete(cp *v1.Checkpoint, reason any) error {
	return terminate(cp, "complete", v1.SessionStatus_SESSION_STATUS_COMPLETED, reason,
		v1.SessionStatus_SESSION_STATUS_RUNNING)
}

// Fail moves a running session to failed, with an optional reason (see
// Cancel).
func Fail(cp *v1.Checkpoint, reason any) error {
	return terminate(cp, "fail", v1.SessionStatus_SESSION_STATUS_FAILED, reason,
		v1.SessionStatus_SESSION_STATUS_RUNNING)
}

func terminate(cp *v1.Checkpoint, action string, to v1.SessionStatus, reason any, allowed ...v1.SessionStatus) error {
	if err := requireStatus(cp, action, allowed...); err != nil {
		return err
	}
	var term *v1.Term
	if reason != nil {
		t, err := toTerm(reason, "reason", 1)
		if err != nil {
			return err
		}
		if err := (&credentialWalk{}).term(t, "reason", false); err != nil {
			return err
		}
		term = t
	}
	move(cp, to, term)
	return nil
}

func move(cp *v1.Checkpoint, to v1.SessionStatus, reason *v1.Term) {
	cp.Status = to
	cp.TerminalReason = reason
	cp.UpdatedAt = timestamppb.Now()
}
