/**
 * hash_trainset of a trainset kept as JSON text (FORMAT.md §6.1).
 *
 * {@link hashTrainsetJson} reads one JSON array, {@link hashTrainsetJsonl}
 * JSON Lines; both return {@link hashTrainset} of the examples, each
 * converted by one rule, the same in every language: an integer (no
 * fraction, no exponent) is an integer Term (a `bigint`, big or not, never a
 * float); any other number is the nearest double; strings, arrays, objects,
 * `true`/`false` and `null` are string, list, map, bool and nil Terms.
 * `JSON.parse` cannot do this: it reads every number as a double (`1` and
 * `1.0` alike, big integers rounded) and keeps the last of duplicate keys.
 *
 * Refused with {@link TrainsetJsonError} naming the byte offset, and for JSON
 * Lines the line: text over 256 MiB, text that is not UTF-8 (a string with a
 * lone surrogate), a byte order mark, any syntax error (`NaN`, `Infinity`,
 * leading zeros, trailing content), a lone surrogate escape, a duplicate key,
 * a float too large for a double, an integer of more than 4300 digits,
 * nesting deeper than the Term depth limit, and (JSON) a top-level value that
 * is not an array.
 */

import { hashTrainset } from "./checkpoint.js";
import { CheckpointError } from "./errors.js";
import { MAX_TERM_DEPTH, isWellFormed } from "./term.js";
import { MAX_CHECKPOINT_BYTES } from "./validate.js";

/** The most digits of an integer (decimal-to-binary conversion grows faster than linearly). */
export const MAX_INTEGER_DIGITS = 4300;

/**
 * JSON text that is not a trainset under FORMAT.md §6.1. `offset` is the
 * byte offset (from the start of the text, in UTF-8) of the offending part,
 * `line` its 1-based line for JSON Lines (else undefined), `detail` what is
 * wrong. The message reads `byte 12: detail` or `line 3, byte 12: detail`.
 */
export class TrainsetJsonError extends CheckpointError {
  readonly offset: number;
  readonly line: number | undefined;
  readonly detail: string;

  constructor(offset: number, detail: string, line?: number) {
    super(`${line === undefined ? "" : `line ${line}, `}byte ${offset}: ${detail}`);
    this.offset = offset;
    this.line = line;
    this.detail = detail;
  }
}

/** A refusal at a UTF-16 index of the text, turned into a byte offset by the caller. */
class Refusal extends Error {
  constructor(
    readonly index: number,
    readonly detail: string,
  ) {
    super(detail);
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The FORMAT.md §6 digest (32 bytes) of a JSON array of examples
 * (FORMAT.md §6.1). `text` is the JSON text, as a string or UTF-8 bytes.
 * Throws {@link TrainsetJsonError} naming the byte offset.
 */
export function hashTrainsetJson(text: string | Uint8Array): Uint8Array {
  const s = checkedText(text, undefined);
  const parser = new Parser(s, s.length);
  let examples: unknown[];
  try {
    let i = parser.skip(0);
    if (s.charCodeAt(i) !== 0x5b /* [ */) {
      throw new Refusal(i, "the top-level value must be an array of examples");
    }
    [examples, i] = parser.array(i, 0);
    i = parser.skip(i);
    if (i < s.length) {
      throw new Refusal(i, "content after the array");
    }
  } catch (e) {
    if (e instanceof Refusal) {
      throw new TrainsetJsonError(byteOffset(s, e.index), e.detail);
    }
    throw e;
  }
  return hashTrainset(examples);
}

/**
 * The FORMAT.md §6 digest (32 bytes) of JSON Lines, one example a line
 * (FORMAT.md §6.1): the text is split at "\n", a trailing "\r" of a line is
 * removed, lines then empty or only spaces and tabs are skipped, every other
 * line is one JSON value. Throws {@link TrainsetJsonError} naming the line
 * and the byte offset from the start of the text.
 */
export function hashTrainsetJsonl(text: string | Uint8Array): Uint8Array {
  const s = checkedText(text, 1);
  const examples: unknown[] = [];
  for (let start = 0, line = 1; start <= s.length; line++) {
    const newline = s.indexOf("\n", start);
    const stop = newline < 0 ? s.length : newline;
    const end = stop > start && s.charCodeAt(stop - 1) === 0x0d ? stop - 1 : stop;
    if (!/^[ \t]*$/.test(s.slice(start, end))) {
      const parser = new Parser(s, end);
      try {
        const [value, after] = parser.value(parser.skip(start), 1);
        const i = parser.skip(after);
        if (i < end) {
          throw new Refusal(i, "content after the value");
        }
        examples.push(value);
      } catch (e) {
        if (e instanceof Refusal) {
          throw new TrainsetJsonError(byteOffset(s, e.index), e.detail, line);
        }
        throw e;
      }
    }
    start = stop + 1;
  }
  return hashTrainset(examples);
}

/** The text as a string, refusing oversize, non-UTF-8 text and a byte order mark. */
function checkedText(text: string | Uint8Array, line: number | undefined): string {
  const tooLong = (size: number) =>
    new TrainsetJsonError(0, `text is ${size} bytes, more than the limit of ${MAX_CHECKPOINT_BYTES} bytes`, line);
  const bom = () => new TrainsetJsonError(0, "a byte order mark is not allowed", line);
  if (typeof text === "string") {
    const size = Buffer.byteLength(text, "utf8");
    if (size > MAX_CHECKPOINT_BYTES) {
      throw tooLong(size);
    }
    if (text.charCodeAt(0) === 0xfeff) {
      throw bom();
    }
    if (!isWellFormed(text)) {
      const at = loneSurrogate(text);
      const where = line === undefined ? undefined : lineOf(text, at);
      const unit = text.charCodeAt(at).toString(16).toUpperCase();
      throw new TrainsetJsonError(byteOffset(text, at), `not UTF-8 (lone surrogate U+${unit})`, where);
    }
    return text;
  }
  if (text.length > MAX_CHECKPOINT_BYTES) {
    throw tooLong(text.length);
  }
  if (text[0] === 0xef && text[1] === 0xbb && text[2] === 0xbf) {
    throw bom();
  }
  try {
    return utf8.decode(text);
  } catch {
    const at = firstInvalidUtf8(text);
    let where: number | undefined;
    if (line !== undefined) {
      where = 1;
      for (let i = 0; i < at; i++) {
        where += text[i] === 0x0a ? 1 : 0;
      }
    }
    throw new TrainsetJsonError(at, "not UTF-8", where);
  }
}

function loneSurrogate(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
      return i;
    }
    if (c >= 0xdc00 && c <= 0xdfff) {
      return i;
    }
  }
  return -1;
}

