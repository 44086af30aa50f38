//! Rust binding of the dsxir checkpoint format (`dsxir.optimizer_session.v1`).
//!
//! [`decode`] reads checkpoint bytes and applies every check of FORMAT.md §7 in
//! its order, reporting the first failure as a [`ResumeMismatch`] with reason
//! `checkpoint_shape` and the path of the offending field. [`encode`] writes
//! the canonical encoding (FORMAT.md §2).
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
    Checkpoint, OptionEntry, Progress, SamplerFormat, SessionStatus, Term, TermList, TermMap,
    TermMapEntry, TermNull, TrialLogEntry, TrialStatus,
};

pub mod storefile;
mod validate;
mod wire;

pub use validate::{check_term, check_term_map, validate};

/// The largest input a reader accepts (256 MiB), checked before parsing.
pub const MAX_INPUT_BYTES: usize = 268_435_456;

/// The deepest Term a reader accepts (a scalar Term has depth 1).
pub const MAX_TERM_DEPTH: usize = 24;

/// The format identifier this schema's writers write.
pub const FORMAT_ID: &str = "dsxir.optimizer_session.checkpoint/v1.0";

/// The only reason [`decode`] reports: the bytes are not a valid checkpoint.
pub const CHECKPOINT_SHAPE: &str = "checkpoint_shape";

/// A checkpoint that cannot be used: for [`decode`], the reason is always
/// `checkpoint_shape`, `field` is the path of the offending field (FORMAT.md
/// §7, e.g. `progress.trial_log[3].stats.entries[0].key`, or `<input>` for a
/// size or parse failure) and `detail` says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeMismatch {
    pub reason: &'static str,
    pub field: String,
    pub detail: String,
}

impl ResumeMismatch {
    pub(crate) fn shape(field: String, detail: impl Into<String>) -> Self {
        ResumeMismatch {
            reason: CHECKPOINT_SHAPE,
            field,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for ResumeMismatch {
    /// `checkpoint_shape: <field>: <detail>`, the refusal line of the testee.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.reason, self.field, self.detail)
    }
}

impl std::error::Error for ResumeMismatch {}

/// Reads checkpoint bytes: size limit, protobuf parsing, then every check of
/// FORMAT.md §7 in order. Any valid protobuf encoding of a valid checkpoint is
/// accepted; unknown fields are dropped (prost does not keep them).
pub fn decode(bytes: &[u8]) -> Result<Checkpoint, ResumeMismatch> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(ResumeMismatch::shape(
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
            "<input>".into(),
            format!("not a valid protobuf message: {e}"),
        )
    };
    // Fields of the wrong wire type are unknown fields to protobuf parsers;
    // prost would refuse them, so they are dropped first (see wire.rs).
    let known = wire::known_fields(bytes, wire::Msg::Checkpoint).map_err(|e| not_protobuf(&e))?;
    let checkpoint = Checkpoint::decode(known.as_slice()).map_err(|e| not_protobuf(&e))?;
    validate(&checkpoint)?;
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
