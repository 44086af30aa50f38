//! Store files (docs/store-file.md): the vectors of tests/vectors/store/,
//! bit flips, truncations, commit records (§9) and writing.
//! `DSXIR_VECTORS_DIR` overrides the vector directory (default
//! ../tests/vectors).

use std::fs;
use std::path::PathBuf;

use dsxir_checkpoint::storefile::{
    self, Error, Kind, HEADER_SIZE, MAX_SUMMARY_BYTES, RECORD_HEADER_SIZE,
};
use dsxir_checkpoint::{
    delta_rules, encode, encode_delta, encode_with_unknown, record_trial, Checkpoint,
    CheckpointDelta, Trial, UnknownFields, DELTA_FORMAT_ID,
};
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    match std::env::var_os("DSXIR_VECTORS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors"),
    }
}

fn read_vector(rel: &str) -> Vec<u8> {
    let path = vectors_dir().join(rel);
    fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn manifest() -> Vec<Value> {
    let text = String::from_utf8(read_vector("store/manifest.jsonl")).expect("UTF-8");
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

fn field<'a>(vector: &'a Value, key: &str) -> &'a str {
    vector[key]
        .as_str()
        .unwrap_or_else(|| panic!("{vector}: no {key}"))
}

#[test]
fn the_manifest_lists_every_verdict() {
    let vectors = manifest();
    let count = |verdict: &str| {
        vectors
            .iter()
            .filter(|v| field(v, "verdict") == verdict)
            .count()
    };
    assert!(count("ok") >= 10 && count("damaged") >= 20 && count("checkpoint_refused") >= 3);
    assert!(count("delta_refused") >= 2);
    assert_eq!(
        vectors.len(),
        count("ok") + count("damaged") + count("checkpoint_refused") + count("delta_refused")
    );
    for kind in ["record_checksum", "record_generation", "unsupported_flags"] {
        assert!(
            vectors
                .iter()
                .any(|v| v["verdict"] == "damaged" && v["kind"] == kind),
            "{kind}"
        );
    }
}

#[test]
fn valid_vectors_are_read_and_written_back() {
    for vector in manifest().iter().filter(|v| field(v, "verdict") == "ok") {
        let name = field(vector, "name");
        let data = read_vector(field(vector, "file"));
        let file = storefile::read(&data).unwrap_or_else(|e| panic!("{name}: refused: {e}"));
        assert_eq!(
            file.generation.to_string(),
            field(vector, "generation"),
            "{name}"
        );
        // Unknown fields are kept: the checkpoint and the file are written
        // back byte for byte.
        let checkpoint = read_vector(field(vector, "checkpoint"));
        assert!(
            encode_with_unknown(&file.checkpoint, &file.unknown).unwrap() == checkpoint,
            "{name}: checkpoint"
        );
        assert_eq!(file.appendable, data[11] == 1, "{name}");
        let written = if file.appendable {
            storefile::write_appendable(file.generation, &file.checkpoint, &file.unknown)
        } else {
            storefile::write_with_unknown(file.generation, &file.checkpoint, &file.unknown)
        }
        .expect("write");
        let summary = if file.records == 0 {
            assert_eq!(file.end, data.len(), "{name}");
            assert!(written == data, "{name}: written back differently");
            let length = u32::from_be_bytes(data[20..24].try_into().unwrap()) as usize;
            data[HEADER_SIZE..HEADER_SIZE + length].to_vec()
        } else {
            // The records are folded into a new snapshot, which reads back
            // as the same checkpoint; the last record holds its summary.
            let again = storefile::read(&written).expect("the snapshot written");
            assert_eq!(
                (again.generation, &again.checkpoint, again.records),
                (file.generation, &file.checkpoint, 0),
                "{name}"
            );
            let records = records_of(&data);
            assert_eq!(records.len(), file.records, "{name}");
            records.last().unwrap().summary.clone()
        };
        let json: Value = serde_json::from_slice(&summary).expect("JSON");
        let s = &file.summary;
        assert_eq!(json["session_id"], s.session_id.as_str(), "{name}");
        assert_eq!(json["optimizer"], s.optimizer.as_str(), "{name}");
        assert_eq!(json["status"], s.status, "{name}");
        assert_eq!(json["attempts"], s.attempts, "{name}");
        assert_eq!(json["completed"], s.completed, "{name}");
        assert_eq!(json["errors"], s.errors, "{name}");
        assert_eq!(json["trials"], s.trials, "{name}");
        assert_eq!(json["best_trial_idx"].as_u64(), s.best_trial_idx, "{name}");
        assert_eq!(
            json["best_score"].is_null(),
            s.best_score.is_none(),
            "{name}"
        );
        assert_eq!(json["updated_at"][0], s.updated_at_seconds, "{name}");
        assert_eq!(json["updated_at"][1], s.updated_at_nanos, "{name}");
    }
}

