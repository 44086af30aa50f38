/**
 * The conformance testee of the TypeScript binding (see tests/conformance).
 *
 *   testee reencode        checkpoint bytes on stdin → canonical bytes on stdout
 *   testee hash-trainset   a Term list on stdin → hex digest of hash_trainset
 *   testee hash-trainset-json, hash-trainset-jsonl
 *                          JSON or JSON Lines text on stdin → hex digest (FORMAT.md §6.1)
 *   testee read-store-file a store file on stdin → canonical bytes of the checkpoint
 *                          it ends with (its snapshot and commit records)
 *   testee reencode-delta  delta bytes on stdin → their canonical bytes (FORMAT.md §13)
 *   testee apply-delta BASE_FILE
 *                          delta bytes on stdin, base checkpoint bytes in BASE_FILE
 *                          → canonical bytes of the checkpoint the delta makes
 *   testee serve           size-delimited Requests on stdin, one size-delimited
 *                          Response each on stdout (tests/conformance/proto/
 *                          dsxir/conformance/v1/testee.proto)
 *
 * A refusal is one line `checkpoint_shape: <field path>: <message> (rule <id>)`
 * on stderr (a writer's refusal of a credential names no rule) and exit code
 * 3; a delta's refusal is `delta_shape: <field path>: <message> (rule <id>)`
 * (exit 3), the checkpoint it makes is refused as `checkpoint_shape`; a JSON trainset's refusal is `trainset_json: <place>: <message>` (exit
 * 3); a damaged store file is one line `store_file: <kind>: <detail>` and
 * exit code 4. In serve mode the same refusal is a `Refusal` message (exit
 * code, kind, path, rule, message) and an unknown command a `Refusal` of
 * kind `command` with exit code 2. Usage errors exit with code 2.
 *
 * It is compiled for the tests only (dist/testee/, with the protocol's code
 * generated into testee/gen/), not shipped in the npm package.
 */

import { createHash } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { create, toBinary } from "@bufbuild/protobuf";
import { sizeDelimitedDecodeStream, sizeDelimitedEncode } from "@bufbuild/protobuf/wire";
import { decode, encode } from "../src/checkpoint.js";
import { applyDelta, decodeDelta, encodeDelta, InvalidDelta } from "../src/delta.js";
import { hex, InvalidCheckpoint, ResumeMismatch } from "../src/errors.js";
import { type Term, TermSchema } from "../src/gen/dsxir/optimizer_session/v1/term_pb.js";
import { Rule, type RuleId } from "../src/rules.js";
import { hashTrainsetJson, hashTrainsetJsonl, TrainsetJsonError } from "../src/trainset_json.js";
import { CorruptStoreFile, readStoreFile } from "../src/storefile.js";
import { canonicalTerm } from "../src/term.js";
import { MAX_CHECKPOINT_BYTES } from "../src/validate.js";
import { parse } from "../src/wire.js";
import {
  Command,
  RefusalSchema,
  RequestSchema,
  type Response,
  ResponseSchema,
} from "./gen/dsxir/conformance/v1/testee_pb.js";

const USAGE =
  "usage: testee-typescript reencode | hash-trainset | hash-trainset-json | hash-trainset-jsonl | read-store-file\n" +
  "       | reencode-delta | apply-delta BASE_FILE | serve";

/**
 * A refusal: the line the one-shot commands write (the message), its exit
 * code (3, or 4 for a damaged store file), and the fields of serve's Refusal.
 */
class Refused extends Error {
  constructor(
    line: string,
    readonly status: number,
    readonly kind: "checkpoint_shape" | "delta_shape" | "trainset_json" | "store_file",
    readonly path: string,
    readonly rule: string,
  ) {
    super(line.replace(/[\r\n]+/g, " "));
  }
}

function refusal(field: string, detail: string, rule: RuleId | null): Refused {
  const line = `checkpoint_shape: ${field}: ${detail}` + (rule === null ? "" : ` (rule ${rule})`);
  return new Refused(line, 3, "checkpoint_shape", field, rule ?? "");
}

/** The refusal line of a reader's ResumeMismatch or a writer's InvalidCheckpoint; other errors go on. */
function refusalOf(e: unknown): unknown {
  if (e instanceof ResumeMismatch && e.reason === "checkpoint_shape") {
    return refusal(e.field ?? "<input>", e.detail ?? "", e.rule);
  }
  if (e instanceof InvalidCheckpoint) {
    return refusal(e.path, e.detail, e.rule);
  }
  return e;
}

/** The refusal line of a delta's InvalidDelta; other errors as {@link refusalOf}. */
function deltaRefusalOf(e: unknown): unknown {
  if (e instanceof InvalidDelta) {
    return new Refused(e.message, 3, "delta_shape", e.path, e.rule ?? "");
  }
  return refusalOf(e);
}

