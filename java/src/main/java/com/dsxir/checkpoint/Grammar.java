package com.dsxir.checkpoint;

import com.dsxir.optimizer_session.v1.Checkpoint;
import com.dsxir.optimizer_session.v1.CheckpointDelta;
import com.dsxir.optimizer_session.v1.Term;
import com.dsxir.optimizer_session.v1.TermList;
import com.dsxir.optimizer_session.v1.TermMap;
import com.dsxir.optimizer_session.v1.TermMapEntry;
import com.dsxir.optimizer_session.v1.TermNull;
import com.dsxir.optimizer_session.v1.TrialLogEntry;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Descriptors.OneofDescriptor;
import com.google.protobuf.MessageLite;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.zip.CRC32C;

/**
 * The byte grammar of FORMAT.md §2: the size limit, the CRC-32C trailer (§2.1), the strict message
 * grammar (§2.2) with the refusal paths of §2.3, and the weight limit (§2.4).
 *
 * <p>The schema (field numbers, wire types, presence, repetition, message types, oneofs) comes
 * from the generated descriptors, so a field added in a minor version needs no change here; only
 * the weights and the Term depth are constants. The scan reads each byte once, allocates nothing
 * per field, and recurses only into known message fields, whose nesting the Term depth bounds.
 */
final class Grammar {
  /** The largest input a reader accepts (256 MiB), trailer included. */
  static final int MAX_INPUT_BYTES = 268_435_456;

  /** The deepest Term a reader accepts. */
  static final int MAX_TERM_DEPTH = 24;

  /** The trailer: the tag of field 536,870,911 (I32), then the CRC-32C of the body. */
  static final int TRAILER_BYTES = 9;

  private static final byte[] TRAILER_TAG = {(byte) 0xfd, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x0f};

  /** The field number of the trailer, reserved in every message. */
  private static final int TRAILER_NUMBER = 536_870_911;

  /** Weights of §2.4. */
  private static final int WEIGHT_TRIAL = 104;

  private static final int WEIGHT_NULL = 8;
  private static final int WEIGHT_MESSAGE = 48;
  /** The weight limit of §2.4: {@code WEIGHT_FACTOR} x the input's length + {@code WEIGHT_BASE}. */
  static final long WEIGHT_FACTOR = 7;

  static final long WEIGHT_BASE = 50_331_648L;

  private static final int VARINT = 0;
  private static final int I64 = 1;
  private static final int LEN = 2;
  private static final int I32 = 5;

  // The value kinds of known fields.
  private static final int K_BOOL = 0;
  private static final int K_UINT32 = 1;
  private static final int K_INT32 = 2; // int32 and enums: sign-extended to 64 bits
  private static final int K_VARINT64 = 3; // uint64, int64, sint64: any 64-bit value
  private static final int K_FIXED = 4; // double, fixed64, float, fixed32, ...
  private static final int K_STRING = 5;
  private static final int K_BYTES = 6;
  private static final int K_MESSAGE = 7;

  // The Term family, for the depth of §3.6.
  private static final int F_NONE = 0;
  private static final int F_TERM = 1;
  private static final int F_CONTAINER = 2; // TermList, TermMap, TermMapEntry

  private Grammar() {}

  /** One known field of a message. */
  private static final class Field {
    final String name;
    final int wire;
    final int kind;
    final boolean presence;
    final boolean repeated;
    final int oneof; // index of its real oneof in the message, or -1
    Layout child; // for a message field

