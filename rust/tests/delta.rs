//! Checkpoint deltas (FORMAT.md §13): the grammar with CheckpointDelta as the
//! top-level message, the rules of §13.1 with their paths, the writer, the
//! unknown fields, and applying a delta to its base (§13.2). Bodies are
//! built byte by byte, so each expectation is the exact canonical encoding.

mod wire_bytes;

use dsxir_checkpoint::v1::term::Kind;
use dsxir_checkpoint::{
    apply_delta, apply_delta_bytes, decode, decode_delta, decode_delta_with_unknown,
    decode_with_unknown, delta_rules, encode_delta, rules, seal, CheckpointDelta, ResumeMismatch,
    Term, TermList, CHECKPOINT_SHAPE, DELTA_FORMAT_ID, DELTA_SHAPE, FORMAT_ID, KEPT_MASK,
    MAX_TERM_DEPTH,
};
use wire_bytes::varint;

/// A VARINT field.
fn vi(number: u64, value: u64) -> Vec<u8> {
    let mut out = varint(number << 3);
    out.extend(varint(value));
    out
}

/// A LEN field.
fn ln(number: u64, value: &[u8]) -> Vec<u8> {
    let mut out = varint(number << 3 | 2);
    out.extend(varint(value.len() as u64));
    out.extend_from_slice(value);
    out
}

