//! hash_trainset_json and hash_trainset_jsonl (FORMAT.md §6.1): the digest of
//! the examples as `hash_trainset` gives it, and the refusals.

mod support;

use std::fs;
use std::path::PathBuf;

use dsxir_checkpoint::{
    hash_trainset, hash_trainset_json, hash_trainset_jsonl, hex, BigInt, TrainsetJsonError, Value,
    MAX_INPUT_BYTES, MAX_INTEGER_DIGITS,
};

fn digest(examples: Vec<Value>) -> [u8; 32] {
    hash_trainset(&examples).expect("hashable")
}

fn json(text: &str) -> [u8; 32] {
    hash_trainset_json(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?} refused: {e}"))
}

fn jsonl(text: &str) -> [u8; 32] {
    hash_trainset_jsonl(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?} refused: {e}"))
}

fn json_error(text: &[u8]) -> TrainsetJsonError {
    match hash_trainset_json(text) {
        Ok(d) => panic!("{:?} accepted: {}", String::from_utf8_lossy(text), hex(&d)),
        Err(e) => e,
    }
}

fn jsonl_error(text: &[u8]) -> TrainsetJsonError {
    match hash_trainset_jsonl(text) {
        Ok(d) => panic!("{:?} accepted: {}", String::from_utf8_lossy(text), hex(&d)),
        Err(e) => e,
    }
}

fn big(s: &str) -> Value {
    Value::BigInt(s.parse::<BigInt>().expect("decimal"))
}

#[test]
fn values_map_to_the_terms_of_the_rule() {
    let text = r#"[null, true, false, 0, -0, 1, -7, 1.0, -0.0, 0.1, 2.5e3, 1E-2,
        "", "x\u00e9\n\"\\\/\b\f\r\t", "\ud83d\ude00", [], [1, [2]], {},
        {"b": 1, "a": [null]}, 9223372036854775807, -9223372036854775808,
        9223372036854775808, -9223372036854775809, 1e-400]"#;
    let expected = vec![
        Value::Null,
        Value::Bool(true),
        Value::Bool(false),
        Value::Int(0),
        Value::Int(0),
        Value::Int(1),
        Value::Int(-7),
        Value::Float(1.0),
        Value::Float(-0.0),
        Value::Float(0.1),
        Value::Float(2500.0),
        Value::Float(0.01),
        Value::Str(String::new()),
        Value::Str("x\u{e9}\n\"\\/\u{8}\u{c}\r\t".into()),
        Value::Str("\u{1f600}".into()),
        Value::List(vec![]),
        Value::list([Value::Int(1), Value::list([2])]),
        Value::Map(vec![]),
        Value::map([("a", Value::list([Value::Null])), ("b", Value::Int(1))]),
        Value::Int(i64::MAX),
        Value::Int(i64::MIN),
        big("9223372036854775808"),
        big("-9223372036854775809"),
        Value::Float(0.0),
    ];
    assert_eq!(hex(&json(text)), hex(&digest(expected)));
}

