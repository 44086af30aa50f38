//! The resume gate (FORMAT.md §8) and the state transitions (§9).

use std::fs;
use std::path::PathBuf;

use dsxir_checkpoint::v1::term::Kind;
use dsxir_checkpoint::{
    cancel, check_resume, check_resume_trainset, complete, decode, direction_name, encode, fail,
    hash_trainset, is_terminal, pause, record_trial, resume, status_name, validate,
    AlreadyTerminal, Checkpoint, CheckpointError, Direction, GateValue, InvalidTransition,
    Progress, ResumeMismatch, SamplerFormat, SessionStatus, Term, Trial, TrialOutcome, Value,
    FORMAT_ID,
};

const OLD: prost_types::Timestamp = prost_types::Timestamp {
    seconds: 1_767_225_600,
    nanos: 0,
};

fn trainset() -> Vec<Value> {
    vec![
        Value::map([("question", "1+1"), ("answer", "2")]),
        Value::map([("question", "2+2"), ("answer", "4")]),
    ]
}

fn checkpoint(status: SessionStatus) -> Checkpoint {
    Checkpoint {
        format: FORMAT_ID.into(),
        session_id: "s1".into(),
        optimizer: "demo.A".into(),
        trainset_hash: hash_trainset(&trainset()).unwrap().to_vec(),
        created_at: Some(OLD),
        updated_at: Some(OLD),
        progress: Some(Progress {
            started_at: Some(OLD),
            ..Default::default()
        }),
        sampler_format: Some(SamplerFormat {
            module: "samp.A".into(),
            version: 1,
        }),
        status: status as i32,
        ..Default::default()
    }
}

fn mismatch(result: Result<(), CheckpointError>) -> ResumeMismatch {
    match result {
        Err(CheckpointError::ResumeMismatch(e)) => e,
        other => panic!("expected a ResumeMismatch, got {other:?}"),
    }
}

// --- the resume gate ------------------------------------------------------------------

#[test]
fn gate_messages_equal_pythons() {
    // str(dsxir.errors.ResumeMismatch(...)) for the same values.
    let cp = checkpoint(SessionStatus::Running);
    let e = mismatch(check_resume(&cp, "demo.B", "samp.A", &[1], None, None));
    assert_eq!(
        (e.reason, e.session_id.as_deref()),
        ("optimizer", Some("s1"))
    );
    assert_eq!(e.expected(), &GateValue::Text("demo.B".into()));
    assert_eq!(e.got(), &GateValue::Text("demo.A".into()));
    assert_eq!(
        e.to_string(),
        "cannot resume session \"s1\": optimizer: the checkpoint was written by optimizer \
         demo.A; this run is demo.B. Resume with demo.A, or start a new session."
    );

    let e = mismatch(check_resume(&cp, "demo.A", "samp.B", &[1], None, None));
    assert_eq!(e.reason, "sampler_format");
    assert_eq!(
        e.to_string(),
        "cannot resume session \"s1\": sampler_format: the checkpoint's sampler is samp.A; \
         this run's is samp.B. Resume with sampler samp.A, or start a new session."
    );

    let e = mismatch(check_resume(&cp, "demo.A", "samp.A", &[2], None, None));
    assert_eq!(e.reason, "sampler_version");
    assert_eq!(
        (e.expected().clone(), e.got().clone()),
        (GateValue::Version(2), GateValue::Version(1))
    );
    assert_eq!(
        e.to_string(),
        "cannot resume session \"s1\": sampler_version: the checkpoint holds sampler state \
         version 1; this run accepts 2. Accept version 1 if the sampler can read it, or start \
         a new session."
    );

    // A set of versions, shown in ascending order without repeats.
    let e = mismatch(check_resume(
        &cp,
        "demo.A",
        "samp.A",
        &[10, 3, 2, 3],
        None,
        None,
    ));
    assert_eq!(e.expected(), &GateValue::Versions(vec![2, 3, 10]));
    assert_eq!(
        e.to_string(),
        "cannot resume session \"s1\": sampler_version: the checkpoint holds sampler state \
         version 1; this run accepts [2,3,10]. Accept version 1 if the sampler can read it, or \
         start a new session."
    );
    let e = mismatch(check_resume(&cp, "demo.A", "samp.A", &[], None, None));
    assert!(e.to_string().contains("this run accepts []."), "{e}");

    let mut cp7 = cp.clone();
    cp7.trainset_hash = vec![7; 32];
    let e = mismatch(check_resume(
        &cp7,
        "demo.A",
        "samp.A",
        &[1],
        Some(&[0xab; 32]),
        None,
    ));
    assert_eq!(e.reason, "trainset_hash");
    assert_eq!(e.expected(), &GateValue::Hash(vec![0xab; 32]));
    assert_eq!(
        e.to_string(),
        "cannot resume session \"s1\": trainset_hash: the checkpoint was made on the trainset \
         with hash 0707070707070707070707070707070707070707070707070707070707070707; this \
         run's hash is abababababababababababababababababababababababababababababababab. Pass \
         the same trainset, or start a new session."
    );
}

