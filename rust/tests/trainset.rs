//! hash_trainset (FORMAT.md §6): the digests of tests/vectors/trainset and
//! of Python's `hash_trainset`.

use std::fs;
use std::path::PathBuf;

use dsxir_checkpoint::v1::term::Kind;
use dsxir_checkpoint::{
    decode_trainset, hash_trainset, hash_trainset_terms, hex, BigInt, Term, TermList, TermMap,
    TermMapEntry, Value,
};
use prost::Message;

fn vectors_dir() -> PathBuf {
    match std::env::var_os("DSXIR_VECTORS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors"),
    }
}

fn trainset_vectors() -> Vec<(String, Vec<u8>, String)> {
    let path = vectors_dir().join("manifest.json");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest.json is JSON");
    let vectors = manifest["trainset"].as_array().expect("trainset list");
    assert!(!vectors.is_empty(), "manifest lists no trainset vectors");
    vectors
        .iter()
        .map(|v| {
            let input = vectors_dir().join(v["input"].as_str().expect("input"));
            (
                v["name"].as_str().expect("name").to_string(),
                fs::read(&input).unwrap_or_else(|e| panic!("cannot read {}: {e}", input.display())),
                v["sha256"].as_str().expect("sha256").to_string(),
            )
        })
        .collect()
}

#[test]
fn trainset_vectors_hash_to_their_digests() {
    for (name, input, expected) in trainset_vectors() {
        let examples = decode_trainset(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
        let digest = hash_trainset(&examples).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(hex(&digest), expected, "{name}");

        // The same from the Terms themselves, sorted or not.
        let Some(Kind::ListValue(list)) = Term::decode(input.as_slice()).unwrap().kind else {
            panic!("{name}: not a list")
        };
        let digest = hash_trainset_terms(&list.items).unwrap();
        assert_eq!(hex(&digest), expected, "{name}");
    }
}

#[test]
fn digests_equal_pythons() {
    // dsxir.optimizer_session.checkpoint.hash_trainset(
    //     [2**200, -2**63-1, -0.0, {"q": "a", "a": [1, 2.5, None]}, (True, Atom("k"), b"z")])
    let two_200: BigInt = "1606938044258990275541962092341162602522202993782792835301376"
        .parse()
        .unwrap();
    let examples = vec![
        Value::from(two_200),
        Value::from(-(1i128 << 63) - 1),
        Value::Float(-0.0),
        Value::map([
            ("q", Value::from("a")),
            (
                "a",
                Value::list([Value::Int(1), Value::Float(2.5), Value::Null]),
            ),
        ]),
        Value::tuple([
            Value::Bool(true),
            Value::atom("k"),
            Value::Bytes(b"z".to_vec()),
        ]),
    ];
    assert_eq!(
        hex(&hash_trainset(&examples).unwrap()),
        "8f6cdc0eb3356defc4836ab20eb6902bf5ca4c059bab4c3b709e85428253c850"
    );
    // The empty trainset (vector "empty").
    assert_eq!(
        hex(&hash_trainset(&[]).unwrap()),
        "f58936aa0d3a7b6b9aef34fa6adea782377eb2c66bc27ce83bc28a2b979422eb"
    );
}

#[test]
fn digest_depends_on_kind_value_and_order_not_map_order() {
    let h = |examples: &[Value]| hash_trainset(examples).unwrap();
    let kinds = [
        Value::Int(1),
        Value::Float(1.0),
        Value::Bool(true),
        Value::from("1"),
        Value::atom("1"),
        Value::Bytes(b"1".to_vec()),
    ];
    let digests: Vec<_> = kinds.iter().map(|v| h(std::slice::from_ref(v))).collect();
    for (i, a) in digests.iter().enumerate() {
        for b in &digests[i + 1..] {
            assert_ne!(a, b);
        }
    }
    let qa = Value::map([("question", "1+1"), ("answer", "2")]);
    let aq = Value::map([("answer", "2"), ("question", "1+1")]);
    let other = Value::map([("question", "2+2"), ("answer", "4")]);
    assert_eq!(h(&[qa.clone(), other.clone()]), h(&[aq, other.clone()]));
    assert_ne!(
        h(&[qa.clone(), other.clone()]),
        h(&[other.clone(), qa.clone()])
    );
    assert_ne!(h(std::slice::from_ref(&qa)), h(&[qa.clone(), qa.clone()]));
    assert_ne!(h(&[Value::Float(0.0)]), h(&[Value::Float(-0.0)]));
}

#[test]
fn refusals_name_the_example() {
    let examples = vec![
        Value::Null,
        Value::Null,
        Value::Null,
        Value::map([("meta", Value::list([f64::NAN]))]),
    ];
    let err = hash_trainset(&examples).unwrap_err();
    assert_eq!(
        err.to_string(),
        "trainset[3][\"meta\"][0]: NaN is not allowed (rule float.nan)"
    );

    let bad = Term {
        kind: Some(Kind::MapValue(TermMap {
            entries: vec![TermMapEntry {
                key: Some(Term {
                    kind: Some(Kind::StringValue("k".into())),
                }),
                value: Some(Term { kind: None }),
            }],
        })),
    };
    let err = hash_trainset_terms(std::slice::from_ref(&bad)).unwrap_err();
    assert_eq!(err.path, "trainset[0].map_value.entries[0].value");

    // decode_trainset: <input> for bytes that are no Term list, else the item.
    let list = Term {
        kind: Some(Kind::ListValue(TermList {
            items: vec![Term::default(), bad],
        })),
    };
    let err = decode_trainset(&list.encode_to_vec()).unwrap_err();
    assert_eq!(err.path, "items[0]");
    for input in [&b"\xff\xff"[..], b"\x32\x01a", b"\x4a\x05\x0a"] {
        assert_eq!(
            decode_trainset(input).unwrap_err().path,
            "<input>",
            "{input:?}"
        );
    }
    assert_eq!(decode_trainset(b"\x4a\x00").unwrap(), Vec::<Value>::new());
}
