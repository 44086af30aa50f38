/**
 * Protobuf binary parsing into the messages of the generated schema.
 *
 * A checkpoint body reaches {@link parse} only after the byte grammar of
 * FORMAT.md §2 (`grammar.ts`) accepted it, so none of the cases below can
 * occur there; for a Term given outside a checkpoint (the input of
 * hash-trainset, refused as `input.malformed`) it parses as the official
 * runtimes do. `fromBinary` of @bufbuild/protobuf hands a record to a known
 * field's decoder whatever its wire type, skips unknown varints of any length,
 * and stops one nesting level earlier than upb; this parser keeps a record
 * whose wire type does not match its known field as an unknown field, refuses
 * varints longer than 10 bytes, and allows 100 nested messages below the top
 * one, as upb, Go and Java do. Unknown fields are kept, in the order read, as
 * `$unknown` records that `toBinary` writes after the known fields: one
 * record per run of consecutive unknown fields (so one per message of a
 * checkpoint), holding the run's bytes verbatim; {@link unknownFields} splits
 * it into fields.
 */

import { create, protoInt64, ScalarType } from "@bufbuild/protobuf";
import type { DescField, DescMessage, MessageShape, UnknownField } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";

/** Nested messages (and groups) allowed below the top-level message, as in upb. */
export const RECURSION_LIMIT = 100;

/** Parse failure: the input is not a protobuf encoding of the message. */
export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WireError";
  }
}

type FieldReader = (msg: Record<string, unknown>, r: Reader, end: number, depth: number) => void;

interface CompiledField {
  wireType: WireType;
  read: FieldReader;
}

type Compiled = Map<number, CompiledField>;

const compiledMessages = new WeakMap<DescMessage, Compiled>();

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Parse `bytes` as an encoding of `schema`. Throws {@link WireError} (or a
 * RangeError from a too deep JavaScript stack, which the limit prevents) for
 * anything the official runtimes refuse.
 */
export function parse<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array): MessageShape<Desc> {
  const r = new Reader(bytes);
  const msg = create(schema) as unknown as Record<string, unknown>;
  readMessage(schema, msg, r, bytes.length, 0);
  return msg as unknown as MessageShape<Desc>;
}

