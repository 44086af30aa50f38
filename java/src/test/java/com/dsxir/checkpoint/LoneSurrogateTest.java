package com.dsxir.checkpoint;

import static com.dsxir.checkpoint.CheckpointsTest.base;
import static com.dsxir.checkpoint.CheckpointsTest.dbl;
import static com.dsxir.checkpoint.CheckpointsTest.entry;
import static com.dsxir.checkpoint.CheckpointsTest.str;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.dsxir.optimizer_session.v1.Checkpoint;
import com.dsxir.optimizer_session.v1.Term;
import com.dsxir.optimizer_session.v1.TermList;
import com.dsxir.optimizer_session.v1.TermMap;
import com.dsxir.optimizer_session.v1.TrialLogEntry;
import com.dsxir.optimizer_session.v1.TrialStatus;
import java.nio.charset.StandardCharsets;
import java.util.function.BiFunction;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A Java string may hold a lone surrogate, which has no UTF-8 form (protobuf-java would write
 * {@code ?}): every writer refuses it with rule {@code wire.utf8} at the field path a reader gives
 * for the same field holding ill-formed UTF-8 (FORMAT.md §2.2, §2.3, §2.5).
 */
class LoneSurrogateTest {
  /** A 3-byte character standing in for the surrogate in the bytes given to the reader. */
  private static final String STAND_IN = "\u4e00"; // E4 B8 80

  private static final byte[] STAND_IN_UTF8 = STAND_IN.getBytes(StandardCharsets.UTF_8);

  /** The 3 bytes U+D800 would take in UTF-8 if surrogates were allowed. */
  private static final byte[] SURROGATE_BYTES = {(byte) 0xed, (byte) 0xa0, (byte) 0x80};

  private static final String DEEP_PATH;
  private static final int DEEP = Checkpoints.MAX_TERM_DEPTH - 1;

  static {
    StringBuilder path = new StringBuilder("optimizer_opts[0].value");
    for (int i = 1; i < DEEP; i++) {
      path.append(".list_value.items[0]");
    }
    DEEP_PATH = path.append(".map_value.entries[0].value.atom_value").toString();
  }

  /** A list of lists, {@code DEEP} Terms deep, holding a map whose one value is the atom. */
  static Term deep(String text) {
    Term term =
        Term.newBuilder()
            .setMapValue(
                TermMap.newBuilder()
                    .addEntries(entry(str("k"), Term.newBuilder().setAtomValue(text).build())))
            .build();
    for (int i = 1; i < DEEP; i++) {
      term = Term.newBuilder().setListValue(TermList.newBuilder().addItems(term)).build();
    }
    return term;
  }

  /** Puts a string at one place of a checkpoint. */
  interface Place extends BiFunction<Checkpoint.Builder, String, Checkpoint.Builder> {}

  static Arguments place(String path, Place f) {
    return Arguments.of(path, f);
  }

  static Checkpoint.Builder option(Checkpoint.Builder b, String key, Term value) {
    return b.setOptimizerOpts(0, b.getOptimizerOpts(0).toBuilder().setKey(key).setValue(value));
  }