/// An I64 field holding a double.
fn f64_field(number: u64, value: f64) -> Vec<u8> {
    let mut out = varint(number << 3 | 1);
    out.extend(value.to_bits().to_le_bytes());
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

const DELTA_FORMAT_V1_0: &[u8] = b"dsxir.optimizer_session.delta/v1.0";
const HASH: [u8; 32] = [7; 32];

fn stamp(seconds: u64) -> Vec<u8> {
    vi(1, seconds)
}

// Unknown fields at several places.
fn unk_option() -> Vec<u8> {
    vi(9, 1)
}
fn unk_base_entry() -> Vec<u8> {
    ln(12, b"base entry")
}
fn unk_base_progress() -> Vec<u8> {
    vi(30, 1)
}
fn unk_sampler() -> Vec<u8> {
    ln(5, b"sampler")
}
fn unk_base_top() -> Vec<u8> {
    vi(20, 5)
}
fn unk_head_entry() -> Vec<u8> {
    vi(11, 77)
}
fn unk_head_progress() -> Vec<u8> {
    vi(31, 2)
}
fn unk_head_top() -> Vec<u8> {
    ln(21, b"head")
}
fn unk_delta_top() -> Vec<u8> {
    vi(6, 1)
}

fn option() -> Vec<u8> {
    cat(&[&ln(1, b"k"), &ln(2, &ln(6, b"v")), &unk_option()])
}

fn sampler() -> Vec<u8> {
    cat(&[&ln(1, b"mod"), &vi(2, 1), &unk_sampler()])
}

/// Trial 0 (ok, score 0.5) and trial 1 (error) of the base.
fn base_entries() -> Vec<u8> {
    cat(&[
        &ln(1, &cat(&[&f64_field(3, 0.5), &vi(4, 1), &unk_base_entry()])),
        &ln(1, &cat(&[&vi(1, 1), &vi(4, 2)])),
    ])
}

/// The appended trial 2 (ok, score 0.75) of the head.
fn head_entry(trial_idx: u64) -> Vec<u8> {
    let idx = if trial_idx == 0 {
        vec![]
    } else {
        vi(1, trial_idx)
    };
    cat(&[&idx, &f64_field(3, 0.75), &vi(4, 1), &unk_head_entry()])
}

/// A checkpoint of session s1 holding the base's optimizer, option, hash,
/// created_at, sampler blob and sampler format, with these updated_at
/// seconds, progress, status and trailing unknown fields.
fn checkpoint_body(updated_at: u64, progress: &[u8], status: u64, unknown: &[u8]) -> Vec<u8> {
    cat(&[
        &ln(1, FORMAT_ID.as_bytes()),
        &ln(2, b"s1"),
        &ln(3, b"opt"),
        &ln(4, &option()),
        &ln(6, &HASH),
        &ln(7, &stamp(1_767_225_600)),
        &ln(8, &stamp(updated_at)),
        &ln(9, progress),
        &ln(11, b"blob"),
        &ln(12, &sampler()),
        &vi(13, status),
        unknown,
    ])
}

/// A valid base checkpoint with 2 trials and unknown fields inside an
/// option, a trial entry, the progress, the sampler format and at the top.
fn base_body() -> Vec<u8> {
    let progress = cat(&[
        &base_entries(),
        &f64_field(2, 0.5),
        &vi(3, 0),
        &vi(4, 2),
        &vi(5, 1),
        &vi(6, 1),
        &ln(7, &stamp(1_767_225_600)),
        &unk_base_progress(),
    ]);
    checkpoint_body(1_767_225_601, &progress, 1, &unk_base_top())
}

fn base() -> Vec<u8> {
    seal(&base_body())
}

/// The head's progress: one appended entry, counters over all 3 trials.
fn head_progress(entry: &[u8]) -> Vec<u8> {
    cat(&[
        &ln(1, entry),
        &f64_field(2, 0.75),
        &vi(3, 2),
        &vi(4, 3),
        &vi(5, 2),
        &vi(6, 1),
        &ln(7, &stamp(1_767_225_600)),
        &unk_head_progress(),
    ])
}

/// Kept: optimizer (3), optimizer_opts (4), program_module (5, absent in
/// the base), trainset_hash (6), created_at (7), sampler_blob (11),
/// sampler_format (12).
const KEPT: u32 = 1 << 3 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 7 | 1 << 11 | 1 << 12;

fn head_body(session: &[u8], progress: Option<&[u8]>) -> Vec<u8> {
    let progress = progress.map_or(vec![], |p| ln(9, p));
    cat(&[
        &ln(1, FORMAT_ID.as_bytes()),
        &ln(2, session),
        &ln(8, &stamp(1_767_225_700)),
        &progress,
        &vi(13, 2),
        &unk_head_top(),
    ])
}

/// A VARINT field without presence: not written when 0.
fn vi_nonzero(number: u64, value: u64) -> Vec<u8> {
    if value == 0 {
        vec![]
    } else {
        vi(number, value)
    }
}

fn delta_body_with(head: &[u8], base_trials: u64, kept: u32) -> Vec<u8> {
    cat(&[
        &ln(1, DELTA_FORMAT_V1_0),
        &vi(2, 3),
        &vi_nonzero(3, base_trials),
        &ln(4, head),
        &vi_nonzero(5, u64::from(kept)),
        &unk_delta_top(),
    ])
}

/// A sealed delta of these format bytes, base generation, head and kept
/// bits; a generation or kept of 0 is not written, nor a head of None.
fn delta_bytes(format: &[u8], generation: u64, head: Option<&[u8]>, kept: u32) -> Vec<u8> {
    let head = head.map_or(vec![], |h| ln(4, h));
    seal(&cat(&[
        &ln(1, format),
        &vi_nonzero(2, generation),
        &head,
        &vi_nonzero(5, u64::from(kept)),
    ]))
}

/// A delta of the current format with base generation 1 and an empty head.
fn minimal_delta() -> CheckpointDelta {
    CheckpointDelta {
        format: DELTA_FORMAT_ID.into(),
        base_generation: 1,
        head: Some(Default::default()),
        ..Default::default()
    }
}

/// `apply_delta_bytes` of `base()` and a sealed delta of `head`.
fn apply_to_base(head: &[u8], base_trials: u64, kept: u32) -> Result<Vec<u8>, ResumeMismatch> {
    apply_delta_bytes(&base(), &seal(&delta_body_with(head, base_trials, kept)))
}

fn delta() -> Vec<u8> {
    seal(&delta_body_with(
        &head_body(b"s1", Some(&head_progress(&head_entry(2)))),
        2,
        KEPT,
    ))
}

/// The checkpoint `delta()` makes from `base()`, byte by byte: the base's
/// entries, then the head's progress.
fn expected_result() -> Vec<u8> {
    let progress = cat(&[&base_entries(), &head_progress(&head_entry(2))]);
    seal(&checkpoint_body(
        1_767_225_700,
        &progress,
        2,
        &unk_head_top(),
    ))
}

fn refusal(
    result: Result<impl std::fmt::Debug, ResumeMismatch>,
) -> (&'static str, &'static str, String) {
    let err = result.expect_err("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: {}: {} (rule {})",
            err.reason,
            err.field,
            err.detail,
            err.rule.unwrap()
        )
    );
    (err.reason, err.rule.unwrap(), err.field)
}

