//! The testee's `read-store-file` command, one-shot and through `serve`, on
//! every vector of tests/vectors/store/manifest.jsonl: the checkpoint bytes
//! of an `ok` file, else the refusal line, exit code, kind, path and rule the
//! manifest gives. `DSXIR_VECTORS_DIR` overrides the vector directory.

mod support;

use std::path::PathBuf;

use serde_json::Value;
use support::conformance::response::Result as Answer;
use support::conformance::Command as Cmd;
use support::{request, responses, run_testee};

fn vectors_dir() -> PathBuf {
    match std::env::var_os("DSXIR_VECTORS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors"),
    }
}

fn read_vector(rel: &str) -> Vec<u8> {
    let path = vectors_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn manifest() -> Vec<Value> {
    String::from_utf8(read_vector("store/manifest.jsonl"))
        .expect("UTF-8")
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

fn field<'a>(vector: &'a Value, key: &str) -> &'a str {
    vector[key]
        .as_str()
        .unwrap_or_else(|| panic!("{vector}: no {key}"))
}

/// What a vector's verdict makes the testee answer: the exit code, the
/// refusal kind, path and rule, and how the one-shot line starts.
fn expected(vector: &Value) -> (u32, &'static str, String, String, String) {
    match field(vector, "verdict") {
        "damaged" => {
            let kind = field(vector, "kind");
            (
                4,
                "store_file",
                kind.to_string(),
                String::new(),
                format!("store_file: {kind}: "),
            )
        }
        verdict @ ("checkpoint_refused" | "delta_refused") => {
            let reason = if verdict == "delta_refused" {
                "delta_shape"
            } else {
                "checkpoint_shape"
            };
            let path = field(vector, "field");
            (
                3,
                reason,
                path.to_string(),
                field(vector, "rule").to_string(),
                format!("{reason}: {path}: "),
            )
        }
        other => panic!("verdict {other}"),
    }
}

#[test]
fn read_store_file_answers_every_vector_as_recorded() {
    for vector in manifest() {
        let name = field(&vector, "name");
        let out = run_testee(&["read-store-file"], &read_vector(field(&vector, "file")));
        let err = String::from_utf8(out.stderr).expect("UTF-8");
        if field(&vector, "verdict") == "ok" {
            assert_eq!(out.status.code(), Some(0), "{name}: {err}");
            assert!(
                out.stdout == read_vector(field(&vector, "checkpoint")),
                "{name}"
            );
            assert!(err.is_empty(), "{name}: {err}");
            continue;
        }
        let (code, _, _, rule, prefix) = expected(&vector);
        assert_eq!(out.status.code(), Some(code as i32), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}");
        assert_eq!(err.matches('\n').count(), 1, "{name}: {err}");
        assert!(err.starts_with(&prefix), "{name}: {err}");
        if !rule.is_empty() {
            assert!(err.ends_with(&format!(" (rule {rule})\n")), "{name}: {err}");
        }
    }
}

#[test]
fn serve_answers_every_vector_as_recorded() {
    let vectors = manifest();
    let mut input = Vec::new();
    for vector in &vectors {
        input.extend(request(
            Cmd::ReadStoreFile,
            &read_vector(field(vector, "file")),
        ));
    }
    let out = run_testee(&["serve"], &input);
    assert_eq!(out.status.code(), Some(0));
    let answers = responses(&out.stdout);
    assert_eq!(answers.len(), vectors.len());
    for (vector, answer) in vectors.iter().zip(answers) {
        let name = field(vector, "name");
        if field(vector, "verdict") == "ok" {
            assert!(
                answer == Answer::Output(read_vector(field(vector, "checkpoint"))),
                "{name}: {answer:?}"
            );
            continue;
        }
        let Answer::Refusal(refusal) = answer else {
            panic!("{name}: {answer:?}")
        };
        let (code, kind, path, rule, prefix) = expected(vector);
        assert_eq!(
            (
                refusal.exit_code,
                refusal.kind.as_str(),
                refusal.path,
                refusal.rule
            ),
            (code, kind, path, rule),
            "{name}"
        );
        assert!(refusal.message.starts_with(&prefix), "{name}");
    }
}
