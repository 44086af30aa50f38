package com.dsxir.checkpoint;

import com.dsxir.optimizer_session.v1.Checkpoint;
import com.dsxir.optimizer_session.v1.CheckpointOrBuilder;
import com.dsxir.optimizer_session.v1.Direction;
import com.dsxir.optimizer_session.v1.Progress;
import com.dsxir.optimizer_session.v1.SessionStatus;
import com.dsxir.optimizer_session.v1.Term;
import com.dsxir.optimizer_session.v1.TermMap;
import com.dsxir.optimizer_session.v1.TrialLogEntry;
import com.dsxir.optimizer_session.v1.TrialStatus;
import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Timestamp;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * The life of an optimizer session: status names, the trainset hash (FORMAT.md §6), the resume gate
 * (§8) and the state transitions (§9).
 *
 * <p>The transitions change a {@link Checkpoint.Builder} in place (the cost does not grow with the
 * trial log) and set {@code updated_at} to now; each has an overload that takes a {@link
 * Checkpoint} and returns the changed copy. They check everything before changing anything: a
 * refused transition leaves the checkpoint as it was. A terminal session (completed, failed,
 * cancelled) refuses every transition with {@link AlreadyTerminal}; a transition its status does
 * not allow is refused with {@link InvalidTransition}:
 *
 * <table>
 *   <caption>Transitions by status</caption>
 *   <tr><th>from</th><th>recordTrial</th><th>pause</th><th>resume</th>
 *       <th>complete / fail</th><th>cancel</th></tr>
 *   <tr><td>running</td><td>running</td><td>paused</td><td>refused</td>
 *       <td>completed / failed</td><td>cancelled</td></tr>
 *   <tr><td>paused</td><td>refused</td><td>refused</td><td>running</td><td>refused</td>
 *       <td>cancelled</td></tr>
 * </table>
 */
public final class Sessions {
  static final byte[] TRAINSET_DOMAIN =
      "dsxir.trainset.v1\n".getBytes(StandardCharsets.US_ASCII);

  private Sessions() {}

  // --- statuses ---------------------------------------------------------------------------------

  /**
   * A status as a word: {@code running}, {@code paused}, {@code completed}, {@code failed} or
   * {@code cancelled}; {@code unspecified} for any other value.
   */
  public static String statusName(SessionStatus status) {
    if (status == null) {
      return "unspecified";
    }
    switch (status) {
      case SESSION_STATUS_RUNNING:
        return "running";
      case SESSION_STATUS_PAUSED:
        return "paused";
      case SESSION_STATUS_COMPLETED:
        return "completed";
      case SESSION_STATUS_FAILED:
        return "failed";
      case SESSION_STATUS_CANCELLED:
        return "cancelled";
      default:
        return "unspecified";
    }
  }

  /** The status of a checkpoint as a word (see {@link #statusName(SessionStatus)}). */
  public static String statusName(CheckpointOrBuilder cp) {
    return statusName(SessionStatus.forNumber(cp.getStatusValue()));
  }

  /**
   * A direction as a word: {@code higher} (the default, also a v1.0 checkpoint's) or {@code lower};
   * null for any other value.
   */
  public static String directionName(Direction direction) {
    if (direction == Direction.DIRECTION_HIGHER) {
      return "higher";
    }
    if (direction == Direction.DIRECTION_LOWER) {
      return "lower";
    }
    return null;
  }

  /** The direction of a checkpoint as a word (see {@link #directionName(Direction)}). */
  public static String directionName(CheckpointOrBuilder cp) {
    return directionName(Direction.forNumber(cp.getDirectionValue()));
  }

  /** Whether a status is terminal: completed, failed or cancelled. */
  public static boolean isTerminal(SessionStatus status) {
    return status == SessionStatus.SESSION_STATUS_COMPLETED
        || status == SessionStatus.SESSION_STATUS_FAILED
        || status == SessionStatus.SESSION_STATUS_CANCELLED;
  }

  /** Whether a checkpoint's session has ended: completed, failed or cancelled. */
  public static boolean isTerminal(CheckpointOrBuilder cp) {
    return isTerminal(SessionStatus.forNumber(cp.getStatusValue()));
  }

