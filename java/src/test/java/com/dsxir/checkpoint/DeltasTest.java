package com.dsxir.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.dsxir.optimizer_session.v1.Checkpoint;
import com.dsxir.optimizer_session.v1.CheckpointDelta;
import com.dsxir.optimizer_session.v1.OptionEntry;
import com.dsxir.optimizer_session.v1.Progress;
import com.dsxir.optimizer_session.v1.SamplerFormat;
import com.dsxir.optimizer_session.v1.SessionStatus;
import com.dsxir.optimizer_session.v1.Term;
import com.dsxir.optimizer_session.v1.TermMap;
import com.dsxir.optimizer_session.v1.TrialLogEntry;
import com.dsxir.optimizer_session.v1.TrialStatus;
import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.UnknownFieldSet;
import java.io.ByteArrayOutputStream;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Hand-built deltas: one refusal per rule of FORMAT.md §13, round trips, applying. */
class DeltasTest {
  private static final int ALL_KEPT = Deltas.KEEPABLE;

  private static int bit(int... fields) {
    int bits = 0;
    for (int f : fields) {
      bits |= 1 << f;
    }
    return bits;
  }

  /** The base of CheckpointsTest (two trials) with the third trial recorded and paused. */
  private static Checkpoint next() {
    Checkpoint base = CheckpointsTest.base();
    Checkpoint.Builder b = base.toBuilder().setUpdatedAt(CheckpointsTest.ts(1_700_000_200L, 5));
    b.setStatus(SessionStatus.SESSION_STATUS_PAUSED);
    b.getProgressBuilder()
        .addTrialLog(
            TrialLogEntry.newBuilder()
                .setTrialIdx(2)
                .setScore(0.5)
                .setStatus(TrialStatus.TRIAL_STATUS_OK)
                .setDurationMs(12))
        .setBestScore(0.5)
        .setBestTrialIdx(2)
        .setAttempts(4)
        .setCompleted(2);
    return b.build();
  }

  /**
   * A delta of {@code next} over {@code base} keeping those fields of {@code kept} that hold the
   * same value in both, as FORMAT.md §13.2 "Writing a delta" describes.
   */
  private static CheckpointDelta between(Checkpoint base, Checkpoint next, int candidates) {
    int kept = 0;
    for (int k = 0; k < 32; k++) {
      if ((candidates & (1 << k)) != 0) {
        FieldDescriptor field = Checkpoint.getDescriptor().findFieldByNumber(k);
        if (field.isRepeated()
            ? base.getField(field).equals(next.getField(field))
            : base.hasField(field) == next.hasField(field)
                && base.getField(field).equals(next.getField(field))) {
          kept |= 1 << k;
        }
      }
    }
    Checkpoint.Builder head = next.toBuilder();
    for (int k = 0; k < 32; k++) {
      if ((kept & (1 << k)) != 0) {
        head.clearField(Checkpoint.getDescriptor().findFieldByNumber(k));
      }
    }
    int baseTrials = base.getProgress().getTrialLogCount();
    if (next.hasProgress()) {
      Progress.Builder progress = head.getProgressBuilder().clearTrialLog();
      progress.addAllTrialLog(
          next.getProgress()
              .getTrialLogList()
              .subList(baseTrials, next.getProgress().getTrialLogCount()));
    }
    return CheckpointDelta.newBuilder()
        .setFormat(Deltas.FORMAT_ID)
        .setBaseGeneration(7)
        .setBaseTrials(baseTrials)
        .setHead(head)
        .setKept(kept)
        .build();
  }

  /** The sealed bytes of a delta as protobuf-java writes it, with no check. */
  private static byte[] sealed(CheckpointDelta delta) {
    return Grammar.withTrailer(delta.toByteArray());
  }

  private static CheckpointDelta valid() {
    return between(CheckpointsTest.base(), next(), ALL_KEPT);
  }

