/** Store files (docs/store-file.md) and the vectors of tests/vectors/store/. */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { clone, create } from "@bufbuild/protobuf";
import {
  type Checkpoint,
  CheckpointDeltaSchema,
  CheckpointSchema,
  DELTA_FORMAT_ID,
  decode,
  encode,
  encodeDelta,
  InvalidCheckpoint,
  InvalidDelta,
  makeDelta,
  ResumeMismatch,
} from "../src/index.js";
import {
  commitRecord,
  CorruptStoreFile,
  crc32c,
  encodeRecord,
  encodeSummary,
  MAX_SUMMARY_BYTES,
  RECORD_HEADER_SIZE,
  readStoreFile,
  STORE_HEADER_SIZE,
  writeStoreFile,
} from "../src/storefile.js";
import { hexOf, VECTORS, vector } from "./helpers.js";

interface StoreVector {
  name: string;
  file: string;
  verdict: "ok" | "damaged" | "checkpoint_refused" | "delta_refused";
  generation?: string;
  checkpoint?: string;
  known_only?: string;
  kind?: string;
  field?: string;
  rule?: string;
}

const vectors: StoreVector[] = readFileSync(new URL("store/manifest.jsonl", VECTORS), "utf8")
  .split("\n")
  .filter((line) => line !== "")
  .map((line) => JSON.parse(line) as StoreVector);

test("the store manifest lists every verdict", () => {
  const count = (verdict: string) => vectors.filter((v) => v.verdict === verdict).length;
  assert.ok(count("ok") >= 10);
  assert.ok(count("damaged") >= 20);
  assert.ok(count("checkpoint_refused") >= 3);
  assert.ok(count("delta_refused") >= 2);
  assert.equal(
    vectors.length,
    count("ok") + count("damaged") + count("checkpoint_refused") + count("delta_refused"),
  );
  for (const kind of ["record_checksum", "record_generation"]) {
    assert.ok(vectors.some((v) => v.kind === kind), kind);
  }
});

/** The offsets where the snapshot ends and where each whole commit record ends (the torn tail excluded). */
function recordBounds(data: Uint8Array): number[] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = STORE_HEADER_SIZE + view.getUint32(20) + Number(view.getBigUint64(24));
  const bounds = [at];
  while (data.length - at >= RECORD_HEADER_SIZE) {
    const next = at + RECORD_HEADER_SIZE + view.getUint32(at + 12) + view.getUint32(at + 16);
    if (next > data.length) {
      break;
    }
    bounds.push(next);
    at = next;
  }
  return bounds;
}

for (const v of vectors) {
  test(`store vector ${v.name}: ${v.verdict}`, () => {
    const data = vector(v.file);
    if (v.verdict === "ok") {
      const file = readStoreFile(data);
      assert.equal(file.generation, BigInt(v.generation!));
      assert.equal(hexOf(encode(file.checkpoint)), hexOf(vector(v.checkpoint!)));
      const bounds = recordBounds(data);
      assert.equal(file.records, file.appendable ? bounds.length - 1 : 0);
      assert.equal(file.end, file.appendable ? bounds[bounds.length - 1] : data.length);
      if (file.records === 0) {
        const written = writeStoreFile(file.generation, file.checkpoint, { appendable: file.appendable });
        assert.equal(hexOf(written), hexOf(data));
      }
      // The summary values are the ones of the JSON in the file: the last record's, or the header's.
      const view = new DataView(data.buffer, data.byteOffset);
      const from = file.records === 0 ? STORE_HEADER_SIZE : bounds[bounds.length - 2]! + RECORD_HEADER_SIZE;
      const length = file.records === 0 ? view.getUint32(20) : view.getUint32(from - RECORD_HEADER_SIZE + 12);
      const text = new TextDecoder().decode(data.subarray(from, from + length));
      const json = JSON.parse(text);
      const s = file.summary;
      assert.equal(json.session_id, s.sessionId);
      assert.equal(json.optimizer, s.optimizer);
      assert.equal(json.status, s.status);
      assert.equal(json.trials, s.trials);
      assert.equal(BigInt(json.attempts), s.attempts);
      assert.equal(BigInt(json.completed), s.completed);
      assert.equal(BigInt(json.errors), s.errors);
      assert.equal(json.best_score === null, s.bestScore === null);
      assert.equal(json.best_trial_idx === null, s.bestTrialIdx === null);
      assert.deepEqual(json.updated_at, [Number(s.updatedAt.seconds), s.updatedAt.nanos]);
      return;
    }
    assert.throws(
      () => readStoreFile(data),
      (e: unknown) => {
        if (v.verdict === "damaged") {
          assert.ok(e instanceof CorruptStoreFile, `not a CorruptStoreFile: ${String(e)}`);
          assert.equal(e.kind, v.kind);
          assert.ok(e.message.startsWith(`store_file: ${v.kind}: `), e.message);
        } else if (v.verdict === "delta_refused") {
          assert.ok(e instanceof InvalidDelta, `not an InvalidDelta: ${String(e)}`);
          assert.equal(e.path, v.field);
          assert.equal(e.rule, v.rule);
          assert.ok(e.message.startsWith(`delta_shape: ${v.field}: `), e.message);
        } else {
          assert.ok(e instanceof ResumeMismatch, `not a ResumeMismatch: ${String(e)}`);
          assert.equal(e.reason, "checkpoint_shape");
          assert.equal(e.field, v.field);
          if (v.rule !== undefined) {
            assert.equal(e.rule, v.rule);
          }
        }
        return true;
      },
    );
  });
}

