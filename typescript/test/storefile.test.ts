/** Store files (docs/store-file.md) and the vectors of tests/vectors/store/. */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { clone } from "@bufbuild/protobuf";
import { CheckpointSchema, encode, InvalidCheckpoint, ResumeMismatch } from "../src/index.js";
import {
  CorruptStoreFile,
  crc32c,
  encodeSummary,
  MAX_SUMMARY_BYTES,
  readStoreFile,
  STORE_HEADER_SIZE,
  writeStoreFile,
} from "../src/storefile.js";
import { hexOf, VECTORS, vector } from "./helpers.js";

interface StoreVector {
  name: string;
  file: string;
  verdict: "ok" | "damaged" | "checkpoint_refused";
  generation?: string;
  checkpoint?: string;
  known_only?: string;
  kind?: string;
  field?: string;
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
  assert.equal(vectors.length, count("ok") + count("damaged") + count("checkpoint_refused"));
});

for (const v of vectors) {
  test(`store vector ${v.name}: ${v.verdict}`, () => {
    const data = vector(v.file);
    if (v.verdict === "ok") {
      const file = readStoreFile(data);
      assert.equal(file.generation, BigInt(v.generation!));
      assert.equal(hexOf(encode(file.checkpoint)), hexOf(vector(v.checkpoint!)));
      assert.equal(hexOf(writeStoreFile(file.generation, file.checkpoint)), hexOf(data));
      // The summary values are the ones of the JSON in the file.
      const length = new DataView(data.buffer, data.byteOffset).getUint32(20);
      const text = new TextDecoder().decode(data.subarray(STORE_HEADER_SIZE, STORE_HEADER_SIZE + length));
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
        } else {
          assert.ok(e instanceof ResumeMismatch, `not a ResumeMismatch: ${String(e)}`);
          assert.equal(e.reason, "checkpoint_shape");
          assert.equal(e.field, v.field);
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