#[test]
fn damaged_and_invalid_vectors_are_refused() {
    for vector in manifest().iter().filter(|v| field(v, "verdict") != "ok") {
        let name = field(vector, "name");
        let data = read_vector(field(vector, "file"));
        match (field(vector, "verdict"), storefile::read(&data)) {
            ("damaged", Err(Error::Corrupt(e))) => {
                assert_eq!(e.kind.as_str(), field(vector, "kind"), "{name}: {e}");
                assert!(
                    e.to_string()
                        .starts_with(&format!("store_file: {}: ", e.kind)),
                    "{name}: {e}"
                );
            }
            ("checkpoint_refused", Err(Error::Checkpoint(e))) => {
                assert_eq!(e.field, field(vector, "field"), "{name}: {e}");
                assert_eq!(e.reason, "checkpoint_shape", "{name}: {e}");
                assert_eq!(e.rule, Some(field(vector, "rule")), "{name}: {e}");
            }
            ("delta_refused", Err(Error::Delta(e))) => {
                assert_eq!(e.field, field(vector, "field"), "{name}: {e}");
                assert_eq!(e.rule, Some(field(vector, "rule")), "{name}: {e}");
                assert!(
                    e.to_string()
                        .starts_with(&format!("delta_shape: {}: ", e.field)),
                    "{name}: {e}"
                );
            }
            (verdict, got) => panic!("{name}: want {verdict}, got {got:?}"),
        }
    }
}

fn good() -> Vec<u8> {
    read_vector("store/running_trials.dsxckpt")
}

#[test]
fn every_flipped_bit_is_refused_as_damage() {
    let good = good();
    for i in 0..good.len() {
        for bit in 0..8 {
            let mut damaged = good.clone();
            damaged[i] ^= 1 << bit;
            assert!(
                matches!(storefile::read(&damaged), Err(Error::Corrupt(_))),
                "byte {i} bit {bit}"
            );
        }
    }
}

#[test]
fn every_truncation_is_refused_as_truncated() {
    let good = good();
    for n in 0..good.len() {
        match storefile::read(&good[..n]) {
            Err(Error::Corrupt(e)) if e.kind == Kind::Truncated => {}
            other => panic!("{n} bytes: {other:?}"),
        }
    }
}

fn checkpoint() -> Checkpoint {
    storefile::read(&good()).expect("valid").checkpoint
}

#[test]
fn write_refuses_an_invalid_checkpoint_and_a_summary_over_the_limit() {
    let mut invalid = checkpoint();
    invalid.progress.as_mut().unwrap().completed += 1;
    match storefile::write(1, &invalid) {
        Err(Error::Checkpoint(e)) => assert_eq!(e.field, "progress.completed"),
        other => panic!("{other:?}"),
    }
    assert!(storefile::encode_summary(&invalid).is_err());
    let mut huge = checkpoint();
    huge.optimizer = "x".repeat(MAX_SUMMARY_BYTES);
    assert!(matches!(
        storefile::write(1, &huge),
        Err(Error::SummaryTooLarge(_))
    ));
    huge.optimizer = "x".repeat(MAX_SUMMARY_BYTES - 300);
    let data = storefile::write(1, &huge).expect("under the limit");
    assert_eq!(storefile::read(&data).expect("read back").checkpoint, huge);
}

