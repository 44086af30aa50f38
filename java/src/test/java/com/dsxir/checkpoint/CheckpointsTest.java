package com.dsxir.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.dsxir.optimizer_session.v1.Checkpoint;
import com.dsxir.optimizer_session.v1.Direction;
import com.dsxir.optimizer_session.v1.OptionEntry;
import com.dsxir.optimizer_session.v1.Progress;
import com.dsxir.optimizer_session.v1.SamplerFormat;
import com.dsxir.optimizer_session.v1.SessionStatus;
import com.dsxir.optimizer_session.v1.Term;
import com.dsxir.optimizer_session.v1.TermList;
import com.dsxir.optimizer_session.v1.TermMap;
import com.dsxir.optimizer_session.v1.TermMapEntry;
import com.dsxir.optimizer_session.v1.TermNull;
import com.dsxir.optimizer_session.v1.TrialLogEntry;
import com.dsxir.optimizer_session.v1.TrialStatus;
import com.google.protobuf.ByteString;
import com.google.protobuf.Timestamp;
import java.io.ByteArrayOutputStream;
import java.util.Arrays;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Hand-built checkpoints: canonical bytes, unknown fields, one refusal per rule of §7. */
class CheckpointsTest {
  static Timestamp ts(long seconds, int nanos) {
    return Timestamp.newBuilder().setSeconds(seconds).setNanos(nanos).build();
  }

  static Term str(String s) {
    return Term.newBuilder().setStringValue(s).build();
  }

  static Term dbl(double d) {
    return Term.newBuilder().setFloatValue(d).build();
  }

  static TermMapEntry entry(Term key, Term value) {
    return TermMapEntry.newBuilder().setKey(key).setValue(value).build();
  }

  static Term nestedList(int depth) {
    Term term = Term.newBuilder().setNullValue(TermNull.getDefaultInstance()).build();
    for (int i = 1; i < depth; i++) {
      term = Term.newBuilder().setListValue(TermList.newBuilder().addItems(term)).build();
    }
    return term;
  }

  static Checkpoint base() {
    return Checkpoint.newBuilder()
        .setFormat(Checkpoints.FORMAT_ID)
        .setSessionId("s1")
        .setOptimizer("demo.RandomSearch")
        .addOptimizerOpts(
            OptionEntry.newBuilder().setKey("seed").setValue(Term.newBuilder().setIntValue(7)))
        .setProgramModule("demo.program")
        .setTrainsetHash(ByteString.copyFrom(new byte[32]))
        .setCreatedAt(ts(1_700_000_000L, 123_000))
        .setUpdatedAt(ts(1_700_000_100L, 0))
        .setProgress(
            Progress.newBuilder()
                .addTrialLog(
                    TrialLogEntry.newBuilder()
                        .setTrialIdx(0)
                        .setScore(0.0)
                        .setStatus(TrialStatus.TRIAL_STATUS_OK))
                .addTrialLog(
                    TrialLogEntry.newBuilder()
                        .setTrialIdx(1)
                        .setStatus(TrialStatus.TRIAL_STATUS_ERROR)
                        .setStats(
                            TermMap.newBuilder()
                                .addEntries(entry(str("a"), dbl(-0.0)))
                                .addEntries(entry(str("b"), str("x")))))
                .setBestScore(0.0)
                .setBestTrialIdx(0)
                .setAttempts(3)
                .setCompleted(1)
                .setErrors(1)
                .setStartedAt(ts(1_700_000_000L, 0)))
        .setSamplerBlob(ByteString.copyFrom(new byte[] {1, 2, 3}))
        .setSamplerFormat(SamplerFormat.newBuilder().setModule("demo.RandomSearch").setVersion(1))
        .setStatus(SessionStatus.SESSION_STATUS_RUNNING)
        .build();
  }

  static boolean contains(byte[] haystack, byte[] needle) {
    for (int i = 0; i + needle.length <= haystack.length; i++) {
      if (Arrays.equals(haystack, i, i + needle.length, needle, 0, needle.length)) {
        return true;
      }
    }
    return false;
  }

  static String refusedField(Checkpoint cp) {
    ResumeMismatch e =
        assertThrows(ResumeMismatch.class, () -> Checkpoints.decode(Grammar.withTrailer(cp.toByteArray())));
    assertEquals("checkpoint_shape", e.reason());
    assertTrue(Rules.ALL.contains(e.rule()), e.getMessage());
    assertEquals(
        "checkpoint_shape: " + e.field() + ": " + e.detail() + " (rule " + e.rule() + ")",
        e.getMessage());
    return e.field();
  }

