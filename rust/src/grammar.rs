//! The byte grammar of a checkpoint (FORMAT.md §2): the size limit, the
//! CRC-32C trailer, the strict scan of the body and the weight limit.
//!
//! The scan takes its field table from `schema.rs`, which build.rs generates
//! from the schema's file descriptor set, so a field added to the schema is
//! scanned without an edit here; the weights and the Term depth are the only
//! hand-written constants. The scan reads the body once, in byte order, depth
//! first; it recurses only into message fields, which the Term depth limit
//! bounds (unknown fields are never descended into), and allocates nothing
//! per field (a path is formatted only for a refusal, and bytes are copied
//! only for unknown fields, which are kept).

use std::collections::{BTreeMap, BTreeSet};

use crate::{rules, MAX_INPUT_BYTES, MAX_TERM_DEPTH};

/// The value kind of a known field, as far as the grammar is concerned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Bool,
    Uint32,
    /// int32 and enums.
    Int32,
    /// uint64, int64 and sint64: any 64-bit varint.
    Int64,
    Double,
    String,
    Bytes,
    Message,
}

impl Kind {
    fn wire_type(self) -> u8 {
        match self {
            Kind::Bool | Kind::Uint32 | Kind::Int32 | Kind::Int64 => VARINT,
            Kind::Double => I64,
            Kind::String | Kind::Bytes | Kind::Message => LEN,
        }
    }
}

/// One field of the schema.
pub(crate) struct FieldDesc {
    pub(crate) number: u32,
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    /// proto3 `optional`, a oneof member or a message field.
    pub(crate) presence: bool,
    pub(crate) repeated: bool,
    /// The index of its (real, not synthetic) oneof.
    pub(crate) oneof: Option<u32>,
    /// The index in [`MESSAGES`] of its message type (`usize::MAX` if none).
    pub(crate) message: usize,
}

/// One message of the schema: its fields by ascending number, and `slots`,
/// the index into `fields` by field number (`u8::MAX`: not declared).
pub(crate) struct MessageDesc {
    #[allow(dead_code)]
    pub(crate) name: &'static str,
    pub(crate) fields: &'static [FieldDesc],
    pub(crate) slots: &'static [u8],
}

impl MessageDesc {
    fn field(&self, number: u32) -> Option<&'static FieldDesc> {
        let fields = self.fields;
        match self.slots.get(number as usize) {
            Some(&slot) if slot != u8::MAX => Some(&fields[usize::from(slot)]),
            _ => None,
        }
    }
}

#[allow(dead_code)]
mod schema {
    use super::{FieldDesc, Kind, MessageDesc};
    include!(concat!(env!("OUT_DIR"), "/schema.rs"));
}
pub(crate) use schema::{
    MESSAGES, MSG_CHECKPOINT, MSG_CHECKPOINT_DELTA, MSG_TERM, MSG_TERM_LIST, MSG_TERM_MAP,
    MSG_TERM_MAP_ENTRY, MSG_TERM_NULL, MSG_TRIAL_LOG_ENTRY,
};

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

/// The field number of the trailer, refused in a body.
const TRAILER_NUMBER: u64 = 536_870_911;
/// The first 5 bytes of the trailer: field 536,870,911, wire type I32.
pub const TRAILER_TAG: [u8; 5] = [0xFD, 0xFF, 0xFF, 0xFF, 0x0F];
/// The length of the trailer (FORMAT.md §2.1).
pub const TRAILER_SIZE: usize = 9;

const WEIGHT_TRIAL_LOG_ENTRY: u64 = 104;
const WEIGHT_TERM_NULL: u64 = 8;
const WEIGHT_MESSAGE: u64 = 48;
/// The weight limit of FORMAT.md §2.4: `WEIGHT_FACTOR × size + WEIGHT_BASE`.
const WEIGHT_FACTOR: u64 = 7;
const WEIGHT_BASE: u64 = 50_331_648;

/// The largest total weight (FORMAT.md §2.4) a checkpoint of `size` input
/// bytes (trailer included) may have: `7 × size + 50,331,648`.
pub fn weight_limit(size: usize) -> u64 {
    WEIGHT_FACTOR * size as u64 + WEIGHT_BASE
}

