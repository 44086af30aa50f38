//! The byte grammar of FORMAT.md §2: the trailer and its CRC-32C, each wire
//! rule with the path it names, the weight limit, and unknown fields kept
//! byte for byte.

mod wire_bytes;

use dsxir_checkpoint::v1::term::Kind;
use dsxir_checkpoint::{
    crc32c, decode, decode_with_unknown, encode, rules, seal, weight_limit, Checkpoint, Progress,
    SamplerFormat, Term, TermMap, TermMapEntry, TrialLogEntry, FORMAT_ID, TRAILER_SIZE,
};
use prost::Message;
use wire_bytes::varint;

fn stamp() -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: 1_767_225_600,
        nanos: 5,
    }
}

fn valid() -> Checkpoint {
    let key = |k: &str| Term {
        kind: Some(Kind::StringValue(k.into())),
    };
    Checkpoint {
        format: FORMAT_ID.into(),
        session_id: "s1".into(),
        optimizer: "demo.Optimizer".into(),
        trainset_hash: vec![7; 32],
        created_at: Some(stamp()),
        updated_at: Some(stamp()),
        progress: Some(Progress {
            trial_log: vec![TrialLogEntry {
                trial_idx: 0,
                score: Some(0.5),
                status: 1,
                stats: Some(TermMap {
                    entries: vec![TermMapEntry {
                        key: Some(key("k")),
                        value: Some(Term {
                            kind: Some(Kind::BoolValue(true)),
                        }),
                    }],
                }),
                ..Default::default()
            }],
            best_score: Some(0.5),
            best_trial_idx: Some(0),
            attempts: 1,
            completed: 1,
            started_at: Some(stamp()),
            ..Default::default()
        }),
        sampler_format: Some(SamplerFormat {
            module: "demo.Sampler".into(),
            version: 2,
        }),
        status: 1,
        ..Default::default()
    }
}

/// The (rule, path) of decoding `body` under a correct trailer.
fn verdict(body: &[u8]) -> (String, String) {
    let err = decode(&seal(body)).expect_err("refused");
    (err.rule.unwrap_or_default().to_string(), err.field)
}

fn len_field(tag: u8, content: &[u8]) -> Vec<u8> {
    assert!(content.len() < 128);
    [&[tag, content.len() as u8][..], content].concat()
}

#[test]
fn crc32c_check_value_and_trailer_layout() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    let bytes = encode(&valid()).unwrap();
    let n = bytes.len();
    assert_eq!(&bytes[n - 9..n - 4], &[0xFD, 0xFF, 0xFF, 0xFF, 0x0F]);
    assert_eq!(
        bytes[n - 4..],
        crc32c(&bytes[..n - TRAILER_SIZE]).to_le_bytes()
    );
    assert_eq!(decode(&bytes).unwrap(), valid());
}

#[test]
fn every_prefix_and_every_bit_flip_is_refused() {
    let bytes = encode(&valid()).unwrap();
    for n in 0..bytes.len() {
        let err = decode(&bytes[..n]).unwrap_err();
        assert_eq!(err.field, "<input>", "prefix {n}");
        assert!(
            err.rule == Some(rules::INPUT_TRAILER) || err.rule == Some(rules::INPUT_CHECKSUM),
            "prefix {n}: {err}"
        );
    }
    let trailer_tag = bytes.len() - 9..bytes.len() - 4;
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut damaged = bytes.clone();
            damaged[i] ^= 1 << bit;
            let err = decode(&damaged).unwrap_err();
            let rule = if trailer_tag.contains(&i) {
                rules::INPUT_TRAILER
            } else {
                rules::INPUT_CHECKSUM
            };
            assert_eq!(
                (err.rule, err.field.as_str()),
                (Some(rule), "<input>"),
                "{i}/{bit}"
            );
        }
    }
}

