package com.dsxir.checkpoint;

/**
 * Delta bytes that cannot be read, or a delta that does not apply to its base (FORMAT.md §13).
 *
 * <p>The kind is always {@code delta_shape}. {@link #field()} is the path of the offending field
 * ({@code <input>} for the size, the trailer, the checksum, the weight and the grammar of the
 * top-level message; {@code head.progress.trial_log[0].status} below the head), {@link #detail()}
 * says what is wrong with it and {@link #rule()} is the id of the rule it breaks: a constant of
 * {@link DeltaRules}, or of {@link Rules} for the byte grammar. The message reads {@code
 * delta_shape: <field>: <detail> (rule <id>)}.
 *
 * <p>A refusal of the checkpoint a delta makes (FORMAT.md §13.2 step 3) is a {@link
 * ResumeMismatch} of kind {@code checkpoint_shape}, as for any checkpoint.
 */
public final class InvalidDelta extends Exception {
  private static final long serialVersionUID = 1L;

  /** The kind of every refusal of a delta. */
  public static final String DELTA_SHAPE = "delta_shape";

  private final String field;
  private final String detail;
  private final String rule;

  InvalidDelta(String rule, String field, String detail) {
    super(
        DELTA_SHAPE + ": " + field + ": " + detail + (rule == null ? "" : " (rule " + rule + ")"));
    this.field = field;
    this.detail = detail;
    this.rule = rule;
  }

  /** The path of the offending field, e.g. {@code kept[1]} or {@code head.session_id}. */
  public String field() {
    return field;
  }

  /** What is wrong with the field. */
  public String detail() {
    return detail;
  }

  /** The id of the broken rule (of {@link DeltaRules} or {@link Rules}). */
  public String rule() {
    return rule;
  }
}