#[test]
fn write_then_read_at_every_generation() {
    let cp = checkpoint();
    for generation in [0, 1, 1 << 63, u64::MAX] {
        let file = storefile::read(&storefile::write(generation, &cp).unwrap()).unwrap();
        assert_eq!(file.generation, generation);
        assert_eq!(file.checkpoint, cp);
        let good = good();
        let length = u32::from_be_bytes(good[20..24].try_into().unwrap()) as usize;
        assert_eq!(
            storefile::encode_summary(&cp).unwrap(),
            good[HEADER_SIZE..HEADER_SIZE + length]
        );
    }
}

// --- commit records (docs/store-file.md §9) ---------------------------------

/// One commit record as laid out in a file.
#[derive(Debug, Clone)]
struct RawRecord {
    start: usize,
    generation: u64,
    summary: Vec<u8>,
    delta: Vec<u8>,
    end: usize,
}

/// The records of an intact appendable file, parsed from the layout of §9.1
/// (the checksums are left to the reader under test).
fn records_of(data: &[u8]) -> Vec<RawRecord> {
    let be32 = |at: usize| u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
    let body = u64::from_be_bytes(data[24..32].try_into().unwrap()) as usize;
    let mut at = HEADER_SIZE + be32(20) + body;
    let mut out = Vec::new();
    while data.len() - at >= RECORD_HEADER_SIZE {
        let (s, d) = (be32(at + 12), be32(at + 16));
        let end = at + RECORD_HEADER_SIZE + s + d;
        if end > data.len() {
            break;
        }
        let payload = &data[at + RECORD_HEADER_SIZE..end];
        out.push(RawRecord {
            start: at,
            generation: u64::from_be_bytes(data[at + 4..at + 12].try_into().unwrap()),
            summary: payload[..s].to_vec(),
            delta: payload[s..].to_vec(),
            end,
        });
        at = end;
    }
    out
}

fn records_three() -> Vec<u8> {
    read_vector("store/records_three.dsxckpt")
}

/// The canonical checkpoint bytes a store file reads as.
fn read_bytes(data: &[u8]) -> Result<(u64, Vec<u8>), Error> {
    let file = storefile::read(data)?;
    Ok((
        file.generation,
        encode_with_unknown(&file.checkpoint, &file.unknown).expect("encodes"),
    ))
}

#[test]
fn the_record_writer_writes_the_records_of_the_vectors() {
    let data = records_three();
    let records = records_of(&data);
    assert_eq!(records.len(), 3);
    for r in &records {
        let written = storefile::record(r.generation, &r.summary, &r.delta).expect("record");
        assert!(written == data[r.start..r.end], "record at {}", r.start);
    }
    let file = storefile::read(&data).unwrap();
    assert_eq!((file.records, file.end), (3, data.len()));
}

#[test]
fn every_cut_reads_as_the_records_before_it() {
    let data = records_three();
    let records = records_of(&data);
    let snapshot_end = records[0].start;
    // What the file reads as with 0, 1, 2 and 3 whole records.
    let mut boundaries = vec![snapshot_end];
    boundaries.extend(records.iter().map(|r| r.end));
    let expected: Vec<_> = boundaries
        .iter()
        .map(|&end| read_bytes(&data[..end]).expect("whole records"))
        .collect();
    assert_eq!(expected[0].0 + 3, expected[3].0);
    assert_eq!(expected[3].1, read_vector("store/records_three.checkpoint"));
    for cut in snapshot_end..=data.len() {
        let whole = boundaries.iter().rposition(|&end| end <= cut).unwrap();
        let file = storefile::read(&data[..cut]).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        assert_eq!(file.records, whole, "cut {cut}");
        assert_eq!(file.end, boundaries[whole], "cut {cut}");
        assert_eq!(
            read_bytes(&data[..cut]).unwrap(),
            expected[whole],
            "cut {cut}"
        );
    }
    // Inside the snapshot, a cut is a truncated file.
    for cut in 0..snapshot_end {
        match storefile::read(&data[..cut]) {
            Err(Error::Corrupt(e)) if e.kind == Kind::Truncated => {}
            other => panic!("cut {cut}: {other:?}"),
        }
    }
}

