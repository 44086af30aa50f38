/**
 * The byte grammar of a checkpoint (FORMAT.md §2): the checksum trailer, the
 * strict scan of the body, and the weight limit.
 *
 * {@link checkInput} applies §7 step 1 to a whole input (size, trailer,
 * CRC-32C, the grammar of §2.2 in byte order with the Term depth, then the
 * weight of §2.4) and returns the body, which the protobuf runtime then parses
 * without surprise; {@link checkBody} applies the size, grammar and weight
 * checks to a body a writer produced, and {@link seal} appends its trailer.
 * A refusal is an {@link InvalidCheckpoint} naming the first broken rule and
 * the path §2.3 prescribes.
 *
 * The field table (numbers, wire types, presence, repetition, message types,
 * oneof membership) is built from the generated descriptors, so a field added
 * to the schema is scanned without an edit here; the weights and the Term
 * depth rules are the only hand-written constants. The scan is O(n),
 * recursive only into known message fields (bounded by the Term depth limit,
 * since unknown fields are never descended into), and allocates nothing per
 * field: paths are built only for a refusal.
 */

import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { CheckpointSchema } from "./gen/dsxir/optimizer_session/v1/checkpoint_pb.js";
import { InvalidCheckpoint } from "./errors.js";
import { Rule, type RuleId } from "./rules.js";
import { MAX_TERM_DEPTH } from "./term.js";

/** The largest input a reader accepts, trailer included (FORMAT.md §3.6): 256 MiB. */
export const MAX_CHECKPOINT_BYTES = 268_435_456;
/** The length of the trailer: its tag FD FF FF FF 0F and the CRC-32C, least significant byte first. */
export const TRAILER_SIZE = 9;
/** Field 536,870,911 with wire type I32: the first 5 bytes of the trailer (FORMAT.md §2.1). */
export const TRAILER_TAG: readonly number[] = Object.freeze([0xfd, 0xff, 0xff, 0xff, 0x0f]);

const TRAILER_NUMBER = 536_870_911;
const INPUT = "<input>";

// Weights of §2.4: what the reference reader allocates per message.
const TRIAL_LOG_ENTRY = "dsxir.optimizer_session.v1.TrialLogEntry";
const TERM_NULL = "dsxir.optimizer_session.v1.TermNull";
const WEIGHTS: ReadonlyMap<string, number> = new Map([
  [TRIAL_LOG_ENTRY, 104],
  [TERM_NULL, 8],
]);
const MESSAGE_WEIGHT = 48;
// The weight limit (FORMAT.md §2.4): WEIGHT_FACTOR x the input's length + WEIGHT_BASE.
const WEIGHT_FACTOR = 7;
const WEIGHT_BASE = 50_331_648;

// The Term depth of §3.6: a Term, and the messages that hold Terms.
const TERM = "dsxir.optimizer_session.v1.Term";
const TERM_CONTAINERS: ReadonlySet<string> = new Set([
  "dsxir.optimizer_session.v1.TermList",
  "dsxir.optimizer_session.v1.TermMap",
  "dsxir.optimizer_session.v1.TermMapEntry",
]);
const ROLE_OTHER = 0;
const ROLE_TERM = 1;
const ROLE_CONTAINER = 2;

// Wire types of §2.2.
const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

// What a known field's value is checked for.
const K_BOOL = 0;
const K_UINT32 = 1;
const K_INT32 = 2;
const K_INT64 = 3;
const K_FIXED = 4;
const K_STRING = 5;
const K_BYTES = 6;
const K_MESSAGE = 7;

interface FieldInfo {
  readonly name: string;
  readonly kind: number;
  readonly wireType: number;
  readonly presence: boolean;
  readonly repeated: boolean;
  /** Index of its (non-synthetic) oneof in the message, or -1. */
  readonly oneof: number;
  /** Set for a message field once the whole table is built. */
  message: MessageInfo | null;
}

interface MessageInfo {
  readonly typeName: string;
  /** Known fields by number (sparse); numbers past its end are unknown. */
  readonly fields: (FieldInfo | undefined)[];
  readonly weight: number;
  readonly role: number;
}

