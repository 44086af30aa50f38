package checkpoint

// The ids of the rules a v1 reader applies (spec/checkpoint-rules-v1.json,
// FORMAT.md §7), the same in every language. Every refusal of a checkpoint
// (Decode, Validate, Encode, the Term checks) names one in the Rule field of
// its *ResumeMismatch or *InvalidCheckpoint; an error about a caller's
// argument that breaks no checkpoint rule (a nil checkpoint, a nil element
// of a repeated field) has Rule "". A Go-built message holding text that is
// not valid UTF-8 breaks RuleWireUTF8, as its bytes would.
const (
	// The input is longer than 268,435,456 bytes; checked before parsing (FORMAT.md §3.6).
	RuleInputTooLarge = "input.too_large"
	// The input is shorter than 9 bytes or its last 9 bytes do not start with the trailer
	// tag FD FF FF FF 0F (a cut or foreign input) (FORMAT.md §2.1).
	RuleInputTrailer = "input.trailer"
	// The trailer's CRC-32C is not the CRC-32C of the bytes before the trailer (FORMAT.md §2.1).
	RuleInputChecksum = "input.checksum"
	// A tag, varint, length or value runs past the end of its message (FORMAT.md §2.2).
	RuleWireTruncated = "wire.truncated"
	// A varint is not minimal or does not fit in 64 bits, or a tag is 2^32 or more
	// (FORMAT.md §2.2).
	RuleWireVarint = "wire.varint"
	// A field number is 0 or 536,870,911, a wire type is a group or undefined, or a known
	// field has another wire type than its own (FORMAT.md §2.2).
	RuleWireTag = "wire.tag"
	// Field numbers decrease, a singular field repeats, a repeated field is interrupted, or
	// an unknown field repeats with another wire type (FORMAT.md §2.2).
	RuleWireOrder = "wire.order"
	// A Term holds more than one kind (FORMAT.md §2.2).
	RuleWireOneof = "wire.oneof"
	// A bool is not 0 or 1, a uint32 is 2^32 or more, an int32 or enum is outside the int32
	// range (FORMAT.md §2.2).
	RuleWireRange = "wire.range"
	// A string is not well-formed UTF-8 (FORMAT.md §2.2).
	RuleWireUTF8 = "wire.utf8"
	// A field without presence is written with its default value (FORMAT.md §2.2).
	RuleWireDefault = "wire.default"
	// Bytes given as one Term outside a checkpoint (the input of hash-trainset,
	// DecodeTrainsetTerm) are not a protobuf encoding of a Term; a checkpoint is never
	// refused with it (FORMAT.md §2).
	RuleInputMalformed = "input.malformed"
	// The checkpoint's weight is above 7 x its length + 50,331,648 (FORMAT.md §2.4).
	RuleInputWeight = "input.weight"
	// The format identifier is missing or empty (FORMAT.md §4).
	RuleFormatRequired = "format.required"
	// The format identifier is not dsxir.optimizer_session.checkpoint/v<major>.<minor>
	// (FORMAT.md §4).
	RuleFormatShape = "format.shape"
	// The major version is not 1 (FORMAT.md §4).
	RuleFormatMajor = "format.major"
	// The session id is empty (FORMAT.md §1).
	RuleSessionIDRequired = "session_id.required"
	// The optimizer is empty (FORMAT.md §1).
	RuleOptimizerRequired = "optimizer.required"
	// An option's key is empty (FORMAT.md §1).
	RuleOptimizerOptsKeyRequired = "optimizer_opts.key.required"
	// An option has no value (FORMAT.md §1).
	RuleOptimizerOptsValueRequired = "optimizer_opts.value.required"
	// Program_module is present but empty (FORMAT.md §1).
	RuleProgramModuleNotEmpty = "program_module.not_empty"
	// Trainset_hash is not exactly 32 bytes (FORMAT.md §6).
	RuleTrainsetHashLength = "trainset_hash.length"
	// A required timestamp is absent (FORMAT.md §3.5).
	RuleTimestampRequired = "timestamp.required"
	// Nanos is outside [0, 999,999,999] (FORMAT.md §3.5).
	RuleTimestampNanos = "timestamp.nanos"
	// Seconds is outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z (FORMAT.md §3.5).
	RuleTimestampSeconds = "timestamp.seconds"
	// Progress is absent (FORMAT.md §1).
	RuleProgressRequired = "progress.required"
	// An entry's trial_idx is not its position in the log (FORMAT.md §1).
	RuleTrialTrialIdx = "trial.trial_idx"
	// An entry's status is unspecified or unknown (FORMAT.md §1).
	RuleTrialStatus = "trial.status"
	// A float is NaN (FORMAT.md §3.2).
	RuleFloatNaN = "float.nan"
	// A Term is nested deeper than 24; the first Term past the limit is named (FORMAT.md §3.6).
	RuleTermDepth = "term.depth"
	// A Term has no kind set (FORMAT.md §1).
	RuleTermKind = "term.kind"
	// A big integer is empty, not minimal, or fits in int64 (FORMAT.md §3.3).
	RuleTermBigint = "term.bigint"
	// A map entry has no key (FORMAT.md §3.4).
	RuleTermMapKeyRequired = "term.map.key_required"
	// A map entry has no value (FORMAT.md §3.4).
	RuleTermMapValueRequired = "term.map.value_required"
	// A map key's canonical bytes are not greater than the previous key's (unsorted or
	// duplicate) (FORMAT.md §3.4).
	RuleTermMapOrder = "term.map.order"
	// Best_score and best_trial_idx are not both present or both absent; the absent one is
	// named (FORMAT.md §1).
	RuleBestPair = "best.pair"
	// Best_trial_idx is past the end of the trial log (FORMAT.md §1).
	RuleBestTrialIdxRange = "best.trial_idx.range"
	// The trial best_trial_idx names is not an ok trial with a score (FORMAT.md §1).
	RuleBestTrialIdxTrial = "best.trial_idx.trial"
	// The named trial's score does not have the same 64 bits as best_score (FORMAT.md §3.2).
	RuleBestScore = "best.score"
	// Completed is not the number of ok entries (FORMAT.md §1).
	RuleCountersCompleted = "counters.completed"
	// Errors is not the number of error entries (FORMAT.md §1).
	RuleCountersErrors = "counters.errors"
	// Attempts is less than completed + errors (FORMAT.md §1).
	RuleCountersAttempts = "counters.attempts"
	// Sampler_format is absent (FORMAT.md §1).
	RuleSamplerFormatRequired = "sampler_format.required"
	// The sampler module is empty (FORMAT.md §1).
	RuleSamplerFormatModuleRequired = "sampler_format.module.required"
	// The sampler version is 0 (FORMAT.md §1).
	RuleSamplerFormatVersionMin = "sampler_format.version.min"
	// The status is unspecified or unknown (FORMAT.md §1).
	RuleStatusKnown = "status.known"
	// The direction is neither higher (0) nor lower (1) (FORMAT.md §1).
	RuleDirectionKnown = "direction.known"
)

