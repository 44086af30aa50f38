package com.dsxir.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.dsxir.optimizer_session.v1.Checkpoint;
import com.dsxir.optimizer_session.v1.Direction;
import com.dsxir.optimizer_session.v1.SessionStatus;
import com.dsxir.optimizer_session.v1.Term;
import com.dsxir.optimizer_session.v1.TrialLogEntry;
import com.dsxir.optimizer_session.v1.TrialStatus;
import com.google.protobuf.Timestamp;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Status names, the trainset hash, the resume gate and the transitions, against Python. */
class SessionsTest {
  private static final HexFormat HEX = HexFormat.of();
  private static final String MIPRO = "dspy.teleprompt.MIPROv2";

  /** ck.new(session_id="s-42", …) with every timestamp set to 1700000000.000123, from Python. */
  private static final String PYTHON_FRESH =
      "0a2764737869722e6f7074696d697a65725f73657373696f6e2e636865636b706f696e742f76312e"
          + "301204732d34321a17647370792e74656c6570726f6d70742e4d4950524f763222140a0e6e756d5f"
          + "63616e646964617465731202181022180a0b74656d7065726174757265120929666666666666e63f"
          + "3220000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f3a0a0880e2cf"
          + "aa0610f8c007420a0880e2cfaa0610f8c0074a0c3a0a0880e2cfaa0610f8c0075a0100620d0a096d"
          + "2e53616d706c657210026801";

  /** The same after the transitions of {@link #transitionsWriteWhatPythonWrites}, from Python. */
  private static final String PYTHON_DONE =
      "0a2764737869722e6f7074696d697a65725f73657373696f6e2e636865636b706f696e742f76312e"
          + "301204732d34321a17647370792e74656c6570726f6d70742e4d4950524f763222140a0e6e756d5f"
          + "63616e646964617465731202181022180a0b74656d7065726174757265120929666666666666e63f"
          + "3220000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f3a0a0880e2cf"
          + "aa0610f8c007420a0880e2cfaa0610f8c0074a9c020a571202633019000000000000e03f20012a43"
          + "0a160a06320474616773120c4a0a0a033201610a034201620a0f0a083206746f6b656e73120318f0"
          + "010a180a0b32096c6174656e63795f73120929000000000000d03f3084070a140801120263311900"
          + "0000000000e83f200130a0060a1408021202633219000000000000e83f200130bc050a5908031202"
          + "633319cdccccccccccec3f2002300a3a340a1b0a0932076d657373616765120e320c72617465206c"
          + "696d697465640a150a0f320d72657472795f61667465725f731202183c420e526174654c696d6974"
          + "4572726f720a0a080412026334200130050a11080512026335190000000000000080200111000000"
          + "000000e83f18012006280530013a0a0880e2cfaa0610f8c007523e0a1e0a07320564656d6f731213"
          + "52110a0218020a0b22094000000000000000000a1c0a0e320c696e737472756374696f6e73120a32"
          + "0862652062726965665a020102620d0a096d2e53616d706c65721002680372325a300a1e0a083206"
          + "726561736f6e121242106275646765745f6578686175737465640a0e0a083206747269616c731202"
          + "180c";

  private static final Timestamp FIXED =
      Timestamp.newBuilder().setSeconds(1_700_000_000L).setNanos(123_000).build();

  private static Checkpoint.Builder fresh() throws ResumeMismatch {
    return Checkpoints.decode(Grammar.withTrailer(HEX.parseHex(PYTHON_FRESH))).toBuilder();
  }

  private static void fix(Checkpoint.Builder cp) {
    cp.setCreatedAt(FIXED).setUpdatedAt(FIXED);
    cp.getProgressBuilder().setStartedAt(FIXED);
  }

  // --- statuses -------------------------------------------------------------------------------

