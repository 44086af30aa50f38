/**
 * Store files: the file in which the file store keeps the latest checkpoint
 * of one session (`<session_id>.dsxckpt`). docs/store-file.md in the
 * repository is the normative description.
 *
 * A store file is a 44-byte header (magic, frame version, flags, generation,
 * lengths and CRC32C checksums), a JSON summary of the checkpoint and the
 * canonical checkpoint bytes (the snapshot). With flag 1 ("appendable"),
 * commit records follow: each a 28-byte record header, the summary of the
 * checkpoint after it and a delta (FORMAT.md §13) over the one before.
 *
 * - {@link readStoreFile} checks the frame and every checksum, decodes the
 *   checkpoint with every rule of {@link decode} and checks that the summary
 *   is the checkpoint's; then it reads the commit records (§9.2), applies
 *   their deltas and checks the checkpoint they end with. Frame damage
 *   throws {@link CorruptStoreFile} naming its kind; an invalid checkpoint
 *   throws a {@link ResumeMismatch} (reason `checkpoint_shape`), as
 *   {@link decode} does; a record's delta that is not readable, or not of
 *   the checkpoint before it, an {@link InvalidDelta}.
 * - {@link writeStoreFile} returns the exact bytes the Python FileStore
 *   writes for a checkpoint committed as a generation, and
 *   {@link commitRecord} the record that commits a checkpoint over another.
 */

import { decode, encode, statusName } from "./checkpoint.js";
import { decodeDelta, encodeDelta, InvalidDelta, makeDelta, mergeUnchecked } from "./delta.js";
import { CheckpointError, hex, InvalidCheckpoint, ResumeMismatch } from "./errors.js";
import { Rule } from "./rules.js";
import type { Checkpoint } from "./gen/dsxir/optimizer_session/v1/checkpoint_pb.js";
import { crc32c, MAX_CHECKPOINT_BYTES } from "./grammar.js";
import { check } from "./validate.js";

/** The first 8 bytes of every store file: `"\x89dsxir\r\n"`. */
export const STORE_FILE_MAGIC: Uint8Array = Uint8Array.of(
  0x89, 0x64, 0x73, 0x78, 0x69, 0x72, 0x0d, 0x0a,
);
/** The only frame version read and written. */
export const STORE_FRAME_VERSION = 1;
/** The header flag of an appendable file: commit records may follow the body (docs/store-file.md §9). */
export const STORE_FLAG_APPENDABLE = 1;
/** The size of the header, in bytes. */
export const STORE_HEADER_SIZE = 44;
/** The first 4 bytes of every commit record: `"\x89dlt"`. */
export const RECORD_MAGIC: Uint8Array = Uint8Array.of(0x89, 0x64, 0x6c, 0x74);
/** The size of a commit record's header, in bytes. */
export const RECORD_HEADER_SIZE = 28;
/** The largest summary a reader accepts (2^20 bytes). */
export const MAX_SUMMARY_BYTES = 1 << 20;
/** The largest body: the checkpoint size limit (2^28 bytes). */
export const MAX_BODY_BYTES = MAX_CHECKPOINT_BYTES;
/** The `"summary"` value of the summary layout. */
export const SUMMARY_VERSION = 1;

/** The frame check a damaged store file fails (docs/store-file.md §6), in the order checked. */
export type DamageKind =
  | "truncated"
  | "trailing_bytes"
  | "bad_magic"
  | "header_checksum"
  | "unsupported_version"
  | "unsupported_flags"
  | "over_limits"
  | "summary_checksum"
  | "body_checksum"
  | "summary_mismatch"
  | "record_checksum"
  | "record_generation";

/** A damaged store file; the message reads `store_file: <kind>: <detail>`. */
export class CorruptStoreFile extends CheckpointError {
  readonly kind: DamageKind;
  readonly detail: string;

  constructor(kind: DamageKind, detail: string) {
    super(`store_file: ${kind}: ${detail}`);
    this.kind = kind;
    this.detail = detail;
  }
}

/** The values of a store file's summary (docs/store-file.md §3). */
export interface StoreSummary {
  sessionId: string;
  optimizer: string;
  /** running, paused, completed, failed or cancelled. */
  status: string;
  updatedAt: { seconds: bigint; nanos: number };
  /** null when the checkpoint has no best score (then bestTrialIdx is null too). */
  bestScore: number | null;
  bestTrialIdx: bigint | null;
  attempts: bigint;
  completed: bigint;
  errors: bigint;
  /** The length of the trial log. */
  trials: number;
}