    Field(FieldDescriptor fd) {
      name = fd.getName();
      repeated = fd.isRepeated();
      presence = fd.hasPresence();
      OneofDescriptor o = fd.getRealContainingOneof();
      oneof = o == null ? -1 : o.getIndex();
      switch (fd.getType()) {
        case BOOL:
          wire = VARINT;
          kind = K_BOOL;
          break;
        case UINT32:
        case SINT32:
          wire = VARINT;
          kind = K_UINT32;
          break;
        case INT32:
        case ENUM:
          wire = VARINT;
          kind = K_INT32;
          break;
        case UINT64:
        case INT64:
        case SINT64:
          wire = VARINT;
          kind = K_VARINT64;
          break;
        case DOUBLE:
        case FIXED64:
        case SFIXED64:
          wire = I64;
          kind = K_FIXED;
          break;
        case FLOAT:
        case FIXED32:
        case SFIXED32:
          wire = I32;
          kind = K_FIXED;
          break;
        case STRING:
          wire = LEN;
          kind = K_STRING;
          break;
        case BYTES:
          wire = LEN;
          kind = K_BYTES;
          break;
        case MESSAGE:
          wire = LEN;
          kind = K_MESSAGE;
          break;
        default:
          throw new IllegalStateException("no wire form in the grammar for " + fd.getFullName());
      }
      if (repeated && kind != K_MESSAGE) {
        // Packed scalars are not in the grammar; the schema has none.
        throw new IllegalStateException("repeated scalar field in the schema: " + fd.getFullName());
      }
    }
  }

  /** A message type: its known fields by number, its weight and its place among Terms. */
  private static final class Layout {
    final Field[] byNumber;
    final int weight;
    final int family;

    Layout(Descriptor type) {
      int max = 0;
      for (FieldDescriptor fd : type.getFields()) {
        max = Math.max(max, fd.getNumber());
      }
      byNumber = new Field[max + 1];
      for (FieldDescriptor fd : type.getFields()) {
        byNumber[fd.getNumber()] = new Field(fd);
      }
      String name = type.getFullName();
      if (name.equals(TrialLogEntry.getDescriptor().getFullName())) {
        weight = WEIGHT_TRIAL;
      } else if (name.equals(TermNull.getDescriptor().getFullName())) {
        weight = WEIGHT_NULL;
      } else {
        weight = WEIGHT_MESSAGE;
      }
      if (name.equals(Term.getDescriptor().getFullName())) {
        family = F_TERM;
      } else if (name.equals(TermList.getDescriptor().getFullName())
          || name.equals(TermMap.getDescriptor().getFullName())
          || name.equals(TermMapEntry.getDescriptor().getFullName())) {
        family = F_CONTAINER;
      } else {
        family = F_NONE;
      }
    }

    Field field(int number) {
      return number < byNumber.length ? byNumber[number] : null;
    }
  }

  private static final Layout CHECKPOINT = layouts(Checkpoint.getDescriptor());

  /** A delta (FORMAT.md §13): its head is scanned as a Checkpoint, at paths {@code head.…}. */
  private static final Layout DELTA = layouts(CheckpointDelta.getDescriptor());

  /** The layouts of a message type and of every message type it reaches. */
  private static Layout layouts(Descriptor root) {
    Map<String, Layout> byName = new HashMap<>();
    List<Descriptor> pending = new ArrayList<>(List.of(root));
    Map<String, Descriptor> types = new HashMap<>();
    while (!pending.isEmpty()) {
      Descriptor type = pending.remove(pending.size() - 1);
      if (byName.containsKey(type.getFullName())) {
        continue;
      }
      byName.put(type.getFullName(), new Layout(type));
      types.put(type.getFullName(), type);
      for (FieldDescriptor fd : type.getFields()) {
        if (fd.getType() == FieldDescriptor.Type.MESSAGE) {
          pending.add(fd.getMessageType());
        }
      }
    }
    for (Map.Entry<String, Descriptor> e : types.entrySet()) {
      Layout layout = byName.get(e.getKey());
      for (FieldDescriptor fd : e.getValue().getFields()) {
        if (fd.getType() == FieldDescriptor.Type.MESSAGE) {
          layout.byNumber[fd.getNumber()].child = byName.get(fd.getMessageType().getFullName());
        }
      }
    }
    return byName.get(root.getFullName());
  }

  // --- the input -------------------------------------------------------------------------------

  /** The CRC-32C (Castagnoli) of {@code length} bytes of {@code data} from {@code offset}. */
  static int crc32c(byte[] data, int offset, int length) {
    CRC32C crc = new CRC32C();
    crc.update(data, offset, length);
    return (int) crc.getValue();
  }

  /** The weight limit of §2.4 for an input of {@code n} bytes (trailer included). */
  static long weightLimit(long n) {
    return WEIGHT_FACTOR * n + WEIGHT_BASE;
  }

