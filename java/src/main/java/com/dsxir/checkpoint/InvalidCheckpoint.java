package com.dsxir.checkpoint;

/**
 * A value meant for a checkpoint breaks a rule of FORMAT.md: a Java value with no Term form, NaN, a
 * string that is not valid Unicode, a duplicate map key, nesting deeper than {@value
 * Terms#MAX_TERM_DEPTH}, or an argument of a transition out of range. {@link #path()} names the
 * offending value, e.g. {@code value[2]["k"]} or {@code trainset[3]["meta"][0]}; {@link #detail()}
 * says what is wrong with it; {@link #rule()} is the id of the checkpoint rule it breaks (a
 * constant of {@link Rules}, e.g. {@code float.nan}), or null when the value breaks no rule of the
 * format but is refused as an argument (a type with no Term form, a lone surrogate, a negative
 * duration). The message reads {@code <path>: <detail>}, followed by {@code (rule <id>)} when there
 * is a rule.
 *
 * <p>It is unchecked: it reports a value the caller built, not bytes read from elsewhere (a reader
 * refuses those with {@link ResumeMismatch}).
 */
public final class InvalidCheckpoint extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  private final String path;
  private final String detail;
  private final String rule;

  /** A refusal of the value at {@code path} that breaks no rule of the format. */
  public InvalidCheckpoint(String path, String detail) {
    this(path, detail, null);
  }

  /** A refusal of the value at {@code path} that breaks the rule {@code rule} (or null). */
  public InvalidCheckpoint(String path, String detail, String rule) {
    super(path + ": " + detail + (rule == null ? "" : " (rule " + rule + ")"));
    this.path = path;
    this.detail = detail;
    this.rule = rule;
  }

  /** The path of the offending value, e.g. {@code value[2]["k"]}. */
  public String path() {
    return path;
  }

  /** What is wrong with the value. */
  public String detail() {
    return detail;
  }

  /** The id of the broken rule (a constant of {@link Rules}), or null. */
  public String rule() {
    return rule;
  }
}