/// The texts of FORMAT.md §8's table, with `<got>` and `<expected>` filled in.
#[test]
fn gate_messages_follow_the_table_of_format_md() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../FORMAT.md");
    let text = fs::read_to_string(&path).expect("FORMAT.md");
    let template = |reason: &str| -> String {
        let start = format!("| `{reason}` | `");
        let line = text
            .lines()
            .find(|l| l.starts_with(&start))
            .unwrap_or_else(|| panic!("FORMAT.md has no row for {reason}"));
        line[start.len()..]
            .trim_end()
            .strip_suffix("` |")
            .expect("row ends with a code cell")
            .to_string()
    };
    let mut cp = checkpoint(SessionStatus::Paused);
    cp.trainset_hash = vec![0x01; 32];
    let cases: [(&str, ResumeMismatch, &str, &str); 4] = [
        (
            "optimizer",
            mismatch(check_resume(&cp, "demo.B", "samp.A", &[1], None, None)),
            "demo.A",
            "demo.B",
        ),
        (
            "sampler_format",
            mismatch(check_resume(&cp, "demo.A", "samp.B", &[1], None, None)),
            "samp.A",
            "samp.B",
        ),
        (
            "sampler_version",
            mismatch(check_resume(&cp, "demo.A", "samp.A", &[3, 2], None, None)),
            "1",
            "[2,3]",
        ),
        (
            "trainset_hash",
            mismatch(check_resume(
                &cp,
                "demo.A",
                "samp.A",
                &[1],
                Some(&[0x02; 32]),
                None,
            )),
            &"01".repeat(32),
            &"02".repeat(32),
        ),
    ];
    for (reason, e, got, expected) in cases {
        let body = template(reason)
            .replace("<got>", got)
            .replace("<expected>", expected);
        assert_eq!(
            e.to_string(),
            format!("cannot resume session \"s1\": {reason}: {body}")
        );
    }
    // The example under the table.
    let e = mismatch(check_resume(&cp, "demo.A", "samp.A", &[2], None, None));
    assert_eq!(
        e.to_string(),
        "cannot resume session \"s1\": sampler_version: the checkpoint holds sampler state \
         version 1; this run accepts 2. Accept version 1 if the sampler can read it, or start \
         a new session."
    );
}

#[test]
fn gate_compares_the_direction_last_when_given() {
    let mut cp = checkpoint(SessionStatus::Running);
    let hash = cp.trainset_hash.clone();
    let lower = Some(Direction::Lower);
    let e = mismatch(check_resume(&cp, "demo.A", "samp.A", &[1], None, lower));
    assert_eq!(e.reason, "direction");
    assert_eq!(e.expected(), &GateValue::Text("lower".into()));
    assert_eq!(e.got(), &GateValue::Text("higher".into()));
    assert_eq!(
        e.to_string(),
        "cannot resume session \"s1\": direction: the checkpoint's scores are better when \
         higher; this run's are better when lower. Resume with direction higher, or start a new \
         session."
    );
    // The trainset is checked before the direction.
    let e = mismatch(check_resume(
        &cp,
        "demo.A",
        "samp.A",
        &[1],
        Some(&[0; 32]),
        lower,
    ));
    assert_eq!(e.reason, "trainset_hash");
    let mut other = trainset();
    other.reverse();
    let e = mismatch(check_resume_trainset(
        &cp,
        "demo.A",
        "samp.A",
        &[1],
        &other,
        lower,
    ));
    assert_eq!(e.reason, "trainset_hash");
    let e = mismatch(check_resume_trainset(
        &cp,
        "demo.A",
        "samp.A",
        &[1],
        &trainset(),
        lower,
    ));
    assert_eq!(e.reason, "direction");
    cp.set_direction(Direction::Lower);
    assert_eq!(direction_name(&cp), Some("lower"));
    assert_eq!(
        check_resume(&cp, "demo.A", "samp.A", &[1], Some(&hash), lower),
        Ok(())
    );
    assert_eq!(
        check_resume(&cp, "demo.A", "samp.A", &[1], None, None),
        Ok(())
    );
    let e = mismatch(check_resume(
        &cp,
        "demo.A",
        "samp.A",
        &[1],
        None,
        Some(Direction::Higher),
    ));
    assert_eq!(
        (e.expected(), e.got()),
        (
            &GateValue::Text("higher".into()),
            &GateValue::Text("lower".into())
        )
    );
    // A direction the format does not define is a checkpoint_shape refusal.
    cp.direction = 2;
    assert_eq!(direction_name(&cp), None);
    let e = mismatch(check_resume(&cp, "demo.A", "samp.A", &[1], None, lower));
    assert_eq!(
        e.to_string(),
        "checkpoint_shape: direction: unknown direction 2 (rule direction.known)"
    );
}