  /**
   * Checks checkpoint bytes by §2 in the order of §7 step 1: the size, the trailer, the checksum,
   * the grammar of the body, the weight. Returns the length of the body (the input without its
   * trailer).
   */
  static int checkInput(byte[] input) throws ResumeMismatch {
    return checkInput(input, CHECKPOINT);
  }

  /** {@link #checkInput(byte[])} for the bytes of a CheckpointDelta (FORMAT.md §13). */
  static int checkDeltaInput(byte[] input) throws ResumeMismatch {
    return checkInput(input, DELTA);
  }

  private static int checkInput(byte[] input, Layout root) throws ResumeMismatch {
    int n = input.length;
    checkSize(n);
    if (n < TRAILER_BYTES) {
      throw ResumeMismatch.shape(
          Rules.INPUT_TRAILER,
          "<input>",
          "input of " + n + " bytes is shorter than the 9-byte trailer");
    }
    int body = n - TRAILER_BYTES;
    for (int i = 0; i < TRAILER_TAG.length; i++) {
      if (input[body + i] != TRAILER_TAG[i]) {
        throw ResumeMismatch.shape(
            Rules.INPUT_TRAILER,
            "<input>",
            "the last 9 bytes are not the trailer (FD FF FF FF 0F and a CRC-32C):"
                + " a cut or foreign input");
      }
    }
    int stored =
        (input[n - 4] & 0xff)
            | (input[n - 3] & 0xff) << 8
            | (input[n - 2] & 0xff) << 16
            | (input[n - 1] & 0xff) << 24;
    int actual = crc32c(input, 0, body);
    if (stored != actual) {
      throw ResumeMismatch.shape(
          Rules.INPUT_CHECKSUM,
          "<input>",
          String.format(
              "the trailer's CRC-32C is %08x, the body's is %08x (damaged input)", stored, actual));
    }
    checkBody(input, body, n, root);
    return body;
  }

  /**
   * For a rewrite (§2.6): the length of the body when the input ends with a trailer tag, whose
   * CRC-32C must then match ({@code input.checksum}); the whole length otherwise.
   */
  static int sealedBodyLength(byte[] input) throws ResumeMismatch {
    int n = input.length;
    if (n < TRAILER_BYTES
        || !Arrays.equals(input, n - TRAILER_BYTES, n - 4, TRAILER_TAG, 0, TRAILER_TAG.length)) {
      return n;
    }
    int body = n - TRAILER_BYTES;
    int stored =
        (input[n - 4] & 0xff)
            | (input[n - 3] & 0xff) << 8
            | (input[n - 2] & 0xff) << 16
            | (input[n - 1] & 0xff) << 24;
    if (stored != crc32c(input, 0, body)) {
      throw ResumeMismatch.shape(
          Rules.INPUT_CHECKSUM, "<input>", "the trailer's CRC-32C does not match the bytes");
    }
    return body;
  }

  /** Refuses a size over {@link #MAX_INPUT_BYTES} ({@code input.too_large}). */
  static void checkSize(long n) throws ResumeMismatch {
    if (n > MAX_INPUT_BYTES) {
      throw ResumeMismatch.shape(
          Rules.INPUT_TOO_LARGE,
          "<input>",
          "input is " + n + " bytes, more than the limit of " + MAX_INPUT_BYTES);
    }
  }

  /**
   * The deterministic encoding of a Checkpoint followed by room for its trailer ({@link
   * #writeTrailer}), refused by the size limit, then by the grammar of §2.2 and the weight of §2.4.
   */
  static byte[] encodeBody(Checkpoint cp) throws ResumeMismatch {
    return encodeBody(cp, CHECKPOINT);
  }

  /** {@link #encodeBody(Checkpoint)} for a CheckpointDelta (FORMAT.md §13). */
  static byte[] encodeBody(CheckpointDelta delta) throws ResumeMismatch {
    return encodeBody(delta, DELTA);
  }

  private static byte[] encodeBody(MessageLite message, Layout root) throws ResumeMismatch {
    int size = message.getSerializedSize();
    long total = (long) size + TRAILER_BYTES;
    checkSize(total);
    byte[] out = new byte[(int) total];
    Checkpoints.writeDeterministic(message, out, size);
    checkBody(out, size, total, root);
    return out;
  }

