//! Map keys are ordered by their canonical bytes, which for a decoded key are
//! its bytes as read, unknown fields included (FORMAT.md §7): two keys that
//! differ only in unknown fields are distinct, and unknown fields take part
//! in the order. This holds in every Term field of a checkpoint, at any
//! depth, and when a checkpoint read with unknown fields is written back.

mod wire_bytes;

use dsxir_checkpoint::{
    decode, decode_with_unknown, encode, rules, seal, Checkpoint, Progress, SamplerFormat,
    TrialLogEntry, FORMAT_ID,
};
use prost::Message;
use wire_bytes::varint;

const NULL: &[u8] = &[0x0a, 0x00];
/// `null_value` whose TermNull holds unknown field 1 = varint 0.
const NULL_UNKNOWN: &[u8] = &[0x0a, 0x02, 0x08, 0x00];
const TRUE: &[u8] = &[0x10, 0x01];
const FALSE: &[u8] = &[0x10, 0x00];
/// `bool_value` true with unknown field 12 = varint 1.
const TRUE_UNKNOWN: &[u8] = &[0x10, 0x01, 0x60, 0x01];

/// A length-delimited field: `tag`, the length, `content`.
fn ld(tag: u8, content: &[u8]) -> Vec<u8> {
    [&[tag][..], &varint(content.len() as u64), content].concat()
}

/// The bytes of a TermMap with these (key, value) Terms, in this order.
fn term_map(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
    entries
        .iter()
        .flat_map(|(k, v)| ld(0x0a, &[ld(0x0a, k), ld(0x12, v)].concat()))
        .collect()
}

/// A Term whose kind is `map_value`.
fn map(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
    ld(0x5a, &term_map(entries))
}

/// A Term whose kind is `list_value`.
fn list(items: &[&[u8]]) -> Vec<u8> {
    let items: Vec<u8> = items.iter().flat_map(|t| ld(0x0a, t)).collect();
    ld(0x4a, &items)
}

/// `[true + a 12-byte unknown field]`: as read it sorts after `[true, true]`
/// (`4a 10 …` > `4a 08 …`), without its unknown field before (`4a 04 …`).
fn list_long() -> Vec<u8> {
    let item = [TRUE, &[0x62, 0x0a], &[0u8; 10]].concat();
    list(&[&item])
}

fn list_two() -> Vec<u8> {
    list(&[TRUE, TRUE])
}

fn stamp() -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: 1_767_225_600,
        nanos: 5,
    }
}

/// The Term fields of a checkpoint: the value of option `o`, the stats of
/// trial 0 and the error of trial 1 (TermMaps), the best program artifact
/// (a TermMap) and the terminal reason.
struct Terms {
    option: Vec<u8>,
    stats: Vec<u8>,
    error: Vec<u8>,
    artifact: Vec<u8>,
    reason: Vec<u8>,
}

impl Default for Terms {
    fn default() -> Self {
        Terms {
            option: TRUE.to_vec(),
            stats: term_map(&[(NULL, TRUE)]),
            error: term_map(&[(NULL, FALSE)]),
            artifact: term_map(&[(TRUE, TRUE)]),
            reason: FALSE.to_vec(),
        }
    }
}

/// A valid checkpoint body (without the trailer) holding `terms`.
fn body(terms: &Terms) -> Vec<u8> {
    let head = Checkpoint {
        format: FORMAT_ID.into(),
        session_id: "s1".into(),
        optimizer: "demo.Optimizer".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let option = ld(0x22, &[ld(0x0a, b"o"), ld(0x12, &terms.option)].concat());
    let middle = Checkpoint {
        trainset_hash: vec![7; 32],
        created_at: Some(stamp()),
        updated_at: Some(stamp()),
        ..Default::default()
    }
    .encode_to_vec();
    let trial0 = TrialLogEntry {
        trial_idx: 0,
        score: Some(0.5),
        status: 1,
        ..Default::default()
    }
    .encode_to_vec();
    let trial1 = TrialLogEntry {
        trial_idx: 1,
        status: 2,
        ..Default::default()
    }
    .encode_to_vec();
    let rest = Progress {
        best_score: Some(0.5),
        best_trial_idx: Some(0),
        attempts: 2,
        completed: 1,
        errors: 1,
        started_at: Some(stamp()),
        ..Default::default()
    }
    .encode_to_vec();
    let progress = [
        ld(0x0a, &[trial0, ld(0x2a, &terms.stats)].concat()),
        ld(0x0a, &[trial1, ld(0x3a, &terms.error)].concat()),
        rest,
    ]
    .concat();
    let tail = Checkpoint {
        sampler_format: Some(SamplerFormat {
            module: "demo.Sampler".into(),
            version: 2,
        }),
        status: 1,
        ..Default::default()
    }
    .encode_to_vec();
    [
        head,
        option,
        middle,
        ld(0x4a, &progress),
        ld(0x52, &terms.artifact),
        tail,
        ld(0x72, &terms.reason),
    ]
    .concat()
}

/// Decodes `terms` and checks the checkpoint is accepted and written back
/// byte for byte.
fn accepted(terms: &Terms) {
    let input = seal(&body(terms));
    decode(&input).expect("accepted");
    let decoded = decode_with_unknown(&input).expect("accepted");
    assert_eq!(decoded.encode().unwrap(), input);
}

/// The (rule, path, detail) of decoding `terms`.
fn refused(terms: &Terms) -> (&'static str, String, String) {
    let err = decode(&seal(&body(terms))).expect_err("refused");
    (err.rule.unwrap(), err.field, err.detail)
}

#[test]
fn the_test_checkpoint_is_valid() {
    accepted(&Terms::default());
}

/// The sorted pairs (as read) of keys that differ only in unknown fields or
/// whose order the unknown fields decide.
fn sorted_pairs() -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![
        (NULL.to_vec(), NULL_UNKNOWN.to_vec()),
        (TRUE.to_vec(), TRUE_UNKNOWN.to_vec()),
        (list_two(), list_long()),
    ]
}

