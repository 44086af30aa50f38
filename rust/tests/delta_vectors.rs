//! The delta vectors of tests/vectors/delta/manifest.json (FORMAT.md §13):
//! each delta applied to its base gives the result's canonical bytes or the
//! refusal the manifest names (its stage, rule and field); every delta not
//! refused when read writes back to its own bytes. `DSXIR_VECTORS_DIR`
//! overrides the vectors directory (default ../tests/vectors).

use std::fs;
use std::path::PathBuf;

use dsxir_checkpoint::{
    apply_delta, apply_delta_bytes, decode_delta, decode_delta_with_unknown, decode_with_unknown,
    delta_rules, rules, ResumeMismatch, CHECKPOINT_SHAPE, DELTA_SHAPE,
};
use serde_json::Value;

fn delta_dir() -> PathBuf {
    match std::env::var_os("DSXIR_VECTORS_DIR") {
        Some(dir) => PathBuf::from(dir).join("delta"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/delta"),
    }
}

fn read(case: &Value, key: &str) -> Vec<u8> {
    let rel = case[key]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no {key}", case["name"]));
    let path = delta_dir().join(rel);
    fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn check_refusal(name: &str, err: &ResumeMismatch, reason: &str, refused: &Value) {
    let rule = refused["rule"].as_str().expect("rule");
    let field = refused["field"].as_str().expect("field");
    assert!(
        rules::ALL.contains(&rule) || delta_rules::ALL.contains(&rule),
        "{name}: not a rule id: {rule}"
    );
    assert_eq!(
        (err.reason, err.rule, err.field.as_str()),
        (reason, Some(rule), field),
        "{name}: {err}"
    );
    assert_eq!(
        err.to_string(),
        format!("{reason}: {field}: {} (rule {rule})", err.detail),
        "{name}"
    );
}

#[test]
fn every_delta_vector_gives_its_answer() {
    let path = delta_dir().join("manifest.json");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let manifest: Value = serde_json::from_str(&text).expect("manifest.json is JSON");
    let cases = manifest["cases"].as_array().expect("cases");
    assert!(cases.len() >= 10, "too few delta vectors");
    let (mut accepted, mut refused_at) = (0, [0; 3]);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let base = read(case, "base");
        let delta = read(case, "delta");
        // Every base is a valid checkpoint.
        let base_decoded =
            decode_with_unknown(&base).unwrap_or_else(|e| panic!("{name}: the base: {e}"));
        let refused = &case["refused"];
        let stage = refused["stage"].as_str();
        if stage == Some("read") {
            let err = decode_delta(&delta).expect_err(name);
            check_refusal(name, &err, DELTA_SHAPE, refused);
            let err = decode_delta_with_unknown(&delta).expect_err(name);
            check_refusal(name, &err, DELTA_SHAPE, refused);
            let err = apply_delta_bytes(&base, &delta).expect_err(name);
            check_refusal(name, &err, DELTA_SHAPE, refused);
            refused_at[0] += 1;
            continue;
        }
        let decoded =
            decode_delta_with_unknown(&delta).unwrap_or_else(|e| panic!("{name}: the delta: {e}"));
        assert_eq!(
            decoded.encode().unwrap_or_else(|e| panic!("{name}: {e}")),
            delta,
            "{name}: the delta does not write back to its bytes"
        );
        let answer = apply_delta_bytes(&base, &delta);
        match stage {
            None => {
                let expected = read(case, "result");
                let got = answer.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(got, expected, "{name}: the result's bytes");
                let applied = apply_delta(&base_decoded, &decoded).expect(name);
                assert_eq!(applied.encode().expect(name), expected, "{name}");
                accepted += 1;
            }
            Some("apply") => {
                check_refusal(name, &answer.expect_err(name), DELTA_SHAPE, refused);
                refused_at[1] += 1;
            }
            Some("result") => {
                check_refusal(name, &answer.expect_err(name), CHECKPOINT_SHAPE, refused);
                refused_at[2] += 1;
            }
            Some(other) => panic!("{name}: unknown stage {other}"),
        }
    }
    assert!(accepted > 0 && refused_at.iter().all(|&n| n > 0));
    assert_eq!(accepted + refused_at.iter().sum::<usize>(), cases.len());
}