  static Stream<Arguments> places() {
    return Stream.of(
        place("session_id", (b, s) -> b.setSessionId("s" + s)),
        place("optimizer", (b, s) -> b.setOptimizer(s + "x")),
        place("optimizer_opts[0].key", (b, s) -> option(b, s, str("v"))),
        place("optimizer_opts[0].value.string_value", (b, s) -> option(b, "k", str(s))),
        place(DEEP_PATH, (b, s) -> option(b, "k", deep(s))),
        place("program_module", (b, s) -> b.setProgramModule("a." + s)),
        place(
            "progress.trial_log[0].candidate_id",
            (b, s) -> {
              b.getProgressBuilder().getTrialLogBuilder(0).setCandidateId(s);
              return b;
            }),
        place(
            "progress.trial_log[1].error_class",
            (b, s) -> {
              b.getProgressBuilder().getTrialLogBuilder(1).setErrorClass("E" + s);
              return b;
            }),
        place(
            "progress.trial_log[1].stats.entries[0].key.atom_value",
            (b, s) -> {
              b.getProgressBuilder()
                  .getTrialLogBuilder(1)
                  .getStatsBuilder()
                  .setEntries(0, entry(Term.newBuilder().setAtomValue(s).build(), dbl(1.0)));
              return b;
            }),
        place(
            "progress.trial_log[1].stats.entries[1].value.string_value",
            (b, s) -> {
              b.getProgressBuilder()
                  .getTrialLogBuilder(1)
                  .getStatsBuilder()
                  .setEntries(1, entry(str("b"), str(s)));
              return b;
            }),
        place(
            "best_program_artifact.entries[0].key.string_value",
            (b, s) ->
                b.setBestProgramArtifact(
                    TermMap.newBuilder().addEntries(entry(str(s), dbl(1.0))))),
        place(
            "sampler_format.module",
            (b, s) -> b.setSamplerFormat(b.getSamplerFormat().toBuilder().setModule(s))),
        place(
            "terminal_reason.list_value.items[1].string_value",
            (b, s) ->
                b.setTerminalReason(
                    Term.newBuilder()
                        .setListValue(
                            TermList.newBuilder().addItems(str("ok")).addItems(str(s))))));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("places")
  void writersRefuseALoneSurrogateWhereTheReaderRefusesItsBytes(String path, Place place) {
    String[] lone = {"\ud800", "\udfff", "x\udc00", "\udbff\ud800", "\udc00\ud800", "\ud83d"};
    for (String text : lone) {
      Checkpoint cp = place.apply(base().toBuilder(), text).build();
      InvalidCheckpoint e = assertThrows(InvalidCheckpoint.class, () -> Checkpoints.encode(cp));
      assertEquals(path, e.path(), e.getMessage());
      assertEquals(Rules.WIRE_UTF8, e.rule());
      assertTrue(e.getMessage().endsWith(" (rule wire.utf8)"), e.getMessage());
      ResumeMismatch v = assertThrows(ResumeMismatch.class, () -> Checkpoints.validate(cp));
      assertEquals(path, v.field());
      assertEquals(Rules.WIRE_UTF8, v.rule());
      ResumeMismatch w = assertThrows(ResumeMismatch.class, () -> StoreFile.write(1, cp));
      assertEquals(path, w.field());
      assertEquals(Rules.WIRE_UTF8, w.rule());
      assertThrows(ResumeMismatch.class, () -> StoreFile.encodeSummary(cp));
    }
    // The reader, given the bytes U+D800 would take at the same place, names the same field.
    byte[] body = place.apply(base().toBuilder(), STAND_IN).build().toByteArray();
    int at = indexOf(body, STAND_IN_UTF8);
    assertTrue(at >= 0 && indexOf(body, STAND_IN_UTF8, at + 1) < 0, "one stand-in in the body");
    System.arraycopy(SURROGATE_BYTES, 0, body, at, SURROGATE_BYTES.length);
    ResumeMismatch r =
        assertThrows(ResumeMismatch.class, () -> Checkpoints.decode(Grammar.withTrailer(body)));
    assertEquals(path, r.field(), r.getMessage());
    assertEquals(Rules.WIRE_UTF8, r.rule());
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("places")
  void surrogatePairsAreWrittenAsUtf8(String path, Place place) throws ResumeMismatch {
    String pair = "\ud83d\ude00"; // U+1F600
    Checkpoint cp = place.apply(base().toBuilder(), pair).build();
    byte[] bytes;
    try {
      bytes = Checkpoints.encode(cp);
    } catch (InvalidCheckpoint e) {
      // A stats or artifact key edited in place may now be out of order: only that is allowed.
      assertEquals(Rules.TERM_MAP_ORDER, e.rule(), e.getMessage());
      return;
    }
    byte[] utf8 = {(byte) 0xf0, (byte) 0x9f, (byte) 0x98, (byte) 0x80};
    assertTrue(CheckpointsTest.contains(bytes, utf8));
    assertArrayEquals(bytes, Checkpoints.encode(Checkpoints.decode(bytes)));
  }

  @Test
  void theWalkReportsTheFirstRefusalInItsOrder() {
    // Emptiness of a field comes before its text; a trial's candidate_id after its stats.
    Checkpoint.Builder b = base().toBuilder();
    TrialLogEntry.Builder trial = b.getProgressBuilder().getTrialLogBuilder(1);
    trial.setCandidateId("\ud800");
    trial.getStatsBuilder().setEntries(0, entry(str("a"), dbl(Double.NaN)));
    InvalidCheckpoint e =
        assertThrows(InvalidCheckpoint.class, () -> Checkpoints.encode(b.build()));
    assertEquals("progress.trial_log[1].stats.entries[0].value.float_value", e.path());
    assertEquals(Rules.FLOAT_NAN, e.rule());
    trial.getStatsBuilder().setEntries(0, entry(str("a"), dbl(0.5)));
    trial.setStatus(TrialStatus.TRIAL_STATUS_OK);
    e = assertThrows(InvalidCheckpoint.class, () -> Checkpoints.encode(b.build()));
    assertEquals("progress.trial_log[1].candidate_id", e.path());
    assertEquals(Rules.WIRE_UTF8, e.rule());
    // The format identifier is ASCII: one holding a lone surrogate is not one.
    Checkpoint badFormat = base().toBuilder().setFormat("dsxir\ud800").build();
    e = assertThrows(InvalidCheckpoint.class, () -> Checkpoints.encode(badFormat));
    assertEquals("format", e.path());
    assertEquals(Rules.FORMAT_SHAPE, e.rule());
  }

  @Test
  void termBytesRefusesALoneSurrogate() {
    Term key = Term.newBuilder().setAtomValue("\udc00").build();
    Term map =
        Term.newBuilder()
            .setMapValue(
                TermMap.newBuilder()
                    .addEntries(entry(str("a"), str("b")))
                    .addEntries(entry(key, str("c"))))
            .build();
    Term term =
        Term.newBuilder()
            .setTupleValue(TermList.newBuilder().addItems(str("x")).addItems(map))
            .build();
    InvalidCheckpoint e = assertThrows(InvalidCheckpoint.class, () -> Checkpoints.termBytes(term));
    assertEquals("term.tuple_value.items[1].map_value.entries[1].key.atom_value", e.path());
    assertEquals(Rules.WIRE_UTF8, e.rule());
    e = assertThrows(InvalidCheckpoint.class, () -> Checkpoints.termBytes(deep("a\ud800b")));
    assertEquals(DEEP_PATH.replace("optimizer_opts[0].value", "term"), e.path());
    Term list =
        Term.newBuilder().setListValue(TermList.newBuilder().addItems(str("\ud800"))).build();
    e = assertThrows(InvalidCheckpoint.class, () -> Checkpoints.termBytes(list));
    assertEquals("term.list_value.items[0].string_value", e.path());
    assertArrayEquals(
        new byte[] {0x32, 0x04, (byte) 0xf0, (byte) 0x9f, (byte) 0x98, (byte) 0x80},
        Checkpoints.termBytes(str("\ud83d\ude00")));
  }

  static int indexOf(byte[] haystack, byte[] needle) {
    return indexOf(haystack, needle, 0);
  }

  static int indexOf(byte[] haystack, byte[] needle, int from) {
    outer:
    for (int i = from; i + needle.length <= haystack.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (haystack[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }
}
