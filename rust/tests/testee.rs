//! The conformance testee (the example `testee`): exit codes, refusal lines,
//! serve framing.

mod support;

use dsxir_checkpoint::v1::term::Kind;
use dsxir_checkpoint::{
    encode, hash_trainset, hex, Checkpoint, Progress, SamplerFormat, Term, TermList, TermMap,
    TermMapEntry, Value, FORMAT_ID,
};
use prost::Message;
use support::run_testee;

fn valid() -> Vec<u8> {
    let stamp = prost_types::Timestamp {
        seconds: 1_767_225_600,
        nanos: 0,
    };
    encode(&Checkpoint {
        format: FORMAT_ID.into(),
        session_id: "s1".into(),
        optimizer: "demo.Optimizer".into(),
        trainset_hash: vec![7; 32],
        created_at: Some(stamp),
        updated_at: Some(stamp),
        progress: Some(Progress {
            started_at: Some(stamp),
            ..Default::default()
        }),
        sampler_format: Some(SamplerFormat {
            module: "demo.Sampler".into(),
            version: 2,
        }),
        status: 2,
        terminal_reason: Some(Term {
            kind: Some(Kind::FloatValue(-0.0)),
        }),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn reencode_writes_canonical_bytes() {
    let bytes = valid();
    let out = run_testee(&["reencode"], &bytes);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, bytes);
    assert!(out.stderr.is_empty());
}

#[test]
fn reencode_refusal_is_one_line_and_exit_3() {
    let out = run_testee(&["reencode"], &[0xff, 0xff, 0xff]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("checkpoint_shape: <input>: "), "{err}");
    assert!(err.ends_with(" (rule input.trailer)\n"), "{err}");
    assert_eq!(err.matches('\n').count(), 1);

    let out = run_testee(&["reencode"], &dsxir_checkpoint::seal(&[]));
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "checkpoint_shape: format: missing format identifier: not a dsxir checkpoint \
         (rule format.required)\n"
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["nonsense"][..],
        &["reencode", "x"][..],
        &["hash-trainset", "x"][..],
    ] {
        let out = run_testee(args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

use support::conformance::response::Result as Answer;
use support::conformance::{Command as Cmd, Refusal};
use support::{request, responses};

#[test]
fn serve_answers_each_request_in_order() {
    let bytes = valid();
    let mut input = request(Cmd::Reencode, &bytes);
    input.extend(request(Cmd::Reencode, b"\x12\x02\xc3\x28"));
    input.extend(request(Cmd::Reencode, &bytes));
    let out = run_testee(&["serve"], &input);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers = responses(&out.stdout);
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0], Answer::Output(bytes.clone()));
    let Answer::Refusal(refusal) = &answers[1] else {
        panic!("{:?}", answers[1])
    };
    assert_eq!(
        (
            refusal.exit_code,
            refusal.kind.as_str(),
            refusal.path.as_str(),
            refusal.rule.as_str()
        ),
        (3, "checkpoint_shape", "<input>", "input.trailer")
    );
    assert!(refusal.message.starts_with("checkpoint_shape: <input>: "));
    assert_eq!(answers[2], Answer::Output(bytes));
}

#[test]
fn serve_refuses_unknown_commands_and_stops_at_truncated_requests() {
    let mut input = request(Cmd::Unspecified, b"\x4a\x00");
    input.extend(prost::Message::encode_length_delimited_to_vec(
        &support::conformance::Request {
            command: 99,
            input: vec![],
            base: vec![],
        },
    ));
    let out = run_testee(&["serve"], &input);
    assert_eq!(out.status.code(), Some(0));
    for answer in responses(&out.stdout) {
        let Answer::Refusal(Refusal {
            exit_code, kind, ..
        }) = answer
        else {
            panic!("{answer:?}")
        };
        assert_eq!((exit_code, kind.as_str()), (2, "command"));
    }
    let out = run_testee(&["serve"], &[9, 0x08, 1]);
    assert_eq!(out.status.code(), Some(2));
    let out = run_testee(&["serve"], b"");
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}

/// Two question/answer maps, the second with its entries not sorted.
fn trainset_term() -> Vec<u8> {
    let example = |pairs: &[(&str, &str)]| Term {
        kind: Some(Kind::MapValue(TermMap {
            entries: pairs
                .iter()
                .map(|(k, v)| TermMapEntry {
                    key: Some(Term {
                        kind: Some(Kind::StringValue(k.to_string())),
                    }),
                    value: Some(Term {
                        kind: Some(Kind::StringValue(v.to_string())),
                    }),
                })
                .collect(),
        })),
    };
    Term {
        kind: Some(Kind::ListValue(TermList {
            items: vec![
                example(&[("answer", "2"), ("question", "1+1")]),
                example(&[("question", "2+2"), ("answer", "4")]),
            ],
        })),
    }
    .encode_to_vec()
}

fn expected_digest() -> String {
    let examples = [
        Value::map([("question", "1+1"), ("answer", "2")]),
        Value::map([("question", "2+2"), ("answer", "4")]),
    ];
    format!("{}\n", hex(&hash_trainset(&examples).unwrap()))
}

#[test]
fn hash_trainset_writes_the_hex_digest() {
    let out = run_testee(&["hash-trainset"], &trainset_term());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected_digest());
    assert!(out.stderr.is_empty());
}

#[test]
fn hash_trainset_refusal_is_one_line_and_exit_3() {
    for (input, field, rule) in [
        (&b"\xff\xff"[..], "<input>", "input.malformed"),
        (b"\x32\x01a", "<input>", "input.malformed"),
        (b"\x4a\x04\x0a\x02\x29\x00", "<input>", "input.malformed"),
        // [NaN]
        (
            b"\x4a\x0b\x0a\x09\x29\x00\x00\x00\x00\x00\x00\xf8\x7f",
            "items[0].float_value",
            "float.nan",
        ),
    ] {
        let out = run_testee(&["hash-trainset"], input);
        assert_eq!(out.status.code(), Some(3), "{input:?}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.starts_with(&format!("checkpoint_shape: {field}: ")),
            "{input:?}: {err}"
        );
        assert!(
            err.ends_with(&format!(" (rule {rule})\n")),
            "{input:?}: {err}"
        );
        assert_eq!(err.matches('\n').count(), 1);
        assert!(err.ends_with('\n'));
    }
}

#[test]
fn serve_answers_hash_requests() {
    let mut input = request(Cmd::HashTrainset, &trainset_term());
    input.extend(request(Cmd::Reencode, &valid()));
    input.extend(request(Cmd::HashTrainset, b"\x32\x01a"));
    input.extend(request(Cmd::HashTrainset, b"\x4a\x00"));
    let out = run_testee(&["serve"], &input);
    assert_eq!(out.status.code(), Some(0));
    let answers = responses(&out.stdout);
    assert_eq!(answers.len(), 4);
    let examples = [
        Value::map([("question", "1+1"), ("answer", "2")]),
        Value::map([("question", "2+2"), ("answer", "4")]),
    ];
    assert_eq!(
        answers[0],
        Answer::Output(format!("{}\n", hex(&hash_trainset(&examples).unwrap())).into_bytes())
    );
    assert_eq!(answers[1], Answer::Output(valid()));
    let Answer::Refusal(refusal) = &answers[2] else {
        panic!("{:?}", answers[2])
    };
    assert_eq!(
        (
            refusal.exit_code,
            refusal.path.as_str(),
            refusal.rule.as_str()
        ),
        (3, "<input>", "input.malformed")
    );
    assert_eq!(
        answers[3],
        Answer::Output(format!("{}\n", hex(&hash_trainset(&[]).unwrap())).into_bytes())
    );
}
