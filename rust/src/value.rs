//! Native values ↔ Terms (FORMAT.md §3): [`Value`], [`to_term`], [`from_term`].
//!
//! | [`Value`] | Term kind |
//! |---|---|
//! | `Null` | `null_value` |
//! | `Bool` | `bool_value` |
//! | `Int` (i64), `BigInt` inside int64 | `int_value` |
//! | `BigInt` outside int64 | `bigint_value` (minimal two's complement) |
//! | `Float` | `float_value` (NaN refused, -0.0 kept) |
//! | `Str` | `string_value` |
//! | `Bytes` | `bytes_value` |
//! | `Atom` | `atom_value` |
//! | `List`, `Tuple` | `list_value`, `tuple_value` |
//! | `Map` | `map_value`, entries sorted by the canonical bytes of their key |
//!
//! `Bool(true)`, `Int(1)`, `Float(1.0)` and `Str("1")` are four different
//! Terms. [`to_term`] refuses NaN, duplicate map keys (equal canonical bytes)
//! and nesting deeper than [`MAX_TERM_DEPTH`], naming the offending element
//! (`value[2]["k"]`); [`from_term`] applies the Term checks of FORMAT.md §7
//! but accepts map entries in any order, and gives maps back in canonical key
//! order.

use std::fmt;
use std::str::FromStr;

use prost::Message;

use crate::v1::{term::Kind, Term, TermList, TermMap, TermMapEntry, TermNull};
use crate::validate::{bigint_problem, Bad};
use crate::{hex, rules, InvalidCheckpoint, MAX_TERM_DEPTH};

/// An integer of any size, held as its minimal two's-complement big-endian
/// bytes (FORMAT.md §3.3): at least one byte, no redundant sign byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BigInt(Vec<u8>);

impl BigInt {
    /// The integer whose two's-complement big-endian representation is
    /// `bytes` (any length; redundant sign bytes are dropped, no bytes is 0).
    pub fn from_twos_complement(bytes: &[u8]) -> BigInt {
        let mut start = 0;
        while start + 1 < bytes.len() {
            let (first, next) = (bytes[start], bytes[start + 1]);
            if (first == 0x00 && next < 0x80) || (first == 0xFF && next >= 0x80) {
                start += 1;
            } else {
                break;
            }
        }
        if bytes.is_empty() {
            BigInt(vec![0])
        } else {
            BigInt(bytes[start..].to_vec())
        }
    }

    /// The minimal two's-complement big-endian bytes: what `bigint_value`
    /// holds when the integer is outside int64.
    pub fn as_twos_complement(&self) -> &[u8] {
        &self.0
    }

    /// Whether the integer is below zero.
    pub fn is_negative(&self) -> bool {
        self.0[0] >= 0x80
    }

    /// The integer as an i64, if it fits.
    pub fn to_i64(&self) -> Option<i64> {
        self.to_i128().and_then(|n| i64::try_from(n).ok())
    }

    /// The integer as an i128, if it fits.
    pub fn to_i128(&self) -> Option<i128> {
        if self.0.len() > 16 {
            return None;
        }
        let fill = if self.is_negative() { 0xFF } else { 0x00 };
        let mut buf = [fill; 16];
        buf[16 - self.0.len()..].copy_from_slice(&self.0);
        Some(i128::from_be_bytes(buf))
    }

    /// The absolute value as unsigned big-endian bytes.
    fn magnitude(&self) -> Vec<u8> {
        if !self.is_negative() {
            return self.0.clone();
        }
        // -n = !n + 1, on one more byte so that the most negative value fits.
        let mut out: Vec<u8> = std::iter::once(0xFF)
            .chain(self.0.iter().copied())
            .map(|b| !b)
            .collect();
        for b in out.iter_mut().rev() {
            let (sum, carry) = b.overflowing_add(1);
            *b = sum;
            if !carry {
                break;
            }
        }
        out
    }