#[test]
fn keys_differing_in_unknown_fields_are_distinct_and_ordered_as_read() {
    for (a, b) in sorted_pairs() {
        let pair = term_map(&[(&a, FALSE), (&b, FALSE)]);
        let in_map = map(&[(&a, FALSE), (&b, FALSE)]);
        // In a key of a map in a list of an option value.
        let nested = list(&[&map(&[(&in_map, TRUE)])]);
        accepted(&Terms {
            reason: in_map.clone(),
            ..Terms::default()
        });
        accepted(&Terms {
            option: nested.clone(),
            ..Terms::default()
        });
        accepted(&Terms {
            stats: pair.clone(),
            ..Terms::default()
        });
        accepted(&Terms {
            error: pair.clone(),
            ..Terms::default()
        });
        accepted(&Terms {
            artifact: pair.clone(),
            ..Terms::default()
        });
        // All at once: each field's keys are its own.
        accepted(&Terms {
            option: nested,
            stats: pair.clone(),
            error: pair.clone(),
            artifact: term_map(&[(&in_map, TRUE)]),
            reason: in_map,
        });
    }
}

#[test]
fn unknown_fields_decide_the_order_of_keys() {
    // [true, true] before [true + unknown] is sorted as read (above); the
    // other order is not, although without the unknown field it would be.
    let (long, two) = (list_long(), list_two());
    let unsorted = term_map(&[(&long, FALSE), (&two, FALSE)]);
    let cases = [
        (
            Terms {
                reason: map(&[(&long, FALSE), (&two, FALSE)]),
                ..Terms::default()
            },
            "terminal_reason.map_value.entries[1].key",
        ),
        (
            Terms {
                option: list(&[&map(&[(&ld(0x5a, &unsorted), TRUE)])]),
                ..Terms::default()
            },
            "optimizer_opts[0].value.list_value.items[0].map_value.entries[0].key.map_value.entries[1].key",
        ),
        (
            Terms {
                stats: unsorted.clone(),
                ..Terms::default()
            },
            "progress.trial_log[0].stats.entries[1].key",
        ),
        (
            Terms {
                error: unsorted.clone(),
                ..Terms::default()
            },
            "progress.trial_log[1].error.entries[1].key",
        ),
        (
            Terms {
                artifact: unsorted.clone(),
                ..Terms::default()
            },
            "best_program_artifact.entries[1].key",
        ),
    ];
    for (terms, path) in cases {
        let (rule, field, detail) = refused(&terms);
        assert_eq!((rule, field.as_str()), (rules::TERM_MAP_ORDER, path));
        assert_eq!(detail, "keys are not sorted");
    }
}

#[test]
fn a_key_repeated_with_its_unknown_fields_is_a_duplicate() {
    for key in [NULL_UNKNOWN, TRUE_UNKNOWN, &list_long()] {
        let (rule, field, detail) = refused(&Terms {
            stats: term_map(&[(key, FALSE), (key, TRUE)]),
            ..Terms::default()
        });
        assert_eq!(
            (rule, field.as_str()),
            (
                rules::TERM_MAP_ORDER,
                "progress.trial_log[0].stats.entries[1].key"
            )
        );
        assert_eq!(detail, "duplicate map key");
    }
}

#[test]
fn keys_before_a_failing_map_are_counted_once() {
    // Maps before the unsorted one (in earlier fields, and nested in an
    // earlier key) must not shift which key bytes the later check reads.
    let (long, two) = (list_long(), list_two());
    let sorted = map(&[(NULL, FALSE), (NULL_UNKNOWN, FALSE)]);
    let (rule, field, _) = refused(&Terms {
        option: map(&[(&list(&[&sorted]), TRUE), (&sorted, TRUE)]),
        stats: term_map(&[(&sorted, FALSE)]),
        artifact: term_map(&[(&two, FALSE), (&long, FALSE)]),
        reason: map(&[(&long, FALSE), (&two, FALSE)]),
        ..Terms::default()
    });
    assert_eq!(
        (rule, field.as_str()),
        (
            rules::TERM_MAP_ORDER,
            "terminal_reason.map_value.entries[1].key"
        )
    );
}

#[test]
fn a_checkpoint_read_with_unknown_key_fields_is_written_back() {
    let terms = Terms {
        stats: term_map(&[(NULL, FALSE), (NULL_UNKNOWN, FALSE)]),
        ..Terms::default()
    };
    let input = seal(&body(&terms));
    let mut decoded = decode_with_unknown(&input).unwrap();
    decoded.checkpoint.session_id = "s2".into();
    let again = decode_with_unknown(&decoded.encode().unwrap()).unwrap();
    assert_eq!(again.checkpoint.session_id, "s2");
    assert_eq!(again.unknown, decoded.unknown);
    // Without its unknown fields the checkpoint holds two equal keys, which
    // no writer may write.
    let stripped = decode(&input).unwrap();
    let err = encode(&stripped).unwrap_err();
    assert_eq!(
        (err.rule, err.field.as_str()),
        (
            Some(rules::TERM_MAP_ORDER),
            "progress.trial_log[0].stats.entries[1].key"
        )
    );
    // A checkpoint built in memory is ordered by its keys' encodings.
    let built = Checkpoint {
        session_id: "s3".into(),
        ..decode(&seal(&body(&Terms::default()))).unwrap()
    };
    let bytes = encode(&built).unwrap();
    assert_eq!(decode(&bytes).unwrap(), built);
}
