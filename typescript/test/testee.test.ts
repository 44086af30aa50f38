/** The conformance testee through its launcher, tests/conformance/testee-typescript. */

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { CheckpointSchema, OptionEntrySchema, toTerm } from "../src/index.js";
import { freshCheckpoint, manifest, vector } from "./helpers.js";

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
  const r = run("reencode", toBinary(CheckpointSchema, cp));
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

test("usage errors exit 2", () => {
  assert.equal(run("no-such-command", new Uint8Array()).status, 2);
  const none = spawnSync(LAUNCHER, [], { input: new Uint8Array() });
  assert.equal(none.status, 2);
  // In serve mode: an unknown command byte, and input ending inside a request.
  for (const input of ["7800000000", "7200000005aa"]) {
    const r = spawnSync(LAUNCHER, ["serve"], { input: Buffer.from(input, "hex") });
    assert.equal(r.status, 2, input);
    assert.match(r.stderr.toString(), /bad request frame/);
  }
  assert.equal(spawnSync(LAUNCHER, ["serve"], { input: new Uint8Array() }).status, 0);
});

test("serve: framed requests and answers until end of input", async () => {
  const valid = vector(m.valid[0]!.binpb);
  const invalid = m.invalid.find((v) => v.field !== "<input>")!;
  const trainset = m.trainset[0]!;
  const frame = (cmd: string, payload: Uint8Array) => {
    const head = Buffer.alloc(5);
    head.write(cmd, 0, "latin1");
    head.writeUInt32BE(payload.length, 1);
    return Buffer.concat([head, payload]);
  };
  const requests = Buffer.concat([
    frame("r", valid),
    frame("r", vector(invalid.binpb)),
    frame("h", vector(trainset.input)),
    frame("r", new Uint8Array()),
  ]);
  const child = spawn(LAUNCHER, ["serve"], { stdio: ["pipe", "pipe", "inherit"] });
  const chunks: Buffer[] = [];
  child.stdout.on("data", (c: Buffer) => chunks.push(c));
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  // Write in two pieces, splitting a frame, to exercise buffering.
  child.stdin.write(requests.subarray(0, 7));
  child.stdin.end(requests.subarray(7));
  assert.equal(await exited, 0);
  let out = Buffer.concat(chunks);
  const answers: [number, Buffer][] = [];
  while (out.length > 0) {
    const n = out.readUInt32BE(1);
    answers.push([out[0]!, out.subarray(5, 5 + n)]);
    out = out.subarray(5 + n);
  }
  assert.equal(answers.length, 4);
  assert.equal(answers[0]![0], 0);
  assert.deepEqual(new Uint8Array(answers[0]![1]), valid);
  assert.equal(answers[1]![0], 3);
  assert.ok(answers[1]![1].toString().startsWith(`checkpoint_shape: ${invalid.field}: `));
  assert.ok(answers[1]![1].toString().endsWith(` (rule ${invalid.rule})`));
  assert.ok(!answers[1]![1].toString().endsWith("\n"));
  assert.deepEqual(answers[2], [0, Buffer.from(trainset.sha256 + "\n")]);
  assert.equal(answers[3]![0], 3);
  assert.equal(
    answers[3]![1].toString(),
    "checkpoint_shape: format: missing format identifier: not a dsxir checkpoint (rule format.required)",
  );
});
