//! The rules a checkpoint must keep (FORMAT.md §1-§4), applied in the order of
//! FORMAT.md §7; the first failure is reported with the path of its field.

use std::borrow::Cow;
use std::cell::Cell;

use prost::Message;

use crate::rules;
use crate::v1::{term, Checkpoint, Direction, Progress, Term, TermMap, TrialLogEntry};
use crate::{InvalidCheckpoint, ResumeMismatch, MAX_TERM_DEPTH};

const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;
const FORMAT_PREFIX: &str = "dsxir.optimizer_session.checkpoint/v";

const SESSION_STATUS_RUNNING: i32 = 1;
const SESSION_STATUS_CANCELLED: i32 = 5;
const TRIAL_STATUS_OK: i32 = 1;
const TRIAL_STATUS_ERROR: i32 = 2;

fn refuse<T>(
    rule: &'static str,
    field: impl Into<String>,
    detail: impl Into<String>,
) -> Result<T, ResumeMismatch> {
    Err(ResumeMismatch::shape(rule, field.into(), detail))
}

/// Where the canonical bytes of map keys (FORMAT.md §3.4) come from.
pub(crate) enum Keys<'a> {
    /// Each key's own encoding: a Term built in memory has no unknown fields.
    Encoded,
    /// The keys' bytes as read (FORMAT.md §7: unknown fields included):
    /// `spans` are the spans in `body` of every map key, in byte order, which
    /// is the order the checks visit them in; `next` is the next unvisited.
    AsRead {
        body: &'a [u8],
        spans: &'a [(u32, u32)],
        next: Cell<usize>,
    },
    /// Key order not checked (the other checks of a checkpoint whose bytes
    /// the grammar refused).
    Unordered,
}

impl<'a> Keys<'a> {
    /// Claims the span of the next map key, before the keys nested in it.
    fn claim(&self) -> usize {
        match self {
            Keys::AsRead { next, .. } => {
                let slot = next.get();
                next.set(slot + 1);
                slot
            }
            _ => 0,
        }
    }

    /// The canonical bytes of `key`, whose span is `slot`; `None` when key
    /// order is not checked.
    fn bytes(&self, slot: usize, key: &Term) -> Option<Cow<'a, [u8]>> {
        match self {
            Keys::Encoded => Some(Cow::Owned(key.encode_to_vec())),
            Keys::AsRead { body, spans, .. } => {
                let (start, end) = spans[slot];
                Some(Cow::Borrowed(&body[start as usize..end as usize]))
            }
            Keys::Unordered => None,
        }
    }
}

/// Applies every check of FORMAT.md §7 (steps 2-4) to a checkpoint built or
/// held in memory (a protobuf message has no unknown fields, so each map
/// key's canonical bytes are its encoding).
pub fn validate(cp: &Checkpoint) -> Result<(), ResumeMismatch> {
    validate_with(cp, &Keys::Encoded)
}

/// [`validate`] for a checkpoint parsed from `body`, whose grammar scan
/// recorded the spans of its map keys: map keys are ordered by their bytes
/// as read, unknown fields included (FORMAT.md §7).
pub(crate) fn validate_read(
    cp: &Checkpoint,
    body: &[u8],
    spans: &[(u32, u32)],
) -> Result<(), ResumeMismatch> {
    let keys = Keys::AsRead {
        body,
        spans,
        next: Cell::new(0),
    };
    validate_with(cp, &keys)?;
    if let Keys::AsRead { next, .. } = &keys {
        debug_assert_eq!(next.get(), spans.len(), "every map key visited once");
    }
    Ok(())
}

/// [`validate`] without the map key order check.
pub(crate) fn validate_unordered(cp: &Checkpoint) -> Result<(), ResumeMismatch> {
    validate_with(cp, &Keys::Unordered)
}