#[test]
fn wire_rules_name_their_message_or_field() {
    let body = valid().encode_to_vec();
    let with = |extra: &[u8]| [body.as_slice(), extra].concat();
    let s = |r: &str, p: &str| (r.to_string(), p.to_string());
    // A tag cut short, a tag of 2^32, field 0, the trailer's number, a group.
    assert_eq!(verdict(&with(&[0x80])), s("wire.truncated", "<input>"));
    assert_eq!(
        verdict(&with(&[0x80, 0x80, 0x80, 0x80, 0x10])),
        s("wire.varint", "<input>")
    );
    assert_eq!(verdict(&[0x02, 0x00]), s("wire.tag", "<input>"));
    assert_eq!(
        verdict(&[0xFD, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0, 0, 0]),
        s("wire.tag", "<input>")
    );
    assert_eq!(verdict(&with(&[0x83, 0x01])), s("wire.tag", "<input>"));
    // A non-minimal tag.
    assert_eq!(
        verdict(&[0x8a, 0x00, 0x01, b'x']),
        s("wire.varint", "<input>")
    );
    // Out of order; an unknown field repeated with another wire type.
    assert_eq!(verdict(&with(&[0x08, 0x01])), s("wire.order", "<input>"));
    assert_eq!(
        verdict(&with(&[
            0x98, 0x06, 0x01, 0x99, 0x06, 0, 0, 0, 0, 0, 0, 0, 0
        ])),
        s("wire.order", "<input>")
    );
    // Values: a non-minimal known varint names the field, an unknown one the
    // message; lengths past the end name the message.
    assert_eq!(
        verdict(&with(&[0x78, 0x81, 0x00])),
        s("wire.varint", "direction")
    );
    assert_eq!(
        verdict(&with(&[0x98, 0x06, 0x81, 0x00])),
        s("wire.varint", "<input>")
    );
    assert_eq!(
        verdict(&with(&[0x7a, 0x05, 0x00])),
        s("wire.tag", "<input>")
    );
    assert_eq!(
        verdict(&with(&[0xa2, 0x06, 0x05, 0x00])),
        s("wire.truncated", "<input>")
    );
    // Inside messages: created_at.nanos out of int32 range, a default.
    let ts = |content: &[u8]| len_field(0x3a, content);
    assert_eq!(
        verdict(&ts(&[0x10, 0xff, 0xff, 0xff, 0xff, 0x0f])),
        s("wire.range", "created_at.nanos")
    );
    assert_eq!(
        verdict(&ts(&[0x10, 0x00])),
        s("wire.default", "created_at.nanos")
    );
    assert_eq!(verdict(&ts(&[0x08])), s("wire.truncated", "created_at"));
    // Negative int32, sign-extended to 10 bytes, passes the grammar.
    let negative = ts(&[
        0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ]);
    assert_eq!(verdict(&negative).0, "format.required");
    // Strings, bools, oneofs in nested Terms.
    assert_eq!(verdict(&[0x0a, 0x01, 0xc0]), s("wire.utf8", "format"));
    assert_eq!(verdict(&[0x12, 0x00]), s("wire.default", "session_id"));
    let reason = |term: &[u8]| len_field(0x72, term);
    assert_eq!(
        verdict(&reason(&[0x10, 0x02])),
        s("wire.range", "terminal_reason.bool_value")
    );
    assert_eq!(
        verdict(&reason(&[0x10, 0x01, 0x18, 0x02])),
        s("wire.oneof", "terminal_reason")
    );
    let list = len_field(0x4a, &len_field(0x0a, &[0x10, 0x01, 0x18, 0x02]));
    assert_eq!(
        verdict(&reason(&list)),
        s("wire.oneof", "terminal_reason.list_value.items[0]")
    );
    // Trial log entries count their index; a TermMap field holds depth 2.
    let progress = [
        &[0x4a][..],
        &[10][..],
        &len_field(0x0a, &[0x08, 0x00])[..],
        &len_field(0x0a, &[0x20, 0x01])[..],
        &len_field(0x0a, &[0x08, 0x80, 0x00])[..],
    ]
    .concat();
    assert_eq!(
        verdict(&progress),
        s("wire.default", "progress.trial_log[0].trial_idx")
    );
}

