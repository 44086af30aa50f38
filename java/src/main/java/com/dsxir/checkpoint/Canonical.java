package com.dsxir.checkpoint;

import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Descriptors.OneofDescriptor;
import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A protobuf encoding computed from the bytes of a message and its descriptor, with protobuf's
 * parsing rules (last value wins for a singular field, repeated occurrences of a message field
 * merge, a oneof member clears the others, a field of the wrong wire type is unknown), unknown
 * fields after the known fields in the order read.
 *
 * <p>It checks the wire format as strictly as the reference parsers (protobuf-java accepts some
 * malformed varints, an 11th byte, that others refuse) for bytes that are not a checkpoint: the
 * Term given to {@code hash-trainset}, and the input of {@link Checkpoints#canonicalize(byte[])}.
 * Checkpoints themselves are read by the strict grammar of {@link Grammar}.
 */
final class Canonical {
  private static final int VARINT = 0;
  private static final int I64 = 1;
  private static final int LEN = 2;
  private static final int SGROUP = 3;
  private static final int EGROUP = 4;
  private static final int I32 = 5;

  /** Deeper than protobuf-java's recursion limit (100); only keeps the walk off the stack limit. */
  private static final int MAX_DEPTH = 128;

  private Canonical() {}

  /** Bytes that no protobuf parser reads. */
  static final class Malformed extends Exception {
    private static final long serialVersionUID = 1L;

    Malformed(String message) {
      super(message, null, false, false);
    }
  }

  /** The canonical encoding of {@code bytes} read as a message of type {@code type}. */
  static byte[] canonicalize(byte[] bytes, Descriptor type) throws Malformed {
    return message(bytes, 0, bytes.length, type, 0);
  }

  private static final class Reader {
    final byte[] buf;
    int pos;
    final int end;

    Reader(byte[] buf, int pos, int end) {
      this.buf = buf;
      this.pos = pos;
      this.end = end;
    }

    /** A varint of at most 10 bytes; bits beyond 64 are dropped. */
    long varint() throws Malformed {
      long value = 0;
      for (int i = 0; i < 10; i++) {
        if (pos >= end) {
          throw new Malformed("truncated varint");
        }
        int b = buf[pos++] & 0xff;
        value |= (long) (b & 0x7f) << (7 * i); // the 10th byte keeps its lowest bit
        if (b < 0x80) {
          return value;
        }
      }
      throw new Malformed("varint longer than 10 bytes");
    }

    int length() throws Malformed {
      long len = varint();
      if (len < 0 || len > Integer.MAX_VALUE) {
        throw new Malformed("length out of range");
      }
      if (len > end - pos) {
        throw new Malformed("field runs past the end of its message");
      }
      return (int) len;
    }

    void take(int n) throws Malformed {
      if (n > end - pos) {
        throw new Malformed("field runs past the end of its message");
      }
      pos += n;
    }

    /** Returns {number, wireType}. */
    int[] key() throws Malformed {
      long key = varint();
      if (key < 0 || key > 0xffffffffL) {
        throw new Malformed("field key out of range");
      }
      int number = (int) (key >>> 3);
      int wire = (int) (key & 7);
      if (number == 0) {
        throw new Malformed("field number 0");
      }
      if (wire > I32) {
        throw new Malformed("invalid wire type " + wire);
      }
      return new int[] {number, wire};
    }

    void skip(int number, int wire, int depth) throws Malformed {
      switch (wire) {
        case VARINT:
          varint();
          break;
        case I64:
          take(8);
          break;
        case I32:
          take(4);
          break;
        case LEN:
          take(length());
          break;
        case SGROUP:
          if (depth >= MAX_DEPTH) {
            throw new Malformed("nesting too deep");
          }
          while (true) {
            if (pos >= end) {
              throw new Malformed("group without an end");
            }
            int[] inner = key();
            if (inner[1] == EGROUP) {
              if (inner[0] != number) {
                throw new Malformed("mismatched end of group");
              }
              return;
            }
            skip(inner[0], inner[1], depth + 1);
          }
        default:
          throw new Malformed("unexpected end of group");
      }
    }
  }

  private static int wireType(FieldDescriptor field) {
    switch (field.getType()) {
      case DOUBLE:
      case FIXED64:
      case SFIXED64:
        return I64;
      case FLOAT:
      case FIXED32:
      case SFIXED32:
        return I32;
      case STRING:
      case BYTES:
      case MESSAGE:
        return LEN;
      case GROUP:
        return SGROUP;
      default:
        return VARINT;
    }
  }

  /** The value of one known field of one message while it is read. */
  private static final class Slot {
    boolean present;
    long varint;
    byte[] raw; // fixed-size or length-delimited scalar, or a singular message (canonical)
    final List<byte[]> items = new ArrayList<>(); // repeated message elements (canonical)

    void clear() {
      present = false;
      raw = null;
      varint = 0;
    }
  }

  private static byte[] message(byte[] buf, int start, int end, Descriptor type, int depth)
      throws Malformed {
    if (depth >= MAX_DEPTH) {
      throw new Malformed("nesting too deep");
    }
    Layout layout = LAYOUTS.computeIfAbsent(type, Layout::new);
    List<FieldDescriptor> fields = layout.fields;
    Slot[] slots = new Slot[fields.size()];
    for (int i = 0; i < slots.length; i++) {
      slots[i] = new Slot();
    }
    ByteArrayOutputStream unknown = new ByteArrayOutputStream();
    Reader r = new Reader(buf, start, end);
    while (r.pos < end) {
      int fieldStart = r.pos;
      int[] key = r.key();
      int index = layout.indexOf(key[0]);
      FieldDescriptor field = index < 0 ? null : fields.get(index);
      if (field == null || wireType(field) != key[1]) {
        r.skip(key[0], key[1], depth);
        unknown.write(buf, fieldStart, r.pos - fieldStart);
        continue;
      }
      Slot slot = slots[index];
      OneofDescriptor oneof = field.getRealContainingOneof();
      if (oneof != null) {
        for (FieldDescriptor member : oneof.getFields()) {
          if (member != field) {
            slots[layout.indexOf(member.getNumber())].clear();
          }
        }
      }
      switch (key[1]) {
        case VARINT:
          slot.varint = r.varint();
          break;
        case I64:
          slot.raw = Arrays.copyOfRange(buf, r.pos, r.pos + 8);
          r.take(8);
          break;
        case I32:
          slot.raw = Arrays.copyOfRange(buf, r.pos, r.pos + 4);
          r.take(4);
          break;
        case LEN:
          int len = r.length();
          int bodyStart = r.pos;
          r.take(len);
          if (field.getType() == FieldDescriptor.Type.MESSAGE) {
            byte[] body =
                message(buf, bodyStart, bodyStart + len, field.getMessageType(), depth + 1);
            if (field.isRepeated()) {
              slot.items.add(body);
            } else if (slot.present) {
              // A message field read twice: the two merge, as their concatenation parses.
              byte[] merged = Arrays.copyOf(slot.raw, slot.raw.length + body.length);
              System.arraycopy(body, 0, merged, slot.raw.length, body.length);
              slot.raw = message(merged, 0, merged.length, field.getMessageType(), depth + 1);
            } else {
              slot.raw = body;
            }
          } else {
            slot.raw = Arrays.copyOfRange(buf, bodyStart, bodyStart + len);
          }
          break;
        default:
          throw new IllegalStateException("unexpected wire type for " + field);
      }
      slot.present = true;
    }

    ByteArrayOutputStream out = new ByteArrayOutputStream(end - start);
    for (int i = 0; i < fields.size(); i++) {
      write(out, fields.get(i), slots[i]);
    }
    out.writeBytes(unknown.toByteArray());
    return out.toByteArray();
  }

  /** A message type's fields in field-number order. */
  private static final class Layout {
    final List<FieldDescriptor> fields;

    Layout(Descriptor type) {
      List<FieldDescriptor> sorted = new ArrayList<>(type.getFields());
      sorted.sort(Comparator.comparingInt(FieldDescriptor::getNumber));
      for (FieldDescriptor field : sorted) {
        if (field.isRepeated() && field.getType() != FieldDescriptor.Type.MESSAGE) {
          throw new IllegalStateException("repeated scalar fields are not in the schema: " + field);
        }
        if (field.getType() == FieldDescriptor.Type.GROUP) {
          throw new IllegalStateException("groups are not in the schema: " + field);
        }
      }
      this.fields = List.copyOf(sorted);
    }

    int indexOf(int number) {
      for (int i = 0; i < fields.size(); i++) {
        if (fields.get(i).getNumber() == number) {
          return i;
        }
      }
      return -1;
    }
  }

  private static final Map<Descriptor, Layout> LAYOUTS = new ConcurrentHashMap<>();

  private static void write(ByteArrayOutputStream out, FieldDescriptor field, Slot slot) {
    int number = field.getNumber();
    if (field.isRepeated()) {
      for (byte[] item : slot.items) {
        writeLen(out, number, item);
      }
      return;
    }
    if (!slot.present) {
      return;
    }
    boolean presence = field.hasPresence();
    switch (wireType(field)) {
      case VARINT:
        long value = normalize(field.getType(), slot.varint);
        if (presence || value != 0) {
          writeVarint(out, ((long) number << 3) | VARINT);
          writeVarint(out, value);
        }
        break;
      case I64:
      case I32:
        if (presence || !allZero(slot.raw)) {
          writeVarint(out, ((long) number << 3) | wireType(field));
          out.write(slot.raw, 0, slot.raw.length);
        }
        break;
      default: // LEN
        if (presence || slot.raw.length > 0) {
          writeLen(out, number, slot.raw);
        }
        break;
    }
  }

  /** A varint field's value as its type keeps it (int32 and enum sign-extend 32 bits). */
  private static long normalize(FieldDescriptor.Type type, long value) {
    switch (type) {
      case INT32:
      case ENUM:
        return (int) value;
      case UINT32:
      case SINT32:
        return value & 0xffffffffL;
      case BOOL:
        return value != 0 ? 1 : 0;
      default:
        return value;
    }
  }

  private static boolean allZero(byte[] raw) {
    for (byte b : raw) {
      if (b != 0) {
        return false;
      }
    }
    return true;
  }

  private static void writeLen(ByteArrayOutputStream out, int number, byte[] body) {
    writeVarint(out, ((long) number << 3) | LEN);
    writeVarint(out, body.length);
    out.write(body, 0, body.length);
  }

  private static void writeVarint(ByteArrayOutputStream out, long value) {
    while ((value & ~0x7fL) != 0) {
      out.write((int) ((value & 0x7f) | 0x80));
      value >>>= 7;
    }
    out.write((int) value);
  }
}
