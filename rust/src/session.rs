//! The trainset hash (FORMAT.md §6), the resume gate (§8) and the state
//! transitions (§9) of a session's checkpoint.

use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use crate::errors::{
    GateValue, REASON_DIRECTION, REASON_OPTIMIZER, REASON_SAMPLER_FORMAT, REASON_SAMPLER_VERSION,
    REASON_TRAINSET_HASH,
};
use crate::sha256::Sha256;
use crate::v1::{
    term::Kind, Checkpoint, Direction, SessionStatus, Term, TrialLogEntry, TrialStatus,
};
use crate::validate::direction_refusal;
use crate::value::{canonical_term, from_term_at, to_term_at, to_term_map, Value};
use crate::{
    rules, wire, AlreadyTerminal, CheckpointError, InvalidCheckpoint, InvalidTransition,
    ResumeMismatch, MAX_INPUT_BYTES,
};

// --- trainset ---------------------------------------------------------------------

/// The domain separator of `hash_trainset` (18 ASCII bytes).
const TRAINSET_DOMAIN: &[u8] = b"dsxir.trainset.v1\n";

/// The SHA-256 fingerprint of an ordered trainset (FORMAT.md §6): the domain
/// separator, the number of examples, then each example's canonical Term
/// bytes prefixed by their length (lengths as big-endian u64). The same
/// digest as every other language's; map entry order does not matter, any
/// change of value, kind or example order does.
///
/// An example [`crate::to_term`] refuses is reported with a path such as
/// `trainset[3]["meta"][0]`.
pub fn hash_trainset(examples: &[Value]) -> Result<[u8; 32], InvalidCheckpoint> {
    let mut h = start_trainset(examples.len());
    for (i, example) in examples.iter().enumerate() {
        let t = to_term_at(example, &format!("trainset[{i}]"))?;
        add_example(&mut h, &t.encode_to_vec());
    }
    Ok(h.finalize())
}

/// [`hash_trainset`] over examples already given as Terms. Each Term is
/// checked like [`crate::from_term`] (map entries may come in any order;
/// they are hashed sorted), refusals named from `trainset[i]`.
pub fn hash_trainset_terms(examples: &[Term]) -> Result<[u8; 32], InvalidCheckpoint> {
    let mut h = start_trainset(examples.len());
    for (i, example) in examples.iter().enumerate() {
        let t = canonical_term(example, &format!("trainset[{i}]"))?;
        add_example(&mut h, &t.encode_to_vec());
    }
    Ok(h.finalize())
}

pub(crate) fn start_trainset(count: usize) -> Sha256 {
    let mut h = Sha256::new();
    h.update(TRAINSET_DOMAIN);
    h.update(&(count as u64).to_be_bytes());
    h
}

pub(crate) fn add_example(h: &mut Sha256, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// Reads the encoding of one Term whose kind is `list_value` (any valid
/// protobuf encoding; map entries in any order) and returns its items, one
/// example each, ready for [`hash_trainset`]: the input of the testee's
/// `hash-trainset`. Refusals name `<input>` for a size (rule
/// `input.too_large`), parse or kind failure (`input.malformed`), else the
/// item's path (`items[2].map_value.entries[1].key`) and its Term rule.
pub fn decode_trainset(bytes: &[u8]) -> Result<Vec<Value>, InvalidCheckpoint> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(InvalidCheckpoint::new(
            rules::INPUT_TOO_LARGE,
            "<input>",
            format!(
                "input is {} bytes, more than the limit of {MAX_INPUT_BYTES} bytes",
                bytes.len()
            ),
        ));
    }
    let not_protobuf = |e: &dyn std::fmt::Display| {
        InvalidCheckpoint::new(
            rules::INPUT_MALFORMED,
            "<input>",
            format!("not a Term: {e}"),
        )
    };
    let known = wire::known_fields(bytes, wire::Msg::Term).map_err(|e| not_protobuf(&e))?;
    let t = Term::decode(known.as_slice()).map_err(|e| not_protobuf(&e))?;
    let Some(Kind::ListValue(list)) = t.kind else {
        return Err(InvalidCheckpoint::new(
            rules::INPUT_MALFORMED,
            "<input>",
            "not a Term list",
        ));
    };
    list.items
        .iter()
        .enumerate()
        .map(|(i, item)| from_term_at(item, &format!("items[{i}]")))
        .collect()
}

// --- statuses ---------------------------------------------------------------------