#[test]
fn gate_checks_in_order() {
    // Everything differs: terminal first, then optimizer, sampler, version, hash.
    for status in [
        SessionStatus::Completed,
        SessionStatus::Failed,
        SessionStatus::Cancelled,
    ] {
        let cp = checkpoint(status);
        let err = check_resume(&cp, "x", "y", &[9], Some(&[0; 32]), None).unwrap_err();
        let name = status_name(&cp);
        assert_eq!(
            err,
            CheckpointError::AlreadyTerminal(AlreadyTerminal {
                session_id: "s1".into(),
                status: name,
            })
        );
        assert_eq!(
            err.to_string(),
            format!("session \"s1\" is already terminal: status={name}")
        );
    }
    let cp = checkpoint(SessionStatus::Running);
    let reason = |opt, module, versions: &[u32], hash: Option<&[u8]>| {
        mismatch(check_resume(&cp, opt, module, versions, hash, None)).reason
    };
    assert_eq!(reason("x", "y", &[9], Some(&[0; 32])), "optimizer");
    assert_eq!(
        reason("demo.A", "y", &[9], Some(&[0; 32])),
        "sampler_format"
    );
    assert_eq!(
        reason("demo.A", "samp.A", &[9], Some(&[0; 32])),
        "sampler_version"
    );
    assert_eq!(
        reason("demo.A", "samp.A", &[9, 1], Some(&[0; 32])),
        "trainset_hash"
    );
    // Running and paused sessions resume; the trainset is checked only when given.
    for status in [SessionStatus::Running, SessionStatus::Paused] {
        let cp = checkpoint(status);
        let hash = cp.trainset_hash.clone();
        assert_eq!(
            check_resume(&cp, "demo.A", "samp.A", &[1], None, None),
            Ok(())
        );
        assert_eq!(
            check_resume(&cp, "demo.A", "samp.A", &[2, 1], Some(&hash), None),
            Ok(())
        );
        assert_eq!(
            check_resume_trainset(&cp, "demo.A", "samp.A", &[1], &trainset(), None),
            Ok(())
        );
        let mut other = trainset();
        other.reverse();
        let e = mismatch(check_resume_trainset(
            &cp,
            "demo.A",
            "samp.A",
            &[1],
            &other,
            None,
        ));
        assert_eq!(e.reason, "trainset_hash");
        assert_eq!(e.got(), &GateValue::Hash(hash));
        // A trainset with no Term form is refused once the other checks pass.
        let bad = [Value::Float(f64::NAN)];
        match check_resume_trainset(&cp, "demo.A", "samp.A", &[1], &bad, None) {
            Err(CheckpointError::InvalidCheckpoint(e)) => assert_eq!(e.path, "trainset[0]"),
            other => panic!("{other:?}"),
        }
        let e = mismatch(check_resume_trainset(
            &cp,
            "demo.B",
            "samp.A",
            &[1],
            &bad,
            None,
        ));
        assert_eq!(e.reason, "optimizer");
    }
}

#[test]
fn decode_refusals_keep_their_form() {
    let mut cp = checkpoint(SessionStatus::Running);
    cp.trainset_hash = vec![1; 3];
    let mut bytes = Vec::new();
    prost::Message::encode(&cp, &mut bytes).unwrap();
    let e = decode(&dsxir_checkpoint::seal(&bytes)).unwrap_err();
    assert_eq!(e.reason, "checkpoint_shape");
    assert_eq!(e.session_id.as_deref(), Some("s1"));
    assert_eq!(e.field, "trainset_hash");
    assert_eq!(
        e.to_string(),
        "checkpoint_shape: trainset_hash: must be 32 bytes (SHA-256), got 3 \
         (rule trainset_hash.length)"
    );
}