  /**
   * The refusal {@code run} throws, asserted to be a {@code type} (InvalidDelta or ResumeMismatch)
   * naming {@code rule}.
   */
  private static <T extends Exception> T refusal(Class<T> type, String rule, Executable run) {
    T e = assertThrows(type, run);
    String named = e instanceof InvalidDelta d ? d.rule() : ((ResumeMismatch) e).rule();
    assertEquals(rule, named, e.getMessage());
    return e;
  }

  /** As {@link #refusal(Class, String, Executable)}, asserted as well to name {@code field}. */
  private static <T extends Exception> T refusal(
      Class<T> type, String rule, String field, Executable run) {
    T e = refusal(type, rule, run);
    String named = e instanceof InvalidDelta d ? d.field() : ((ResumeMismatch) e).field();
    assertEquals(field, named, e.getMessage());
    return e;
  }

  @Test
  void roundTripAndApply() throws Exception {
    Checkpoint base = CheckpointsTest.base();
    Checkpoint next = next();
    CheckpointDelta delta = valid();
    byte[] bytes = Deltas.encode(delta);
    assertArrayEquals(sealed(delta), bytes, "canonical bytes are the deterministic encoding");
    CheckpointDelta read = Deltas.decode(bytes);
    assertEquals(delta, read);
    assertArrayEquals(bytes, Deltas.encode(read));
    assertArrayEquals(bytes, Deltas.reencode(bytes));
    assertEquals(ALL_KEPT & ~bit(13), read.getKept()); // the status changed
    // The head holds only what changed: no option, no blob, one trial entry.
    assertEquals(0, read.getHead().getOptimizerOptsCount());
    assertTrue(read.getHead().getSamplerBlob().isEmpty());
    assertEquals(1, read.getHead().getProgress().getTrialLogCount());
    assertEquals(next, Deltas.apply(base, read));
    byte[] baseBytes = Checkpoints.encode(base);
    assertArrayEquals(Checkpoints.encode(next), Deltas.apply(baseBytes, bytes));
    // The delta is smaller than the checkpoint it makes.
    assertTrue(bytes.length < Checkpoints.encode(next).length);
  }

  @Test
  void nothingKeptAndEverythingKeptGiveTheSameCheckpoint() throws Exception {
    Checkpoint base = CheckpointsTest.base();
    Checkpoint next = next();
    for (int kept : new int[] {0, bit(3), bit(4, 11), ALL_KEPT}) {
      CheckpointDelta delta = between(base, next, kept);
      assertEquals(next, Deltas.apply(base, Deltas.decode(Deltas.encode(delta))), "kept " + kept);
    }
  }

  @Test
  void aKeptFieldTheBaseDoesNotHaveStaysAbsent() throws Exception {
    Checkpoint base = CheckpointsTest.base().toBuilder().clearProgramModule().build();
    Checkpoint next = next().toBuilder().clearProgramModule().build();
    CheckpointDelta delta = between(base, next, bit(5, 10, 14));
    Checkpoint result = Deltas.apply(base, delta);
    assertFalse(result.hasProgramModule());
    assertFalse(result.hasBestProgramArtifact());
    assertFalse(result.hasTerminalReason());
    assertEquals(next, result);
  }

  @Test
  void keptValuesComeFromTheBaseWithTheirUnknownFields() throws Exception {
    UnknownFieldSet extra =
        UnknownFieldSet.newBuilder()
            .addField(9, UnknownFieldSet.Field.newBuilder().addVarint(42).build())
            .build();
    SamplerFormat sampler =
        CheckpointsTest.base().getSamplerFormat().toBuilder().setUnknownFields(extra).build();
    Checkpoint base = CheckpointsTest.base().toBuilder().setSamplerFormat(sampler).build();
    byte[] baseBytes = Checkpoints.encode(base);
    // Field 9 (varint 42) inside sampler_format.
    assertTrue(CheckpointsTest.contains(baseBytes, new byte[] {0x48, 0x2a}));
    Checkpoint next = next().toBuilder().setSamplerFormat(sampler).build();
    CheckpointDelta delta = between(base, next, ALL_KEPT);
    assertFalse(delta.getHead().hasSamplerFormat());
    byte[] result = Deltas.apply(baseBytes, Deltas.encode(delta));
    assertArrayEquals(Checkpoints.encode(next), result);
    assertEquals(extra, Checkpoints.decode(result).getSamplerFormat().getUnknownFields());
  }