#[test]
fn kinds_and_order_change_the_digest() {
    let one = [json("[1]"), json("[1.0]"), json("[true]"), json("[\"1\"]")];
    for (i, a) in one.iter().enumerate() {
        for b in &one[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_ne!(json("[0.0]"), json("[-0.0]"));
    assert_eq!(json("[0]"), json("[-0]"));
    assert_ne!(json("[1, 2]"), json("[2, 1]"));
    assert_eq!(json(r#"[{"a": 1, "b": 2}]"#), json(r#"[{"b": 2, "a": 1}]"#));
    assert_eq!(json(r#"[{"é": 1}]"#), json(r#"[{"\u00e9": 1}]"#));
}

#[test]
fn floats_are_the_nearest_double() {
    // Halfway between 1 and the next double: rounds to even (1.0).
    assert_eq!(
        json("[1.00000000000000011102230246251565404236316680908203125]"),
        json("[1.0]")
    );
    assert_eq!(
        json("[5e-324]"),
        digest(vec![Value::Float(f64::from_bits(1))])
    );
    assert_eq!(
        json("[1.7976931348623157e308]"),
        digest(vec![Value::Float(f64::MAX)])
    );
    assert_eq!(json("[-1e-400]"), digest(vec![Value::Float(-0.0)]));
    for text in [
        "[1e309]",
        "[-1e309]",
        "[1.8e308]",
        "[1e99999999999999999999]",
    ] {
        let e = json_error(text.as_bytes());
        assert_eq!(e.offset, 1, "{text}");
        assert!(e.detail.contains("double"), "{e}");
    }
}

#[test]
fn integers_are_exact() {
    let digits = "1".repeat(MAX_INTEGER_DIGITS);
    assert_eq!(json(&format!("[{digits}]")), digest(vec![big(&digits)]));
    assert_eq!(
        json(&format!("[-{digits}]")),
        digest(vec![big(&format!("-{digits}"))])
    );
    let e = json_error(format!("[{digits}1]").as_bytes());
    assert_eq!(e.offset, 1);
}

#[test]
fn json_lines_are_split_at_newlines() {
    let expected = json(r#"[{"a": 1}, [2], "x", null]"#);
    assert_eq!(jsonl("{\"a\": 1}\n[2]\n\"x\"\nnull"), expected);
    assert_eq!(
        jsonl("{\"a\": 1}\r\n\r\n  \t\n[2]\r\n \"x\" \n\nnull\n\n"),
        expected
    );
    assert_eq!(jsonl(""), json("[]"));
    assert_eq!(jsonl("\n \n\t\r\n"), json("[]"));
    assert_eq!(json(" \t\r\n[ ] \n"), digest(vec![]));
    // A lone "\r" is left once the trailing one goes: not blank, not a value.
    assert_eq!(jsonl_error(b"1\n\r\r\n").line, Some(2));
}

#[test]
fn nesting_is_bounded_by_the_term_depth() {
    // An example is at depth 1: 23 enclosing arrays put the scalar at 24.
    let deep = |n: usize, inner: &str| format!("[{}{inner}{}]", "[".repeat(n), "]".repeat(n));
    json(&deep(23, "1"));
    json(&deep(24, ""));
    assert_eq!(json_error(deep(24, "1").as_bytes()).offset, 25);
    assert_eq!(json_error(deep(25, "").as_bytes()).offset, 25);
    let objects = |n: usize| format!("[{}1{}]", "{\"k\":".repeat(n), "}".repeat(n));
    json(&objects(23));
    let e = json_error(objects(24).as_bytes());
    assert!(e.detail.contains("deeper"), "{e}");
    // Far deeper input is refused at the limit, not by exhausting the stack.
    let e = json_error(deep(1_000_000, "").as_bytes());
    assert_eq!(e.offset, 25);
    let e = jsonl_error(format!("\n{}", "[".repeat(100_000)).as_bytes());
    assert_eq!((e.line, e.offset), (Some(2), 25));
}

#[test]
fn refusals_name_the_byte_offset() {
    let cases: &[(&[u8], usize)] = &[
        (b"", 0),
        (b"  ", 2),
        (b"{}", 0),
        (b"1", 0),
        (b"\"x\"", 0),
        (b"[1] x", 4),
        (b"[1][2]", 3),
        (b"[1,]", 3),
        (b"[,1]", 1),
        (b"[1 2]", 3),
        (b"[01]", 1),
        (b"[-01]", 1),
        (b"[00]", 1),
        (b"[1.]", 1),
        (b"[.5]", 1),
        (b"[+1]", 1),
        (b"[-]", 1),
        (b"[1e]", 1),
        (b"[1e+]", 1),
        (b"[NaN]", 1),
        (b"[Infinity]", 1),
        (b"[-Infinity]", 1),
        (b"[nul]", 1),
        (b"[True]", 1),
        (b"[1", 2),
        (b"[\"abc", 1),
        (b"[\"a\x01\"]", 3),
        (b"[\"\\x\"]", 2),
        (b"[\"\\u12\"]", 2),
        (b"[\"\\ud800\"]", 2),
        (b"[\"\\udc00\"]", 2),
        (b"[\"\\ud800\\u0041\"]", 2),
        (b"[\"\\ud800\\ud800\"]", 2),
        (b"[{\"a\":1,\"a\":2}]", 8),
        (b"[{\"a\":1,\"\\u0061\":2}]", 8),
        (b"[{1:2}]", 2),
        (b"[{\"a\" 1}]", 6),
        (b"[{\"a\":1,}]", 8),
        (b"[\x0c1]", 1),
        (b"[1]\x00", 3),
        (b"\xef\xbb\xbf[]", 0),
        (b"[\"\xff\"]", 2),
        (b"[\"\xed\xa0\x80\"]", 2),
        (b"[\"\xc0\x80\"]", 2),
        (b"[1]\xe9", 3),
    ];
    for (text, offset) in cases {
        let e = json_error(text);
        assert_eq!(
            e.offset,
            *offset,
            "{:?}: {e}",
            String::from_utf8_lossy(text)
        );
        assert_eq!(e.line, None);
        assert!(
            e.to_string().starts_with(&format!("byte {offset}: ")),
            "{e}"
        );
    }
}

#[test]
fn json_lines_refusals_name_the_line() {
    let cases: &[(&[u8], usize, usize)] = &[
        (b"1\n2 3\n", 2, 4),
        (b"1\n\n{\"a\":1,\"a\":2}", 3, 10),
        (b"[1]\r\n[2]\r\n[", 3, 11),
        (b"1\n2\n\xef\xbb\xbf3", 3, 4),
        (b"\xef\xbb\xbf1", 1, 0),
        (b"1\n\"\xff\"\n", 2, 3),
        (b"1\n1 \r 2\n", 2, 6),
        (b"\"a\nb\"", 1, 0),
    ];
    for (text, line, offset) in cases {
        let e = jsonl_error(text);
        assert_eq!(
            (e.line, e.offset),
            (Some(*line), *offset),
            "{:?}: {e}",
            String::from_utf8_lossy(text)
        );
        assert!(
            e.to_string()
                .starts_with(&format!("line {line}, byte {offset}: ")),
            "{e}"
        );
    }
}

#[test]
fn text_over_the_size_limit_is_refused_before_parsing() {
    let mut text = vec![b' '; MAX_INPUT_BYTES + 1];
    text[0] = b'[';
    assert!(json_error(&text).detail.contains("limit"));
    assert!(jsonl_error(&text).detail.contains("limit"));
}

#[test]
fn damaged_text_never_panics() {
    const PIECES: &[u8] = b"[]{}\",:\\u0e-+.\n";
    let base = br#"[{"q": "caf\u00e9 \ud83d\ude00", "n": [1, -2.5e-3, 18446744073709551616, null, true]}, "x", {"a": {"b": []}}]"#;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let mut text = base.to_vec();
        for _ in 0..1 + next() % 3 {
            let at = (next() % text.len() as u64) as usize;
            match next() % 3 {
                0 => text[at] = next() as u8,
                1 => {
                    text.remove(at);
                }
                _ => text.insert(at, PIECES[(next() % PIECES.len() as u64) as usize]),
            }
        }
        // Either answer is fine; reaching the end of the loop is the test.
        let _ = hash_trainset_json(&text);
        let _ = hash_trainset_jsonl(&text);
    }
}

fn cases_file() -> PathBuf {
    let dir = match std::env::var_os("DSXIR_VECTORS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors"),
    };
    dir.join("trainset-json/cases.json")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn shared_cases_hash_as_in_every_language() {
    let path = cases_file();
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let cases: serde_json::Value = serde_json::from_str(&text).expect("cases.json is JSON");
    let cases = cases["cases"].as_array().expect("a list of cases");
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let input = match (case.get("text"), case.get("text_hex")) {
            (Some(t), None) => t.as_str().expect("text").as_bytes().to_vec(),
            (None, Some(h)) => unhex(h.as_str().expect("text_hex")),
            _ => panic!("{name}: exactly one of text and text_hex"),
        };
        let got = match case["format"].as_str() {
            Some("json") => hash_trainset_json(&input),
            Some("jsonl") => hash_trainset_jsonl(&input),
            other => panic!("{name}: format {other:?}"),
        };
        if case.get("error").and_then(serde_json::Value::as_bool) == Some(true) {
            let e = got.expect_err(name);
            if let Some(line) = case.get("line") {
                let line = line.as_u64().expect("line") as usize;
                assert_eq!(e.line, Some(line), "{name}: {e}");
            }
        } else {
            let got = got.unwrap_or_else(|e| panic!("{name}: refused: {e}"));
            assert_eq!(
                hex(&got),
                case["digest"].as_str().expect("digest"),
                "{name}"
            );
        }
    }
}

#[test]
fn testee_hashes_json_text_from_stdin() {
    let out = support::run_testee(&["hash-trainset-json"], b"[{\"a\": 1}, 2]");
    assert_eq!(out.status.code(), Some(0));
    let expected = format!("{}\n", hex(&json(r#"[{"a": 1}, 2]"#)));
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    let out = support::run_testee(&["hash-trainset-jsonl"], b"{\"a\": 1}\r\n2\n");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);

    let out = support::run_testee(&["hash-trainset-json"], b"[1,]");
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    let line = String::from_utf8_lossy(&out.stderr);
    assert!(line.starts_with("trainset_json: byte 3: "), "{line}");
    assert_eq!(line.lines().count(), 1);
    let out = support::run_testee(&["hash-trainset-jsonl"], b"1\n\"\\n\n");
    assert_eq!(out.status.code(), Some(3));
    let line = String::from_utf8_lossy(&out.stderr);
    assert!(
        line.starts_with("trainset_json: line 2, byte 2: "),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1);
}

#[test]
fn testee_serves_json_text() {
    use support::conformance::response::Result as Answer;
    use support::conformance::Command as Cmd;
    let mut requests = support::request(Cmd::HashTrainsetJson, b"[{\"a\": 1}, 2]");
    requests.extend(support::request(Cmd::HashTrainsetJsonl, b"{\"a\": 1}\n2"));
    requests.extend(support::request(Cmd::HashTrainsetJsonl, b"1\n2 3"));
    let out = support::run_testee(&["serve"], &requests);
    assert_eq!(out.status.code(), Some(0));
    let answers = support::responses(&out.stdout);
    let digest = format!("{}\n", dsxir_checkpoint::hex(&json(r#"[{"a": 1}, 2]"#))).into_bytes();
    assert_eq!(answers[0], Answer::Output(digest.clone()));
    assert_eq!(answers[1], Answer::Output(digest));
    let Answer::Refusal(refusal) = &answers[2] else {
        panic!("{:?}", answers[2])
    };
    assert_eq!(
        (
            refusal.exit_code,
            refusal.kind.as_str(),
            refusal.path.as_str()
        ),
        (3, "trainset_json", "line 2, byte 4")
    );
    assert_eq!(
        refusal.message,
        "trainset_json: line 2, byte 4: content after the JSON value"
    );
    assert_eq!(answers.len(), 3);
}