fn weight_of(message: usize) -> u64 {
    if message == MSG_TRIAL_LOG_ENTRY {
        WEIGHT_TRIAL_LOG_ENTRY
    } else if message == MSG_TERM_NULL {
        WEIGHT_TERM_NULL
    } else {
        WEIGHT_MESSAGE
    }
}

/// The CRC-32C (Castagnoli) of `data` (slicing by 8).
pub fn crc32c(data: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let mut c = u32::MAX;
    let mut chunks = data.chunks_exact(8);
    for b in &mut chunks {
        let lo = c ^ u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        c = t[7][(lo & 0xFF) as usize]
            ^ t[6][((lo >> 8) & 0xFF) as usize]
            ^ t[5][((lo >> 16) & 0xFF) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][usize::from(b[4])]
            ^ t[2][usize::from(b[5])]
            ^ t[1][usize::from(b[6])]
            ^ t[0][usize::from(b[7])];
    }
    for &b in chunks.remainder() {
        c = t[0][((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

static CRC_TABLES: [[u32; 256]; 8] = {
    let mut tables = [[0u32; 256]; 8];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        tables[0][n] = c;
        n += 1;
    }
    let mut n = 0;
    while n < 256 {
        let mut k = 1;
        while k < 8 {
            let prev = tables[k - 1][n];
            tables[k][n] = (prev >> 8) ^ tables[0][(prev & 0xFF) as usize];
            k += 1;
        }
        n += 1;
    }
    tables
};

/// `body` followed by its trailer (FORMAT.md §2.1): `FD FF FF FF 0F` and the
/// CRC-32C of `body`, least significant byte first.
pub fn seal(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + TRAILER_SIZE);
    out.extend_from_slice(body);
    out.extend_from_slice(&TRAILER_TAG);
    out.extend_from_slice(&crc32c(body).to_le_bytes());
    out
}

/// A broken rule of the grammar, at `path`.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) rule: &'static str,
    pub(crate) path: String,
    pub(crate) detail: String,
}

fn refusal<T>(rule: &'static str, path: String, detail: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        rule,
        path,
        detail: detail.into(),
    })
}

/// Where a message stands: a path through message fields. Each element is
/// (field number, index among that field's elements; 0 for a singular field).
pub(crate) type Place = Vec<(u32, u32)>;

/// The unknown fields of a decoded checkpoint (FORMAT.md §5): for each
/// message that had any, its place and the exact bytes of its unknown
/// fields, in the order read. Encoding writes them back after the known
/// fields of the message at the same place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnknownFields {
    pub(crate) by_place: BTreeMap<Place, Vec<u8>>,
}

impl UnknownFields {
    /// Whether no message had unknown fields.
    pub fn is_empty(&self) -> bool {
        self.by_place.is_empty()
    }

    /// The number of messages that had unknown fields.
    pub fn len(&self) -> usize {
        self.by_place.len()
    }

    /// The unknown bytes of the message at `place`, a path of (field
    /// number, element index) pairs from the top-level Checkpoint (an empty
    /// place is the Checkpoint itself).
    pub fn get(&self, place: &[(u32, u32)]) -> Option<&[u8]> {
        self.by_place.get(place).map(Vec::as_slice)
    }
}

/// The part of a path contributed by one message field.
struct Frame<'p> {
    parent: Option<&'p Frame<'p>>,
    field: &'static FieldDesc,
    index: u32,
}

fn path_of(frame: Option<&Frame<'_>>) -> String {
    let mut parts: Vec<(&'static FieldDesc, u32)> = Vec::new();
    let mut at = frame;
    while let Some(f) = at {
        parts.push((f.field, f.index));
        at = f.parent;
    }
    if parts.is_empty() {
        return "<input>".into();
    }
    let mut out = String::new();
    for (i, (field, index)) in parts.iter().rev().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(field.name);
        if field.repeated {
            out.push_str(&format!("[{index}]"));
        }
    }
    out
}