  @Test
  void statusNames() {
    assertEquals("running", Sessions.statusName(SessionStatus.SESSION_STATUS_RUNNING));
    assertEquals("paused", Sessions.statusName(SessionStatus.SESSION_STATUS_PAUSED));
    assertEquals("completed", Sessions.statusName(SessionStatus.SESSION_STATUS_COMPLETED));
    assertEquals("failed", Sessions.statusName(SessionStatus.SESSION_STATUS_FAILED));
    assertEquals("cancelled", Sessions.statusName(SessionStatus.SESSION_STATUS_CANCELLED));
    assertEquals("unspecified", Sessions.statusName(SessionStatus.SESSION_STATUS_UNSPECIFIED));
    assertEquals("unspecified", Sessions.statusName(SessionStatus.UNRECOGNIZED));
    assertEquals("unspecified", Sessions.statusName((SessionStatus) null));
    assertEquals("unspecified", Sessions.statusName(Checkpoint.newBuilder().setStatusValue(9)));
    assertEquals("running", Sessions.statusName(CheckpointsTest.base()));
    assertTrue(Sessions.isTerminal(SessionStatus.SESSION_STATUS_CANCELLED));
    assertFalse(Sessions.isTerminal(SessionStatus.SESSION_STATUS_PAUSED));
  }

  // --- the trainset hash ----------------------------------------------------------------------

  @Test
  void trainsetHashIsPythons() {
    Map<String, Object> first = new LinkedHashMap<>();
    first.put("b", BigInteger.ONE.shiftLeft(70));
    first.put("a", -0.0);
    List<Object> examples =
        Arrays.asList(
            first, TermTuple.of(new Atom("x"), new byte[] {(byte) 0xff}), null, "text", 3.25);
    // Python: hash_trainset([{'b': 2**70, 'a': -0.0}, (Atom('x'), b'\xff'), None, 'text', 3.25])
    assertEquals(
        "8a7b8cda24772932e27b6cfc96e3f0354e56ca70d977056406984839d1174552",
        HEX.formatHex(Sessions.hashTrainset(examples)));
    List<Term> terms = new ArrayList<>();
    for (Object example : examples) {
      terms.add(Terms.toTerm(example));
    }
    assertArrayEquals(Sessions.hashTrainset(examples), Sessions.hashTrainsetTerms(terms));
    // Python: hash_trainset([{'q': 'a'}])
    assertEquals(
        "ab242a4bf28fd26ffad3f20c89a0e65384b13b1e319b4e432bc8b5f103e91668",
        HEX.formatHex(Sessions.hashTrainset(List.of(Map.of("q", "a")))));
    // sha256("dsxir.trainset.v1\n" + 8 zero bytes)
    assertEquals(32, Sessions.hashTrainset(List.of()).length);
  }

  @Test
  void trainsetHashChangesWithTypeValueAndOrder() {
    Set<String> digests = new java.util.HashSet<>();
    for (Object x : new Object[] {1L, 1.0, true, "1"}) {
      digests.add(HEX.formatHex(Sessions.hashTrainset(List.of(Map.of("x", x)))));
    }
    assertEquals(4, digests.size());
    assertNotEquals(
        HEX.formatHex(Sessions.hashTrainset(List.of("a", "b"))),
        HEX.formatHex(Sessions.hashTrainset(List.of("b", "a"))));
  }

  @Test
  void trainsetRefusalsNameTheExample() {
    Map<String, Object> meta = Map.of("meta", List.of(Double.NaN));
    InvalidCheckpoint e =
        assertThrows(InvalidCheckpoint.class, () -> Sessions.hashTrainset(List.of(1L, meta)));
    // Python: trainset[1]['meta'][0]: NaN is not allowed
    assertEquals("trainset[1][\"meta\"][0]: NaN is not allowed (rule float.nan)", e.getMessage());
    Term noKind = Term.getDefaultInstance();
    e =
        assertThrows(
            InvalidCheckpoint.class,
            () -> Sessions.hashTrainsetTerms(List.of(Terms.toTerm(1L), noKind)));
    assertEquals("trainset[1]: term has no kind (rule term.kind)", e.getMessage());
  }

  // --- the resume gate ------------------------------------------------------------------------

  private static Checkpoint gated() {
    byte[] hash = new byte[32];
    for (int i = 0; i < 32; i++) {
      hash[i] = (byte) i;
    }
    Checkpoint.Builder cp = CheckpointsTest.base().toBuilder().setOptimizer(MIPRO);
    cp.setTrainsetHash(com.google.protobuf.ByteString.copyFrom(hash));
    cp.getSamplerFormatBuilder().setModule("m.Sampler").setVersion(1);
    return cp.build();
  }