fn validate_with(cp: &Checkpoint, keys: &Keys<'_>) -> Result<(), ResumeMismatch> {
    check_format(&cp.format)?;
    if cp.session_id.is_empty() {
        return refuse(
            rules::SESSION_ID_REQUIRED,
            "session_id",
            "must not be empty",
        );
    }
    if cp.optimizer.is_empty() {
        return refuse(rules::OPTIMIZER_REQUIRED, "optimizer", "must not be empty");
    }
    for (i, option) in cp.optimizer_opts.iter().enumerate() {
        if option.key.is_empty() {
            return refuse(
                rules::OPTIMIZER_OPTS_KEY_REQUIRED,
                format!("optimizer_opts[{i}].key"),
                "must not be empty",
            );
        }
        let path = format!("optimizer_opts[{i}].value");
        match &option.value {
            None => return refuse(rules::OPTIMIZER_OPTS_VALUE_REQUIRED, path, "is required"),
            Some(value) => term_at(value, &path, keys)?,
        }
    }
    if let Some(module) = &cp.program_module {
        if module.is_empty() {
            return refuse(
                rules::PROGRAM_MODULE_NOT_EMPTY,
                "program_module",
                "must not be empty when present",
            );
        }
    }
    if cp.trainset_hash.len() != 32 {
        return refuse(
            rules::TRAINSET_HASH_LENGTH,
            "trainset_hash",
            format!("must be 32 bytes (SHA-256), got {}", cp.trainset_hash.len()),
        );
    }
    check_timestamp(cp.created_at.as_ref(), "created_at")?;
    check_timestamp(cp.updated_at.as_ref(), "updated_at")?;
    match &cp.progress {
        None => return refuse(rules::PROGRESS_REQUIRED, "progress", "is required"),
        Some(progress) => check_progress(progress, keys)?,
    }
    if let Some(artifact) = &cp.best_program_artifact {
        term_map_at(artifact, "best_program_artifact", keys)?;
    }
    let Some(sampler_format) = &cp.sampler_format else {
        return refuse(
            rules::SAMPLER_FORMAT_REQUIRED,
            "sampler_format",
            "is required",
        );
    };
    if sampler_format.module.is_empty() {
        return refuse(
            rules::SAMPLER_FORMAT_MODULE_REQUIRED,
            "sampler_format.module",
            "must not be empty",
        );
    }
    if sampler_format.version < 1 {
        return refuse(
            rules::SAMPLER_FORMAT_VERSION_MIN,
            "sampler_format.version",
            "must be at least 1",
        );
    }
    if !(SESSION_STATUS_RUNNING..=SESSION_STATUS_CANCELLED).contains(&cp.status) {
        return refuse(
            rules::STATUS_KNOWN,
            "status",
            format!("unknown or unspecified status {}", cp.status),
        );
    }
    if let Some(reason) = &cp.terminal_reason {
        term_at(reason, "terminal_reason", keys)?;
    }
    if let Some(detail) = direction_refusal(cp.direction) {
        return refuse(rules::DIRECTION_KNOWN, "direction", detail);
    }
    Ok(())
}

/// Why a direction number is refused, or `None` for higher (0, also a v1.0
/// checkpoint's) and lower (1).
pub(crate) fn direction_refusal(direction: i32) -> Option<String> {
    match Direction::try_from(direction) {
        Ok(Direction::Higher | Direction::Lower) => None,
        Err(_) => Some(format!("unknown direction {direction}")),
    }
}

/// `dsxir.optimizer_session.checkpoint/v<major>.<minor>`, decimal without
/// leading zeros, major 1.
fn check_format(format_id: &str) -> Result<(), ResumeMismatch> {
    if format_id.is_empty() {
        return refuse(
            rules::FORMAT_REQUIRED,
            "format",
            "missing format identifier: not a dsxir checkpoint",
        );
    }
    let wrong = || {
        let shown: String = format_id.chars().take(80).collect();
        refuse(
            rules::FORMAT_SHAPE,
            "format",
            format!("wrong format identifier {shown:?}"),
        )
    };
    let Some(version) = format_id.strip_prefix(FORMAT_PREFIX) else {
        return wrong();
    };
    let Some((major, minor)) = version.split_once('.') else {
        return wrong();
    };
    if !is_decimal(major) || !is_decimal(minor) {
        return wrong();
    }
    if major != "1" {
        return refuse(
            rules::FORMAT_MAJOR,
            "format",
            format!("unsupported major version {major} (this reader reads 1)"),
        );
    }
    Ok(())
}

/// Decimal digits without a leading zero (`0` itself is allowed).
fn is_decimal(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

fn check_timestamp(
    stamp: Option<&prost_types::Timestamp>,
    path: &str,
) -> Result<(), ResumeMismatch> {
    let Some(stamp) = stamp else {
        return refuse(rules::TIMESTAMP_REQUIRED, path, "is required");
    };
    if !(0..1_000_000_000).contains(&stamp.nanos) {
        return refuse(
            rules::TIMESTAMP_NANOS,
            format!("{path}.nanos"),
            "must be in [0, 1e9)",
        );
    }
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&stamp.seconds) {
        return refuse(
            rules::TIMESTAMP_SECONDS,
            format!("{path}.seconds"),
            "outside 0001-01-01..9999-12-31",
        );
    }
    Ok(())
}

