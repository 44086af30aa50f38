//! The golden vectors of tests/vectors/manifest.json (FORMAT.md §11).
//! `DSXIR_VECTORS_DIR` overrides the directory (default ../tests/vectors).

use std::fs;
use std::path::PathBuf;

use dsxir_checkpoint::{decode, decode_with_unknown, encode};
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    match std::env::var_os("DSXIR_VECTORS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors"),
    }
}

fn manifest() -> Value {
    let path = vectors_dir().join("manifest.json");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("manifest.json is JSON")
}

fn list<'a>(manifest: &'a Value, kind: &str) -> &'a Vec<Value> {
    let items = manifest[kind]
        .as_array()
        .unwrap_or_else(|| panic!("manifest has no {kind} list"));
    assert!(!items.is_empty(), "manifest lists no {kind} vectors");
    items
}

fn read(vector: &Value, key: &str) -> Vec<u8> {
    let rel = vector[key]
        .as_str()
        .unwrap_or_else(|| panic!("{vector}: no {key}"));
    let path = vectors_dir().join(rel);
    fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn name(vector: &Value) -> &str {
    vector["name"].as_str().expect("vector name")
}

#[test]
fn valid_vectors_reencode_identically() {
    for vector in list(&manifest(), "valid") {
        let bytes = read(vector, "binpb");
        let decoded = decode_with_unknown(&bytes)
            .unwrap_or_else(|e| panic!("{}: refused: {e}", name(vector)));
        assert!(
            decoded.encode().unwrap() == bytes,
            "{}: re-encoding differs",
            name(vector)
        );
        if decoded.unknown.is_empty() {
            assert!(
                encode(&decoded.checkpoint).unwrap() == bytes,
                "{}",
                name(vector)
            );
        }
    }
}

#[test]
fn unknown_field_vectors_are_kept_byte_for_byte() {
    for vector in list(&manifest(), "unknown") {
        let bytes = read(vector, "binpb");
        let decoded = decode_with_unknown(&bytes)
            .unwrap_or_else(|e| panic!("{}: refused: {e}", name(vector)));
        assert!(
            !decoded.unknown.is_empty(),
            "{}: no unknown fields",
            name(vector)
        );
        assert!(
            decoded.encode().unwrap() == bytes,
            "{}: unknown fields not written back as read",
            name(vector)
        );
    }
}

#[test]
fn canonicalize_inputs_are_refused_and_their_outputs_round_trip() {
    // Bytes in another protobuf encoding are not checkpoints (FORMAT.md §2);
    // the canonical bytes they are rewritten to (§2.6) are.
    let manifest = manifest();
    for vector in list(&manifest, "canonicalize") {
        let input = read(vector, "input");
        let canonical = read(vector, "canonical");
        // Only input that is already canonical is a checkpoint as it is.
        assert_eq!(
            decode(&input).is_ok(),
            input == canonical,
            "{}",
            name(vector)
        );
        let decoded = dsxir_checkpoint::decode_with_unknown(&canonical)
            .unwrap_or_else(|e| panic!("{}: {e}", name(vector)));
        assert_eq!(decoded.encode().unwrap(), canonical, "{}", name(vector));
    }
}

#[test]
fn invalid_vectors_are_refused_with_their_field() {
    for vector in list(&manifest(), "invalid") {
        let bytes = read(vector, "binpb");
        let field = vector["field"].as_str().expect("field");
        let err = match decode(&bytes) {
            Ok(_) => panic!("{}: accepted, expected refusal at {field}", name(vector)),
            Err(e) => e,
        };
        assert_eq!(err.reason, "checkpoint_shape", "{}", name(vector));
        assert_eq!(err.field, field, "{}: {err}", name(vector));
        assert_eq!(err.rule, vector["rule"].as_str(), "{}: {err}", name(vector));
    }
}