/** The weight limit of a checkpoint of `size` input bytes, trailer included (FORMAT.md §2.4). */
export function weightLimit(size: number): number {
  return WEIGHT_FACTOR * size + WEIGHT_BASE;
}

// ---------------------------------------------------------------------------
// The field table, from the descriptors.

function scalarKind(field: DescField, scalar: ScalarType): [kind: number, wireType: number] {
  switch (scalar) {
    case ScalarType.BOOL:
      return [K_BOOL, VARINT];
    case ScalarType.UINT32:
    case ScalarType.SINT32:
      return [K_UINT32, VARINT];
    case ScalarType.INT32:
      return [K_INT32, VARINT];
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
      return [K_INT64, VARINT];
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return [K_FIXED, I64];
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return [K_FIXED, I32];
    case ScalarType.STRING:
      return [K_STRING, LEN];
    case ScalarType.BYTES:
      return [K_BYTES, LEN];
  }
  throw new Error(`field ${field.toString()}: scalar type ${String(scalar)} has no place in the grammar`);
}

function fieldInfo(field: DescField, oneofs: readonly unknown[]): FieldInfo {
  // Explicit presence (1): proto3 `optional`, a oneof member, a message field.
  const presence = field.presence === 1;
  const oneof = field.oneof === undefined ? -1 : oneofs.indexOf(field.oneof);
  let kind: number;
  let wireType: number;
  let repeated = false;
  switch (field.fieldKind) {
    case "scalar":
      [kind, wireType] = scalarKind(field, field.scalar);
      break;
    case "enum":
      [kind, wireType] = [K_INT32, VARINT];
      break;
    case "message":
      [kind, wireType] = [K_MESSAGE, LEN];
      break;
    case "list":
      repeated = true;
      if (field.listKind === "message") {
        [kind, wireType] = [K_MESSAGE, LEN];
      } else if (field.listKind === "enum") {
        [kind, wireType] = [K_INT32, VARINT];
      } else {
        [kind, wireType] = scalarKind(field, field.scalar);
      }
      break;
    default:
      throw new Error(`field ${field.toString()}: map fields have no place in the grammar`);
  }
  return { name: field.name, kind, wireType, presence, repeated, oneof, message: null };
}

function buildTable(root: DescMessage): MessageInfo {
  const seen = new Map<string, MessageInfo>();
  const visit = (desc: DescMessage): MessageInfo => {
    const known = seen.get(desc.typeName);
    if (known !== undefined) {
      return known;
    }
    const fields: (FieldInfo | undefined)[] = [];
    const info: MessageInfo = {
      typeName: desc.typeName,
      fields,
      weight: WEIGHTS.get(desc.typeName) ?? MESSAGE_WEIGHT,
      role: desc.typeName === TERM ? ROLE_TERM : TERM_CONTAINERS.has(desc.typeName) ? ROLE_CONTAINER : ROLE_OTHER,
    };
    seen.set(desc.typeName, info);
    for (const field of desc.fields) {
      const f = fieldInfo(field, desc.oneofs);
      fields[field.number] = f;
      if (field.message !== undefined) {
        f.message = visit(field.message);
      }
    }
    return info;
  };
  return visit(root);
}

const TABLES = new Map<DescMessage, MessageInfo>();

/** The field table of a top-level message (a Checkpoint, or a CheckpointDelta of FORMAT.md §13). */
function tableOf(root: DescMessage): MessageInfo {
  let table = TABLES.get(root);
  if (table === undefined) {
    table = buildTable(root);
    TABLES.set(root, table);
  }
  return table;
}

/** The depth (§3.6) of a message of role `child` held by a message of role `parent` at `depth`. */
function childDepth(parent: number, depth: number, child: number): number {
  if (parent === ROLE_TERM) {
    return depth + 1;
  }
  if (parent === ROLE_CONTAINER) {
    return depth;
  }
  if (child === ROLE_TERM) {
    return 1;
  }
  return child === ROLE_CONTAINER ? 2 : 0;
}

