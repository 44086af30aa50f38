"""The ids of the rules a v1 reader applies (FORMAT.md §7.1), one constant per rule.

spec/checkpoint-rules-v1.json lists every rule once, with its path, section
and meaning (FORMAT.md §7.1 shows them as a table); these constants, in the
order of that file, are exactly its ids (tests/python/format/
test_rules.py checks it). Every refusal of a checkpoint names one:
``InvalidCheckpoint.rule``, and ``ResumeMismatch.rule`` of reason
``checkpoint_shape``. An id never changes meaning; a new rule gets a new id.
"""

from __future__ import annotations

__all__ = [
    "ALL",
    "BEST_PAIR",
    "BEST_SCORE",
    "BEST_TRIAL_IDX_RANGE",
    "BEST_TRIAL_IDX_TRIAL",
    "COUNTERS_ATTEMPTS",
    "COUNTERS_COMPLETED",
    "COUNTERS_ERRORS",
    "DIRECTION_KNOWN",
    "FLOAT_NAN",
    "FORMAT_MAJOR",
    "FORMAT_REQUIRED",
    "FORMAT_SHAPE",
    "INPUT_CHECKSUM",
    "INPUT_MALFORMED",
    "INPUT_TOO_LARGE",
    "INPUT_TRAILER",
    "INPUT_WEIGHT",
    "OPTIMIZER_OPTS_KEY_REQUIRED",
    "OPTIMIZER_OPTS_VALUE_REQUIRED",
    "OPTIMIZER_REQUIRED",
    "PROGRAM_MODULE_NOT_EMPTY",
    "PROGRESS_REQUIRED",
    "SAMPLER_FORMAT_MODULE_REQUIRED",
    "SAMPLER_FORMAT_REQUIRED",
    "SAMPLER_FORMAT_VERSION_MIN",
    "SESSION_ID_REQUIRED",
    "STATUS_KNOWN",
    "TERM_BIGINT",
    "TERM_DEPTH",
    "TERM_KIND",
    "TERM_MAP_KEY_REQUIRED",
    "TERM_MAP_ORDER",
    "TERM_MAP_VALUE_REQUIRED",
    "TIMESTAMP_NANOS",
    "TIMESTAMP_REQUIRED",
    "TIMESTAMP_SECONDS",
    "TRAINSET_HASH_LENGTH",
    "TRIAL_STATUS",
    "TRIAL_TRIAL_IDX",
    "WIRE_DEFAULT",
    "WIRE_ONEOF",
    "WIRE_ORDER",
    "WIRE_RANGE",
    "WIRE_TAG",
    "WIRE_TRUNCATED",
    "WIRE_UTF8",
    "WIRE_VARINT",
]

INPUT_TOO_LARGE = "input.too_large"
INPUT_TRAILER = "input.trailer"
INPUT_CHECKSUM = "input.checksum"
WIRE_TRUNCATED = "wire.truncated"
WIRE_VARINT = "wire.varint"
WIRE_TAG = "wire.tag"
WIRE_ORDER = "wire.order"
WIRE_ONEOF = "wire.oneof"
WIRE_RANGE = "wire.range"
WIRE_UTF8 = "wire.utf8"
WIRE_DEFAULT = "wire.default"
INPUT_MALFORMED = "input.malformed"
INPUT_WEIGHT = "input.weight"
FORMAT_REQUIRED = "format.required"
FORMAT_SHAPE = "format.shape"
FORMAT_MAJOR = "format.major"
SESSION_ID_REQUIRED = "session_id.required"
OPTIMIZER_REQUIRED = "optimizer.required"
OPTIMIZER_OPTS_KEY_REQUIRED = "optimizer_opts.key.required"
OPTIMIZER_OPTS_VALUE_REQUIRED = "optimizer_opts.value.required"
PROGRAM_MODULE_NOT_EMPTY = "program_module.not_empty"
TRAINSET_HASH_LENGTH = "trainset_hash.length"
TIMESTAMP_REQUIRED = "timestamp.required"
TIMESTAMP_NANOS = "timestamp.nanos"
TIMESTAMP_SECONDS = "timestamp.seconds"
PROGRESS_REQUIRED = "progress.required"
TRIAL_TRIAL_IDX = "trial.trial_idx"
TRIAL_STATUS = "trial.status"
FLOAT_NAN = "float.nan"
TERM_DEPTH = "term.depth"
TERM_KIND = "term.kind"
TERM_BIGINT = "term.bigint"
TERM_MAP_KEY_REQUIRED = "term.map.key_required"
TERM_MAP_VALUE_REQUIRED = "term.map.value_required"
TERM_MAP_ORDER = "term.map.order"
BEST_PAIR = "best.pair"
BEST_TRIAL_IDX_RANGE = "best.trial_idx.range"
BEST_TRIAL_IDX_TRIAL = "best.trial_idx.trial"
BEST_SCORE = "best.score"
COUNTERS_COMPLETED = "counters.completed"
COUNTERS_ERRORS = "counters.errors"
COUNTERS_ATTEMPTS = "counters.attempts"
SAMPLER_FORMAT_REQUIRED = "sampler_format.required"
SAMPLER_FORMAT_MODULE_REQUIRED = "sampler_format.module.required"
SAMPLER_FORMAT_VERSION_MIN = "sampler_format.version.min"
STATUS_KNOWN = "status.known"
DIRECTION_KNOWN = "direction.known"

ALL: frozenset[str] = frozenset(
    {
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
    }
)
"""Every rule id of format v1."""
