package com.dsxir.checkpoint;

import java.util.Collection;
import java.util.HexFormat;
import java.util.Map;
import java.util.StringJoiner;

/**
 * A checkpoint that cannot be used.
 *
 * <p>For {@link Checkpoints#decode(byte[])} the reason is always {@code checkpoint_shape}: {@link
 * #field()} is the path of the offending field (FORMAT.md §7, e.g. {@code
 * progress.trial_log[3].stats.entries[0].key}, or {@code <input>} for a size or parse failure),
 * {@link #detail()} says what is wrong with it and {@link #rule()} is the id of the rule it breaks
 * (a constant of {@link Rules}, e.g. {@code trial.status}). The message reads {@code
 * checkpoint_shape: <field>: <detail> (rule <id>)}.
 *
 * <p>For the resume gate ({@link Sessions#checkResume}) the reason is {@code optimizer}, {@code
 * sampler_format}, {@code sampler_version}, {@code trainset_hash} or {@code direction}; {@link
 * #expected()} is the
 * caller's value, {@link #got()} the checkpoint's, and the message is the text of FORMAT.md §8, the
 * same in every language: {@code cannot resume session "<id>": <reason>: …}.
 */
public final class ResumeMismatch extends Exception {
  private static final long serialVersionUID = 1L;

  /** The reason of every refusal by {@link Checkpoints#decode(byte[])}. */
  public static final String CHECKPOINT_SHAPE = "checkpoint_shape";

  /** The checkpoint was written by another optimizer. */
  public static final String OPTIMIZER = "optimizer";

  /** The checkpoint's sampler module is another one. */
  public static final String SAMPLER_FORMAT = "sampler_format";

  /** The checkpoint's sampler state version is not one the caller accepts. */
  public static final String SAMPLER_VERSION = "sampler_version";

  /** The checkpoint was made on another trainset. */
  public static final String TRAINSET_HASH = "trainset_hash";

  /** The checkpoint's scores are better in the other direction. */
  public static final String DIRECTION = "direction";

  /** The resume gate's messages (FORMAT.md §8); {0} is the checkpoint's value, {1} the caller's. */
  private static final Map<String, String> GATE_MESSAGES =
      Map.of(
          OPTIMIZER,
          "the checkpoint was written by optimizer {0}; this run is {1}."
              + " Resume with {0}, or start a new session.",
          SAMPLER_FORMAT,
          "the checkpoint's sampler is {0}; this run's is {1}."
              + " Resume with sampler {0}, or start a new session.",
          SAMPLER_VERSION,
          "the checkpoint holds sampler state version {0}; this run accepts {1}."
              + " Accept version {0} if the sampler can read it, or start a new session.",
          TRAINSET_HASH,
          "the checkpoint was made on the trainset with hash {0}; this run's hash is {1}."
              + " Pass the same trainset, or start a new session.",
          DIRECTION,
          "the checkpoint's scores are better when {0}; this run's are better when {1}."
              + " Resume with direction {0}, or start a new session.");

  private final String sessionId;
  private final String reason;
  private final String field;
  private final String detail;
  private final String rule;
  private final transient Object expected;
  private final transient Object got;

  private ResumeMismatch(String rule, String field, String detail) {
    super(
        CHECKPOINT_SHAPE
            + ": "
            + field
            + ": "
            + detail
            + (rule == null ? "" : " (rule " + rule + ")"));
    this.sessionId = null;
    this.reason = CHECKPOINT_SHAPE;
    this.field = field;
    this.detail = detail;
    this.rule = rule;
    this.expected = null;
    this.got = null;
  }

  private ResumeMismatch(String sessionId, String reason, Object expected, Object got) {
    super(gateMessage(sessionId, reason, expected, got));
    this.sessionId = sessionId;
    this.reason = reason;
    this.field = null;
    this.detail = null;
    this.rule = null;
    this.expected = copy(expected);
    this.got = copy(got);
  }

  /** A refusal of checkpoint bytes: {@code field} breaks {@code rule} (of {@link Rules}). */
  static ResumeMismatch shape(String rule, String field, String detail) {
    return new ResumeMismatch(rule, field, detail);
  }

  /**
   * A refusal of the resume gate: {@code expected} is the caller's value, {@code got} the
   * checkpoint's (a String, a Long, a List of Longs in ascending order, a byte[] or null).
   */
  static ResumeMismatch gate(String sessionId, String reason, Object expected, Object got) {
    return new ResumeMismatch(sessionId, reason, expected, got);
  }

  private static String gateMessage(String sessionId, String reason, Object expected, Object got) {
    String template =
        GATE_MESSAGES.getOrDefault(reason, "the checkpoint has {0}; this run expects {1}.");
    String[] shown = {show(got), show(expected)};
    StringBuilder out = new StringBuilder("cannot resume session \"");
    out.append(sessionId).append("\": ").append(reason).append(": ");
    // One pass over the template, so that a shown value is never substituted into.
    for (int i = 0; i < template.length(); i++) {
      char c = template.charAt(i);
      if (c == '{' && i + 2 < template.length() && template.charAt(i + 2) == '}') {
        out.append(shown[template.charAt(i + 1) - '0']);
        i += 2;
      } else {
        out.append(c);
      }
    }
    return out.toString();
  }

  /**
   * A value as the gate's message shows it: null as none, bytes in lowercase hex, lists as [a,b].
   */
  static String show(Object value) {
    if (value == null) {
      return "none";
    }
    if (value instanceof byte[] bytes) {
      return HexFormat.of().formatHex(bytes);
    }
    if (value instanceof Collection<?> items) {
      StringJoiner out = new StringJoiner(",", "[", "]");
      for (Object item : items) {
        out.add(show(item));
      }
      return out.toString();
    }
    return value.toString();
  }

  private static Object copy(Object value) {
    return value instanceof byte[] bytes ? bytes.clone() : value;
  }

  /**
   * Why the checkpoint cannot be used: {@code checkpoint_shape} for invalid bytes, else {@code
   * optimizer}, {@code sampler_format}, {@code sampler_version} or {@code trainset_hash}.
   */
  public String reason() {
    return reason;
  }

  /** The session id (the resume gate's refusals); null for {@code checkpoint_shape}. */
  public String sessionId() {
    return sessionId;
  }

  /**
   * The path of the offending field, e.g. {@code progress.trial_log[3].score} ({@code
   * checkpoint_shape} only, else null).
   */
  public String field() {
    return field;
  }

  /** What is wrong with the field ({@code checkpoint_shape} only, else null). */
  public String detail() {
    return detail;
  }

  /**
   * The id of the broken rule, a constant of {@link Rules}, e.g. {@code trial.status} ({@code
   * checkpoint_shape} only, else null).
   */
  public String rule() {
    return rule;
  }

  /**
   * The caller's value (the resume gate's refusals): the optimizer or sampler module (a String),
   * the accepted sampler version (a Long) or versions (a List of Longs, ascending), or the trainset
   * hash (a byte[], a copy).
   */
  public Object expected() {
    return copy(expected);
  }

  /** The checkpoint's value, of the same type as {@link #expected()} (one version: a Long). */
  public Object got() {
    return copy(got);
  }
}
