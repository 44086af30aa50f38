//! A pass over the wire format of the Term given to `decode_trainset` (the
//! input of hash-trainset, which is any protobuf encoding of a Term, not a
//! checkpoint) before prost parses it, so that prost reads what every other
//! protobuf runtime reads. Checkpoint bytes are read by the strict grammar of
//! FORMAT.md §2 instead (grammar.rs).
//!
//! Protobuf parsers treat a field whose number is known but whose wire type is
//! not the schema's as an unknown field; prost refuses the whole message
//! instead. This pass walks the bytes with the schema, copies every field of
//! the right wire type (descending into known message fields) and drops
//! unknown fields and fields of the wrong wire type, which prost would not
//! keep anyway. Malformed bytes (bad varints, lengths past the end, unmatched
//! groups, wire types 6 and 7, field number 0) are refused as every parser
//! refuses them.

use std::fmt;

/// The wire-format problem that makes bytes unparseable.
#[derive(Debug)]
pub(crate) struct WireError(&'static str);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const SGROUP: u8 = 3;
const EGROUP: u8 = 4;
const I32: u8 = 5;

/// Deeper nesting than any runtime's recursion limit (prost's is 100): prost
/// refuses it on its own; this bound only keeps the walk off the stack limit.
const MAX_DEPTH: usize = 128;

/// The message types of the schema, as far as the wire format is concerned.
#[derive(Clone, Copy)]
pub(crate) enum Msg {
    // Checkpoint bytes go through the strict grammar (grammar.rs); this walk
    // reads only the Term given to hash-trainset (and its tests use it).
    #[allow(dead_code)]
    Checkpoint,
    OptionEntry,
    SamplerFormat,
    Progress,
    TrialLogEntry,
    Timestamp,
    Term,
    TermNull,
    TermList,
    TermMap,
    TermMapEntry,
}

/// A field's wire type, and its message type when it is a message.
type Field = (u8, Option<Msg>);

fn field(msg: Msg, number: u32) -> Option<Field> {
    use Msg::*;
    let scalar = |wire| Some((wire, None));
    let message = |m| Some((LEN, Some(m)));
    match (msg, number) {
        (Checkpoint, 1 | 2 | 3 | 5 | 6 | 11) => scalar(LEN),
        (Checkpoint, 4) => message(OptionEntry),
        (Checkpoint, 7 | 8) => message(Timestamp),
        (Checkpoint, 9) => message(Progress),
        (Checkpoint, 10) => message(TermMap),
        (Checkpoint, 12) => message(SamplerFormat),
        (Checkpoint, 13 | 15) => scalar(VARINT),
        (Checkpoint, 14) => message(Term),
        (OptionEntry, 1) => scalar(LEN),
        (OptionEntry, 2) => message(Term),
        (SamplerFormat, 1) => scalar(LEN),
        (SamplerFormat, 2) => scalar(VARINT),
        (Progress, 1) => message(TrialLogEntry),
        (Progress, 2) => scalar(I64),
        (Progress, 3..=6) => scalar(VARINT),
        (Progress, 7) => message(Timestamp),
        (TrialLogEntry, 1 | 4 | 6) => scalar(VARINT),
        (TrialLogEntry, 2 | 8) => scalar(LEN),
        (TrialLogEntry, 3) => scalar(I64),
        (TrialLogEntry, 5 | 7) => message(TermMap),
        (Timestamp, 1 | 2) => scalar(VARINT),
        (Term, 1) => message(TermNull),
        (Term, 2 | 3) => scalar(VARINT),
        (Term, 4 | 6 | 7 | 8) => scalar(LEN),
        (Term, 5) => scalar(I64),
        (Term, 9 | 10) => message(TermList),
        (Term, 11) => message(TermMap),
        (TermList, 1) => message(Term),
        (TermMap, 1) => message(TermMapEntry),
        (TermMapEntry, 1 | 2) => message(Term),
        _ => None,
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A varint as protobuf's reference parsers read it: at most 10 bytes,
    /// bits beyond 64 dropped.
    fn varint(&mut self) -> Result<u64, WireError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(WireError("truncated varint"));
            };
            self.pos += 1;
            value |= u64::from(byte & 0x7f).checked_shl(7 * i).unwrap_or(0);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(WireError("field runs past the end of its message"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn key(&mut self) -> Result<(u32, u8), WireError> {
        let key = self.varint()?;
        let key = u32::try_from(key).map_err(|_| WireError("field key out of range"))?;
        let wire = (key & 7) as u8;
        let number = key >> 3;
        if number == 0 {
            return Err(WireError("field number 0"));
        }
        if wire > I32 {
            return Err(WireError("invalid wire type"));
        }
        Ok((number, wire))
    }

    /// Skips the value of a field of the given wire type (the key is read).
    fn skip(&mut self, number: u32, wire: u8, depth: usize) -> Result<(), WireError> {
        match wire {
            VARINT => {
                self.varint()?;
            }
            I64 => {
                self.take(8)?;
            }
            I32 => {
                self.take(4)?;
            }
            LEN => {
                let len = self.len()?;
                self.take(len)?;
            }
            SGROUP => {
                if depth >= MAX_DEPTH {
                    return Err(WireError("nesting too deep"));
                }
                loop {
                    if self.pos >= self.buf.len() {
                        return Err(WireError("group without an end"));
                    }
                    let (inner, inner_wire) = self.key()?;
                    if inner_wire == EGROUP {
                        if inner != number {
                            return Err(WireError("mismatched end of group"));
                        }
                        break;
                    }
                    self.skip(inner, inner_wire, depth + 1)?;
                }
            }
            _ => return Err(WireError("unexpected end of group")),
        }
        Ok(())
    }

    fn len(&mut self) -> Result<usize, WireError> {
        let len = self.varint()?;
        // Lengths are limited to 2 GiB - 1 by every runtime.
        if len > i32::MAX as u64 {
            return Err(WireError("length out of range"));
        }
        Ok(len as usize)
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// `bytes` as a message of type `msg`, keeping only the fields of the schema
/// with their schema's wire type.
pub(crate) fn known_fields(bytes: &[u8], msg: Msg) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(bytes.len());
    walk(bytes, msg, 0, &mut out)?;
    Ok(out)
}

fn walk(bytes: &[u8], msg: Msg, depth: usize, out: &mut Vec<u8>) -> Result<(), WireError> {
    if depth >= MAX_DEPTH {
        return Err(WireError("nesting too deep"));
    }
    let mut r = Reader { buf: bytes, pos: 0 };
    while r.pos < bytes.len() {
        let start = r.pos;
        let (number, wire) = r.key()?;
        match field(msg, number) {
            Some((expected, sub)) if expected == wire => match sub {
                Some(sub) => {
                    let len = r.len()?;
                    let body = r.take(len)?;
                    let mut inner = Vec::with_capacity(body.len());
                    walk(body, sub, depth + 1, &mut inner)?;
                    put_varint(out, (u64::from(number) << 3) | u64::from(LEN));
                    put_varint(out, inner.len() as u64);
                    out.extend_from_slice(&inner);
                }
                // prost refuses a 10-byte varint whose last byte is above 1
                // where other parsers drop the excess bits: write it minimal.
                None if wire == VARINT => {
                    let value = r.varint()?;
                    put_varint(out, (u64::from(number) << 3) | u64::from(VARINT));
                    put_varint(out, value);
                }
                None => {
                    r.skip(number, wire, depth)?;
                    out.extend_from_slice(&bytes[start..r.pos]);
                }
            },
            _ => r.skip(number, wire, depth)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_unknown_fields_and_wrong_wire_types() {
        // format "a" (1, LEN), status 1 (13, VARINT), unknown 15, status as I64.
        let input = [
            0x0a, 1, b'a', 0x68, 1, 0x7a, 1, b'x', 0x69, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        let out = known_fields(&input, Msg::Checkpoint).unwrap();
        assert_eq!(out, [0x0a, 1, b'a', 0x68, 1]);
    }

    #[test]
    fn descends_into_messages() {
        // terminal_reason (14) = Term { unknown 20 varint, float_value 0.0 }.
        let input = [0x72, 12, 0xa0, 0x01, 5, 0x29, 0, 0, 0, 0, 0, 0, 0, 0];
        let out = known_fields(&input, Msg::Checkpoint).unwrap();
        assert_eq!(out, [0x72, 9, 0x29, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn skips_groups_and_refuses_malformed_bytes() {
        // An unknown group 16 holding a varint field, then format "a".
        let input = [0x83, 0x01, 0x08, 1, 0x84, 0x01, 0x0a, 1, b'a'];
        assert_eq!(
            known_fields(&input, Msg::Checkpoint).unwrap(),
            [0x0a, 1, b'a']
        );
        for bad in [
            &[0x83, 0x01, 0x08, 1][..],    // group without an end
            &[0x83, 0x01, 0x8c, 0x01][..], // mismatched end of group
            &[0x0c][..],                   // end of group outside a group
            &[0x0e, 0][..],                // wire type 6
            &[0x02, 0][..],                // field number 0
            &[0x0a, 5, b'a'][..],          // length past the end
            &[0x68][..],                   // truncated varint
            &[
                0x68, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0,
            ][..],
            &[0x4a, 2, 0x0a, 5][..], // nested length past the end
        ] {
            assert!(known_fields(bad, Msg::Checkpoint).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn varints_are_read_as_protobuf_reads_them() {
        // status (13) as a non-minimal varint and as a 10-byte varint with
        // excess bits: both are written minimal.
        assert_eq!(
            known_fields(&[0x68, 0x81, 0x80, 0x00], Msg::Checkpoint).unwrap(),
            [0x68, 1]
        );
        let long = [
            0x68, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7e,
        ];
        assert_eq!(known_fields(&long, Msg::Checkpoint).unwrap(), [0x68, 1]);
    }

    #[test]
    fn bounds_nesting() {
        // Term list nested 200 deep: refused without exhausting the stack.
        let mut term: Vec<u8> = vec![0x0a, 0];
        for _ in 0..200 {
            let mut list = vec![0x0a];
            put_varint(&mut list, term.len() as u64);
            list.extend_from_slice(&term);
            let mut outer = vec![0x4a];
            put_varint(&mut outer, list.len() as u64);
            outer.extend_from_slice(&list);
            term = outer;
        }
        assert!(known_fields(&term, Msg::Term).is_err());
    }
}
