//! Checkpoint deltas (FORMAT.md §13): what one commit adds to a checkpoint,
//! its base. A delta is a `CheckpointDelta` message, sealed and scanned as a
//! checkpoint is (the byte grammar with `CheckpointDelta` as the top-level
//! message, the trailer, the size and weight limits), then checked by the
//! rules of §13.1. [`apply_delta`] makes the new checkpoint from the base
//! (§13.2) and checks it as any checkpoint written.

use prost::Message;

use crate::grammar::{self, Place, MSG_CHECKPOINT, MSG_CHECKPOINT_DELTA};
use crate::v1::{Checkpoint, CheckpointDelta};
use crate::{
    crc32c, delta_rules, encode_with_unknown, rules, Decoded, ResumeMismatch, UnknownFields,
    MAX_INPUT_BYTES, TRAILER_SIZE, TRAILER_TAG,
};

/// The delta format identifier this schema's writers write; readers accept
/// any minor of major 1.
pub const DELTA_FORMAT_ID: &str = "dsxir.optimizer_session.delta/v1.0";

/// The bits of `CheckpointDelta.kept` a delta may set: bit `n` stands for
/// the Checkpoint field numbered `n`, and only fields 3-7 and 10-15 may be
/// kept from the base (FORMAT.md §13.1).
pub const KEPT_MASK: u32 = 0xFCF8;

const DELTA_FORMAT_PREFIX: &str = "dsxir.optimizer_session.delta/v";

/// The field number of `CheckpointDelta.head`, the first step of the place
/// of every unknown field inside the head.
const HEAD_NUMBER: u32 = 4;
/// `Checkpoint.progress` and `Progress.trial_log`.
const PROGRESS_NUMBER: u32 = 9;
const TRIAL_LOG_NUMBER: u32 = 1;

/// A decoded delta and the unknown fields it was read with (of the delta
/// and of its head; their places start at the `CheckpointDelta`, so those
/// of the head start with `(4, 0)`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodedDelta {
    pub delta: CheckpointDelta,
    pub unknown: UnknownFields,
}

impl DecodedDelta {
    /// The canonical bytes of the delta with its unknown fields, each written
    /// back after the known fields of its message.
    pub fn encode(&self) -> Result<Vec<u8>, ResumeMismatch> {
        encode_delta_with_unknown(&self.delta, &self.unknown)
    }
}

fn refuse<T>(
    rule: &'static str,
    field: impl Into<String>,
    detail: impl Into<String>,
) -> Result<T, ResumeMismatch> {
    Err(ResumeMismatch::delta_shape(rule, field.into(), detail))
}

fn grammar_refusal(r: grammar::Refusal) -> ResumeMismatch {
    ResumeMismatch::delta_shape(r.rule, r.path, r.detail)
}

/// Reads delta bytes (FORMAT.md §13.1): the size limit, the trailer and its
/// CRC-32C, the byte grammar with `CheckpointDelta` as the top-level message
/// (paths below the head read `head.` and the checkpoint's path), the weight
/// limit, then the rules of §13.1 in order. Every refusal has the reason
/// `delta_shape`. The unknown fields are accepted and left out of the
/// result; [`decode_delta_with_unknown`] keeps them.
pub fn decode_delta(bytes: &[u8]) -> Result<CheckpointDelta, ResumeMismatch> {
    read(bytes, false).map(|decoded| decoded.delta)
}

/// [`decode_delta`], keeping the unknown fields of the delta and of its
/// head: [`DecodedDelta::encode`] gives back `bytes` exactly.
pub fn decode_delta_with_unknown(bytes: &[u8]) -> Result<DecodedDelta, ResumeMismatch> {
    read(bytes, true)
}

fn read(bytes: &[u8], keep_unknown: bool) -> Result<DecodedDelta, ResumeMismatch> {
    let (body, scanned) =
        grammar::check_root(bytes, MSG_CHECKPOINT_DELTA, keep_unknown).map_err(grammar_refusal)?;
    // The grammar accepted the body, so prost parses it (see crate::read).
    let delta = CheckpointDelta::decode(body).map_err(|e| {
        ResumeMismatch::delta_shape(
            rules::WIRE_TRUNCATED,
            "<input>".into(),
            format!("the protobuf runtime refused bytes the grammar accepted: {e}"),
        )
    })?;
    check_delta(&delta)?;
    Ok(DecodedDelta {
        delta,
        unknown: scanned.unknown,
    })
}