fn field_path(frame: Option<&Frame<'_>>, field: &'static FieldDesc, index: u32) -> String {
    path_of(Some(&Frame {
        parent: frame,
        field,
        index,
    }))
}

fn place_of(frame: Option<&Frame<'_>>) -> Place {
    let mut place = Vec::new();
    let mut at = frame;
    while let Some(f) = at {
        place.push((f.field.number, f.index));
        at = f.parent;
    }
    place.reverse();
    place
}

/// What a varint belongs to, for the path of its refusal.
#[derive(Clone, Copy)]
enum Owner {
    /// A tag, or the value or length of an unknown field: the message.
    Message,
    /// The value or length of a known field.
    Field(&'static FieldDesc, u32),
}

struct Scanner<'a> {
    buf: &'a [u8],
    weight: u64,
    unknown: Option<BTreeMap<Place, Vec<u8>>>,
    keys: Vec<(u32, u32)>,
}

impl<'a> Scanner<'a> {
    fn varint(
        &self,
        pos: &mut usize,
        end: usize,
        frame: Option<&Frame<'_>>,
        owner: Owner,
    ) -> Result<u64, Refusal> {
        let buf = self.buf;
        let mut value: u64 = 0;
        let mut p = *pos;
        for i in 0..10 {
            if p >= end {
                let what = match owner {
                    Owner::Message => "a tag or an unknown field".to_string(),
                    Owner::Field(field, _) => format!("field {}", field.name),
                };
                return refusal(
                    rules::WIRE_TRUNCATED,
                    path_of(frame),
                    format!("{what} cut short"),
                );
            }
            let b = buf[p];
            p += 1;
            let at = || match owner {
                Owner::Message => path_of(frame),
                Owner::Field(field, index) => field_path(frame, field, index),
            };
            if i == 9 && b > 1 {
                return refusal(rules::WIRE_VARINT, at(), "varint longer than 64 bits");
            }
            value |= u64::from(b & 0x7F) << (7 * i);
            if b < 0x80 {
                if i > 0 && b == 0 {
                    return refusal(rules::WIRE_VARINT, at(), "varint not minimal");
                }
                *pos = p;
                return Ok(value);
            }
        }
        unreachable!("a 10th byte either ends the varint or is refused")
    }

