/**
 * Term: open data (options, stats, errors, artifacts, trainset examples) and
 * its canonical bytes (FORMAT.md §1, §3).
 *
 * JavaScript values map to Terms as follows:
 *
 * | value                                   | Term kind                          |
 * |-----------------------------------------|------------------------------------|
 * | `null`                                  | `null_value`                       |
 * | `true` / `false`                        | `bool_value`                       |
 * | `bigint` in [-2^63, 2^63-1]             | `int_value`                        |
 * | any other `bigint`                      | `bigint_value` (minimal two's complement) |
 * | `number` (also a boxed `Number`)        | `float_value`, always              |
 * | `string`                                | `string_value`                     |
 * | `Uint8Array` (and `Buffer`)             | `bytes_value`                      |
 * | {@link Atom}                            | `atom_value`                       |
 * | array                                   | `list_value`                       |
 * | {@link Tuple}                           | `tuple_value`                      |
 * | `Map` (any keys), plain object (string keys) | `map_value`, sorted by canonical key bytes |
 *
 * A `Map` turns a key -0 into +0; write a -0.0 key as a boxed `new Number(-0)`
 * (that is also how {@link fromTerm} gives it back).
 *
 * A JavaScript `number` is ALWAYS a float: the language cannot tell `1` from
 * `1.0`, so an integer must be written as a `bigint` (`1n`) to become an
 * `int_value`. `1n`, `1`, `true` and `"1"` are four different Terms.
 *
 * Refused, naming the path of the offending value: NaN, strings with a lone
 * surrogate, nesting deeper than {@link MAX_TERM_DEPTH}, duplicate map keys
 * ({@link InvalidCheckpoint}); `undefined`, functions, symbols, class
 * instances and every other value outside the table ({@link TermTypeError}).
 */

import { create, isMessage, toBinary } from "@bufbuild/protobuf";
import type { UnknownField } from "@bufbuild/protobuf";
import {
  type Term,
  type TermMap,
  type TermMapEntry,
  TermListSchema,
  TermMapEntrySchema,
  TermMapSchema,
  TermNullSchema,
  TermSchema,
} from "./gen/dsxir/optimizer_session/v1/term_pb.js";
import { hex, InvalidCheckpoint, TermTypeError } from "./errors.js";
import { Rule, type RuleId } from "./rules.js";

/** The deepest Term a reader accepts (a scalar, or an empty container, has depth 1). */
export const MAX_TERM_DEPTH = 24;

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/** A symbol (an Elixir atom): a name that is not a string. */
export class Atom {
  readonly name: string;

  constructor(name: string) {
    if (typeof name !== "string") {
      throw new TypeError("an Atom's name must be a string");
    }
    this.name = name;
    Object.freeze(this);
  }

  toString(): string {
    return `:${this.name}`;
  }
}

/** A fixed-size ordered sequence (Python/Elixir tuple), distinct from a list. */
export class Tuple {
  readonly items: readonly unknown[];

  constructor(items: Iterable<unknown>) {
    this.items = Object.freeze([...items]);
    Object.freeze(this);
  }

  static of(...items: unknown[]): Tuple {
    return new Tuple(items);
  }

  get length(): number {
    return this.items.length;
  }
}

/** A refusal on its way up; each level prepends its part of the path. */
class Bad extends Error {
  readonly parts: string[] = [];

  /** `rule` null: no reader rule; with `typeError` the value has no Term form at all. */
  constructor(
    readonly detail: string,
    readonly rule: RuleId | null,
    part?: string,
    readonly typeError = false,
  ) {
    super(detail);
    if (part !== undefined) {
      this.parts.push(part);
    }
  }

  raise(root: string): never {
    const path = root + this.parts.reverse().join("");
    throw this.typeError ? new TermTypeError(path, this.detail) : new InvalidCheckpoint(path, this.detail, this.rule);
  }
}

function wrap<T>(part: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Bad) {
      e.parts.push(part);
    }
    throw e;
  }
}

/** Whether a JavaScript string is valid Unicode (no lone surrogate), so it has a UTF-8 form. */
export function isWellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      if (c > 0xdbff) {
        return false;
      }
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) {
        return false;
      }
      i++;
    }
  }
  return true;
}

