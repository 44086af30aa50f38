package com.dsxir.checkpoint;

import java.util.List;

/**
 * The stable ids of the rules a v1 reader applies to a checkpoint: one constant per rule of
 * spec/checkpoint-rules-v1.json (FORMAT.md §7), the same ids in every language. Every refusal of a
 * checkpoint names the rule it broke ({@link ResumeMismatch#rule()}, {@link
 * InvalidCheckpoint#rule()}), and its message ends with {@code (rule <id>)}. An id never changes
 * meaning; a new rule gets a new id.
 */
public final class Rules {
  /**
   * At {@code <input>} (FORMAT.md §3.6): the input is longer than 268,435,456 bytes (trailer
   * included); checked first.
   */
  public static final String INPUT_TOO_LARGE = "input.too_large";

  /**
   * At {@code <input>} (FORMAT.md §2.1): the input is shorter than 9 bytes or its last 9 bytes do
   * not start with the trailer tag FD FF FF FF 0F (a cut or foreign input).
   */
  public static final String INPUT_TRAILER = "input.trailer";

  /**
   * At {@code <input>} (FORMAT.md §2.1): the trailer's CRC-32C is not the CRC-32C of the bytes
   * before the trailer.
   */
  public static final String INPUT_CHECKSUM = "input.checksum";

  /**
   * At {@code <message>} (FORMAT.md §2.2): a tag, varint, length or value runs past the end of its
   * message.
   */
  public static final String WIRE_TRUNCATED = "wire.truncated";

  /**
   * At {@code <message>} (a tag) or {@code <field>} (a value or length) (FORMAT.md §2.2): a varint
   * is not minimal or does not fit in 64 bits, or a tag is 2^32 or more.
   */
  public static final String WIRE_VARINT = "wire.varint";

  /**
   * At {@code <message>} (FORMAT.md §2.2): a field number is 0 or 536,870,911, a wire type is a
   * group or undefined, or a known field has another wire type than its own.
   */
  public static final String WIRE_TAG = "wire.tag";

  /**
   * At {@code <message>} (FORMAT.md §2.2): field numbers decrease, a singular field repeats, a
   * repeated field is interrupted, or an unknown field repeats with another wire type.
   */
  public static final String WIRE_ORDER = "wire.order";

  /** At {@code <message>} (FORMAT.md §2.2): a Term holds more than one kind. */
  public static final String WIRE_ONEOF = "wire.oneof";

  /**
   * At {@code <field>} (FORMAT.md §2.2): a bool is not 0 or 1, a uint32 is 2^32 or more, an int32
   * or enum is outside the int32 range.
   */
  public static final String WIRE_RANGE = "wire.range";

  /** At {@code <field>} (FORMAT.md §2.2): a string is not well-formed UTF-8. */
  public static final String WIRE_UTF8 = "wire.utf8";

  /**
   * At {@code <field>} (FORMAT.md §2.2): a field without presence is written with its default
   * value.
   */
  public static final String WIRE_DEFAULT = "wire.default";

  /**
   * At {@code <input>} (FORMAT.md §2): bytes given as one Term outside a checkpoint (the input of
   * hash-trainset) are not a protobuf encoding of a Term; a checkpoint is never refused with it.
   */
  public static final String INPUT_MALFORMED = "input.malformed";

  /**
   * At {@code <input>} (FORMAT.md §2.4): the checkpoint's weight is above 7 x its length +
   * 50,331,648.
   */
  public static final String INPUT_WEIGHT = "input.weight";

  /** At {@code format} (FORMAT.md §4): the format identifier is missing or empty. */
  public static final String FORMAT_REQUIRED = "format.required";

  /**
   * At {@code format} (FORMAT.md §4): the format identifier is not {@code
   * dsxir.optimizer_session.checkpoint/v<major>.<minor>}.
   */
  public static final String FORMAT_SHAPE = "format.shape";

  /** At {@code format} (FORMAT.md §4): the major version is not 1. */
  public static final String FORMAT_MAJOR = "format.major";

  /** At {@code session_id} (FORMAT.md §1): the session id is empty. */
  public static final String SESSION_ID_REQUIRED = "session_id.required";

  /** At {@code optimizer} (FORMAT.md §1): the optimizer is empty. */
  public static final String OPTIMIZER_REQUIRED = "optimizer.required";

  /** At {@code optimizer_opts[i].key} (FORMAT.md §1): an option's key is empty. */
  public static final String OPTIMIZER_OPTS_KEY_REQUIRED = "optimizer_opts.key.required";

  /** At {@code optimizer_opts[i].value} (FORMAT.md §1): an option has no value. */
  public static final String OPTIMIZER_OPTS_VALUE_REQUIRED = "optimizer_opts.value.required";

  /** At {@code program_module} (FORMAT.md §1): program_module is present but empty. */
  public static final String PROGRAM_MODULE_NOT_EMPTY = "program_module.not_empty";

  /** At {@code trainset_hash} (FORMAT.md §6): trainset_hash is not exactly 32 bytes. */
  public static final String TRAINSET_HASH_LENGTH = "trainset_hash.length";

