package com.dsxir.checkpoint;

import com.dsxir.optimizer_session.v1.TrialStatus;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A finished trial, for {@link
 * Sessions#recordTrial(com.dsxir.optimizer_session.v1.Checkpoint.Builder, Trial)}: its outcome (ok
 * or error) and what to record with it.
 *
 * <pre>{@code
 * Sessions.recordTrial(cp, Trial.ok(0.82).candidateId("c7").stats(Map.of("tokens", 512L)));
 * Sessions.recordTrial(cp, Trial.failed(exception).durationMs(1200));
 * }</pre>
 *
 * <p>{@code stats}, {@code error} and {@code bestProgramArtifact} are maps of Term values (a {@link
 * Map} or a record, see {@link Terms}); they are converted, and refused, when the trial is
 * recorded.
 */
public final class Trial {
  private final boolean ok;
  private Double score;
  private String candidateId;
  private Object stats;
  private Object error;
  private String errorClass;
  private long durationMs;
  private byte[] samplerBlob;
  private Object bestProgramArtifact;

  private Trial(boolean ok) {
    this.ok = ok;
  }

  /** An ok trial without a score (it never becomes the best). */
  public static Trial ok() {
    return new Trial(true);
  }

  /** An ok trial with a score. */
  public static Trial ok(double score) {
    return new Trial(true).score(score);
  }

  /** A trial that failed (status error). */
  public static Trial failed() {
    return new Trial(false);
  }

  /**
   * A trial that failed (status error) with an error: see {@link #error(Object)}; an exception is
   * stored as {@code {"class": <name>, "message": <message>}}.
   */
  public static Trial failed(Object error) {
    return new Trial(false).error(error);
  }

  /**
   * A trial of the given status.
   *
   * @throws InvalidCheckpoint at {@code status} unless it is {@code TRIAL_STATUS_OK} or {@code
   *     TRIAL_STATUS_ERROR}
   */
  public static Trial of(TrialStatus status) {
    if (status == TrialStatus.TRIAL_STATUS_OK) {
      return ok();
    }
    if (status == TrialStatus.TRIAL_STATUS_ERROR) {
      return failed();
    }
    throw new InvalidCheckpoint(
        "status", "must be TRIAL_STATUS_OK or TRIAL_STATUS_ERROR, got " + status);
  }

  /**
   * The score, or null for none; an explicit 0.0 differs from none. NaN is refused when recorded.
   */
  public Trial score(Double score) {
    this.score = score;
    return this;
  }

  /** The candidate's id, or null. */
  public Trial candidateId(String candidateId) {
    this.candidateId = candidateId;
    return this;
  }

  /** The trial's statistics: a {@link Map} or a record of Term values, or null. */
  public Trial stats(Object stats) {
    this.stats = stats;
    return this;
  }

  /**
   * What went wrong: a {@link Map} or a record of Term values, or null. An exception is stored as
   * {@code {"class": <name>, "message": <message, or "">}}, its name being the exception class's
   * name without its package; it becomes the error class too unless one is set.
   */
  public Trial error(Object error) {
    if (!(error instanceof Throwable exception)) {
      this.error = error;
      return this;
    }
    String name = className(exception.getClass());
    Map<String, Object> map = new LinkedHashMap<>();
    map.put("class", name);
    map.put("message", exception.getMessage() == null ? "" : exception.getMessage());
    this.error = map;
    if (errorClass == null) {
      errorClass = name;
    }
    return this;
  }

  /** The error's class name, or null. */
  public Trial errorClass(String errorClass) {
    this.errorClass = errorClass;
    return this;
  }

  /** How long the trial took, in milliseconds (not negative). */
  public Trial durationMs(long durationMs) {
    this.durationMs = durationMs;
    return this;
  }

  /** The sampler's state after the trial, replacing the stored blob; null keeps it. */
  public Trial samplerBlob(byte[] samplerBlob) {
    this.samplerBlob = samplerBlob == null ? null : samplerBlob.clone();
    return this;
  }

  /**
   * The best program so far (a {@link Map} or a record), replacing the stored one; null keeps it.
   */
  public Trial bestProgramArtifact(Object bestProgramArtifact) {
    this.bestProgramArtifact = bestProgramArtifact;
    return this;
  }

  boolean isOk() {
    return ok;
  }

  Double score() {
    return score;
  }

  String candidateId() {
    return candidateId;
  }

  Object stats() {
    return stats;
  }

  Object error() {
    return error;
  }

  String errorClass() {
    return errorClass;
  }

  long durationMs() {
    return durationMs;
  }

  byte[] samplerBlob() {
    return samplerBlob;
  }

  Object bestProgramArtifact() {
    return bestProgramArtifact;
  }

  /**
   * A class's name without its package, e.g. {@code IllegalStateException} or {@code Outer$Inner}.
   */
  private static String className(Class<?> type) {
    String name = type.getName();
    String pkg = type.getPackageName();
    return pkg.isEmpty() ? name : name.substring(pkg.length() + 1);
  }
}
