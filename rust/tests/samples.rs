//! Hand-built checkpoints: canonical bytes of presence fields, and one
//! refusal (with its field path) for each rule of FORMAT.md §7.

use dsxir_checkpoint::v1::term::Kind;
use dsxir_checkpoint::{
    decode, decode_with_unknown, encode, rules, seal, Checkpoint, Direction, OptionEntry, Progress,
    SamplerFormat, Term, TermList, TermMap, TermMapEntry, TermNull, TrialLogEntry, FORMAT_ID,
    MAX_INPUT_BYTES,
};
use prost::Message;

fn ts(seconds: i64, nanos: i32) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos }
}

fn t(kind: Kind) -> Term {
    Term { kind: Some(kind) }
}

fn s(text: &str) -> Term {
    t(Kind::StringValue(text.into()))
}

fn entry(key: Term, value: Term) -> TermMapEntry {
    TermMapEntry {
        key: Some(key),
        value: Some(value),
    }
}

fn trial(idx: u64, score: Option<f64>, status: i32) -> TrialLogEntry {
    TrialLogEntry {
        trial_idx: idx,
        score,
        status,
        ..Default::default()
    }
}

fn base() -> Checkpoint {
    Checkpoint {
        format: FORMAT_ID.into(),
        session_id: "s1".into(),
        optimizer: "demo.RandomSearch".into(),
        optimizer_opts: vec![OptionEntry {
            key: "seed".into(),
            value: Some(t(Kind::IntValue(7))),
        }],
        program_module: Some("demo.program".into()),
        trainset_hash: vec![0xab; 32],
        created_at: Some(ts(1_700_000_000, 123_000)),
        updated_at: Some(ts(1_700_000_100, 0)),
        progress: Some(Progress {
            trial_log: vec![
                trial(0, Some(0.0), 1),
                TrialLogEntry {
                    stats: Some(TermMap {
                        entries: vec![
                            entry(s("a"), t(Kind::FloatValue(-0.0))),
                            entry(s("b"), s("x")),
                        ],
                    }),
                    ..trial(1, None, 2)
                },
            ],
            best_score: Some(0.0),
            best_trial_idx: Some(0),
            attempts: 3,
            completed: 1,
            errors: 1,
            started_at: Some(ts(1_700_000_000, 0)),
        }),
        best_program_artifact: None,
        sampler_blob: vec![1, 2, 3],
        sampler_format: Some(SamplerFormat {
            module: "demo.RandomSearch".into(),
            version: 1,
        }),
        status: 1,
        terminal_reason: None,
        direction: 0,
    }
}