  @Test
  void validCheckpointRoundTrips() throws ResumeMismatch {
    Checkpoint cp = base();
    byte[] bytes = Checkpoints.encode(cp);
    Checkpoint back = Checkpoints.decode(bytes);
    assertEquals(cp, back);
    assertArrayEquals(bytes, Checkpoints.encode(back));
  }

  @Test
  void explicitZeroAndNegativeZeroAreWritten() {
    byte[] bytes = Checkpoints.encode(base());
    assertTrue(contains(bytes, new byte[] {0x19, 0, 0, 0, 0, 0, 0, 0, 0}), "score 0.0");
    assertTrue(contains(bytes, new byte[] {0x11, 0, 0, 0, 0, 0, 0, 0, 0}), "best_score 0.0");
    assertArrayEquals(
        new byte[] {0x29, 0, 0, 0, 0, 0, 0, 0, (byte) 0x80}, Checkpoints.termBytes(dbl(-0.0)));
    assertArrayEquals(
        new byte[] {0x18, 0}, Checkpoints.termBytes(Term.newBuilder().setIntValue(0).build()));
    assertArrayEquals(
        new byte[] {0x10, 0}, Checkpoints.termBytes(Term.newBuilder().setBoolValue(false).build()));
    assertArrayEquals(new byte[] {0x32, 0}, Checkpoints.termBytes(str("")));
    assertArrayEquals(
        new byte[] {0x0a, 0},
        Checkpoints.termBytes(
            Term.newBuilder().setNullValue(TermNull.getDefaultInstance()).build()));
  }

  @Test
  void nonCanonicalInputIsRefused() {
    byte[] canonical = base().toByteArray();
    int formatLength = 2 + Checkpoints.FORMAT_ID.length();
    ByteArrayOutputStream shuffled = new ByteArrayOutputStream();
    shuffled.write(canonical, formatLength, canonical.length - formatLength);
    shuffled.write(canonical, 0, formatLength); // format last
    assertFalse(Arrays.equals(canonical, shuffled.toByteArray()));
    ResumeMismatch e =
        assertThrows(
            ResumeMismatch.class,
            () -> Checkpoints.decode(Grammar.withTrailer(shuffled.toByteArray())));
    assertEquals(Rules.WIRE_ORDER, e.rule());
    assertEquals("<input>", e.field());
  }

  @Test
  void unknownFieldsAreKeptAndWrittenLast() throws ResumeMismatch {
    byte[] canonical = base().toByteArray();
    // Field 99 (varint 1) and field 100 ("hi") after the known fields.
    byte[] extra = {(byte) 0x98, 0x06, 0x01, (byte) 0xa2, 0x06, 0x02, 'h', 'i'};
    byte[] newer = Arrays.copyOf(canonical, canonical.length + extra.length);
    System.arraycopy(extra, 0, newer, canonical.length, extra.length);
    byte[] input = Grammar.withTrailer(newer);
    assertArrayEquals(input, Checkpoints.encode(Checkpoints.decode(input)));
    // Before the known fields they break the order of field numbers.
    byte[] first = Arrays.copyOf(extra, extra.length + canonical.length);
    System.arraycopy(canonical, 0, first, extra.length, canonical.length);
    ResumeMismatch e =
        assertThrows(
            ResumeMismatch.class, () -> Checkpoints.decode(Grammar.withTrailer(first)));
    assertEquals(Rules.WIRE_ORDER, e.rule());
  }