  /**
   * At {@code created_at | updated_at | progress.started_at} (FORMAT.md §3.5): a required timestamp
   * is absent.
   */
  public static final String TIMESTAMP_REQUIRED = "timestamp.required";

  /** At {@code <timestamp>.nanos} (FORMAT.md §3.5): nanos is outside [0, 999,999,999]. */
  public static final String TIMESTAMP_NANOS = "timestamp.nanos";

  /**
   * At {@code <timestamp>.seconds} (FORMAT.md §3.5): seconds is outside
   * 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z.
   */
  public static final String TIMESTAMP_SECONDS = "timestamp.seconds";

  /** At {@code progress} (FORMAT.md §1): progress is absent. */
  public static final String PROGRESS_REQUIRED = "progress.required";

  /**
   * At {@code progress.trial_log[i].trial_idx} (FORMAT.md §1): an entry's trial_idx is not its
   * position in the log.
   */
  public static final String TRIAL_TRIAL_IDX = "trial.trial_idx";

  /**
   * At {@code progress.trial_log[i].status} (FORMAT.md §1): an entry's status is unspecified or
   * unknown.
   */
  public static final String TRIAL_STATUS = "trial.status";

  /**
   * At {@code progress.trial_log[i].score | progress.best_score | T.float_value} (FORMAT.md §3.2):
   * a float is NaN.
   */
  public static final String FLOAT_NAN = "float.nan";

  /**
   * At {@code T} (FORMAT.md §2.2): a Term is nested deeper than 24; the first Term past the limit
   * is named.
   */
  public static final String TERM_DEPTH = "term.depth";

  /** At {@code T} (FORMAT.md §1): a Term has no kind set. */
  public static final String TERM_KIND = "term.kind";

  /**
   * At {@code T.bigint_value} (FORMAT.md §3.3): a big integer is empty, not minimal, or fits in
   * int64.
   */
  public static final String TERM_BIGINT = "term.bigint";

  /** At {@code T.entries[i]} (FORMAT.md §3.4): a map entry has no key. */
  public static final String TERM_MAP_KEY_REQUIRED = "term.map.key_required";

  /** At {@code T.entries[i]} (FORMAT.md §3.4): a map entry has no value. */
  public static final String TERM_MAP_VALUE_REQUIRED = "term.map.value_required";

  /**
   * At {@code T.entries[i].key} (FORMAT.md §3.4): a map key's canonical bytes are not greater than
   * the previous key's (unsorted or duplicate).
   */
  public static final String TERM_MAP_ORDER = "term.map.order";

  /**
   * At {@code progress.best_score | progress.best_trial_idx} (FORMAT.md §1): best_score and
   * best_trial_idx are not both present or both absent; the absent one is named.
   */
  public static final String BEST_PAIR = "best.pair";

  /**
   * At {@code progress.best_trial_idx} (FORMAT.md §1): best_trial_idx is past the end of the trial
   * log.
   */
  public static final String BEST_TRIAL_IDX_RANGE = "best.trial_idx.range";

  /**
   * At {@code progress.best_trial_idx} (FORMAT.md §1): the trial best_trial_idx names is not an ok
   * trial with a score.
   */
  public static final String BEST_TRIAL_IDX_TRIAL = "best.trial_idx.trial";

  /**
   * At {@code progress.best_trial_idx} (FORMAT.md §3.2): the named trial's score does not have the
   * same 64 bits as best_score.
   */
  public static final String BEST_SCORE = "best.score";

  /** At {@code progress.completed} (FORMAT.md §1): completed is not the number of ok entries. */
  public static final String COUNTERS_COMPLETED = "counters.completed";

  /** At {@code progress.errors} (FORMAT.md §1): errors is not the number of error entries. */
  public static final String COUNTERS_ERRORS = "counters.errors";

  /** At {@code progress.attempts} (FORMAT.md §1): attempts is less than completed + errors. */
  public static final String COUNTERS_ATTEMPTS = "counters.attempts";

  /** At {@code sampler_format} (FORMAT.md §1): sampler_format is absent. */
  public static final String SAMPLER_FORMAT_REQUIRED = "sampler_format.required";

  /** At {@code sampler_format.module} (FORMAT.md §1): the sampler module is empty. */
  public static final String SAMPLER_FORMAT_MODULE_REQUIRED = "sampler_format.module.required";

  /** At {@code sampler_format.version} (FORMAT.md §1): the sampler version is 0. */
  public static final String SAMPLER_FORMAT_VERSION_MIN = "sampler_format.version.min";

  /** At {@code status} (FORMAT.md §1): the status is unspecified or unknown. */
  public static final String STATUS_KNOWN = "status.known";

  /** At {@code direction} (FORMAT.md §1): the direction is neither higher (0) nor lower (1). */
  public static final String DIRECTION_KNOWN = "direction.known";

  /** Every rule id, in the order of spec/checkpoint-rules-v1.json. */
  public static final List<String> ALL =
      List.of(
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
          DIRECTION_KNOWN);

  private Rules() {}
}