// ---------------------------------------------------------------------------
// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), slicing by 8.

const CRC_TABLES: Int32Array = (() => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) {
      c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    }
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/** The CRC-32C of `data` (FORMAT.md §2.1): `123456789` gives 0xE3069283. */
export function crc32c(data: Uint8Array): number {
  const t = CRC_TABLES;
  let crc = -1;
  let i = 0;
  const n = data.length;
  const fast = n - (n % 8);
  while (i < fast) {
    const a = crc ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
    crc =
      t[7 * 256 + (a & 0xff)]! ^
      t[6 * 256 + ((a >>> 8) & 0xff)]! ^
      t[5 * 256 + ((a >>> 16) & 0xff)]! ^
      t[4 * 256 + (a >>> 24)]! ^
      t[3 * 256 + data[i + 4]!]! ^
      t[2 * 256 + data[i + 5]!]! ^
      t[256 + data[i + 6]!]! ^
      t[data[i + 7]!]!;
    i += 8;
  }
  while (i < n) {
    crc = t[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
    i++;
  }
  return (crc ^ -1) >>> 0;
}

/** `body` followed by its trailer: the bytes of a checkpoint (FORMAT.md §2.1). */
export function seal(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + TRAILER_SIZE);
  out.set(body, 0);
  const at = body.length;
  out.set(TRAILER_TAG, at);
  const crc = crc32c(body);
  out[at + 5] = crc & 0xff;
  out[at + 6] = (crc >>> 8) & 0xff;
  out[at + 7] = (crc >>> 16) & 0xff;
  out[at + 8] = crc >>> 24;
  return out;
}

// ---------------------------------------------------------------------------
// The checks.

/**
 * Check a whole input by FORMAT.md §2 (§7 step 1) and return its body (a
 * view of `data` without the trailer); `root` is its top-level message (a
 * Checkpoint, or a CheckpointDelta of §13). Throws {@link InvalidCheckpoint} for
 * the first broken rule: `input.too_large`, `input.trailer`,
 * `input.checksum`, a `wire.*` rule or `term.depth` in byte order, then
 * `input.weight`.
 */
export function checkInput(data: Uint8Array, root: DescMessage = CheckpointSchema): Uint8Array {
  const size = data.byteLength;
  checkSize(size);
  const b = size - TRAILER_SIZE;
  if (
    size < TRAILER_SIZE ||
    data[b] !== 0xfd ||
    data[b + 1] !== 0xff ||
    data[b + 2] !== 0xff ||
    data[b + 3] !== 0xff ||
    data[b + 4] !== 0x0f
  ) {
    throw new InvalidCheckpoint(INPUT, "no checksum trailer at the end (cut short, or not a checkpoint)", Rule.INPUT_TRAILER);
  }
  const body = data.subarray(0, b);
  const expected = (data[b + 5]! | (data[b + 6]! << 8) | (data[b + 7]! << 16) | (data[b + 8]! << 24)) >>> 0;
  if (crc32c(body) !== expected) {
    throw new InvalidCheckpoint(INPUT, "the checksum does not match the bytes", Rule.INPUT_CHECKSUM);
  }
  scanAndWeigh(body, size, root);
  return body;
}

/**
 * Check a body a writer produced as a reader will check it once sealed: the
 * size limit (trailer included), the grammar, the weight. Throws
 * {@link InvalidCheckpoint} for the first broken rule.
 */
export function checkBody(body: Uint8Array, root: DescMessage = CheckpointSchema): void {
  const size = body.byteLength + TRAILER_SIZE;
  checkSize(size);
  scanAndWeigh(body, size, root);
}

function checkSize(size: number): void {
  if (size > MAX_CHECKPOINT_BYTES) {
    throw new InvalidCheckpoint(
      INPUT,
      `${size} bytes, over the limit of ${MAX_CHECKPOINT_BYTES}`,
      Rule.INPUT_TOO_LARGE,
    );
  }
}