  /** Direction (field 15, v1.1): lower is written last; higher, the default, is not written. */
  @Test
  void directionIsWrittenAfterTerminalReasonUnlessHigher() throws ResumeMismatch {
    Checkpoint cp = base();
    assertEquals(Direction.DIRECTION_HIGHER, cp.getDirection());
    byte[] higher = cp.toByteArray();
    assertArrayEquals(Grammar.withTrailer(higher), Checkpoints.encode(cp));
    byte[] lower =
        Checkpoints.encode(cp.toBuilder().setDirection(Direction.DIRECTION_LOWER).build());
    assertArrayEquals(Grammar.withTrailer(withSuffix(higher, 0x78, 0x01)), lower);
    assertEquals(Direction.DIRECTION_LOWER, Checkpoints.decode(lower).getDirection());
    assertArrayEquals(lower, Checkpoints.reencode(lower));
    // An explicit 0 on the wire is a default written: refused.
    ResumeMismatch e =
        assertThrows(
            ResumeMismatch.class,
            () -> Checkpoints.decode(Grammar.withTrailer(withSuffix(higher, 0x78, 0x00))));
    assertEquals(
        "checkpoint_shape: direction: the default value 0 is written (rule wire.default)",
        e.getMessage());
    e =
        assertThrows(
            ResumeMismatch.class,
            () -> Checkpoints.decode(Grammar.withTrailer(withSuffix(higher, 0x78, 0x02))));
    assertEquals(
        "checkpoint_shape: direction: unknown direction 2 (rule direction.known)", e.getMessage());
  }

  private static byte[] withSuffix(byte[] bytes, int... suffix) {
    byte[] out = Arrays.copyOf(bytes, bytes.length + suffix.length);
    for (int i = 0; i < suffix.length; i++) {
      out[bytes.length + i] = (byte) suffix[i];
    }
    return out;
  }

  @Test
  void inputLimits() {
    ResumeMismatch e =
        assertThrows(
            ResumeMismatch.class,
            () -> Checkpoints.decode(new byte[Checkpoints.MAX_INPUT_BYTES + 1]));
    assertEquals("<input>", e.field());
    assertEquals(Rules.INPUT_TOO_LARGE, e.rule());
    for (byte[] cut : new byte[][] {{0x0a, 0x05, 'a'}, {}, base().toByteArray()}) {
      e = assertThrows(ResumeMismatch.class, () -> Checkpoints.decode(cut));
      assertEquals("<input>", e.field());
      assertEquals(Rules.INPUT_TRAILER, e.rule());
    }
    e =
        assertThrows(
            ResumeMismatch.class, () -> Checkpoints.decode(Grammar.withTrailer(new byte[0])));
    assertEquals("format", e.field());
  }

  @ParameterizedTest
  @MethodSource
  void formatIdentifier(String id, boolean ok) {
    Checkpoint cp = base().toBuilder().setFormat(id).build();
    if (ok) {
      assertEquals(cp, assertDoesNotRefuse(cp));
    } else {
      assertEquals("format", refusedField(cp));
    }
  }

  static Stream<Arguments> formatIdentifier() {
    return Stream.of(
        Arguments.of("dsxir.optimizer_session.checkpoint/v1.0", true),
        Arguments.of("dsxir.optimizer_session.checkpoint/v1.17", true),
        Arguments.of("dsxir.optimizer_session.checkpoint/v2.0", false),
        Arguments.of("dsxir.optimizer_session.checkpoint/v0.9", false),
        Arguments.of("dsxir.optimizer_session.checkpoint/v01.0", false),
        Arguments.of("dsxir.optimizer_session.checkpoint/v1.00", false),
        Arguments.of("dsxir.optimizer_session.checkpoint/v1", false),
        Arguments.of("dsxir.optimizer_session.checkpoint/v1.0\n", false),
        Arguments.of("other/v1.0", false),
        Arguments.of("", false));
  }

  static Checkpoint assertDoesNotRefuse(Checkpoint cp) {
    try {
      return Checkpoints.decode(Checkpoints.encode(cp));
    } catch (ResumeMismatch e) {
      throw new AssertionError("refused: " + e.getMessage(), e);
    }
  }

  static Arguments edit(String field, UnaryOperator<Checkpoint.Builder> change) {
    return Arguments.of(field, change);
  }