function lineOf(s: string, index: number): number {
  let line = 1;
  for (let i = s.indexOf("\n"); i >= 0 && i < index; i = s.indexOf("\n", i + 1)) {
    line++;
  }
  return line;
}

/** The offset of the first byte that does not continue valid UTF-8 (RFC 3629). */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    let size: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      size = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      size = 3;
      lo = c === 0xe0 ? 0xa0 : 0x80;
      hi = c === 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
      size = 4;
      lo = c === 0xf0 ? 0x90 : 0x80;
      hi = c === 0xf4 ? 0x8f : 0xbf;
    } else {
      return i;
    }
    for (let k = 1; k < size; k++) {
      const d = b[i + k];
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) {
        return i;
      }
    }
    i += size;
  }
  return b.length;
}

function byteOffset(s: string, index: number): number {
  return Buffer.byteLength(s.slice(0, index), "utf8");
}

/** The characters after a backslash that make a one-character escape. */
const ESCAPES = new Set(['"', "\\", "/", "b", "f", "n", "r", "t"]);
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;
const NUMBER_TAIL = /[0-9.eE+-]/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;

/**
 * A strict RFC 8259 parser of `s.slice(0, end)` building the values of
 * FORMAT.md §6.1: null, booleans, bigints, numbers, strings, arrays and Maps
 * with string keys. A value's level is the Term depth it would have; examples
 * are at level 1.
 */
class Parser {
  constructor(
    private readonly s: string,
    private readonly end: number,
  ) {}

  skip(i: number): number {
    for (; i < this.end; i++) {
      const c = this.s.charCodeAt(i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) {
        break;
      }
    }
    return i;
  }

  value(i: number, level: number): [unknown, number] {
    const { s, end } = this;
    if (i >= end) {
      throw new Refusal(i, "expected a value, found the end of the text");
    }
    if (level > MAX_TERM_DEPTH) {
      throw new Refusal(i, `nesting deeper than ${MAX_TERM_DEPTH}`);
    }
    const c = s[i]!;
    if (c === '"') {
      return this.string(i);
    }
    if (c === "-" || (c >= "0" && c <= "9")) {
      return this.number(i);
    }
    if (c === "[") {
      return this.array(i, level);
    }
    if (c === "{") {
      return this.object(i, level);
    }
    for (const [word, literal] of [
      ["true", true],
      ["false", false],
      ["null", null],
    ] as const) {
      if (i + word.length <= end && s.startsWith(word, i)) {
        return [literal, i + word.length];
      }
    }
    throw new Refusal(i, `expected a value, found ${JSON.stringify(String.fromCodePoint(s.codePointAt(i)!))}`);
  }

  array(i: number, level: number): [unknown[], number] {
    const { s, end } = this;
    const items: unknown[] = [];
    i = this.skip(i + 1);
    if (i < end && s[i] === "]") {
      return [items, i + 1];
    }
    for (;;) {
      const [item, next] = this.value(i, level + 1);
      items.push(item);
      i = this.skip(next);
      if (i < end && s[i] === ",") {
        i = this.skip(i + 1);
      } else if (i < end && s[i] === "]") {
        return [items, i + 1];
      } else {
        throw new Refusal(i, "expected ',' or ']' after an array item");
      }
    }
  }