/** Compare byte strings in unsigned lexicographic order (a proper prefix first). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) {
      return a[i]! - b[i]!;
    }
  }
  return a.length - b.length;
}

// --- big integers ---------------------------------------------------------------

/** The minimal big-endian two's-complement bytes of an integer (FORMAT.md §3.3). */
export function bigintToBytes(n: bigint): Uint8Array {
  const magnitude = n >= 0n ? n : -n - 1n;
  const bitLength = magnitude === 0n ? 0 : magnitude.toString(2).length;
  const size = Math.floor((bitLength + 8) / 8);
  let u = BigInt.asUintN(size * 8, n);
  const out = new Uint8Array(size);
  for (let i = size - 1; i >= 0; i--) {
    out[i] = Number(u & 0xffn);
    u >>= 8n;
  }
  return out;
}

/** The integer of big-endian two's-complement bytes (empty bytes are 0). */
export function bytesToBigint(raw: Uint8Array): bigint {
  if (raw.length === 0) {
    return 0n;
  }
  const u = BigInt("0x" + hex(raw));
  return BigInt.asIntN(raw.length * 8, u);
}

/** What is wrong with a `bigint_value`, or null when it is valid. */
export function bigintProblem(raw: Uint8Array): string | null {
  if (raw.length === 0) {
    return "empty big integer";
  }
  if (raw.length > 1 && ((raw[0] === 0x00 && raw[1]! < 0x80) || (raw[0] === 0xff && raw[1]! >= 0x80))) {
    return "big integer is not minimal";
  }
  const v = bytesToBigint(raw);
  if (v >= INT64_MIN && v <= INT64_MAX) {
    return "big integer fits in int64; it must be an int_value";
  }
  return null;
}

// --- JavaScript values to Terms ----------------------------------------------------

function term(kind: Term["kind"]): Term {
  return create(TermSchema, { kind } as never) as Term;
}

function describe(value: unknown): string {
  if (value === null) {
    return "null";
  }
  if (typeof value === "object" || typeof value === "function") {
    const proto = Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null;
    return proto?.constructor?.name || typeof value;
  }
  return typeof value;
}