  @Test
  void unknownFieldsOfTheDeltaAndOfTheHeadAreKept() throws Exception {
    Checkpoint base = CheckpointsTest.base();
    CheckpointDelta valid = valid();
    byte[] canonical = valid.toByteArray();
    // Field 6 of the delta (varint 1) and field 7 ("hi") after its known fields.
    byte[] extra = {0x30, 0x01, 0x3a, 0x02, 'h', 'i'};
    byte[] newer = Arrays.copyOf(canonical, canonical.length + extra.length);
    System.arraycopy(extra, 0, newer, canonical.length, extra.length);
    byte[] bytes = Grammar.withTrailer(newer);
    CheckpointDelta read = Deltas.decode(bytes);
    assertFalse(read.getUnknownFields().asMap().isEmpty());
    assertArrayEquals(bytes, Deltas.encode(read));

    // Field 99 of the head: the checkpoint it makes carries it.
    UnknownFieldSet head99 =
        UnknownFieldSet.newBuilder()
            .addField(99, UnknownFieldSet.Field.newBuilder().addVarint(1).build())
            .build();
    CheckpointDelta withHead =
        valid.toBuilder()
            .setHead(valid.getHead().toBuilder().setUnknownFields(head99))
            .build();
    byte[] deltaBytes = Deltas.encode(withHead);
    assertArrayEquals(deltaBytes, Deltas.reencode(deltaBytes));
    Checkpoint result = Deltas.apply(base, Deltas.decode(deltaBytes));
    assertEquals(head99, result.getUnknownFields());
    byte[] resultBytes = Checkpoints.encode(result);
    assertArrayEquals(resultBytes, Checkpoints.reencode(resultBytes));
    // Written last: tag of field 99 (varint) then 1, before the trailer.
    int body = resultBytes.length - Grammar.TRAILER_BYTES;
    assertArrayEquals(
        new byte[] {(byte) 0x98, 0x06, 0x01}, Arrays.copyOfRange(resultBytes, body - 3, body));
  }