// --- statuses and transitions -------------------------------------------------------

#[test]
fn status_names() {
    let name = |status: i32| {
        status_name(&Checkpoint {
            status,
            ..Default::default()
        })
    };
    assert_eq!(
        (1..=5).map(name).collect::<Vec<_>>(),
        ["running", "paused", "completed", "failed", "cancelled"]
    );
    assert_eq!(name(0), "unspecified");
    assert_eq!(name(9), "unspecified");
    assert!(!is_terminal(&checkpoint(SessionStatus::Running)));
    assert!(!is_terminal(&checkpoint(SessionStatus::Paused)));
    assert!(is_terminal(&checkpoint(SessionStatus::Completed)));
    assert!(is_terminal(&checkpoint(SessionStatus::Failed)));
    assert!(is_terminal(&checkpoint(SessionStatus::Cancelled)));
}

fn ok_trial(score: Option<f64>) -> Trial {
    Trial {
        score,
        ..Default::default()
    }
}

fn best(cp: &Checkpoint) -> (Option<f64>, Option<u64>) {
    let p = cp.progress.as_ref().unwrap();
    (p.best_score, p.best_trial_idx)
}

#[test]
fn record_trial_counts_and_tracks_the_best() {
    let mut cp = checkpoint(SessionStatus::Running);
    // An ok trial without a score is never best.
    assert_eq!(record_trial(&mut cp, ok_trial(None)), Ok(0));
    assert_eq!(best(&cp), (None, None));
    // The first scored ok trial is best, even when negative.
    assert_eq!(record_trial(&mut cp, ok_trial(Some(-1.0))), Ok(1));
    assert_eq!(best(&cp), (Some(-1.0), Some(1)));
    assert_eq!(record_trial(&mut cp, ok_trial(Some(0.5))), Ok(2));
    assert_eq!(best(&cp), (Some(0.5), Some(2)));
    // Equal scores: the first stays best.
    assert_eq!(record_trial(&mut cp, ok_trial(Some(0.5))), Ok(3));
    assert_eq!(best(&cp), (Some(0.5), Some(2)));
    // An error trial is never best, whatever its score.
    let error = Trial {
        score: Some(9.0),
        outcome: TrialOutcome::Error,
        error: Some(vec![
            (Value::from("class"), Value::from("ValueError")),
            (Value::from("message"), Value::from("boom")),
        ]),
        error_class: Some("ValueError".into()),
        duration_ms: 12,
        ..Default::default()
    };
    assert_eq!(record_trial(&mut cp, error), Ok(4));
    assert_eq!(best(&cp), (Some(0.5), Some(2)));
    // Lower: not best. Higher: best.
    assert_eq!(record_trial(&mut cp, ok_trial(Some(0.25))), Ok(5));
    assert_eq!(best(&cp), (Some(0.5), Some(2)));
    let better = Trial {
        score: Some(0.75),
        candidate_id: Some("c7".into()),
        stats: Some(vec![(Value::from("tokens"), Value::Int(120))]),
        duration_ms: 5,
        sampler_blob: Some(b"state-7".to_vec()),
        best_program_artifact: Some(vec![(Value::from("prompt"), Value::from("p7"))]),
        ..Default::default()
    };
    assert_eq!(record_trial(&mut cp, better), Ok(6));
    assert_eq!(best(&cp), (Some(0.75), Some(6)));

    let p = cp.progress.as_ref().unwrap();
    assert_eq!((p.attempts, p.completed, p.errors), (7, 6, 1));
    for (i, entry) in p.trial_log.iter().enumerate() {
        assert_eq!(entry.trial_idx, i as u64);
    }
    let e = &p.trial_log[4];
    assert_eq!((e.status, e.duration_ms, e.score), (2, 12, Some(9.0)));
    assert_eq!(e.error_class.as_deref(), Some("ValueError"));
    assert!(e.error.is_some() && e.stats.is_none());
    let e = &p.trial_log[6];
    assert_eq!(e.candidate_id.as_deref(), Some("c7"));
    assert!(e.stats.is_some());
    assert_eq!(cp.sampler_blob, b"state-7");
    assert!(cp.best_program_artifact.is_some());
    // The result is a valid checkpoint that round-trips.
    validate(&cp).unwrap();
    assert_eq!(decode(&encode(&cp).unwrap()).unwrap(), cp);
    assert_ne!(cp.updated_at, Some(OLD));
}

