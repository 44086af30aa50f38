package com.dsxir.checkpoint;

/**
 * The session has ended (completed, failed or cancelled) and cannot go on: the resume gate and
 * every transition refuse it (FORMAT.md §8, §9). The message reads {@code session "<id>" is already
 * terminal: status=<status>}.
 */
public final class AlreadyTerminal extends Exception {
  private static final long serialVersionUID = 1L;

  private final String sessionId;
  private final String status;

  /** A refusal of session {@code sessionId}, whose status is named {@code status}. */
  public AlreadyTerminal(String sessionId, String status) {
    super("session \"" + sessionId + "\" is already terminal: status=" + status);
    this.sessionId = sessionId;
    this.status = status;
  }

  /** The session's id. */
  public String sessionId() {
    return sessionId;
  }

  /** The session's status: {@code completed}, {@code failed} or {@code cancelled}. */
  public String status() {
    return status;
  }
}