    /// The integer of sign `negative` and unsigned big-endian `magnitude`.
    fn from_magnitude(negative: bool, magnitude: &[u8]) -> BigInt {
        let mut out = Vec::with_capacity(magnitude.len() + 1);
        out.push(0);
        out.extend_from_slice(magnitude);
        if negative {
            for b in out.iter_mut() {
                *b = !*b;
            }
            for b in out.iter_mut().rev() {
                let (sum, carry) = b.overflowing_add(1);
                *b = sum;
                if !carry {
                    break;
                }
            }
        }
        BigInt::from_twos_complement(&out)
    }
}

impl From<i64> for BigInt {
    fn from(n: i64) -> Self {
        BigInt::from_twos_complement(&n.to_be_bytes())
    }
}

impl From<u64> for BigInt {
    fn from(n: u64) -> Self {
        BigInt::from_magnitude(false, &n.to_be_bytes())
    }
}

impl From<i128> for BigInt {
    fn from(n: i128) -> Self {
        BigInt::from_twos_complement(&n.to_be_bytes())
    }
}

impl From<u128> for BigInt {
    fn from(n: u128) -> Self {
        BigInt::from_magnitude(false, &n.to_be_bytes())
    }
}

impl fmt::Display for BigInt {
    /// Decimal, with a leading `-` when negative.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const CHUNK: u64 = 1_000_000_000;
        let mut magnitude = self.magnitude();
        // Base-10^9 digits, least significant first.
        let mut chunks = Vec::new();
        while magnitude.iter().any(|&b| b != 0) {
            let mut rem: u64 = 0;
            for b in magnitude.iter_mut() {
                let cur = (rem << 8) | u64::from(*b);
                *b = (cur / CHUNK) as u8;
                rem = cur % CHUNK;
            }
            chunks.push(rem);
        }
        let mut text = String::new();
        if self.is_negative() {
            text.push('-');
        }
        match chunks.split_last() {
            None => text.push('0'),
            Some((top, rest)) => {
                text.push_str(&top.to_string());
                for chunk in rest.iter().rev() {
                    text.push_str(&format!("{chunk:09}"));
                }
            }
        }
        f.pad(&text)
    }
}

/// The text is not a decimal integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseBigIntError;

impl fmt::Display for ParseBigIntError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a decimal integer")
    }
}

impl std::error::Error for ParseBigIntError {}

impl FromStr for BigInt {
    type Err = ParseBigIntError;

    /// A decimal integer: an optional `-` or `+`, then ASCII digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (negative, digits) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseBigIntError);
        }
        // Unsigned big-endian magnitude, times 10 plus each digit.
        let mut magnitude: Vec<u8> = vec![0];
        for d in digits.bytes() {
            let mut carry = u32::from(d - b'0');
            for b in magnitude.iter_mut().rev() {
                let cur = u32::from(*b) * 10 + carry;
                *b = cur as u8;
                carry = cur >> 8;
            }
            if carry > 0 {
                magnitude.insert(0, carry as u8);
            }
        }
        Ok(BigInt::from_magnitude(negative, &magnitude))
    }
}

/// A value with a Term form (see the module documentation).
///
/// `PartialEq` compares floats as numbers (`-0.0 == 0.0`, NaN never equal)
/// and maps in their order; compare canonical bytes ([`value_bytes`]) to
/// compare as the format does.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// An integer in int64.
    Int(i64),
    /// An integer of any size; one inside int64 is written as `int_value`,
    /// and [`from_term`] gives such an integer back as `Int`.
    BigInt(BigInt),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    /// A symbol (an Elixir atom): a name, distinct from a string.
    Atom(String),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// A map with keys of any kind, as (key, value) pairs in any order.
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// A map from (key, value) pairs.
    pub fn map<K: Into<Value>, V: Into<Value>>(pairs: impl IntoIterator<Item = (K, V)>) -> Value {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// An atom.
    pub fn atom(name: impl Into<String>) -> Value {
        Value::Atom(name.into())
    }

    /// A list of values.
    pub fn list<T: Into<Value>>(items: impl IntoIterator<Item = T>) -> Value {
        Value::List(items.into_iter().map(Into::into).collect())
    }

    /// A tuple of values.
    pub fn tuple<T: Into<Value>>(items: impl IntoIterator<Item = T>) -> Value {
        Value::Tuple(items.into_iter().map(Into::into).collect())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

macro_rules! small_ints {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Self {
                Value::Int(i64::from(n))
            }
        }
    )*};
}
small_ints!(i8, i16, i32, i64, u8, u16, u32);

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        BigInt::from(n).into()
    }
}