  static Stream<Arguments> readRefusals() {
    CheckpointDelta v = valid();
    Checkpoint head = v.getHead();
    return Stream.of(
        Arguments.of(v.toBuilder().setFormat("").build(), DeltaRules.DELTA_FORMAT, "format"),
        Arguments.of(
            v.toBuilder().setFormat("dsxir.optimizer_session.delta/v2.0").build(),
            DeltaRules.DELTA_FORMAT,
            "format"),
        Arguments.of(
            v.toBuilder().setFormat("dsxir.optimizer_session.delta/v1.01").build(),
            DeltaRules.DELTA_FORMAT,
            "format"),
        Arguments.of(
            v.toBuilder().setFormat("dsxir.optimizer_session.delta/v1").build(),
            DeltaRules.DELTA_FORMAT,
            "format"),
        Arguments.of(
            v.toBuilder().setFormat(Checkpoints.FORMAT_ID).build(),
            DeltaRules.DELTA_FORMAT,
            "format"),
        // The format comes first.
        Arguments.of(
            v.toBuilder().setFormat("x").setBaseGeneration(0).clearHead().build(),
            DeltaRules.DELTA_FORMAT,
            "format"),
        Arguments.of(
            v.toBuilder().setBaseGeneration(0).clearHead().build(),
            DeltaRules.DELTA_BASE_GENERATION,
            "base_generation"),
        Arguments.of(
            v.toBuilder().clearHead().setKept(1).build(), DeltaRules.DELTA_HEAD, "head"),
        Arguments.of(v.toBuilder().setKept(bit(0)).build(), DeltaRules.DELTA_KEPT, "kept"),
        Arguments.of(v.toBuilder().setKept(bit(1, 3)).build(), DeltaRules.DELTA_KEPT, "kept"),
        Arguments.of(v.toBuilder().setKept(bit(2)).build(), DeltaRules.DELTA_KEPT, "kept"),
        Arguments.of(v.toBuilder().setKept(bit(8)).build(), DeltaRules.DELTA_KEPT, "kept"),
        Arguments.of(v.toBuilder().setKept(bit(9)).build(), DeltaRules.DELTA_KEPT, "kept"),
        Arguments.of(v.toBuilder().setKept(bit(16)).build(), DeltaRules.DELTA_KEPT, "kept"),
        Arguments.of(v.toBuilder().setKept(1 << 31).build(), DeltaRules.DELTA_KEPT, "kept"),
        Arguments.of(
            v.toBuilder().setHead(head.toBuilder().setOptimizer("o")).build(),
            DeltaRules.DELTA_KEPT_IN_HEAD,
            "head.optimizer"),
        // The lowest-numbered field held is named.
        Arguments.of(
            v.toBuilder()
                .setHead(
                    head.toBuilder()
                        .setDirectionValue(1)
                        .setSamplerFormat(SamplerFormat.newBuilder().setModule("m"))
                        .setProgramModule(""))
                .build(),
            DeltaRules.DELTA_KEPT_IN_HEAD,
            "head.program_module"),
        Arguments.of(
            v.toBuilder().setKept(v.getKept() | bit(13)).build(),
            DeltaRules.DELTA_KEPT_IN_HEAD,
            "head.status"),
        Arguments.of(
            v.toBuilder()
                .setHead(head.toBuilder().setSamplerBlob(ByteString.copyFrom(new byte[] {0})))
                .build(),
            DeltaRules.DELTA_KEPT_IN_HEAD,
            "head.sampler_blob"),
        Arguments.of(
            v.toBuilder()
                .setHead(head.toBuilder().setBestProgramArtifact(TermMap.getDefaultInstance()))
                .build(),
            DeltaRules.DELTA_KEPT_IN_HEAD,
            "head.best_program_artifact"),
        Arguments.of(
            v.toBuilder().setHead(head.toBuilder().setDirectionValue(1)).build(),
            DeltaRules.DELTA_KEPT_IN_HEAD,
            "head.direction"),
        // A field the delta does not keep may be in the head.
        Arguments.of(
            v.toBuilder()
                .setKept(v.getKept() & ~bit(3))
                .setHead(head.toBuilder().setOptimizer("o"))
                .build(),
            null,
            null));
  }

  @ParameterizedTest
  @MethodSource("readRefusals")
  void readRefusalsNameTheirRuleAndPath(CheckpointDelta delta, String rule, String path)
      throws Exception {
    byte[] bytes = sealed(delta);
    if (rule == null) {
      assertArrayEquals(bytes, Deltas.reencode(bytes));
      return;
    }
    InvalidDelta e = refusal(InvalidDelta.class, rule, path, () -> Deltas.decode(bytes));
    assertTrue(
        e.getMessage().startsWith("delta_shape: " + path + ": ")
            && e.getMessage().endsWith(" (rule " + rule + ")"),
        e.getMessage());
    // The writer refuses it the same way.
    InvalidCheckpoint w = assertThrows(InvalidCheckpoint.class, () -> Deltas.encode(delta));
    assertEquals(rule, w.rule(), w.getMessage());
    assertEquals(path, w.path(), w.getMessage());
    // And so does apply, before looking at the base.
    refusal(InvalidDelta.class, rule, () -> Deltas.apply(CheckpointsTest.base(), delta));
  }