  private static void checkBody(byte[] data, int bodyLength, long inputLength, Layout root)
      throws ResumeMismatch {
    Scan scan = new Scan(data);
    try {
      scan.message(root, 0, bodyLength, 1);
    } catch (Refusal r) {
      throw r.toMismatch();
    }
    long limit = weightLimit(inputLength);
    if (scan.weight > limit) {
      throw ResumeMismatch.shape(
          Rules.INPUT_WEIGHT,
          "<input>",
          "the checkpoint weighs "
              + scan.weight
              + ", more than "
              + WEIGHT_FACTOR
              + " x "
              + inputLength
              + " bytes + "
              + String.format(Locale.ROOT, "%,d", WEIGHT_BASE)
              + " = "
              + limit);
    }
  }

  /** The weight of a Checkpoint body that keeps the grammar (for tests). */
  static long weight(byte[] data, int bodyLength) throws ResumeMismatch {
    Scan scan = new Scan(data);
    try {
      scan.message(CHECKPOINT, 0, bodyLength, 1);
    } catch (Refusal r) {
      throw r.toMismatch();
    }
    return scan.weight;
  }

  /** The trailer of a body: FD FF FF FF 0F and the CRC-32C of the body, least significant first. */
  static void writeTrailer(byte[] out, int bodyLength) {
    System.arraycopy(TRAILER_TAG, 0, out, bodyLength, TRAILER_TAG.length);
    int crc = crc32c(out, 0, bodyLength);
    out[bodyLength + 5] = (byte) crc;
    out[bodyLength + 6] = (byte) (crc >>> 8);
    out[bodyLength + 7] = (byte) (crc >>> 16);
    out[bodyLength + 8] = (byte) (crc >>> 24);
  }

  /** {@code body} followed by its trailer. */
  static byte[] withTrailer(byte[] body) {
    byte[] out = new byte[body.length + TRAILER_BYTES];
    System.arraycopy(body, 0, out, 0, body.length);
    writeTrailer(out, body.length);
    return out;
  }

  // --- the scan --------------------------------------------------------------------------------

  /** A broken rule on its way up: each enclosing message field prepends its name. */
  private static final class Refusal extends Exception {
    private static final long serialVersionUID = 1L;
    final String rule;
    final String detail;
    private final transient List<String> parts = new ArrayList<>(); // innermost first

    Refusal(String rule, String detail) {
      super(detail, null, false, false);
      this.rule = rule;
      this.detail = detail;
    }

    Refusal at(String part) {
      parts.add(part);
      return this;
    }

    ResumeMismatch toMismatch() {
      if (parts.isEmpty()) {
        return ResumeMismatch.shape(rule, "<input>", detail);
      }
      StringBuilder path = new StringBuilder();
      for (int i = parts.size() - 1; i >= 0; i--) {
        if (path.length() > 0) {
          path.append('.');
        }
        path.append(parts.get(i));
      }
      return ResumeMismatch.shape(rule, path.toString(), detail);
    }
  }

  private static final int TRUNCATED = -1;
  private static final int BAD_VARINT = -2;

  private static String segment(Field field, int index) {
    return field.repeated ? field.name + "[" + index + "]" : field.name;
  }

  private static final class Scan {
    final byte[] buf;
    long weight;
    long value; // the last varint read

    Scan(byte[] buf) {
      this.buf = buf;
    }

    /**
     * Reads a varint at {@code pos}: returns the position after it (its value in {@link #value}),
     * {@link #TRUNCATED} when it runs past {@code end}, or {@link #BAD_VARINT} when it is not
     * minimal or does not fit in 64 bits. Truncation is found before minimality.
     */
    int varint(int pos, int end) {
      long result = 0;
      for (int i = 0; i < 10; i++) {
        if (pos >= end) {
          return TRUNCATED;
        }
        int b = buf[pos++] & 0xff;
        if (i == 9) {
          if (b != 0x01) {
            return BAD_VARINT;
          }
          value = result | (1L << 63);
          return pos;
        }
        result |= (long) (b & 0x7f) << (7 * i);
        if (b < 0x80) {
          if (b == 0 && i > 0) {
            return BAD_VARINT;
          }
          value = result;
          return pos;
        }
      }
      throw new AssertionError("unreachable");
    }