/// Checks that `result` is refused with this reason, rule and field.
fn assert_refused(
    result: Result<impl std::fmt::Debug, ResumeMismatch>,
    reason: &str,
    rule: &str,
    field: &str,
) {
    let (got_reason, got_rule, got_field) = refusal(result);
    assert_eq!(
        (got_reason, got_rule, got_field.as_str()),
        (reason, rule, field)
    );
}

/// Checks that the writer refuses `delta` with this rule at `path`, and
/// the reader the bytes the writer would have sealed.
fn writer_and_reader_refuse(delta: &CheckpointDelta, rule: &str, path: &str) {
    assert_refused(encode_delta(delta), DELTA_SHAPE, rule, path);
    let body = prost::Message::encode_to_vec(delta);
    assert_read_refused(&seal(&body), rule, path);
}

/// Checks that the reader refuses the delta `bytes` with this rule at `path`,
/// the same with the unknown fields dropped and kept.
#[track_caller]
fn assert_read_refused(bytes: &[u8], rule: &str, path: &str) {
    let plain = refusal(decode_delta(bytes));
    assert_eq!(
        plain,
        (DELTA_SHAPE, rule, path.to_string()),
        "{path}: {bytes:02x?}"
    );
    assert_eq!(refusal(decode_delta_with_unknown(bytes)), plain);
}

// --- reading --------------------------------------------------------------------------

#[test]
fn a_delta_round_trips_byte_for_byte_with_its_unknown_fields() {
    let bytes = delta();
    let decoded = decode_delta_with_unknown(&bytes).unwrap();
    assert_eq!(decoded.delta.format, DELTA_FORMAT_ID);
    assert_eq!(decoded.delta.base_generation, 3);
    assert_eq!(decoded.delta.base_trials, 2);
    assert_eq!(decoded.delta.kept, KEPT);
    assert_eq!(decoded.unknown.len(), 4);
    assert_eq!(decoded.unknown.get(&[]), Some(&unk_delta_top()[..]));
    assert_eq!(decoded.unknown.get(&[(4, 0)]), Some(&unk_head_top()[..]));
    assert_eq!(
        decoded.unknown.get(&[(4, 0), (9, 0), (1, 0)]),
        Some(&unk_head_entry()[..])
    );
    assert_eq!(decoded.encode().unwrap(), bytes);

    // Without the unknown fields: the known fields, canonical.
    let plain = decode_delta(&bytes).unwrap();
    let written = encode_delta(&plain).unwrap();
    let again = decode_delta_with_unknown(&written).unwrap();
    assert!(again.unknown.is_empty());
    assert_eq!(again.delta, plain);
    assert!(written.len() < bytes.len());
}

#[test]
fn a_minimal_delta_round_trips() {
    let delta = minimal_delta();
    let bytes = encode_delta(&delta).unwrap();
    assert_eq!(bytes, delta_bytes(DELTA_FORMAT_V1_0, 1, Some(b""), 0));
    assert_eq!(decode_delta(&bytes).unwrap(), delta);
}