// IsRule reports whether id is one of the rule ids above (a server's error
// may name any text; the client keeps only an id this library knows).
func IsRule(id string) bool {
	_, ok := ruleIDs[id]
	return ok
}

var ruleIDs = map[string]struct{}{
	RuleInputTooLarge:               {},
	RuleInputTrailer:                {},
	RuleInputChecksum:               {},
	RuleWireTruncated:               {},
	RuleWireVarint:                  {},
	RuleWireTag:                     {},
	RuleWireOrder:                   {},
	RuleWireOneof:                   {},
	RuleWireRange:                   {},
	RuleWireUTF8:                    {},
	RuleWireDefault:                 {},
	RuleInputMalformed:              {},
	RuleInputWeight:                 {},
	RuleFormatRequired:              {},
	RuleFormatShape:                 {},
	RuleFormatMajor:                 {},
	RuleSessionIDRequired:           {},
	RuleOptimizerRequired:           {},
	RuleOptimizerOptsKeyRequired:    {},
	RuleOptimizerOptsValueRequired:  {},
	RuleProgramModuleNotEmpty:       {},
	RuleTrainsetHashLength:          {},
	RuleTimestampRequired:           {},
	RuleTimestampNanos:              {},
	RuleTimestampSeconds:            {},
	RuleProgressRequired:            {},
	RuleTrialTrialIdx:               {},
	RuleTrialStatus:                 {},
	RuleFloatNaN:                    {},
	RuleTermDepth:                   {},
	RuleTermKind:                    {},
	RuleTermBigint:                  {},
	RuleTermMapKeyRequired:          {},
	RuleTermMapValueRequired:        {},
	RuleTermMapOrder:                {},
	RuleBestPair:                    {},
	RuleBestTrialIdxRange:           {},
	RuleBestTrialIdxTrial:           {},
	RuleBestScore:                   {},
	RuleCountersCompleted:           {},
	RuleCountersErrors:              {},
	RuleCountersAttempts:            {},
	RuleSamplerFormatRequired:       {},
	RuleSamplerFormatModuleRequired: {},
	RuleSamplerFormatVersionMin:     {},
	RuleStatusKnown:                 {},
	RuleDirectionKnown:              {},
}