    /// Scans the message of type `msg` in `buf[pos..end]`. `depth` is the
    /// depth (FORMAT.md §3.6) of this message when it is a Term, and that of
    /// the Terms it holds when it is a TermList, TermMap or TermMapEntry.
    fn message(
        &mut self,
        msg: usize,
        mut pos: usize,
        end: usize,
        frame: Option<&Frame<'_>>,
        depth: usize,
    ) -> Result<(), Refusal> {
        let desc = &MESSAGES[msg];
        let mut previous: u64 = 0;
        let mut previous_wire: u8 = u8::MAX;
        let mut index: u32 = 0;
        let mut oneofs: u64 = 0;
        let mut unknown_bytes: Option<Vec<u8>> = None;
        while pos < end {
            let tag_start = pos;
            let tag = self.varint(&mut pos, end, frame, Owner::Message)?;
            if tag >= 1 << 32 {
                return refusal(rules::WIRE_VARINT, path_of(frame), "tag of 2^32 or more");
            }
            let number = tag >> 3;
            let wire = (tag & 7) as u8;
            if number == 0 || number == TRAILER_NUMBER {
                return refusal(
                    rules::WIRE_TAG,
                    path_of(frame),
                    format!("field number {number}"),
                );
            }
            if !matches!(wire, VARINT | I64 | LEN | I32) {
                return refusal(
                    rules::WIRE_TAG,
                    path_of(frame),
                    format!("wire type {wire} of field {number}"),
                );
            }
            let field = desc.field(number as u32);
            if number < previous
                || (number == previous && !field.map_or(wire == previous_wire, |f| f.repeated))
            {
                return refusal(
                    rules::WIRE_ORDER,
                    path_of(frame),
                    format!("field {number} after field {previous}"),
                );
            }
            index = if number == previous { index + 1 } else { 0 };
            previous = number;
            previous_wire = wire;
            let Some(field) = field else {
                self.skip(&mut pos, end, wire, frame)?;
                if self.unknown.is_some() {
                    unknown_bytes
                        .get_or_insert_with(Vec::new)
                        .extend_from_slice(&self.buf[tag_start..pos]);
                }
                continue;
            };
            if wire != field.kind.wire_type() {
                return refusal(
                    rules::WIRE_TAG,
                    path_of(frame),
                    format!("field {} with wire type {wire}", field.name),
                );
            }
            if let Some(k) = field.oneof {
                let bit = 1u64 << (k % 64);
                if oneofs & bit != 0 {
                    return refusal(
                        rules::WIRE_ONEOF,
                        path_of(frame),
                        format!("a second member of a oneof: {}", field.name),
                    );
                }
                oneofs |= bit;
            }
            let owner = Owner::Field(field, index);
            match wire {
                VARINT => {
                    let value = self.varint(&mut pos, end, frame, owner)?;
                    check_scalar(field, value, frame, index)?;
                }
                I64 | I32 => {
                    let size = if wire == I64 { 8 } else { 4 };
                    if end - pos < size {
                        return refusal(
                            rules::WIRE_TRUNCATED,
                            path_of(frame),
                            format!("field {} cut short", field.name),
                        );
                    }
                    pos += size;
                }
                _ => {
                    let length = self.varint(&mut pos, end, frame, owner)?;
                    if length > (end - pos) as u64 {
                        return refusal(
                            rules::WIRE_TRUNCATED,
                            path_of(frame),
                            format!("field {} longer than its message", field.name),
                        );
                    }
                    let stop = pos + length as usize;
                    if field.kind == Kind::Message {
                        let child = field.message;
                        let inner = child_depth(msg, depth, child);
                        if child == MSG_TERM && inner > MAX_TERM_DEPTH {
                            return refusal(
                                rules::TERM_DEPTH,
                                field_path(frame, field, index),
                                format!("nesting deeper than {MAX_TERM_DEPTH}"),
                            );
                        }
                        self.weight += weight_of(child);
                        if msg == MSG_TERM_MAP_ENTRY && field.number == 1 {
                            // The body is under 2^32 bytes (MAX_INPUT_BYTES).
                            self.keys.push((pos as u32, stop as u32));
                        }
                        let sub = Frame {
                            parent: frame,
                            field,
                            index,
                        };
                        self.message(child, pos, stop, Some(&sub), inner)?;
                    } else {
                        if field.kind == Kind::String
                            && std::str::from_utf8(&self.buf[pos..stop]).is_err()
                        {
                            return refusal(
                                rules::WIRE_UTF8,
                                field_path(frame, field, index),
                                "not UTF-8",
                            );
                        }
                        if length == 0 && !field.presence && !field.repeated {
                            return refusal(
                                rules::WIRE_DEFAULT,
                                field_path(frame, field, index),
                                "default value written",
                            );
                        }
                    }
                    pos = stop;
                }
            }
        }
        if let (Some(bytes), Some(map)) = (unknown_bytes, self.unknown.as_mut()) {
            map.insert(place_of(frame), bytes);
        }
        Ok(())
    }

    /// Skips the value of an unknown field; its refusals name the message.
    fn skip(
        &self,
        pos: &mut usize,
        end: usize,
        wire: u8,
        frame: Option<&Frame<'_>>,
    ) -> Result<(), Refusal> {
        let length = match wire {
            VARINT => {
                self.varint(pos, end, frame, Owner::Message)?;
                return Ok(());
            }
            LEN => self.varint(pos, end, frame, Owner::Message)?,
            I64 => 8,
            _ => 4,
        };
        if length > (end - *pos) as u64 {
            return refusal(
                rules::WIRE_TRUNCATED,
                path_of(frame),
                "an unknown field cut short",
            );
        }
        *pos += length as usize;
        Ok(())
    }
}