const RUNNING: i32 = SessionStatus::Running as i32;
const PAUSED: i32 = SessionStatus::Paused as i32;
const COMPLETED: i32 = SessionStatus::Completed as i32;
const FAILED: i32 = SessionStatus::Failed as i32;
const CANCELLED: i32 = SessionStatus::Cancelled as i32;

/// The session's status as a word: `running`, `paused`, `completed`,
/// `failed` or `cancelled` (`unspecified` for any other number).
pub fn status_name(cp: &Checkpoint) -> &'static str {
    match cp.status {
        RUNNING => "running",
        PAUSED => "paused",
        COMPLETED => "completed",
        FAILED => "failed",
        CANCELLED => "cancelled",
        _ => "unspecified",
    }
}

/// The session's direction as a word: `higher` (the default, also a v1.0
/// checkpoint's) or `lower`; `None` for a number the format does not define.
pub fn direction_name(cp: &Checkpoint) -> Option<&'static str> {
    match Direction::try_from(cp.direction) {
        Ok(Direction::Higher) => Some("higher"),
        Ok(Direction::Lower) => Some("lower"),
        Err(_) => None,
    }
}

/// Whether the session has ended: completed, failed or cancelled.
pub fn is_terminal(cp: &Checkpoint) -> bool {
    matches!(cp.status, COMPLETED | FAILED | CANCELLED)
}

// --- the resume gate ----------------------------------------------------------------

/// The resume gate (FORMAT.md §8): `Ok(())` when a caller running
/// `optimizer`, whose sampler is `sampler_module` and reads the sampler state
/// versions `accepted_versions`, may continue the session of `cp`. In order:
///
/// 1. a terminal status: [`CheckpointError::AlreadyTerminal`];
/// 2. another optimizer: [`CheckpointError::ResumeMismatch`], reason `optimizer`;
/// 3. another sampler module: reason `sampler_format`;
/// 4. a sampler version not among `accepted_versions`: reason `sampler_version`;
/// 5. when `trainset_hash` is given and differs from the checkpoint's:
///    reason `trainset_hash`;
/// 6. when `direction` is given and differs from the checkpoint's: reason
///    `direction` (values `higher`, `lower`; a direction number the format
///    does not define is refused with reason `checkpoint_shape`, field
///    `direction`).
///
/// `expected` is the caller's value and `got` the checkpoint's; one accepted
/// version is shown as a number, several as `[v1,v2,…]` in ascending order.
/// The message is FORMAT.md §8's, the same text in every language.
pub fn check_resume(
    cp: &Checkpoint,
    optimizer: &str,
    sampler_module: &str,
    accepted_versions: &[u32],
    trainset_hash: Option<&[u8]>,
    direction: Option<Direction>,
) -> Result<(), CheckpointError> {
    gate(cp, optimizer, sampler_module, accepted_versions)?;
    if let Some(hash) = trainset_hash {
        check_hash(cp, hash)?;
    }
    check_direction(cp, direction)
}

/// [`check_resume`] with the trainset itself: it is hashed
/// ([`hash_trainset`]) once the checks before it pass, and its hash compared
/// with the checkpoint's before the direction is. A trainset with no Term form is refused with
/// [`CheckpointError::InvalidCheckpoint`].
pub fn check_resume_trainset(
    cp: &Checkpoint,
    optimizer: &str,
    sampler_module: &str,
    accepted_versions: &[u32],
    trainset: &[Value],
    direction: Option<Direction>,
) -> Result<(), CheckpointError> {
    gate(cp, optimizer, sampler_module, accepted_versions)?;
    check_hash(cp, &hash_trainset(trainset)?)?;
    check_direction(cp, direction)
}

