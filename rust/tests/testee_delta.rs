//! The testee's delta commands: `reencode-delta`, `apply-delta BASE_FILE`
//! and commands 6 and 7 of the serve loop, on vectors of
//! tests/vectors/delta.

mod support;

use std::path::PathBuf;
use std::process::Output;

use support::conformance::response::Result as Answer;
use support::conformance::{Command as Cmd, Refusal};
use support::{request, request_with_base, responses, run_testee};

fn vector(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/vectors/delta")
        .join(file)
}

fn bytes(file: &str) -> Vec<u8> {
    std::fs::read(vector(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn apply(base: &str, delta: &str) -> Output {
    run_testee(
        &["apply-delta", vector(base).to_str().unwrap()],
        &bytes(delta),
    )
}

fn refusal_line(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(err.matches('\n').count(), 1, "{err}");
    err
}

#[test]
fn reencode_delta_writes_the_bytes_back_or_one_refusal_line() {
    let delta = bytes("unknown_fields.delta.binpb");
    let out = run_testee(&["reencode-delta"], &delta);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, delta);
    assert!(out.stderr.is_empty());

    let err = refusal_line(&run_testee(
        &["reencode-delta"],
        &bytes("format_missing.delta.binpb"),
    ));
    assert!(err.starts_with("delta_shape: format: "), "{err}");
    assert!(err.ends_with(" (rule delta.format)\n"), "{err}");
    // A checkpoint is not a delta.
    let err = refusal_line(&run_testee(&["reencode-delta"], &bytes("base_three.binpb")));
    assert!(err.starts_with("delta_shape: <input>: "), "{err}");
    assert!(err.ends_with(" (rule wire.tag)\n"), "{err}");
}

#[test]
fn apply_delta_prints_the_result_or_names_what_is_refused() {
    let out = apply("base_unknown.binpb", "unknown_fields.delta.binpb");
    assert_eq!(out.status.code(), Some(0), "{:?}", out.stderr);
    assert_eq!(out.stdout, bytes("unknown_fields.result.binpb"));

    // The base is read first, as a checkpoint.
    let err = refusal_line(&apply(
        "first_trial.delta.binpb",
        "format_missing.delta.binpb",
    ));
    assert!(err.starts_with("checkpoint_shape: <input>: "), "{err}");
    // The delta.
    let err = refusal_line(&apply("base_three.binpb", "format_missing.delta.binpb"));
    assert!(err.starts_with("delta_shape: format: "), "{err}");
    // A delta for another session.
    let err = refusal_line(&apply("base_three.binpb", "wrong_session.delta.binpb"));
    assert!(err.starts_with("delta_shape: head.session_id: "), "{err}");
    assert!(err.ends_with(" (rule delta.session)\n"), "{err}");
    // The new checkpoint breaks a rule of §7.
    let err = refusal_line(&apply("base_three.binpb", "trial_index.delta.binpb"));
    assert!(
        err.starts_with("checkpoint_shape: progress.trial_log[3].trial_idx: "),
        "{err}"
    );
    assert!(err.ends_with(" (rule trial.trial_idx)\n"), "{err}");

    // No such base file, or no argument: a usage error.
    let out = run_testee(&["apply-delta", "/nonexistent/base.binpb"], b"");
    assert_eq!(out.status.code(), Some(2));
    let out = run_testee(&["apply-delta"], b"");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn serve_answers_delta_commands() {
    let base = bytes("base_three.binpb");
    let mut input = request(Cmd::ReencodeDelta, &bytes("one_trial.delta.binpb"));
    input.extend(request_with_base(
        Cmd::ApplyDelta,
        &bytes("one_trial.delta.binpb"),
        &base,
    ));
    input.extend(request_with_base(
        Cmd::ApplyDelta,
        &bytes("wrong_base_trials.delta.binpb"),
        &base,
    ));
    input.extend(request_with_base(
        Cmd::ApplyDelta,
        &bytes("completed_count.delta.binpb"),
        &base,
    ));
    input.extend(request_with_base(
        Cmd::ApplyDelta,
        &bytes("one_trial.delta.binpb"),
        b"",
    ));
    input.extend(request(
        Cmd::ReencodeDelta,
        &bytes("head_missing.delta.binpb"),
    ));
    let out = run_testee(&["serve"], &input);
    assert_eq!(out.status.code(), Some(0));
    let answers = responses(&out.stdout);
    assert_eq!(answers.len(), 6);
    assert_eq!(answers[0], Answer::Output(bytes("one_trial.delta.binpb")));
    assert_eq!(answers[1], Answer::Output(bytes("one_trial.result.binpb")));
    let refusal = |answer: &Answer| match answer {
        Answer::Refusal(Refusal {
            exit_code,
            kind,
            path,
            rule,
            message,
        }) => {
            assert_eq!(*exit_code, 3);
            assert!(
                message.starts_with(&format!("{kind}: {path}: ")),
                "{message}"
            );
            assert!(message.ends_with(&format!(" (rule {rule})")), "{message}");
            (kind.clone(), path.clone(), rule.clone())
        }
        other => panic!("not a refusal: {other:?}"),
    };
    let expect = |kind: &str, path: &str, rule: &str| (kind.into(), path.into(), rule.into());
    assert_eq!(
        refusal(&answers[2]),
        expect("delta_shape", "base_trials", "delta.base_trials")
    );
    assert_eq!(
        refusal(&answers[3]),
        expect(
            "checkpoint_shape",
            "progress.completed",
            "counters.completed"
        )
    );
    // No base: an empty input is not a checkpoint.
    assert_eq!(
        refusal(&answers[4]),
        expect("checkpoint_shape", "<input>", "input.trailer")
    );
    assert_eq!(
        refusal(&answers[5]),
        expect("delta_shape", "head", "delta.head")
    );
}