fn check_progress(progress: &Progress, keys: &Keys<'_>) -> Result<(), ResumeMismatch> {
    let mut ok: u64 = 0;
    let mut error: u64 = 0;
    for (i, entry) in progress.trial_log.iter().enumerate() {
        check_trial(entry, i, &mut ok, &mut error, keys)?;
    }
    check_timestamp(progress.started_at.as_ref(), "progress.started_at")?;
    check_best(progress)?;
    if progress.completed != ok {
        return refuse(
            rules::COUNTERS_COMPLETED,
            "progress.completed",
            format!("is {}, but {ok} trials are ok", progress.completed),
        );
    }
    if progress.errors != error {
        return refuse(
            rules::COUNTERS_ERRORS,
            "progress.errors",
            format!("is {}, but {error} trials are errors", progress.errors),
        );
    }
    // ok + error is at most the log's length, so it cannot overflow.
    if progress.attempts < ok + error {
        return refuse(
            rules::COUNTERS_ATTEMPTS,
            "progress.attempts",
            format!("is {}, less than completed + errors", progress.attempts),
        );
    }
    Ok(())
}

fn check_trial(
    entry: &TrialLogEntry,
    i: usize,
    ok: &mut u64,
    error: &mut u64,
    keys: &Keys<'_>,
) -> Result<(), ResumeMismatch> {
    if entry.trial_idx != i as u64 {
        return refuse(
            rules::TRIAL_TRIAL_IDX,
            format!("progress.trial_log[{i}].trial_idx"),
            format!("is {}, must be {i}", entry.trial_idx),
        );
    }
    if entry.score.is_some_and(f64::is_nan) {
        return refuse(
            rules::FLOAT_NAN,
            format!("progress.trial_log[{i}].score"),
            "NaN is not allowed",
        );
    }
    match entry.status {
        TRIAL_STATUS_OK => *ok += 1,
        TRIAL_STATUS_ERROR => *error += 1,
        other => {
            return refuse(
                rules::TRIAL_STATUS,
                format!("progress.trial_log[{i}].status"),
                format!("unknown or unspecified status {other}"),
            )
        }
    }
    if let Some(stats) = &entry.stats {
        term_map_at(stats, &format!("progress.trial_log[{i}].stats"), keys)?;
    }
    if let Some(err) = &entry.error {
        term_map_at(err, &format!("progress.trial_log[{i}].error"), keys)?;
    }
    Ok(())
}

fn check_best(progress: &Progress) -> Result<(), ResumeMismatch> {
    if progress.best_score.is_some_and(f64::is_nan) {
        return refuse(
            rules::FLOAT_NAN,
            "progress.best_score",
            "NaN is not allowed",
        );
    }
    let (score, idx) = match (progress.best_score, progress.best_trial_idx) {
        (None, None) => return Ok(()),
        (Some(score), Some(idx)) => (score, idx),
        (None, Some(_)) => {
            return refuse(
                rules::BEST_PAIR,
                "progress.best_score",
                "best_score and best_trial_idx must be set together",
            )
        }
        (Some(_), None) => {
            return refuse(
                rules::BEST_PAIR,
                "progress.best_trial_idx",
                "best_score and best_trial_idx must be set together",
            )
        }
    };
    let best = usize::try_from(idx)
        .ok()
        .and_then(|i| progress.trial_log.get(i));
    let Some(best) = best else {
        return refuse(
            rules::BEST_TRIAL_IDX_RANGE,
            "progress.best_trial_idx",
            format!("{idx} is past the trial log"),
        );
    };
    let best_score = match best.score {
        Some(s) if best.status == TRIAL_STATUS_OK => s,
        _ => {
            return refuse(
                rules::BEST_TRIAL_IDX_TRIAL,
                "progress.best_trial_idx",
                format!("trial {idx} is not an ok trial with a score"),
            )
        }
    };
    // Same 64 bits: -0.0 is not 0.0.
    if best_score.to_bits() != score.to_bits() {
        return refuse(
            rules::BEST_SCORE,
            "progress.best_trial_idx",
            format!("trial {idx} scored {best_score:?}, not best_score {score:?}"),
        );
    }
    Ok(())
}

/// A refusal on its way up the Term tree: each level prepends its part of the
/// path, so nothing is formatted unless a check fails. `rule` is the id of
/// the broken rule.
pub(crate) struct Bad {
    rule: &'static str,
    detail: String,
    parts: Vec<String>,
}

impl Bad {
    pub(crate) fn new(rule: &'static str, detail: impl Into<String>) -> Self {
        Bad {
            rule,
            detail: detail.into(),
            parts: Vec::new(),
        }
    }

    pub(crate) fn at(mut self, part: impl Into<String>) -> Self {
        self.parts.push(part.into());
        self
    }

    fn path(&self, root: &str) -> String {
        let mut field = String::from(root);
        for part in self.parts.iter().rev() {
            field.push_str(part);
        }
        field
    }

    fn into_mismatch(self, root: &str) -> ResumeMismatch {
        ResumeMismatch::shape(self.rule, self.path(root), self.detail)
    }

    pub(crate) fn into_invalid(self, root: &str) -> InvalidCheckpoint {
        InvalidCheckpoint::new(self.rule, self.path(root), self.detail)
    }
}

