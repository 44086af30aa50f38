//! Trainsets kept as JSON text (FORMAT.md §6.1): [`hash_trainset_json`] and
//! [`hash_trainset_jsonl`] give the digest of [`crate::hash_trainset`] over
//! the examples the text holds, the same in every language.
//!
//! Each JSON value becomes a [`Value`]: `null` is `Null`, `true`/`false`
//! `Bool`; a number without fraction and exponent is an integer (`Int` in
//! int64, else `BigInt`, never a float; `-0` is `Int(0)`); any other number
//! is the nearest `Float` (`-0.0` kept); a string is `Str`, an array `List`,
//! an object a `Map` with `Str` keys.
//!
//! The parser is strict RFC 8259 and refuses, with a [`TrainsetJsonError`]
//! naming the byte offset (and for JSONL the line): text over
//! [`crate::MAX_INPUT_BYTES`], text that is not UTF-8, a byte order mark, any
//! syntax error, `NaN`/`Infinity`, leading zeros, a number whose nearest
//! double is infinite, an integer of more than [`MAX_INTEGER_DIGITS`]
//! digits, an escape of a lone surrogate, two equal keys in one object,
//! content after the value, and nesting deeper than
//! [`crate::MAX_TERM_DEPTH`] (the examples are at depth 1).
//!
//! The text is read twice, once to count the examples and once to hash them:
//! memory holds one example at a time.

use std::collections::HashSet;
use std::fmt;

use prost::Message;

use crate::session::{add_example, start_trainset};
use crate::value::to_term_at;
use crate::{BigInt, Value, MAX_INPUT_BYTES, MAX_TERM_DEPTH};

/// The most digits an integer may have: converting more to binary would take
/// time growing with the square of their number.
pub const MAX_INTEGER_DIGITS: usize = 4300;

/// JSON text refused by [`hash_trainset_json`] or [`hash_trainset_jsonl`].
///
/// Displays as `byte <offset>: <detail>`, or for JSON Lines `line <line>,
/// byte <offset>: <detail>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainsetJsonError {
    /// The 0-based byte offset in the whole text where the problem is.
    pub offset: usize,
    /// For JSON Lines, the 1-based line of `offset`; `None` for JSON.
    pub line: Option<usize>,
    /// What is wrong there.
    pub detail: String,
}

impl fmt::Display for TrainsetJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}, byte {}: {}", self.offset, self.detail),
            None => write!(f, "byte {}: {}", self.offset, self.detail),
        }
    }
}

impl std::error::Error for TrainsetJsonError {}

/// The trainset hash (FORMAT.md §6) of JSON text holding one array whose
/// elements are the examples, in order. `[]` is the empty trainset.
pub fn hash_trainset_json(text: &[u8]) -> Result<[u8; 32], TrainsetJsonError> {
    let src = Source::open(text, false)?;
    let mut count = 0usize;
    json_examples(&src, |_, _| {
        count += 1;
        Ok(())
    })?;
    let mut h = start_trainset(count);
    json_examples(&src, |i, (offset, example)| {
        add_example(&mut h, &src.term_bytes(i, offset, &example, None)?);
        Ok(())
    })?;
    Ok(h.finalize())
}

/// The trainset hash (FORMAT.md §6) of JSON Lines: the text is split at
/// `\n`, a trailing `\r` of a line is removed, lines then empty or of spaces
/// and tabs only are skipped, and every other line is one JSON value, one
/// example. Empty text is the empty trainset.
pub fn hash_trainset_jsonl(text: &[u8]) -> Result<[u8; 32], TrainsetJsonError> {
    let src = Source::open(text, true)?;
    let mut count = 0usize;
    jsonl_examples(&src, |_, _, _| {
        count += 1;
        Ok(())
    })?;
    let mut h = start_trainset(count);
    jsonl_examples(&src, |i, line, (offset, example)| {
        add_example(&mut h, &src.term_bytes(i, offset, &example, Some(line))?);
        Ok(())
    })?;
    Ok(h.finalize())
}

type Found = Result<(), TrainsetJsonError>;

/// Calls `visit(i, (offset, example))` for each element of the array.
fn json_examples(src: &Source, mut visit: impl FnMut(usize, (usize, Value)) -> Found) -> Found {
    let mut p = Parser::new(src, 0, src.bytes.len(), None);
    p.skip_ws();
    match p.peek() {
        Some(b'[') => p.pos += 1,
        None => return Err(p.error(p.pos, "no JSON value: the text is empty or blank")),
        Some(b'{' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
            return Err(p.error(p.pos, "the trainset must be a JSON array"))
        }
        Some(c) => return Err(p.unexpected(c)),
    }
    p.skip_ws();
    if p.peek() == Some(b']') {
        p.pos += 1;
    } else {
        let mut i = 0;
        loop {
            p.skip_ws();
            let start = p.pos;
            let example = p.value(1)?;
            visit(i, (start, example))?;
            i += 1;
            p.skip_ws();
            match p.peek() {
                Some(b',') => p.pos += 1,
                Some(b']') => {
                    p.pos += 1;
                    break;
                }
                None => return Err(p.error(p.pos, "unexpected end of text in the array")),
                Some(_) => return Err(p.error(p.pos, "expected ',' or ']' after an array element")),
            }
        }
    }
    p.finish()
}