  // --- the trainset hash ------------------------------------------------------------------------

  /**
   * The SHA-256 fingerprint of an ordered trainset (FORMAT.md §6), 32 bytes: the domain separator,
   * the number of examples, then each example's canonical Term bytes (see {@link Terms}) prefixed
   * by their length, lengths as big-endian uint64. Map insertion order does not matter; any change
   * of a value, of a type ({@code 1L}, {@code 1.0}, {@code true}, {@code "1"}) or of the order of
   * the examples does.
   *
   * @throws InvalidCheckpoint for a value with no Term form (or NaN, …), naming its path, e.g.
   *     {@code trainset[3]["meta"][0]}
   */
  public static byte[] hashTrainset(List<?> examples) {
    List<byte[]> encoded = new ArrayList<>(examples.size());
    int i = 0;
    for (Object example : examples) {
      encoded.add(Terms.termBytes(example, "trainset[" + i + "]"));
      i++;
    }
    return digest(encoded);
  }

  /**
   * {@link #hashTrainset(List)} of examples given as Term messages: each is checked and put in
   * canonical form first ({@link Terms#canonicalTerm(Term)}: map entries in any order are sorted;
   * unknown fields are not hashed), so the digest is the one of the values they stand for.
   *
   * @throws InvalidCheckpoint naming the offending part, e.g. {@code
   *     trainset[1].map_value.entries[0].value.float_value}
   */
  public static byte[] hashTrainsetTerms(List<Term> examples) {
    List<byte[]> encoded = new ArrayList<>(examples.size());
    for (int i = 0; i < examples.size(); i++) {
      Term example = Terms.canonicalTerm(examples.get(i), "trainset[" + i + "]");
      encoded.add(Checkpoints.termBytes(example));
    }
    return digest(encoded);
  }

  /**
   * The trainset hash of the encoding of one Term of kind {@code list_value} (any valid protobuf
   * encoding, map entries in any order), its items being the examples: the testee's {@code
   * hash-trainset}. Refusals name {@code <input>} (size: rule {@code input.too_large}; parsing or
   * a kind other than {@code list_value}: {@code input.malformed}) or the part of an item, e.g.
   * {@code items[2].map_value.entries[1].key}, with the Term rule it breaks.
   */
  static byte[] hashTrainsetInput(byte[] input) throws ResumeMismatch {
    if (input.length > Checkpoints.MAX_INPUT_BYTES) {
      throw ResumeMismatch.shape(
          Rules.INPUT_TOO_LARGE,
          "<input>",
          "input is "
              + input.length
              + " bytes, more than the limit of "
              + Checkpoints.MAX_INPUT_BYTES);
    }
    Term list;
    try {
      Canonical.canonicalize(input, Term.getDescriptor());
      list = Term.parseFrom(input);
    } catch (Canonical.Malformed | InvalidProtocolBufferException e) {
      throw ResumeMismatch.shape(
          Rules.INPUT_MALFORMED, "<input>", "not a valid protobuf Term: " + e.getMessage());
    }
    if (list.getKindCase() != Term.KindCase.LIST_VALUE) {
      throw ResumeMismatch.shape(
          Rules.INPUT_MALFORMED,
          "<input>",
          "the trainset must be a Term whose kind is list_value, not " + list.getKindCase());
    }
    List<Term> items = list.getListValue().getItemsList();
    List<byte[]> encoded = new ArrayList<>(items.size());
    for (int i = 0; i < items.size(); i++) {
      Term example = Terms.canonicalOrShape(items.get(i), "items[" + i + "]");
      encoded.add(Checkpoints.termBytes(example));
    }
    return digest(encoded);
  }

  private static byte[] digest(List<byte[]> encoded) {
    MessageDigest sha256;
    try {
      sha256 = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java platform has SHA-256", e);
    }
    ByteBuffer length = ByteBuffer.allocate(Long.BYTES); // big-endian
    sha256.update(TRAINSET_DOMAIN);
    sha256.update(length.putLong(0, encoded.size()).array());
    for (byte[] example : encoded) {
      sha256.update(length.putLong(0, example.length).array());
      sha256.update(example);
    }
    return sha256.digest();
  }