/// Refuses a Term that breaks a rule of FORMAT.md §3; `path` names the Term.
/// Checks, depth-first in field order: depth, kind set, `float_value` not NaN,
/// `bigint_value` minimal and outside int64, map entries with key and value,
/// keys strictly increasing.
pub fn check_term(t: &Term, path: &str) -> Result<(), ResumeMismatch> {
    term_at(t, path, &Keys::Encoded)
}

fn term_at(t: &Term, path: &str, keys: &Keys<'_>) -> Result<(), ResumeMismatch> {
    check(t, 1, keys).map_err(|bad| bad.into_mismatch(path))
}

/// Refuses a TermMap (a `stats`, `error` or `best_program_artifact` field)
/// that breaks a rule of FORMAT.md §3. The map counts as a Term of depth 1, so
/// its keys and values are at depth 2.
pub fn check_term_map(map: &TermMap, path: &str) -> Result<(), ResumeMismatch> {
    term_map_at(map, path, &Keys::Encoded)
}

fn term_map_at(map: &TermMap, path: &str, keys: &Keys<'_>) -> Result<(), ResumeMismatch> {
    check_map(map, 2, keys).map_err(|bad| bad.into_mismatch(path))
}

fn check(t: &Term, depth: usize, keys: &Keys<'_>) -> Result<(), Bad> {
    if depth > MAX_TERM_DEPTH {
        return Err(Bad::new(
            rules::TERM_DEPTH,
            format!("nesting deeper than {MAX_TERM_DEPTH}"),
        ));
    }
    match &t.kind {
        None => Err(Bad::new(rules::TERM_KIND, "term has no kind")),
        Some(term::Kind::FloatValue(f)) if f.is_nan() => {
            Err(Bad::new(rules::FLOAT_NAN, "NaN is not allowed").at(".float_value"))
        }
        Some(term::Kind::BigintValue(raw)) => match bigint_problem(raw) {
            Some(detail) => Err(Bad::new(rules::TERM_BIGINT, detail).at(".bigint_value")),
            None => Ok(()),
        },
        Some(term::Kind::ListValue(list)) => check_items(&list.items, depth, ".list_value", keys),
        Some(term::Kind::TupleValue(list)) => check_items(&list.items, depth, ".tuple_value", keys),
        Some(term::Kind::MapValue(map)) => {
            check_map(map, depth + 1, keys).map_err(|b| b.at(".map_value"))
        }
        Some(_) => Ok(()),
    }
}

fn check_items(items: &[Term], depth: usize, kind: &str, keys: &Keys<'_>) -> Result<(), Bad> {
    for (i, item) in items.iter().enumerate() {
        check(item, depth + 1, keys).map_err(|b| b.at(format!("{kind}.items[{i}]")))?;
    }
    Ok(())
}

fn check_map<'a>(map: &TermMap, depth: usize, keys: &Keys<'a>) -> Result<(), Bad> {
    let mut previous: Option<Cow<'a, [u8]>> = None;
    for (i, entry) in map.entries.iter().enumerate() {
        let at_entry = |b: Bad| b.at(format!(".entries[{i}]"));
        let Some(key) = &entry.key else {
            return Err(at_entry(Bad::new(
                rules::TERM_MAP_KEY_REQUIRED,
                "map entry has no key",
            )));
        };
        let slot = keys.claim();
        check(key, depth, keys).map_err(|b| at_entry(b.at(".key")))?;
        let Some(value) = &entry.value else {
            return Err(at_entry(Bad::new(
                rules::TERM_MAP_VALUE_REQUIRED,
                "map entry has no value",
            )));
        };
        check(value, depth, keys).map_err(|b| at_entry(b.at(".value")))?;
        let Some(key_bytes) = keys.bytes(slot, key) else {
            continue;
        };
        if let Some(prev) = &previous {
            if key_bytes <= *prev {
                let problem = if key_bytes == *prev {
                    "duplicate map key"
                } else {
                    "keys are not sorted"
                };
                return Err(at_entry(
                    Bad::new(rules::TERM_MAP_ORDER, problem).at(".key"),
                ));
            }
        }
        previous = Some(key_bytes);
    }
    Ok(())
}

/// Why a `bigint_value` is refused (FORMAT.md §3.3), if it is.
pub(crate) fn bigint_problem(raw: &[u8]) -> Option<&'static str> {
    if raw.is_empty() {
        return Some("empty big integer");
    }
    if raw.len() > 1 && ((raw[0] == 0x00 && raw[1] < 0x80) || (raw[0] == 0xFF && raw[1] >= 0x80)) {
        return Some("big integer is not minimal");
    }
    // A minimal encoding of at most 8 bytes is exactly an int64 value.
    if raw.len() <= 8 {
        return Some("big integer fits in int64; it must be an int_value");
    }
    None
}
