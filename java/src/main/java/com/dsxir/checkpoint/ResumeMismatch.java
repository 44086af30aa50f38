package com.dsxir.checkpoint;

/**
 * A checkpoint that cannot be used. For {@link Checkpoints#decode(byte[])} the reason is always
 * {@code checkpoint_shape}: {@link #field()} is the path of the offending field (FORMAT.md §7, e.g.
 * {@code progress.trial_log[3].stats.entries[0].key}, or {@code <input>} for a size or parse
 * failure) and {@link #detail()} says what is wrong with it. The message reads {@code
 * checkpoint_shape: <field>: <detail>}.
 */
public final class ResumeMismatch extends Exception {
  private static final long serialVersionUID = 1L;

  /** The reason of every refusal by {@link Checkpoints#decode(byte[])}. */
  public static final String CHECKPOINT_SHAPE = "checkpoint_shape";

  private final String reason;
  private final String field;
  private final String detail;

  ResumeMismatch(String reason, String field, String detail) {
    super(reason + ": " + field + ": " + detail);
    this.reason = reason;
    this.field = field;
    this.detail = detail;
  }

  static ResumeMismatch shape(String field, String detail) {
    return new ResumeMismatch(CHECKPOINT_SHAPE, field, detail);
  }

  /** Why the checkpoint cannot be used: {@code checkpoint_shape} for invalid bytes. */
  public String reason() {
    return reason;
  }

  /** The path of the offending field, e.g. {@code progress.trial_log[3].score}. */
  public String field() {
    return field;
  }

  /** What is wrong with the field. */
  public String detail() {
    return detail;
  }
}
