//! Rust binding of the dsxir checkpoint format (`dsxir.optimizer_session.v1`).
//!
//! [`decode`] reads checkpoint bytes and applies every check of FORMAT.md §7 in
//! its order, reporting the first failure as a [`ResumeMismatch`] with reason
//! `checkpoint_shape`, the path of the offending field and the id of the
//! broken rule (one of [`rules`]). [`encode`] writes
//! the canonical encoding (FORMAT.md §2).
//!
//! - [`Value`], [`to_term`], [`from_term`] and [`from_term_map`] convert
//!   native values and Terms (FORMAT.md §3); [`value_bytes`] and
//!   [`term_bytes`] give canonical Term bytes.
//! - [`hash_trainset`] and [`hash_trainset_terms`] fingerprint a trainset
//!   (FORMAT.md §6); [`hash_trainset_json`] and [`hash_trainset_jsonl`]
//!   fingerprint one kept as JSON or JSON Lines text (FORMAT.md §6.1).
//! - [`check_resume`] is the resume gate (FORMAT.md §8).
//! - [`record_trial`], [`pause`], [`resume`], [`cancel`], [`complete`] and
//!   [`fail`] are the state transitions (FORMAT.md §9); [`status_name`]
//!   names a status and [`direction_name`] a direction: a session's
//!   `direction` ([`Direction::Higher`], the default, or
//!   [`Direction::Lower`]) says which scores are better, and
//!   [`record_trial`] tracks the best by it.
//!
//! Unknown fields (of a newer minor) are kept byte for byte by
//! [`decode_with_unknown`] and written back by [`Decoded::encode`] (FORMAT.md
//! §5), although prost itself does not keep them; [`decode`] leaves them out.
//! [`seal`], [`crc32c`] and [`weight_limit`] expose the trailer and the weight
//! limit of FORMAT.md §2.1 and §2.4.
//!
//! Deltas (FORMAT.md §13): [`decode_delta`] (and [`decode_delta_with_unknown`])
//! reads a [`CheckpointDelta`], refusing with reason `delta_shape` and a rule
//! of [`delta_rules`] (or of [`rules`] for the byte grammar);
//! [`encode_delta`] (and [`DecodedDelta::encode`]) writes its canonical
//! bytes; [`apply_delta`] (and [`apply_delta_bytes`]) makes the new
//! checkpoint from a base.

use prost::Message;

/// The generated messages of `dsxir.optimizer_session.v1`.
#[allow(clippy::all)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/dsxir.optimizer_session.v1.rs"));
}

pub use v1::{
    Checkpoint, CheckpointDelta, Direction, OptionEntry, Progress, SamplerFormat, SessionStatus,
    Term, TermList, TermMap, TermMapEntry, TermNull, TrialLogEntry, TrialStatus,
};

mod delta;
pub mod delta_rules;
mod errors;
mod grammar;
pub mod rules;
mod session;
mod sha256;
pub mod storefile;
mod trainset_json;
mod validate;
mod value;
mod wire;

pub use delta::{
    apply_delta, apply_delta_bytes, decode_delta, decode_delta_with_unknown, encode_delta,
    encode_delta_with_unknown, DecodedDelta, DELTA_FORMAT_ID, KEPT_MASK,
};
pub use errors::{
    hex, AlreadyTerminal, CheckpointError, GateValue, InvalidCheckpoint, InvalidTransition,
    ResumeMismatch, CHECKPOINT_SHAPE, DELTA_SHAPE, REASON_DIRECTION, REASON_OPTIMIZER,
    REASON_SAMPLER_FORMAT, REASON_SAMPLER_VERSION, REASON_TRAINSET_HASH,
};
pub use grammar::{crc32c, seal, weight_limit, UnknownFields, TRAILER_SIZE, TRAILER_TAG};
pub use session::{
    cancel, check_resume, check_resume_trainset, complete, decode_trainset, direction_name, fail,
    hash_trainset, hash_trainset_terms, is_terminal, pause, record_trial, resume, status_name,
    Trial, TrialOutcome,
};
pub use trainset_json::{
    hash_trainset_json, hash_trainset_jsonl, TrainsetJsonError, MAX_INTEGER_DIGITS,
};
pub use validate::{check_term, check_term_map, validate};
pub use value::{
    canonical_term, from_term, from_term_at, from_term_map, from_term_map_at, to_term, to_term_at,
    to_term_map, value_bytes, BigInt, ParseBigIntError, Value,
};

/// The largest input a reader accepts (256 MiB, trailer included), checked
/// before anything else.
pub const MAX_INPUT_BYTES: usize = 268_435_456;

/// The deepest Term a reader accepts (a scalar Term has depth 1).
pub const MAX_TERM_DEPTH: usize = 24;

/// The format identifier this schema's writers write; readers accept any v1
/// minor.
pub const FORMAT_ID: &str = "dsxir.optimizer_session.checkpoint/v1.1";

