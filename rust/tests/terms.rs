//! Native values ↔ Terms (FORMAT.md §3): canonical bytes identical to
//! Python's, big integers, floats, map ordering, duplicates, depth, paths,
//! and round trips of every Term of the golden vectors.

use std::fs;
use std::path::PathBuf;

use dsxir_checkpoint::v1::term::Kind;
use dsxir_checkpoint::{
    canonical_term, decode, decode_trainset, from_term, from_term_map, hex, term_bytes, to_term,
    to_term_at, to_term_map, value_bytes, BigInt, Term, TermList, TermMap, TermMapEntry, Value,
    MAX_TERM_DEPTH,
};
use prost::Message;

fn vectors_dir() -> PathBuf {
    match std::env::var_os("DSXIR_VECTORS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors"),
    }
}

fn manifest() -> serde_json::Value {
    let path = vectors_dir().join("manifest.json");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("manifest.json is JSON")
}

fn read(rel: &serde_json::Value) -> Vec<u8> {
    let path = vectors_dir().join(rel.as_str().expect("file name"));
    fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn bytes_hex(v: &Value) -> String {
    hex(&value_bytes(v).unwrap_or_else(|e| panic!("{v:?}: {e}")))
}

fn big(text: &str) -> Value {
    Value::from(text.parse::<BigInt>().expect("decimal"))
}

fn nested_list(depth: usize) -> Value {
    let mut v = Value::Null;
    for _ in 1..depth {
        v = Value::List(vec![v]);
    }
    v
}

fn term(kind: Kind) -> Term {
    Term { kind: Some(kind) }
}

fn string_term(s: &str) -> Term {
    term(Kind::StringValue(s.into()))
}

fn entry(key: Term, value: Term) -> TermMapEntry {
    TermMapEntry {
        key: Some(key),
        value: Some(value),
    }
}

// --- canonical bytes, as Python's term_bytes writes them -------------------------

#[test]
fn canonical_bytes_equal_pythons() {
    // The hex of dsxir.optimizer_session.terms.term_bytes for the same values.
    let cases: Vec<(Value, &str)> = vec![
        (Value::Int(i64::MAX), "18feffffffffffffffff01"),
        (Value::Int(i64::MIN), "18ffffffffffffffffff01"),
        (Value::from(1i128 << 63), "2209008000000000000000"),
        (Value::from(-(1i128 << 63) - 1), "2209ff7fffffffffffffff"),
        (Value::from(1i128 << 64), "2209010000000000000000"),
        (Value::from(-(1i128 << 64)), "2209ff0000000000000000"),
        (
            big("1606938044258990275541962092341162602522202993782792835301376"),
            "221a0100000000000000000000000000000000000000000000000000",
        ),
        (
            big("-1606938044258990275541962092341162602522202993782792835301376"),
            "221aff00000000000000000000000000000000000000000000000000",
        ),
        (Value::Float(-0.0), "290000000000000080"),
        (Value::Float(0.0), "290000000000000000"),
        (Value::Float(f64::INFINITY), "29000000000000f07f"),
        (
            Value::Map(vec![
                (Value::from("b"), Value::Int(1)),
                (Value::from("a"), Value::Int(2)),
                (Value::Int(1), Value::Int(5)),
                (Value::Null, Value::Int(4)),
            ]),
            "5a2a0a080a020a00120218080a080a0218021202180a0a090a03320161120218040a090a0332016212021802",
        ),
        (
            Value::List(vec![
                Value::Int(1),
                Value::tuple([Value::Int(2), Value::from("x")]),
                Value::atom("y"),
                Value::Bytes(vec![0x00, 0xff]),
                Value::Map(vec![]),
            ]),
            "4a200a0218020a0b52090a0218040a033201780a034201790a043a0200ff0a025a00",
        ),
        (Value::from("é😀"), "3206c3a9f09f9880"),
    ];
    for (value, expected) in cases {
        assert_eq!(bytes_hex(&value), expected, "{value:?}");
        let t = to_term(&value).unwrap();
        assert_eq!(hex(&term_bytes(&t)), expected);
    }
}

#[test]
fn scalars_map_to_their_kinds() {
    let kind = |v: Value| to_term(&v).unwrap().kind.unwrap();
    assert_eq!(kind(Value::Null), Kind::NullValue(Default::default()));
    assert_eq!(kind(Value::Bool(true)), Kind::BoolValue(true));
    assert_eq!(kind(Value::Int(1)), Kind::IntValue(1));
    assert_eq!(kind(Value::Float(1.0)), Kind::FloatValue(1.0));
    assert_eq!(kind(Value::from("1")), Kind::StringValue("1".into()));
    assert_eq!(kind(Value::atom("1")), Kind::AtomValue("1".into()));
    assert_eq!(kind(Value::Bytes(vec![])), Kind::BytesValue(vec![]));
    // True, 1, 1.0 and "1" are four different Terms.
    let all: Vec<_> = [
        Value::Bool(true),
        Value::Int(1),
        Value::Float(1.0),
        Value::from("1"),
        Value::atom("1"),
    ]
    .iter()
    .map(bytes_hex)
    .collect();
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

// --- integers -------------------------------------------------------------------

#[test]
fn int64_edges_are_int_values_and_beyond_are_minimal_bigints() {
    let int = |n: i128| to_term(&Value::from(n)).unwrap().kind.unwrap();
    assert_eq!(int(i64::MAX.into()), Kind::IntValue(i64::MAX));
    assert_eq!(int(i64::MIN.into()), Kind::IntValue(i64::MIN));
    // 2^63 is 00 80 00 00 00 00 00 00 00; -2^63-1 is FF 7F FF FF FF FF FF FF FF.
    assert_eq!(
        int(1 << 63),
        Kind::BigintValue(vec![0x00, 0x80, 0, 0, 0, 0, 0, 0, 0])
    );
    assert_eq!(
        int(-(1 << 63) - 1),
        Kind::BigintValue(vec![0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    );
    assert_eq!(
        to_term(&Value::from(u64::MAX)).unwrap().kind.unwrap(),
        Kind::BigintValue(vec![0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    );
    assert_eq!(
        to_term(&Value::from(i128::MIN)).unwrap().kind.unwrap(),
        Kind::BigintValue({
            let mut b = vec![0x80];
            b.extend([0; 15]);
            b
        })
    );
    // A BigInt inside int64 is written as int_value and read back as Int.
    let five = Value::BigInt(BigInt::from(5i64));
    assert_eq!(to_term(&five).unwrap().kind.unwrap(), Kind::IntValue(5));
    assert_eq!(
        value_bytes(&five).unwrap(),
        value_bytes(&Value::Int(5)).unwrap()
    );
    assert_eq!(from_term(&to_term(&five).unwrap()).unwrap(), Value::Int(5));
    // Each edge round-trips.
    for n in [
        0i128,
        -1,
        i64::MAX.into(),
        i64::MIN.into(),
        1 << 63,
        -(1 << 63) - 1,
        1 << 64,
        -(1 << 64),
        i128::MAX,
        i128::MIN,
    ] {
        let v = Value::from(n);
        let back = from_term(&to_term(&v).unwrap()).unwrap();
        assert_eq!(back, v, "{n}");
        match back {
            Value::Int(small) => assert_eq!(i128::from(small), n),
            Value::BigInt(b) => assert_eq!(b.to_i128(), Some(n)),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn bigint_bytes_decimal_text_and_normalization() {
    let two_200 = "1606938044258990275541962092341162602522202993782792835301376";
    let n: BigInt = two_200.parse().unwrap();
    let mut bytes = vec![0x01];
    bytes.extend([0; 25]);
    assert_eq!(n.as_twos_complement(), bytes.as_slice());
    assert_eq!(n.to_string(), two_200);
    assert_eq!(n.to_i64(), None);
    assert_eq!(n.to_i128(), None);
    let neg: BigInt = format!("-{two_200}").parse().unwrap();
    assert_eq!(neg.to_string(), format!("-{two_200}"));
    assert!(neg.is_negative());
    assert_eq!(neg.as_twos_complement()[0], 0xff);

    for n in [
        0i128,
        1,
        -1,
        127,
        128,
        -128,
        -129,
        255,
        256,
        i128::MAX,
        i128::MIN,
    ] {
        let b = BigInt::from(n);
        assert_eq!(b.to_string(), n.to_string());
        assert_eq!(b.to_string().parse::<BigInt>().unwrap(), b);
        assert_eq!(b.to_i128(), Some(n));
    }
    assert_eq!(BigInt::from(u128::MAX).to_string(), u128::MAX.to_string());
    assert_eq!(BigInt::from(u64::MAX).to_i128(), Some(u64::MAX.into()));
    assert_eq!("+42".parse::<BigInt>().unwrap(), BigInt::from(42i64));
    assert_eq!("-0".parse::<BigInt>().unwrap(), BigInt::from(0i64));
    for bad in ["", "-", "1.5", "0x10", " 1", "1e3"] {
        assert!(bad.parse::<BigInt>().is_err(), "{bad:?}");
    }

    // Redundant sign bytes are dropped; no bytes is zero.
    assert_eq!(
        BigInt::from_twos_complement(&[0, 0, 0x7f]).as_twos_complement(),
        [0x7f]
    );
    assert_eq!(
        BigInt::from_twos_complement(&[0, 0, 0x80]).as_twos_complement(),
        [0, 0x80]
    );
    assert_eq!(
        BigInt::from_twos_complement(&[0xff, 0xff, 0x80]).as_twos_complement(),
        [0x80]
    );
    assert_eq!(
        BigInt::from_twos_complement(&[0xff, 0x7f]).as_twos_complement(),
        [0xff, 0x7f]
    );
    assert_eq!(BigInt::from_twos_complement(&[]).as_twos_complement(), [0]);
    assert_eq!(BigInt::from_twos_complement(&[0xff]).to_i64(), Some(-1));
}

// --- floats -----------------------------------------------------------------------

#[test]
fn negative_zero_is_kept_and_nan_refused() {
    let t = to_term(&Value::Float(-0.0)).unwrap();
    match t.kind {
        Some(Kind::FloatValue(f)) => assert_eq!(f.to_bits(), (-0.0f64).to_bits()),
        ref other => panic!("{other:?}"),
    }
    match from_term(&t).unwrap() {
        Value::Float(f) => assert_eq!(f.to_bits(), (-0.0f64).to_bits()),
        other => panic!("{other:?}"),
    }
    assert_ne!(
        value_bytes(&Value::Float(-0.0)).unwrap(),
        value_bytes(&Value::Float(0.0)).unwrap()
    );
    // -0.0 and 0.0 are two different map keys.
    let m = Value::Map(vec![
        (Value::Float(0.0), Value::Int(1)),
        (Value::Float(-0.0), Value::Int(2)),
    ]);
    assert!(to_term(&m).is_ok());
    for inf in [f64::INFINITY, f64::NEG_INFINITY, f64::MIN_POSITIVE, 5e-324] {
        let back = from_term(&to_term(&Value::Float(inf)).unwrap()).unwrap();
        assert_eq!(back, Value::Float(inf));
    }

    let err = to_term(&Value::Float(f64::NAN)).unwrap_err();
    assert_eq!(
        (err.path.as_str(), err.detail.as_str()),
        ("value", "NaN is not allowed")
    );
    // Python: value[2]['k'][0]: NaN is not allowed.
    let v = Value::list([
        Value::Int(0),
        Value::Int(1),
        Value::map([("k", Value::list([f64::NAN]))]),
    ]);
    assert_eq!(
        to_term(&v).unwrap_err().to_string(),
        "value[2][\"k\"][0]: NaN is not allowed (rule float.nan)"
    );
    // Python: value[1][b'x']: NaN is not allowed.
    let v = Value::Map(vec![
        (Value::from("a"), Value::Int(1)),
        (Value::atom("a"), Value::Int(2)),
        (
            Value::Int(1),
            Value::Map(vec![(Value::Bytes(b"x".to_vec()), Value::Float(f64::NAN))]),
        ),
    ]);
    assert_eq!(
        to_term(&v).unwrap_err().to_string(),
        "value[1][b\"x\"]: NaN is not allowed (rule float.nan)"
    );
    let nan_key = Value::Map(vec![(Value::Float(f64::NAN), Value::Null)]);
    assert_eq!(to_term_at(&nan_key, "opts").unwrap_err().path, "opts[NaN]");

    let nan = term(Kind::FloatValue(f64::NAN));
    let err = from_term(&nan).unwrap_err();
    assert_eq!(
        (err.path.as_str(), err.detail.as_str()),
        ("term.float_value", "NaN is not allowed")
    );
}

// --- maps -------------------------------------------------------------------------

#[test]
fn maps_are_sorted_by_canonical_key_bytes() {
    let entries = vec![
        (Value::from("bb"), Value::Int(0)),
        (Value::from("b"), Value::Int(1)),
        (Value::list([1]), Value::Int(2)),
        (Value::Int(-1), Value::Int(3)),
        (Value::Bool(false), Value::Int(4)),
        (Value::Null, Value::Int(5)),
        (Value::atom("a"), Value::Int(6)),
        (Value::Bytes(vec![]), Value::Int(7)),
        (Value::Float(2.0), Value::Int(8)),
        (Value::from(1i128 << 70), Value::Int(9)),
    ];
    let t = to_term(&Value::Map(entries.clone())).unwrap();
    let Some(Kind::MapValue(map)) = &t.kind else {
        panic!("{t:?}")
    };
    let keys: Vec<Vec<u8>> = map
        .entries
        .iter()
        .map(|e| term_bytes(e.key.as_ref().unwrap()))
        .collect();
    assert_eq!(keys.len(), entries.len());
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    // Any insertion order gives the same bytes.
    let mut reversed = entries.clone();
    reversed.reverse();
    assert_eq!(value_bytes(&Value::Map(reversed)).unwrap(), term_bytes(&t));
    // from_term gives the map back in canonical key order.
    let Value::Map(back) = from_term(&t).unwrap() else {
        panic!()
    };
    let back_keys: Vec<Vec<u8>> = back.iter().map(|(k, _)| value_bytes(k).unwrap()).collect();
    assert_eq!(back_keys, keys);
}

#[test]
fn duplicate_keys_are_refused() {
    let dup = Value::map([("a", 1), ("b", 2), ("a", 3)]);
    let err = to_term(&dup).unwrap_err();
    assert_eq!(err.path, "value");
    assert_eq!(err.detail, "duplicate map key (canonical bytes 320161)");
    // Int(5) and BigInt(5) are the same Term, so the same key.
    let dup = Value::Map(vec![
        (Value::Int(5), Value::Null),
        (Value::BigInt(BigInt::from(5i64)), Value::Null),
    ]);
    assert!(to_term(&dup).is_err());
    // Nested: the inner map's path.
    let nested = Value::list([Value::map([("x", Value::map([("k", 1), ("k", 1)]))])]);
    assert_eq!(to_term(&nested).unwrap_err().path, "value[0][\"x\"]");
    let err = to_term_map(
        &[
            (Value::from("k"), Value::Null),
            (Value::from("k"), Value::Null),
        ],
        "stats",
    )
    .unwrap_err();
    assert_eq!(err.path, "stats");
}

#[test]
fn from_term_sorts_unsorted_maps_and_refuses_duplicates() {
    let unsorted = term(Kind::MapValue(TermMap {
        entries: vec![
            entry(string_term("b"), term(Kind::IntValue(1))),
            entry(string_term("a"), term(Kind::IntValue(2))),
        ],
    }));
    assert_eq!(
        from_term(&unsorted).unwrap(),
        Value::map([("a", 2), ("b", 1)])
    );
    let canonical = canonical_term(&unsorted, "term").unwrap();
    assert_eq!(
        canonical,
        to_term(&Value::map([("b", 1), ("a", 2)])).unwrap()
    );

    let dup = term(Kind::MapValue(TermMap {
        entries: vec![
            entry(string_term("b"), term(Kind::IntValue(1))),
            entry(string_term("a"), term(Kind::IntValue(2))),
            entry(string_term("b"), term(Kind::IntValue(3))),
            entry(string_term("a"), term(Kind::IntValue(4))),
        ],
    }));
    let err = from_term(&dup).unwrap_err();
    assert_eq!(err.path, "term.map_value.entries[2].key");
    assert_eq!(err.detail, "duplicate map key");
}

#[test]
fn from_term_applies_the_term_checks_with_paths() {
    let list = |items: Vec<Term>| term(Kind::ListValue(TermList { items }));
    let cases: Vec<(Term, &str, &str)> = vec![
        (Term { kind: None }, "term", "term has no kind"),
        (
            list(vec![term(Kind::IntValue(1)), Term { kind: None }]),
            "term.list_value.items[1]",
            "term has no kind",
        ),
        (
            term(Kind::BigintValue(vec![])),
            "term.bigint_value",
            "empty big integer",
        ),
        (
            term(Kind::BigintValue(vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0])),
            "term.bigint_value",
            "big integer is not minimal",
        ),
        (
            term(Kind::BigintValue(vec![0x7f, 0xff])),
            "term.bigint_value",
            "big integer fits in int64; it must be an int_value",
        ),
        (
            term(Kind::TupleValue(TermList {
                items: vec![term(Kind::MapValue(TermMap {
                    entries: vec![TermMapEntry {
                        key: None,
                        value: Some(string_term("v")),
                    }],
                }))],
            })),
            "term.tuple_value.items[0].map_value.entries[0]",
            "map entry has no key",
        ),
        (
            term(Kind::MapValue(TermMap {
                entries: vec![TermMapEntry {
                    key: Some(string_term("k")),
                    value: None,
                }],
            })),
            "term.map_value.entries[0]",
            "map entry has no value",
        ),
        (
            term(Kind::MapValue(TermMap {
                entries: vec![entry(string_term("k"), term(Kind::FloatValue(f64::NAN)))],
            })),
            "term.map_value.entries[0].value.float_value",
            "NaN is not allowed",
        ),
    ];
    for (t, path, detail) in cases {
        let err = from_term(&t).unwrap_err();
        assert_eq!(
            (err.path.as_str(), err.detail.as_str()),
            (path, detail),
            "{t:?}"
        );
    }
    let map = TermMap {
        entries: vec![entry(string_term("k"), Term { kind: None })],
    };
    assert_eq!(
        from_term_map(&map).unwrap_err().path,
        "term.entries[0].value"
    );
}

// --- depth --------------------------------------------------------------------------

#[test]
fn depth_is_limited_to_24() {
    assert_eq!(MAX_TERM_DEPTH, 24);
    assert!(to_term(&nested_list(24)).is_ok());
    let err = to_term(&nested_list(25)).unwrap_err();
    assert_eq!(err.path, format!("value{}", "[0]".repeat(24)));
    assert_eq!(err.detail, "nesting deeper than 24");
    // Empty containers have depth 1.
    let mut v = Value::Map(vec![]);
    for _ in 1..24 {
        v = Value::Tuple(vec![v]);
    }
    assert!(to_term(&v).is_ok());
    assert!(to_term(&Value::Tuple(vec![v])).is_err());

    // A TermMap counts as depth 1: its keys and values start at depth 2.
    let ok = [(Value::from("k"), nested_list(23))];
    assert!(to_term_map(&ok, "stats").is_ok());
    let deep = [(Value::from("k"), nested_list(24))];
    let err = to_term_map(&deep, "stats").unwrap_err();
    assert_eq!(err.path, format!("stats[\"k\"]{}", "[0]".repeat(23)));

    // Reading: the same limit, reported at the first Term past it.
    let mut t = term(Kind::NullValue(Default::default()));
    for _ in 1..24 {
        t = term(Kind::ListValue(TermList { items: vec![t] }));
    }
    assert!(from_term(&t).is_ok());
    let t = term(Kind::ListValue(TermList { items: vec![t] }));
    let err = from_term(&t).unwrap_err();
    assert_eq!(
        err.path,
        format!("term{}", ".list_value.items[0]".repeat(24))
    );
    assert_eq!(err.detail, "nesting deeper than 24");
}

// --- round trips over the golden vectors ------------------------------------------

/// Every Term and TermMap of a checkpoint goes Term → Value → Term unchanged.
#[test]
fn terms_of_the_valid_vectors_round_trip() {
    let manifest = manifest();
    let mut terms = 0;
    let mut maps = 0;
    for vector in manifest["valid"].as_array().expect("valid list") {
        let cp = decode(&read(&vector["binpb"])).expect("valid vector");
        let mut all_terms: Vec<&Term> = cp
            .optimizer_opts
            .iter()
            .filter_map(|o| o.value.as_ref())
            .collect();
        all_terms.extend(cp.terminal_reason.as_ref());
        for t in all_terms {
            let value = from_term(t).unwrap();
            assert_eq!(
                value_bytes(&value).unwrap(),
                term_bytes(t),
                "{}",
                vector["name"]
            );
            terms += 1;
        }
        let mut all_maps: Vec<&TermMap> = cp.best_program_artifact.iter().collect();
        for entry in &cp.progress.as_ref().unwrap().trial_log {
            all_maps.extend(entry.stats.as_ref());
            all_maps.extend(entry.error.as_ref());
        }
        for m in all_maps {
            let Value::Map(entries) = from_term_map(m).unwrap() else {
                panic!("a TermMap reads as a map")
            };
            let back = to_term_map(&entries, "map").unwrap();
            assert_eq!(
                back.encode_to_vec(),
                m.encode_to_vec(),
                "{}",
                vector["name"]
            );
            maps += 1;
        }
    }
    assert!(terms > 0 && maps > 0, "{terms} terms, {maps} maps");
}

/// The trainset vectors hold canonical Term lists (one deliberately not
/// sorted): Term → Value → Term gives the canonical bytes.
#[test]
fn trainset_vector_terms_round_trip() {
    let manifest = manifest();
    let vectors = manifest["trainset"].as_array().expect("trainset list");
    let input_of = |name: &str| {
        let v = vectors
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no trainset vector {name}"));
        read(&v["input"])
    };
    for vector in vectors {
        let name = vector["name"].as_str().unwrap();
        let input = read(&vector["input"]);
        let items = decode_trainset(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
        let canonical = value_bytes(&Value::List(items)).unwrap();
        let expected = if name == "qa_unsorted_input" {
            assert_ne!(input, input_of("qa"));
            input_of("qa")
        } else {
            input
        };
        assert_eq!(canonical, expected, "{name}");
    }
}
