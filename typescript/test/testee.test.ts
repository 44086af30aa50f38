/** The conformance testee through its launcher, tests/conformance/testee-typescript. */

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { sizeDelimitedEncode, sizeDelimitedPeek } from "@bufbuild/protobuf/wire";
import { CheckpointSchema, OptionEntrySchema, toTerm } from "../src/index.js";
import { seal } from "../src/grammar.js";
import {
  Command,
  RequestSchema,
  type Response,
  ResponseSchema,
} from "../testee/gen/dsxir/conformance/v1/testee_pb.js";
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
