/**
 * The conformance testee of the TypeScript binding (see tests/conformance).
 *
 *   testee reencode        checkpoint bytes on stdin → canonical bytes on stdout
 *   testee hash-trainset   a Term list on stdin → hex digest of hash_trainset
 *   testee hash-trainset-json, hash-trainset-jsonl
 *                          JSON or JSON Lines text on stdin → hex digest (FORMAT.md §6.1)
 *   testee read-store-file a store file on stdin → canonical checkpoint bytes
 *   testee serve           framed requests on stdin, framed responses on stdout
 *
 * A refusal is one line `checkpoint_shape: <field path>: <message> (rule <id>)`
 * on stderr (a writer's refusal of a credential names no rule) and exit code
 * 3 (in serve mode: status byte 3 and that line as payload); a
 * damaged store file is one line `store_file: <kind>: <detail>` and exit
 * code 4 (status byte 4). Usage errors exit with code 2.
 *
 * It is compiled for the tests only (dist/testee/), not shipped in the npm
 * package.
 */

import { once } from "node:events";
import { decode, encode, hashTrainset } from "../src/checkpoint.js";
import { hex, InvalidCheckpoint, ResumeMismatch } from "../src/errors.js";
import { TermSchema } from "../src/gen/dsxir/optimizer_session/v1/term_pb.js";
import { Rule, type RuleId } from "../src/rules.js";
import { hashTrainsetJson, hashTrainsetJsonl, TrainsetJsonError } from "../src/trainset_json.js";
import { CorruptStoreFile, readStoreFile } from "../src/storefile.js";
import { canonicalTerm, fromTerm } from "../src/term.js";
import { MAX_CHECKPOINT_BYTES } from "../src/validate.js";
import { parse } from "../src/wire.js";

const USAGE =
  "usage: testee-typescript reencode | hash-trainset | hash-trainset-json | hash-trainset-jsonl | read-store-file | serve";

/** A refusal: the line the contract asks for, and its status (3, or 4 for a damaged store file). */
class Refused extends Error {
  status = 3;
}

function refusal(field: string, detail: string, rule: RuleId | null): Refused {
  const line = `checkpoint_shape: ${field}: ${detail}` + (rule === null ? "" : ` (rule ${rule})`);
  return new Refused(line.replace(/[\r\n]+/g, " "));
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
      const damaged = new Refused(e.message.replace(/[\r\n]+/g, " "));
      damaged.status = 4;
      throw damaged;
    }
    throw refusalOf(e);
  }
}

function hashTrainsetInput(input: Uint8Array): Uint8Array {
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
  const examples: unknown[] = [];
  try {
    term.kind.value.items.forEach((item, i) => {
      examples.push(fromTerm(canonicalTerm(item, `items[${i}]`)));
    });
  } catch (e) {
    throw refusalOf(e);
  }
  return new TextEncoder().encode(hex(hashTrainset(examples)) + "\n");
}

/** A trainset kept as JSON text; a refusal is the line `trainset_json: <message>`. */
function hashTrainsetText(hash: (text: Uint8Array) => Uint8Array): (input: Uint8Array) => Uint8Array {
  return (input) => {
    try {
      return new TextEncoder().encode(hex(hash(input)) + "\n");
    } catch (e) {
      if (e instanceof TrainsetJsonError) {
        throw new Refused(`trainset_json: ${e.message}`.replace(/[\r\n]+/g, " "));
      }
      throw e;
    }
  };
}

const COMMANDS = {
  reencode,
  "hash-trainset": hashTrainsetInput,
  "hash-trainset-json": hashTrainsetText(hashTrainsetJson),
  "hash-trainset-jsonl": hashTrainsetText(hashTrainsetJsonl),
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

/** Reads exact byte counts from stdin; null when the input ends first. */
class FrameReader {
  private buffered: Buffer[] = [];
  private size = 0;
  private readonly iterator: AsyncIterator<Buffer>;
  private done = false;

  constructor() {
    this.iterator = (process.stdin as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  async read(n: number): Promise<Buffer | null> {
    while (this.size < n && !this.done) {
      const next = await this.iterator.next();
      if (next.done) {
        this.done = true;
      } else {
        this.buffered.push(next.value);
        this.size += next.value.length;
      }
    }
    if (this.size < n) {
      return null;
    }
    const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.buffered = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    return out;
  }
}

async function serve(): Promise<number> {
  const reader = new FrameReader();
  for (;;) {
    const command = await reader.read(1);
    if (command === null) {
      return 0;
    }
    const header = await reader.read(4);
    const payload = header === null ? null : await reader.read(header.readUInt32BE(0));
    if (payload === null) {
      process.stderr.write("bad request frame: input ended inside a request\n");
      return 2;
    }
    const input = new Uint8Array(payload.buffer, payload.byteOffset, payload.length);
    let status = 0;
    let out: Uint8Array;
    try {
      if (command[0] === 0x72 /* r */) {
        out = reencode(input);
      } else if (command[0] === 0x68 /* h */) {
        out = hashTrainsetInput(input);
      } else if (command[0] === 0x73 /* s */) {
        out = readStoreFileInput(input);
      } else if (command[0] === 0x6a /* j */) {
        out = COMMANDS["hash-trainset-json"](input);
      } else if (command[0] === 0x6c /* l */) {
        out = COMMANDS["hash-trainset-jsonl"](input);
      } else {
        process.stderr.write(`bad request frame: unknown command byte 0x${command[0]!.toString(16)}\n`);
        return 2;
      }
    } catch (e) {
      if (!(e instanceof Refused)) {
        throw e;
      }
      status = e.status;
      out = new TextEncoder().encode(e.message);
    }
    const head = Buffer.alloc(5);
    head[0] = status;
    head.writeUInt32BE(out.length, 1);
    await write(Buffer.concat([head, out]));
  }
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
