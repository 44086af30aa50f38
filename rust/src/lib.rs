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
//! prost keeps no unknown fields: a checkpoint written by a newer minor is
//! accepted, and its re-encoding is the canonical encoding of the known fields
//! only (see README.md).

use std::fmt;

use prost::Message;

/// The generated messages of `dsxir.optimizer_session.v1`.
#[allow(clippy::all)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/dsxir.optimizer_session.v1.rs"));
}

pub use v1::{
    Checkpoint, Direction, OptionEntry, Progress, SamplerFormat, SessionStatus, Term, TermList,
    TermMap, TermMapEntry, TermNull, TrialLogEntry, TrialStatus,
};

mod errors;
pub mod rules;
mod session;
mod sha256;
pub mod storefile;
mod trainset_json;
mod validate;
mod value;
mod wire;

pub use errors::{
    hex, AlreadyTerminal, CheckpointError, GateValue, InvalidCheckpoint, InvalidTransition,
    ResumeMismatch, CHECKPOINT_SHAPE, REASON_DIRECTION, REASON_OPTIMIZER, REASON_SAMPLER_FORMAT,
    REASON_SAMPLER_VERSION, REASON_TRAINSET_HASH,
};
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

/// The largest input a reader accepts (256 MiB), checked before parsing.
pub const MAX_INPUT_BYTES: usize = 268_435_456;

/// The deepest Term a reader accepts (a scalar Term has depth 1).
pub const MAX_TERM_DEPTH: usize = 24;

/// The format identifier this schema's writers write; readers accept any v1
/// minor.
pub const FORMAT_ID: &str = "dsxir.optimizer_session.checkpoint/v1.1";

/// Reads checkpoint bytes: size limit, protobuf parsing, then every check of
/// FORMAT.md §7 in order. Any valid protobuf encoding of a valid checkpoint is
/// accepted; unknown fields are dropped (prost does not keep them).
pub fn decode(bytes: &[u8]) -> Result<Checkpoint, ResumeMismatch> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(ResumeMismatch::shape(
            rules::INPUT_TOO_LARGE,
            "<input>".into(),
            format!(
                "input is {} bytes, more than the limit of {} bytes",
                bytes.len(),
                MAX_INPUT_BYTES
            ),
        ));
    }
    let not_protobuf = |e: &dyn fmt::Display| {
        ResumeMismatch::shape(
            rules::INPUT_MALFORMED,
            "<input>".into(),
            format!("not a valid protobuf message: {e}"),
        )
    };
    // Fields of the wrong wire type are unknown fields to protobuf parsers;
    // prost would refuse them, so they are dropped first (see wire.rs).
    let known = wire::known_fields(bytes, wire::Msg::Checkpoint).map_err(|e| not_protobuf(&e))?;
    let checkpoint = Checkpoint::decode(known.as_slice()).map_err(|e| not_protobuf(&e))?;
    validate(&checkpoint).map_err(|mut e| {
        if !checkpoint.session_id.is_empty() {
            e.session_id = Some(checkpoint.session_id.clone());
        }
        e
    })?;
    Ok(checkpoint)
}

/// The canonical encoding of a checkpoint (FORMAT.md §2). prost writes known
/// fields in field-number order, presence fields (proto3 `optional`, oneof
/// members, messages) whenever they are set (including 0.0 and -0.0), and
/// other scalars only when they differ from their default.
pub fn encode(checkpoint: &Checkpoint) -> Vec<u8> {
    checkpoint.encode_to_vec()
}

/// The canonical bytes of a Term (FORMAT.md §3.4): its encoding as a
/// standalone `Term` message. TermMap entries are ordered by these bytes.
pub fn term_bytes(term: &Term) -> Vec<u8> {
    term.encode_to_vec()
}