  // --- the resume gate --------------------------------------------------------------------------

  /**
   * The resume gate (FORMAT.md §8): returns when a caller running {@code optimizer}, whose sampler
   * is {@code samplerModule} and reads the sampler state versions {@code acceptedVersions}, may
   * continue the session of {@code cp}. In order:
   *
   * <ol>
   *   <li>a terminal status: {@link AlreadyTerminal};
   *   <li>another optimizer: {@link ResumeMismatch} with reason {@code optimizer};
   *   <li>another sampler module: reason {@code sampler_format};
   *   <li>a sampler version not among {@code acceptedVersions}: reason {@code sampler_version} (the
   *       versions are shown as {@code [v1,v2,…]}, ascending);
   *   <li>when {@code trainsetHash} is not null and differs from the checkpoint's: reason {@code
   *       trainset_hash} (hashes shown in lowercase hex);
   *   <li>when {@code direction} ({@code higher} or {@code lower}) is not null and differs from the
   *       checkpoint's ({@link #directionName(CheckpointOrBuilder)}): reason {@code direction}; a
   *       direction number the format does not define is then refused with reason {@code
   *       checkpoint_shape}, field {@code direction}.
   * </ol>
   *
   * <p>The messages are FORMAT.md §8's, the same in every language, e.g. {@code cannot resume
   * session "s1": sampler_version: the checkpoint holds sampler state version 1; this run accepts
   * [2,3]. Accept version 1 if the sampler can read it, or start a new session.} Versions are
   * uint32: an {@link Integer} is read as unsigned.
   */
  public static void checkResume(
      CheckpointOrBuilder cp,
      String optimizer,
      String samplerModule,
      Set<Integer> acceptedVersions,
      byte[] trainsetHash,
      String direction)
      throws AlreadyTerminal, ResumeMismatch {
    Objects.requireNonNull(acceptedVersions, "acceptedVersions");
    gate(cp, optimizer, samplerModule, acceptedVersions, null, trainsetHash, direction);
  }

  /**
   * {@link #checkResume(CheckpointOrBuilder, String, String, Set, byte[], String)} without the
   * direction check.
   */
  public static void checkResume(
      CheckpointOrBuilder cp,
      String optimizer,
      String samplerModule,
      Set<Integer> acceptedVersions,
      byte[] trainsetHash)
      throws AlreadyTerminal, ResumeMismatch {
    checkResume(cp, optimizer, samplerModule, acceptedVersions, trainsetHash, null);
  }

  /**
   * {@link #checkResume(CheckpointOrBuilder, String, String, Set, byte[], String)} for a caller
   * that reads one sampler state version, shown as such ({@code this run accepts 2}).
   */
  public static void checkResume(
      CheckpointOrBuilder cp,
      String optimizer,
      String samplerModule,
      int acceptedVersion,
      byte[] trainsetHash,
      String direction)
      throws AlreadyTerminal, ResumeMismatch {
    gate(
        cp,
        optimizer,
        samplerModule,
        Set.of(acceptedVersion),
        acceptedVersion,
        trainsetHash,
        direction);
  }

  /**
   * {@link #checkResume(CheckpointOrBuilder, String, String, int, byte[], String)} without the
   * direction check.
   */
  public static void checkResume(
      CheckpointOrBuilder cp,
      String optimizer,
      String samplerModule,
      int acceptedVersion,
      byte[] trainsetHash)
      throws AlreadyTerminal, ResumeMismatch {
    checkResume(cp, optimizer, samplerModule, acceptedVersion, trainsetHash, null);
  }