/// The rules of FORMAT.md §13.1 on a delta that the grammar accepts, in
/// their order.
fn check_delta(delta: &CheckpointDelta) -> Result<(), ResumeMismatch> {
    if !is_delta_format(&delta.format) {
        let shown: String = delta.format.chars().take(80).collect();
        return refuse(
            delta_rules::DELTA_FORMAT,
            "format",
            format!("wrong delta format identifier {shown:?} (this reader reads v1.<minor>)"),
        );
    }
    if delta.base_generation == 0 {
        return refuse(
            delta_rules::DELTA_BASE_GENERATION,
            "base_generation",
            "the base generation must be at least 1",
        );
    }
    let Some(head) = &delta.head else {
        return refuse(delta_rules::DELTA_HEAD, "head", "is required");
    };
    if delta.kept & !KEPT_MASK != 0 {
        return refuse(
            delta_rules::DELTA_KEPT,
            "kept",
            format!(
                "bits {:#x} stand for fields a delta cannot keep (allowed: {KEPT_MASK:#x})",
                delta.kept & !KEPT_MASK
            ),
        );
    }
    for number in kept_numbers(delta.kept) {
        if holds(head, number) {
            return refuse(
                delta_rules::DELTA_KEPT_IN_HEAD,
                format!("head.{}", field_name(number)),
                "the head holds a field the delta keeps from the base",
            );
        }
    }
    Ok(())
}

/// `dsxir.optimizer_session.delta/v1.<minor>`, `<minor>` decimal digits
/// without a leading zero (`0` itself allowed).
fn is_delta_format(format_id: &str) -> bool {
    let Some(minor) = format_id
        .strip_prefix(DELTA_FORMAT_PREFIX)
        .and_then(|version| version.strip_prefix("1."))
    else {
        return false;
    };
    !minor.is_empty()
        && minor.bytes().all(|b| b.is_ascii_digit())
        && (minor == "0" || !minor.starts_with('0'))
}

/// The field numbers whose bits are set in `kept`, ascending.
fn kept_numbers(kept: u32) -> impl Iterator<Item = u32> {
    (0..32).filter(move |n| kept & (1 << n) != 0)
}

/// The schema's name of Checkpoint field `number`.
fn field_name(number: u32) -> &'static str {
    grammar::MESSAGES[MSG_CHECKPOINT]
        .fields
        .iter()
        .find(|f| f.number == number)
        .map_or("<unknown>", |f| f.name)
}

/// Whether the canonical bytes of `head` hold field `number` (one of the
/// fields a delta may keep): a field with presence when it is set, another
/// when it is not its default.
fn holds(head: &Checkpoint, number: u32) -> bool {
    match number {
        3 => !head.optimizer.is_empty(),
        4 => !head.optimizer_opts.is_empty(),
        5 => head.program_module.is_some(),
        6 => !head.trainset_hash.is_empty(),
        7 => head.created_at.is_some(),
        10 => head.best_program_artifact.is_some(),
        11 => !head.sampler_blob.is_empty(),
        12 => head.sampler_format.is_some(),
        13 => head.status != 0,
        14 => head.terminal_reason.is_some(),
        15 => head.direction != 0,
        _ => false,
    }
}

/// Sets field `number` (one of the fields a delta may keep) of `to` to its
/// value in `from`.
fn copy_field(to: &mut Checkpoint, from: &Checkpoint, number: u32) {
    match number {
        3 => to.optimizer.clone_from(&from.optimizer),
        4 => to.optimizer_opts.clone_from(&from.optimizer_opts),
        5 => to.program_module.clone_from(&from.program_module),
        6 => to.trainset_hash.clone_from(&from.trainset_hash),
        7 => to.created_at = from.created_at,
        10 => to
            .best_program_artifact
            .clone_from(&from.best_program_artifact),
        11 => to.sampler_blob.clone_from(&from.sampler_blob),
        12 => to.sampler_format.clone_from(&from.sampler_format),
        13 => to.status = from.status,
        14 => to.terminal_reason.clone_from(&from.terminal_reason),
        15 => to.direction = from.direction,
        _ => {}
    }
}

/// Moves field `number` (one of the fields a delta may keep) of `from` into
/// `to`, leaving its default in `from`.
fn move_field(to: &mut Checkpoint, from: &mut Checkpoint, number: u32) {
    use std::mem::take;
    match number {
        3 => to.optimizer = take(&mut from.optimizer),
        4 => to.optimizer_opts = take(&mut from.optimizer_opts),
        5 => to.program_module = from.program_module.take(),
        6 => to.trainset_hash = take(&mut from.trainset_hash),
        7 => to.created_at = from.created_at.take(),
        10 => to.best_program_artifact = from.best_program_artifact.take(),
        11 => to.sampler_blob = take(&mut from.sampler_blob),
        12 => to.sampler_format = from.sampler_format.take(),
        13 => to.status = take(&mut from.status),
        14 => to.terminal_reason = from.terminal_reason.take(),
        15 => to.direction = take(&mut from.direction),
        _ => {}
    }
}