/** A store file that passed every check of {@link readStoreFile}. */
export interface StoreFile {
  /** The generation of the last commit record, or the header's when there is none. */
  generation: bigint;
  /** The summary of {@link checkpoint}. */
  summary: StoreSummary;
  /** The snapshot, changed by every commit record in order. */
  checkpoint: Checkpoint;
  /** Whether the header has flag 1: commit records may be appended. */
  appendable: boolean;
  /** How many commit records were applied. */
  records: number;
  /**
   * Where the intact records end: the file's length, unless a torn tail (a
   * strict prefix of a record, never acknowledged) follows; a writer appends
   * at this offset, cutting the tail off.
   */
  end: number;
}

/** The CRC-32C (Castagnoli) of `data`, an unsigned 32-bit integer; the same as the checkpoint trailer's. */
export { crc32c };

/**
 * Read a whole store file, checking it in the order of docs/store-file.md §5,
 * then its commit records (§9.2) when the header has flag 1.
 *
 * The records' checksums are checked first, all of them (a torn tail ends
 * them); then, record by record, its generation, its delta (read by
 * {@link decodeDelta}), the delta's base generation and FORMAT.md §13.2
 * steps 1-2; the checkpoints between records are not checked by FORMAT.md
 * §7, the one the last record makes is, and the last record's summary must
 * be its summary.
 *
 * Throws {@link CorruptStoreFile} for a damaged file (a record out of
 * sequence is `record_generation`), the {@link ResumeMismatch} (reason
 * `checkpoint_shape`) of {@link decode} for a body that is not a valid
 * checkpoint, an {@link InvalidDelta} for a record's delta that is not
 * readable or not of the checkpoint before it, and a {@link ResumeMismatch}
 * (reason `checkpoint_shape`, the path in that checkpoint) for a checkpoint
 * made by the records that breaks a rule of FORMAT.md §7.
 */
