package com.dsxir.checkpoint;

/**
 * A damaged store file (docs/store-file.md §6): {@link #kind()} is the frame check that failed,
 * {@link #detail()} what was found. The message reads {@code store_file: <kind>: <detail>}.
 */
public final class CorruptStoreFile extends Exception {
  private static final long serialVersionUID = 1L;

  /** The frame checks of a reader, in the order it applies them, then those of commit records. */
  public enum Kind {
    TRUNCATED("truncated"),
    TRAILING_BYTES("trailing_bytes"),
    BAD_MAGIC("bad_magic"),
    HEADER_CHECKSUM("header_checksum"),
    UNSUPPORTED_VERSION("unsupported_version"),
    UNSUPPORTED_FLAGS("unsupported_flags"),
    OVER_LIMITS("over_limits"),
    SUMMARY_CHECKSUM("summary_checksum"),
    BODY_CHECKSUM("body_checksum"),
    SUMMARY_MISMATCH("summary_mismatch"),
    RECORD_CHECKSUM("record_checksum"),
    RECORD_GENERATION("record_generation");

    private final String id;

    Kind(String id) {
      this.id = id;
    }

    /** The name of the kind in docs/store-file.md, e.g. {@code header_checksum}. */
    public String id() {
      return id;
    }
  }

  private final Kind kind;
  private final String detail;

  CorruptStoreFile(Kind kind, String detail) {
    super("store_file: " + kind.id() + ": " + detail);
    this.kind = kind;
    this.detail = detail;
  }

  /** The check that failed. */
  public Kind kind() {
    return kind;
  }

  /** What was found, e.g. {@code unsupported frame version 2}. */
  public String detail() {
    return detail;
  }
}