  private static void gate(
      CheckpointOrBuilder cp,
      String optimizer,
      String samplerModule,
      Set<Integer> versions,
      Integer single,
      byte[] trainsetHash,
      String direction)
      throws AlreadyTerminal, ResumeMismatch {
    String sid = cp.getSessionId();
    if (isTerminal(cp)) {
      throw new AlreadyTerminal(sid, statusName(cp));
    }
    if (!cp.getOptimizer().equals(optimizer)) {
      throw ResumeMismatch.gate(sid, ResumeMismatch.OPTIMIZER, optimizer, cp.getOptimizer());
    }
    String module = cp.getSamplerFormat().getModule();
    if (!module.equals(samplerModule)) {
      throw ResumeMismatch.gate(sid, ResumeMismatch.SAMPLER_FORMAT, samplerModule, module);
    }
    int version = cp.getSamplerFormat().getVersion();
    if (!versions.contains(version)) {
      Object expected;
      if (single != null) {
        expected = Integer.toUnsignedLong(single);
      } else {
        expected =
            versions.stream()
                .map(v -> Integer.toUnsignedLong(Objects.requireNonNull(v, "a null version")))
                .sorted()
                .toList();
      }
      throw ResumeMismatch.gate(
          sid, ResumeMismatch.SAMPLER_VERSION, expected, Integer.toUnsignedLong(version));
    }
    byte[] stored = cp.getTrainsetHash().toByteArray();
    if (trainsetHash != null && !Arrays.equals(trainsetHash, stored)) {
      throw ResumeMismatch.gate(sid, ResumeMismatch.TRAINSET_HASH, trainsetHash, stored);
    }
    if (direction != null) {
      String got = directionName(cp);
      if (got == null) {
        throw ResumeMismatch.shape(
            Rules.DIRECTION_KNOWN,
            "direction",
            Checkpoints.directionRefusal(cp.getDirectionValue()));
      }
      if (!got.equals(direction)) {
        throw ResumeMismatch.gate(sid, ResumeMismatch.DIRECTION, direction, got);
      }
    }
  }

  // --- transitions ------------------------------------------------------------------------------

  private static void requireStatus(CheckpointOrBuilder cp, String action, SessionStatus... allowed)
      throws AlreadyTerminal {
    if (isTerminal(cp)) {
      throw new AlreadyTerminal(cp.getSessionId(), statusName(cp));
    }
    for (SessionStatus status : allowed) {
      if (cp.getStatusValue() == status.getNumber()) {
        return;
      }
    }
    throw new InvalidTransition(cp.getSessionId(), statusName(cp), action);
  }

