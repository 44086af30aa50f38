//! The golden vectors of tests/vectors/manifest.json (FORMAT.md §11).
//! `DSXIR_VECTORS_DIR` overrides the directory (default ../tests/vectors).

use std::fs;
use std::path::PathBuf;

use dsxir_checkpoint::{decode, encode, Checkpoint};
use prost::Message;
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
        let cp = decode(&bytes).unwrap_or_else(|e| panic!("{}: refused: {e}", name(vector)));
        assert!(
            encode(&cp) == bytes,
            "{}: re-encoding differs",
            name(vector)
        );
    }
}

#[test]
fn unknown_field_vectors_are_read_and_give_known_only() {
    for vector in list(&manifest(), "unknown") {
        let bytes = read(vector, "binpb");
        let known_only = read(vector, "known_only");
        assert_ne!(
            bytes,
            known_only,
            "{}: vector has no unknown fields",
            name(vector)
        );
        let cp = decode(&bytes).unwrap_or_else(|e| panic!("{}: refused: {e}", name(vector)));
        assert!(
            encode(&cp) == known_only,
            "{}: re-encoding is not known_only",
            name(vector)
        );
        let cp = decode(&known_only).unwrap_or_else(|e| panic!("{}: refused: {e}", name(vector)));
        assert!(
            encode(&cp) == known_only,
            "{}: known_only does not round-trip",
            name(vector)
        );
    }
}

#[test]
fn noncanonical_vectors_reencode_canonically() {
    for vector in list(&manifest(), "noncanonical") {
        let bytes = read(vector, "binpb");
        let canonical = read(vector, "canonical");
        assert_ne!(bytes, canonical, "{}: vector is canonical", name(vector));
        let cp = decode(&bytes).unwrap_or_else(|e| panic!("{}: refused: {e}", name(vector)));
        assert!(
            encode(&cp) == canonical,
            "{}: re-encoding is not the canonical bytes",
            name(vector)
        );
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

#[test]
fn protobuf_level_vectors_are_refused_by_prost_itself() {
    // protobuf_level: true means a plain protobuf parser refuses the bytes:
    // prost must refuse them before any rule of FORMAT.md is applied.
    let manifest = manifest();
    let mut flagged = 0;
    for vector in list(&manifest, "invalid") {
        if vector["protobuf_level"].as_bool().expect("protobuf_level") {
            flagged += 1;
            let bytes = read(vector, "binpb");
            assert!(
                Checkpoint::decode(bytes.as_slice()).is_err(),
                "{}",
                name(vector)
            );
            assert_eq!(
                decode(&bytes).unwrap_err().field,
                "<input>",
                "{}",
                name(vector)
            );
        }
    }
    assert!(flagged > 0, "manifest flags no protobuf_level vector");
}