#[test]
fn negative_zero_does_not_beat_zero() {
    let mut cp = checkpoint(SessionStatus::Running);
    record_trial(&mut cp, ok_trial(Some(0.0))).unwrap();
    record_trial(&mut cp, ok_trial(Some(-0.0))).unwrap();
    let (score, idx) = best(&cp);
    assert_eq!(
        (score.map(f64::to_bits), idx),
        (Some(0.0f64.to_bits()), Some(0))
    );
    // An explicit 0.0 differs from no score.
    let p = cp.progress.as_ref().unwrap();
    assert_eq!(
        p.trial_log[1].score.map(f64::to_bits),
        Some((-0.0f64).to_bits())
    );
    validate(&cp).unwrap();
}

#[test]
fn lower_is_better_when_the_direction_is_lower() {
    let mut cp = checkpoint(SessionStatus::Running);
    cp.set_direction(Direction::Lower);
    assert_eq!(record_trial(&mut cp, ok_trial(None)), Ok(0));
    assert_eq!(best(&cp), (None, None));
    // The first score is best; a greater one is not; a lower one is.
    record_trial(&mut cp, ok_trial(Some(2.0))).unwrap();
    assert_eq!(best(&cp), (Some(2.0), Some(1)));
    record_trial(&mut cp, ok_trial(Some(3.0))).unwrap();
    assert_eq!(best(&cp), (Some(2.0), Some(1)));
    record_trial(&mut cp, ok_trial(Some(0.0))).unwrap();
    assert_eq!(best(&cp), (Some(0.0), Some(3)));
    // Equal scores: the first stays best, and -0.0 is not lower than 0.0.
    record_trial(&mut cp, ok_trial(Some(-0.0))).unwrap();
    record_trial(&mut cp, ok_trial(Some(0.0))).unwrap();
    let (score, idx) = best(&cp);
    assert_eq!(
        (score.map(f64::to_bits), idx),
        (Some(0.0f64.to_bits()), Some(3))
    );
    // An error trial is never best, whatever its score.
    let error = Trial {
        score: Some(-9.0),
        outcome: TrialOutcome::Error,
        ..Default::default()
    };
    record_trial(&mut cp, error).unwrap();
    assert_eq!(best(&cp), (Some(0.0), Some(3)));
    record_trial(&mut cp, ok_trial(Some(f64::NEG_INFINITY))).unwrap();
    assert_eq!(best(&cp), (Some(f64::NEG_INFINITY), Some(7)));
    validate(&cp).unwrap();
    assert_eq!(decode(&encode(&cp).unwrap()).unwrap(), cp);
}

#[test]
fn record_trial_refuses_an_unknown_direction() {
    let mut cp = checkpoint(SessionStatus::Running);
    cp.direction = 2;
    let before = cp.clone();
    let err = record_trial(&mut cp, ok_trial(Some(1.0))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "direction: unknown direction 2 (rule direction.known)"
    );
    assert_eq!(cp, before);
}

#[test]
fn record_trial_refuses_before_changing_anything() {
    let mut cp = checkpoint(SessionStatus::Running);
    let before = cp.clone();
    let err = record_trial(&mut cp, ok_trial(Some(f64::NAN))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "score: NaN is not allowed (rule float.nan)"
    );
    assert_eq!(cp, before);
    let bad_stats = Trial {
        score: Some(1.0),
        stats: Some(vec![(Value::from("loss"), Value::Float(f64::NAN))]),
        ..Default::default()
    };
    let err = record_trial(&mut cp, bad_stats).unwrap_err();
    assert_eq!(
        err.to_string(),
        "stats[\"loss\"]: NaN is not allowed (rule float.nan)"
    );
    let bad_error = Trial {
        outcome: TrialOutcome::Error,
        error: Some(vec![
            (Value::from("k"), Value::Null),
            (Value::from("k"), Value::Null),
        ]),
        ..Default::default()
    };
    match record_trial(&mut cp, bad_error).unwrap_err() {
        CheckpointError::InvalidCheckpoint(e) => assert_eq!(e.path, "error"),
        other => panic!("{other:?}"),
    }
    let bad_artifact = Trial {
        best_program_artifact: Some(vec![(Value::from("x"), Value::Float(f64::NAN))]),
        ..Default::default()
    };
    let err = record_trial(&mut cp, bad_artifact).unwrap_err();
    assert_eq!(
        err.to_string(),
        "best_program_artifact[\"x\"]: NaN is not allowed (rule float.nan)"
    );
    assert_eq!(cp, before);
}

