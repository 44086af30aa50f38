package checkpoint

import (
	"strconv"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
)

// MergeDelta changes base into the checkpoint that delta makes of it
// (FORMAT.md §13.2) after steps 1-2 only: it refuses, with an *InvalidDelta,
// a delta whose head.session_id is not base's (delta.session) or whose
// base_trials is not the length of base's trial log (delta.base_trials), and
// checks nothing else. The result is not checked by the rules of §7: a
// reader that applies several deltas in a row (the commit records of a store
// file, docs/store-file.md §9) checks the checkpoint it ends with, with
// Validate.
//
// delta must be one DecodeDelta returned (its §13.1 rules hold). base becomes
// the head, with the fields whose bit is set in kept left as they were and,
// when the head has a progress, base's trial entries before the head's; a
// head without progress leaves no progress, so the trial entries before it
// are dropped. base takes the head's messages and unknown fields: delta must
// not be used afterwards. On a refusal base is unchanged.
func MergeDelta(base *v1.Checkpoint, delta *v1.CheckpointDelta) error {
	if base == nil || delta == nil || delta.GetHead() == nil {
		return invalidDelta("", InputPath, "no base checkpoint or no delta head")
	}
	head := delta.GetHead()
	if head.GetSessionId() != base.GetSessionId() {
		return invalidDelta(RuleDeltaSession, "head.session_id", "session "+strconv.Quote(head.GetSessionId())+" is not the base's "+strconv.Quote(base.GetSessionId()))
	}
	baseLog := base.GetProgress().GetTrialLog()
	if delta.GetBaseTrials() != uint64(len(baseLog)) {
		return invalidDelta(RuleDeltaBaseTrials, "base_trials", "is "+strconv.FormatUint(delta.GetBaseTrials(), 10)+", the base's trial log has "+strconv.Itoa(len(baseLog))+" entries")
	}
	kept := delta.GetKept()
	bm, hm := base.ProtoReflect(), head.ProtoReflect()
	for i := 0; i < checkpointFields.Len(); i++ {
		fd := checkpointFields.Get(i)
		n := fd.Number()
		if n == progressNumber || (n < 32 && kept&(1<<n) != 0) {
			continue
		}
		if hm.Has(fd) {
			bm.Set(fd, hm.Get(fd))
		} else {
			bm.Clear(fd)
		}
	}
	bm.SetUnknown(hm.GetUnknown())
	if p := head.GetProgress(); p != nil {
		// base's log is base's own: appending to it costs the head's entries only.
		p.TrialLog = append(baseLog, p.TrialLog...)
		base.Progress = p
	} else {
		base.Progress = nil
	}
	return nil
}