  private static String refusal(Executable call) {
    return assertThrows(ResumeMismatch.class, call::run).getMessage();
  }

  private interface Executable {
    void run() throws Exception;
  }

  /** Each expected text is what Python's check_resume says for the same arguments. */
  @Test
  void gateMessagesArePythons() throws Exception {
    Checkpoint cp = gated();
    assertEquals(
        "cannot resume session \"s1\": optimizer: the checkpoint was written by optimizer"
            + " dspy.teleprompt.MIPROv2; this run is dspy.teleprompt.COPRO. Resume with"
            + " dspy.teleprompt.MIPROv2, or start a new session.",
        refusal(() -> Sessions.checkResume(cp, "dspy.teleprompt.COPRO", "m.Sampler", 1, null)));
    assertEquals(
        "cannot resume session \"s1\": sampler_format: the checkpoint's sampler is m.Sampler;"
            + " this run's is other.Sampler. Resume with sampler m.Sampler, or start a new"
            + " session.",
        refusal(() -> Sessions.checkResume(cp, MIPRO, "other.Sampler", 1, null)));
    assertEquals(
        "cannot resume session \"s1\": sampler_version: the checkpoint holds sampler state"
            + " version 1; this run accepts 2. Accept version 1 if the sampler can read it, or"
            + " start a new session.",
        refusal(() -> Sessions.checkResume(cp, MIPRO, "m.Sampler", 2, null)));
    assertEquals(
        "cannot resume session \"s1\": sampler_version: the checkpoint holds sampler state"
            + " version 1; this run accepts [2,3,10]. Accept version 1 if the sampler can read"
            + " it, or start a new session.",
        refusal(() -> Sessions.checkResume(cp, MIPRO, "m.Sampler", Set.of(3, 2, 10), null)));
    assertEquals(
        "cannot resume session \"s1\": sampler_version: the checkpoint holds sampler state"
            + " version 1; this run accepts [2]. Accept version 1 if the sampler can read it, or"
            + " start a new session.",
        refusal(() -> Sessions.checkResume(cp, MIPRO, "m.Sampler", Set.of(2), null)));
    assertEquals(
        "cannot resume session \"s1\": trainset_hash: the checkpoint was made on the trainset"
            + " with hash 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f; this"
            + " run's hash is 0000000000000000000000000000000000000000000000000000000000000000."
            + " Pass the same trainset, or start a new session.",
        refusal(() -> Sessions.checkResume(cp, MIPRO, "m.Sampler", Set.of(1, 2), new byte[32])));
    byte[] qa = Sessions.hashTrainset(List.of(Map.of("q", "a")));
    assertEquals(
        "cannot resume session \"s1\": trainset_hash: the checkpoint was made on the trainset"
            + " with hash 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f; this"
            + " run's hash is ab242a4bf28fd26ffad3f20c89a0e65384b13b1e319b4e432bc8b5f103e91668."
            + " Pass the same trainset, or start a new session.",
        refusal(() -> Sessions.checkResume(cp, MIPRO, "m.Sampler", Set.of(1, 2), qa)));
    // Passing: the same values, a hash or none.
    Sessions.checkResume(cp, MIPRO, "m.Sampler", 1, cp.getTrainsetHash().toByteArray());
    Sessions.checkResume(cp, MIPRO, "m.Sampler", Set.of(1, 2), null);
    Sessions.checkResume(
        cp.toBuilder().setStatus(SessionStatus.SESSION_STATUS_PAUSED), MIPRO, "m.Sampler", 1, null);
  }