  static Progress.Builder progress(Checkpoint.Builder b) {
    return b.getProgressBuilder();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource
  void checkpointRulesNameTheirField(String field, UnaryOperator<Checkpoint.Builder> change) {
    assertEquals(field, refusedField(change.apply(base().toBuilder()).build()));
  }

  static Stream<Arguments> checkpointRulesNameTheirField() {
    return Stream.of(
        edit("session_id", b -> b.setSessionId("")),
        edit("optimizer", b -> b.setOptimizer("")),
        edit("optimizer_opts[0].key", b -> b.setOptimizerOpts(0, b.getOptimizerOpts(0).toBuilder().setKey(""))),
        edit("optimizer_opts[0].value", b -> b.setOptimizerOpts(0, b.getOptimizerOpts(0).toBuilder().clearValue())),
        edit("optimizer_opts[0].value", b -> b.setOptimizerOpts(0, b.getOptimizerOpts(0).toBuilder().setValue(Term.getDefaultInstance()))),
        edit("program_module", b -> b.setProgramModule("")),
        edit("trainset_hash", b -> b.setTrainsetHash(ByteString.copyFrom(new byte[33]))),
        edit("created_at", b -> b.clearCreatedAt()),
        edit("created_at.nanos", b -> b.setCreatedAt(ts(0, -1))),
        edit("updated_at.seconds", b -> b.setUpdatedAt(ts(253_402_300_800L, 0))),
        edit("updated_at.seconds", b -> b.setUpdatedAt(ts(-62_135_596_801L, 0))),
        edit("progress", b -> b.clearProgress()),
        edit("progress.trial_log[1].trial_idx", b -> {
          progress(b).getTrialLogBuilder(1).setTrialIdx(-1L);
          return b;
        }),
        edit("progress.trial_log[0].score", b -> {
          progress(b).getTrialLogBuilder(0).setScore(Double.NaN);
          return b;
        }),
        edit("progress.trial_log[0].status", b -> {
          progress(b).getTrialLogBuilder(0).setStatusValue(0);
          return b;
        }),
        edit("progress.trial_log[1].status", b -> {
          progress(b).getTrialLogBuilder(1).setStatusValue(3);
          return b;
        }),
        edit("progress.trial_log[1].stats.entries[1].key", b -> {
          TermMap.Builder stats = progress(b).getTrialLogBuilder(1).getStatsBuilder();
          TermMapEntry first = stats.getEntries(0);
          stats.setEntries(0, stats.getEntries(1)).setEntries(1, first);
          return b;
        }),
        edit("progress.trial_log[1].error.entries[0]", b -> {
          progress(b).getTrialLogBuilder(1).getErrorBuilder().addEntries(TermMapEntry.newBuilder().setKey(str("k")));
          return b;
        }),
        edit("progress.started_at", b -> {
          progress(b).clearStartedAt();
          return b;
        }),
        edit("progress.best_score", b -> {
          progress(b).setBestScore(Double.NaN);
          return b;
        }),
        edit("progress.best_score", b -> {
          progress(b).clearBestScore();
          return b;
        }),
        edit("progress.best_trial_idx", b -> {
          progress(b).clearBestTrialIdx();
          return b;
        }),
        edit("progress.best_trial_idx", b -> {
          progress(b).setBestTrialIdx(-1L); // 2^64-1: past the log, not negative
          return b;
        }),
        edit("progress.best_trial_idx", b -> {
          progress(b).setBestTrialIdx(1);
          return b;
        }),
        edit("progress.best_trial_idx", b -> {
          progress(b).setBestScore(-0.0);
          return b;
        }),
        edit("progress.completed", b -> {
          progress(b).setCompleted(-1L);
          return b;
        }),
        edit("progress.errors", b -> {
          progress(b).setErrors(0);
          return b;
        }),
        edit("progress.attempts", b -> {
          progress(b).setAttempts(1);
          return b;
        }),
        edit("best_program_artifact.entries[0].value.float_value", b -> b.setBestProgramArtifact(
            TermMap.newBuilder().addEntries(entry(str("k"), dbl(Double.NaN))))),
        edit("sampler_format", b -> b.clearSamplerFormat()),
        edit("sampler_format.module", b -> b.setSamplerFormat(b.getSamplerFormat().toBuilder().setModule(""))),
        edit("sampler_format.version", b -> b.setSamplerFormat(b.getSamplerFormat().toBuilder().setVersion(0))),
        edit("status", b -> b.setStatusValue(0)),
        edit("status", b -> b.setStatusValue(6)),
        edit("terminal_reason", b -> b.setTerminalReason(Term.getDefaultInstance())),
        edit("direction", b -> b.setDirectionValue(2)),
        edit("direction", b -> b.setDirectionValue(-1)),
        edit("terminal_reason", b -> b.setDirectionValue(2).setTerminalReason(Term.getDefaultInstance())),
        edit("session_id", b -> b.setSessionId("").setStatusValue(0)));
  }

  @Test
  void attemptsAreComparedUnsigned() {
    Checkpoint.Builder b = base().toBuilder();
    progress(b).setAttempts(-1L); // 2^64-1 attempts is not below completed + errors
    assertDoesNotRefuse(b.build());
  }

  @ParameterizedTest(name = "{1}")
  @MethodSource
  void termRulesNameTheirField(Term term, String field) {
    assertEquals(field, refusedField(base().toBuilder().setTerminalReason(term).build()));
  }

  static Term bigint(int... bytes) {
    byte[] raw = new byte[bytes.length];
    for (int i = 0; i < bytes.length; i++) {
      raw[i] = (byte) bytes[i];
    }
    return Term.newBuilder().setBigintValue(ByteString.copyFrom(raw)).build();
  }

  static Stream<Arguments> termRulesNameTheirField() {
    return Stream.of(
        Arguments.of(dbl(Double.NaN), "terminal_reason.float_value"),
        Arguments.of(dbl(Double.longBitsToDouble(0x7FF8000000000001L)), "terminal_reason.float_value"),
        Arguments.of(bigint(), "terminal_reason.bigint_value"),
        Arguments.of(bigint(0x7f), "terminal_reason.bigint_value"),
        Arguments.of(bigint(0, 0, 0, 0, 0, 0, 0, 0, 0x80), "terminal_reason.bigint_value"),
        Arguments.of(bigint(0x00, 0x7f, 0, 0, 0, 0, 0, 0, 0), "terminal_reason.bigint_value"),
        Arguments.of(bigint(0xff, 0x80, 0, 0, 0, 0, 0, 0, 0), "terminal_reason.bigint_value"),
        Arguments.of(
            Term.newBuilder()
                .setTupleValue(TermList.newBuilder().addItems(str("ok")).addItems(Term.getDefaultInstance()))
                .build(),
            "terminal_reason.tuple_value.items[1]"),
        Arguments.of(
            Term.newBuilder()
                .setMapValue(TermMap.newBuilder().addEntries(entry(str("k"), str("v"))).addEntries(entry(str("k"), str("w"))))
                .build(),
            "terminal_reason.map_value.entries[1].key"),
        Arguments.of(
            Term.newBuilder()
                .setMapValue(TermMap.newBuilder().addEntries(TermMapEntry.newBuilder().setKey(str("k"))))
                .build(),
            "terminal_reason.map_value.entries[0]"),
        Arguments.of(nestedList(25), "terminal_reason" + ".list_value.items[0]".repeat(24)));
  }

  @Test
  void termValuesThatAreKept() {
    Term[] ok = {
      nestedList(24),
      dbl(Double.POSITIVE_INFINITY),
      dbl(Double.NEGATIVE_INFINITY),
      bigint(0x00, 0x80, 0, 0, 0, 0, 0, 0, 0),
      bigint(0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
      // A proper prefix sorts first: "a" < "ab".
      Term.newBuilder()
          .setMapValue(TermMap.newBuilder().addEntries(entry(str("a"), str("1"))).addEntries(entry(str("ab"), str("2"))))
          .build(),
      // Unsigned byte order: string (0x32) sorts before atom (0x42), int 1 (0x18 02) first.
      Term.newBuilder()
          .setMapValue(
              TermMap.newBuilder()
                  .addEntries(entry(Term.newBuilder().setIntValue(1).build(), str("i")))
                  .addEntries(entry(str("z"), str("s")))
                  .addEntries(entry(Term.newBuilder().setAtomValue("a").build(), str("a"))))
          .build(),
    };
    for (Term term : ok) {
      Checkpoint cp = base().toBuilder().setTerminalReason(term).build();
      assertEquals(cp, assertDoesNotRefuse(cp));
    }
  }

  @Test
  void termMapFieldsCountAsDepthOne() {
    // stats is a map of depth 1, so a value in it may nest 23 more levels.
    Checkpoint.Builder b = base().toBuilder();
    TrialLogEntry.Builder trial = progress(b).getTrialLogBuilder(1);
    trial.setStats(TermMap.newBuilder().addEntries(entry(str("deep"), nestedList(23))));
    assertDoesNotRefuse(b.build());
    trial.setStats(TermMap.newBuilder().addEntries(entry(str("deep"), nestedList(24))));
    assertTrue(
        refusedField(b.build())
            .startsWith("progress.trial_log[1].stats.entries[0].value.list_value.items[0]"));
  }
}