export function readStoreFile(data: Uint8Array): StoreFile {
  if (!(data instanceof Uint8Array)) {
    throw new TypeError("readStoreFile takes a Uint8Array");
  }
  const n = data.length;
  if (n < STORE_HEADER_SIZE) {
    throw new CorruptStoreFile("truncated", `${n} bytes, a header needs ${STORE_HEADER_SIZE}`);
  }
  if (!STORE_FILE_MAGIC.every((b, i) => data[i] === b)) {
    throw new CorruptStoreFile("bad_magic", "not a dsxir checkpoint store file (bad magic)");
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (crc32c(data.subarray(0, 40)) !== view.getUint32(40)) {
    throw new CorruptStoreFile("header_checksum", "header checksum mismatch (damaged file)");
  }
  const version = view.getUint16(8);
  if (version !== STORE_FRAME_VERSION) {
    throw new CorruptStoreFile("unsupported_version", `unsupported frame version ${version}`);
  }
  const flags = view.getUint16(10);
  if (flags !== 0 && flags !== STORE_FLAG_APPENDABLE) {
    const shown = flags.toString(16).padStart(4, "0");
    throw new CorruptStoreFile("unsupported_flags", `unsupported frame flags 0x${shown}`);
  }
  const appendable = flags === STORE_FLAG_APPENDABLE;
  const generation = view.getBigUint64(12);
  const summaryLength = view.getUint32(20);
  const bodyLength = view.getBigUint64(24);
  if (summaryLength > MAX_SUMMARY_BYTES || bodyLength > BigInt(MAX_BODY_BYTES)) {
    throw new CorruptStoreFile(
      "over_limits",
      `summary length ${summaryLength} or body length ${bodyLength} is over the limits ` +
        `(${MAX_SUMMARY_BYTES}, ${MAX_BODY_BYTES})`,
    );
  }
  const total = STORE_HEADER_SIZE + summaryLength + Number(bodyLength);
  if (n < total || (n > total && !appendable)) {
    const kind = n < total ? "truncated" : "trailing_bytes";
    throw new CorruptStoreFile(kind, `file has ${n} bytes, its frame says ${total}`);
  }
  const summary = data.subarray(STORE_HEADER_SIZE, STORE_HEADER_SIZE + summaryLength);
  const body = data.subarray(STORE_HEADER_SIZE + summaryLength, total);
  if (crc32c(summary) !== view.getUint32(32)) {
    throw new CorruptStoreFile("summary_checksum", "summary checksum mismatch (damaged file)");
  }
  if (crc32c(body) !== view.getUint32(36)) {
    throw new CorruptStoreFile("body_checksum", "checkpoint checksum mismatch (damaged file)");
  }
  let cp = decode(body);
  let values = summaryOf(cp);
  checkSummary(summary, values);
  if (!appendable) {
    return { generation, summary: values, checkpoint: cp, appendable, records: 0, end: n };
  }
  const { found, end } = scanRecords(data, total);
  if (found.length === 0) {
    return { generation, summary: values, checkpoint: cp, appendable, records: 0, end };
  }
  let g = generation;
  for (const record of found) {
    if (record.generation !== g + 1n) {
      throw new CorruptStoreFile(
        "record_generation",
        `the record at byte ${record.at} commits generation ${record.generation} after ${g}`,
      );
    }
    const delta = decodeDelta(record.delta);
    if (delta.baseGeneration !== g) {
      throw new CorruptStoreFile(
        "record_generation",
        `the delta of generation ${record.generation} applies to ${delta.baseGeneration}, not ${g}`,
      );
    }
    cp = mergeUnchecked(cp, delta);
    g = record.generation;
  }
  try {
    check(cp);
  } catch (e) {
    if (e instanceof InvalidCheckpoint) {
      throw new ResumeMismatch(cp.sessionId || null, "checkpoint_shape", null, null, {
        field: e.path,
        detail: e.detail,
        rule: e.rule,
      });
    }
    throw e;
  }
  values = summaryOf(cp);
  checkSummary(found[found.length - 1]!.summary, values);
  return { generation: g, summary: values, checkpoint: cp, appendable, records: found.length, end };
}

/** One intact commit record: where it starts, its generation, summary and delta bytes. */
interface FoundRecord {
  at: number;
  generation: bigint;
  summary: Uint8Array;
  delta: Uint8Array;
}

/**
 * The intact records of `data` from `start` (docs/store-file.md §9.2 steps
 * 1-5), and where they end. A torn tail (fewer than 28 bytes left, or an
 * intact record header whose record runs past the end) ends the scan; a
 * wrong record magic or a checksum that fails is `record_checksum`, lengths
 * over the limits `over_limits`, wherever the record is.
 */
function scanRecords(data: Uint8Array, start: number): { found: FoundRecord[]; end: number } {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const found: FoundRecord[] = [];
  let at = start;
  while (at < data.length) {
    if (data.length - at < RECORD_HEADER_SIZE) {
      break;
    }
    const magicOk = RECORD_MAGIC.every((b, i) => data[at + i] === b);
    if (!magicOk || crc32c(data.subarray(at, at + 24)) !== view.getUint32(at + 24)) {
      throw new CorruptStoreFile("record_checksum", `record at byte ${at}: header damaged (magic or checksum)`);
    }
    const summaryLength = view.getUint32(at + 12);
    const deltaLength = view.getUint32(at + 16);
    if (summaryLength > MAX_SUMMARY_BYTES || deltaLength > MAX_BODY_BYTES) {
      throw new CorruptStoreFile(
        "over_limits",
        `record at byte ${at}: summary length ${summaryLength} or delta length ${deltaLength} ` +
          `is over the limits (${MAX_SUMMARY_BYTES}, ${MAX_BODY_BYTES})`,
      );
    }
    const payload = at + RECORD_HEADER_SIZE;
    const next = payload + summaryLength + deltaLength;
    if (next > data.length) {
      break;
    }
    if (crc32c(data.subarray(payload, next)) !== view.getUint32(at + 20)) {
      throw new CorruptStoreFile("record_checksum", `record at byte ${at}: payload checksum mismatch (damaged)`);
    }
    found.push({
      at,
      generation: view.getBigUint64(at + 4),
      summary: data.subarray(payload, payload + summaryLength),
      delta: data.subarray(payload + summaryLength, next),
    });
    at = next;
  }
  return { found, end: at };
}

/** Step 11 of §5 (and 11 of §9.2): `summary` is, byte for byte, the canonical summary of `values`. */
function checkSummary(summary: Uint8Array, values: StoreSummary): void {
  const expected = summaryBytes(values);
  if (!sameBytes(summary, expected)) {
    throw new CorruptStoreFile(
      "summary_mismatch",
      `the summary is not the checkpoint's (${summary.length} bytes, expected ${expected.length})`,
    );
  }
}

/** Options of {@link writeStoreFile}. */
export interface WriteStoreFileOptions {
  /** Set flag 1: commit records may be appended to the file (docs/store-file.md §9). Default false. */
  appendable?: boolean;
}

/**
 * The store file of `cp` committed as `generation` (0 to 2^64-1): byte for
 * byte what the Python FileStore writes (it sets `appendable`).
 *
 * Throws {@link InvalidCheckpoint} for an invalid checkpoint or one whose
 * encoding is over {@link MAX_BODY_BYTES}, and a RangeError for a generation
 * out of range or a summary over {@link MAX_SUMMARY_BYTES}.
 */
export function writeStoreFile(
  generation: bigint | number,
  cp: Checkpoint,
  options: WriteStoreFileOptions = {},
): Uint8Array {
  const g = generationOf(generation);
  const body = encode(cp);
  if (body.length > MAX_BODY_BYTES) {
    const detail = `${body.length} bytes, over the limit of ${MAX_BODY_BYTES}`;
    throw new InvalidCheckpoint("<input>", detail, Rule.INPUT_TOO_LARGE);
  }
  const summary = summaryBytes(summaryOf(cp));
  if (summary.length > MAX_SUMMARY_BYTES) {
    throw new RangeError(`summary of ${summary.length} bytes is over ${MAX_SUMMARY_BYTES}`);
  }
  const out = new Uint8Array(STORE_HEADER_SIZE + summary.length + body.length);
  const view = new DataView(out.buffer);
  out.set(STORE_FILE_MAGIC, 0);
  view.setUint16(8, STORE_FRAME_VERSION);
  view.setUint16(10, options.appendable === true ? STORE_FLAG_APPENDABLE : 0);
  view.setBigUint64(12, g);
  view.setUint32(20, summary.length);
  view.setBigUint64(24, BigInt(body.length));
  view.setUint32(32, crc32c(summary));
  view.setUint32(36, crc32c(body));
  view.setUint32(40, crc32c(out.subarray(0, 40)));
  out.set(summary, STORE_HEADER_SIZE);
  out.set(body, STORE_HEADER_SIZE + summary.length);
  return out;
}

/**
 * The commit record (docs/store-file.md §9.1) that commits `next` as
 * generation `baseGeneration + 1` over `base`, the checkpoint of generation
 * `baseGeneration` of an appendable file: the summary of `next` and the
 * delta of `next` over `base` ({@link makeDelta}, {@link encodeDelta}).
 * Appended at the {@link StoreFile.end} of the file `base` was read from,
 * the file then reads as `next` and `baseGeneration + 1`.
 *
 * Throws {@link InvalidCheckpoint} for an invalid `next`, what
 * {@link makeDelta} and {@link encodeDelta} throw for a `next` that is not a
 * successor of `base` (another session, a trial log that does not extend the
 * base's), and a RangeError for a generation out of range or a record over
 * the limits.
 */
export function commitRecord(base: Checkpoint, baseGeneration: bigint | number, next: Checkpoint): Uint8Array {
  const g = generationOf(baseGeneration);
  if (g === 0n || g === (1n << 64n) - 1n) {
    throw new RangeError(`a record commits over generation 1 to 2^64-2, not ${g}`);
  }
  const summary = encodeSummary(next);
  return encodeRecord(g + 1n, summary, encodeDelta(makeDelta(base, next, g)));
}

/**
 * The bytes of one commit record (docs/store-file.md §9.1): the 28-byte
 * record header, `summary` and `delta`, as given (nothing is checked but
 * the generation's range and the lengths' limits: RangeError).
 */
export function encodeRecord(generation: bigint | number, summary: Uint8Array, delta: Uint8Array): Uint8Array {
  const g = generationOf(generation);
  if (summary.length > MAX_SUMMARY_BYTES || delta.length > MAX_BODY_BYTES) {
    throw new RangeError(
      `record lengths ${summary.length}, ${delta.length} are over the limits (${MAX_SUMMARY_BYTES}, ${MAX_BODY_BYTES})`,
    );
  }
  const out = new Uint8Array(RECORD_HEADER_SIZE + summary.length + delta.length);
  const view = new DataView(out.buffer);
  out.set(RECORD_MAGIC, 0);
  view.setBigUint64(4, g);
  view.setUint32(12, summary.length);
  view.setUint32(16, delta.length);
  out.set(summary, RECORD_HEADER_SIZE);
  out.set(delta, RECORD_HEADER_SIZE + summary.length);
  view.setUint32(20, crc32c(out.subarray(RECORD_HEADER_SIZE)));
  view.setUint32(24, crc32c(out.subarray(0, 24)));
  return out;
}

/** A generation given as a number or a bigint, checked to be in [0, 2^64). */
function generationOf(generation: bigint | number): bigint {
  const g =
    typeof generation === "number" && Number.isSafeInteger(generation) ? BigInt(generation) : generation;
  if (typeof g !== "bigint" || g < 0n || g >= 1n << 64n) {
    throw new RangeError(`generation must be an integer from 0 to 2^64-1, not ${String(generation)}`);
  }
  return g;
}

/**
 * The canonical summary of a valid checkpoint (docs/store-file.md §3): the
 * bytes of Python's `encode_summary`. Throws {@link InvalidCheckpoint} for an
 * invalid checkpoint.
 */
export function encodeSummary(cp: Checkpoint): Uint8Array {
  check(cp);
  return summaryBytes(summaryOf(cp));
}

function summaryOf(cp: Checkpoint): StoreSummary {
  const progress = cp.progress!;
  const stamp = cp.updatedAt!;
  const hasBest = progress.bestScore !== undefined;
  return {
    sessionId: cp.sessionId,
    optimizer: cp.optimizer,
    status: statusName(cp),
    updatedAt: { seconds: stamp.seconds, nanos: stamp.nanos },
    bestScore: hasBest ? progress.bestScore! : null,
    bestTrialIdx: progress.bestTrialIdx ?? null,
    attempts: progress.attempts,
    completed: progress.completed,
    errors: progress.errors,
    trials: progress.trialLog.length,
  };
}

function summaryBytes(s: StoreSummary): Uint8Array {
  const text =
    `{"attempts":${s.attempts}` +
    `,"best_score":${s.bestScore === null ? "null" : `"${floatBits(s.bestScore)}"`}` +
    `,"best_trial_idx":${s.bestTrialIdx === null ? "null" : s.bestTrialIdx}` +
    `,"completed":${s.completed}` +
    `,"errors":${s.errors}` +
    `,"optimizer":${jsonString(s.optimizer)}` +
    `,"session_id":${jsonString(s.sessionId)}` +
    `,"status":${jsonString(s.status)}` +
    `,"summary":${SUMMARY_VERSION}` +
    `,"trials":${s.trials}` +
    `,"updated_at":[${s.updatedAt.seconds},${s.updatedAt.nanos}]}`;
  return new TextEncoder().encode(text);
}

/** The 16 lowercase hex digits of the IEEE 754 bits of `x`, most significant first. */
function floatBits(x: number): string {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setFloat64(0, x);
  return hex(bytes);
}

const SHORT_ESCAPES: ReadonlyMap<number, string> = new Map([
  [0x22, '\\"'],
  [0x5c, "\\\\"],
  [0x08, "\\b"],
  [0x09, "\\t"],
  [0x0a, "\\n"],
  [0x0c, "\\f"],
  [0x0d, "\\r"],
]);

/**
 * `s` as a JSON string the way Python's `json.dumps(ensure_ascii=False)`
 * writes it: only `"`, `\` and characters below U+0020 are escaped (`\b \t
 * \n \f \r`, else `\u00xx` in lowercase); everything else is kept.
 */
function jsonString(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) {
      continue;
    }
    out += s.slice(start, i) + (SHORT_ESCAPES.get(c) ?? "\\u" + c.toString(16).padStart(4, "0"));
    start = i + 1;
  }
  return out + s.slice(start) + '"';
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