  @Test
  void theGrammarNamesPathsBelowTheHead() throws Exception {
    // head (4) > progress (9) > trial_log[0] (1) holding status (4) = 0: a default written.
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    body.writeBytes(
        CheckpointDelta.newBuilder()
            .setFormat(Deltas.FORMAT_ID)
            .setBaseGeneration(1)
            .setBaseTrials(2)
            .build()
            .toByteArray());
    body.writeBytes(new byte[] {0x22, 0x06, 0x4a, 0x04, 0x0a, 0x02, 0x20, 0x00});
    refusal(
        InvalidDelta.class,
        Rules.WIRE_DEFAULT,
        "head.progress.trial_log[0].status",
        () -> Deltas.decode(Grammar.withTrailer(body.toByteArray())));

    // A Term nested too deep in the head's options.
    Term deep = CheckpointsTest.nestedList(Checkpoints.MAX_TERM_DEPTH + 1);
    CheckpointDelta tooDeep =
        valid().toBuilder()
            .setKept(0)
            .setHead(
                valid().getHead().toBuilder()
                    .addOptimizerOpts(
                        OptionEntry.newBuilder()
                            .setKey("k")
                            .setValue(deep)))
            .build();
    InvalidDelta e =
        refusal(InvalidDelta.class, Rules.TERM_DEPTH, () -> Deltas.decode(sealed(tooDeep)));
    assertTrue(e.field().startsWith("head.optimizer_opts[0].value.list_value.items[0]"), e.field());
    InvalidCheckpoint w = assertThrows(InvalidCheckpoint.class, () -> Deltas.encode(tooDeep));
    assertEquals(Rules.TERM_DEPTH, w.rule());
    assertEquals(e.field(), w.path());
  }

  @Test
  void inputRulesAndCheckpointBytes() throws Exception {
    refusal(InvalidDelta.class, Rules.INPUT_TRAILER, "<input>", () -> Deltas.decode(new byte[0]));
    byte[] bytes = Deltas.encode(valid());
    byte[] flipped = bytes.clone();
    flipped[3] ^= 1;
    refusal(InvalidDelta.class, Rules.INPUT_CHECKSUM, () -> Deltas.decode(flipped));
    refusal(
        InvalidDelta.class,
        Rules.INPUT_TRAILER,
        () -> Deltas.decode(Arrays.copyOf(bytes, bytes.length - 1)));
    // A checkpoint is not a delta: its field 2 (session_id) is a string, the delta's a uint64.
    refusal(
        InvalidDelta.class,
        Rules.WIRE_TAG,
        "<input>",
        () -> Deltas.decode(Checkpoints.encode(CheckpointsTest.base())));
    // kept written as an explicit 0: a default written.
    byte[] canonical = valid().toBuilder().setKept(0).build().toByteArray();
    byte[] zero = Arrays.copyOf(canonical, canonical.length + 2);
    zero[canonical.length] = 0x28;
    refusal(
        InvalidDelta.class,
        Rules.WIRE_DEFAULT,
        "kept",
        () -> Deltas.decode(Grammar.withTrailer(zero)));
  }

  @Test
  void aNewerMinorIsRead() throws Exception {
    CheckpointDelta delta =
        valid().toBuilder().setFormat("dsxir.optimizer_session.delta/v1.12").build();
    byte[] bytes = Deltas.encode(delta);
    assertEquals(delta, Deltas.decode(bytes));
    assertEquals(next(), Deltas.apply(CheckpointsTest.base(), delta));
  }