/// Reads checkpoint bytes (FORMAT.md §7): the size limit, the trailer and
/// its CRC-32C, the byte grammar of FORMAT.md §2.2 (only the canonical
/// encoding is accepted), the weight limit, then every check of FORMAT.md
/// §7 steps 2-4 in order. The unknown fields of a newer minor are accepted
/// and left out of the result; [`decode_with_unknown`] keeps them, as a
/// reader that writes the checkpoint back must (FORMAT.md §5).
pub fn decode(bytes: &[u8]) -> Result<Checkpoint, ResumeMismatch> {
    read(bytes, false).map(|decoded| decoded.checkpoint)
}

/// [`decode`], keeping the unknown fields: encoding the result with
/// [`Decoded::encode`] (or [`encode_with_unknown`]) gives back `bytes`
/// exactly, `encode(decode(b)) == b`.
pub fn decode_with_unknown(bytes: &[u8]) -> Result<Decoded, ResumeMismatch> {
    read(bytes, true)
}

/// A decoded checkpoint and the unknown fields it was read with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    pub checkpoint: Checkpoint,
    pub unknown: UnknownFields,
}

impl Decoded {
    /// The canonical bytes of the checkpoint with its unknown fields, each
    /// written back after the known fields of its message.
    pub fn encode(&self) -> Result<Vec<u8>, ResumeMismatch> {
        encode_with_unknown(&self.checkpoint, &self.unknown)
    }
}

fn grammar_refusal(r: grammar::Refusal) -> ResumeMismatch {
    ResumeMismatch::shape(r.rule, r.path, r.detail)
}

fn read(bytes: &[u8], keep_unknown: bool) -> Result<Decoded, ResumeMismatch> {
    let (body, scanned) = grammar::check(bytes, keep_unknown).map_err(grammar_refusal)?;
    // The grammar accepted the body, so prost parses it: every field has the
    // schema's wire type, every varint fits, every string is UTF-8, and the
    // nesting is bounded by the Term depth, far below prost's recursion
    // limit. A failure here is a bug of this library, refused rather than
    // trusted.
    let checkpoint = Checkpoint::decode(body).map_err(|e| {
        ResumeMismatch::shape(
            rules::WIRE_TRUNCATED,
            "<input>".into(),
            format!("the protobuf runtime refused bytes the grammar accepted: {e}"),
        )
    })?;
    // Map keys are ordered by their bytes as read, unknown fields included
    // (FORMAT.md §7), which the parsed message no longer holds.
    validate::validate_read(&checkpoint, body, &scanned.keys).map_err(|mut e| {
        if !checkpoint.session_id.is_empty() {
            e.session_id = Some(checkpoint.session_id.clone());
        }
        e
    })?;
    Ok(Decoded {
        checkpoint,
        unknown: scanned.unknown,
    })
}

/// The canonical encoding of a checkpoint (FORMAT.md §2): its known fields
/// in field-number order (prost writes presence fields, proto3 `optional`,
/// oneof members and messages, whenever they are set, including 0.0 and
/// -0.0, and other scalars only when they differ from their default), then
/// the trailer. Refuses what [`decode`] would refuse: a checkpoint that
/// breaks a rule of FORMAT.md §7, or whose bytes would break the grammar or
/// be over the size or weight limit.
pub fn encode(checkpoint: &Checkpoint) -> Result<Vec<u8>, ResumeMismatch> {
    encode_with_unknown(checkpoint, &UnknownFields::default())
}

/// [`encode`], writing the unknown fields of each message (as read by
/// [`decode_with_unknown`]) after its known fields.
pub fn encode_with_unknown(
    checkpoint: &Checkpoint,
    unknown: &UnknownFields,
) -> Result<Vec<u8>, ResumeMismatch> {
    if unknown.is_empty() {
        validate(checkpoint)?;
    }
    let known = checkpoint.encode_to_vec();
    let body = grammar::splice_unknown(&known, unknown);
    let size = body.len() + TRAILER_SIZE;
    let scanned = (size <= MAX_INPUT_BYTES).then(|| grammar::scan_body(&body, size, false));
    if !unknown.is_empty() {
        // The unknown fields are part of the keys they are in: order the map
        // keys by the bytes written, as a reader will (FORMAT.md §7).
        match &scanned {
            Some(Ok(s)) => validate::validate_read(checkpoint, &body, &s.keys)?,
            _ => validate::validate_unordered(checkpoint)?,
        }
    }
    if size > MAX_INPUT_BYTES {
        return Err(ResumeMismatch::shape(
            rules::INPUT_TOO_LARGE,
            "<input>".into(),
            format!(
                "the checkpoint is {size} bytes, more than the limit of {MAX_INPUT_BYTES} bytes"
            ),
        ));
    }
    if let Some(Err(refusal)) = scanned {
        return Err(grammar_refusal(refusal));
    }
    let mut out = body;
    let crc = crc32c(&out);
    out.extend_from_slice(&TRAILER_TAG);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// The canonical bytes of a Term (FORMAT.md §3.4): its encoding as a
/// standalone `Term` message. TermMap entries are ordered by these bytes.
/// A `Term` in memory has no unknown fields (a checkpoint's, kept by
/// [`decode_with_unknown`], are in [`UnknownFields`]), so these are the
/// bytes of the Term as built; a decoded map key's canonical bytes are its
/// bytes as read, and [`decode`] orders keys by those.
pub fn term_bytes(term: &Term) -> Vec<u8> {
    term.encode_to_vec()
}