function scanAndWeigh(body: Uint8Array, size: number, root: DescMessage): void {
  const weight = scanBody(body, root);
  const limit = weightLimit(size);
  if (weight > limit) {
    throw new InvalidCheckpoint(
      INPUT,
      `weight ${weight} over the limit of ${limit} for ${size} bytes`,
      Rule.INPUT_WEIGHT,
    );
  }
}

/**
 * Scan `body` (a Checkpoint without its trailer) by the grammar of FORMAT.md
 * §2.2 and return its weight (§2.4), or throw {@link InvalidCheckpoint} for
 * the first broken rule at the place §2.3 names. Exported for the tests.
 *
 * The weight stays a JavaScript number: every message costs at least 2 bytes
 * of input and weighs at most 104, so it stays below 2^35, far inside the
 * exact integers of a double.
 */
export function scanBody(body: Uint8Array, root: DescMessage = CheckpointSchema): number {
  const s = new Scanner(body);
  return s.message(tableOf(root), 0, body.length, 0);
}

class Scanner {
  private readonly buf: Uint8Array;
  /** The varint just read: its low and high 32 bits (unsigned), and the position after it. */
  private lo = 0;
  private hi = 0;
  private pos = 0;
  /** The message fields entered, from the top: the field and its index among its run. */
  private readonly stackField: FieldInfo[] = [];
  private readonly stackRun: number[] = [];
  private level = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
  }

  /**
   * Scan the message of `schema` in `[start, end)` at nesting `level`; return
   * the weight of the messages below it. `depth` is the Term depth of this
   * message when it is a Term, and the depth of the Terms it holds when it is
   * a TermList, TermMap or TermMapEntry (§3.6).
   */
  message(schema: MessageInfo, start: number, end: number, depth: number): number {
    const fields = schema.fields;
    const level = this.level;
    let weight = 0;
    let previous = 0;
    let previousWire = -1;
    let run = 0;
    let oneofsSeen = 0;
    const buf = this.buf;
    let pos = start;
    while (pos < end) {
      // The tag: truncation and minimality name the message. A one-byte
      // varint (the common case) is read inline.
      let tag = buf[pos]!;
      if (tag < 0x80) {
        pos++;
      } else {
        this.varint(pos, end, level, null, 0);
        pos = this.pos;
        if (this.high() !== 0) {
          throw this.atMessage(level, Rule.WIRE_VARINT, "tag of 2^32 or more");
        }
        tag = this.low();
      }
      const number = tag >>> 3;
      const wireType = tag & 7;
      if (number === 0 || number === TRAILER_NUMBER) {
        throw this.atMessage(level, Rule.WIRE_TAG, `field number ${number}`);
      }
      if (wireType !== VARINT && wireType !== I64 && wireType !== LEN && wireType !== I32) {
        throw this.atMessage(level, Rule.WIRE_TAG, `wire type ${wireType} of field ${number}`);
      }
      const field = number < fields.length ? fields[number] : undefined;
      if (number === previous) {
        if (!(field !== undefined ? field.repeated : wireType === previousWire)) {
          throw this.atMessage(level, Rule.WIRE_ORDER, `field ${number} after field ${previous}`);
        }
        run++;
      } else if (number < previous) {
        throw this.atMessage(level, Rule.WIRE_ORDER, `field ${number} after field ${previous}`);
      } else {
        run = 0;
      }
      previous = number;
      previousWire = wireType;
      if (field === undefined) {
        pos = this.skip(pos, end, wireType, level);
        continue;
      }
      if (wireType !== field.wireType) {
        throw this.atMessage(level, Rule.WIRE_TAG, `field ${number} with wire type ${wireType}`);
      }
      if (field.oneof >= 0) {
        const bit = 1 << field.oneof;
        if ((oneofsSeen & bit) !== 0) {
          throw this.atMessage(level, Rule.WIRE_ONEOF, "more than one field of a oneof (a Term with more than one kind)");
        }
        oneofsSeen |= bit;
      }
      const noDefault = !field.presence && !field.repeated;
      if (wireType === VARINT) {
        let lo: number;
        let hi = 0;
        if (pos < end && buf[pos]! < 0x80) {
          lo = buf[pos++]!;
        } else {
          this.varint(pos, end, level, field, run);
          pos = this.pos;
          // (Read back through the getters: TypeScript would keep `this.hi`
          // narrowed to 0 from a check above, across the call.)
          lo = this.low();
          hi = this.high();
        }
        switch (field.kind) {
          case K_BOOL:
            if (hi !== 0 || lo > 1) {
              throw this.atField(level, field, run, Rule.WIRE_RANGE, "bool that is not 0 or 1");
            }
            break;
          case K_UINT32:
            if (hi !== 0) {
              throw this.atField(level, field, run, Rule.WIRE_RANGE, "2^32 or more in a 32-bit field");
            }
            break;
          case K_INT32:
            if (!((hi === 0 && lo < 0x80000000) || (hi === 0xffffffff && lo >= 0x80000000))) {
              throw this.atField(level, field, run, Rule.WIRE_RANGE, "outside the int32 range");
            }
            break;
        }
        if (noDefault && lo === 0 && hi === 0) {
          throw this.atField(level, field, run, Rule.WIRE_DEFAULT, "default value written");
        }
        continue;
      }
      if (wireType !== LEN) {
        const n = wireType === I64 ? 8 : 4;
        if (end - pos < n) {
          throw this.atMessage(level, Rule.WIRE_TRUNCATED, `${this.fieldPath(level, field, run)} cut short`);
        }
        if (noDefault && allZero(buf, pos, pos + n)) {
          throw this.atField(level, field, run, Rule.WIRE_DEFAULT, "default value written");
        }
        pos += n;
        continue;
      }
      // LEN: the length is read and checked before the content.
      let length: number;
      if (pos < end && buf[pos]! < 0x80) {
        length = buf[pos++]!;
      } else {
        this.varint(pos, end, level, field, run);
        pos = this.pos;
        length = this.high() !== 0 ? Infinity : this.low();
      }
      if (length > end - pos) {
        throw this.atMessage(level, Rule.WIRE_TRUNCATED, `${this.fieldPath(level, field, run)} longer than its message`);
      }
      const stop = pos + length;
      const child = field.message;
      if (child === null) {
        if (field.kind === K_STRING && !isUtf8(buf, pos, stop)) {
          throw this.atField(level, field, run, Rule.WIRE_UTF8, "not well-formed UTF-8");
        }
        if (noDefault && stop === pos) {
          throw this.atField(level, field, run, Rule.WIRE_DEFAULT, "default value written");
        }
      } else {
        const inner = childDepth(schema.role, depth, child.role);
        this.stackField[level] = field;
        this.stackRun[level] = run;
        if (child.role === ROLE_TERM && inner > MAX_TERM_DEPTH) {
          throw this.atField(level, field, run, Rule.TERM_DEPTH, `Term nested deeper than ${MAX_TERM_DEPTH}`);
        }
        this.level = level + 1;
        weight += child.weight + this.message(child, pos, stop, inner);
        this.level = level;
      }
      pos = stop;
    }
    return weight;
  }

  /**
   * Read the varint at `pos` into lo/hi and its end into `this.pos`.
   * Truncation names the message at `level`; an over-long or non-minimal
   * varint names `field` (or the message when `field` is null: a tag, or an
   * unknown field's value or length).
   */
  private varint(pos: number, end: number, level: number, field: FieldInfo | null, run: number): void {
    const buf = this.buf;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) {
        const what = field === null ? "a varint" : this.fieldPath(level, field, run);
        throw this.atMessage(level, Rule.WIRE_TRUNCATED, `${what} cut short`);
      }
      const b = buf[pos++]!;
      if (i === 9 && b > 1) {
        throw this.varintError(level, field, run, "varint longer than 64 bits");
      }
      const bits = b & 0x7f;
      if (i < 4) {
        lo |= bits << (7 * i);
      } else if (i === 4) {
        lo |= bits << 28;
        hi = bits >>> 4;
      } else {
        hi |= bits << (7 * i - 32);
      }
      if (b < 0x80) {
        if (i > 0 && b === 0) {
          throw this.varintError(level, field, run, "varint not minimal");
        }
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        this.pos = pos;
        return;
      }
    }
    /* c8 ignore next */
    throw new Error("unreachable: a 10th varint byte ends the varint or is refused");
  }

  private low(): number {
    return this.lo;
  }

  private high(): number {
    return this.hi;
  }

  private varintError(level: number, field: FieldInfo | null, run: number, detail: string): InvalidCheckpoint {
    return field === null
      ? this.atMessage(level, Rule.WIRE_VARINT, detail)
      : this.atField(level, field, run, Rule.WIRE_VARINT, detail);
  }

  /** Skip an unknown field's value; every refusal names the message. */
  private skip(pos: number, end: number, wireType: number, level: number): number {
    if (wireType === VARINT) {
      this.varint(pos, end, level, null, 0);
      return this.pos;
    }
    let n: number;
    if (wireType === LEN) {
      this.varint(pos, end, level, null, 0);
      pos = this.pos;
      n = this.high() !== 0 ? Infinity : this.low();
    } else {
      n = wireType === I64 ? 8 : 4;
    }
    if (n > end - pos) {
      throw this.atMessage(level, Rule.WIRE_TRUNCATED, "an unknown field cut short");
    }
    return pos + n;
  }

  private messagePath(level: number): string {
    if (level === 0) {
      return "";
    }
    const parts: string[] = [];
    for (let i = 0; i < level; i++) {
      const f = this.stackField[i]!;
      parts.push(f.repeated ? `${f.name}[${this.stackRun[i]!}]` : f.name);
    }
    return parts.join(".");
  }

  private fieldPath(level: number, field: FieldInfo, run: number): string {
    const at = this.messagePath(level);
    const name = field.repeated ? `${field.name}[${run}]` : field.name;
    return at === "" ? name : `${at}.${name}`;
  }

  private atMessage(level: number, rule: RuleId, detail: string): InvalidCheckpoint {
    return new InvalidCheckpoint(this.messagePath(level) || INPUT, detail, rule);
  }

  private atField(level: number, field: FieldInfo, run: number, rule: RuleId, detail: string): InvalidCheckpoint {
    return new InvalidCheckpoint(this.fieldPath(level, field, run), detail, rule);
  }
}