fn nested_term(depth: usize) -> Vec<u8> {
    // A list nested `depth` deep around an empty list: Term{list_value{items…}}.
    let mut term = vec![0x4a, 0x00];
    for _ in 1..depth {
        let items = [&[0x0a][..], &varint(term.len() as u64), &term].concat();
        term = [&[0x4a][..], &varint(items.len() as u64), &items].concat();
    }
    term
}

#[test]
fn term_depth_is_checked_on_entering_a_term() {
    let reason = |term: &[u8]| [&[0x72][..], &varint(term.len() as u64), term].concat();
    assert_eq!(verdict(&reason(&nested_term(24))).0, "format.required");
    let (rule, path) = verdict(&reason(&nested_term(25)));
    assert_eq!(rule, "term.depth");
    assert_eq!(
        path,
        String::from("terminal_reason") + &".list_value.items[0]".repeat(24)
    );
}

#[test]
fn weight_limit_counts_every_message() {
    // A Progress of n empty trial entries: 48 + 104 n.
    let body = |n: usize| {
        let entries: Vec<u8> = [0x0a, 0x00].repeat(n);
        [&[0x4a][..], &varint(entries.len() as u64), &entries].concat()
    };
    let weight = |n: usize| 48 + 104 * n as u64;
    let fits = |n: usize| weight(n) <= weight_limit(body(n).len() + TRAILER_SIZE);
    let factor = weight_limit(1) - weight_limit(0);
    let mut n = (weight_limit(0) / (104 - 2 * factor)) as usize;
    while !fits(n) {
        n -= 1;
    }
    while fits(n + 1) {
        n += 1;
    }
    // n entries weigh at most the limit: the grammar passes (the format is
    // missing); n + 1 is over it.
    assert_eq!(verdict(&body(n)).0, "format.required");
    assert_eq!(
        verdict(&body(n + 1)),
        ("input.weight".to_string(), "<input>".to_string())
    );
}

#[test]
fn weight_limit_is_7_x_the_length_plus_48_mib() {
    assert_eq!(weight_limit(0), 50_331_648);
    assert_eq!(weight_limit(100), 700 + 50_331_648);
    assert_eq!(weight_limit(268_435_456), 7 * 268_435_456 + 50_331_648);
}

#[test]
fn weight_exactly_at_the_limit_passes_and_one_byte_shorter_is_refused() {
    // A Progress of n empty trial entries (48 + 104 n) and a sampler blob of
    // `blob` bytes, which weighs nothing: each of its bytes moves the limit
    // by 7 and not the weight.
    let body = |n: usize, blob: usize| {
        let entries: Vec<u8> = [0x0a, 0x00].repeat(n);
        let progress = [&[0x4a][..], &varint(entries.len() as u64), &entries].concat();
        [progress, len_field(0x5a, &b"x".repeat(blob))].concat()
    };
    let weight = |n: usize| 48 + 104 * n as u64;
    let factor = weight_limit(1) - weight_limit(0);
    let mut n = ((weight_limit(0) - 48) / (104 - 2 * factor)) as usize - 40;
    let blob = loop {
        let excess = weight(n) as i64 - weight_limit(0) as i64;
        if excess % factor as i64 == 0 {
            let blob = excess / factor as i64 - (body(n, 1).len() + TRAILER_SIZE) as i64 + 1;
            assert!(blob <= 127, "the search started past the limit: n = {n}");
            if blob >= 2 {
                break blob as usize;
            }
        }
        n += 1;
    };
    let at = body(n, blob);
    let shorter = body(n, blob - 1);
    assert_eq!(weight(n), weight_limit(at.len() + TRAILER_SIZE));
    assert_eq!(shorter.len(), at.len() - 1);
    assert_eq!(
        weight(n),
        weight_limit(shorter.len() + TRAILER_SIZE) + factor
    );
    // At the limit the grammar passes (the format is missing); one byte
    // shorter, the weight is over it.
    assert_eq!(verdict(&at).0, "format.required");
    let err = decode(&seal(&shorter)).expect_err("refused");
    assert_eq!(
        (err.rule.unwrap_or_default(), err.field.as_str()),
        ("input.weight", "<input>")
    );
    let detail = format!(
        "weight {} over the limit of {} for {} bytes",
        weight(n),
        weight(n) - factor,
        shorter.len() + TRAILER_SIZE
    );
    assert!(err.to_string().contains(&detail), "{err}");
}