const good = vector("store/running_trials.dsxckpt");

test("crc32c: the check value of 123456789, and of nothing", () => {
  assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

test("every flipped bit is refused as damage", () => {
  for (let i = 0; i < good.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const damaged = good.slice();
      damaged[i]! ^= 1 << bit;
      assert.throws(() => readStoreFile(damaged), CorruptStoreFile, `byte ${i} bit ${bit}`);
    }
  }
});

test("every truncation is refused as truncated", () => {
  for (let n = 0; n < good.length; n++) {
    assert.throws(
      () => readStoreFile(good.subarray(0, n)),
      (e: unknown) => e instanceof CorruptStoreFile && e.kind === "truncated",
      `${n} bytes`,
    );
  }
});

test("a file inside a larger buffer is read from its view", () => {
  const buffer = new Uint8Array(good.length + 7);
  buffer.set(good, 3);
  assert.equal(readStoreFile(buffer.subarray(3, 3 + good.length)).generation, 2n);
});

test("write refuses an invalid checkpoint, a bad generation and a summary over the limit", () => {
  const cp = readStoreFile(good).checkpoint;
  const invalid = clone(CheckpointSchema, cp);
  invalid.progress!.completed += 1n;
  assert.throws(
    () => writeStoreFile(1n, invalid),
    (e: unknown) => e instanceof InvalidCheckpoint && e.path === "progress.completed",
  );
  assert.throws(() => encodeSummary(invalid), InvalidCheckpoint);
  assert.throws(() => writeStoreFile(-1n, cp), RangeError);
  assert.throws(() => writeStoreFile(1n << 64n, cp), RangeError);
  assert.throws(() => writeStoreFile(1.5, cp), RangeError);
  const huge = clone(CheckpointSchema, cp);
  huge.optimizer = "x".repeat(MAX_SUMMARY_BYTES);
  assert.throws(() => writeStoreFile(1n, huge), RangeError);
  huge.optimizer = "x".repeat(MAX_SUMMARY_BYTES - 300);
  assert.equal(readStoreFile(writeStoreFile(1n, huge)).summary.optimizer.length, MAX_SUMMARY_BYTES - 300);
});

test("write then read: every generation, number or bigint", () => {
  const cp = readStoreFile(good).checkpoint;
  for (const generation of [0, 1, 2 ** 53 - 1, 1n << 63n, (1n << 64n) - 1n]) {
    const file = readStoreFile(writeStoreFile(generation, cp));
    assert.equal(file.generation, BigInt(generation));
    assert.equal(hexOf(encode(file.checkpoint)), hexOf(encode(cp)));
  }
});

test("summary strings are escaped as Python's json.dumps(ensure_ascii=False) does", () => {
  const cp = clone(CheckpointSchema, readStoreFile(good).checkpoint);
  cp.optimizer = 'a"\\/\u0000\u001f\b\t\n\f\r\u007f\u2028é😀';
  const text = new TextDecoder().decode(encodeSummary(cp));
  assert.ok(text.includes(String.raw`"optimizer":"a\"\\/\u0000\u001f\b\t\n\f\r` + '\u007f\u2028é😀"'), text);
});

// --- commit records (docs/store-file.md §9) -------------------------------------------------

const withRecords = vector("store/records_three.dsxckpt");
const recordEnds = recordBounds(withRecords);

test("records_three: a snapshot and three records, each readable alone", () => {
  assert.equal(recordEnds.length, 4);
  assert.equal(recordEnds[3], withRecords.length);
  recordEnds.forEach((end, i) => {
    const file = readStoreFile(withRecords.subarray(0, end));
    assert.equal(file.generation, 5n + BigInt(i));
    assert.equal(file.records, i);
    assert.equal(file.end, end);
    assert.equal(file.summary.trials, readStoreFile(good).summary.trials + i);
  });
});

test("every cut inside a record reads as the records before it (a torn tail)", () => {
  const expected = recordEnds.map((end) => {
    const file = readStoreFile(withRecords.subarray(0, end));
    return { generation: file.generation, bytes: hexOf(encode(file.checkpoint)) };
  });
  let whole = 0;
  for (let n = recordEnds[0]!; n <= withRecords.length; n++) {
    while (whole + 1 < recordEnds.length && recordEnds[whole + 1]! <= n) {
      whole++;
    }
    const file = readStoreFile(withRecords.subarray(0, n));
    assert.equal(file.generation, expected[whole]!.generation, `cut at ${n}`);
    assert.equal(file.records, whole, `cut at ${n}`);
    assert.equal(file.end, recordEnds[whole], `cut at ${n}`);
    assert.equal(hexOf(encode(file.checkpoint)), expected[whole]!.bytes, `cut at ${n}`);
  }
});

test("a torn tail after the records of a file without flag 1 is trailing bytes", () => {
  const plain = writeStoreFile(5n, readStoreFile(good).checkpoint);
  const tail = withRecords.subarray(recordEnds[0]!, recordEnds[1]!);
  const joined = new Uint8Array(plain.length + tail.length);
  joined.set(plain);
  joined.set(tail, plain.length);
  assert.throws(
    () => readStoreFile(joined),
    (e: unknown) => e instanceof CorruptStoreFile && e.kind === "trailing_bytes",
  );
});

test("every flipped bit in a record is record_checksum, whichever record", () => {
  for (let i = recordEnds[0]!; i < withRecords.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const damaged = withRecords.slice();
      damaged[i]! ^= 1 << bit;
      assert.throws(
        () => readStoreFile(damaged),
        (e: unknown) => e instanceof CorruptStoreFile && e.kind === "record_checksum",
        `byte ${i} bit ${bit}`,
      );
    }
  }
});