    /**
     * Scans the body of one message, {@code [pos, end)}. {@code depth} is the Term depth a Term
     * directly in this message has (for a Term itself: its own depth + 1).
     */
    void message(Layout layout, int pos, int end, int depth) throws Refusal {
      int prevNumber = 0;
      int prevWire = -1;
      int run = 0; // elements of the current repeated field before this one
      long oneofs = 0;
      while (pos < end) {
        // The tag.
        int next = varint(pos, end);
        if (next == TRUNCATED) {
          throw new Refusal(Rules.WIRE_TRUNCATED, "a tag runs past the end of its message");
        }
        if (next == BAD_VARINT) {
          throw new Refusal(Rules.WIRE_VARINT, "a tag is not a minimal varint");
        }
        long tag = value;
        if (tag < 0 || tag > 0xffff_ffffL) {
          throw new Refusal(Rules.WIRE_VARINT, "a tag is 2^32 or more");
        }
        pos = next;
        int number = (int) (tag >>> 3);
        int wire = (int) (tag & 7);
        if (number == 0 || number == TRAILER_NUMBER) {
          throw new Refusal(Rules.WIRE_TAG, "field number " + number + " is not allowed");
        }
        if (wire != VARINT && wire != I64 && wire != LEN && wire != I32) {
          throw new Refusal(
              Rules.WIRE_TAG, "field " + number + " has wire type " + wire + " (not 0, 1, 2, 5)");
        }
        Field field = layout.field(number);
        // The order.
        if (number < prevNumber) {
          throw new Refusal(
              Rules.WIRE_ORDER, "field " + number + " comes after field " + prevNumber);
        }
        if (number == prevNumber) {
          if (field != null ? !field.repeated : wire != prevWire) {
            throw new Refusal(
                Rules.WIRE_ORDER,
                field != null
                    ? "field " + number + " (" + field.name + ") is written twice"
                    : "unknown field " + number + " repeats with another wire type");
          }
          run++;
        } else {
          run = 0;
        }
        prevNumber = number;
        prevWire = wire;
        // The wire type against the schema, the oneof.
        if (field != null) {
          if (field.wire != wire) {
            throw new Refusal(
                Rules.WIRE_TAG,
                "field " + number + " (" + field.name + ") has wire type " + wire
                    + ", not " + field.wire);
          }
          if (field.oneof >= 0) {
            long bit = 1L << field.oneof;
            if ((oneofs & bit) != 0) {
              throw new Refusal(
                  Rules.WIRE_ONEOF, "a second kind (" + field.name + ") in one oneof");
            }
            oneofs |= bit;
          }
        }
        // The value.
        switch (wire) {
          case VARINT:
            {
              next = varint(pos, end);
              if (next == TRUNCATED) {
                throw new Refusal(Rules.WIRE_TRUNCATED, "a varint runs past the end of its message");
              }
              if (next == BAD_VARINT) {
                throw fieldRefusal(
                    Rules.WIRE_VARINT, "a varint is not minimal or exceeds 64 bits", field, run);
              }
              pos = next;
              if (field != null) {
                checkVarint(field, value, run);
              }
              break;
            }
          case I64:
          case I32:
            {
              int size = wire == I64 ? 8 : 4;
              if (end - pos < size) {
                throw new Refusal(
                    Rules.WIRE_TRUNCATED, "a fixed-size value runs past the end of its message");
              }
              if (field != null && !field.presence && !field.repeated && allZero(pos, size)) {
                throw fieldRefusal(Rules.WIRE_DEFAULT, "the default value is written", field, run);
              }
              pos += size;
              break;
            }
          default: // LEN
            {
              next = varint(pos, end);
              if (next == TRUNCATED) {
                throw new Refusal(Rules.WIRE_TRUNCATED, "a length runs past the end of its message");
              }
              if (next == BAD_VARINT) {
                throw fieldRefusal(
                    Rules.WIRE_VARINT, "a length is not minimal or exceeds 64 bits", field, run);
              }
              pos = next;
              long length = value;
              if (length < 0 || length > end - pos) {
                throw new Refusal(
                    Rules.WIRE_TRUNCATED,
                    "a length of "
                        + Long.toUnsignedString(length)
                        + " bytes runs past the end of its message ("
                        + (end - pos)
                        + " left)");
              }
              int valueEnd = pos + (int) length;
              if (field != null) {
                checkLen(field, pos, valueEnd, run, layout.family, depth);
              }
              pos = valueEnd;
              break;
            }
        }
      }
    }