function reencodeDelta(input: Uint8Array): Uint8Array {
  try {
    return encodeDelta(decodeDelta(input));
  } catch (e) {
    throw deltaRefusalOf(e);
  }
}

/**
 * The checkpoint a delta makes from its base (FORMAT.md §13.2), written by
 * the checkpoint writer: the base is read first (`checkpoint_shape`), then
 * the delta (`delta_shape`); applying refuses `delta.session` and
 * `delta.base_trials` (`delta_shape`) and a new checkpoint that breaks a
 * rule of §7 or a writer's limit (`checkpoint_shape`).
 */
function applyDeltaInput(input: Uint8Array, baseBytes: Uint8Array): Uint8Array {
  try {
    const base = decode(baseBytes);
    const delta = decodeDelta(input);
    return encode(applyDelta(base, delta));
  } catch (e) {
    throw deltaRefusalOf(e);
  }
}

function reencode(input: Uint8Array): Uint8Array {
  try {
    return encode(decode(input));
  } catch (e) {
    throw refusalOf(e);
  }
}

/**
 * A whole store file (docs/store-file.md §5, §9) → the canonical bytes of
 * the checkpoint it ends with: frame damage is `store_file` (exit 4), a
 * record's delta `delta_shape`, an invalid checkpoint `checkpoint_shape`.
 */
function readStoreFileInput(input: Uint8Array): Uint8Array {
  try {
    return encode(readStoreFile(input).checkpoint);
  } catch (e) {
    if (e instanceof CorruptStoreFile) {
      throw new Refused(e.message, 4, "store_file", e.kind, "");
    }
    throw deltaRefusalOf(e);
  }
}

/**
 * The digest of a trainset given as one list Term (FORMAT.md §6): any protobuf
 * encoding of a Term, map entries in any order, unknown fields dropped as it
 * is read. Each item is checked and its maps sorted (canonicalTerm), and its
 * canonical bytes are hashed, from the Terms themselves.
 */
function trainsetDigest(input: Uint8Array): Uint8Array {
  if (input.length > MAX_CHECKPOINT_BYTES) {
    throw refusal("<input>", `${input.length} bytes, over the limit of ${MAX_CHECKPOINT_BYTES}`, Rule.INPUT_TOO_LARGE);
  }
  let term;
  try {
    term = parse(TermSchema, input);
  } catch (e) {
    throw refusal(
      "<input>",
      `not a protobuf Term (${e instanceof Error ? e.message : String(e)})`,
      Rule.INPUT_MALFORMED,
    );
  }
  if (term.kind.case !== "listValue") {
    throw refusal("<input>", `not a list Term (kind ${term.kind.case ?? "unset"})`, Rule.INPUT_MALFORMED);
  }
  const items = term.kind.value.items;
  const h = createHash("sha256");
  h.update("dsxir.trainset.v1\n");
  h.update(uint64(items.length));
  items.forEach((item, i) => {
    let bytes: Uint8Array;
    try {
      bytes = toBinary(TermSchema, canonicalTerm(withoutUnknown(item), `items[${i}]`));
    } catch (e) {
      throw refusalOf(e);
    }
    h.update(uint64(bytes.length));
    h.update(bytes);
  });
  return new Uint8Array(h.digest());
}

