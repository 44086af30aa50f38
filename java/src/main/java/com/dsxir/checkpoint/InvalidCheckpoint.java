package com.dsxir.checkpoint;

/**
 * A value meant for a checkpoint breaks a rule of FORMAT.md: a Java value with no Term form, NaN, a
 * string that is not valid Unicode, a duplicate map key, nesting deeper than {@value
 * Terms#MAX_TERM_DEPTH}, or an argument of a transition out of range. {@link #path()} names the
 * offending value, e.g. {@code value[2]["k"]} or {@code trainset[3]["meta"][0]}; {@link #detail()}
 * says what is wrong with it. The message reads {@code <path>: <detail>}.
 *
 * <p>It is unchecked: it reports a value the caller built, not bytes read from elsewhere (a reader
 * refuses those with {@link ResumeMismatch}).
 */
public final class InvalidCheckpoint extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  private final String path;
  private final String detail;

  /** A refusal of the value at {@code path}. */
  public InvalidCheckpoint(String path, String detail) {
    super(path + ": " + detail);
    this.path = path;
    this.detail = detail;
  }

  /** The path of the offending value, e.g. {@code value[2]["k"]}. */
  public String path() {
    return path;
  }

  /** What is wrong with the value. */
  public String detail() {
    return detail;
  }
}