fn check_scalar(
    field: &'static FieldDesc,
    value: u64,
    frame: Option<&Frame<'_>>,
    index: u32,
) -> Result<(), Refusal> {
    let out_of_range = match field.kind {
        Kind::Bool => value > 1,
        Kind::Uint32 => value >= 1 << 32,
        Kind::Int32 => ((1 << 31)..(u64::MAX - (1 << 31) + 1)).contains(&value),
        _ => false,
    };
    if out_of_range {
        return refusal(
            rules::WIRE_RANGE,
            field_path(frame, field, index),
            format!("{value} is out of the range of field {}", field.name),
        );
    }
    if value == 0 && !field.presence && !field.repeated {
        return refusal(
            rules::WIRE_DEFAULT,
            field_path(frame, field, index),
            "default value written",
        );
    }
    Ok(())
}

/// The depth (FORMAT.md §3.6) a message of type `child` gets inside `parent`
/// at `depth`: a Term's children are one deeper; a TermList, TermMap or
/// TermMapEntry passes its depth on; outside Terms, a Term field starts at 1
/// and a TermMap field holds Terms of depth 2.
fn child_depth(parent: usize, depth: usize, child: usize) -> usize {
    let container = |m: usize| m == MSG_TERM_LIST || m == MSG_TERM_MAP || m == MSG_TERM_MAP_ENTRY;
    if parent == MSG_TERM {
        depth + 1
    } else if container(parent) {
        depth
    } else if child == MSG_TERM {
        1
    } else if container(child) {
        2
    } else {
        0
    }
}

fn too_large(size: usize) -> Refusal {
    Refusal {
        rule: rules::INPUT_TOO_LARGE,
        path: "<input>".into(),
        detail: format!("input is {size} bytes, more than the limit of {MAX_INPUT_BYTES} bytes"),
    }
}

/// What a grammar scan of a body records besides accepting it.
pub(crate) struct Scanned {
    /// The unknown fields read (empty unless they were asked for).
    pub(crate) unknown: UnknownFields,
    /// The span (start, end) in the body of every map key's Term, in byte
    /// order: a key's canonical bytes are its bytes as read, unknown fields
    /// included (FORMAT.md §7). An outer key comes before the keys nested
    /// in it.
    pub(crate) keys: Vec<(u32, u32)>,
}

/// Checks `data` by FORMAT.md §2 (§7 step 1): size, trailer, checksum, the
/// grammar in byte order, the weight. Returns the body (the bytes before
/// the trailer) and what the scan recorded: when `keep_unknown`, the
/// unknown fields read, and the spans of the map keys.
pub(crate) fn check(data: &[u8], keep_unknown: bool) -> Result<(&[u8], Scanned), Refusal> {
    check_root(data, MSG_CHECKPOINT, keep_unknown)
}

/// [`check`] with `root` (an index into [`MESSAGES`]) as the top-level
/// message: a Checkpoint, or a CheckpointDelta (FORMAT.md §13).
pub(crate) fn check_root(
    data: &[u8],
    root: usize,
    keep_unknown: bool,
) -> Result<(&[u8], Scanned), Refusal> {
    let size = data.len();
    if size > MAX_INPUT_BYTES {
        return Err(too_large(size));
    }
    if size < TRAILER_SIZE || data[size - TRAILER_SIZE..size - 4] != TRAILER_TAG {
        return refusal(
            rules::INPUT_TRAILER,
            "<input>".into(),
            "no checksum trailer at the end (cut or not a checkpoint)",
        );
    }
    let body = &data[..size - TRAILER_SIZE];
    let expected = u32::from_le_bytes(data[size - 4..].try_into().expect("4 bytes"));
    if crc32c(body) != expected {
        return refusal(
            rules::INPUT_CHECKSUM,
            "<input>".into(),
            "the checksum does not match the bytes",
        );
    }
    let scanned = scan_root(body, root, size, keep_unknown)?;
    Ok((body, scanned))
}

/// The grammar and the weight limit on a body whose whole input (trailer
/// included) is `size` bytes long.
pub(crate) fn scan_body(body: &[u8], size: usize, keep_unknown: bool) -> Result<Scanned, Refusal> {
    scan_root(body, MSG_CHECKPOINT, size, keep_unknown)
}