  @Test
  void gateRefusalsCarryBothSides() {
    Checkpoint cp = gated();
    ResumeMismatch e =
        assertThrows(
            ResumeMismatch.class,
            () -> Sessions.checkResume(cp, MIPRO, "m.Sampler", Set.of(7, 5), null));
    assertEquals("sampler_version", e.reason());
    assertEquals("s1", e.sessionId());
    assertEquals(List.of(5L, 7L), e.expected());
    assertEquals(1L, e.got());
    assertNull(e.field());
    // Versions are uint32.
    Checkpoint high =
        cp.toBuilder().setSamplerFormat(cp.getSamplerFormat().toBuilder().setVersion(-1)).build();
    e =
        assertThrows(
            ResumeMismatch.class, () -> Sessions.checkResume(high, MIPRO, "m.Sampler", 1, null));
    assertEquals(4_294_967_295L, e.got());
    assertTrue(e.getMessage().contains("version 4294967295;"), e.getMessage());
    e =
        assertThrows(
            ResumeMismatch.class,
            () -> Sessions.checkResume(cp, MIPRO, "m.Sampler", 1, new byte[] {1}));
    assertArrayEquals(new byte[] {1}, (byte[]) e.expected());
    assertArrayEquals(cp.getTrainsetHash().toByteArray(), (byte[]) e.got());
  }

  @Test
  void gateChecksInOrder() {
    // Terminal first, then optimizer, sampler module, version, trainset.
    Checkpoint done = gated().toBuilder().setStatus(SessionStatus.SESSION_STATUS_COMPLETED).build();
    AlreadyTerminal t =
        assertThrows(
            AlreadyTerminal.class, () -> Sessions.checkResume(done, "x", "y", 9, new byte[1]));
    assertEquals("session \"s1\" is already terminal: status=completed", t.getMessage());
    assertEquals("completed", t.status());
    Checkpoint cp = gated();
    assertEquals(
        "optimizer",
        assertThrows(ResumeMismatch.class, () -> Sessions.checkResume(cp, "x", "y", 9, new byte[1]))
            .reason());
    assertEquals(
        "sampler_format",
        assertThrows(
                ResumeMismatch.class, () -> Sessions.checkResume(cp, MIPRO, "y", 9, new byte[1]))
            .reason());
    assertEquals(
        "sampler_version",
        assertThrows(
                ResumeMismatch.class,
                () -> Sessions.checkResume(cp, MIPRO, "m.Sampler", 9, new byte[1]))
            .reason());
    assertEquals(
        "trainset_hash",
        assertThrows(
                ResumeMismatch.class,
                () -> Sessions.checkResume(cp, MIPRO, "m.Sampler", 1, new byte[1]))
            .reason());
  }

  @Test
  void gateComparesTheDirectionLastWhenGiven() {
    Checkpoint cp = gated();
    assertEquals(
        "cannot resume session \"s1\": direction: the checkpoint's scores are better when higher;"
            + " this run's are better when lower. Resume with direction higher, or start a new"
            + " session.",
        refusal(() -> Sessions.checkResume(cp, MIPRO, "m.Sampler", 1, null, "lower")));
    Checkpoint lower = cp.toBuilder().setDirection(Direction.DIRECTION_LOWER).build();
    ResumeMismatch e =
        assertThrows(
            ResumeMismatch.class,
            () -> Sessions.checkResume(lower, MIPRO, "m.Sampler", Set.of(1), null, "higher"));
    assertEquals("direction", e.reason());
    assertEquals("higher", e.expected());
    assertEquals("lower", e.got());
    // The trainset is checked before the direction.
    assertEquals(
        "trainset_hash",
        assertThrows(
                ResumeMismatch.class,
                () -> Sessions.checkResume(lower, MIPRO, "m.Sampler", 1, new byte[1], "higher"))
            .reason());
    // Passing: the same direction, or none asked.
    assertDoesNotThrow(() -> Sessions.checkResume(lower, MIPRO, "m.Sampler", 1, null, "lower"));
    assertDoesNotThrow(() -> Sessions.checkResume(lower, MIPRO, "m.Sampler", 1, null));
    Checkpoint unknown = cp.toBuilder().setDirectionValue(2).build();
    e =
        assertThrows(
            ResumeMismatch.class,
            () -> Sessions.checkResume(unknown, MIPRO, "m.Sampler", 1, null, "higher"));
    assertEquals(
        "checkpoint_shape: direction: unknown direction 2 (rule direction.known)", e.getMessage());
    assertEquals(Rules.DIRECTION_KNOWN, e.rule());
    assertEquals("higher", Sessions.directionName(cp));
    assertEquals("lower", Sessions.directionName(lower));
    assertNull(Sessions.directionName(unknown));
  }

  // --- transitions ----------------------------------------------------------------------------