fn gate(
    cp: &Checkpoint,
    optimizer: &str,
    sampler_module: &str,
    accepted_versions: &[u32],
) -> Result<(), CheckpointError> {
    let sid = cp.session_id.as_str();
    if is_terminal(cp) {
        return Err(terminal(cp).into());
    }
    if cp.optimizer != optimizer {
        return Err(ResumeMismatch::gate(
            sid,
            REASON_OPTIMIZER,
            GateValue::Text(optimizer.into()),
            GateValue::Text(cp.optimizer.clone()),
        )
        .into());
    }
    let (module, version) = cp
        .sampler_format
        .as_ref()
        .map_or(("", 0), |sf| (sf.module.as_str(), sf.version));
    if module != sampler_module {
        return Err(ResumeMismatch::gate(
            sid,
            REASON_SAMPLER_FORMAT,
            GateValue::Text(sampler_module.into()),
            GateValue::Text(module.into()),
        )
        .into());
    }
    if !accepted_versions.contains(&version) {
        let expected = match accepted_versions {
            [one] => GateValue::Version(*one),
            many => {
                let mut sorted = many.to_vec();
                sorted.sort_unstable();
                sorted.dedup();
                GateValue::Versions(sorted)
            }
        };
        return Err(ResumeMismatch::gate(
            sid,
            REASON_SAMPLER_VERSION,
            expected,
            GateValue::Version(version),
        )
        .into());
    }
    Ok(())
}

fn check_hash(cp: &Checkpoint, hash: &[u8]) -> Result<(), CheckpointError> {
    if hash != cp.trainset_hash.as_slice() {
        return Err(ResumeMismatch::gate(
            &cp.session_id,
            REASON_TRAINSET_HASH,
            GateValue::Hash(hash.to_vec()),
            GateValue::Hash(cp.trainset_hash.clone()),
        )
        .into());
    }
    Ok(())
}

fn check_direction(cp: &Checkpoint, direction: Option<Direction>) -> Result<(), CheckpointError> {
    let Some(direction) = direction else {
        return Ok(());
    };
    let Some(got) = direction_name(cp) else {
        let detail = direction_refusal(cp.direction).unwrap_or_default();
        let mut err = ResumeMismatch::shape(rules::DIRECTION_KNOWN, "direction".into(), detail);
        err.session_id = Some(cp.session_id.clone());
        return Err(err.into());
    };
    let expected = match direction {
        Direction::Higher => "higher",
        Direction::Lower => "lower",
    };
    if expected != got {
        return Err(ResumeMismatch::gate(
            &cp.session_id,
            REASON_DIRECTION,
            GateValue::Text(expected.into()),
            GateValue::Text(got.into()),
        )
        .into());
    }
    Ok(())
}

// --- transitions ----------------------------------------------------------------------

fn terminal(cp: &Checkpoint) -> AlreadyTerminal {
    AlreadyTerminal {
        session_id: cp.session_id.clone(),
        status: status_name(cp),
    }
}

/// Refuses a transition from a terminal status (AlreadyTerminal) or from a
/// status not in `allowed` (InvalidTransition).
fn require_status(
    cp: &Checkpoint,
    action: &'static str,
    allowed: &[i32],
) -> Result<(), CheckpointError> {
    if is_terminal(cp) {
        return Err(terminal(cp).into());
    }
    if !allowed.contains(&cp.status) {
        return Err(InvalidTransition {
            session_id: cp.session_id.clone(),
            status: status_name(cp),
            action,
        }
        .into());
    }
    Ok(())
}

fn now() -> prost_types::Timestamp {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: since.subsec_nanos() as i32,
    }
}

/// How a trial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrialOutcome {
    /// The trial ran to the end (it may still have no score).
    #[default]
    Ok,
    /// The trial failed.
    Error,
}

/// A finished trial, for [`record_trial`].
#[derive(Debug, Clone, Default)]
pub struct Trial {
    /// The trial's score; `Some(0.0)` differs from `None`. NaN is refused.
    pub score: Option<f64>,
    pub outcome: TrialOutcome,
    pub candidate_id: Option<String>,
    /// The trial's stats, a map (the `stats` TermMap).
    pub stats: Option<Vec<(Value, Value)>>,
    pub duration_ms: u64,
    /// What went wrong, a map (the `error` TermMap), e.g.
    /// `{"class": …, "message": …}`.
    pub error: Option<Vec<(Value, Value)>>,
    pub error_class: Option<String>,
    /// When given, replaces the checkpoint's sampler blob.
    pub sampler_blob: Option<Vec<u8>>,
    /// When given, replaces the checkpoint's best program artifact.
    pub best_program_artifact: Option<Vec<(Value, Value)>>,
}