function keyText(key: unknown): string {
  switch (typeof key) {
    case "string":
      return JSON.stringify(key);
    case "bigint":
      return `${key}n`;
    case "number":
      return Object.is(key, -0) ? "-0" : String(key);
    case "boolean":
      return String(key);
    default:
      if (key === null) {
        return "null";
      }
      if (key instanceof Atom) {
        return key.toString();
      }
      if (key instanceof Number) {
        return Object.is(key.valueOf(), -0) ? "-0" : String(key.valueOf());
      }
      return `<${describe(key)}>`;
  }
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function encodeValue(value: unknown, depth: number): Term {
  if (depth > MAX_TERM_DEPTH) {
    throw new Bad(`nesting deeper than ${MAX_TERM_DEPTH}`, Rule.TERM_DEPTH);
  }
  switch (typeof value) {
    case "boolean":
      return term({ case: "boolValue", value });
    case "bigint":
      if (value >= INT64_MIN && value <= INT64_MAX) {
        return term({ case: "intValue", value });
      }
      return term({ case: "bigintValue", value: bigintToBytes(value) });
    case "number":
      if (Number.isNaN(value)) {
        throw new Bad("NaN is not allowed", Rule.FLOAT_NAN);
      }
      return term({ case: "floatValue", value });
    case "string":
      if (!isWellFormed(value)) {
        throw new Bad("string is not valid Unicode (lone surrogate): no UTF-8 form", Rule.WIRE_UTF8);
      }
      return term({ case: "stringValue", value });
    case "object":
      break;
    default:
      throw new Bad(`${describe(value)} has no Term form`, null, undefined, true);
  }
  if (value === null) {
    return term({ case: "nullValue", value: create(TermNullSchema) });
  }
  if (value instanceof Uint8Array) {
    return term({ case: "bytesValue", value: value.slice() });
  }
  if (value instanceof Atom) {
    if (!isWellFormed(value.name)) {
      throw new Bad("atom name is not valid Unicode (lone surrogate): no UTF-8 form", Rule.WIRE_UTF8);
    }
    return term({ case: "atomValue", value: value.name });
  }
  if (Array.isArray(value)) {
    return term({ case: "listValue", value: create(TermListSchema, { items: encodeItems(value, depth + 1) }) });
  }
  if (value instanceof Tuple) {
    return term({
      case: "tupleValue",
      value: create(TermListSchema, { items: encodeItems(value.items, depth + 1) }),
    });
  }
  if (value instanceof Map || isPlainObject(value)) {
    return term({ case: "mapValue", value: encodeMap(value, depth + 1) });
  }
  if (value instanceof Number) {
    return encodeValue(value.valueOf(), depth);
  }
  throw new Bad(`${describe(value)} has no Term form`, null, undefined, true);
}

function encodeItems(items: readonly unknown[], depth: number): Term[] {
  const out: Term[] = [];
  // A plain loop also visits the holes of a sparse array, which are refused.
  for (let i = 0; i < items.length; i++) {
    out.push(wrap(`[${i}]`, () => encodeValue(items[i], depth)));
  }
  return out;
}

function pairsOf(value: object): Iterable<[unknown, unknown]> {
  if (value instanceof Map) {
    return value.entries() as Iterable<[unknown, unknown]>;
  }
  if (Object.getOwnPropertySymbols(value).some((s) => Object.prototype.propertyIsEnumerable.call(value, s))) {
    throw new Bad("an object with symbol keys has no Term form", null, undefined, true);
  }
  return Object.entries(value);
}

function encodeMap(value: object, depth: number): TermMap {
  const entries: { keyBytes: Uint8Array; entry: TermMapEntry }[] = [];
  for (const [k, v] of pairsOf(value)) {
    const entry = wrap(`[${keyText(k)}]`, () => {
      const key = encodeValue(k, depth);
      const val = encodeValue(v, depth);
      return create(TermMapEntrySchema, { key, value: val });
    });
    entries.push({ keyBytes: toBinary(TermSchema, entry.key!), entry });
  }
  entries.sort((a, b) => compareBytes(a.keyBytes, b.keyBytes));
  for (let i = 1; i < entries.length; i++) {
    if (compareBytes(entries[i - 1]!.keyBytes, entries[i]!.keyBytes) === 0) {
      throw new Bad(`duplicate map key (canonical bytes ${hex(entries[i]!.keyBytes)})`, Rule.TERM_MAP_ORDER);
    }
  }
  return create(TermMapSchema, { entries: entries.map((e) => e.entry) });
}

/**
 * Convert a JavaScript value to a canonical `Term` message (see the table
 * above). Throws {@link TermTypeError} or {@link InvalidCheckpoint} naming the
 * path from `root`, e.g. `value["meta"][0]`.
 */
export function toTerm(value: unknown, root = "value"): Term {
  try {
    return encodeValue(value, 1);
  } catch (e) {
    if (e instanceof Bad) {
      e.raise(root);
    }
    throw e;
  }
}

/** Convert a mapping (a `Map` or a plain object) to a canonical `TermMap` message. */
export function toTermMap(value: unknown, root = "value"): TermMap {
  try {
    if (value === null || typeof value !== "object" || !(value instanceof Map || isPlainObject(value))) {
      throw new Bad(`${describe(value)} is not a mapping`, null, undefined, true);
    }
    return encodeMap(value, 2);
  } catch (e) {
    if (e instanceof Bad) {
      e.raise(root);
    }
    throw e;
  }
}

/** The canonical bytes of a value as a `Term` message (FORMAT.md §3.4). */
export function termBytes(value: unknown, root = "value"): Uint8Array {
  return toBinary(TermSchema, toTerm(value, root));
}

// --- Terms to JavaScript values ------------------------------------------------------

/**
 * Convert a `Term` message back to the JavaScript value it stands for: an
 * int is a `bigint`, a float a `number`, a map a `Map`, a tuple a
 * {@link Tuple}, an atom an {@link Atom}. A map key -0.0 comes back as a boxed
 * `Number` (a `Map` cannot hold -0 as a key; {@link toTerm} reads it back as
 * -0.0). A `TermMap` message (stats, errors, the best-program artifact)
 * comes back as a `Map`, as the map Term holding it does (paths then start
 * at `term.map_value`). Throws {@link InvalidCheckpoint} for a Term without a
 * kind.
 */
export function fromTerm(t: Term | TermMap): unknown {
  try {
    return decodeValue(isMessage(t, TermMapSchema) ? term({ case: "mapValue", value: t }) : t);
  } catch (e) {
    if (e instanceof Bad) {
      e.raise("term");
    }
    throw e;
  }
}

function decodeValue(t: Term): unknown {
  const kind = t.kind;
  switch (kind.case) {
    case undefined:
      throw new Bad("term has no kind", Rule.TERM_KIND);
    case "nullValue":
      return null;
    case "boolValue":
    case "intValue":
    case "floatValue":
    case "stringValue":
      return kind.value;
    case "bigintValue":
      return bytesToBigint(kind.value);
    case "bytesValue":
      return kind.value.slice();
    case "atomValue":
      return new Atom(kind.value);
    case "listValue":
      return kind.value.items.map((item, i) => wrap(`.list_value.items[${i}]`, () => decodeValue(item)));
    case "tupleValue":
      return new Tuple(kind.value.items.map((item, i) => wrap(`.tuple_value.items[${i}]`, () => decodeValue(item))));
    case "mapValue": {
      const out = new Map<unknown, unknown>();
      kind.value.entries.forEach((entry, i) =>
        wrap(`.map_value.entries[${i}]`, () => {
          if (entry.key === undefined) {
            throw new Bad("map entry has no key", Rule.TERM_MAP_KEY_REQUIRED);
          }
          if (entry.value === undefined) {
            throw new Bad("map entry has no value", Rule.TERM_MAP_VALUE_REQUIRED);
          }
          let key = decodeValue(entry.key);
          if (Object.is(key, -0)) {
            key = new Number(-0);
          }
          if (out.has(key)) {
            throw new Bad(`key ${keyText(key)} collides with another key in JavaScript`, null);
          }
          out.set(key, decodeValue(entry.value));
        }),
      );
      return out;
    }
  }
}

// --- validating Term messages ---------------------------------------------------------

/**
 * How Term messages are checked: `sorted` requires strictly increasing map
 * keys (a reader's rule); without it only duplicates are refused.
 */
interface CheckOptions {
  sorted: boolean;
}

const READER: CheckOptions = { sorted: true };

/** Refuse a Term message that breaks a rule of FORMAT.md §3 (throws InvalidCheckpoint at `path`). */
export function checkTerm(t: Term, path: string): void {
  try {
    check(t, 1, READER);
  } catch (e) {
    if (e instanceof Bad) {
      e.raise(path);
    }
    throw e;
  }
}

/** Refuse a TermMap message that breaks a rule of FORMAT.md §3 (throws InvalidCheckpoint at `path`). */
export function checkTermMap(m: TermMap, path: string): void {
  try {
    checkMap(m, 2, READER);
  } catch (e) {
    if (e instanceof Bad) {
      e.raise(path);
    }
    throw e;
  }
}

/**
 * Check a Term whose map entries may come in any order, and return it with
 * every map sorted: the canonical form. Refuses (InvalidCheckpoint at `path`)
 * what {@link checkTerm} refuses, except that unsorted keys are allowed;
 * duplicate keys are still refused.
 */
export function canonicalTerm(t: Term, path: string): Term {
  try {
    return check(t, 1, { sorted: false });
  } catch (e) {
    if (e instanceof Bad) {
      e.raise(path);
    }
    throw e;
  }
}

function check(t: Term, depth: number, opts: CheckOptions): Term {
  if (depth > MAX_TERM_DEPTH) {
    throw new Bad(`nesting deeper than ${MAX_TERM_DEPTH}`, Rule.TERM_DEPTH);
  }
  const kind = t.kind;
  switch (kind.case) {
    case undefined:
      throw new Bad("term has no kind", Rule.TERM_KIND);
    case "floatValue":
      if (typeof kind.value !== "number") {
        throw new Bad("must be a number", null, ".float_value");
      }
      if (Number.isNaN(kind.value)) {
        throw new Bad("NaN is not allowed", Rule.FLOAT_NAN, ".float_value");
      }
      return t;
    case "listValue":
    case "tupleValue": {
      const name = kind.case === "listValue" ? "list_value" : "tuple_value";
      const items = kind.value.items;
      const checked = items.map((item, i) => wrap(`.${name}.items[${i}]`, () => check(item, depth + 1, opts)));
      if (checked.every((c, i) => c === items[i])) {
        return t;
      }
      return keepUnknown(
        term({ case: kind.case, value: keepUnknown(create(TermListSchema, { items: checked }), kind.value) }),
        t,
      );
    }
    case "mapValue": {
      const m = wrap(".map_value", () => checkMap(kind.value, depth + 1, opts));
      return m === kind.value ? t : keepUnknown(term({ case: "mapValue", value: m }), t);
    }
    case "bigintValue": {
      if (!(kind.value instanceof Uint8Array)) {
        throw new Bad("must be a Uint8Array", null, ".bigint_value");
      }
      const problem = bigintProblem(kind.value);
      if (problem !== null) {
        throw new Bad(problem, Rule.TERM_BIGINT, ".bigint_value");
      }
      return t;
    }
    // What follows cannot fail for a parsed message; it guards encode() against
    // values a JavaScript caller put in a hand-built message.
    case "intValue":
      if (typeof kind.value !== "bigint") {
        throw new Bad("must be a bigint", null, ".int_value");
      }
      if (kind.value < INT64_MIN || kind.value > INT64_MAX) {
        throw new Bad("must be in the int64 range", Rule.WIRE_RANGE, ".int_value");
      }
      return t;
    case "stringValue":
    case "atomValue":
      if (typeof kind.value !== "string" || !isWellFormed(kind.value)) {
        throw new Bad(
          typeof kind.value !== "string" ? "must be a string" : "string has a lone surrogate: no UTF-8 form",
          typeof kind.value !== "string" ? null : Rule.WIRE_UTF8,
          kind.case === "stringValue" ? ".string_value" : ".atom_value",
        );
      }
      return t;
    case "bytesValue":
      if (!(kind.value instanceof Uint8Array)) {
        throw new Bad("must be a Uint8Array", null, ".bytes_value");
      }
      return t;
    case "boolValue":
      if (typeof kind.value !== "boolean") {
        throw new Bad("must be a boolean", null, ".bool_value");
      }
      return t;
    case "nullValue":
      return t;
  }
}

function checkMap(m: TermMap, depth: number, opts: CheckOptions): TermMap {
  let previous: Uint8Array | undefined;
  const seen = opts.sorted ? undefined : new Set<string>();
  let changed = false;
  const entries = m.entries.map((entry, i) =>
    wrap(`.entries[${i}]`, () => {
      if (entry.key === undefined) {
        throw new Bad("map entry has no key", Rule.TERM_MAP_KEY_REQUIRED);
      }
      const key = wrap(".key", () => check(entry.key!, depth, opts));
      if (entry.value === undefined) {
        throw new Bad("map entry has no value", Rule.TERM_MAP_VALUE_REQUIRED);
      }
      const value = wrap(".value", () => check(entry.value!, depth, opts));
      const keyBytes = toBinary(TermSchema, key);
      if (seen !== undefined) {
        const text = hex(keyBytes);
        if (seen.has(text)) {
          throw new Bad("duplicate map key", Rule.TERM_MAP_ORDER, ".key");
        }
        seen.add(text);
      } else if (previous !== undefined) {
        const order = compareBytes(keyBytes, previous);
        if (order <= 0) {
          throw new Bad(order === 0 ? "duplicate map key" : "keys are not sorted", Rule.TERM_MAP_ORDER, ".key");
        }
      }
      previous = keyBytes;
      if (key === entry.key && value === entry.value) {
        return { keyBytes, entry };
      }
      changed = true;
      return { keyBytes, entry: keepUnknown(create(TermMapEntrySchema, { key, value }), entry) };
    }),
  );
  if (seen === undefined) {
    return m;
  }
  const sorted = entries.slice().sort((a, b) => compareBytes(a.keyBytes, b.keyBytes));
  if (!changed && sorted.every((e, i) => e === entries[i])) {
    return m;
  }
  return keepUnknown(create(TermMapSchema, { entries: sorted.map((e) => e.entry) }), m);
}

function keepUnknown<T extends { $unknown?: UnknownField[] }>(copy: T, original: { $unknown?: UnknownField[] }): T {
  if (original.$unknown !== undefined) {
    copy.$unknown = original.$unknown;
  }
  return copy;
}