/// [`scan_body`] with `root` as the top-level message.
pub(crate) fn scan_root(
    body: &[u8],
    root: usize,
    size: usize,
    keep_unknown: bool,
) -> Result<Scanned, Refusal> {
    let mut scanner = Scanner {
        buf: body,
        weight: 0,
        unknown: keep_unknown.then(BTreeMap::new),
        keys: Vec::new(),
    };
    scanner.message(root, 0, body.len(), None, 0)?;
    let limit = weight_limit(size);
    if scanner.weight > limit {
        return refusal(
            rules::INPUT_WEIGHT,
            "<input>".into(),
            format!(
                "weight {} over the limit of {limit} for {size} bytes",
                scanner.weight
            ),
        );
    }
    Ok(Scanned {
        unknown: UnknownFields {
            by_place: scanner.unknown.unwrap_or_default(),
        },
        keys: scanner.keys,
    })
}

/// Writes a checkpoint's canonical body: `known` (the deterministic
/// serialization of its known fields), with each message's unknown fields
/// appended after its known fields and the lengths of the enclosing
/// messages fixed. `known` is trusted (a protobuf runtime wrote it).
pub(crate) fn splice_unknown(known: &[u8], unknown: &UnknownFields) -> Vec<u8> {
    splice_unknown_root(known, MSG_CHECKPOINT, unknown)
}

/// [`splice_unknown`] for a body whose top-level message is `root`.
pub(crate) fn splice_unknown_root(known: &[u8], root: usize, unknown: &UnknownFields) -> Vec<u8> {
    if unknown.is_empty() {
        return known.to_vec();
    }
    let mut prefixes: BTreeSet<&[(u32, u32)]> = BTreeSet::new();
    for place in unknown.by_place.keys() {
        for n in 0..=place.len() {
            prefixes.insert(&place[..n]);
        }
    }
    let mut out = Vec::with_capacity(known.len() + 64);
    let mut place = Vec::new();
    splice(known, root, &mut place, unknown, &prefixes, &mut out);
    out
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn read_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        value |= u64::from(b & 0x7F) << shift;
        if b < 0x80 {
            return value;
        }
        shift += 7;
    }
}

fn splice(
    known: &[u8],
    msg: usize,
    place: &mut Place,
    unknown: &UnknownFields,
    prefixes: &BTreeSet<&[(u32, u32)]>,
    out: &mut Vec<u8>,
) {
    let desc = &MESSAGES[msg];
    let mut pos = 0;
    let mut previous = 0u32;
    let mut index = 0u32;
    while pos < known.len() {
        let start = pos;
        let tag = read_varint(known, &mut pos);
        let number = (tag >> 3) as u32;
        let wire = (tag & 7) as u8;
        index = if number == previous { index + 1 } else { 0 };
        previous = number;
        match wire {
            VARINT => {
                read_varint(known, &mut pos);
            }
            I64 => pos += 8,
            I32 => pos += 4,
            _ => {
                let length = read_varint(known, &mut pos) as usize;
                let value_start = pos;
                pos += length;
                let sub = desc
                    .field(number)
                    .filter(|f| f.kind == Kind::Message)
                    .map(|f| f.message);
                if let Some(child) = sub {
                    place.push((number, index));
                    if prefixes.contains(place.as_slice()) {
                        let mut inner = Vec::with_capacity(length + 16);
                        splice(
                            &known[value_start..pos],
                            child,
                            place,
                            unknown,
                            prefixes,
                            &mut inner,
                        );
                        out.extend_from_slice(&known[start..value_start - varint_len(length)]);
                        put_varint(out, inner.len() as u64);
                        out.extend_from_slice(&inner);
                        place.pop();
                        continue;
                    }
                    place.pop();
                }
            }
        }
        out.extend_from_slice(&known[start..pos]);
    }
    if let Some(bytes) = unknown.by_place.get(place.as_slice()) {
        out.extend_from_slice(bytes);
    }
}

fn varint_len(mut value: usize) -> usize {
    let mut n = 1;
    while value >= 0x80 {
        value >>= 7;
        n += 1;
    }
    n
}
