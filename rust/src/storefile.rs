//! Store files: the file in which the file store keeps the latest checkpoint
//! of one session (`<session_id>.dsxckpt`). docs/store-file.md at the
//! repository root is the normative description.
//!
//! A store file is a 44-byte header (magic, frame version, flags,
//! generation, lengths and CRC32C checksums), a JSON summary of the
//! checkpoint and the canonical checkpoint bytes (the snapshot). With flag 1
//! (appendable), commit records follow: each a 28-byte record header, the
//! summary of the checkpoint after it and a delta (FORMAT.md §13).
//!
//! - [`read`] checks the frame and every checksum, decodes the checkpoint
//!   with every rule of [`crate::decode`] and checks that the summary is the
//!   checkpoint's; then it reads the commit records and applies their
//!   deltas (docs/store-file.md §9.2). Frame and record damage is
//!   [`Error::Corrupt`] naming its kind; an invalid checkpoint (the
//!   snapshot's, or the one the records end with) is [`Error::Checkpoint`]
//!   with the [`ResumeMismatch`] of [`crate::decode`]; a record's delta that
//!   is not readable or does not fit is [`Error::Delta`].
//! - [`write`] returns the exact bytes the Python FileStore writes for a
//!   checkpoint committed as a generation (flags 0); [`write_appendable`]
//!   those with flag 1, to which [`record`] bytes may be appended.
//!
//! The body is the checkpoint's bytes, trailer included (FORMAT.md §2.1).
//! [`read`] keeps the unknown fields of a newer minor
//! ([`StoreFile::unknown`]); [`write_with_unknown`] writes them back, so
//! that the body read is the body written.

use std::fmt;

use crate::delta::merge_unchecked;
use crate::{
    decode_delta_with_unknown, decode_with_unknown, encode_with_unknown, grammar, validate,
    Checkpoint, Decoded, Progress, ResumeMismatch, UnknownFields, MAX_INPUT_BYTES,
};

/// The first 8 bytes of every store file: `"\x89dsxir\r\n"`.
pub const MAGIC: [u8; 8] = *b"\x89dsxir\r\n";
/// The only frame version read and written.
pub const FRAME_VERSION: u16 = 1;
/// The header flag of an appendable file: commit records may follow the
/// body (docs/store-file.md §9).
pub const FLAG_APPENDABLE: u16 = 1;
/// The first 4 bytes of every commit record: `"\x89dlt"`.
pub const RECORD_MAGIC: [u8; 4] = *b"\x89dlt";
/// The size of a commit record's header, in bytes.
pub const RECORD_HEADER_SIZE: usize = 28;
/// The size of the header, in bytes.
pub const HEADER_SIZE: usize = 44;
/// The largest summary a reader accepts (2^20 bytes).
pub const MAX_SUMMARY_BYTES: usize = 1 << 20;
/// The largest body: the checkpoint size limit (2^28 bytes).
pub const MAX_BODY_BYTES: usize = MAX_INPUT_BYTES;
/// The `"summary"` value of the summary layout.
pub const SUMMARY_VERSION: u32 = 1;

/// The frame check a damaged store file fails (docs/store-file.md §6), in
/// the order a reader checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Truncated,
    TrailingBytes,
    BadMagic,
    HeaderChecksum,
    UnsupportedVersion,
    UnsupportedFlags,
    OverLimits,
    SummaryChecksum,
    BodyChecksum,
    SummaryMismatch,
    RecordChecksum,
    RecordGeneration,
}

impl Kind {
    /// The name of the kind: `truncated`, `trailing_bytes`, `bad_magic`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Truncated => "truncated",
            Kind::TrailingBytes => "trailing_bytes",
            Kind::BadMagic => "bad_magic",
            Kind::HeaderChecksum => "header_checksum",
            Kind::UnsupportedVersion => "unsupported_version",
            Kind::UnsupportedFlags => "unsupported_flags",
            Kind::OverLimits => "over_limits",
            Kind::SummaryChecksum => "summary_checksum",
            Kind::BodyChecksum => "body_checksum",
            Kind::SummaryMismatch => "summary_mismatch",
            Kind::RecordChecksum => "record_checksum",
            Kind::RecordGeneration => "record_generation",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A damaged store file: the check that failed and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptStoreFile {
    pub kind: Kind,
    pub detail: String,
}

impl fmt::Display for CorruptStoreFile {
    /// `store_file: <kind>: <detail>`, the refusal line of the testee.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store_file: {}: {}", self.kind, self.detail)
    }
}

