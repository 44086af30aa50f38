package checkpoint

// The ids of the rules a v1 reader applies to a checkpoint delta beyond the
// byte grammar (spec/delta-rules-v1.json, FORMAT.md §13), the same in every
// language. A refusal of a delta (DecodeDelta, EncodeDelta, ApplyDelta) is an
// *InvalidDelta naming one of them, or, for the byte grammar, one of the
// input.*, wire.* and term.depth ids of rules.go; the checkpoint a delta
// makes is refused with the ids of rules.go.
const (
	// The delta format identifier is not dsxir.optimizer_session.delta/v1.<minor>
	// (FORMAT.md §13.1).
	RuleDeltaFormat = "delta.format"
	// The base generation is 0 (FORMAT.md §13.1).
	RuleDeltaBaseGeneration = "delta.base_generation"
	// The head is absent (FORMAT.md §13.1).
	RuleDeltaHead = "delta.head"
	// Kept has a bit set outside the fields 3-7 and 10-15 (the mask 0xFCF8) (FORMAT.md §13.1).
	RuleDeltaKept = "delta.kept"
	// The head holds a field the delta keeps from the base (FORMAT.md §13.1).
	RuleDeltaKeptInHead = "delta.kept_in_head"
	// The head's session id is not the base's (FORMAT.md §13.2).
	RuleDeltaSession = "delta.session"
	// The base's trial log does not have base_trials entries (FORMAT.md §13.2).
	RuleDeltaBaseTrials = "delta.base_trials"
)

// IsDeltaRule reports whether id is one of the delta rule ids above.
func IsDeltaRule(id string) bool {
	_, ok := deltaRuleIDs[id]
	return ok
}

var deltaRuleIDs = map[string]struct{}{
	RuleDeltaFormat:         {},
	RuleDeltaBaseGeneration: {},
	RuleDeltaHead:           {},
	RuleDeltaKept:           {},
	RuleDeltaKeptInHead:     {},
	RuleDeltaSession:        {},
	RuleDeltaBaseTrials:     {},
}
