package com.dsxir.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.dsxir.optimizer_session.v1.Checkpoint;
import com.dsxir.optimizer_session.v1.Progress;
import com.dsxir.optimizer_session.v1.TermMap;
import com.dsxir.optimizer_session.v1.TrialLogEntry;
import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.FieldDescriptor;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The byte grammar of FORMAT.md §2: trailer, checksum, wire rules with their paths, weight. */
class GrammarTest {
  // --- building bytes --------------------------------------------------------------------------

  static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] part : parts) {
      out.writeBytes(part);
    }
    return out.toByteArray();
  }

  static byte[] bytes(int... values) {
    byte[] out = new byte[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = (byte) values[i];
    }
    return out;
  }

  static byte[] varint(long v) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    while ((v & ~0x7fL) != 0) {
      out.write((int) ((v & 0x7f) | 0x80));
      v >>>= 7;
    }
    out.write((int) v);
    return out.toByteArray();
  }

  static byte[] tag(int number, int wire) {
    return varint(((long) number << 3) | wire);
  }

  /** A LEN field: tag, minimal length, content. */
  static byte[] len(int number, byte[]... content) {
    byte[] body = concat(content);
    return concat(tag(number, 2), varint(body.length), body);
  }

  static byte[] vfield(int number, long value) {
    return concat(tag(number, 0), varint(value));
  }

  static byte[] str(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  /** The Term list_value(items...) as message bytes. */
  static byte[] listTerm(byte[]... items) {
    byte[][] fields = new byte[items.length][];
    for (int i = 0; i < items.length; i++) {
      fields[i] = len(1, items[i]);
    }
    return len(9, fields);
  }

  static final Checkpoint BASE = CheckpointsTest.base();

  /** The base checkpoint's fields with a number below {@code n}, serialized. */
  static byte[] before(int n) {
    Checkpoint.Builder b = BASE.toBuilder();
    for (FieldDescriptor fd : Checkpoint.getDescriptor().getFields()) {
      if (fd.getNumber() >= n) {
        b.clearField(fd);
      }
    }
    return b.build().toByteArray();
  }

  /** The base checkpoint's fields with a number above {@code n}, serialized. */
  static byte[] after(int n) {
    Checkpoint.Builder b = BASE.toBuilder();
    for (FieldDescriptor fd : Checkpoint.getDescriptor().getFields()) {
      if (fd.getNumber() <= n) {
        b.clearField(fd);
      }
    }
    return b.build().toByteArray();
  }

  /** The base checkpoint with field {@code n} replaced by {@code field} (raw bytes). */
  static byte[] replacing(int n, byte[] field) {
    return concat(before(n), field, after(n));
  }

  static final byte[] BODY = BASE.toByteArray();

  static ResumeMismatch refusal(byte[] body) {
    byte[] input = Grammar.withTrailer(body);
    return assertThrows(ResumeMismatch.class, () -> Checkpoints.decode(input));
  }

  static void assertRefused(byte[] body, String rule, String field) {
    ResumeMismatch e = refusal(body);
    assertEquals(rule, e.rule(), e.getMessage());
    assertEquals(field, e.field(), e.getMessage());
    assertTrue(e.getMessage().endsWith(" (rule " + rule + ")"), e.getMessage());
    // Every path the conformance testee reports is the same for reencode.
    ResumeMismatch again =
        assertThrows(
            ResumeMismatch.class, () -> Checkpoints.reencode(Grammar.withTrailer(body)));
    assertEquals(field, again.field());
  }

  static void assertRoundTrips(byte[] body) throws ResumeMismatch {
    byte[] input = Grammar.withTrailer(body);
    assertArrayEquals(input, Checkpoints.encode(Checkpoints.decode(input)));
    assertArrayEquals(input, Checkpoints.reencode(input));
  }

  // --- the trailer -----------------------------------------------------------------------------

  @Test
  void crc32cIsCastagnoli() {
    assertEquals(0xE3069283, Grammar.crc32c(str("123456789"), 0, 9));
  }

  @Test
  void encodeAppendsTheTrailer() throws ResumeMismatch {
    byte[] encoded = Checkpoints.encode(BASE);
    assertArrayEquals(Grammar.withTrailer(BODY), encoded);
    int n = encoded.length;
    assertArrayEquals(
        bytes(0xfd, 0xff, 0xff, 0xff, 0x0f), Arrays.copyOfRange(encoded, n - 9, n - 4));
    int crc = Grammar.crc32c(encoded, 0, n - 9);
    assertEquals(crc & 0xff, encoded[n - 4] & 0xff);
    assertEquals(crc >>> 24, encoded[n - 1] & 0xff);
    assertEquals(BASE, Checkpoints.decode(encoded));
  }

  @Test
  void everyPrefixIsRefused() {
    byte[] valid = Checkpoints.encode(BASE);
    for (int k = 0; k < valid.length; k++) {
      byte[] prefix = Arrays.copyOf(valid, k);
      ResumeMismatch e = assertThrows(ResumeMismatch.class, () -> Checkpoints.decode(prefix));
      assertEquals("<input>", e.field());
      assertTrue(
          e.rule().equals(Rules.INPUT_TRAILER) || e.rule().equals(Rules.INPUT_CHECKSUM),
          k + ": " + e.getMessage());
      if (k < 9) {
        assertEquals(Rules.INPUT_TRAILER, e.rule());
      }
    }
  }

  @Test
  void everySingleBitFlipIsRefused() {
    byte[] valid = Checkpoints.encode(BASE);
    int n = valid.length;
    for (int i = 0; i < n; i++) {
      for (int bit = 0; bit < 8; bit++) {
        byte[] flipped = valid.clone();
        flipped[i] ^= (byte) (1 << bit);
        ResumeMismatch e = assertThrows(ResumeMismatch.class, () -> Checkpoints.decode(flipped));
        assertEquals("<input>", e.field());
        String expected =
            i >= n - 9 && i < n - 4 ? Rules.INPUT_TRAILER : Rules.INPUT_CHECKSUM;
        assertEquals(expected, e.rule(), i + "/" + bit);
      }
    }
  }

  @Test
  void tooLargeComesFirst() {
    ResumeMismatch e =
        assertThrows(
            ResumeMismatch.class,
            () -> Checkpoints.decode(new byte[Checkpoints.MAX_INPUT_BYTES + 1]));
    assertEquals(Rules.INPUT_TOO_LARGE, e.rule());
    assertEquals("<input>", e.field());
  }

  @Test
  void anEmptyBodyWithItsTrailerReachesTheSemanticChecks() {
    assertRefused(new byte[0], Rules.FORMAT_REQUIRED, "format");
  }

  // --- the wire rules --------------------------------------------------------------------------

  private static final byte[] TEN_BYTE_MINUS_ONE = varint(-1L);

  @ParameterizedTest(name = "{0}")
  @MethodSource
  void wireRulesNameTheirPlace(String name, byte[] body, String rule, String field) {
    assertRefused(body, rule, field);
  }

  static Stream<Arguments> wireRulesNameTheirPlace() {
    return Stream.of(
        // Tags.
        Arguments.of("tag truncated", concat(BODY, bytes(0x80)), Rules.WIRE_TRUNCATED, "<input>"),
        Arguments.of("value truncated", concat(BODY, bytes(0x78)), Rules.WIRE_TRUNCATED, "<input>"),
        Arguments.of("tag not minimal", concat(BODY, bytes(0xf8, 0x80, 0x00, 0x01)), Rules.WIRE_VARINT, "<input>"),
        Arguments.of("tag 2^32", concat(BODY, bytes(0x80, 0x80, 0x80, 0x80, 0x10, 0x00)), Rules.WIRE_VARINT, "<input>"),
        Arguments.of("field 0", concat(BODY, bytes(0x00, 0x00)), Rules.WIRE_TAG, "<input>"),
        Arguments.of("trailer number", concat(BODY, bytes(0xfd, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0)), Rules.WIRE_TAG, "<input>"),
        Arguments.of("group", concat(BODY, tag(16, 3), tag(16, 4)), Rules.WIRE_TAG, "<input>"),
        Arguments.of("wire type 6", concat(BODY, tag(16, 6)), Rules.WIRE_TAG, "<input>"),
        Arguments.of("wire type 7", concat(BODY, tag(16, 7)), Rules.WIRE_TAG, "<input>"),
        // Order.
        Arguments.of("decreasing", concat(BODY, len(1, str("x"))), Rules.WIRE_ORDER, "<input>"),
        Arguments.of("singular twice", concat(BODY, vfield(13, 1)), Rules.WIRE_ORDER, "<input>"),
        Arguments.of("repeated interrupted",
            concat(before(4), len(4, len(1, str("a")), len(2, vfield(3, 2))), len(5, str("p")),
                len(4, len(1, str("b")), len(2, vfield(3, 2))), after(5)),
            Rules.WIRE_ORDER, "<input>"),
        Arguments.of("unknown with another wire type", concat(BODY, vfield(16, 1), len(16)), Rules.WIRE_ORDER, "<input>"),
        Arguments.of("known after unknown", concat(before(15), vfield(16, 1), vfield(15, 1)), Rules.WIRE_ORDER, "<input>"),
        // The wire type of a known field.
        Arguments.of("enum as I32", concat(BODY, tag(15, 5), bytes(1, 0, 0, 0)), Rules.WIRE_TAG, "<input>"),
        Arguments.of("message as varint", replacing(9, vfield(9, 1)), Rules.WIRE_TAG, "<input>"),
        Arguments.of("double as varint in progress",
            replacing(9, len(9, vfield(2, 0))), Rules.WIRE_TAG, "progress"),
        // Oneof.
        Arguments.of("two kinds", concat(BODY, len(14, vfield(2, 1), vfield(3, 2))), Rules.WIRE_ONEOF, "terminal_reason"),
        Arguments.of("one kind twice", concat(BODY, len(14, vfield(2, 1), vfield(2, 0))), Rules.WIRE_ORDER, "terminal_reason"),
        Arguments.of("two kinds in a map key",
            replacing(9, len(9, len(1, vfield(4, 1), len(5,
                len(1, len(1, len(6, str("a"))), len(2, vfield(3, 2))),
                len(1, len(1, vfield(2, 1), len(6, str("b"))), len(2, vfield(3, 2))))))),
            Rules.WIRE_ONEOF, "progress.trial_log[0].stats.entries[1].key"),
        // Values.
        Arguments.of("value varint not minimal", replacing(13, bytes(0x68, 0x81, 0x00)), Rules.WIRE_VARINT, "status"),
        Arguments.of("value varint 11 bytes",
            concat(BODY, len(14, tag(3, 0), bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00))),
            Rules.WIRE_VARINT, "terminal_reason.int_value"),
        Arguments.of("value varint 10th byte 02",
            concat(BODY, len(14, tag(3, 0), bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02))),
            Rules.WIRE_VARINT, "terminal_reason.int_value"),
        Arguments.of("value varint truncated in a Term",
            concat(BODY, len(14, tag(3, 0), bytes(0x80))), Rules.WIRE_TRUNCATED, "terminal_reason"),
        Arguments.of("length not minimal", replacing(2, bytes(0x12, 0x82, 0x00, 's', '1')), Rules.WIRE_VARINT, "session_id"),
        Arguments.of("length past the message", replacing(2, bytes(0x12, 0xff, 0x7f, 's', '1')), Rules.WIRE_TRUNCATED, "<input>"),
        Arguments.of("length past a nested message",
            replacing(9, len(9, bytes(0x0a, 0x05, 0x08, 0x01))), Rules.WIRE_TRUNCATED, "progress"),
        Arguments.of("fixed64 truncated in a trial",
            replacing(9, len(9, len(1, bytes(0x19, 0, 0, 0)))), Rules.WIRE_TRUNCATED, "progress.trial_log[0]"),
        Arguments.of("truncated in a list item",
            replacing(4, len(4, len(1, str("k")), len(2, listTerm(vfield(3, 2), vfield(3, 4), bytes(0x18)))) ),
            Rules.WIRE_TRUNCATED, "optimizer_opts[0].value.list_value.items[2]"),
        // Range.
        Arguments.of("bool 2", concat(BODY, len(14, vfield(2, 2))), Rules.WIRE_RANGE, "terminal_reason.bool_value"),
        Arguments.of("uint32 2^32", replacing(12, len(12, len(1, str("m")), vfield(2, 1L << 32))), Rules.WIRE_RANGE, "sampler_format.version"),
        Arguments.of("enum 2^31", replacing(13, vfield(13, 1L << 31)), Rules.WIRE_RANGE, "status"),
        Arguments.of("enum -1 not sign-extended", replacing(13, vfield(13, 0xffff_ffffL)), Rules.WIRE_RANGE, "status"),
        Arguments.of("int32 nanos 2^31", replacing(7, len(7, vfield(1, 5), vfield(2, 1L << 31))), Rules.WIRE_RANGE, "created_at.nanos"),
        Arguments.of("trial status 2^31 in the second trial",
            replacing(9, len(9, len(1, vfield(4, 1)), len(1, vfield(1, 1), vfield(4, 1L << 31)))),
            Rules.WIRE_RANGE, "progress.trial_log[1].status"),
        // UTF-8.
        Arguments.of("utf8 bad continuation", replacing(2, len(2, bytes(0xc3, 0x28))), Rules.WIRE_UTF8, "session_id"),
        Arguments.of("utf8 overlong", replacing(2, len(2, bytes(0xc0, 0x80))), Rules.WIRE_UTF8, "session_id"),
        Arguments.of("utf8 surrogate", replacing(2, len(2, bytes(0xed, 0xa0, 0x80))), Rules.WIRE_UTF8, "session_id"),
        Arguments.of("utf8 above U+10FFFF", replacing(2, len(2, bytes(0xf4, 0x90, 0x80, 0x80))), Rules.WIRE_UTF8, "session_id"),
        Arguments.of("utf8 cut", replacing(2, len(2, bytes('a', 0xe2, 0x82))), Rules.WIRE_UTF8, "session_id"),
        Arguments.of("utf8 in an option key", replacing(4, len(4, len(1, bytes(0xff)), len(2, vfield(3, 2)))), Rules.WIRE_UTF8, "optimizer_opts[0].key"),
        // Defaults.
        Arguments.of("empty format", replacing(1, len(1)), Rules.WIRE_DEFAULT, "format"),
        Arguments.of("empty sampler_blob", replacing(11, len(11)), Rules.WIRE_DEFAULT, "sampler_blob"),
        Arguments.of("direction 0", concat(BODY, vfield(15, 0)), Rules.WIRE_DEFAULT, "direction"),
        Arguments.of("seconds 0", replacing(7, len(7, vfield(1, 0))), Rules.WIRE_DEFAULT, "created_at.seconds"),
        Arguments.of("trial status 0",
            replacing(9, len(9, len(1, vfield(4, 1)), len(1, vfield(1, 1), vfield(4, 0)))),
            Rules.WIRE_DEFAULT, "progress.trial_log[1].status"),
        Arguments.of("trial_idx 0 written", replacing(9, len(9, len(1, vfield(1, 0)))), Rules.WIRE_DEFAULT, "progress.trial_log[0].trial_idx"),
        Arguments.of("enum -1 sign-extended passes the grammar", replacing(13, concat(tag(13, 0), TEN_BYTE_MINUS_ONE)), Rules.STATUS_KNOWN, "status"));
  }

  @Test
  void termDepthIsCheckedOnEnteringTheTerm() throws ResumeMismatch {
    // terminal_reason is depth 1: 24 nested lists are allowed, 25 are not.
    assertRoundTrips(concat(BODY, len(14, nested(24))));
    assertRefused(
        concat(BODY, len(14, nested(25))),
        Rules.TERM_DEPTH,
        "terminal_reason" + ".list_value.items[0]".repeat(24));
    // A stats value is at depth 2, so it may nest 23 levels.
    byte[] stats23 = len(5, len(1, len(1, len(6, str("k"))), len(2, nested(23))));
    byte[] stats24 = len(5, len(1, len(1, len(6, str("k"))), len(2, nested(24))));
    byte[] tail = concat(vfield(4, 1), vfield(5, 1), len(7, vfield(1, 1)));
    assertRefused(
        replacing(9, len(9, len(1, vfield(4, 1), stats24))),
        Rules.TERM_DEPTH,
        "progress.trial_log[0].stats.entries[0].value" + ".list_value.items[0]".repeat(23));
    // The depth is refused before anything inside the Term is read.
    assertRefused(
        concat(BODY, len(14, nestedAround(25, bytes(0xff)))),
        Rules.TERM_DEPTH,
        "terminal_reason" + ".list_value.items[0]".repeat(24));
    // 23 levels inside stats are a valid checkpoint.
    assertRoundTrips(replacing(9, len(9, len(1, vfield(4, 1), stats23), tail)));
  }

  /** A Term of {@code depth} nested lists around an empty list. */
  static byte[] nested(int depth) {
    byte[] term = len(9); // an empty list: depth 1
    for (int i = 1; i < depth; i++) {
      term = listTerm(term);
    }
    return term;
  }

  /** {@code depth} nested lists whose innermost item's content is {@code inner}. */
  static byte[] nestedAround(int depth, byte[] inner) {
    byte[] term = inner;
    for (int i = 1; i < depth; i++) {
      term = listTerm(term);
    }
    return term;
  }

  @Test
  void tenByteVarintsAndNegativeInt32Pass() throws ResumeMismatch {
    // int_value as a 10-byte varint with last byte 01; created_at.nanos -1 sign-extended.
    assertRoundTrips(concat(BODY, len(14, concat(tag(3, 0), TEN_BYTE_MINUS_ONE))));
    assertRefused(
        replacing(7, len(7, vfield(1, 5), concat(tag(2, 0), TEN_BYTE_MINUS_ONE))),
        Rules.TIMESTAMP_NANOS,
        "created_at.nanos");
  }

  @Test
  void presenceFieldsAreWrittenWhenZero() throws ResumeMismatch {
    // An empty TermNull, false, 0 and "" in a Term are written; empty stats too.
    assertRoundTrips(concat(BODY, len(14, len(1))));
    assertRoundTrips(concat(BODY, len(14, vfield(2, 0))));
    assertRoundTrips(concat(BODY, len(14, len(6))));
    assertRoundTrips(concat(BODY, len(14, listTerm())));
  }

  // --- unknown fields --------------------------------------------------------------------------

  @Test
  void unknownFieldsOfEveryWireTypeAreKeptByteForByte() throws ResumeMismatch {
    byte[] unknown =
        concat(
            vfield(9, 1),
            vfield(9, 0), // an unknown field may repeat with the same wire type, 0 included
            tag(10, 1),
            bytes(1, 2, 3, 4, 5, 6, 7, 8),
            len(11, bytes(0xff, 0x00)), // opaque: not UTF-8, not a message
            len(11),
            tag(12, 5),
            bytes(9, 9, 9, 9),
            concat(tag(1000, 0), TEN_BYTE_MINUS_ONE));
    Progress progress = BASE.getProgress();
    byte[] trial0 = progress.getTrialLog(0).toByteArray();
    byte[] trial1 = progress.getTrialLog(1).toByteArray();
    byte[] rest =
        progress.toBuilder().clearTrialLog().build().toByteArray(); // fields 2..7
    // created_at, then updated_at..., with unknown fields in a trial, in a Term, in a TermNull,
    // and at the top level.
    byte[] checkpoint =
        concat(
            before(7),
            len(7, vfield(1, 5), vfield(3, 7)),
            fieldsBetween(8, 8),
            len(9, len(1, trial0, unknown), len(1, trial1), rest, vfield(8, 1)),
            fieldsBetween(10, 13),
            len(14, len(1, vfield(2, 1)), len(20, str("x"))),
            vfield(16, 1),
            len(17, str("new")));
    assertRoundTrips(checkpoint);
    Checkpoint cp = Checkpoints.decode(Grammar.withTrailer(checkpoint));
    TrialLogEntry entry = cp.getProgress().getTrialLog(0);
    assertEquals(5, entry.getUnknownFields().asMap().size());
    assertEquals(2, entry.getUnknownFields().getField(9).getVarintList().size());
    assertArrayEquals(Grammar.withTrailer(checkpoint), Checkpoints.encode(cp));
  }

  /** The base checkpoint's fields {@code from..to}, serialized. */
  static byte[] fieldsBetween(int from, int to) {
    Checkpoint.Builder b = BASE.toBuilder();
    for (FieldDescriptor fd : Checkpoint.getDescriptor().getFields()) {
      if (fd.getNumber() < from || fd.getNumber() > to) {
        b.clearField(fd);
      }
    }
    return b.build().toByteArray();
  }

  @Test
  void encodeOfDecodeIsTheInput() throws ResumeMismatch {
    Checkpoint.Builder b = BASE.toBuilder();
    b.getProgressBuilder()
        .getTrialLogBuilder(0)
        .setStats(TermMap.newBuilder().addEntries(CheckpointsTest.entry(CheckpointsTest.str("a"), CheckpointsTest.dbl(1.5))));
    b.setTerminalReason(CheckpointsTest.nestedList(24));
    byte[] bytes = Checkpoints.encode(b.build());
    assertArrayEquals(bytes, Checkpoints.encode(Checkpoints.decode(bytes)));
    assertArrayEquals(bytes, Checkpoints.reencode(bytes));
  }

  // --- the weight ------------------------------------------------------------------------------

  /** A checkpoint whose trial log holds {@code k} empty entries (2 bytes, weight 104 each). */
  static byte[] emptyTrials(int k) {
    byte[] entries = new byte[2 * k];
    for (int i = 0; i < k; i++) {
      entries[2 * i] = 0x0a;
    }
    return concat(before(9), len(9, entries), after(9));
  }

  @Test
  void theWeightLimitIsExact() throws ResumeMismatch {
    // weight(k) - limit(k) grows by 104 - 7 * 2 = 90 per entry; find the first k over the limit.
    byte[] small = emptyTrials(0);
    long base = Grammar.weight(small, small.length);
    long baseLimit = Grammar.weightLimit(small.length + 9);
    int k = (int) ((baseLimit - base) / (104 - 2 * Grammar.WEIGHT_FACTOR)) - 10;
    byte[] under = null;
    byte[] over = null;
    for (; ; k++) {
      byte[] body = emptyTrials(k);
      long n = body.length + 9;
      if (Grammar.weight(body, body.length) > Grammar.weightLimit(n)) {
        over = body;
        break;
      }
      under = body;
    }
    assertTrue(under != null && over.length > 1_000_000, "k = " + k);
    ResumeMismatch e = refusal(over);
    assertEquals(Rules.INPUT_WEIGHT, e.rule(), e.getMessage());
    assertEquals("<input>", e.field());
    // One entry fewer is under the limit: the trials themselves are refused next (by §7).
    e = refusal(under);
    assertEquals(Rules.TRIAL_STATUS, e.rule(), e.getMessage());
    assertEquals("progress.trial_log[0].status", e.field());
  }

  @Test
  void theWeightLimitIsSevenTimesTheLengthPlus48MiB() {
    assertEquals(50_331_648L, Grammar.weightLimit(0));
    assertEquals(700 + 50_331_648L, Grammar.weightLimit(100));
    assertEquals(7 * 268_435_456L + 50_331_648L, Grammar.weightLimit(268_435_456L));
  }

  /** {@link #emptyTrials(int)} with a sampler blob of {@code blob} bytes (weight 0). */
  static byte[] emptyTrials(int k, int blob) {
    byte[] entries = new byte[2 * k];
    for (int i = 0; i < k; i++) {
      entries[2 * i] = 0x0a;
    }
    byte[] fill = new byte[blob];
    Arrays.fill(fill, (byte) 'x');
    Checkpoint.Builder b = BASE.toBuilder().setSamplerBlob(ByteString.copyFrom(fill));
    for (FieldDescriptor fd : Checkpoint.getDescriptor().getFields()) {
      if (fd.getNumber() <= 9) {
        b.clearField(fd);
      }
    }
    return concat(before(9), len(9, entries), b.build().toByteArray());
  }

  @Test
  void aWeightExactlyAtTheLimitPassesAndOneByteShorterIsRefused() throws ResumeMismatch {
    // The blob weighs nothing: each of its bytes moves the limit by 7, not the weight.
    byte[] small = emptyTrials(0, 1);
    long base = Grammar.weight(small, small.length);
    long factor = Grammar.WEIGHT_FACTOR;
    int k = (int) ((Grammar.weightLimit(0) - base) / (104 - 2 * factor)) - 40;
    int blob;
    for (; ; k++) {
      long excess = base + 104L * k - Grammar.weightLimit(0);
      if (excess % factor == 0) {
        blob = (int) (excess / factor) - (emptyTrials(k, 1).length + 9) + 1;
        assertTrue(blob <= 127, "the search started past the limit: k = " + k);
        if (blob >= 2) {
          break;
        }
      }
    }
    byte[] at = emptyTrials(k, blob);
    byte[] shorter = emptyTrials(k, blob - 1);
    long weight = base + 104L * k;
    assertEquals(weight, Grammar.weight(at, at.length));
    assertEquals(weight, Grammar.weight(shorter, shorter.length));
    assertEquals(weight, Grammar.weightLimit(at.length + 9));
    assertEquals(at.length - 1, shorter.length);
    assertEquals(weight, Grammar.weightLimit(shorter.length + 9) + factor);
    ResumeMismatch e = refusal(at);
    assertEquals(Rules.TRIAL_STATUS, e.rule(), e.getMessage());
    assertEquals("progress.trial_log[0].status", e.field());
    e = refusal(shorter);
    assertEquals(Rules.INPUT_WEIGHT, e.rule(), e.getMessage());
    assertEquals("<input>", e.field());
    assertTrue(
        e.getMessage()
            .contains(
                "weighs "
                    + weight
                    + ", more than 7 x "
                    + (shorter.length + 9)
                    + " bytes + 50,331,648 = "
                    + (weight - factor)),
        e.getMessage());
  }

  @Test
  void weightsArePerMessage() throws ResumeMismatch {
    // Checkpoint: none; created_at, updated_at, progress, started_at, sampler_format, the option
    // entry and its Term: 48 each; two trials: 104 each; stats, two entries, four Terms: 48 each.
    long expected = 7 * 48 + 2 * 104 + 7 * 48;
    assertEquals(expected, Grammar.weight(BODY, BODY.length));
    byte[] withNull = concat(BODY, len(14, len(1)));
    assertEquals(expected + 48 + 8, Grammar.weight(withNull, withNull.length));
  }

  // --- writing ---------------------------------------------------------------------------------

  @Test
  void encodeRefusesWhatDecodeRefuses() {
    InvalidCheckpoint e =
        assertThrows(
            InvalidCheckpoint.class,
            () -> Checkpoints.encode(BASE.toBuilder().setSessionId("").build()));
    assertEquals(Rules.SESSION_ID_REQUIRED, e.rule());
    assertEquals("session_id", e.path());
    e =
        assertThrows(
            InvalidCheckpoint.class,
            () ->
                Checkpoints.encode(
                    BASE.toBuilder().setTerminalReason(CheckpointsTest.nestedList(25)).build()));
    assertEquals(Rules.TERM_DEPTH, e.rule());
  }
}