impl std::error::Error for CorruptStoreFile {}

/// Why a store file cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// [`read`]: the file is damaged.
    Corrupt(CorruptStoreFile),
    /// [`read`]: the body is not a valid checkpoint, or the checkpoint the
    /// commit records end with breaks a rule of FORMAT.md §7 (reason
    /// `checkpoint_shape`); [`write`]: the checkpoint is invalid, or its
    /// encoding is over [`MAX_BODY_BYTES`] (field `<input>`).
    Checkpoint(ResumeMismatch),
    /// [`read`]: the delta of an intact commit record is not readable
    /// (FORMAT.md §13.1) or is not one of the checkpoint before it (§13.2
    /// steps 1-2): reason `delta_shape`, the delta's path and rule.
    Delta(ResumeMismatch),
    /// [`write`]: the summary is over [`MAX_SUMMARY_BYTES`] (a huge session
    /// id or optimizer); [`record`]: the summary given is.
    SummaryTooLarge(usize),
    /// [`record`]: the delta given is over [`MAX_BODY_BYTES`].
    DeltaTooLarge(usize),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Corrupt(e) => e.fmt(f),
            Error::Checkpoint(e) | Error::Delta(e) => e.fmt(f),
            Error::SummaryTooLarge(size) => {
                write!(f, "summary of {size} bytes is over {MAX_SUMMARY_BYTES}")
            }
            Error::DeltaTooLarge(size) => {
                write!(f, "delta of {size} bytes is over {MAX_BODY_BYTES}")
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<ResumeMismatch> for Error {
    fn from(e: ResumeMismatch) -> Self {
        Error::Checkpoint(e)
    }
}

/// The values of a store file's summary (docs/store-file.md §3).
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub session_id: String,
    pub optimizer: String,
    /// `running`, `paused`, `completed`, `failed` or `cancelled`.
    pub status: &'static str,
    pub updated_at_seconds: i64,
    pub updated_at_nanos: i32,
    /// `None` when the checkpoint has no best score (`best_trial_idx` too).
    pub best_score: Option<f64>,
    pub best_trial_idx: Option<u64>,
    pub attempts: u64,
    pub completed: u64,
    pub errors: u64,
    /// The length of the trial log.
    pub trials: u64,
}

/// A store file that passed every check of [`read`]: the generation,
/// summary and checkpoint of its last commit record, or of its snapshot
/// when it has none.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreFile {
    pub generation: u64,
    pub summary: Summary,
    pub checkpoint: Checkpoint,
    /// The unknown fields the checkpoint was read with (FORMAT.md §5).
    pub unknown: UnknownFields,
    /// Whether the header has flag 1: commit records may follow the body.
    pub appendable: bool,
    /// The number of commit records applied.
    pub records: usize,
    /// Where the intact records end (the snapshot's end when there are
    /// none): a torn tail from there to the end of the file is ignored, and
    /// the next record is written there.
    pub end: usize,
}

/// The CRC-32C (Castagnoli) of `data` (the same as [`crate::crc32c`]).
pub fn crc32c(data: &[u8]) -> u32 {
    crate::crc32c(data)
}

fn corrupt<T>(kind: Kind, detail: impl Into<String>) -> Result<T, Error> {
    Err(Error::Corrupt(CorruptStoreFile {
        kind,
        detail: detail.into(),
    }))
}

fn be_u16(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

fn be_u32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes"))
}

