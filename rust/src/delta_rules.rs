//! The stable ids of the rules a v1 reader applies to a checkpoint delta
//! beyond the byte grammar: one constant per rule of
//! spec/delta-rules-v1.json (FORMAT.md §13), the same ids in every language.
//! A delta's grammar refusals use the ids of [`crate::rules`] (`input.*`,
//! `wire.*`, `term.depth`), and the checkpoint a delta makes is checked by
//! those rules too. An id never changes meaning; a new rule gets a new id.

/// At `format` (FORMAT.md §13.1): the delta format identifier is not
/// `dsxir.optimizer_session.delta/v1.<minor>`.
pub const DELTA_FORMAT: &str = "delta.format";

/// At `base_generation` (FORMAT.md §13.1): the base generation is 0.
pub const DELTA_BASE_GENERATION: &str = "delta.base_generation";

/// At `head` (FORMAT.md §13.1): the head is absent.
pub const DELTA_HEAD: &str = "delta.head";

/// At `kept` (FORMAT.md §13.1): kept has a bit set outside the fields 3-7 and
/// 10-15 (the mask 0xFCF8).
pub const DELTA_KEPT: &str = "delta.kept";

/// At `head.<name>` (FORMAT.md §13.1): the head holds a field the delta keeps
/// from the base.
pub const DELTA_KEPT_IN_HEAD: &str = "delta.kept_in_head";

/// At `head.session_id` (FORMAT.md §13.2): the head's session id is not the
/// base's.
pub const DELTA_SESSION: &str = "delta.session";

/// At `base_trials` (FORMAT.md §13.2): the base's trial log does not have
/// base_trials entries.
pub const DELTA_BASE_TRIALS: &str = "delta.base_trials";

/// Every delta rule id, in the order of spec/delta-rules-v1.json.
pub const ALL: &[&str] = &[
    DELTA_FORMAT,
    DELTA_BASE_GENERATION,
    DELTA_HEAD,
    DELTA_KEPT,
    DELTA_KEPT_IN_HEAD,
    DELTA_SESSION,
    DELTA_BASE_TRIALS,
];