  /**
   * Appends the next finished trial to a running session and returns its index: {@code trial_idx}
   * is the log's length; {@code attempts} and {@code completed} (ok) or {@code errors} (error) are
   * counted; the trial becomes the best only when it is ok, has a score, and the score is strictly
   * better than the best so far: greater when the checkpoint's direction is {@code
   * DIRECTION_HIGHER} (the default), lower when it is {@code DIRECTION_LOWER} (the first of equal
   * scores stays best; -0.0 and 0.0 are equal). A sampler blob and best program artifact given with
   * the trial replace the stored ones.
   *
   * @throws AlreadyTerminal for a completed, failed or cancelled session
   * @throws InvalidTransition for a paused one
   * @throws InvalidCheckpoint for a direction other than higher or lower ({@code direction}), a
   *     NaN score ({@code score}), a negative duration ({@code
   *     duration_ms}), or stats, error or artifact with no Term form ({@code stats["k"]}, …)
   */
  public static int recordTrial(Checkpoint.Builder cp, Trial trial) throws AlreadyTerminal {
    requireStatus(cp, "record a trial", SessionStatus.SESSION_STATUS_RUNNING);
    String refusedDirection = Checkpoints.directionRefusal(cp.getDirectionValue());
    if (refusedDirection != null) {
      throw new InvalidCheckpoint("direction", refusedDirection, Rules.DIRECTION_KNOWN);
    }
    boolean lower = cp.getDirectionValue() == Direction.DIRECTION_LOWER_VALUE;
    Double score = trial.score();
    if (score != null && Double.isNaN(score)) {
      throw new InvalidCheckpoint("score", "NaN is not allowed", Rules.FLOAT_NAN);
    }
    if (trial.durationMs() < 0) {
      throw new InvalidCheckpoint("duration_ms", "must be in [0, 2^64), got " + trial.durationMs());
    }
    if (trial.candidateId() != null && !Terms.isValidUnicode(trial.candidateId())) {
      throw new InvalidCheckpoint("candidate_id", "string is not valid Unicode (lone surrogate)");
    }
    if (trial.errorClass() != null && !Terms.isValidUnicode(trial.errorClass())) {
      throw new InvalidCheckpoint("error_class", "string is not valid Unicode (lone surrogate)");
    }
    TermMap stats = trial.stats() == null ? null : Terms.toTermMap(trial.stats(), "stats");
    TermMap error = trial.error() == null ? null : Terms.toTermMap(trial.error(), "error");
    TermMap artifact =
        trial.bestProgramArtifact() == null
            ? null
            : Terms.toTermMap(trial.bestProgramArtifact(), "best_program_artifact");

    Progress.Builder progress = cp.getProgressBuilder();
    int idx = progress.getTrialLogCount();
    TrialLogEntry.Builder entry =
        TrialLogEntry.newBuilder()
            .setTrialIdx(idx)
            .setStatus(trial.isOk() ? TrialStatus.TRIAL_STATUS_OK : TrialStatus.TRIAL_STATUS_ERROR)
            .setDurationMs(trial.durationMs());
    if (trial.candidateId() != null) {
      entry.setCandidateId(trial.candidateId());
    }
    if (score != null) {
      entry.setScore(score);
    }
    if (stats != null) {
      entry.setStats(stats);
    }
    if (error != null) {
      entry.setError(error);
    }
    if (trial.errorClass() != null) {
      entry.setErrorClass(trial.errorClass());
    }
    progress.addTrialLog(entry);
    progress.setAttempts(progress.getAttempts() + 1);
    if (trial.isOk()) {
      progress.setCompleted(progress.getCompleted() + 1);
      if (score != null
          && (!progress.hasBestScore()
              || (lower ? score < progress.getBestScore() : score > progress.getBestScore()))) {
        progress.setBestScore(score);
        progress.setBestTrialIdx(idx);
      }
    } else {
      progress.setErrors(progress.getErrors() + 1);
    }
    if (trial.samplerBlob() != null) {
      cp.setSamplerBlob(ByteString.copyFrom(trial.samplerBlob()));
    }
    if (artifact != null) {
      cp.setBestProgramArtifact(artifact);
    }
    stampUpdated(cp);
    return idx;
  }

  /**
   * {@link #recordTrial(Checkpoint.Builder, Trial)} with the arguments of the other languages:
   * {@code status} is {@code TRIAL_STATUS_OK} or {@code TRIAL_STATUS_ERROR}, {@code score}, {@code
   * candidateId}, {@code stats} and {@code error} may be null ({@code error} a map, a record or an
   * exception).
   */
  public static int recordTrial(
      Checkpoint.Builder cp,
      Double score,
      TrialStatus status,
      String candidateId,
      Map<?, ?> stats,
      Object error,
      long durationMs)
      throws AlreadyTerminal {
    Trial trial =
        Trial.of(status).score(score).candidateId(candidateId).stats(stats).durationMs(durationMs);
    if (error != null) {
      trial.error(error);
    }
    return recordTrial(cp, trial);
  }

  /** {@link #recordTrial(Checkpoint.Builder, Trial)} on a copy of {@code cp}, returned. */
  public static Checkpoint recordTrial(Checkpoint cp, Trial trial) throws AlreadyTerminal {
    return changed(cp, out -> recordTrial(out, trial));
  }

  /**
   * running → paused.
   *
   * @throws AlreadyTerminal for a terminal session
   * @throws InvalidTransition for a paused one
   */
  public static void pause(Checkpoint.Builder cp) throws AlreadyTerminal {
    requireStatus(cp, "pause", SessionStatus.SESSION_STATUS_RUNNING);
    move(cp, SessionStatus.SESSION_STATUS_PAUSED, null);
  }

  /** {@link #pause(Checkpoint.Builder)} on a copy of {@code cp}, returned. */
  public static Checkpoint pause(Checkpoint cp) throws AlreadyTerminal {
    return changed(cp, out -> pause(out));
  }