  /** The same calls as the Python run that wrote PYTHON_DONE. */
  @Test
  void transitionsWriteWhatPythonWrites() throws Exception {
    Checkpoint.Builder cp = fresh();
    Map<String, Object> stats = new LinkedHashMap<>();
    stats.put("tokens", 120L);
    stats.put("latency_s", 0.25);
    stats.put("tags", List.of("a", new Atom("b")));
    assertEquals(
        0, Sessions.recordTrial(cp, Trial.ok(0.5).candidateId("c0").stats(stats).durationMs(900)));
    assertEquals(
        1,
        Sessions.recordTrial(
            cp, Trial.ok(0.75).candidateId("c1").durationMs(800).samplerBlob(new byte[] {1, 2})));
    assertEquals(2, Sessions.recordTrial(cp, Trial.ok(0.75).candidateId("c2").durationMs(700)));
    Map<String, Object> error = new LinkedHashMap<>();
    error.put("message", "rate limited");
    error.put("retry_after_s", 30L);
    assertEquals(
        3,
        Sessions.recordTrial(
            cp,
            Trial.failed(error)
                .score(0.9)
                .candidateId("c3")
                .errorClass("RateLimitError")
                .durationMs(10)));
    Map<String, Object> artifact = new LinkedHashMap<>();
    artifact.put("instructions", "be brief");
    artifact.put("demos", TermTuple.of(1L, BigInteger.ONE.shiftLeft(70)));
    assertEquals(
        4,
        Sessions.recordTrial(
            cp, Trial.ok().candidateId("c4").durationMs(5).bestProgramArtifact(artifact)));
    Sessions.pause(cp);
    Sessions.resume(cp);
    assertEquals(5, Sessions.recordTrial(cp, Trial.ok(-0.0).candidateId("c5")));
    Map<String, Object> reason = new LinkedHashMap<>();
    reason.put("reason", new Atom("budget_exhausted"));
    reason.put("trials", 6L);
    Sessions.complete(cp, reason);
    fix(cp);
    assertEquals(
        HEX.formatHex(Grammar.withTrailer(HEX.parseHex(PYTHON_DONE))),
        HEX.formatHex(Checkpoints.encode(cp.build())));
  }

  @Test
  void bestIsTheFirstStrictlyGreaterOkScore() throws Exception {
    Checkpoint.Builder cp = fresh();
    Sessions.recordTrial(cp, Trial.ok()); // no score: never best
    assertFalse(cp.getProgress().hasBestScore());
    Sessions.recordTrial(cp, Trial.failed().score(5.0)); // an error: never best
    assertFalse(cp.getProgress().hasBestScore());
    Sessions.recordTrial(cp, Trial.ok(-0.0));
    assertEquals(2, cp.getProgress().getBestTrialIdx());
    Sessions.recordTrial(cp, Trial.ok(0.0)); // 0.0 is not greater than -0.0
    assertEquals(2, cp.getProgress().getBestTrialIdx());
    assertEquals(
        Double.doubleToRawLongBits(-0.0),
        Double.doubleToRawLongBits(cp.getProgress().getBestScore()));
    Sessions.recordTrial(cp, Trial.ok(0.5));
    Sessions.recordTrial(cp, Trial.ok(0.5));
    assertEquals(4, cp.getProgress().getBestTrialIdx());
    Sessions.recordTrial(cp, Trial.ok(Double.POSITIVE_INFINITY));
    assertEquals(6, cp.getProgress().getBestTrialIdx());
    Sessions.recordTrial(cp, Trial.ok(1e308));
    assertEquals(6, cp.getProgress().getBestTrialIdx());
    assertEquals(8, cp.getProgress().getAttempts());
    assertEquals(7, cp.getProgress().getCompleted());
    assertEquals(1, cp.getProgress().getErrors());
    assertFalse(cp.getProgress().getTrialLog(0).hasScore());
    assertTrue(cp.getProgress().getTrialLog(3).hasScore()); // an explicit 0.0
    Checkpoints.validate(cp.build());
    assertArrayEquals(
        Checkpoints.encode(cp.build()),
        Checkpoints.encode(Checkpoints.decode(Checkpoints.encode(cp.build()))));
  }