#[test]
fn every_flipped_bit_of_a_record_is_record_checksum() {
    let data = records_three();
    let first = records_of(&data)[0].start;
    for i in 0..data.len() {
        for bit in 0..8 {
            let mut damaged = data.clone();
            damaged[i] ^= 1 << bit;
            match storefile::read(&damaged) {
                Err(Error::Corrupt(e)) if i < first || e.kind == Kind::RecordChecksum => {}
                other => panic!("byte {i} bit {bit}: {other:?}"),
            }
        }
    }
}

/// The file of `snapshot` (generation `generation`, flag 1) followed by
/// one record per delta, the generations following each other, each with
/// the summary of the checkpoint in `after`.
fn appended(
    generation: u64,
    snapshot: &Checkpoint,
    commits: &[(CheckpointDelta, Checkpoint)],
) -> Vec<u8> {
    let mut data =
        storefile::write_appendable(generation, snapshot, &UnknownFields::default()).unwrap();
    for (i, (delta, after)) in commits.iter().enumerate() {
        // The summary of a checkpoint that breaks a rule of FORMAT.md §7
        // (only in a record before the last) is left empty: a reader checks
        // the summary of the last record only.
        let summary = storefile::encode_summary(after).unwrap_or_default();
        let bytes = encode_delta(delta).expect("a readable delta");
        data.extend(storefile::record(generation + 1 + i as u64, &summary, &bytes).unwrap());
    }
    data
}

/// The delta of `new` over `base` that keeps nothing: the head is `new`
/// with only the trial entries `base` does not have.
fn delta_of(base: &Checkpoint, new: &Checkpoint, base_generation: u64) -> CheckpointDelta {
    let base_trials = base.progress.as_ref().map_or(0, |p| p.trial_log.len());
    let mut head = new.clone();
    if let Some(p) = head.progress.as_mut() {
        p.trial_log.drain(..base_trials);
    }
    CheckpointDelta {
        format: DELTA_FORMAT_ID.into(),
        base_generation,
        base_trials: base_trials as u64,
        head: Some(head),
        ..Default::default()
    }
}

fn with_trial(cp: &Checkpoint, score: f64) -> Checkpoint {
    let mut next = cp.clone();
    record_trial(
        &mut next,
        Trial {
            score: Some(score),
            ..Default::default()
        },
    )
    .expect("a trial");
    next
}