#[test]
fn transitions_follow_the_table() {
    let invalid = |status: &'static str, action: &'static str| {
        CheckpointError::InvalidTransition(InvalidTransition {
            session_id: "s1".into(),
            status,
            action,
        })
    };
    // running
    let mut cp = checkpoint(SessionStatus::Running);
    assert_eq!(resume(&mut cp), Err(invalid("running", "resume")));
    assert_eq!(
        resume(&mut cp).unwrap_err().to_string(),
        "session \"s1\" cannot resume while running"
    );
    assert_eq!(cp.updated_at, Some(OLD));
    pause(&mut cp).unwrap();
    assert_eq!(status_name(&cp), "paused");
    assert_ne!(cp.updated_at, Some(OLD));

    // paused
    let paused = checkpoint(SessionStatus::Paused);
    let mut cp = paused.clone();
    assert_eq!(
        record_trial(&mut cp, ok_trial(Some(1.0))),
        Err(invalid("paused", "record a trial"))
    );
    assert_eq!(
        record_trial(&mut cp, ok_trial(Some(1.0)))
            .unwrap_err()
            .to_string(),
        "session \"s1\" cannot record a trial while paused"
    );
    assert_eq!(pause(&mut cp), Err(invalid("paused", "pause")));
    assert_eq!(complete(&mut cp, None), Err(invalid("paused", "complete")));
    assert_eq!(fail(&mut cp, None), Err(invalid("paused", "fail")));
    assert_eq!(cp, paused);
    resume(&mut cp).unwrap();
    assert_eq!(status_name(&cp), "running");
    let mut cp = paused.clone();
    cancel(&mut cp, Some(&Value::from("user"))).unwrap();
    assert_eq!(status_name(&cp), "cancelled");
    assert_ne!(cp.updated_at, Some(OLD));

    // running → terminal, with and without a reason
    type Move = fn(&mut Checkpoint, Option<&Value>) -> Result<(), CheckpointError>;
    let moves: [(Move, &str); 3] = [
        (complete, "completed"),
        (fail, "failed"),
        (cancel, "cancelled"),
    ];
    for (step, name) in moves {
        let mut cp = checkpoint(SessionStatus::Running);
        let reason = Value::map([("why", Value::from(name)), ("trials", Value::Int(3))]);
        step(&mut cp, Some(&reason)).unwrap();
        assert_eq!(status_name(&cp), name);
        assert!(matches!(
            cp.terminal_reason,
            Some(Term {
                kind: Some(Kind::MapValue(_))
            })
        ));
        validate(&cp).unwrap();

        let mut cp = checkpoint(SessionStatus::Running);
        step(&mut cp, None).unwrap();
        assert_eq!(
            (status_name(&cp), cp.terminal_reason.is_none()),
            (name, true)
        );

        // A reason with no Term form: refused, nothing changed.
        let mut cp = checkpoint(SessionStatus::Running);
        let before = cp.clone();
        let err = step(&mut cp, Some(&Value::list([f64::NAN]))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "reason[0]: NaN is not allowed (rule float.nan)"
        );
        assert_eq!(cp, before);
    }

    // terminal: everything is AlreadyTerminal
    for status in [
        SessionStatus::Completed,
        SessionStatus::Failed,
        SessionStatus::Cancelled,
    ] {
        let start = checkpoint(status);
        let name = status_name(&start);
        let terminal = CheckpointError::AlreadyTerminal(AlreadyTerminal {
            session_id: "s1".into(),
            status: name,
        });
        let mut cp = start.clone();
        assert_eq!(
            record_trial(&mut cp, ok_trial(Some(1.0))),
            Err(terminal.clone())
        );
        assert_eq!(pause(&mut cp), Err(terminal.clone()));
        assert_eq!(resume(&mut cp), Err(terminal.clone()));
        assert_eq!(complete(&mut cp, None), Err(terminal.clone()));
        assert_eq!(fail(&mut cp, None), Err(terminal.clone()));
        assert_eq!(cancel(&mut cp, None), Err(terminal.clone()));
        assert_eq!(cp, start);
    }

    // An unspecified status allows nothing.
    let mut cp = checkpoint(SessionStatus::Unspecified);
    assert_eq!(pause(&mut cp), Err(invalid("unspecified", "pause")));
}