  @Test
  void bestIsTheFirstStrictlyLowerOkScoreWhenLowerIsBetter() throws Exception {
    Checkpoint.Builder cp = fresh().setDirection(Direction.DIRECTION_LOWER);
    Sessions.recordTrial(cp, Trial.ok()); // no score: never best
    assertFalse(cp.getProgress().hasBestScore());
    Sessions.recordTrial(cp, Trial.ok(2.0)); // the first score is best
    assertEquals(1, cp.getProgress().getBestTrialIdx());
    Sessions.recordTrial(cp, Trial.ok(3.0)); // greater: not better
    assertEquals(1, cp.getProgress().getBestTrialIdx());
    Sessions.recordTrial(cp, Trial.failed().score(-5.0)); // an error: never best
    assertEquals(1, cp.getProgress().getBestTrialIdx());
    Sessions.recordTrial(cp, Trial.ok(0.0));
    assertEquals(4, cp.getProgress().getBestTrialIdx());
    Sessions.recordTrial(cp, Trial.ok(-0.0)); // -0.0 is not lower than 0.0
    Sessions.recordTrial(cp, Trial.ok(0.0)); // the first of equal scores stays best
    assertEquals(4, cp.getProgress().getBestTrialIdx());
    assertEquals(
        Double.doubleToRawLongBits(0.0),
        Double.doubleToRawLongBits(cp.getProgress().getBestScore()));
    Sessions.recordTrial(cp, Trial.ok(Double.NEGATIVE_INFINITY));
    assertEquals(7, cp.getProgress().getBestTrialIdx());
    Checkpoints.validate(cp.build());
  }

  @Test
  void recordTrialRefusesAnUnknownDirection() throws Exception {
    Checkpoint.Builder cp = fresh().setDirectionValue(2);
    Checkpoint before = cp.build();
    InvalidCheckpoint e =
        assertThrows(InvalidCheckpoint.class, () -> Sessions.recordTrial(cp, Trial.ok(1.0)));
    assertEquals("direction: unknown direction 2 (rule direction.known)", e.getMessage());
    assertEquals(before, cp.build());
  }

  @Test
  void recordTrialWithTheOtherLanguagesArguments() throws Exception {
    Checkpoint.Builder cp = fresh();
    Sessions.recordTrial(cp, 0.5, TrialStatus.TRIAL_STATUS_OK, "c0", Map.of("n", 1L), null, 3);
    Sessions.recordTrial(
        cp, null, TrialStatus.TRIAL_STATUS_ERROR, null, null, new IllegalStateException("boom"), 4);
    TrialLogEntry failed = cp.getProgress().getTrialLog(1);
    assertEquals("IllegalStateException", failed.getErrorClass());
    assertEquals(
        Map.of("class", "IllegalStateException", "message", "boom"),
        Terms.fromTerm(failed.getError()));
    assertEquals(4, failed.getDurationMs());
    InvalidCheckpoint e =
        assertThrows(
            InvalidCheckpoint.class,
            () ->
                Sessions.recordTrial(
                    cp, 1.0, TrialStatus.TRIAL_STATUS_UNSPECIFIED, null, null, null, 0));
    assertEquals("status", e.path());
    assertNull(e.rule());
    Checkpoint copy = Sessions.recordTrial(cp.build(), Trial.ok(2.0));
    assertEquals(3, copy.getProgress().getTrialLogCount());
    assertEquals(2, cp.getProgress().getTrialLogCount());
  }