  object(i: number, level: number): [Map<string, unknown>, number] {
    const { s, end } = this;
    const members = new Map<string, unknown>();
    i = this.skip(i + 1);
    if (i < end && s[i] === "}") {
      return [members, i + 1];
    }
    for (;;) {
      if (i >= end || s[i] !== '"') {
        throw new Refusal(i, "expected a string key");
      }
      const [key, afterKey] = this.string(i);
      if (members.has(key)) {
        throw new Refusal(i, `duplicate key ${showKey(key)}`);
      }
      i = this.skip(afterKey);
      if (i >= end || s[i] !== ":") {
        throw new Refusal(i, "expected ':' after a key");
      }
      const [value, next] = this.value(this.skip(i + 1), level + 1);
      members.set(key, value);
      i = this.skip(next);
      if (i < end && s[i] === ",") {
        i = this.skip(i + 1);
      } else if (i < end && s[i] === "}") {
        return [members, i + 1];
      } else {
        throw new Refusal(i, "expected ',' or '}' after an object member");
      }
    }
  }

  /** The decoded string whose opening quote is at `start`, and the index after it. */
  string(start: number): [string, number] {
    const { s, end } = this;
    let j = start + 1;
    let escaped = false;
    for (; j < end; j++) {
      const c = s.charCodeAt(j);
      if (c === 0x22 /* " */ || c < 0x20) {
        break;
      }
      if (c === 0x5c /* \ */) {
        escaped = true;
        j++;
      }
    }
    if (j < end && s.charCodeAt(j) === 0x22) {
      if (!escaped) {
        return [s.slice(start + 1, j), j + 1];
      }
      // JSON.parse decodes the escapes as strictly as RFC 8259, but keeps lone surrogates.
      try {
        const text = JSON.parse(s.slice(start, j + 1)) as string;
        if (isWellFormed(text)) {
          return [text, j + 1];
        }
      } catch {
        // stringRefusal says what is wrong
      }
    }
    throw this.stringRefusal(start);
  }

  /** The first problem of a string the fast path refused. */
  private stringRefusal(start: number): Refusal {
    const { s, end } = this;
    let j = start + 1;
    while (j < end && s[j] !== '"') {
      const c = s.charCodeAt(j);
      if (c < 0x20) {
        return new Refusal(j, `control character U+${c.toString(16).toUpperCase().padStart(4, "0")} in a string`);
      }
      if (c !== 0x5c /* \ */) {
        j++;
        continue;
      }
      if (j + 1 < end && ESCAPES.has(s[j + 1]!)) {
        j += 2;
        continue;
      }
      let code = this.hex4At(j);
      if (code === undefined) {
        return new Refusal(j, "invalid escape");
      }
      if (code >= 0xd800 && code <= 0xdbff) {
        const low = this.hex4At(j + 6);
        code = low !== undefined && low >= 0xdc00 && low <= 0xdfff ? 0x10000 : code;
      }
      if (code >= 0xd800 && code <= 0xdfff) {
        return new Refusal(j, `lone surrogate escape \\u${s.slice(j + 2, j + 6)} (not Unicode text)`);
      }
      j += code >= 0x10000 ? 12 : 6;
    }
    return new Refusal(start, "unterminated string");
  }

  /** The code unit of the escape `\uXXXX` at `j`, or undefined. */
  private hex4At(j: number): number | undefined {
    const { s, end } = this;
    if (j + 6 > end || s[j] !== "\\" || s[j + 1] !== "u") {
      return undefined;
    }
    const digits = s.slice(j + 2, j + 6);
    return HEX4.test(digits) ? parseInt(digits, 16) : undefined;
  }

  number(i: number): [bigint | number, number] {
    const { s, end } = this;
    NUMBER.lastIndex = i;
    const match = NUMBER.exec(s);
    const after = match === null ? i : i + match[0].length;
    NUMBER_TAIL.lastIndex = after;
    if (match === null || after > end || (after < end && NUMBER_TAIL.test(s))) {
      throw new Refusal(i, "invalid number (JSON has no leading zeros, NaN or Infinity)");
    }
    const token = match[0];
    if (match[1] === undefined && match[2] === undefined) {
      const digits = token.length - (token[0] === "-" ? 1 : 0);
      if (digits > MAX_INTEGER_DIGITS) {
        throw new Refusal(i, `integer of ${digits} digits, more than ${MAX_INTEGER_DIGITS}`);
      }
      return [BigInt(token), after];
    }
    const number = Number(token);
    if (!Number.isFinite(number)) {
      throw new Refusal(i, "number too large for a double");
    }
    return [number, after];
  }
}

function showKey(key: string): string {
  const chars = [...key];
  return JSON.stringify(chars.length > 40 ? chars.slice(0, 40).join("") + "…" : key);
}