#[test]
fn the_format_must_be_a_delta_of_major_1() {
    let ok = |f: &str| decode_delta(&delta_bytes(f.as_bytes(), 1, Some(b""), 0)).map(|_| ());
    for good in [
        "dsxir.optimizer_session.delta/v1.0",
        "dsxir.optimizer_session.delta/v1.7",
        "dsxir.optimizer_session.delta/v1.10",
    ] {
        ok(good).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for bad in [
        "dsxir.optimizer_session.delta/v1.01",
        "dsxir.optimizer_session.delta/v1.",
        "dsxir.optimizer_session.delta/v1",
        "dsxir.optimizer_session.delta/v2.0",
        "dsxir.optimizer_session.delta/v01.0",
        "dsxir.optimizer_session.delta/v1.0 ",
        "dsxir.optimizer_session.delta/v1.١",
        "dsxir.optimizer_session.checkpoint/v1.1",
    ] {
        let (_, rule, field) = refusal(ok(bad));
        assert_eq!(
            (rule, field.as_str()),
            (delta_rules::DELTA_FORMAT, "format"),
            "{bad}"
        );
    }
    // No format at all (an empty string is not written).
    let body = cat(&[&vi(2, 1), &ln(4, b"")]);
    assert_read_refused(&seal(&body), delta_rules::DELTA_FORMAT, "format");
}

#[test]
fn the_rules_of_13_1_in_their_order() {
    let head = head_body(b"s1", None);
    // Each broken rule hides those after it.
    assert_read_refused(
        &delta_bytes(b"x", 0, None, 1),
        delta_rules::DELTA_FORMAT,
        "format",
    );
    assert_read_refused(
        &delta_bytes(DELTA_FORMAT_V1_0, 0, None, 1),
        delta_rules::DELTA_BASE_GENERATION,
        "base_generation",
    );
    assert_read_refused(
        &delta_bytes(DELTA_FORMAT_V1_0, 1, None, 1),
        delta_rules::DELTA_HEAD,
        "head",
    );
    for bad in [
        1u32,
        1 << 1,
        1 << 2,
        1 << 8,
        1 << 9,
        1 << 16,
        1 << 31,
        !KEPT_MASK,
    ] {
        assert_read_refused(
            &delta_bytes(DELTA_FORMAT_V1_0, 1, Some(&head), bad | 1 << 13),
            delta_rules::DELTA_KEPT,
            "kept",
        );
    }
    // The head holds status (13) and updated_at (8, not keepable anyway).
    with_kept_in_head(&head, 1 << 13, "head.status");
    // The lowest-numbered held field is named.
    let full = cat(&[
        &ln(3, b"o"),
        &ln(4, &option()),
        &ln(5, b"m"),
        &ln(6, &HASH),
        &ln(7, &stamp(1)),
        &ln(10, b""),
        &ln(11, b"b"),
        &ln(12, b""),
        &vi(13, 1),
        &ln(14, &ln(1, b"")),
        &vi(15, 1),
    ]);
    let names = [
        (3, "optimizer"),
        (4, "optimizer_opts"),
        (5, "program_module"),
        (6, "trainset_hash"),
        (7, "created_at"),
        (10, "best_program_artifact"),
        (11, "sampler_blob"),
        (12, "sampler_format"),
        (13, "status"),
        (14, "terminal_reason"),
        (15, "direction"),
    ];
    for (i, (number, name)) in names.iter().enumerate() {
        let higher: u32 = names[i..].iter().map(|(n, _)| 1u32 << n).sum();
        with_kept_in_head(&full, higher, &format!("head.{name}"));
        with_kept_in_head(&full, 1 << number, &format!("head.{name}"));
    }
    // A head without a field keeps it: accepted.
    let mut bytes = delta_bytes(DELTA_FORMAT_V1_0, 1, Some(&head), KEPT_MASK & !(1 << 13));
    decode_delta(&bytes).unwrap();
    bytes = delta_bytes(DELTA_FORMAT_V1_0, 1, Some(b""), KEPT_MASK);
    assert_eq!(decode_delta(&bytes).unwrap().kept, KEPT_MASK);
}

fn with_kept_in_head(head: &[u8], kept: u32, path: &str) {
    let bytes = delta_bytes(DELTA_FORMAT_V1_0, 1, Some(head), kept);
    assert_read_refused(&bytes, delta_rules::DELTA_KEPT_IN_HEAD, path);
    // The writer refuses the same delta the same way.
    let delta =
        decode_delta_with_unknown(&delta_bytes(DELTA_FORMAT_V1_0, 1, Some(head), 0)).unwrap();
    let mut d = delta.delta;
    d.kept = kept;
    assert_refused(
        encode_delta(&d),
        DELTA_SHAPE,
        delta_rules::DELTA_KEPT_IN_HEAD,
        path,
    );
}

#[test]
fn grammar_refusals_name_paths_below_head() {
    let good = delta_body_with(&head_body(b"s1", None), 2, 0);
    // The trailer and checksum.
    assert_read_refused(&good, rules::INPUT_TRAILER, "<input>");
    let mut flipped = seal(&good);
    flipped[3] ^= 1;
    assert_read_refused(&flipped, rules::INPUT_CHECKSUM, "<input>");
    let heads = [
        // A trial entry's status written as 0: the field, below head.
        (
            head_body(b"s1", Some(&head_progress(&cat(&[&vi(1, 2), &vi(4, 0)])))),
            rules::WIRE_DEFAULT,
            "head.progress.trial_log[0].status",
        ),
        // An empty session id in the head.
        (
            cat(&[&ln(1, FORMAT_ID.as_bytes()), &ln(2, b"")]),
            rules::WIRE_DEFAULT,
            "head.session_id",
        ),
        // A message of the head cut short names that message.
        (
            cat(&[&ln(1, FORMAT_ID.as_bytes()), &ln(9, &[0x0a, 0x05, 0x08])]),
            rules::WIRE_TRUNCATED,
            "head.progress",
        ),
        // A wrong wire type in the head names the head.
        (
            cat(&[&ln(1, FORMAT_ID.as_bytes()), &vi(2, 1)]),
            rules::WIRE_TAG,
            "head",
        ),
    ];
    for (head, rule, path) in heads {
        assert_read_refused(&seal(&delta_body_with(&head, 2, 0)), rule, path);
    }
    // The delta's own fields: out of order, wrong type, out of range, default.
    let bodies = [
        (
            cat(&[&vi(2, 1), &ln(1, DELTA_FORMAT_V1_0)]),
            rules::WIRE_ORDER,
            "<input>",
        ),
        (
            cat(&[&ln(1, DELTA_FORMAT_V1_0), &ln(2, b"")]),
            rules::WIRE_TAG,
            "<input>",
        ),
        (
            cat(&[
                &ln(1, DELTA_FORMAT_V1_0),
                &vi(2, 1),
                &ln(4, b""),
                &vi(5, 1 << 32),
            ]),
            rules::WIRE_RANGE,
            "kept",
        ),
        (
            cat(&[&ln(1, DELTA_FORMAT_V1_0), &vi(2, 0)]),
            rules::WIRE_DEFAULT,
            "base_generation",
        ),
        (
            cat(&[&ln(1, DELTA_FORMAT_V1_0), &ln(4, b""), &ln(4, b"")]),
            rules::WIRE_ORDER,
            "<input>",
        ),
        (cat(&[&ln(1, &[0xff])]), rules::WIRE_UTF8, "format"),
    ];
    for (body, rule, path) in bodies {
        assert_read_refused(&seal(&body), rule, path);
    }
}

fn deep_term(depth: usize) -> Term {
    let mut term = Term {
        kind: Some(Kind::IntValue(1)),
    };
    for _ in 1..depth {
        term = Term {
            kind: Some(Kind::ListValue(TermList { items: vec![term] })),
        };
    }
    term
}

#[test]
fn term_depth_in_the_head_is_refused_by_reader_and_writer() {
    let mut delta = minimal_delta();
    delta.head.as_mut().unwrap().terminal_reason = Some(deep_term(MAX_TERM_DEPTH));
    let bytes = encode_delta(&delta).unwrap();
    assert_eq!(decode_delta(&bytes).unwrap(), delta);

    delta.head.as_mut().unwrap().terminal_reason = Some(deep_term(MAX_TERM_DEPTH + 1));
    let path = format!(
        "head.terminal_reason{}",
        ".list_value.items[0]".repeat(MAX_TERM_DEPTH)
    );
    // Refused by the writer, and the same bytes, sealed by hand, by the reader.
    writer_and_reader_refuse(&delta, rules::TERM_DEPTH, &path);
}

#[test]
fn the_writer_refuses_what_the_reader_refuses_in_its_order() {
    let good = minimal_delta();
    let cases: [(CheckpointDelta, &str, &str); 4] = [
        (
            CheckpointDelta {
                format: "dsxir.optimizer_session.delta/v2.0".into(),
                ..good.clone()
            },
            delta_rules::DELTA_FORMAT,
            "format",
        ),
        (
            CheckpointDelta {
                base_generation: 0,
                ..good.clone()
            },
            delta_rules::DELTA_BASE_GENERATION,
            "base_generation",
        ),
        (
            CheckpointDelta {
                head: None,
                ..good.clone()
            },
            delta_rules::DELTA_HEAD,
            "head",
        ),
        (
            CheckpointDelta {
                kept: 1 << 2,
                ..good.clone()
            },
            delta_rules::DELTA_KEPT,
            "kept",
        ),
    ];
    for (delta, rule, path) in cases {
        writer_and_reader_refuse(&delta, rule, path);
    }
    encode_delta(&good).unwrap();
}

// --- applying -------------------------------------------------------------------------

#[test]
fn apply_keeps_fields_and_unknown_fields_and_appends_the_trials() {
    let result = apply_delta_bytes(&base(), &delta()).unwrap();
    assert_eq!(result, expected_result());
    // The result is a checkpoint like any other.
    let decoded = decode_with_unknown(&result).unwrap();
    assert_eq!(decoded.encode().unwrap(), result);
    let cp = decode(&result).unwrap();
    assert_eq!(cp.progress.as_ref().unwrap().trial_log.len(), 3);
    assert_eq!(cp.optimizer, "opt");
    assert_eq!(cp.program_module, None);
    assert_eq!(cp.status, 2);

    // The same through the decoded values.
    let base = decode_with_unknown(&base()).unwrap();
    let delta = decode_delta_with_unknown(&delta()).unwrap();
    let applied = apply_delta(&base, &delta).unwrap();
    assert_eq!(applied.encode().unwrap(), result);
    assert_eq!(applied, decoded);
}

#[test]
fn apply_without_unknown_fields() {
    // The base and delta read without their unknown fields make the
    // checkpoint without any.
    let base = decode_with_unknown(&base()).unwrap();
    let plain_base = dsxir_checkpoint::Decoded {
        checkpoint: base.checkpoint.clone(),
        unknown: Default::default(),
    };
    let delta = dsxir_checkpoint::DecodedDelta {
        delta: decode_delta(&delta()).unwrap(),
        unknown: Default::default(),
    };
    let applied = apply_delta(&plain_base, &delta).unwrap();
    assert!(applied.unknown.is_empty());
    let bytes = applied.encode().unwrap();
    let again = decode_with_unknown(&bytes).unwrap();
    assert!(again.unknown.is_empty());
    assert_eq!(
        again.checkpoint,
        decode(&expected_result()).unwrap(),
        "the known fields are those of the full result"
    );
}

#[test]
fn a_kept_field_absent_in_the_base_is_absent_and_an_unkept_one_is_the_heads() {
    // Keep nothing: the head's fields only, so the base's optimizer,
    // trainset hash, created_at and sampler format are missing.
    let head = head_body(b"s1", Some(&head_progress(&head_entry(2))));
    assert_refused(
        apply_to_base(&head, 2, 0),
        CHECKPOINT_SHAPE,
        rules::OPTIMIZER_REQUIRED,
        "optimizer",
    );
}

#[test]
fn apply_refusals_in_their_order() {
    let progress = head_progress(&head_entry(2));
    // Another session (and a wrong base_trials, reported after).
    assert_refused(
        apply_to_base(&head_body(b"s2", Some(&progress)), 5, KEPT),
        DELTA_SHAPE,
        delta_rules::DELTA_SESSION,
        "head.session_id",
    );
    for trials in [0, 1, 3, 5] {
        assert_refused(
            apply_to_base(&head_body(b"s1", Some(&progress)), trials, KEPT),
            DELTA_SHAPE,
            delta_rules::DELTA_BASE_TRIALS,
            "base_trials",
        );
    }
    // The appended entry's trial_idx is 0: the result's path.
    assert_refused(
        apply_to_base(
            &head_body(b"s1", Some(&head_progress(&head_entry(0)))),
            2,
            KEPT,
        ),
        CHECKPOINT_SHAPE,
        rules::TRIAL_TRIAL_IDX,
        "progress.trial_log[2].trial_idx",
    );
    // A head without progress makes a checkpoint without one.
    assert_refused(
        apply_to_base(&head_body(b"s1", None), 2, KEPT),
        CHECKPOINT_SHAPE,
        rules::PROGRESS_REQUIRED,
        "progress",
    );
    // A base that is not a checkpoint: refused as a checkpoint.
    assert_refused(
        apply_delta_bytes(&delta(), &delta()),
        CHECKPOINT_SHAPE,
        rules::WIRE_TAG,
        "<input>",
    );
    // A delta refused by §13.1 is refused before it is applied.
    let (reason, rule, _) = refusal(apply_delta_bytes(&base(), &base()));
    assert_eq!((reason, rule), (DELTA_SHAPE, rules::WIRE_TAG));
}

#[test]
fn the_counters_of_the_result_count_every_trial() {
    // The head's counters count only the appended entry: the result's
    // completed is wrong.
    let progress = cat(&[
        &ln(1, &head_entry(2)),
        &f64_field(2, 0.75),
        &vi(3, 2),
        &vi(4, 1),
        &vi(5, 1),
        &ln(7, &stamp(1_767_225_600)),
    ]);
    assert_refused(
        apply_to_base(&head_body(b"s1", Some(&progress)), 2, KEPT),
        CHECKPOINT_SHAPE,
        rules::COUNTERS_COMPLETED,
        "progress.completed",
    );
}
