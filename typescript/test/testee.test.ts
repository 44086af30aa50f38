/** The conformance testee through its launcher, tests/conformance/testee-typescript. */

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { clone, create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { sizeDelimitedEncode, sizeDelimitedPeek } from "@bufbuild/protobuf/wire";
import {
  CheckpointDeltaSchema as DeltaSchema,
  CheckpointSchema,
  decode,
  encode,
  encodeDelta,
  makeDelta,
  OptionEntrySchema,
  recordTrial,
  toTerm,
} from "../src/index.js";
import { seal } from "../src/grammar.js";
import {
  Command,
  RequestSchema,
  type Response,
  ResponseSchema,
} from "../testee/gen/dsxir/conformance/v1/testee_pb.js";
import { freshCheckpoint, manifest, vector, VECTORS } from "./helpers.js";

const LAUNCHER = fileURLToPath(new URL("../../../tests/conformance/testee-typescript", import.meta.url));

function run(command: string, input: Uint8Array) {
  return spawnSync(LAUNCHER, [command], { input, maxBuffer: 64 * 1024 * 1024 });
}

const m = manifest();

test("reencode: valid vectors come back identical, invalid ones are refused with their field", () => {
  const valid = m.valid[0]!;
  const raw = vector(valid.binpb);
  const ok = run("reencode", raw);
  assert.equal(ok.status, 0, ok.stderr.toString());
  assert.deepEqual(new Uint8Array(ok.stdout), raw);
  for (const v of m.invalid.slice(0, 8)) {
    const r = run("reencode", vector(v.binpb));
    assert.equal(r.status, 3, v.name);
    assert.equal(r.stdout.length, 0);
    const lines = r.stderr.toString().split("\n");
    assert.equal(lines.length, 2, v.name);
    assert.equal(lines[1], "");
    assert.ok(lines[0]!.startsWith(`checkpoint_shape: ${v.field}: `), lines[0]);
    assert.ok(lines[0]!.endsWith(` (rule ${v.rule})`), lines[0]);
  }
});

test("reencode: a credential read is refused by the writer, naming no rule", () => {
  const cp = freshCheckpoint();
  cp.optimizerOpts.push(create(OptionEntrySchema, { key: "api_key", value: toTerm("x") }));
  const r = run("reencode", seal(toBinary(CheckpointSchema, cp)));
  assert.equal(r.status, 3, r.stderr.toString());
  assert.match(r.stderr.toString(), /^checkpoint_shape: optimizer_opts\[0\]\.key: [^\n]*credential[^\n]*\n$/);
  assert.ok(!r.stderr.toString().includes("(rule"));
});

test("hash-trainset: digest line, and refusals relative to the Term", () => {
  const v = m.trainset[1]!;
  const r = run("hash-trainset", vector(v.input));
  assert.equal(r.status, 0, r.stderr.toString());
  assert.equal(r.stdout.toString(), v.sha256 + "\n");
  // A list whose item 1 is a NaN float.
  const nan = Buffer.from("4a0f" + "0a021802" + "0a0929010000000000f87f", "hex");
  const bad = run("hash-trainset", nan);
  assert.equal(bad.status, 3);
  assert.match(bad.stderr.toString(), /^checkpoint_shape: items\[1\]\.float_value: .* \(rule float\.nan\)\n$/);
  // A map with a duplicate key (entries in any order are fine, duplicates are not).
  const entry = "0a09" + "0a033201" + "61" + "12021802";
  const dup = Buffer.from("4a1a" + "0a18" + "5a16" + entry + entry, "hex");
  const d = run("hash-trainset", dup);
  assert.equal(d.status, 3);
  assert.match(
    d.stderr.toString(),
    /^checkpoint_shape: items\[0\]\.map_value\.entries\[1\]\.key: .* \(rule term\.map\.order\)\n$/,
  );
  for (const input of ["ff", "1801", ""]) {
    const x = run("hash-trainset", Buffer.from(input, "hex"));
    assert.equal(x.status, 3, input);
    assert.match(x.stderr.toString(), /^checkpoint_shape: <input>: .* \(rule input\.malformed\)\n$/);
  }
});

function request(command: Command, input: Uint8Array): Uint8Array {
  return sizeDelimitedEncode(RequestSchema, create(RequestSchema, { command, input }));
}

/** The size-delimited Responses of `out`, all of it. */
function responses(out: Buffer): Response[] {
  const all: Response[] = [];
  let rest = new Uint8Array(out);
  while (rest.length > 0) {
    const peek = sizeDelimitedPeek(rest);
    assert.equal(peek.eof, false, "a Response cut short");
    const end = peek.offset! + peek.size!;
    assert.ok(end <= rest.length, "a Response cut short");
    all.push(fromBinary(ResponseSchema, rest.subarray(peek.offset!, end)));
    rest = rest.subarray(end);
  }
  return all;
}

test("usage errors exit 2", () => {
  assert.equal(run("no-such-command", new Uint8Array()).status, 2);
  const none = spawnSync(LAUNCHER, [], { input: new Uint8Array() });
  assert.equal(none.status, 2);
  // In serve mode: input ending inside a request, and a frame that is no Request.
  const cut = request(Command.REENCODE, new Uint8Array(5)).subarray(0, 4);
  for (const input of [Buffer.from(cut), Buffer.from("02ffff", "hex")]) {
    const r = spawnSync(LAUNCHER, ["serve"], { input });
    assert.equal(r.status, 2, input.toString("hex"));
    assert.match(r.stderr.toString(), /bad request frame/);
  }
  assert.equal(spawnSync(LAUNCHER, ["serve"], { input: new Uint8Array() }).status, 0);
});

test("serve: size-delimited Requests, one Response each, until end of input", async () => {
  const valid = vector(m.valid[0]!.binpb);
  const invalid = m.invalid.find((v) => v.field !== "<input>")!;
  const trainset = m.trainset[0]!;
  const store = Buffer.from("not a store file");
  const requests = Buffer.concat([
    request(Command.REENCODE, valid),
    request(Command.REENCODE, vector(invalid.binpb)),
    request(Command.HASH_TRAINSET, vector(trainset.input)),
    request(Command.REENCODE, seal(new Uint8Array())),
    request(Command.REENCODE, new Uint8Array()),
    request(Command.HASH_TRAINSET_JSON, Buffer.from("[1, 2]")),
    request(Command.HASH_TRAINSET_JSONL, Buffer.from("1\n[\n")),
    request(Command.READ_STORE_FILE, store),
    request(Command.UNSPECIFIED, valid),
    request(99 as Command, valid),
  ]);
  const child = spawn(LAUNCHER, ["serve"], { stdio: ["pipe", "pipe", "inherit"] });
  const chunks: Buffer[] = [];
  child.stdout.on("data", (c: Buffer) => chunks.push(c));
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  // Write in two pieces, splitting a Request, to exercise buffering.
  child.stdin.write(requests.subarray(0, 7));
  child.stdin.end(requests.subarray(7));
  assert.equal(await exited, 0);
  const answers = responses(Buffer.concat(chunks));
  assert.equal(answers.length, 10);
  const output = (i: number) => {
    const r = answers[i]!.result;
    assert.equal(r.case, "output", `answer ${i}: ${JSON.stringify(r.value)}`);
    return r.value as Uint8Array;
  };
  const refusal = (i: number) => {
    const r = answers[i]!.result;
    assert.equal(r.case, "refusal", `answer ${i}`);
    return r.value as Exclude<typeof r.value, Uint8Array | undefined>;
  };
  assert.deepEqual(output(0), valid);
  const r1 = refusal(1);
  assert.deepEqual([r1.exitCode, r1.kind, r1.path, r1.rule], [3, "checkpoint_shape", invalid.field, invalid.rule]);
  assert.ok(r1.message.endsWith(` (rule ${invalid.rule})`), r1.message);
  assert.equal(Buffer.from(output(2)).toString(), `${trainset.sha256}\n`);
  const r3 = refusal(3);
  assert.deepEqual([r3.exitCode, r3.kind, r3.path, r3.rule], [3, "checkpoint_shape", "format", "format.required"]);
  assert.equal(
    r3.message,
    "checkpoint_shape: format: missing format identifier: not a dsxir checkpoint (rule format.required)",
  );
  const r4 = refusal(4);
  assert.deepEqual([r4.exitCode, r4.kind, r4.path, r4.rule], [3, "checkpoint_shape", "<input>", "input.trailer"]);
  assert.match(Buffer.from(output(5)).toString(), /^[0-9a-f]{64}\n$/);
  const r6 = refusal(6);
  assert.deepEqual([r6.exitCode, r6.kind, r6.path, r6.rule], [3, "trainset_json", "line 2, byte 3", ""]);
  const r7 = refusal(7);
  assert.deepEqual([r7.exitCode, r7.kind, r7.rule], [4, "store_file", ""]);
  assert.equal(r7.path, "truncated");
  for (const i of [8, 9]) {
    const r = refusal(i);
    assert.deepEqual([r.exitCode, r.kind, r.rule], [2, "command", ""]);
  }
});

// ---------------------------------------------------------------------------
// Deltas (FORMAT.md §13): reencode-delta and apply-delta, one-shot and served.

const DELTAS = new URL("delta/", VECTORS);

/** A base, a delta over it and the checkpoint it makes, built here. */
function deltaCase(): { base: Uint8Array; delta: Uint8Array; result: Uint8Array } {
  const b = freshCheckpoint();
  recordTrial(b, { score: 0.5 });
  const next = clone(CheckpointSchema, b);
  recordTrial(next, { score: 0.25 });
  return { base: encode(b), delta: encodeDelta(makeDelta(b, next, 2n)), result: encode(next) };
}

function withBase(base: Uint8Array): string {
  const dir = mkdtempSync(join(tmpdir(), "testee-delta-"));
  const path = join(dir, "base.binpb");
  writeFileSync(path, base);
  return path;
}

test("reencode-delta and apply-delta: canonical bytes, exit 0", () => {
  const c = deltaCase();
  const r = run("reencode-delta", c.delta);
  assert.equal(r.status, 0, r.stderr.toString());
  assert.deepEqual(new Uint8Array(r.stdout), c.delta);
  const a = spawnSync(LAUNCHER, ["apply-delta", withBase(c.base)], { input: c.delta });
  assert.equal(a.status, 0, a.stderr.toString());
  assert.deepEqual(new Uint8Array(a.stdout), c.result);
  // Usage: apply-delta needs its base file, and only it; a base that cannot be read is exit 2.
  assert.equal(run("apply-delta", c.delta).status, 2);
  const missing = spawnSync(LAUNCHER, ["apply-delta", "/nonexistent/base.binpb"], { input: c.delta });
  assert.equal(missing.status, 2);
  assert.match(missing.stderr.toString(), /^cannot read the base: /);
});

test("apply-delta: the base's, the delta's and the result's refusals", () => {
  const c = deltaCase();
  const base = withBase(c.base);
  const lines = (args: string[], input: Uint8Array) => {
    const r = spawnSync(LAUNCHER, args, { input });
    assert.equal(r.status, 3, r.stderr.toString());
    assert.equal(r.stdout.length, 0);
    const text = r.stderr.toString();
    assert.ok(text.endsWith("\n") && text.indexOf("\n") === text.length - 1, text);
    return text.trimEnd();
  };
  // The base is read first, as a checkpoint.
  assert.match(lines(["apply-delta", withBase(new Uint8Array([1]))], new Uint8Array()), /^checkpoint_shape: <input>: .*\(rule input\.trailer\)$/);
  // Then the delta.
  assert.match(lines(["apply-delta", base], seal(new Uint8Array())), /^delta_shape: format: .*\(rule delta\.format\)$/);
  assert.match(lines(["reencode-delta"], seal(new Uint8Array())), /^delta_shape: format: .*\(rule delta\.format\)$/);
  // A credential in a delta's head: the writer refuses it, naming no rule.
  const secret = decode(c.base);
  secret.optimizerOpts.push(create(OptionEntrySchema, { key: "api_key", value: toTerm("x") }));
  const withSecret = makeDelta(decode(c.base), secret, 2n);
  const cred = lines(["reencode-delta"], seal(toBinary(DeltaSchema, withSecret)));
  assert.match(cred, /^delta_shape: head\.optimizer_opts\[0\]\.key: /);
  assert.ok(!cred.includes("(rule"), cred);
  // Applying: another session's base.
  const other = decode(c.base);
  other.sessionId = "s2";
  assert.match(lines(["apply-delta", withBase(encode(other))], c.delta), /^delta_shape: head\.session_id: .*\(rule delta\.session\)$/);
  // The checkpoint it makes: the appended entry at index 1 says 0.
  const b = decode(c.base);
  const next = clone(CheckpointSchema, b);
  recordTrial(next, { score: 0.25 });
  const d = makeDelta(b, next, 2n);
  d.head!.progress!.trialLog[0]!.trialIdx = 0n;
  assert.match(
    lines(["apply-delta", base], encodeDelta(d)),
    /^checkpoint_shape: progress\.trial_log\[1\]\.trial_idx: .*\(rule trial\.trial_idx\)$/,
  );
});

test("serve: reencode-delta and apply-delta answer as the one-shot commands", async () => {
  const c = deltaCase();
  const frames = Buffer.concat([
    request(Command.REENCODE_DELTA, c.delta),
    sizeDelimitedEncode(RequestSchema, create(RequestSchema, { command: Command.APPLY_DELTA, input: c.delta, base: c.base })),
    request(Command.APPLY_DELTA, c.delta),
    request(Command.REENCODE_DELTA, seal(new Uint8Array([0x10, 0x00]))),
  ]);
  const r = spawnSync(LAUNCHER, ["serve"], { input: frames });
  assert.equal(r.status, 0, r.stderr.toString());
  const answers = responses(r.stdout);
  assert.equal(answers.length, 4);
  assert.deepEqual(answers[0]!.result.value, c.delta);
  assert.deepEqual(answers[1]!.result.value, c.result);
  // No base: the empty base is refused as a checkpoint.
  const noBase = answers[2]!.result;
  assert.equal(noBase.case, "refusal");
  assert.deepEqual(
    noBase.case === "refusal" ? [noBase.value.exitCode, noBase.value.kind, noBase.value.path, noBase.value.rule] : [],
    [3, "checkpoint_shape", "<input>", "input.trailer"],
  );
  const bad = answers[3]!.result;
  assert.equal(bad.case, "refusal");
  if (bad.case === "refusal") {
    assert.deepEqual(
      [bad.value.exitCode, bad.value.kind, bad.value.path, bad.value.rule],
      [3, "delta_shape", "base_generation", "wire.default"],
    );
    assert.ok(bad.value.message.startsWith("delta_shape: base_generation: "), bad.value.message);
  }
});

test("apply-delta over the delta vectors, served, as the manifest says", { skip: existsSync(new URL("manifest.json", DELTAS)) ? false : "tests/vectors/delta/manifest.json is absent" }, () => {
  const dm = JSON.parse(readFileSync(new URL("manifest.json", DELTAS), "utf8")) as {
    cases: { name: string; base: string; delta: string; result?: string; refused?: { stage: string; rule: string; field: string } }[];
  };
  const file = (name: string) => new Uint8Array(readFileSync(new URL(name, DELTAS)));
  const frames = Buffer.concat(
    dm.cases.map((k) =>
      sizeDelimitedEncode(
        RequestSchema,
        create(RequestSchema, { command: Command.APPLY_DELTA, input: file(k.delta), base: file(k.base) }),
      ),
    ),
  );
  const r = spawnSync(LAUNCHER, ["serve"], { input: frames, maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, r.stderr.toString());
  const answers = responses(r.stdout);
  assert.equal(answers.length, dm.cases.length);
  dm.cases.forEach((k, i) => {
    const got = answers[i]!.result;
    if (k.refused === undefined) {
      assert.equal(got.case, "output", k.name);
      assert.deepEqual(got.value, file(k.result!), k.name);
    } else {
      assert.equal(got.case, "refusal", k.name);
      const kind = k.refused.stage === "result" ? "checkpoint_shape" : "delta_shape";
      if (got.case === "refusal") {
        assert.deepEqual([got.value.exitCode, got.value.kind, got.value.path, got.value.rule], [3, kind, k.refused.field, k.refused.rule], k.name);
      }
    }
  });
});

// ---------------------------------------------------------------------------
// Store files (docs/store-file.md §5, §9): read-store-file, one-shot and served.

interface StoreCase {
  name: string;
  file: string;
  verdict: "ok" | "damaged" | "checkpoint_refused" | "delta_refused";
  checkpoint?: string;
  kind?: string;
  field?: string;
  rule?: string;
}

const storeCases: StoreCase[] = readFileSync(new URL("store/manifest.jsonl", VECTORS), "utf8")
  .split("\n")
  .filter((line) => line !== "")
  .map((line) => JSON.parse(line) as StoreCase);

test("read-store-file over every store vector, served, as the manifest says", () => {
  const frames = Buffer.concat(storeCases.map((v) => request(Command.READ_STORE_FILE, vector(v.file))));
  const r = spawnSync(LAUNCHER, ["serve"], { input: frames, maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, r.stderr.toString());
  const answers = responses(r.stdout);
  assert.equal(answers.length, storeCases.length);
  storeCases.forEach((v, i) => {
    const got = answers[i]!.result;
    if (v.verdict === "ok") {
      assert.equal(got.case, "output", v.name);
      assert.deepEqual(got.value, vector(v.checkpoint!), v.name);
      return;
    }
    assert.equal(got.case, "refusal", v.name);
    if (got.case !== "refusal") {
      return;
    }
    const { exitCode, kind, path, rule, message } = got.value;
    if (v.verdict === "damaged") {
      assert.deepEqual([exitCode, kind, path, rule], [4, "store_file", v.kind, ""], v.name);
      assert.ok(message.startsWith(`store_file: ${v.kind}: `), message);
    } else {
      const expectedKind = v.verdict === "delta_refused" ? "delta_shape" : "checkpoint_shape";
      assert.deepEqual([exitCode, kind, path], [3, expectedKind, v.field], v.name);
      if (v.rule !== undefined) {
        assert.equal(rule, v.rule, v.name);
        assert.ok(message.startsWith(`${expectedKind}: ${v.field}: `), message);
        assert.ok(message.endsWith(` (rule ${v.rule})`), message);
      }
    }
  });
});

test("read-store-file one-shot: records read, a refused delta and a damaged record", () => {
  const byName = (name: string) => storeCases.find((v) => v.name === name)!;
  const three = byName("records_torn_payload");
  const ok = run("read-store-file", vector(three.file));
  assert.equal(ok.status, 0, ok.stderr.toString());
  assert.deepEqual(new Uint8Array(ok.stdout), vector(three.checkpoint!));
  const refused = byName("record_delta_refused");
  const r = run("read-store-file", vector(refused.file));
  assert.equal(r.status, 3);
  assert.equal(r.stdout.length, 0);
  const line = r.stderr.toString();
  assert.ok(line.startsWith(`delta_shape: ${refused.field}: `), line);
  assert.ok(line.endsWith(` (rule ${refused.rule})\n`), line);
  const final = byName("record_final_invalid");
  const f = run("read-store-file", vector(final.file));
  assert.equal(f.status, 3);
  assert.ok(f.stderr.toString().startsWith(`checkpoint_shape: ${final.field}: `), f.stderr.toString());
  const damaged = run("read-store-file", vector(byName("record_payload_damaged").file));
  assert.equal(damaged.status, 4);
  assert.match(damaged.stderr.toString(), /^store_file: record_checksum: .*\n$/);
});