impl From<i128> for Value {
    fn from(n: i128) -> Self {
        BigInt::from(n).into()
    }
}

impl From<u128> for Value {
    fn from(n: u128) -> Self {
        BigInt::from(n).into()
    }
}

impl From<BigInt> for Value {
    /// `Int` when the integer fits in int64, else `BigInt`.
    fn from(n: BigInt) -> Self {
        match n.to_i64() {
            Some(small) => Value::Int(small),
            None => Value::BigInt(n),
        }
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<f32> for Value {
    fn from(f: f32) -> Self {
        Value::Float(f64::from(f))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Self {
        Value::Bytes(b.to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(b)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Value::List(items)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` is `Null`.
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

// --- values to Terms -----------------------------------------------------------

/// The canonical Term of a value: integers in int64 as `int_value`, others as
/// minimal `bigint_value`, maps sorted by the canonical bytes of their keys.
/// Refuses NaN, duplicate map keys and nesting deeper than
/// [`MAX_TERM_DEPTH`] with an [`InvalidCheckpoint`] whose path starts at
/// `value` (`value[2]["k"]`; a duplicate key: the map's path).
pub fn to_term(value: &Value) -> Result<Term, InvalidCheckpoint> {
    to_term_at(value, "value")
}

/// [`to_term`], naming refusals from `root` (e.g. `trainset[3]`).
pub fn to_term_at(value: &Value, root: &str) -> Result<Term, InvalidCheckpoint> {
    encode(value, 1).map_err(|bad| bad.into_invalid(root))
}

/// The canonical `TermMap` of (key, value) pairs, for the `stats`, `error`
/// and `best_program_artifact` fields. The map counts as a Term of depth 1,
/// so its keys and values are at depth 2; refusals are named from `root`
/// (`stats["k"]`).
pub fn to_term_map(entries: &[(Value, Value)], root: &str) -> Result<TermMap, InvalidCheckpoint> {
    encode_map(entries, 2).map_err(|bad| bad.into_invalid(root))
}

/// The canonical bytes of a value as a `Term` message (FORMAT.md §3.4):
/// `term_bytes(&to_term(value)?)`.
pub fn value_bytes(value: &Value) -> Result<Vec<u8>, InvalidCheckpoint> {
    to_term(value).map(|t| t.encode_to_vec())
}

fn term(kind: Kind) -> Term {
    Term { kind: Some(kind) }
}

fn encode(value: &Value, depth: usize) -> Result<Term, Bad> {
    if depth > MAX_TERM_DEPTH {
        return Err(Bad::new(
            rules::TERM_DEPTH,
            format!("nesting deeper than {MAX_TERM_DEPTH}"),
        ));
    }
    Ok(term(match value {
        Value::Null => Kind::NullValue(TermNull {}),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Int(n) => Kind::IntValue(*n),
        Value::BigInt(n) => match n.to_i64() {
            Some(small) => Kind::IntValue(small),
            None => Kind::BigintValue(n.as_twos_complement().to_vec()),
        },
        Value::Float(f) if f.is_nan() => {
            return Err(Bad::new(rules::FLOAT_NAN, "NaN is not allowed"))
        }
        Value::Float(f) => Kind::FloatValue(*f),
        Value::Str(s) => Kind::StringValue(s.clone()),
        Value::Bytes(b) => Kind::BytesValue(b.clone()),
        Value::Atom(name) => Kind::AtomValue(name.clone()),
        Value::List(items) => Kind::ListValue(encode_items(items, depth + 1)?),
        Value::Tuple(items) => Kind::TupleValue(encode_items(items, depth + 1)?),
        Value::Map(entries) => Kind::MapValue(encode_map(entries, depth + 1)?),
    }))
}

fn encode_items(items: &[Value], depth: usize) -> Result<TermList, Bad> {
    let items = items
        .iter()
        .enumerate()
        .map(|(i, item)| encode(item, depth).map_err(|b| b.at(format!("[{i}]"))))
        .collect::<Result<_, _>>()?;
    Ok(TermList { items })
}

fn encode_map(entries: &[(Value, Value)], depth: usize) -> Result<TermMap, Bad> {
    let mut keyed = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let at_key = |b: Bad| b.at(format!("[{}]", show_key(key)));
        let key = encode(key, depth).map_err(at_key)?;
        let value = encode(value, depth).map_err(at_key)?;
        keyed.push((key.encode_to_vec(), key, value));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(pair) = keyed.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(Bad::new(
            rules::TERM_MAP_ORDER,
            format!("duplicate map key (canonical bytes {})", hex(&pair[0].0)),
        ));
    }
    let entries = keyed
        .into_iter()
        .map(|(_, key, value)| TermMapEntry {
            key: Some(key),
            value: Some(value),
        })
        .collect();
    Ok(TermMap { entries })
}

/// How a map key is named in a path: strings quoted, atoms as `:name`.
fn show_key(key: &Value) -> String {
    match key {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(n) => n.to_string(),
        Value::BigInt(n) => n.to_string(),
        Value::Float(f) => format!("{f:?}"),
        Value::Str(s) => format!("{s:?}"),
        Value::Bytes(b) => format!("b\"{}\"", b.escape_ascii()),
        Value::Atom(name) => format!(":{name}"),
        Value::List(_) => "<list>".into(),
        Value::Tuple(_) => "<tuple>".into(),
        Value::Map(_) => "<map>".into(),
    }
}

// --- Terms to values -------------------------------------------------------------

/// The value a Term stands for: `int_value` is `Int`, `bigint_value`
/// `BigInt`, a map a `Map` in canonical key order.
///
/// Applies the Term checks of FORMAT.md §7 (depth, kind set, no NaN, minimal
/// bigints outside int64, map entries with key and value), except that map
/// entries may come in any order; duplicate keys are refused. Refusals are
/// [`InvalidCheckpoint`]s with a path from `term`
/// (`term.list_value.items[2].map_value.entries[1].key`).
pub fn from_term(t: &Term) -> Result<Value, InvalidCheckpoint> {
    from_term_at(t, "term")
}

/// [`from_term`], naming refusals from `root`.
pub fn from_term_at(t: &Term, root: &str) -> Result<Value, InvalidCheckpoint> {
    canonical(t, 1)
        .map(|c| value_of(&c))
        .map_err(|bad| bad.into_invalid(root))
}

/// The value of a `TermMap` (a `stats`, `error` or `best_program_artifact`
/// field): a `Value::Map`. The map counts as a Term of depth 1; refusals are
/// named from `term` (`term.entries[0].key`).
pub fn from_term_map(map: &TermMap) -> Result<Value, InvalidCheckpoint> {
    from_term_map_at(map, "term")
}

/// [`from_term_map`], naming refusals from `root` (e.g. `stats`).
pub fn from_term_map_at(map: &TermMap, root: &str) -> Result<Value, InvalidCheckpoint> {
    canonical_map(map, 2)
        .map(|c| map_value_of(&c))
        .map_err(|bad| bad.into_invalid(root))
}

/// A copy of a Term in canonical form (every map sorted by key bytes),
/// refusing what [`from_term`] refuses, with paths from `root`.
pub fn canonical_term(t: &Term, root: &str) -> Result<Term, InvalidCheckpoint> {
    canonical(t, 1).map_err(|bad| bad.into_invalid(root))
}

fn canonical(t: &Term, depth: usize) -> Result<Term, Bad> {
    if depth > MAX_TERM_DEPTH {
        return Err(Bad::new(
            rules::TERM_DEPTH,
            format!("nesting deeper than {MAX_TERM_DEPTH}"),
        ));
    }
    let Some(kind) = &t.kind else {
        return Err(Bad::new(rules::TERM_KIND, "term has no kind"));
    };
    Ok(term(match kind {
        Kind::FloatValue(f) if f.is_nan() => {
            return Err(Bad::new(rules::FLOAT_NAN, "NaN is not allowed").at(".float_value"))
        }
        Kind::BigintValue(raw) => match bigint_problem(raw) {
            Some(detail) => return Err(Bad::new(rules::TERM_BIGINT, detail).at(".bigint_value")),
            None => Kind::BigintValue(raw.clone()),
        },
        Kind::ListValue(list) => Kind::ListValue(canonical_items(list, depth, ".list_value")?),
        Kind::TupleValue(list) => Kind::TupleValue(canonical_items(list, depth, ".tuple_value")?),
        Kind::MapValue(map) => {
            Kind::MapValue(canonical_map(map, depth + 1).map_err(|b| b.at(".map_value"))?)
        }
        other => other.clone(),
    }))
}

fn canonical_items(list: &TermList, depth: usize, kind: &str) -> Result<TermList, Bad> {
    let items = list
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| canonical(item, depth + 1).map_err(|b| b.at(format!("{kind}.items[{i}]"))))
        .collect::<Result<_, _>>()?;
    Ok(TermList { items })
}

/// Checks the entries of a map whose keys and values are at `depth`, and
/// returns them sorted by key bytes; a duplicate is reported at the later of
/// the first two equal keys (in input order).
fn canonical_map(map: &TermMap, depth: usize) -> Result<TermMap, Bad> {
    let mut keyed = Vec::with_capacity(map.entries.len());
    let mut seen = std::collections::HashSet::with_capacity(map.entries.len());
    for (i, entry) in map.entries.iter().enumerate() {
        let at_entry = |b: Bad| b.at(format!(".entries[{i}]"));
        let Some(key) = &entry.key else {
            return Err(at_entry(Bad::new(
                rules::TERM_MAP_KEY_REQUIRED,
                "map entry has no key",
            )));
        };
        let key = canonical(key, depth).map_err(|b| at_entry(b.at(".key")))?;
        let Some(value) = &entry.value else {
            return Err(at_entry(Bad::new(
                rules::TERM_MAP_VALUE_REQUIRED,
                "map entry has no value",
            )));
        };
        let value = canonical(value, depth).map_err(|b| at_entry(b.at(".value")))?;
        // Entry by entry (FORMAT.md §7): a key equal to an earlier one is
        // refused before any later entry is looked at.
        let bytes = key.encode_to_vec();
        if !seen.insert(bytes.clone()) {
            return Err(Bad::new(rules::TERM_MAP_ORDER, "duplicate map key")
                .at(".key")
                .at(format!(".entries[{i}]")));
        }
        keyed.push((bytes, key, value));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let entries = keyed
        .into_iter()
        .map(|(_, key, value)| TermMapEntry {
            key: Some(key),
            value: Some(value),
        })
        .collect();
    Ok(TermMap { entries })
}

/// The value of a checked, canonical Term.
fn value_of(t: &Term) -> Value {
    match t.kind.as_ref().expect("checked term has a kind") {
        Kind::NullValue(_) => Value::Null,
        Kind::BoolValue(b) => Value::Bool(*b),
        Kind::IntValue(n) => Value::Int(*n),
        Kind::BigintValue(raw) => Value::BigInt(BigInt::from_twos_complement(raw)),
        Kind::FloatValue(f) => Value::Float(*f),
        Kind::StringValue(s) => Value::Str(s.clone()),
        Kind::BytesValue(b) => Value::Bytes(b.clone()),
        Kind::AtomValue(name) => Value::Atom(name.clone()),
        Kind::ListValue(list) => Value::List(list.items.iter().map(value_of).collect()),
        Kind::TupleValue(list) => Value::Tuple(list.items.iter().map(value_of).collect()),
        Kind::MapValue(map) => map_value_of(map),
    }
}

fn map_value_of(map: &TermMap) -> Value {
    Value::Map(
        map.entries
            .iter()
            .map(|e| {
                let key = e.key.as_ref().expect("checked entry has a key");
                let value = e.value.as_ref().expect("checked entry has a value");
                (value_of(key), value_of(value))
            })
            .collect(),
    )
}