/// The canonical encoding of a delta (FORMAT.md §13): its known fields in
/// field-number order, then the trailer. Refuses what [`decode_delta`]
/// refuses, in its order: the size limit, the byte grammar and the weight
/// limit of the bytes it would write, then the rules of §13.1.
pub fn encode_delta(delta: &CheckpointDelta) -> Result<Vec<u8>, ResumeMismatch> {
    encode_delta_with_unknown(delta, &UnknownFields::default())
}

/// [`encode_delta`], writing the unknown fields of each message (as read by
/// [`decode_delta_with_unknown`]) after its known fields.
pub fn encode_delta_with_unknown(
    delta: &CheckpointDelta,
    unknown: &UnknownFields,
) -> Result<Vec<u8>, ResumeMismatch> {
    let known = delta.encode_to_vec();
    let body = grammar::splice_unknown_root(&known, MSG_CHECKPOINT_DELTA, unknown);
    let size = body.len() + TRAILER_SIZE;
    if size > MAX_INPUT_BYTES {
        return refuse(
            rules::INPUT_TOO_LARGE,
            "<input>",
            format!("the delta is {size} bytes, more than the limit of {MAX_INPUT_BYTES} bytes"),
        );
    }
    grammar::scan_root(&body, MSG_CHECKPOINT_DELTA, size, false).map_err(grammar_refusal)?;
    check_delta(delta)?;
    let mut out = body;
    let crc = crc32c(&out);
    out.extend_from_slice(&TRAILER_TAG);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Applies a delta to its base (FORMAT.md §13.2). Refuses, with the reason
/// `delta_shape`, a delta that §13.1 refuses, then a head whose session id
/// is not the base's (`delta.session`) and a `base_trials` that is not the
/// length of the base's trial log (`delta.base_trials`). The new checkpoint
/// is the head, with each kept field set to the base's value (its unknown
/// fields included) and, when the head has a progress, the base's trial
/// entries before the head's; it must pass every rule of FORMAT.md §7 and
/// the writer's size and weight limits, else it is refused with the reason
/// `checkpoint_shape` and the new checkpoint's paths. The result keeps the
/// unknown fields of the head, of the base's entries and of the kept fields;
/// [`Decoded::encode`] gives its canonical bytes, the same in every language.
pub fn apply_delta(base: &Decoded, delta: &DecodedDelta) -> Result<Decoded, ResumeMismatch> {
    apply(base, delta).map(|(result, _)| result)
}

/// [`apply_delta`] on bytes: reads the base with
/// [`crate::decode_with_unknown`] (its refusals have the reason
/// `checkpoint_shape`), the delta with [`decode_delta_with_unknown`], applies
/// it and returns the canonical bytes of the new checkpoint.
pub fn apply_delta_bytes(base: &[u8], delta: &[u8]) -> Result<Vec<u8>, ResumeMismatch> {
    let base = crate::decode_with_unknown(base)?;
    let delta = decode_delta_with_unknown(delta)?;
    apply(&base, &delta).map(|(_, bytes)| bytes)
}

/// FORMAT.md §13.2 steps 1-2 on a delta that §13.1 accepts: the head's
/// session id is the base's (`delta.session`), `base_trials` the length of
/// the base's trial log (`delta.base_trials`).
fn check_base(base: &Checkpoint, d: &CheckpointDelta) -> Result<(), ResumeMismatch> {
    let head = d.head.as_ref().expect("check_delta requires a head");
    if head.session_id != base.session_id {
        let shown = |s: &str| s.chars().take(80).collect::<String>();
        return refuse(
            delta_rules::DELTA_SESSION,
            "head.session_id",
            format!(
                "the head's session {:?} is not the base's {:?}",
                shown(&head.session_id),
                shown(&base.session_id)
            ),
        );
    }
    let base_len = trial_count(base);
    if d.base_trials != base_len as u64 {
        return refuse(
            delta_rules::DELTA_BASE_TRIALS,
            "base_trials",
            format!(
                "the delta is for a base of {} trials; the base has {base_len}",
                d.base_trials
            ),
        );
    }
    Ok(())
}

fn trial_count(cp: &Checkpoint) -> usize {
    cp.progress.as_ref().map_or(0, |p| p.trial_log.len())
}

/// Changes `base` into the checkpoint `delta` makes from it (FORMAT.md
/// §13.2 without step 3): refuses, with the reason `delta_shape`, what
/// [`apply_delta`] refuses before it builds the new checkpoint (§13.1, then
/// `delta.session` and `delta.base_trials`), leaving `base` unchanged; the
/// result is not checked against FORMAT.md §7. Its fields and unknown fields
/// are those [`apply_delta`] gives; the base's kept fields and trial entries
/// are moved, not copied, so the work grows with the delta (and with the
/// base's unknown fields, when it has any). For readers that apply many
/// deltas and check the checkpoint they end with (docs/store-file.md §9.2).
pub(crate) fn merge_unchecked(
    base: &mut Decoded,
    delta: DecodedDelta,
) -> Result<(), ResumeMismatch> {
    check_delta(&delta.delta)?;
    check_base(&base.checkpoint, &delta.delta)?;
    let DecodedDelta {
        delta: d,
        unknown: delta_unknown,
    } = delta;
    let base_len = trial_count(&base.checkpoint);
    let mut result = d.head.expect("check_delta requires a head");
    for number in kept_numbers(d.kept) {
        move_field(&mut result, &mut base.checkpoint, number);
    }
    let has_progress = result.progress.is_some();
    if let Some(progress) = result.progress.as_mut() {
        let mut log = base
            .checkpoint
            .progress
            .take()
            .map(|p| p.trial_log)
            .unwrap_or_default();
        log.append(&mut progress.trial_log);
        progress.trial_log = log;
    }
    let base_unknown = std::mem::take(&mut base.unknown);
    base.unknown = result_unknown(base_unknown, delta_unknown, d.kept, base_len, has_progress);
    base.checkpoint = result;
    Ok(())
}

fn apply(base: &Decoded, delta: &DecodedDelta) -> Result<(Decoded, Vec<u8>), ResumeMismatch> {
    let d = &delta.delta;
    check_delta(d)?;
    check_base(&base.checkpoint, d)?;
    let head = d.head.as_ref().expect("check_delta requires a head");
    let base_cp = &base.checkpoint;
    let base_entries = base_cp
        .progress
        .as_ref()
        .map_or(&[][..], |p| p.trial_log.as_slice());
    let base_len = base_entries.len();

    let mut result = head.clone();
    for number in kept_numbers(d.kept) {
        copy_field(&mut result, base_cp, number);
    }
    if let Some(progress) = result.progress.as_mut() {
        let appended = std::mem::take(&mut progress.trial_log);
        progress.trial_log.reserve(base_len + appended.len());
        progress.trial_log.extend_from_slice(base_entries);
        progress.trial_log.extend(appended);
    }

    let unknown = result_unknown(
        base.unknown.clone(),
        delta.unknown.clone(),
        d.kept,
        base_len,
        result.progress.is_some(),
    );
    let bytes = encode_with_unknown(&result, &unknown)?;
    Ok((
        Decoded {
            checkpoint: result,
            unknown,
        },
        bytes,
    ))
}

/// The unknown fields of the new checkpoint: the head's (its appended trial
/// entries moved past the base's), those inside the base's trial entries
/// (when the head has a progress), and those inside the kept fields.
fn result_unknown(
    base: UnknownFields,
    delta: UnknownFields,
    kept: u32,
    base_len: usize,
    has_progress: bool,
) -> UnknownFields {
    let mut out = base;
    out.by_place.retain(|place, _| {
        let Some(&(number, _)) = place.first() else {
            return false; // the base's top-level unknown fields: the head's stand
        };
        let from_kept = number < 32 && kept & (1 << number) != 0;
        from_kept || (has_progress && is_trial_entry(place))
    });
    for (place, bytes) in delta.by_place {
        let Some((&(HEAD_NUMBER, 0), rest)) = place.split_first() else {
            continue; // the delta's own unknown fields
        };
        let mut moved: Place = rest.to_vec();
        if is_trial_entry(&moved) {
            moved[1].1 += base_len as u32;
        }
        out.by_place.insert(moved, bytes);
    }
    out
}

/// Whether `place` is inside a trial entry: `progress.trial_log[i]…`.
fn is_trial_entry(place: &[(u32, u32)]) -> bool {
    place.len() >= 2 && place[0] == (PROGRESS_NUMBER, 0) && place[1].0 == TRIAL_LOG_NUMBER
}
