//! The stable ids of the rules a v1 reader applies to a checkpoint: one
//! constant per rule of spec/checkpoint-rules-v1.json (FORMAT.md §7), the
//! same ids in every language. Every refusal of a checkpoint names the rule
//! it broke ([`crate::ResumeMismatch::rule`], [`crate::InvalidCheckpoint::rule`]),
//! and its message ends with `(rule <id>)`. An id never changes meaning; a new
//! rule gets a new id.

/// At `<input>` (FORMAT.md §3.6): the input is longer than 268,435,456 bytes (trailer included);
/// checked first.
pub const INPUT_TOO_LARGE: &str = "input.too_large";

/// At `<input>` (FORMAT.md §2.1): the input is shorter than 9 bytes or its last 9 bytes do not
/// start with the trailer tag FD FF FF FF 0F (a cut or foreign input).
pub const INPUT_TRAILER: &str = "input.trailer";

/// At `<input>` (FORMAT.md §2.1): the trailer's CRC-32C is not the CRC-32C of the bytes before the
/// trailer.
pub const INPUT_CHECKSUM: &str = "input.checksum";

/// At `<message>` (FORMAT.md §2.2): a tag, varint, length or value runs past the end of its
/// message.
pub const WIRE_TRUNCATED: &str = "wire.truncated";

/// At `<message> | <field>` (FORMAT.md §2.2): a varint is not minimal or does not fit in 64 bits,
/// or a tag is 2^32 or more.
pub const WIRE_VARINT: &str = "wire.varint";

/// At `<message>` (FORMAT.md §2.2): a field number is 0 or 536,870,911, a wire type is a group or
/// undefined, or a known field has another wire type than its own.
pub const WIRE_TAG: &str = "wire.tag";

/// At `<message>` (FORMAT.md §2.2): field numbers decrease, a singular field repeats, a repeated
/// field is interrupted, or an unknown field repeats with another wire type.
pub const WIRE_ORDER: &str = "wire.order";

/// At `<message>` (FORMAT.md §2.2): a Term holds more than one kind.
pub const WIRE_ONEOF: &str = "wire.oneof";

/// At `<field>` (FORMAT.md §2.2): a bool is not 0 or 1, a uint32 is 2^32 or more, an int32 or enum
/// is outside the int32 range.
pub const WIRE_RANGE: &str = "wire.range";

/// At `<field>` (FORMAT.md §2.2): a string is not well-formed UTF-8.
pub const WIRE_UTF8: &str = "wire.utf8";

/// At `<field>` (FORMAT.md §2.2): a field without presence is written with its default value.
pub const WIRE_DEFAULT: &str = "wire.default";

/// At `<input>` (FORMAT.md §2): bytes given as one Term outside a checkpoint (the input of hash-
/// trainset) are not a protobuf encoding of a Term; a checkpoint is never refused with it.
pub const INPUT_MALFORMED: &str = "input.malformed";

/// At `<input>` (FORMAT.md §2.4): the checkpoint's weight is above 7 x its length + 50,331,648.
pub const INPUT_WEIGHT: &str = "input.weight";

/// At `format` (FORMAT.md §4): the format identifier is missing or empty.
pub const FORMAT_REQUIRED: &str = "format.required";

/// At `format` (FORMAT.md §4): the format identifier is not
/// `dsxir.optimizer_session.checkpoint/v<major>.<minor>`.
pub const FORMAT_SHAPE: &str = "format.shape";

/// At `format` (FORMAT.md §4): the major version is not 1.
pub const FORMAT_MAJOR: &str = "format.major";

/// At `session_id` (FORMAT.md §1): the session id is empty.
pub const SESSION_ID_REQUIRED: &str = "session_id.required";

/// At `optimizer` (FORMAT.md §1): the optimizer is empty.
pub const OPTIMIZER_REQUIRED: &str = "optimizer.required";

/// At `optimizer_opts[i].key` (FORMAT.md §1): an option's key is empty.
pub const OPTIMIZER_OPTS_KEY_REQUIRED: &str = "optimizer_opts.key.required";

/// At `optimizer_opts[i].value` (FORMAT.md §1): an option has no value.
pub const OPTIMIZER_OPTS_VALUE_REQUIRED: &str = "optimizer_opts.value.required";

/// At `program_module` (FORMAT.md §1): program_module is present but empty.
pub const PROGRAM_MODULE_NOT_EMPTY: &str = "program_module.not_empty";

/// At `trainset_hash` (FORMAT.md §6): trainset_hash is not exactly 32 bytes.
pub const TRAINSET_HASH_LENGTH: &str = "trainset_hash.length";

/// At `created_at | updated_at | progress.started_at` (FORMAT.md §3.5): a required timestamp is
/// absent.
pub const TIMESTAMP_REQUIRED: &str = "timestamp.required";

/// At `<timestamp>.nanos` (FORMAT.md §3.5): nanos is outside [0, 999,999,999].
pub const TIMESTAMP_NANOS: &str = "timestamp.nanos";

/// At `<timestamp>.seconds` (FORMAT.md §3.5): seconds is outside
/// 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z.
pub const TIMESTAMP_SECONDS: &str = "timestamp.seconds";

/// At `progress` (FORMAT.md §1): progress is absent.
pub const PROGRESS_REQUIRED: &str = "progress.required";

/// At `progress.trial_log[i].trial_idx` (FORMAT.md §1): an entry's trial_idx is not its position in
/// the log.
pub const TRIAL_TRIAL_IDX: &str = "trial.trial_idx";