/// Calls `visit(i, line, (offset, example))` for each example line.
fn jsonl_examples(
    src: &Source,
    mut visit: impl FnMut(usize, usize, (usize, Value)) -> Found,
) -> Found {
    let bytes = src.bytes;
    let mut i = 0;
    let mut start = 0;
    let mut line = 1;
    while start < bytes.len() {
        let newline = bytes[start..].iter().position(|&b| b == b'\n');
        let next = newline.map_or(bytes.len(), |n| start + n + 1);
        let mut end = newline.map_or(bytes.len(), |n| start + n);
        if end > start && bytes[end - 1] == b'\r' {
            end -= 1;
        }
        if !bytes[start..end].iter().all(|&b| b == b' ' || b == b'\t') {
            let mut p = Parser::new(src, start, end, Some(line));
            p.skip_ws();
            let at = p.pos;
            let example = p.value(1)?;
            p.finish()?;
            visit(i, line, (at, example))?;
            i += 1;
        }
        start = next;
        line += 1;
    }
    Ok(())
}

/// The whole text, checked for size, UTF-8 and a byte order mark.
struct Source<'a> {
    bytes: &'a [u8],
    text: &'a str,
}

impl<'a> Source<'a> {
    fn open(bytes: &'a [u8], lines: bool) -> Result<Source<'a>, TrainsetJsonError> {
        let line_of = |offset: usize| lines.then(|| line_at(bytes, offset));
        if bytes.len() > MAX_INPUT_BYTES {
            return Err(TrainsetJsonError {
                offset: 0,
                line: line_of(0),
                detail: format!(
                    "text is {} bytes, more than the limit of {MAX_INPUT_BYTES} bytes",
                    bytes.len()
                ),
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| TrainsetJsonError {
            offset: e.valid_up_to(),
            line: line_of(e.valid_up_to()),
            detail: "not UTF-8 text".into(),
        })?;
        if text.starts_with('\u{feff}') {
            return Err(TrainsetJsonError {
                offset: 0,
                line: line_of(0),
                detail: "a byte order mark is not allowed".into(),
            });
        }
        Ok(Source { bytes, text })
    }

    /// The canonical Term bytes of example `i` that starts at `offset`.
    fn term_bytes(
        &self,
        i: usize,
        offset: usize,
        example: &Value,
        line: Option<usize>,
    ) -> Result<Vec<u8>, TrainsetJsonError> {
        // The parser already refused everything the conversion refuses.
        match to_term_at(example, &format!("trainset[{i}]")) {
            Ok(t) => Ok(t.encode_to_vec()),
            Err(e) => Err(TrainsetJsonError {
                offset,
                line,
                detail: e.to_string(),
            }),
        }
    }
}

/// The 1-based line of a byte offset.
fn line_at(bytes: &[u8], offset: usize) -> usize {
    1 + bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// A recursive-descent parser over `bytes[pos..end]`; offsets are in the
/// whole text.
struct Parser<'s, 'a> {
    src: &'s Source<'a>,
    pos: usize,
    end: usize,
    line: Option<usize>,
}

impl<'s, 'a> Parser<'s, 'a> {
    fn new(src: &'s Source<'a>, pos: usize, end: usize, line: Option<usize>) -> Self {
        Parser {
            src,
            pos,
            end,
            line,
        }
    }

    fn error(&self, offset: usize, detail: impl Into<String>) -> TrainsetJsonError {
        TrainsetJsonError {
            offset,
            line: self.line,
            detail: detail.into(),
        }
    }

    fn unexpected(&self, c: u8) -> TrainsetJsonError {
        let shown = match self.src.text.get(self.pos..).and_then(|s| s.chars().next()) {
            Some(ch) if c >= 0x80 || (c > 0x20 && c != 0x7f) => format!("{ch:?}"),
            _ => format!("byte 0x{c:02x}"),
        };
        self.error(self.pos, format!("unexpected character {shown}"))
    }

    fn peek(&self) -> Option<u8> {
        (self.pos < self.end).then(|| self.src.bytes[self.pos])
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// After the value: only whitespace up to the end.
    fn finish(mut self) -> Found {
        self.skip_ws();
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error(self.pos, "content after the JSON value")),
        }
    }

    /// One value at Term depth `depth`.
    fn value(&mut self, depth: usize) -> Result<Value, TrainsetJsonError> {
        if depth > MAX_TERM_DEPTH {
            return Err(self.error(self.pos, format!("nesting deeper than {MAX_TERM_DEPTH}")));
        }
        match self.peek() {
            None => Err(self.error(self.pos, "unexpected end of text, expected a JSON value")),
            Some(b'[') => self.array(depth),
            Some(b'{') => self.object(depth),
            Some(b'"') => self.string().map(Value::Str),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(c) => Err(self.unexpected(c)),
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, TrainsetJsonError> {
        let bytes = &self.src.bytes[self.pos..self.end];
        if bytes.starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error(self.pos, format!("invalid literal, expected {word}")))
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, TrainsetJsonError> {
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::List(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::List(items));
                }
                None => return Err(self.error(self.pos, "unexpected end of text in an array")),
                Some(_) => {
                    return Err(self.error(self.pos, "expected ',' or ']' after an array element"))
                }
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, TrainsetJsonError> {
        self.pos += 1; // '{'
        let mut entries = Vec::new();
        let mut seen = HashSet::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Map(entries));
        }
        loop {
            self.skip_ws();
            let at = self.pos;
            match self.peek() {
                Some(b'"') => {}
                None => return Err(self.error(at, "unexpected end of text in an object")),
                Some(_) => return Err(self.error(at, "expected a string key in an object")),
            }
            if depth + 1 > MAX_TERM_DEPTH {
                return Err(self.error(at, format!("nesting deeper than {MAX_TERM_DEPTH}")));
            }
            let key = self.string()?;
            if !seen.insert(key.clone()) {
                return Err(self.error(at, format!("duplicate key {key:?}")));
            }
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.error(self.pos, "expected ':' after an object key"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth + 1)?;
            entries.push((Value::Str(key), value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Map(entries));
                }
                None => return Err(self.error(self.pos, "unexpected end of text in an object")),
                Some(_) => {
                    return Err(self.error(self.pos, "expected ',' or '}' after an object member"))
                }
            }
        }
    }

    /// A string starting at the opening quote, unescaped.
    fn string(&mut self) -> Result<String, TrainsetJsonError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut run = self.pos;
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error(open, "unterminated string"));
            };
            match c {
                b'"' | b'\\' => {
                    // Both are ASCII, so `run..pos` lies on character boundaries.
                    match self.src.text.get(run..self.pos) {
                        Some(s) => out.push_str(s),
                        None => return Err(self.error(run, "not UTF-8 text")),
                    }
                    if c == b'"' {
                        self.pos += 1;
                        return Ok(out);
                    }
                    out.push(self.escape()?);
                    run = self.pos;
                }
                0x00..=0x1f => {
                    return Err(self.error(self.pos, "control character in a string"));
                }
                _ => self.pos += 1,
            }
        }
    }

    /// One escape sequence at `pos` (the backslash); a surrogate pair is one.
    fn escape(&mut self) -> Result<char, TrainsetJsonError> {
        let at = self.pos;
        let Some(c) = self.src.bytes[..self.end].get(at + 1).copied() else {
            return Err(self.error(at, "unterminated string"));
        };
        self.pos += 2;
        let simple = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let high = self.hex4(at)?;
                let code = match high {
                    0xD800..=0xDBFF => {
                        let bytes = &self.src.bytes[..self.end];
                        if bytes.get(self.pos) != Some(&b'\\')
                            || bytes.get(self.pos + 1) != Some(&b'u')
                        {
                            return Err(self.error(at, "escape of a lone surrogate"));
                        }
                        self.pos += 2;
                        let low = self.hex4(at)?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(self.error(at, "escape of a lone surrogate"));
                        }
                        0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(self.error(at, "escape of a lone surrogate")),
                    _ => high,
                };
                return char::from_u32(code)
                    .ok_or_else(|| self.error(at, "escape of a lone surrogate"));
            }
            _ => return Err(self.error(at, "invalid escape in a string")),
        };
        Ok(simple)
    }

    /// Four hex digits at `pos`.
    fn hex4(&mut self, escape: usize) -> Result<u32, TrainsetJsonError> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self
                .peek()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or_else(|| self.error(escape, "\\u must be followed by four hex digits"))?;
            code = code * 16 + digit;
            self.pos += 1;
        }
        Ok(code)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value, TrainsetJsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let int_digits = self.digits();
        if int_digits == 0 {
            return Err(self.error(start, "invalid number: no digit after '-'"));
        }
        if int_digits > 1 && self.src.bytes[int_start] == b'0' {
            return Err(self.error(start, "invalid number: leading zero"));
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error(start, "invalid number: no digit after '.'"));
            }
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error(start, "invalid number: no digit in the exponent"));
            }
            float = true;
        }
        let Some(token) = self.src.text.get(start..self.pos) else {
            return Err(self.error(start, "invalid number"));
        };
        if float {
            return match token.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Value::Float(f)),
                _ => Err(self.error(start, "number out of the range of a double")),
            };
        }
        if int_digits > MAX_INTEGER_DIGITS {
            return Err(self.error(
                start,
                format!("integer of more than {MAX_INTEGER_DIGITS} digits"),
            ));
        }
        if let Ok(n) = token.parse::<i64>() {
            return Ok(Value::Int(n));
        }
        match token.parse::<BigInt>() {
            Ok(n) => Ok(Value::BigInt(n)),
            Err(_) => Err(self.error(start, "invalid number")),
        }
    }
}
