/**
 * The conformance testee of the TypeScript binding (see tests/conformance).
 *
 *   testee reencode        checkpoint bytes on stdin → canonical bytes on stdout
 *   testee hash-trainset   a Term list on stdin → hex digest of hash_trainset
 *   testee hash-trainset-json, hash-trainset-jsonl
 *                          JSON or JSON Lines text on stdin → hex digest (FORMAT.md §6.1)
 *   testee read-store-file a store file on stdin → canonical checkpoint bytes
 *   testee serve           size-delimited Requests on stdin, one size-delimited
 *                          Response each on stdout (tests/conformance/proto/
 *                          dsxir/conformance/v1/testee.proto)
 *
 * A refusal is one line `checkpoint_shape: <field path>: <message> (rule <id>)`
 * on stderr (a writer's refusal of a credential names no rule) and exit code
 * 3; a JSON trainset's refusal is `trainset_json: <place>: <message>` (exit
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
import { create, toBinary } from "@bufbuild/protobuf";
import { sizeDelimitedDecodeStream, sizeDelimitedEncode } from "@bufbuild/protobuf/wire";
import { decode, encode } from "../src/checkpoint.js";
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
  "usage: testee-typescript reencode | hash-trainset | hash-trainset-json | hash-trainset-jsonl | read-store-file | serve";

/**
 * A refusal: the line the one-shot commands write (the message), its exit
 * code (3, or 4 for a damaged store file), and the fields of serve's Refusal.
 */
class Refused extends Error {
  constructor(
    line: string,
    readonly status: number,
    readonly kind: "checkpoint_shape" | "trainset_json" | "store_file",
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

function reencode(input: Uint8Array): Uint8Array {
  try {
    return encode(decode(input));
  } catch (e) {
    throw refusalOf(e);
  }
}

function readStoreFileInput(input: Uint8Array): Uint8Array {
  try {
    return encode(readStoreFile(input).checkpoint);
  } catch (e) {
    if (e instanceof CorruptStoreFile) {
      throw new Refused(e.message, 4, "store_file", e.kind, "");
    }
    throw refusalOf(e);
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
};

/** The one-shot commands: what they write on stdout. */
const COMMANDS = {
  reencode,
  "hash-trainset": hexLine(RUN["hash-trainset"]),
  "hash-trainset-json": hexLine(RUN["hash-trainset-json"]),
  "hash-trainset-jsonl": hexLine(RUN["hash-trainset-jsonl"]),
  "read-store-file": readStoreFileInput,
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
const SERVED: ReadonlyMap<Command, (input: Uint8Array) => Uint8Array> = new Map([
  [Command.REENCODE, RUN.reencode],
  [Command.HASH_TRAINSET, hexLine(RUN["hash-trainset"])],
  [Command.HASH_TRAINSET_JSON, hexLine(RUN["hash-trainset-json"])],
  [Command.HASH_TRAINSET_JSONL, hexLine(RUN["hash-trainset-jsonl"])],
  [Command.READ_STORE_FILE, RUN["read-store-file"]],
]);

/** Larger than any input the harness sends (a checkpoint over the size limit included). */
const MAX_REQUEST_BYTES = 2 * MAX_CHECKPOINT_BYTES;

function answer(command: Command, input: Uint8Array): Response {
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
    return create(ResponseSchema, { result: { case: "output", value: run(input) } });
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
    let next: IteratorResult<{ command: Command; input: Uint8Array }>;
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
    await write(sizeDelimitedEncode(ResponseSchema, answer(next.value.command, next.value.input)));
  }
  return 0;
}

async function main(args: string[]): Promise<number> {
  if (args.length !== 1) {
    process.stderr.write(USAGE + "\n");
    return 2;
  }
  const mode = args[0];
  if (mode === "serve") {
    return serve();
  }
  if (mode === undefined || !Object.hasOwn(COMMANDS, mode)) {
    process.stderr.write(`unknown mode ${JSON.stringify(mode)}\n${USAGE}\n`);
    return 2;
  }
  const input = await readAll();
  try {
    const run = COMMANDS[mode as keyof typeof COMMANDS];
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