/// Encodes `cp` without validation (prost and the trailer) and returns the
/// field decode reports.
fn refused(cp: &Checkpoint) -> String {
    let err = decode(&seal(&cp.encode_to_vec())).expect_err("must be refused");
    assert_eq!(err.reason, "checkpoint_shape");
    err.field
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn valid_checkpoint_round_trips() {
    let cp = base();
    let bytes = encode(&cp).unwrap();
    let back = decode(&bytes).expect("valid");
    assert_eq!(back, cp);
    assert_eq!(encode(&back).unwrap(), bytes);
}

#[test]
fn explicit_zero_and_negative_zero_are_written() {
    let bytes = encode(&base()).unwrap();
    // TrialLogEntry.score = 0.0 (field 3, fixed64) and best_score (field 2).
    assert!(contains(&bytes, &[0x19, 0, 0, 0, 0, 0, 0, 0, 0]));
    assert!(contains(&bytes, &[0x11, 0, 0, 0, 0, 0, 0, 0, 0]));
    // Term.float_value = -0.0 (field 5): sign bit set.
    assert!(contains(&bytes, &[0x29, 0, 0, 0, 0, 0, 0, 0, 0x80]));
    // An unset score writes nothing: trial 1 is trial_idx 1, status 2, stats.
    let term = t(Kind::FloatValue(-0.0));
    assert_eq!(term.encode_to_vec(), [0x29, 0, 0, 0, 0, 0, 0, 0, 0x80]);
    let zero_int = t(Kind::IntValue(0));
    assert_eq!(zero_int.encode_to_vec(), [0x18, 0]);
    let false_bool = t(Kind::BoolValue(false));
    assert_eq!(false_bool.encode_to_vec(), [0x10, 0]);
    let null = t(Kind::NullValue(TermNull {}));
    assert_eq!(null.encode_to_vec(), [0x0a, 0]);
    let empty = t(Kind::StringValue(String::new()));
    assert_eq!(empty.encode_to_vec(), [0x32, 0]);
}

#[test]
fn non_canonical_input_is_refused() {
    let cp = base();
    let body = cp.encode_to_vec();
    // session_id written twice and format moved to the end.
    let mut shuffled = vec![0x12, 1, b'x'];
    let format_len = 2 + FORMAT_ID.len();
    shuffled.extend_from_slice(&body[format_len..]);
    shuffled.extend_from_slice(&body[..format_len]);
    let err = decode(&seal(&shuffled)).unwrap_err();
    assert_eq!(
        (err.rule, err.field.as_str()),
        (Some(rules::WIRE_ORDER), "<input>")
    );
}

#[test]
fn unknown_fields_are_kept_byte_for_byte() {
    let body = base().encode_to_vec();
    // Field 99 (varint) and field 100 (length-delimited) at the top level.
    let newer = seal(
        &[
            body.as_slice(),
            &[0x98, 0x06, 0x01, 0xa2, 0x06, 0x02, b'h', b'i'],
        ]
        .concat(),
    );
    let decoded = decode_with_unknown(&newer).expect("a newer minor is accepted");
    assert_eq!(decoded.unknown.len(), 1);
    assert_eq!(decoded.encode().unwrap(), newer);
    // decode alone leaves them out.
    assert_eq!(encode(&decode(&newer).unwrap()).unwrap(), seal(&body));
}

/// Direction (field 15, v1.1): lower is written after terminal_reason;
/// higher, the default, is not written, and an explicit 0 on the wire is
/// refused as a written default.
#[test]
fn direction_is_written_last_unless_higher() {
    let mut cp = base();
    assert_eq!(cp.direction(), Direction::Higher);
    let higher = cp.encode_to_vec();
    assert_eq!(encode(&cp).unwrap(), seal(&higher));
    cp.set_direction(Direction::Lower);
    let lower = encode(&cp).unwrap();
    assert_eq!(lower, seal(&[higher.as_slice(), &[0x78, 0x01]].concat()));
    assert_eq!(decode(&lower).unwrap().direction(), Direction::Lower);
    let err = decode(&seal(&[higher.as_slice(), &[0x78, 0x00]].concat())).unwrap_err();
    assert_eq!(
        (err.rule, err.field.as_str()),
        (Some(rules::WIRE_DEFAULT), "direction")
    );
    let err = decode(&seal(&[higher.as_slice(), &[0x78, 0x02]].concat())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "checkpoint_shape: direction: unknown direction 2 (rule direction.known)"
    );
    // A direction of the wrong wire type is refused.
    let err = decode(&seal(&[higher.as_slice(), &[0x7a, 0x00]].concat())).unwrap_err();
    assert_eq!(
        (err.rule, err.field.as_str()),
        (Some(rules::WIRE_TAG), "<input>")
    );
}

#[test]
fn input_limits() {
    let err = decode(&vec![0u8; MAX_INPUT_BYTES + 1]).unwrap_err();
    assert_eq!(err.field, "<input>");
    assert_eq!(err.rule, Some(rules::INPUT_TOO_LARGE));
    let err = decode(&[0x0a, 0x05, b'a']).unwrap_err();
    assert_eq!(err.field, "<input>");
    assert_eq!(err.rule, Some(rules::INPUT_TRAILER));
    let err = decode(&seal(&[0x0a, 0x05, b'a'])).unwrap_err();
    assert_eq!(
        (err.rule, err.field.as_str()),
        (Some(rules::WIRE_TRUNCATED), "<input>")
    );
    // Invalid UTF-8 in a string field.
    let err = decode(&seal(&[0x0a, 0x01, 0xff])).unwrap_err();
    assert_eq!(err.field, "format");
    assert_eq!(
        err.to_string(),
        format!("checkpoint_shape: format: {} (rule wire.utf8)", err.detail)
    );
    // An empty body passes the grammar and is refused by the format check.
    assert_eq!(decode(&seal(&[])).unwrap_err().field, "format");
}

#[test]
fn format_identifier() {
    for (id, ok) in [
        ("dsxir.optimizer_session.checkpoint/v1.0", true),
        ("dsxir.optimizer_session.checkpoint/v1.17", true),
        ("dsxir.optimizer_session.checkpoint/v2.0", false),
        ("dsxir.optimizer_session.checkpoint/v01.0", false),
        ("dsxir.optimizer_session.checkpoint/v1.00", false),
        ("dsxir.optimizer_session.checkpoint/v1", false),
        ("dsxir.optimizer_session.checkpoint/v1.0 ", false),
        ("other/v1.0", false),
        ("", false),
    ] {
        let mut cp = base();
        cp.format = id.into();
        let result = decode(&seal(&cp.encode_to_vec()));
        assert_eq!(result.is_ok(), ok, "{id:?}");
        if !ok {
            assert_eq!(result.unwrap_err().field, "format");
        }
    }
}

#[test]
fn checkpoint_rules_name_their_field() {
    type Edit = fn(&mut Checkpoint);
    let cases: Vec<(&str, Edit)> = vec![
        ("session_id", |c| c.session_id.clear()),
        ("optimizer", |c| c.optimizer.clear()),
        ("optimizer_opts[0].key", |c| c.optimizer_opts[0].key.clear()),
        ("optimizer_opts[0].value", |c| {
            c.optimizer_opts[0].value = None
        }),
        ("optimizer_opts[0].value", |c| {
            c.optimizer_opts[0].value = Some(Term { kind: None })
        }),
        ("program_module", |c| c.program_module = Some(String::new())),
        ("trainset_hash", |c| {
            c.trainset_hash.pop().map(|_| ()).unwrap()
        }),
        ("created_at", |c| c.created_at = None),
        ("created_at.nanos", |c| {
            c.created_at = Some(ts(0, 1_000_000_000))
        }),
        ("updated_at.seconds", |c| {
            c.updated_at = Some(ts(253_402_300_800, 0))
        }),
        ("updated_at.seconds", |c| {
            c.updated_at = Some(ts(-62_135_596_801, 0))
        }),
        ("progress", |c| c.progress = None),
        ("progress.trial_log[1].trial_idx", |c| {
            c.progress.as_mut().unwrap().trial_log[1].trial_idx = 5
        }),
        ("progress.trial_log[0].score", |c| {
            c.progress.as_mut().unwrap().trial_log[0].score = Some(f64::NAN)
        }),
        ("progress.trial_log[0].status", |c| {
            c.progress.as_mut().unwrap().trial_log[0].status = 0
        }),
        ("progress.trial_log[1].status", |c| {
            c.progress.as_mut().unwrap().trial_log[1].status = 3
        }),
        ("progress.trial_log[1].stats.entries[1].key", |c| {
            let stats = c.progress.as_mut().unwrap().trial_log[1]
                .stats
                .as_mut()
                .unwrap();
            stats.entries.swap(0, 1);
        }),
        ("progress.started_at", |c| {
            c.progress.as_mut().unwrap().started_at = None
        }),
        ("progress.best_score", |c| {
            c.progress.as_mut().unwrap().best_score = Some(f64::NAN)
        }),
        ("progress.best_score", |c| {
            c.progress.as_mut().unwrap().best_score = None
        }),
        ("progress.best_trial_idx", |c| {
            c.progress.as_mut().unwrap().best_trial_idx = None
        }),
        ("progress.best_trial_idx", |c| {
            c.progress.as_mut().unwrap().best_trial_idx = Some(2)
        }),
        ("progress.best_trial_idx", |c| {
            c.progress.as_mut().unwrap().best_trial_idx = Some(1)
        }),
        ("progress.best_trial_idx", |c| {
            c.progress.as_mut().unwrap().best_score = Some(-0.0)
        }),
        ("progress.completed", |c| {
            c.progress.as_mut().unwrap().completed = 2
        }),
        ("progress.errors", |c| {
            c.progress.as_mut().unwrap().errors = 0
        }),
        ("progress.attempts", |c| {
            c.progress.as_mut().unwrap().attempts = 1
        }),
        ("best_program_artifact.entries[0]", |c| {
            c.best_program_artifact = Some(TermMap {
                entries: vec![TermMapEntry {
                    key: None,
                    value: Some(s("v")),
                }],
            })
        }),
        ("sampler_format", |c| c.sampler_format = None),
        ("sampler_format.module", |c| {
            c.sampler_format.as_mut().unwrap().module.clear()
        }),
        ("sampler_format.version", |c| {
            c.sampler_format.as_mut().unwrap().version = 0
        }),
        ("status", |c| c.status = 0),
        ("status", |c| c.status = 6),
        ("terminal_reason", |c| {
            c.terminal_reason = Some(Term { kind: None })
        }),
        ("direction", |c| c.direction = 2),
        ("direction", |c| c.direction = -1),
        ("terminal_reason", |c| {
            c.direction = 2;
            c.terminal_reason = Some(Term { kind: None })
        }),
    ];
    for (field, edit) in cases {
        let mut cp = base();
        edit(&mut cp);
        assert_eq!(refused(&cp), field);
    }
}

#[test]
fn first_failure_in_order_is_reported() {
    let mut cp = base();
    cp.status = 0;
    cp.session_id.clear();
    assert_eq!(refused(&cp), "session_id");
}

fn with_reason(term: Term) -> Checkpoint {
    let mut cp = base();
    cp.terminal_reason = Some(term);
    cp
}

fn nested_list(depth: usize) -> Term {
    let mut term = t(Kind::NullValue(TermNull {}));
    for _ in 1..depth {
        term = t(Kind::ListValue(TermList { items: vec![term] }));
    }
    term
}

#[test]
fn term_rules_name_their_field() {
    let too_deep = String::from("terminal_reason") + &".list_value.items[0]".repeat(24);
    let cases: Vec<(Term, &str)> = vec![
        (t(Kind::FloatValue(f64::NAN)), "terminal_reason.float_value"),
        (t(Kind::BigintValue(vec![])), "terminal_reason.bigint_value"),
        (
            t(Kind::BigintValue(vec![0x7f])),
            "terminal_reason.bigint_value",
        ),
        (
            t(Kind::BigintValue(vec![0x00, 0x7f, 0, 0, 0, 0, 0, 0, 0])),
            "terminal_reason.bigint_value",
        ),
        (
            t(Kind::BigintValue(vec![0xff, 0x80, 0, 0, 0, 0, 0, 0, 0])),
            "terminal_reason.bigint_value",
        ),
        (
            t(Kind::TupleValue(TermList {
                items: vec![s("ok"), Term { kind: None }],
            })),
            "terminal_reason.tuple_value.items[1]",
        ),
        (
            t(Kind::MapValue(TermMap {
                entries: vec![entry(s("k"), s("v")), entry(s("k"), s("w"))],
            })),
            "terminal_reason.map_value.entries[1].key",
        ),
        (
            t(Kind::MapValue(TermMap {
                entries: vec![TermMapEntry {
                    key: Some(s("k")),
                    value: None,
                }],
            })),
            "terminal_reason.map_value.entries[0]",
        ),
        (
            t(Kind::MapValue(TermMap {
                entries: vec![entry(s("k"), t(Kind::FloatValue(f64::NAN)))],
            })),
            "terminal_reason.map_value.entries[0].value.float_value",
        ),
        (nested_list(25), &too_deep),
    ];
    for (term, field) in cases {
        assert_eq!(refused(&with_reason(term)), field);
    }
}

#[test]
fn term_values_that_are_kept() {
    let ok = [
        nested_list(24),
        t(Kind::FloatValue(f64::INFINITY)),
        t(Kind::FloatValue(f64::NEG_INFINITY)),
        // 2^63 and -2^63-1 (FORMAT.md §3.3).
        t(Kind::BigintValue(vec![0x00, 0x80, 0, 0, 0, 0, 0, 0, 0])),
        t(Kind::BigintValue(vec![
            0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ])),
        // A proper prefix sorts first: "a" < "ab".
        t(Kind::MapValue(TermMap {
            entries: vec![entry(s("a"), s("1")), entry(s("ab"), s("2"))],
        })),
    ];
    for term in ok {
        let cp = with_reason(term);
        let bytes = encode(&cp).unwrap();
        assert_eq!(encode(&decode(&bytes).expect("valid")).unwrap(), bytes);
    }
}

#[test]
fn term_map_fields_count_as_depth_one() {
    // stats is a map of depth 1, so a value in it may nest 23 more levels.
    let stats_with = |depth: usize| {
        let mut cp = base();
        cp.progress.as_mut().unwrap().trial_log[1].stats = Some(TermMap {
            entries: vec![entry(s("deep"), nested_list(depth))],
        });
        cp
    };
    assert!(decode(&encode(&stats_with(23)).unwrap()).is_ok());
    let field = refused(&stats_with(24));
    assert!(
        field.starts_with("progress.trial_log[1].stats.entries[0].value.list_value.items[0]"),
        "{field}"
    );
}

#[test]
fn mutated_checkpoints_get_a_verdict_and_a_fixed_point() {
    // xorshift64*: a deterministic sequence without a dependency.
    let mut state: u64 = 0x2026_0101_dead_beef;
    let mut next = move |bound: usize| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % bound
    };
    // Damaged bodies under a correct trailer, so that the grammar and the
    // rules see them.
    let canonical = base().encode_to_vec();
    let mut accepted = 0;
    for _ in 0..3000 {
        let mut data = canonical.clone();
        for _ in 0..1 + next(3) {
            let at = next(data.len());
            data[at] ^= 1 << next(8);
        }
        match decode(&seal(&data)) {
            Ok(cp) => {
                accepted += 1;
                let once = encode(&cp).unwrap();
                let again = decode(&once).expect("a re-encoding is valid");
                assert_eq!(again, cp);
                assert_eq!(encode(&again).unwrap(), once);
            }
            Err(e) => {
                assert_eq!(e.reason, "checkpoint_shape");
                assert!(!e.field.is_empty());
            }
        }
    }
    assert!(accepted > 0 && accepted < 3000, "accepted {accepted}");
}

#[test]
fn fields_of_the_wrong_wire_type_and_long_varints_are_refused() {
    let body = base().encode_to_vec();
    // direction (15) written as fixed64 at the end: a known field of another
    // wire type.
    let input = [body.as_slice(), &[0x79, 1, 0, 0, 0, 0, 0, 0, 0]].concat();
    let err = decode(&seal(&input)).unwrap_err();
    assert_eq!(
        (err.rule, err.field.as_str()),
        (Some(rules::WIRE_TAG), "<input>")
    );
    // status (13) again after status: a singular field twice.
    let input = [body.as_slice(), &[0x69, 1, 0, 0, 0, 0, 0, 0, 0]].concat();
    let err = decode(&seal(&input)).unwrap_err();
    assert_eq!(
        (err.rule, err.field.as_str()),
        (Some(rules::WIRE_ORDER), "<input>")
    );
    // A 10-byte varint with excess bits in its last byte.
    let long = [
        body.as_slice(),
        &[
            0x78, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7e,
        ],
    ]
    .concat();
    let err = decode(&seal(&long)).unwrap_err();
    assert_eq!(
        (err.rule, err.field.as_str()),
        (Some(rules::WIRE_VARINT), "direction")
    );
}