function uint64(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

/** `t` with the unknown fields of every message in it dropped (in place: `t` was just parsed). */
function withoutUnknown(t: Term): Term {
  delete t.$unknown;
  const kind = t.kind;
  switch (kind.case) {
    case "listValue":
    case "tupleValue":
      delete kind.value.$unknown;
      kind.value.items.forEach(withoutUnknown);
      break;
    case "mapValue":
      delete kind.value.$unknown;
      for (const entry of kind.value.entries) {
        delete entry.$unknown;
        if (entry.key !== undefined) {
          withoutUnknown(entry.key);
        }
        if (entry.value !== undefined) {
          withoutUnknown(entry.value);
        }
      }
      break;
    case "nullValue":
      delete kind.value.$unknown;
      break;
    default:
      break;
  }
  return t;
}

/**
 * The digest of a trainset kept as JSON text; a refusal is the line
 * `trainset_json: <place>: <message>`, its place (`byte 12`, `line 3, byte 12`) the path.
 */
function textDigest(hash: (text: Uint8Array) => Uint8Array): (input: Uint8Array) => Uint8Array {
  return (input) => {
    try {
      return hash(input);
    } catch (e) {
      if (e instanceof TrainsetJsonError) {
        const place = `${e.line === undefined ? "" : `line ${e.line}, `}byte ${e.offset}`;
        throw new Refused(`trainset_json: ${e.message}`, 3, "trainset_json", place, "");
      }
      throw e;
    }
  };
}

/** A digest as the one-shot commands write it: lowercase hex and a newline. */
function hexLine(digest: (input: Uint8Array) => Uint8Array): (input: Uint8Array) => Uint8Array {
  return (input) => new TextEncoder().encode(hex(digest(input)) + "\n");
}

/** What each command computes: checkpoint bytes, or a 32-byte digest. */
const RUN = {
  reencode,
  "hash-trainset": trainsetDigest,
  "hash-trainset-json": textDigest(hashTrainsetJson),
  "hash-trainset-jsonl": textDigest(hashTrainsetJsonl),
  "read-store-file": readStoreFileInput,
  "reencode-delta": reencodeDelta,
};

/** The one-shot commands: what they write on stdout. */
const COMMANDS = {
  reencode,
  "hash-trainset": hexLine(RUN["hash-trainset"]),
  "hash-trainset-json": hexLine(RUN["hash-trainset-json"]),
  "hash-trainset-jsonl": hexLine(RUN["hash-trainset-jsonl"]),
  "read-store-file": readStoreFileInput,
  "reencode-delta": reencodeDelta,
};

async function readAll(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

async function write(bytes: Uint8Array): Promise<void> {
  if (!process.stdout.write(bytes)) {
    await once(process.stdout, "drain");
  }
}

/** The commands of the serve protocol; any other number is refused with kind `command`. */
const SERVED: ReadonlyMap<Command, (input: Uint8Array, base: Uint8Array) => Uint8Array> = new Map([
  [Command.REENCODE, RUN.reencode],
  [Command.HASH_TRAINSET, hexLine(RUN["hash-trainset"])],
  [Command.HASH_TRAINSET_JSON, hexLine(RUN["hash-trainset-json"])],
  [Command.HASH_TRAINSET_JSONL, hexLine(RUN["hash-trainset-jsonl"])],
  [Command.READ_STORE_FILE, RUN["read-store-file"]],
  [Command.REENCODE_DELTA, RUN["reencode-delta"]],
  [Command.APPLY_DELTA, applyDeltaInput],
]);

/** Larger than any input the harness sends (a checkpoint over the size limit included). */
const MAX_REQUEST_BYTES = 2 * MAX_CHECKPOINT_BYTES;

function answer(command: Command, input: Uint8Array, base: Uint8Array): Response {
  const run = SERVED.get(command);
  if (run === undefined) {
    const refusal = create(RefusalSchema, {
      exitCode: 2,
      kind: "command",
      message: `unknown command ${String(command)}`,
    });
    return create(ResponseSchema, { result: { case: "refusal", value: refusal } });
  }
  try {
    return create(ResponseSchema, { result: { case: "output", value: run(input, base) } });
  } catch (e) {
    if (!(e instanceof Refused)) {
      throw e;
    }
    const refusal = create(RefusalSchema, {
      exitCode: e.status,
      kind: e.kind,
      path: e.path,
      rule: e.rule,
      message: e.message,
    });
    return create(ResponseSchema, { result: { case: "refusal", value: refusal } });
  }
}

async function serve(): Promise<number> {
  const requests = sizeDelimitedDecodeStream(RequestSchema, process.stdin as AsyncIterable<Uint8Array>, {
    readMaxBytes: MAX_REQUEST_BYTES,
  });
  const iterator = requests[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<{ command: Command; input: Uint8Array; base: Uint8Array }>;
    try {
      next = await iterator.next();
    } catch (e) {
      // A frame cut short, a size over the limit, or bytes that are no Request.
      process.stderr.write(`bad request frame: ${e instanceof Error ? e.message : String(e)}\n`);
      return 2;
    }
    if (next.done === true) {
      break;
    }
    await write(sizeDelimitedEncode(ResponseSchema, answer(next.value.command, next.value.input, next.value.base)));
  }
  return 0;
}

async function main(args: string[]): Promise<number> {
  const mode = args[0];
  if (mode === "apply-delta" && args.length === 2) {
    let base: Uint8Array;
    try {
      base = new Uint8Array(readFileSync(args[1]!));
    } catch (e) {
      process.stderr.write(`cannot read the base: ${e instanceof Error ? e.message : String(e)}\n`);
      return 2;
    }
    return oneShot((input) => applyDeltaInput(input, base));
  }
  if (args.length !== 1 || mode === "apply-delta") {
    process.stderr.write(USAGE + "\n");
    return 2;
  }
  if (mode === "serve") {
    return serve();
  }
  if (mode === undefined || !Object.hasOwn(COMMANDS, mode)) {
    process.stderr.write(`unknown mode ${JSON.stringify(mode)}\n${USAGE}\n`);
    return 2;
  }
  return oneShot(COMMANDS[mode as keyof typeof COMMANDS]);
}

/** Run a one-shot command on all of stdin: its bytes on stdout (0), or a refusal line on stderr. */
async function oneShot(run: (input: Uint8Array) => Uint8Array): Promise<number> {
  const input = await readAll();
  try {
    await write(run(input));
    return 0;
  } catch (e) {
    if (e instanceof Refused) {
      process.stderr.write(e.message + "\n");
      return e.status;
    }
    throw e;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`testee-typescript: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