fn be_u64(data: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(data[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads a whole store file, checking it in the order of
/// docs/store-file.md §5.
pub fn read(data: &[u8]) -> Result<StoreFile, Error> {
    let n = data.len();
    if n < HEADER_SIZE {
        return corrupt(
            Kind::Truncated,
            format!("{n} bytes, a header needs {HEADER_SIZE}"),
        );
    }
    if data[..8] != MAGIC {
        return corrupt(
            Kind::BadMagic,
            "not a dsxir checkpoint store file (bad magic)",
        );
    }
    if crc32c(&data[..40]) != be_u32(data, 40) {
        return corrupt(
            Kind::HeaderChecksum,
            "header checksum mismatch (damaged file)",
        );
    }
    let version = be_u16(data, 8);
    if version != FRAME_VERSION {
        return corrupt(
            Kind::UnsupportedVersion,
            format!("unsupported frame version {version}"),
        );
    }
    let flags = be_u16(data, 10);
    if flags != 0 && flags != FLAG_APPENDABLE {
        return corrupt(
            Kind::UnsupportedFlags,
            format!("unsupported frame flags {flags:#06x}"),
        );
    }
    let generation = be_u64(data, 12);
    let summary_length = be_u32(data, 20) as u64;
    let body_length = be_u64(data, 24);
    if summary_length > MAX_SUMMARY_BYTES as u64 || body_length > MAX_BODY_BYTES as u64 {
        return corrupt(
            Kind::OverLimits,
            format!(
                "summary length {summary_length} or body length {body_length} is over the \
                 limits ({MAX_SUMMARY_BYTES}, {MAX_BODY_BYTES})"
            ),
        );
    }
    let appendable = flags == FLAG_APPENDABLE;
    let total = HEADER_SIZE as u64 + summary_length + body_length;
    if (n as u64) < total || ((n as u64) > total && !appendable) {
        let kind = if (n as u64) < total {
            Kind::Truncated
        } else {
            Kind::TrailingBytes
        };
        return corrupt(kind, format!("file has {n} bytes, its frame says {total}"));
    }
    let total = total as usize;
    let (summary, body) = data[HEADER_SIZE..total].split_at(summary_length as usize);
    if crc32c(summary) != be_u32(data, 32) {
        return corrupt(
            Kind::SummaryChecksum,
            "summary checksum mismatch (damaged file)",
        );
    }
    if crc32c(body) != be_u32(data, 36) {
        return corrupt(
            Kind::BodyChecksum,
            "checkpoint checksum mismatch (damaged file)",
        );
    }
    let mut decoded = decode_with_unknown(body)?;
    let mut values = summary_of(&decoded.checkpoint);
    check_summary(summary, &values)?;
    let (mut generation, mut records, mut end) = (generation, 0, total);
    if appendable {
        // Every record is framed (§9.2 steps 1-5) before any is applied (steps 6-9).
        let mut framed = Vec::new();
        while let Some(record) = next_record(data, end)? {
            end = record.end;
            framed.push(record);
        }
        let mut last_summary: &[u8] = &[];
        for record in &framed {
            apply_record(&mut decoded, generation, record)?;
            generation = record.generation;
            last_summary = record.summary;
            records += 1;
        }
        if records > 0 {
            check_final(&decoded)?;
            values = summary_of(&decoded.checkpoint);
            check_summary(last_summary, &values)?;
        }
    }
    Ok(StoreFile {
        generation,
        summary: values,
        checkpoint: decoded.checkpoint,
        unknown: decoded.unknown,
        appendable,
        records,
        end,
    })
}

/// `summary` is, byte for byte, the canonical summary of `values`.
fn check_summary(summary: &[u8], values: &Summary) -> Result<(), Error> {
    let expected = summary_bytes(values);
    if summary != expected.as_slice() {
        return corrupt(
            Kind::SummaryMismatch,
            format!(
                "the summary is not the checkpoint's ({} bytes, expected {})",
                summary.len(),
                expected.len()
            ),
        );
    }
    Ok(())
}

/// An intact commit record (its header and payload checksums right).
struct Record<'a> {
    generation: u64,
    summary: &'a [u8],
    delta: &'a [u8],
    /// The offset of the byte after the record.
    end: usize,
}

/// The record at offset `at` (docs/store-file.md §9.2 steps 1-5), or `None`
/// at the end of the file or at a torn tail: fewer than 28 bytes left, or
/// an intact record header whose record runs past the end.
fn next_record(data: &[u8], at: usize) -> Result<Option<Record<'_>>, Error> {
    let n = data.len();
    if at >= n || n - at < RECORD_HEADER_SIZE {
        return Ok(None);
    }
    let head = &data[at..at + RECORD_HEADER_SIZE];
    if head[..4] != RECORD_MAGIC || crc32c(&head[..24]) != be_u32(head, 24) {
        return corrupt(
            Kind::RecordChecksum,
            format!("record at byte {at}: header damaged (magic or checksum)"),
        );
    }
    let generation = be_u64(head, 4);
    let summary_length = be_u32(head, 12) as usize;
    let delta_length = be_u32(head, 16) as usize;
    if summary_length > MAX_SUMMARY_BYTES || delta_length > MAX_BODY_BYTES {
        return corrupt(
            Kind::OverLimits,
            format!(
                "record at byte {at}: summary length {summary_length} or delta length \
                 {delta_length} is over the limits ({MAX_SUMMARY_BYTES}, {MAX_BODY_BYTES})"
            ),
        );
    }
    let start = at + RECORD_HEADER_SIZE;
    if n - start < summary_length + delta_length {
        return Ok(None);
    }
    let end = start + summary_length + delta_length;
    let payload = &data[start..end];
    if crc32c(payload) != be_u32(head, 20) {
        return corrupt(
            Kind::RecordChecksum,
            format!("record at byte {at}: payload checksum mismatch (damaged)"),
        );
    }
    let (summary, delta) = payload.split_at(summary_length);
    Ok(Some(Record {
        generation,
        summary,
        delta,
        end,
    }))
}

/// Applies an intact record to `current`, the checkpoint of `generation`
/// (docs/store-file.md §9.2 steps 6-9); the result is not checked against
/// FORMAT.md §7.
fn apply_record(current: &mut Decoded, generation: u64, record: &Record<'_>) -> Result<(), Error> {
    if generation.checked_add(1) != Some(record.generation) {
        return corrupt(
            Kind::RecordGeneration,
            format!(
                "a record commits generation {} after {generation}",
                record.generation
            ),
        );
    }
    let delta = decode_delta_with_unknown(record.delta).map_err(Error::Delta)?;
    if delta.delta.base_generation != generation {
        return corrupt(
            Kind::RecordGeneration,
            format!(
                "the delta of generation {} applies to {}",
                record.generation, delta.delta.base_generation
            ),
        );
    }
    merge_unchecked(current, delta).map_err(Error::Delta)
}

/// Every rule of FORMAT.md §7 on the checkpoint the records end with, its
/// unknown fields counted in the map keys they are in (as a reader of its
/// bytes orders them).
fn check_final(decoded: &Decoded) -> Result<(), Error> {
    if decoded.unknown.is_empty() {
        return Ok(validate(&decoded.checkpoint)?);
    }
    let body = grammar::splice_unknown(
        &prost::Message::encode_to_vec(&decoded.checkpoint),
        &decoded.unknown,
    );
    match grammar::scan_body(&body, body.len() + crate::TRAILER_SIZE, false) {
        Ok(scanned) => crate::validate::validate_read(&decoded.checkpoint, &body, &scanned.keys)?,
        Err(_) => crate::validate::validate_unordered(&decoded.checkpoint)?,
    }
    Ok(())
}

/// The store file of `checkpoint` committed as `generation`: byte for byte
/// what the Python FileStore writes.
pub fn write(generation: u64, checkpoint: &Checkpoint) -> Result<Vec<u8>, Error> {
    write_with_unknown(generation, checkpoint, &UnknownFields::default())
}

/// [`write_with_unknown`] with the header's flag 1: a file to which commit
/// records ([`record`]) may be appended, as the Python FileStore writes its
/// snapshots.
pub fn write_appendable(
    generation: u64,
    checkpoint: &Checkpoint,
    unknown: &UnknownFields,
) -> Result<Vec<u8>, Error> {
    frame(generation, FLAG_APPENDABLE, checkpoint, unknown)
}

/// The bytes of one commit record (docs/store-file.md §9.1): `generation`,
/// `summary` (the canonical summary of the checkpoint after the record,
/// [`encode_summary`]) and `delta` (the delta's bytes, [`crate::encode_delta`]).
/// Appended at the end of an appendable file's intact records
/// ([`StoreFile::end`]) whose generation is `generation - 1`, with a delta
/// over its checkpoint whose base generation is that one.
pub fn record(generation: u64, summary: &[u8], delta: &[u8]) -> Result<Vec<u8>, Error> {
    if summary.len() > MAX_SUMMARY_BYTES {
        return Err(Error::SummaryTooLarge(summary.len()));
    }
    if delta.len() > MAX_BODY_BYTES {
        return Err(Error::DeltaTooLarge(delta.len()));
    }
    let mut out = vec![0u8; RECORD_HEADER_SIZE];
    out.reserve(summary.len() + delta.len());
    out.extend_from_slice(summary);
    out.extend_from_slice(delta);
    let payload_crc = crc32c(&out[RECORD_HEADER_SIZE..]);
    out[..4].copy_from_slice(&RECORD_MAGIC);
    out[4..12].copy_from_slice(&generation.to_be_bytes());
    out[12..16].copy_from_slice(&(summary.len() as u32).to_be_bytes());
    out[16..20].copy_from_slice(&(delta.len() as u32).to_be_bytes());
    out[20..24].copy_from_slice(&payload_crc.to_be_bytes());
    let header_crc = crc32c(&out[..24]);
    out[24..28].copy_from_slice(&header_crc.to_be_bytes());
    Ok(out)
}

/// [`write`] for a checkpoint read with unknown fields (those of
/// [`StoreFile::unknown`]), which the body keeps.
pub fn write_with_unknown(
    generation: u64,
    checkpoint: &Checkpoint,
    unknown: &UnknownFields,
) -> Result<Vec<u8>, Error> {
    frame(generation, 0, checkpoint, unknown)
}

fn frame(
    generation: u64,
    flags: u16,
    checkpoint: &Checkpoint,
    unknown: &UnknownFields,
) -> Result<Vec<u8>, Error> {
    let body = encode_with_unknown(checkpoint, unknown)?;
    let summary = summary_bytes(&summary_of(checkpoint));
    if summary.len() > MAX_SUMMARY_BYTES {
        return Err(Error::SummaryTooLarge(summary.len()));
    }
    let mut out = Vec::with_capacity(HEADER_SIZE + summary.len() + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FRAME_VERSION.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend_from_slice(&(summary.len() as u32).to_be_bytes());
    out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    out.extend_from_slice(&crc32c(&summary).to_be_bytes());
    out.extend_from_slice(&crc32c(&body).to_be_bytes());
    let header_crc = crc32c(&out);
    out.extend_from_slice(&header_crc.to_be_bytes());
    out.extend_from_slice(&summary);
    out.extend_from_slice(&body);
    Ok(out)
}

/// The canonical summary of a valid checkpoint (docs/store-file.md §3): the
/// bytes of Python's `encode_summary`.
pub fn encode_summary(checkpoint: &Checkpoint) -> Result<Vec<u8>, ResumeMismatch> {
    validate(checkpoint)?;
    Ok(summary_bytes(&summary_of(checkpoint)))
}

fn status_name(status: i32) -> &'static str {
    match status {
        1 => "running",
        2 => "paused",
        3 => "completed",
        4 => "failed",
        5 => "cancelled",
        _ => "unspecified",
    }
}

/// The summary values of a valid checkpoint.
fn summary_of(cp: &Checkpoint) -> Summary {
    let none = Progress::default();
    let progress = cp.progress.as_ref().unwrap_or(&none);
    let stamp = cp.updated_at.unwrap_or_default();
    Summary {
        session_id: cp.session_id.clone(),
        optimizer: cp.optimizer.clone(),
        status: status_name(cp.status),
        updated_at_seconds: stamp.seconds,
        updated_at_nanos: stamp.nanos,
        best_score: progress.best_score,
        best_trial_idx: progress.best_trial_idx,
        attempts: progress.attempts,
        completed: progress.completed,
        errors: progress.errors,
        trials: progress.trial_log.len() as u64,
    }
}

fn summary_bytes(s: &Summary) -> Vec<u8> {
    let mut out = String::with_capacity(256 + s.session_id.len() + s.optimizer.len());
    out.push_str(&format!("{{\"attempts\":{}", s.attempts));
    match s.best_score {
        Some(score) => out.push_str(&format!(",\"best_score\":\"{:016x}\"", score.to_bits())),
        None => out.push_str(",\"best_score\":null"),
    }
    match s.best_trial_idx {
        Some(idx) => out.push_str(&format!(",\"best_trial_idx\":{idx}")),
        None => out.push_str(",\"best_trial_idx\":null"),
    }
    out.push_str(&format!(
        ",\"completed\":{},\"errors\":{}",
        s.completed, s.errors
    ));
    out.push_str(",\"optimizer\":");
    push_json_string(&mut out, &s.optimizer);
    out.push_str(",\"session_id\":");
    push_json_string(&mut out, &s.session_id);
    out.push_str(",\"status\":");
    push_json_string(&mut out, s.status);
    out.push_str(&format!(
        ",\"summary\":{SUMMARY_VERSION},\"trials\":{},\"updated_at\":[{},{}]}}",
        s.trials, s.updated_at_seconds, s.updated_at_nanos
    ));
    out.into_bytes()
}

/// `s` as a JSON string the way Python's `json.dumps(ensure_ascii=False)`
/// writes it: only `"`, `\` and characters below U+0020 are escaped (`\b \t
/// \n \f \r`, else `\u00xx` in lowercase); everything else is kept.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn json_strings_are_escaped_as_python_does() {
        let mut out = String::new();
        push_json_string(
            &mut out,
            "a\"\\/\u{0}\u{1f}\u{8}\t\n\u{c}\r\u{7f}\u{2028}é😀",
        );
        assert_eq!(
            out,
            "\"a\\\"\\\\/\\u0000\\u001f\\b\\t\\n\\f\\r\u{7f}\u{2028}é😀\""
        );
    }
}