#[test]
fn unknown_fields_are_kept_byte_for_byte() {
    let cp = valid();
    let body = cp.encode_to_vec();
    // Re-encode with unknown fields appended to nested messages: the Term of
    // stats (value), the trial entry, progress, and the top level.
    let mut decoded = decode_with_unknown(&encode(&cp).unwrap()).unwrap();
    assert!(decoded.unknown.is_empty());
    assert_eq!(decoded.encode().unwrap(), seal(&body));
    let p = cp.progress.as_ref().unwrap();
    let value_term = [0x10, 0x01, 0xe0, 0x01, 0x07];
    let entry_kv = [
        len_field(0x0a, &[0x32, 0x01, b'k']),
        len_field(0x12, &value_term),
    ]
    .concat();
    let stats = len_field(0x0a, &entry_kv);
    let trial = [
        &[0x19][..],
        &0.5f64.to_le_bytes(),
        &[0x20, 0x01][..],
        &len_field(0x2a, &stats),
        &[0xca, 0x01, 0x01, b'z'][..],
    ]
    .concat();
    let mut trial_full = vec![];
    trial_full.extend(len_field(0x0a, &trial));
    let progress_rest = Progress {
        trial_log: vec![],
        ..p.clone()
    }
    .encode_to_vec();
    let progress = [trial_full.as_slice(), &progress_rest, &[0xf8, 0x01, 0x05]].concat();
    let mut top = Checkpoint {
        progress: None,
        ..cp.clone()
    }
    .encode_to_vec();
    // progress is field 9: put it after updated_at (8) and before sampler_format (12).
    let insert_at = top.iter().position(|&b| b == 0x62).unwrap();
    let mut progress_field = vec![0x4a];
    progress_field.extend(varint(progress.len() as u64));
    progress_field.extend(&progress);
    top.splice(insert_at..insert_at, progress_field);
    top.extend([0xa0, 0x06, 0x2a]);
    let newer = seal(&top);
    decoded = decode_with_unknown(&newer).expect("accepted");
    assert_eq!(decoded.checkpoint, cp);
    assert_eq!(decoded.unknown.len(), 4);
    assert_eq!(decoded.unknown.get(&[]), Some(&[0xa0, 0x06, 0x2a][..]));
    assert_eq!(
        decoded.unknown.get(&[(9, 0), (1, 0)]),
        Some(&[0xca, 0x01, 0x01, b'z'][..])
    );
    assert_eq!(decoded.encode().unwrap(), newer);
    // A modified checkpoint keeps them where they stood.
    decoded.checkpoint.session_id = "s2".into();
    let again = decode_with_unknown(&decoded.encode().unwrap()).unwrap();
    assert_eq!(again.unknown, decoded.unknown);
    assert_eq!(again.checkpoint.session_id, "s2");
    // decode without them gives the known fields only.
    assert_eq!(encode(&decode(&newer).unwrap()).unwrap(), seal(&body));
}

#[test]
fn encode_refuses_an_invalid_checkpoint() {
    let mut cp = valid();
    cp.session_id.clear();
    let err = encode(&cp).unwrap_err();
    assert_eq!(
        (err.rule, err.field.as_str()),
        (Some(rules::SESSION_ID_REQUIRED), "session_id")
    );
}