/// Appends the next finished trial to a running session and returns its
/// index (FORMAT.md §9).
///
/// Counts the attempt and the ok or error outcome; the trial becomes best
/// only when it is ok, has a score, and the score is strictly better than
/// the best so far: greater when the checkpoint's direction is
/// [`Direction::Higher`] (the default), lower when it is
/// [`Direction::Lower`] (the first of equal scores stays best; -0.0 and 0.0
/// are equal). Everything is checked before anything changes: a direction
/// other than higher or lower (`direction`), a NaN score (`score`) and stats, error
/// or artifact with no Term form (`stats["k"]`, …) are refused with
/// [`CheckpointError::InvalidCheckpoint`] and leave `cp` as it was. A
/// paused session refuses with [`CheckpointError::InvalidTransition`], a
/// terminal one with [`CheckpointError::AlreadyTerminal`]. Sets `updated_at`.
pub fn record_trial(cp: &mut Checkpoint, trial: Trial) -> Result<u64, CheckpointError> {
    require_status(cp, "record a trial", &[RUNNING])?;
    if let Some(detail) = direction_refusal(cp.direction) {
        return Err(InvalidCheckpoint::new(rules::DIRECTION_KNOWN, "direction", detail).into());
    }
    let lower = cp.direction == Direction::Lower as i32;
    if trial.score.is_some_and(f64::is_nan) {
        return Err(InvalidCheckpoint::new(rules::FLOAT_NAN, "score", "NaN is not allowed").into());
    }
    let map = |entries: &Option<Vec<(Value, Value)>>, root| {
        entries
            .as_ref()
            .map(|entries| to_term_map(entries, root))
            .transpose()
    };
    let stats = map(&trial.stats, "stats")?;
    let error = map(&trial.error, "error")?;
    let artifact = map(&trial.best_program_artifact, "best_program_artifact")?;

    let progress = cp.progress.get_or_insert_with(Default::default);
    let idx = progress.trial_log.len() as u64;
    let ok = trial.outcome == TrialOutcome::Ok;
    progress.trial_log.push(TrialLogEntry {
        trial_idx: idx,
        candidate_id: trial.candidate_id,
        score: trial.score,
        status: if ok {
            TrialStatus::Ok as i32
        } else {
            TrialStatus::Error as i32
        },
        stats,
        duration_ms: trial.duration_ms,
        error,
        error_class: trial.error_class,
    });
    progress.attempts += 1;
    if ok {
        progress.completed += 1;
        if let Some(score) = trial.score {
            let better = |best: f64| if lower { score < best } else { score > best };
            if progress.best_score.is_none_or(better) {
                progress.best_score = Some(score);
                progress.best_trial_idx = Some(idx);
            }
        }
    } else {
        progress.errors += 1;
    }
    if let Some(blob) = trial.sampler_blob {
        cp.sampler_blob = blob;
    }
    if artifact.is_some() {
        cp.best_program_artifact = artifact;
    }
    cp.updated_at = Some(now());
    Ok(idx)
}

/// running → paused.
pub fn pause(cp: &mut Checkpoint) -> Result<(), CheckpointError> {
    require_status(cp, "pause", &[RUNNING])?;
    move_to(cp, PAUSED, None)
}

/// paused → running.
pub fn resume(cp: &mut Checkpoint) -> Result<(), CheckpointError> {
    require_status(cp, "resume", &[PAUSED])?;
    move_to(cp, RUNNING, None)
}

/// running or paused → cancelled, recording `reason` (any value; refused
/// with a path from `reason` when it has no Term form) in
/// `terminal_reason`, or clearing it when `None`.
pub fn cancel(cp: &mut Checkpoint, reason: Option<&Value>) -> Result<(), CheckpointError> {
    require_status(cp, "cancel", &[RUNNING, PAUSED])?;
    move_to(cp, CANCELLED, reason)
}

/// running → completed, with an optional reason (see [`cancel`]).
pub fn complete(cp: &mut Checkpoint, reason: Option<&Value>) -> Result<(), CheckpointError> {
    require_status(cp, "complete", &[RUNNING])?;
    move_to(cp, COMPLETED, reason)
}

/// running → failed, with an optional reason (see [`cancel`]).
pub fn fail(cp: &mut Checkpoint, reason: Option<&Value>) -> Result<(), CheckpointError> {
    require_status(cp, "fail", &[RUNNING])?;
    move_to(cp, FAILED, reason)
}

fn move_to(
    cp: &mut Checkpoint,
    status: i32,
    reason: Option<&Value>,
) -> Result<(), CheckpointError> {
    let reason = reason.map(|r| to_term_at(r, "reason")).transpose()?;
    cp.status = status;
    cp.terminal_reason = reason;
    cp.updated_at = Some(now());
    Ok(())
}