#[test]
fn appended_records_read_as_the_last_commit() {
    let c0 = checkpoint();
    let c1 = with_trial(&c0, 0.5);
    let c2 = with_trial(&c1, 0.9);
    let data = appended(
        41,
        &c0,
        &[
            (delta_of(&c0, &c1, 41), c1.clone()),
            (delta_of(&c1, &c2, 42), c2.clone()),
        ],
    );
    let file = storefile::read(&data).expect("valid");
    assert_eq!((file.generation, file.records), (43, 2));
    assert_eq!(file.checkpoint, c2);
    assert_eq!(encode(&file.checkpoint).unwrap(), encode(&c2).unwrap());
    assert_eq!(
        file.summary.trials,
        c2.progress.as_ref().unwrap().trial_log.len() as u64
    );
    // The summary of the last record must be the final checkpoint's.
    let stale = appended(
        41,
        &c0,
        &[
            (delta_of(&c0, &c1, 41), c1.clone()),
            (delta_of(&c1, &c2, 42), c1.clone()),
        ],
    );
    match storefile::read(&stale) {
        Err(Error::Corrupt(e)) => assert_eq!(e.kind, Kind::SummaryMismatch),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_head_without_progress_drops_the_entries_before_it() {
    let c0 = checkpoint();
    let mut bare = c0.clone();
    bare.progress = None;
    let drop_all = delta_of(&c0, &bare, 5);
    assert_eq!(drop_all.base_trials, 4);
    // The next delta counts its base's trials from 0 and brings every entry
    // back: the final checkpoint is the snapshot's again.
    let refill = delta_of(&bare, &c0, 6);
    assert_eq!(refill.base_trials, 0);
    let data = appended(
        5,
        &c0,
        &[(drop_all.clone(), bare.clone()), (refill, c0.clone())],
    );
    let file = storefile::read(&data).expect("valid");
    assert_eq!((file.generation, file.checkpoint), (7, c0.clone()));
    // A delta that counts the dropped entries does not fit.
    let mut counted = delta_of(&bare, &c0, 6);
    counted.base_trials = 4;
    let data = appended(5, &c0, &[(drop_all, bare), (counted, c0.clone())]);
    match storefile::read(&data) {
        Err(Error::Delta(e)) => {
            assert_eq!(
                (e.rule, e.field.as_str()),
                (Some(delta_rules::DELTA_BASE_TRIALS), "base_trials")
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn only_the_checkpoint_the_records_end_with_is_checked() {
    let c0 = checkpoint();
    let c1 = with_trial(&c0, 0.5);
    let mut broken = c1.clone();
    broken.progress.as_mut().unwrap().completed += 7;
    assert!(storefile::encode_summary(&broken).is_err());
    let fixed = with_trial(&c1, 0.25);
    let commits = [
        (delta_of(&c0, &broken, 3), broken.clone()),
        (delta_of(&broken, &fixed, 4), fixed.clone()),
    ];
    let file = storefile::read(&appended(3, &c0, &commits)).expect("valid at the end");
    assert_eq!(file.checkpoint, fixed);
    // Ending with the broken one refuses it as the checkpoint decoder does.
    match storefile::read(&appended(3, &c0, &commits[..1])) {
        Err(Error::Checkpoint(e)) => {
            assert_eq!(
                (e.reason, e.field.as_str()),
                ("checkpoint_shape", "progress.completed")
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn records_are_framed_before_any_is_applied_in_the_order_of_section_9_2() {
    let c0 = checkpoint();
    let c1 = with_trial(&c0, 0.5);
    let c2 = with_trial(&c1, 0.9);
    let commits = [
        (delta_of(&c0, &c1, 10), c1.clone()),
        (delta_of(&c1, &c2, 11), c2.clone()),
    ];
    let good = appended(10, &c0, &commits);
    let records = records_of(&good);
    let rewrite = |i: usize, generation: u64, delta: &[u8]| {
        let mut data = good[..records[i].start].to_vec();
        data.extend(storefile::record(generation, &records[i].summary, delta).unwrap());
        data.extend_from_slice(&good[records[i].end..]);
        data
    };
    let kind = |data: &[u8]| match storefile::read(data) {
        Err(Error::Corrupt(e)) => e.kind,
        other => panic!("{other:?}"),
    };
    // The first record out of sequence and the second one damaged: the
    // damage is found first (steps 1-5 for every record, then 6-9).
    let mut data = rewrite(0, 12, &records[0].delta);
    let last = data.len() - 1;
    data[last] ^= 1;
    assert_eq!(kind(&data), Kind::RecordChecksum);
    data[last] ^= 1;
    assert_eq!(kind(&data), Kind::RecordGeneration);
    // A header damaged after a record with a wrong base generation.
    let mut other_base = commits[0].0.clone();
    other_base.base_generation = 9;
    let mut data = rewrite(0, 11, &encode_delta(&other_base).unwrap());
    let second = records_of(&data)[1].start;
    data[second + 4] ^= 0x80;
    assert_eq!(kind(&data), Kind::RecordChecksum);
    data[second + 4] ^= 0x80;
    assert_eq!(kind(&data), Kind::RecordGeneration);
    // Another session's delta, then a bad header: the damage is found first.
    let mut other_session = commits[0].0.clone();
    other_session.head.as_mut().unwrap().session_id = "another".into();
    let mut data = rewrite(0, 11, &encode_delta(&other_session).unwrap());
    let second = records_of(&data)[1].start;
    data[second] ^= 1;
    assert_eq!(kind(&data), Kind::RecordChecksum);
    data[second] ^= 1;
    match storefile::read(&data) {
        Err(Error::Delta(e)) => assert_eq!(e.rule, Some(delta_rules::DELTA_SESSION)),
        other => panic!("{other:?}"),
    }
    // The generation after 2^64-1 does not exist.
    let top = storefile::write_appendable(u64::MAX, &c0, &UnknownFields::default()).unwrap();
    let mut data = top.clone();
    let delta = encode_delta(&delta_of(&c0, &c1, u64::MAX)).unwrap();
    let summary = storefile::encode_summary(&c1).unwrap();
    data.extend(storefile::record(0, &summary, &delta).unwrap());
    assert_eq!(kind(&data), Kind::RecordGeneration);
    // A record whose lengths are over the limits, its header CRC right.
    let mut data = top;
    let mut head = storefile::record(0, &summary, &delta).unwrap()[..RECORD_HEADER_SIZE].to_vec();
    head[16..20].copy_from_slice(&(1u32 << 29).to_be_bytes());
    let crc = dsxir_checkpoint::crc32c(&head[..24]);
    head[24..].copy_from_slice(&crc.to_be_bytes());
    data.extend(head);
    assert_eq!(kind(&data), Kind::OverLimits);
}

#[test]
fn flags_other_than_0_and_1_are_refused_and_flags_0_has_no_records() {
    let cp = checkpoint();
    let plain = storefile::write(2, &cp).unwrap();
    let appendable = storefile::write_appendable(2, &cp, &UnknownFields::default()).unwrap();
    assert_eq!((plain[11], appendable[11]), (0, 1));
    assert_eq!(plain[..10], appendable[..10]);
    assert_eq!(plain[12..40], appendable[12..40]);
    let file = storefile::read(&appendable).unwrap();
    assert!(file.appendable && file.records == 0 && file.checkpoint == cp);
    // 27 bytes after the body: a torn tail with flags 1, trailing bytes
    // with flags 0.
    let mut torn = appendable.clone();
    torn.extend([0u8; 27]);
    assert_eq!(storefile::read(&torn).unwrap().end, appendable.len());
    let mut trailing = plain.clone();
    trailing.extend([0u8; 27]);
    match storefile::read(&trailing) {
        Err(Error::Corrupt(e)) => assert_eq!(e.kind, Kind::TrailingBytes),
        other => panic!("{other:?}"),
    }
    for flags in [2u16, 3, 0x8000, 0xFFFF] {
        let mut data = appendable.clone();
        data[10..12].copy_from_slice(&flags.to_be_bytes());
        let crc = dsxir_checkpoint::crc32c(&data[..40]);
        data[40..44].copy_from_slice(&crc.to_be_bytes());
        match storefile::read(&data) {
            Err(Error::Corrupt(e)) => assert_eq!(e.kind, Kind::UnsupportedFlags, "{flags}"),
            other => panic!("{flags}: {other:?}"),
        }
    }
    // A record magic that is wrong (its header CRC right) is damage, not a tail.
    let mut data = appendable;
    let mut head = vec![0u8; RECORD_HEADER_SIZE];
    head[..4].copy_from_slice(b"\x89dlu");
    let crc = dsxir_checkpoint::crc32c(&head[..24]);
    head[24..].copy_from_slice(&crc.to_be_bytes());
    data.extend(head);
    match storefile::read(&data) {
        Err(Error::Corrupt(e)) => assert_eq!(e.kind, Kind::RecordChecksum),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_record_writer_refuses_lengths_over_the_limits() {
    assert!(matches!(
        storefile::record(1, &vec![b'x'; MAX_SUMMARY_BYTES + 1], b""),
        Err(Error::SummaryTooLarge(_))
    ));
}
