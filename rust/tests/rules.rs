//! The rule ids of `dsxir_checkpoint::rules` are exactly those of
//! spec/checkpoint-rules-v1.json, and every invalid golden vector is refused
//! with the rule its manifest names.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use dsxir_checkpoint::{decode, delta_rules, rules, to_term, Value};
use serde_json::Value as Json;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read_json(path: PathBuf) -> Json {
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("JSON")
}

/// The rule ids of the rules file spec/<name>, in its order.
fn spec_ids(name: &str) -> Vec<String> {
    read_json(repo().join("spec").join(name))["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|rule| rule["id"].as_str().expect("id").to_string())
        .collect()
}

/// The `pub const NAME: &str = "id";` lines of `file` (under src/), as
/// (NAME, id).
fn constants_of(file: &str) -> Vec<(String, String)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(file);
    let source = fs::read_to_string(&path).unwrap_or_else(|e| panic!("src/{file}: {e}"));
    source
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("pub const ")?;
            let (name, value) = rest.split_once(": &str = \"")?;
            let id = value.strip_suffix("\";")?;
            Some((name.to_string(), id.to_string()))
        })
        .collect()
}

/// Checks that the constants of src/<file> are the `count` ids of the rules
/// file spec/<spec>, once each and named after their id, and that `all`
/// lists those ids in the spec's order.
fn assert_constants_are_the_spec_ids(file: &str, spec: &str, count: usize, all: &[&str]) {
    let ids = spec_ids(spec);
    assert_eq!(ids.len(), count);
    let constants = constants_of(file);
    for (name, id) in &constants {
        assert_eq!(*name, id.to_uppercase().replace('.', "_"), "{id}");
    }
    let declared: BTreeSet<&str> = constants.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(declared.len(), constants.len(), "an id declared twice");
    let expected: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(declared, expected);
    assert_eq!(all, ids.as_slice());
}

#[test]
fn constants_are_the_ids_of_the_spec() {
    assert_constants_are_the_spec_ids("rules.rs", "checkpoint-rules-v1.json", 47, rules::ALL);
}

#[test]
fn delta_constants_are_the_ids_of_the_delta_spec() {
    assert_constants_are_the_spec_ids("delta_rules.rs", "delta-rules-v1.json", 7, delta_rules::ALL);
    // No delta rule shares an id with a checkpoint rule.
    assert!(delta_rules::ALL.iter().all(|id| !rules::ALL.contains(id)));
}

#[test]
fn invalid_vectors_are_refused_with_their_rule() {
    let dir = match std::env::var_os("DSXIR_VECTORS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo().join("tests/vectors"),
    };
    let manifest = read_json(dir.join("manifest.json"));
    let invalid = manifest["invalid"].as_array().expect("invalid vectors");
    assert!(!invalid.is_empty());
    for vector in invalid {
        let name = vector["name"].as_str().expect("name");
        let rule = vector["rule"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: the manifest names no rule"));
        assert!(rules::ALL.contains(&rule), "{name}: not a rule id: {rule}");
        let path = dir.join(vector["binpb"].as_str().expect("binpb"));
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let err = decode(&bytes).expect_err(name);
        assert_eq!(err.rule, Some(rule), "{name}: {err}");
        assert_eq!(
            err.field,
            vector["field"].as_str().expect("field"),
            "{name}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "checkpoint_shape: {}: {} (rule {rule})",
                err.field, err.detail
            ),
            "{name}"
        );
    }
}

#[test]
fn term_refusals_name_their_rule() {
    let err = to_term(&Value::list([Value::Float(f64::NAN)])).unwrap_err();
    assert_eq!(err.rule, Some(rules::FLOAT_NAN));
    assert_eq!(
        err.to_string(),
        "value[0]: NaN is not allowed (rule float.nan)"
    );
    let err = to_term(&Value::map([(1i64, 1i64), (1i64, 2i64)])).unwrap_err();
    assert_eq!(err.rule, Some(rules::TERM_MAP_ORDER));
    let mut deep = Value::Int(1);
    for _ in 0..dsxir_checkpoint::MAX_TERM_DEPTH {
        deep = Value::list([deep]);
    }
    assert_eq!(to_term(&deep).unwrap_err().rule, Some(rules::TERM_DEPTH));
}
