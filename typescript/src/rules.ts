/**
 * The ids of the rules a v1 reader applies (spec/checkpoint-rules-v1.json,
 * FORMAT.md §7), the same in every language.
 *
 * Every refusal of a checkpoint (`decode`, `encode`, `check`, the Term
 * checks) names one in the `rule` of its `ResumeMismatch` or
 * `InvalidCheckpoint`, and its message ends with ` (rule <id>)`; an error
 * about a caller's argument that breaks no checkpoint rule has rule `null`.
 */
export const Rule = {
  /** The input is longer than 268,435,456 bytes (trailer included); checked first (FORMAT.md §3.6). */
  INPUT_TOO_LARGE: "input.too_large",
  /**
   * The input is shorter than 9 bytes or its last 9 bytes do not start with the trailer tag FD FF FF FF
   * 0F (a cut or foreign input) (FORMAT.md §2.1).
   */
  INPUT_TRAILER: "input.trailer",
  /** The trailer's CRC-32C is not the CRC-32C of the bytes before the trailer (FORMAT.md §2.1). */
  INPUT_CHECKSUM: "input.checksum",
  /** A tag, varint, length or value runs past the end of its message (FORMAT.md §2.2). */
  WIRE_TRUNCATED: "wire.truncated",
  /** A varint is not minimal or does not fit in 64 bits, or a tag is 2^32 or more (FORMAT.md §2.2). */
  WIRE_VARINT: "wire.varint",
  /**
   * A field number is 0 or 536,870,911, a wire type is a group or undefined, or a known field has
   * another wire type than its own (FORMAT.md §2.2).
   */
  WIRE_TAG: "wire.tag",
  /**
   * Field numbers decrease, a singular field repeats, a repeated field is interrupted, or an unknown
   * field repeats with another wire type (FORMAT.md §2.2).
   */
  WIRE_ORDER: "wire.order",
  /** A Term holds more than one kind (FORMAT.md §2.2). */
  WIRE_ONEOF: "wire.oneof",
  /**
   * A bool is not 0 or 1, a uint32 is 2^32 or more, an int32 or enum is outside the int32 range
   * (FORMAT.md §2.2).
   */
  WIRE_RANGE: "wire.range",
  /** A string is not well-formed UTF-8 (FORMAT.md §2.2). */
  WIRE_UTF8: "wire.utf8",
  /** A field without presence is written with its default value (FORMAT.md §2.2). */
  WIRE_DEFAULT: "wire.default",
  /**
   * Bytes given as one Term outside a checkpoint (the input of hash-trainset) are not a protobuf
   * encoding of a Term; a checkpoint is never refused with it (FORMAT.md §2).
   */
  INPUT_MALFORMED: "input.malformed",
  /** The checkpoint's weight is above 7 x its length + 50,331,648 (FORMAT.md §2.4). */
  INPUT_WEIGHT: "input.weight",
  /** The format identifier is missing or empty (FORMAT.md §4). */
  FORMAT_REQUIRED: "format.required",
  /** The format identifier is not dsxir.optimizer_session.checkpoint/v<major>.<minor> (FORMAT.md §4). */
  FORMAT_SHAPE: "format.shape",
  /** The major version is not 1 (FORMAT.md §4). */
  FORMAT_MAJOR: "format.major",
  /** The session id is empty (FORMAT.md §1). */
  SESSION_ID_REQUIRED: "session_id.required",
  /** The optimizer is empty (FORMAT.md §1). */
  OPTIMIZER_REQUIRED: "optimizer.required",
  /** An option's key is empty (FORMAT.md §1). */
  OPTIMIZER_OPTS_KEY_REQUIRED: "optimizer_opts.key.required",
  /** An option has no value (FORMAT.md §1). */
  OPTIMIZER_OPTS_VALUE_REQUIRED: "optimizer_opts.value.required",
  /** Program_module is present but empty (FORMAT.md §1). */
  PROGRAM_MODULE_NOT_EMPTY: "program_module.not_empty",
  /** Trainset_hash is not exactly 32 bytes (FORMAT.md §6). */
  TRAINSET_HASH_LENGTH: "trainset_hash.length",
  /** A required timestamp is absent (FORMAT.md §3.5). */
  TIMESTAMP_REQUIRED: "timestamp.required",
  /** Nanos is outside [0, 999,999,999] (FORMAT.md §3.5). */
  TIMESTAMP_NANOS: "timestamp.nanos",
  /** Seconds is outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z (FORMAT.md §3.5). */
  TIMESTAMP_SECONDS: "timestamp.seconds",
  /** Progress is absent (FORMAT.md §1). */
  PROGRESS_REQUIRED: "progress.required",
  /** An entry's trial_idx is not its position in the log (FORMAT.md §1). */
  TRIAL_TRIAL_IDX: "trial.trial_idx",
  /** An entry's status is unspecified or unknown (FORMAT.md §1). */
  TRIAL_STATUS: "trial.status",
  /** A float is NaN (FORMAT.md §3.2). */
  FLOAT_NAN: "float.nan",
  /** A Term is nested deeper than 24; the first Term past the limit is named (FORMAT.md §2.2). */
  TERM_DEPTH: "term.depth",
  /** A Term has no kind set (FORMAT.md §1). */
  TERM_KIND: "term.kind",
  /** A big integer is empty, not minimal, or fits in int64 (FORMAT.md §3.3). */
  TERM_BIGINT: "term.bigint",
  /** A map entry has no key (FORMAT.md §3.4). */
  TERM_MAP_KEY_REQUIRED: "term.map.key_required",
  /** A map entry has no value (FORMAT.md §3.4). */
  TERM_MAP_VALUE_REQUIRED: "term.map.value_required",
  /**
   * A map key's canonical bytes are not greater than the previous key's (unsorted or duplicate)
   * (FORMAT.md §3.4).
   */
  TERM_MAP_ORDER: "term.map.order",
  /**
   * Best_score and best_trial_idx are not both present or both absent; the absent one is named
   * (FORMAT.md §1).
   */
  BEST_PAIR: "best.pair",
  /** Best_trial_idx is past the end of the trial log (FORMAT.md §1). */
  BEST_TRIAL_IDX_RANGE: "best.trial_idx.range",
  /** The trial best_trial_idx names is not an ok trial with a score (FORMAT.md §1). */
  BEST_TRIAL_IDX_TRIAL: "best.trial_idx.trial",
  /** The named trial's score does not have the same 64 bits as best_score (FORMAT.md §3.2). */
  BEST_SCORE: "best.score",
  /** Completed is not the number of ok entries (FORMAT.md §1). */
  COUNTERS_COMPLETED: "counters.completed",
  /** Errors is not the number of error entries (FORMAT.md §1). */
  COUNTERS_ERRORS: "counters.errors",
  /** Attempts is less than completed + errors (FORMAT.md §1). */
  COUNTERS_ATTEMPTS: "counters.attempts",
  /** Sampler_format is absent (FORMAT.md §1). */
  SAMPLER_FORMAT_REQUIRED: "sampler_format.required",
  /** The sampler module is empty (FORMAT.md §1). */
  SAMPLER_FORMAT_MODULE_REQUIRED: "sampler_format.module.required",
  /** The sampler version is 0 (FORMAT.md §1). */
  SAMPLER_FORMAT_VERSION_MIN: "sampler_format.version.min",
  /** The status is unspecified or unknown (FORMAT.md §1). */
  STATUS_KNOWN: "status.known",
  /** The direction is neither higher (0) nor lower (1) (FORMAT.md §1). */
  DIRECTION_KNOWN: "direction.known",
} as const;

/** One of the rule ids of {@link Rule}. */
export type RuleId = (typeof Rule)[keyof typeof Rule];

const IDS: ReadonlySet<string> = new Set(Object.values(Rule));

/** Whether `text` is one of the rule ids (e.g. a rule a server named). */
export function isRuleId(text: unknown): text is RuleId {
  return typeof text === "string" && IDS.has(text);
}
