package com.dsxir.checkpoint;

/**
 * A transition that the session's current, non-terminal status does not allow (FORMAT.md §9), e.g.
 * pausing a paused session. The message reads {@code session "<id>" cannot <action> while
 * <status>}. A terminal session is refused with {@link AlreadyTerminal} instead.
 */
public final class InvalidTransition extends IllegalStateException {
  private static final long serialVersionUID = 1L;

  private final String sessionId;
  private final String status;
  private final String action;

  /** A refusal to {@code action} session {@code sessionId} while it is {@code status}. */
  public InvalidTransition(String sessionId, String status, String action) {
    super("session \"" + sessionId + "\" cannot " + action + " while " + status);
    this.sessionId = sessionId;
    this.status = status;
    this.action = action;
  }

  /** The session's id. */
  public String sessionId() {
    return sessionId;
  }

  /** The session's status, e.g. {@code paused}. */
  public String status() {
    return status;
  }

  /** What was refused: {@code record a trial}, {@code pause}, {@code resume}, … */
  public String action() {
    return action;
  }
}