function allZero(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    if (buf[i] !== 0) {
      return false;
    }
  }
  return true;
}

/**
 * Whether `buf[start, end)` is well-formed UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF).
 */
export function isUtf8(buf: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const b = buf[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    if (b < 0xc2) {
      return false; // a continuation byte, or an overlong 2-byte lead
    }
    if (b < 0xe0) {
      if (i + 1 >= end || (buf[i + 1]! & 0xc0) !== 0x80) {
        return false;
      }
      i += 2;
      continue;
    }
    if (b < 0xf0) {
      if (i + 2 >= end) {
        return false;
      }
      const b1 = buf[i + 1]!;
      // E0: no overlong (A0..BF); ED: no surrogates (80..9F).
      const lo = b === 0xe0 ? 0xa0 : 0x80;
      const hi = b === 0xed ? 0x9f : 0xbf;
      if (b1 < lo || b1 > hi || (buf[i + 2]! & 0xc0) !== 0x80) {
        return false;
      }
      i += 3;
      continue;
    }
    if (b < 0xf5) {
      if (i + 3 >= end) {
        return false;
      }
      const b1 = buf[i + 1]!;
      // F0: no overlong (90..BF); F4: nothing above U+10FFFF (80..8F).
      const lo = b === 0xf0 ? 0x90 : 0x80;
      const hi = b === 0xf4 ? 0x8f : 0xbf;
      if (b1 < lo || b1 > hi || (buf[i + 2]! & 0xc0) !== 0x80 || (buf[i + 3]! & 0xc0) !== 0x80) {
        return false;
      }
      i += 4;
      continue;
    }
    return false;
  }
  return true;
}