test("a damaged record is reported even when a torn tail follows it", () => {
  const damaged = withRecords.slice(0, withRecords.length - 5);
  damaged[recordEnds[1]! + 30]! ^= 0x10;
  assert.throws(
    () => readStoreFile(damaged),
    (e: unknown) => e instanceof CorruptStoreFile && e.kind === "record_checksum",
  );
});

/** A store file: the snapshot of `records_three` (generation 5), then `records`. */
function appended(...records: Uint8Array[]): Uint8Array {
  const parts = [withRecords.subarray(0, recordEnds[0]!), ...records];
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const chain: Checkpoint[] = recordEnds.map((end) => readStoreFile(withRecords.subarray(0, end)).checkpoint);

test("commitRecord writes the records the Python FileStore writes, and writeStoreFile the snapshot", () => {
  assert.equal(
    hexOf(writeStoreFile(5n, chain[0]!, { appendable: true })),
    hexOf(withRecords.subarray(0, recordEnds[0]!)),
  );
  for (let i = 0; i < 3; i++) {
    const record = commitRecord(chain[i]!, 5n + BigInt(i), chain[i + 1]!);
    assert.equal(hexOf(record), hexOf(withRecords.subarray(recordEnds[i]!, recordEnds[i + 1]!)), `record ${i}`);
  }
});

test("commitRecord refuses what is not a successor, and generations out of range", () => {
  const invalid = clone(CheckpointSchema, chain[1]!);
  invalid.progress!.completed += 7n;
  assert.throws(() => commitRecord(chain[0]!, 5n, invalid), InvalidCheckpoint);
  assert.throws(() => commitRecord(chain[2]!, 5n, chain[1]!)); // the trial log does not extend
  assert.throws(() => commitRecord(chain[0]!, 0n, chain[1]!), RangeError);
  assert.throws(() => commitRecord(chain[0]!, (1n << 64n) - 1n, chain[1]!), RangeError);
  assert.throws(() => encodeRecord(-1n, new Uint8Array(0), new Uint8Array(0)), RangeError);
  assert.throws(() => encodeRecord(1n, new Uint8Array(MAX_SUMMARY_BYTES + 1), new Uint8Array(0)), RangeError);
});

test("a head without progress drops the trial entries; the next delta counts from 0", () => {
  const base = chain[0]!;
  const dropped = clone(CheckpointSchema, base);
  dropped.progress = undefined;
  // A valid checkpoint of the same session with no trials: the snapshot of `fresh`, renamed.
  const fresh = decode(vector("valid/fresh.binpb"));
  const next = clone(CheckpointSchema, base);
  next.progress = clone(CheckpointSchema, fresh).progress;
  const anySummary = new TextEncoder().encode("{}");
  const dropping = create(CheckpointDeltaSchema, {
    format: DELTA_FORMAT_ID,
    baseGeneration: 5n,
    baseTrials: BigInt(base.progress!.trialLog.length),
    head: clone(CheckpointSchema, dropped),
  });
  const first = encodeRecord(6n, anySummary, encodeDelta(dropping));
  const second = encodeRecord(7n, encodeSummary(next), encodeDelta(makeDelta(dropped, next, 6n)));
  assert.equal(makeDelta(dropped, next, 6n).baseTrials, 0n);
  const file = readStoreFile(appended(first, second));
  assert.equal(file.generation, 7n);
  assert.equal(file.records, 2);
  assert.equal(hexOf(encode(file.checkpoint)), hexOf(encode(next)));
  // The checkpoint without progress, last: the final check refuses it.
  assert.throws(
    () => readStoreFile(appended(first)),
    (e: unknown) => e instanceof ResumeMismatch && e.reason === "checkpoint_shape" && e.field === "progress",
  );
  // A delta counting the dropped entries: delta.base_trials.
  const counted = makeDelta(dropped, next, 6n);
  counted.baseTrials = BigInt(base.progress!.trialLog.length);
  const third = encodeRecord(7n, encodeSummary(next), encodeDelta(counted));
  assert.throws(
    () => readStoreFile(appended(first, third)),
    (e: unknown) => e instanceof InvalidDelta && e.path === "base_trials" && e.rule === "delta.base_trials",
  );
});

test("records are checked in order: checksums of all, then generation, delta, base generation", () => {
  const r = (i: number) => withRecords.subarray(recordEnds[i]!, recordEnds[i + 1]!);
  // Record 2 commits generation 8 after 6: record_generation, whatever record 3 holds.
  assert.throws(
    () => readStoreFile(appended(r(0), r(2))),
    (e: unknown) => e instanceof CorruptStoreFile && e.kind === "record_generation",
  );
  // A damaged third record is found before the second's generation is looked at.
  const bad = r(2).slice();
  bad[RECORD_HEADER_SIZE + 3]! ^= 1;
  assert.throws(
    () => readStoreFile(appended(r(0), r(0), bad)),
    (e: unknown) => e instanceof CorruptStoreFile && e.kind === "record_checksum",
  );
  // The right generation, a delta over another base generation.
  const delta = makeDelta(chain[0]!, chain[1]!, 4n);
  const wrongBase = encodeRecord(6n, encodeSummary(chain[1]!), encodeDelta(delta));
  assert.throws(
    () => readStoreFile(appended(wrongBase)),
    (e: unknown) => e instanceof CorruptStoreFile && e.kind === "record_generation",
  );
  // The last record's summary is not its checkpoint's.
  const mismatch = encodeRecord(6n, encodeSummary(chain[2]!), encodeDelta(makeDelta(chain[0]!, chain[1]!, 5n)));
  assert.throws(
    () => readStoreFile(appended(mismatch)),
    (e: unknown) => e instanceof CorruptStoreFile && e.kind === "summary_mismatch",
  );
  // An earlier record's summary is covered by its checksum only.
  const earlier = encodeRecord(6n, new TextEncoder().encode("{}"), encodeDelta(makeDelta(chain[0]!, chain[1]!, 5n)));
  assert.equal(readStoreFile(appended(earlier, r(1), r(2))).generation, 8n);
});

test("a record over the limits is over_limits before its payload is looked at", () => {
  const record = withRecords.slice(recordEnds[0]!, recordEnds[1]!);
  const view = new DataView(record.buffer);
  view.setUint32(12, MAX_SUMMARY_BYTES + 1);
  view.setUint32(24, crc32c(record.subarray(0, 24)));
  assert.throws(
    () => readStoreFile(appended(record)),
    (e: unknown) => e instanceof CorruptStoreFile && e.kind === "over_limits",
  );
});