  /**
   * paused → running.
   *
   * @throws AlreadyTerminal for a terminal session
   * @throws InvalidTransition for a running one
   */
  public static void resume(Checkpoint.Builder cp) throws AlreadyTerminal {
    requireStatus(cp, "resume", SessionStatus.SESSION_STATUS_PAUSED);
    move(cp, SessionStatus.SESSION_STATUS_RUNNING, null);
  }

  /** {@link #resume(Checkpoint.Builder)} on a copy of {@code cp}, returned. */
  public static Checkpoint resume(Checkpoint cp) throws AlreadyTerminal {
    return changed(cp, out -> resume(out));
  }

  /**
   * running or paused → cancelled; {@code reason}, any Term value (see {@link Terms}), is stored as
   * {@code terminal_reason} unless null.
   *
   * @throws AlreadyTerminal for a terminal session
   * @throws InvalidCheckpoint for a reason with no Term form, naming it from {@code reason}
   */
  public static void cancel(Checkpoint.Builder cp, Object reason) throws AlreadyTerminal {
    requireStatus(
        cp, "cancel", SessionStatus.SESSION_STATUS_RUNNING, SessionStatus.SESSION_STATUS_PAUSED);
    move(cp, SessionStatus.SESSION_STATUS_CANCELLED, reason);
  }

  /** {@link #cancel(Checkpoint.Builder, Object)} on a copy of {@code cp}, returned. */
  public static Checkpoint cancel(Checkpoint cp, Object reason) throws AlreadyTerminal {
    return changed(cp, out -> cancel(out, reason));
  }

  /**
   * running → completed, with an optional reason (any Term value, or null).
   *
   * @throws AlreadyTerminal for a terminal session
   * @throws InvalidTransition for a paused one
   * @throws InvalidCheckpoint for a reason with no Term form
   */
  public static void complete(Checkpoint.Builder cp, Object reason) throws AlreadyTerminal {
    requireStatus(cp, "complete", SessionStatus.SESSION_STATUS_RUNNING);
    move(cp, SessionStatus.SESSION_STATUS_COMPLETED, reason);
  }

  /** {@link #complete(Checkpoint.Builder, Object)} on a copy of {@code cp}, returned. */
  public static Checkpoint complete(Checkpoint cp, Object reason) throws AlreadyTerminal {
    return changed(cp, out -> complete(out, reason));
  }

  /**
   * running → failed, with an optional reason (any Term value, or null).
   *
   * @throws AlreadyTerminal for a terminal session
   * @throws InvalidTransition for a paused one
   * @throws InvalidCheckpoint for a reason with no Term form
   */
  public static void fail(Checkpoint.Builder cp, Object reason) throws AlreadyTerminal {
    requireStatus(cp, "fail", SessionStatus.SESSION_STATUS_RUNNING);
    move(cp, SessionStatus.SESSION_STATUS_FAILED, reason);
  }

  /** {@link #fail(Checkpoint.Builder, Object)} on a copy of {@code cp}, returned. */
  public static Checkpoint fail(Checkpoint cp, Object reason) throws AlreadyTerminal {
    return changed(cp, out -> fail(out, reason));
  }

  /** A change made in place to a checkpoint's builder. */
  private interface Change {
    void apply(Checkpoint.Builder cp) throws AlreadyTerminal;
  }

  /** {@code change} made to a copy of {@code cp}, returned; {@code cp} is left as it was. */
  private static Checkpoint changed(Checkpoint cp, Change change) throws AlreadyTerminal {
    Checkpoint.Builder out = cp.toBuilder();
    change.apply(out);
    return out.build();
  }

  private static void move(Checkpoint.Builder cp, SessionStatus status, Object reason) {
    Term reasonTerm = reason == null ? null : Terms.toTerm(reason, "reason");
    cp.setStatus(status);
    cp.clearTerminalReason();
    if (reasonTerm != null) {
      cp.setTerminalReason(reasonTerm);
    }
    stampUpdated(cp);
  }

  private static void stampUpdated(Checkpoint.Builder cp) {
    Instant now = Instant.now();
    cp.setUpdatedAt(
        Timestamp.newBuilder().setSeconds(now.getEpochSecond()).setNanos(now.getNano()).build());
  }
}