/// At `progress.trial_log[i].status` (FORMAT.md §1): an entry's status is unspecified or unknown.
pub const TRIAL_STATUS: &str = "trial.status";

/// At `progress.trial_log[i].score | progress.best_score | T.float_value` (FORMAT.md §3.2): a float
/// is NaN.
pub const FLOAT_NAN: &str = "float.nan";

/// At `T` (FORMAT.md §2.2): a Term is nested deeper than 24; the first Term past the limit is
/// named.
pub const TERM_DEPTH: &str = "term.depth";

/// At `T` (FORMAT.md §1): a Term has no kind set.
pub const TERM_KIND: &str = "term.kind";

/// At `T.bigint_value` (FORMAT.md §3.3): a big integer is empty, not minimal, or fits in int64.
pub const TERM_BIGINT: &str = "term.bigint";

/// At `T.entries[i]` (FORMAT.md §3.4): a map entry has no key.
pub const TERM_MAP_KEY_REQUIRED: &str = "term.map.key_required";

/// At `T.entries[i]` (FORMAT.md §3.4): a map entry has no value.
pub const TERM_MAP_VALUE_REQUIRED: &str = "term.map.value_required";

/// At `T.entries[i].key` (FORMAT.md §3.4): a map key's canonical bytes are not greater than the
/// previous key's (unsorted or duplicate).
pub const TERM_MAP_ORDER: &str = "term.map.order";

/// At `progress.best_score | progress.best_trial_idx` (FORMAT.md §1): best_score and best_trial_idx
/// are not both present or both absent; the absent one is named.
pub const BEST_PAIR: &str = "best.pair";

/// At `progress.best_trial_idx` (FORMAT.md §1): best_trial_idx is past the end of the trial log.
pub const BEST_TRIAL_IDX_RANGE: &str = "best.trial_idx.range";

/// At `progress.best_trial_idx` (FORMAT.md §1): the trial best_trial_idx names is not an ok trial
/// with a score.
pub const BEST_TRIAL_IDX_TRIAL: &str = "best.trial_idx.trial";

/// At `progress.best_trial_idx` (FORMAT.md §3.2): the named trial's score does not have the same 64
/// bits as best_score.
pub const BEST_SCORE: &str = "best.score";

/// At `progress.completed` (FORMAT.md §1): completed is not the number of ok entries.
pub const COUNTERS_COMPLETED: &str = "counters.completed";

/// At `progress.errors` (FORMAT.md §1): errors is not the number of error entries.
pub const COUNTERS_ERRORS: &str = "counters.errors";

/// At `progress.attempts` (FORMAT.md §1): attempts is less than completed + errors.
pub const COUNTERS_ATTEMPTS: &str = "counters.attempts";

/// At `sampler_format` (FORMAT.md §1): sampler_format is absent.
pub const SAMPLER_FORMAT_REQUIRED: &str = "sampler_format.required";

/// At `sampler_format.module` (FORMAT.md §1): the sampler module is empty.
pub const SAMPLER_FORMAT_MODULE_REQUIRED: &str = "sampler_format.module.required";

/// At `sampler_format.version` (FORMAT.md §1): the sampler version is 0.
pub const SAMPLER_FORMAT_VERSION_MIN: &str = "sampler_format.version.min";

/// At `status` (FORMAT.md §1): the status is unspecified or unknown.
pub const STATUS_KNOWN: &str = "status.known";

/// At `direction` (FORMAT.md §1): the direction is neither higher (0) nor lower (1).
pub const DIRECTION_KNOWN: &str = "direction.known";

/// Every rule id, in the order of spec/checkpoint-rules-v1.json.
pub const ALL: &[&str] = &[
    INPUT_TOO_LARGE,
    INPUT_TRAILER,
    INPUT_CHECKSUM,
    WIRE_TRUNCATED,
    WIRE_VARINT,
    WIRE_TAG,
    WIRE_ORDER,
    WIRE_ONEOF,
    WIRE_RANGE,
    WIRE_UTF8,
    WIRE_DEFAULT,
    INPUT_MALFORMED,
    INPUT_WEIGHT,
    FORMAT_REQUIRED,
    FORMAT_SHAPE,
    FORMAT_MAJOR,
    SESSION_ID_REQUIRED,
    OPTIMIZER_REQUIRED,
    OPTIMIZER_OPTS_KEY_REQUIRED,
    OPTIMIZER_OPTS_VALUE_REQUIRED,
    PROGRAM_MODULE_NOT_EMPTY,
    TRAINSET_HASH_LENGTH,
    TIMESTAMP_REQUIRED,
    TIMESTAMP_NANOS,
    TIMESTAMP_SECONDS,
    PROGRESS_REQUIRED,
    TRIAL_TRIAL_IDX,
    TRIAL_STATUS,
    FLOAT_NAN,
    TERM_DEPTH,
    TERM_KIND,
    TERM_BIGINT,
    TERM_MAP_KEY_REQUIRED,
    TERM_MAP_VALUE_REQUIRED,
    TERM_MAP_ORDER,
    BEST_PAIR,
    BEST_TRIAL_IDX_RANGE,
    BEST_TRIAL_IDX_TRIAL,
    BEST_SCORE,
    COUNTERS_COMPLETED,
    COUNTERS_ERRORS,
    COUNTERS_ATTEMPTS,
    SAMPLER_FORMAT_REQUIRED,
    SAMPLER_FORMAT_MODULE_REQUIRED,
    SAMPLER_FORMAT_VERSION_MIN,
    STATUS_KNOWN,
    DIRECTION_KNOWN,
];