class Reader {
  pos = 0;
  lo = 0;
  hi = 0;
  readonly view: DataView;

  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** Read a varint of at most 10 bytes into lo/hi; bits past 64 are dropped. */
  varint(end: number): void {
    const buf = this.buf;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) {
        throw new WireError("truncated varint");
      }
      const b = buf[this.pos++]!;
      const bits = b & 0x7f;
      if (i < 4) {
        lo |= bits << (7 * i);
      } else if (i === 4) {
        lo |= (bits & 0x0f) << 28;
        hi |= bits >>> 4;
      } else {
        hi |= bits << (7 * i - 32);
      }
      if ((b & 0x80) === 0) {
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        return;
      }
    }
    throw new WireError("varint longer than 10 bytes");
  }

  /**
   * Read a tag: at most 5 bytes, a value below 2^32, wire type ≤ 5, and a
   * field number ≥ 1 except inside an unknown group, where upb lets 0 pass.
   */
  tag(end: number, inGroup = false): [number, number] {
    const buf = this.buf;
    let value = 0;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= end) {
        throw new WireError("truncated tag");
      }
      const b = buf[this.pos++]!;
      if (i === 4 && b > 0x0f) {
        throw new WireError("tag overflows 32 bits");
      }
      value += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) {
        const fieldNo = Math.floor(value / 8);
        const wireType = value % 8;
        if (fieldNo === 0 && !inGroup) {
          throw new WireError("field number 0");
        }
        if (wireType > 5) {
          throw new WireError(`invalid wire type ${wireType}`);
        }
        return [fieldNo, wireType];
      }
    }
    throw new WireError("tag longer than 5 bytes");
  }

  /** Read a length prefix (at most 5 bytes) and check it fits before `end`. */
  length(end: number): number {
    const buf = this.buf;
    let value = 0;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= end) {
        throw new WireError("truncated length");
      }
      const b = buf[this.pos++]!;
      value += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) {
        if (value > end - this.pos) {
          throw new WireError("length past the end of the message");
        }
        return value;
      }
    }
    throw new WireError("length longer than 5 bytes");
  }

  fixed(n: number, end: number): number {
    if (end - this.pos < n) {
      throw new WireError("truncated fixed-width value");
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  /** Skip one value of `wireType` (for an unknown field); groups count as nesting. */
  skip(wireType: number, fieldNo: number, end: number, depth: number): void {
    switch (wireType) {
      case WireType.Varint:
        this.varint(end);
        return;
      case WireType.Bit64:
        this.fixed(8, end);
        return;
      case WireType.Bit32:
        this.fixed(4, end);
        return;
      case WireType.LengthDelimited: {
        const n = this.length(end);
        this.pos += n;
        return;
      }
      case WireType.StartGroup: {
        if (depth + 1 > RECURSION_LIMIT) {
          throw new WireError("maximum nesting depth exceeded");
        }
        for (;;) {
          const [no, wt] = this.tag(end, true);
          if (wt === WireType.EndGroup) {
            if (no !== fieldNo) {
              throw new WireError("mismatched end-group tag");
            }
            return;
          }
          this.skip(wt, no, end, depth + 1);
        }
      }
      default:
        throw new WireError("unexpected end-group tag");
    }
  }
}

function readMessage(
  desc: DescMessage,
  msg: Record<string, unknown>,
  r: Reader,
  end: number,
  depth: number,
): void {
  if (depth > RECURSION_LIMIT) {
    throw new WireError("maximum nesting depth exceeded");
  }
  const fields = compiled(desc);
  // The run of unknown fields being read: the first one's number and wire
  // type, and where its value starts (-1: no run). A run becomes one record
  // when a known field or the end of the message closes it.
  let runNo = 0;
  let runWireType = 0;
  let runStart = -1;
  let runEnd = 0;
  while (r.pos < end) {
    const [fieldNo, wireType] = r.tag(end);
    const field = fields.get(fieldNo);
    if (field !== undefined && field.wireType === wireType) {
      if (runStart >= 0) {
        keepUnknown(msg, runNo, runWireType, r.buf.slice(runStart, runEnd));
        runStart = -1;
      }
      field.read(msg, r, end, depth);
      continue;
    }
    // Unknown, or a known field number with another wire type: kept as unknown.
    if (runStart < 0) {
      runNo = fieldNo;
      runWireType = wireType;
      runStart = r.pos;
    }
    r.skip(wireType, fieldNo, end, depth);
    runEnd = r.pos;
  }
  if (runStart >= 0) {
    keepUnknown(msg, runNo, runWireType, r.buf.slice(runStart, runEnd));
  }
}

function keepUnknown(msg: Record<string, unknown>, no: number, wireType: number, data: Uint8Array): void {
  let unknown = msg.$unknown as UnknownField[] | undefined;
  if (unknown === undefined) {
    unknown = [];
    msg.$unknown = unknown;
  }
  unknown.push({ no, wireType, data });
}

/**
 * The unknown fields of `message` one by one, in the order read: `no`,
 * `wireType` and `data` (the value's bytes, as `$unknown` records of the
 * runtime hold them: a LEN value with its length, a group with its end tag).
 *
 * A parsed message keeps each run of consecutive unknown fields as ONE
 * `$unknown` record (a checkpoint has at most one per message: its unknown
 * fields stand after its known ones), whose `data` is the first field's value
 * followed by the other fields, tags included, so that a message full of
 * small unknown fields costs one record, not one per field. `toBinary` writes
 * such a record back byte for byte; this function splits it for reading.
 * Throws {@link WireError} if a record's bytes are not protobuf fields.
 */
export function unknownFields(message: { $unknown?: UnknownField[] }): UnknownField[] {
  const out: UnknownField[] = [];
  for (const record of message.$unknown ?? []) {
    const data = record.data;
    const r = new Reader(data);
    let no = record.no;
    let wireType: number = record.wireType;
    for (;;) {
      const start = r.pos;
      r.skip(wireType, no, data.length, 0);
      out.push({ no, wireType, data: data.slice(start, r.pos) });
      if (r.pos >= data.length) {
        break;
      }
      [no, wireType] = r.tag(data.length);
    }
  }
  return out;
}

function compiled(desc: DescMessage): Compiled {
  let fields = compiledMessages.get(desc);
  if (fields === undefined) {
    fields = new Map();
    compiledMessages.set(desc, fields);
    for (const field of desc.fields) {
      fields.set(field.number, compileField(field));
    }
  }
  return fields;
}

function compileField(field: DescField): CompiledField {
  const name = field.localName;
  switch (field.fieldKind) {
    case "scalar":
    case "enum": {
      const scalar = field.fieldKind === "enum" ? ScalarType.INT32 : field.scalar;
      const [wireType, readValue] = scalarReader(scalar);
      const oneof = field.oneof?.localName;
      if (oneof !== undefined) {
        return {
          wireType,
          read: (msg, r, end) => {
            msg[oneof] = { case: name, value: readValue(r, end) };
          },
        };
      }
      return {
        wireType,
        read: (msg, r, end) => {
          msg[name] = readValue(r, end);
        },
      };
    }
    case "message": {
      const child = field.message;
      const oneof = field.oneof?.localName;
      if (oneof !== undefined) {
        return {
          wireType: WireType.LengthDelimited,
          read: (msg, r, end, depth) => {
            const current = msg[oneof] as { case: string | undefined; value?: unknown };
            // A repeated occurrence of the same member merges; another member replaces it.
            const sub = (current.case === name ? current.value : create(child)) as Record<string, unknown>;
            readChild(child, sub, r, end, depth);
            msg[oneof] = { case: name, value: sub };
          },
        };
      }
      return {
        wireType: WireType.LengthDelimited,
        read: (msg, r, end, depth) => {
          const sub = (msg[name] ?? create(child)) as Record<string, unknown>;
          readChild(child, sub, r, end, depth);
          msg[name] = sub;
        },
      };
    }
    case "list": {
      if (field.listKind !== "message") {
        throw new Error(`unsupported field ${field.toString()}: repeated scalars are not in the schema`);
      }
      const child = field.message;
      return {
        wireType: WireType.LengthDelimited,
        read: (msg, r, end, depth) => {
          const sub = create(child) as unknown as Record<string, unknown>;
          readChild(child, sub, r, end, depth);
          (msg[name] as unknown[]).push(sub);
        },
      };
    }
    default:
      throw new Error(`unsupported field ${field.toString()}: maps are not in the schema`);
  }
}

function readChild(
  desc: DescMessage,
  sub: Record<string, unknown>,
  r: Reader,
  end: number,
  depth: number,
): void {
  const length = r.length(end);
  const subEnd = r.pos + length;
  readMessage(desc, sub, r, subEnd, depth + 1);
}

type ValueReader = (r: Reader, end: number) => unknown;

/** A varint field's wire type and reader: `of` maps the varint's low and high 32 bits to the value. */
function varintReader(of: (lo: number, hi: number) => unknown): [WireType, ValueReader] {
  return [
    WireType.Varint,
    (r, end) => {
      r.varint(end);
      return of(r.lo, r.hi);
    },
  ];
}

/** A length-delimited field's wire type and reader: `of` maps a view of the field's bytes to the value. */
function lengthDelimitedReader(of: (bytes: Uint8Array) => unknown): [WireType, ValueReader] {
  return [
    WireType.LengthDelimited,
    (r, end) => {
      const n = r.length(end);
      const start = r.pos;
      r.pos += n;
      return of(r.buf.subarray(start, start + n));
    },
  ];
}

function scalarReader(scalar: ScalarType): [WireType, ValueReader] {
  switch (scalar) {
    case ScalarType.DOUBLE:
      return [WireType.Bit64, (r, end) => r.view.getFloat64(r.fixed(8, end), true)];
    case ScalarType.FLOAT:
      return [WireType.Bit32, (r, end) => r.view.getFloat32(r.fixed(4, end), true)];
    case ScalarType.FIXED64:
      return [WireType.Bit64, (r, end) => r.view.getBigUint64(r.fixed(8, end), true)];
    case ScalarType.SFIXED64:
      return [WireType.Bit64, (r, end) => r.view.getBigInt64(r.fixed(8, end), true)];
    case ScalarType.FIXED32:
      return [WireType.Bit32, (r, end) => r.view.getUint32(r.fixed(4, end), true)];
    case ScalarType.SFIXED32:
      return [WireType.Bit32, (r, end) => r.view.getInt32(r.fixed(4, end), true)];
    case ScalarType.BOOL:
      return varintReader((lo, hi) => lo !== 0 || hi !== 0);
    case ScalarType.INT32:
      return varintReader((lo) => lo | 0);
    case ScalarType.UINT32:
      return varintReader((lo) => lo);
    case ScalarType.SINT32:
      return varintReader((lo) => (lo >>> 1) ^ -(lo & 1));
    case ScalarType.INT64:
      return varintReader((lo, hi) => protoInt64.dec(lo, hi));
    case ScalarType.UINT64:
      return varintReader((lo, hi) => protoInt64.uDec(lo, hi));
    case ScalarType.SINT64:
      return varintReader((lo, hi) => {
        const u = protoInt64.uDec(lo, hi);
        return (u >> 1n) ^ -(u & 1n);
      });
    case ScalarType.STRING:
      return lengthDelimitedReader((bytes) => {
        try {
          return utf8.decode(bytes);
        } catch {
          throw new WireError("string is not valid UTF-8");
        }
      });
    case ScalarType.BYTES:
      return lengthDelimitedReader((bytes) => bytes.slice());
  }
}