  @Test
  void refusedTrialsLeaveTheCheckpointAsItWas() throws Exception {
    Checkpoint.Builder cp = fresh();
    Checkpoint before = cp.build();
    InvalidCheckpoint e =
        assertThrows(InvalidCheckpoint.class, () -> Sessions.recordTrial(cp, Trial.ok(Double.NaN)));
    assertEquals("score: NaN is not allowed (rule float.nan)", e.getMessage());
    e =
        assertThrows(
            InvalidCheckpoint.class, () -> Sessions.recordTrial(cp, Trial.ok().durationMs(-1)));
    assertEquals("duration_ms", e.path());
    assertNull(e.rule());
    e =
        assertThrows(
            InvalidCheckpoint.class,
            () -> Sessions.recordTrial(cp, Trial.ok(1.0).stats(Map.of("k", new Object()))));
    assertEquals("stats[\"k\"]: Object has no Term form", e.getMessage());
    e =
        assertThrows(
            InvalidCheckpoint.class,
            () -> Sessions.recordTrial(cp, Trial.failed(Map.of("m", List.of(Double.NaN)))));
    assertEquals("error[\"m\"][0]", e.path());
    e =
        assertThrows(
            InvalidCheckpoint.class,
            () -> Sessions.recordTrial(cp, Trial.ok().bestProgramArtifact("not a map")));
    assertEquals("best_program_artifact: String is not a mapping", e.getMessage());
    e = assertThrows(InvalidCheckpoint.class, () -> Sessions.complete(cp, List.of(1L, Double.NaN)));
    assertEquals("reason[1]: NaN is not allowed (rule float.nan)", e.getMessage());
    assertEquals(before, cp.build());
  }

  /** Python's texts: InvalidTransition and AlreadyTerminal. */
  @Test
  void transitionsFollowTheTable() throws Exception {
    Checkpoint.Builder cp = fresh();
    cp.setSessionId("s1");
    Sessions.pause(cp);
    assertEquals("paused", Sessions.statusName(cp));
    assertEquals(
        "session \"s1\" cannot pause while paused",
        assertThrows(InvalidTransition.class, () -> Sessions.pause(cp)).getMessage());
    assertEquals(
        "session \"s1\" cannot record a trial while paused",
        assertThrows(InvalidTransition.class, () -> Sessions.recordTrial(cp, Trial.ok(1.0)))
            .getMessage());
    assertEquals(
        "session \"s1\" cannot complete while paused",
        assertThrows(InvalidTransition.class, () -> Sessions.complete(cp, null)).getMessage());
    InvalidTransition failWhilePaused =
        assertThrows(InvalidTransition.class, () -> Sessions.fail(cp, null));
    assertEquals("fail", failWhilePaused.action());
    assertEquals("paused", failWhilePaused.status());
    Sessions.resume(cp);
    assertEquals(
        "session \"s1\" cannot resume while running",
        assertThrows(InvalidTransition.class, () -> Sessions.resume(cp)).getMessage());
    Sessions.pause(cp);
    Sessions.cancel(cp, "user");
    assertEquals("cancelled", Sessions.statusName(cp));
    assertEquals(Terms.toTerm("user"), cp.getTerminalReason());
    Checkpoints.validate(cp.build());
    for (Executable call :
        List.<Executable>of(
            () -> Sessions.recordTrial(cp, Trial.ok(1.0)),
            () -> Sessions.pause(cp),
            () -> Sessions.resume(cp),
            () -> Sessions.complete(cp, null),
            () -> Sessions.fail(cp, null),
            () -> Sessions.cancel(cp, null))) {
      assertEquals(
          "session \"s1\" is already terminal: status=cancelled",
          assertThrows(AlreadyTerminal.class, call::run).getMessage());
    }

    Checkpoint running = fresh().build();
    Checkpoint failed = Sessions.fail(running, null);
    assertEquals(SessionStatus.SESSION_STATUS_FAILED, failed.getStatus());
    assertFalse(failed.hasTerminalReason());
    assertEquals(SessionStatus.SESSION_STATUS_RUNNING, running.getStatus());
    Checkpoint completed = Sessions.complete(running, TermTuple.of(new Atom("ok"), 1L));
    assertEquals("completed", Sessions.statusName(completed));
    Checkpoint cancelled = Sessions.cancel(Sessions.pause(running), null);
    assertEquals("cancelled", Sessions.statusName(cancelled));
    assertEquals("running", Sessions.statusName(Sessions.resume(Sessions.pause(running))));
  }

  @Test
  void transitionsStampUpdatedAt() throws Exception {
    Checkpoint.Builder cp = fresh();
    Sessions.pause(cp);
    Timestamp stamped = cp.getUpdatedAt();
    assertTrue(stamped.getSeconds() > FIXED.getSeconds(), stamped.toString());
    assertEquals(FIXED, cp.getCreatedAt());
    assertEquals(FIXED, cp.getProgress().getStartedAt());
  }
}