    private void checkVarint(Field field, long v, int run) throws Refusal {
      switch (field.kind) {
        case K_BOOL:
          if (v != 0 && v != 1) {
            throw fieldRefusal(Rules.WIRE_RANGE, "a bool is not 0 or 1", field, run);
          }
          break;
        case K_UINT32:
          if ((v >>> 32) != 0) {
            throw fieldRefusal(Rules.WIRE_RANGE, "a uint32 is 2^32 or more", field, run);
          }
          break;
        case K_INT32:
          if ((int) v != v) {
            throw fieldRefusal(
                Rules.WIRE_RANGE, "an int32 or enum is outside the int32 range", field, run);
          }
          break;
        default:
          break;
      }
      if (v == 0 && !field.presence && !field.repeated) {
        throw fieldRefusal(Rules.WIRE_DEFAULT, "the default value 0 is written", field, run);
      }
    }

    private void checkLen(Field field, int pos, int valueEnd, int run, int family, int depth)
        throws Refusal {
      switch (field.kind) {
        case K_STRING:
        case K_BYTES:
          if (field.kind == K_STRING && !Utf8.wellFormed(buf, pos, valueEnd)) {
            throw fieldRefusal(Rules.WIRE_UTF8, "a string is not well-formed UTF-8", field, run);
          }
          if (pos == valueEnd && !field.presence && !field.repeated) {
            throw fieldRefusal(Rules.WIRE_DEFAULT, "an empty value is written", field, run);
          }
          break;
        default: // K_MESSAGE
          {
            Layout child = field.child;
            int childDepth;
            if (child.family == F_TERM) {
              int termDepth = family == F_NONE ? 1 : depth;
              if (termDepth > MAX_TERM_DEPTH) {
                throw new Refusal(Rules.TERM_DEPTH, "nesting deeper than " + MAX_TERM_DEPTH)
                    .at(segment(field, run));
              }
              childDepth = termDepth + 1;
            } else if (child.family == F_CONTAINER) {
              // A TermMap field of a message counts as a map Term of depth 1.
              childDepth = family == F_NONE ? 2 : depth;
            } else {
              childDepth = 1;
            }
            weight += child.weight;
            try {
              message(child, pos, valueEnd, childDepth);
            } catch (Refusal r) {
              throw r.at(segment(field, run));
            }
            break;
          }
      }
    }

    private boolean allZero(int pos, int size) {
      for (int i = 0; i < size; i++) {
        if (buf[pos + i] != 0) {
          return false;
        }
      }
      return true;
    }
  }

  /** A refusal naming a field; an unknown field (null) has no name, so its message is named. */
  private static Refusal fieldRefusal(String rule, String detail, Field field, int run) {
    Refusal r = new Refusal(rule, detail);
    return field == null ? r : r.at(segment(field, run));
  }

  /** Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
  static final class Utf8 {
    private Utf8() {}

    static boolean wellFormed(byte[] b, int pos, int end) {
      while (pos < end) {
        int c = b[pos] & 0xff;
        if (c < 0x80) {
          pos++;
          continue;
        }
        int need;
        int lo = 0x80;
        int hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
          need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
          need = 2;
          if (c == 0xe0) {
            lo = 0xa0;
          } else if (c == 0xed) {
            hi = 0x9f;
          }
        } else if (c >= 0xf0 && c <= 0xf4) {
          need = 3;
          if (c == 0xf0) {
            lo = 0x90;
          } else if (c == 0xf4) {
            hi = 0x8f;
          }
        } else {
          return false;
        }
        if (end - pos - 1 < need) {
          return false;
        }
        int second = b[pos + 1] & 0xff;
        if (second < lo || second > hi) {
          return false;
        }
        for (int i = 2; i <= need; i++) {
          int cont = b[pos + i] & 0xff;
          if (cont < 0x80 || cont > 0xbf) {
            return false;
          }
        }
        pos += need + 1;
      }
      return true;
    }
  }
}