  @Test
  void applyRefusesAnotherSessionThenAnotherLength() throws Exception {
    Checkpoint base = CheckpointsTest.base();
    CheckpointDelta v = valid();
    CheckpointDelta both =
        v.toBuilder().setBaseTrials(5).setHead(v.getHead().toBuilder().setSessionId("s2")).build();
    InvalidDelta e =
        refusal(
            InvalidDelta.class,
            DeltaRules.DELTA_SESSION,
            "head.session_id",
            () -> Deltas.apply(base, both));
    assertTrue(e.getMessage().startsWith("delta_shape: head.session_id: "), e.getMessage());
    // A head without a session id is another session too.
    CheckpointDelta none = v.toBuilder().setHead(v.getHead().toBuilder().clearSessionId()).build();
    refusal(InvalidDelta.class, DeltaRules.DELTA_SESSION, () -> Deltas.apply(base, none));
    for (long trials : new long[] {0, 1, 3, -1}) {
      CheckpointDelta wrong = v.toBuilder().setBaseTrials(trials).build();
      refusal(
          InvalidDelta.class,
          DeltaRules.DELTA_BASE_TRIALS,
          "base_trials",
          () -> Deltas.apply(base, wrong));
    }
  }

  @Test
  void theCheckpointMadeIsCheckedByEveryRule() throws Exception {
    Checkpoint base = CheckpointsTest.base();
    CheckpointDelta v = valid();
    // The appended entry's index must continue the base's log: its path is in the new log.
    Progress headProgress = v.getHead().getProgress();
    CheckpointDelta badIndex =
        v.toBuilder()
            .setHead(
                v.getHead().toBuilder()
                    .setProgress(
                        headProgress.toBuilder()
                            .setTrialLog(
                                0, headProgress.getTrialLog(0).toBuilder().setTrialIdx(0))))
            .build();
    ResumeMismatch e =
        refusal(
            ResumeMismatch.class,
            Rules.TRIAL_TRIAL_IDX,
            "progress.trial_log[2].trial_idx",
            () -> Deltas.apply(base, badIndex));
    assertEquals(ResumeMismatch.CHECKPOINT_SHAPE, e.reason());
    // A head without progress makes a checkpoint without one.
    CheckpointDelta noProgress =
        v.toBuilder().setHead(v.getHead().toBuilder().clearProgress()).build();
    refusal(
        ResumeMismatch.class,
        Rules.PROGRESS_REQUIRED,
        "progress",
        () -> Deltas.apply(base, noProgress));
    // Not keeping sampler_format and not writing it drops it.
    CheckpointDelta dropped = v.toBuilder().setKept(v.getKept() & ~bit(12)).build();
    refusal(ResumeMismatch.class, Rules.SAMPLER_FORMAT_REQUIRED, () -> Deltas.apply(base, dropped));
    // The base's counters do not carry over: the head's are the new checkpoint's.
    CheckpointDelta counters =
        v.toBuilder()
            .setHead(v.getHead().toBuilder().setProgress(headProgress.toBuilder().setCompleted(1)))
            .build();
    refusal(
        ResumeMismatch.class,
        Rules.COUNTERS_COMPLETED,
        "progress.completed",
        () -> Deltas.apply(base, counters));
    // The bytes API reads the base first: a refused base is a checkpoint refusal.
    byte[] deltaBytes = Deltas.encode(v);
    e =
        refusal(
            ResumeMismatch.class, Rules.INPUT_TRAILER, () -> Deltas.apply(new byte[0], deltaBytes));
    assertNull(e.sessionId());
  }

  @Test
  void aLoneSurrogateIsRefusedByTheWriter() {
    CheckpointDelta v = valid();
    CheckpointDelta bad =
        v.toBuilder()
            .setHead(
                v.getHead().toBuilder()
                    .setProgress(
                        v.getHead().getProgress().toBuilder()
                            .setTrialLog(
                                0,
                                v.getHead().getProgress().getTrialLog(0).toBuilder()
                                    .setCandidateId("a\ud800"))))
            .build();
    InvalidCheckpoint e = assertThrows(InvalidCheckpoint.class, () -> Deltas.encode(bad));
    assertEquals(Rules.WIRE_UTF8, e.rule());
    assertEquals("head.progress.trial_log[0].candidate_id", e.path());
  }
}
