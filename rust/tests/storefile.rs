//! Store files (docs/store-file.md): the vectors of tests/vectors/store/,
//! bit flips, truncations and writing. `DSXIR_VECTORS_DIR` overrides the
//! vector directory (default ../tests/vectors).

use std::fs;
use std::path::PathBuf;

use dsxir_checkpoint::storefile::{self, Error, Kind, HEADER_SIZE, MAX_SUMMARY_BYTES};
use dsxir_checkpoint::{encode_with_unknown, Checkpoint};
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    match std::env::var_os("DSXIR_VECTORS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors"),
    }
}

fn read_vector(rel: &str) -> Vec<u8> {
    let path = vectors_dir().join(rel);
    fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn manifest() -> Vec<Value> {
    let text = String::from_utf8(read_vector("store/manifest.jsonl")).expect("UTF-8");
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

fn field<'a>(vector: &'a Value, key: &str) -> &'a str {
    vector[key]
        .as_str()
        .unwrap_or_else(|| panic!("{vector}: no {key}"))
}

#[test]
fn the_manifest_lists_every_verdict() {
    let vectors = manifest();
    let count = |verdict: &str| {
        vectors
            .iter()
            .filter(|v| field(v, "verdict") == verdict)
            .count()
    };
    assert!(count("ok") >= 10 && count("damaged") >= 20 && count("checkpoint_refused") >= 3);
    assert_eq!(
        vectors.len(),
        count("ok") + count("damaged") + count("checkpoint_refused")
    );
}

#[test]
fn valid_vectors_are_read_and_written_back() {
    for vector in manifest().iter().filter(|v| field(v, "verdict") == "ok") {
        let name = field(vector, "name");
        let data = read_vector(field(vector, "file"));
        let file = storefile::read(&data).unwrap_or_else(|e| panic!("{name}: refused: {e}"));
        assert_eq!(
            file.generation.to_string(),
            field(vector, "generation"),
            "{name}"
        );
        // Unknown fields are kept: the checkpoint and the file are written
        // back byte for byte.
        let checkpoint = read_vector(field(vector, "checkpoint"));
        assert!(
            encode_with_unknown(&file.checkpoint, &file.unknown).unwrap() == checkpoint,
            "{name}: checkpoint"
        );
        let written =
            storefile::write_with_unknown(file.generation, &file.checkpoint, &file.unknown)
                .expect("write");
        assert!(written == data, "{name}: written back differently");
        let length = u32::from_be_bytes(data[20..24].try_into().unwrap()) as usize;
        let json: Value =
            serde_json::from_slice(&data[HEADER_SIZE..HEADER_SIZE + length]).expect("JSON");
        let s = &file.summary;
        assert_eq!(json["session_id"], s.session_id.as_str(), "{name}");
        assert_eq!(json["optimizer"], s.optimizer.as_str(), "{name}");
        assert_eq!(json["status"], s.status, "{name}");
        assert_eq!(json["attempts"], s.attempts, "{name}");
        assert_eq!(json["completed"], s.completed, "{name}");
        assert_eq!(json["errors"], s.errors, "{name}");
        assert_eq!(json["trials"], s.trials, "{name}");
        assert_eq!(json["best_trial_idx"].as_u64(), s.best_trial_idx, "{name}");
        assert_eq!(
            json["best_score"].is_null(),
            s.best_score.is_none(),
            "{name}"
        );
        assert_eq!(json["updated_at"][0], s.updated_at_seconds, "{name}");
        assert_eq!(json["updated_at"][1], s.updated_at_nanos, "{name}");
    }
}

#[test]
fn damaged_and_invalid_vectors_are_refused() {
    for vector in manifest().iter().filter(|v| field(v, "verdict") != "ok") {
        let name = field(vector, "name");
        let data = read_vector(field(vector, "file"));
        match (field(vector, "verdict"), storefile::read(&data)) {
            ("damaged", Err(Error::Corrupt(e))) => {
                assert_eq!(e.kind.as_str(), field(vector, "kind"), "{name}: {e}");
                assert!(
                    e.to_string()
                        .starts_with(&format!("store_file: {}: ", e.kind)),
                    "{name}: {e}"
                );
            }
            ("checkpoint_refused", Err(Error::Checkpoint(e))) => {
                assert_eq!(e.field, field(vector, "field"), "{name}: {e}");
            }
            (verdict, got) => panic!("{name}: want {verdict}, got {got:?}"),
        }
    }
}

fn good() -> Vec<u8> {
    read_vector("store/running_trials.dsxckpt")
}

#[test]
fn every_flipped_bit_is_refused_as_damage() {
    let good = good();
    for i in 0..good.len() {
        for bit in 0..8 {
            let mut damaged = good.clone();
            damaged[i] ^= 1 << bit;
            assert!(
                matches!(storefile::read(&damaged), Err(Error::Corrupt(_))),
                "byte {i} bit {bit}"
            );
        }
    }
}

#[test]
fn every_truncation_is_refused_as_truncated() {
    let good = good();
    for n in 0..good.len() {
        match storefile::read(&good[..n]) {
            Err(Error::Corrupt(e)) if e.kind == Kind::Truncated => {}
            other => panic!("{n} bytes: {other:?}"),
        }
    }
}

fn checkpoint() -> Checkpoint {
    storefile::read(&good()).expect("valid").checkpoint
}

#[test]
fn write_refuses_an_invalid_checkpoint_and_a_summary_over_the_limit() {
    let mut invalid = checkpoint();
    invalid.progress.as_mut().unwrap().completed += 1;
    match storefile::write(1, &invalid) {
        Err(Error::Checkpoint(e)) => assert_eq!(e.field, "progress.completed"),
        other => panic!("{other:?}"),
    }
    assert!(storefile::encode_summary(&invalid).is_err());
    let mut huge = checkpoint();
    huge.optimizer = "x".repeat(MAX_SUMMARY_BYTES);
    assert!(matches!(
        storefile::write(1, &huge),
        Err(Error::SummaryTooLarge(_))
    ));
    huge.optimizer = "x".repeat(MAX_SUMMARY_BYTES - 300);
    let data = storefile::write(1, &huge).expect("under the limit");
    assert_eq!(storefile::read(&data).expect("read back").checkpoint, huge);
}

#[test]
fn write_then_read_at_every_generation() {
    let cp = checkpoint();
    for generation in [0, 1, 1 << 63, u64::MAX] {
        let file = storefile::read(&storefile::write(generation, &cp).unwrap()).unwrap();
        assert_eq!(file.generation, generation);
        assert_eq!(file.checkpoint, cp);
        let good = good();
        let length = u32::from_be_bytes(good[20..24].try_into().unwrap()) as usize;
        assert_eq!(
            storefile::encode_summary(&cp).unwrap(),
            good[HEADER_SIZE..HEADER_SIZE + length]
        );
    }
}
