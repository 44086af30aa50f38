package com.dsxir.checkpoint;

import com.dsxir.optimizer_session.v1.Checkpoint;
import com.dsxir.optimizer_session.v1.Progress;
import com.google.protobuf.Timestamp;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.OptionalDouble;
import java.util.OptionalLong;
import java.util.zip.CRC32C;

/**
 * A store file: the file in which the file store keeps the latest checkpoint of one session
 * ({@code <session_id>.dsxckpt}). docs/store-file.md is the normative description.
 *
 * <p>A store file is a 44-byte header (magic, frame version, flags, generation, lengths and CRC32C
 * checksums), a JSON summary of the checkpoint and the canonical checkpoint bytes. {@link
 * #read(byte[])} checks the frame and every checksum, decodes the checkpoint with every check of
 * {@link Checkpoints#decode(byte[])} and checks that the summary is the checkpoint's; {@link
 * #write(long, Checkpoint)} returns the exact bytes the Python FileStore writes for a checkpoint
 * committed as a generation.
 *
 * <p>Generations and the counts of the summary are unsigned 64-bit integers held in a {@code
 * long}: use {@link Long#toUnsignedString(long)} and {@link Long#compareUnsigned(long, long)}.
 */
public final class StoreFile {
  /** The first 8 bytes of every store file: {@code "\x89dsxir\r\n"}. */
  private static final byte[] MAGIC = {(byte) 0x89, 'd', 's', 'x', 'i', 'r', '\r', '\n'};

  /** The only frame version read and written. */
  public static final int FRAME_VERSION = 1;

  /** The size of the header, in bytes. */
  public static final int HEADER_SIZE = 44;

  /** The largest summary a reader accepts (2^20 bytes). */
  public static final int MAX_SUMMARY_BYTES = 1 << 20;

  /** The largest body: the checkpoint size limit (2^28 bytes). */
  public static final int MAX_BODY_BYTES = Checkpoints.MAX_INPUT_BYTES;

  /** The {@code "summary"} value of the summary layout. */
  public static final int SUMMARY_VERSION = 1;

  /**
   * The values of a store file's summary (docs/store-file.md §3). {@code status} is running,
   * paused, completed, failed or cancelled; {@code bestScore} and {@code bestTrialIdx} are empty
   * when the checkpoint has no best score; {@code trials} is the length of the trial log.
   */
  public record Summary(
      String sessionId,
      String optimizer,
      String status,
      long updatedAtSeconds,
      int updatedAtNanos,
      OptionalDouble bestScore,
      OptionalLong bestTrialIdx,
      long attempts,
      long completed,
      long errors,
      long trials) {}

  private final long generation;
  private final Summary summary;
  private final Checkpoint checkpoint;

  private StoreFile(long generation, Summary summary, Checkpoint checkpoint) {
    this.generation = generation;
    this.summary = summary;
    this.checkpoint = checkpoint;
  }

  /** The generation the checkpoint was committed as (unsigned). */
  public long generation() {
    return generation;
  }

  /** The summary's values (the checkpoint's, which the summary was checked against). */
  public Summary summary() {
    return summary;
  }

  /** The checkpoint, valid by every check of {@link Checkpoints#decode(byte[])}. */
  public Checkpoint checkpoint() {
    return checkpoint;
  }

  /** The CRC-32C (Castagnoli) of {@code length} bytes of {@code data} from {@code offset}. */
  public static int crc32c(byte[] data, int offset, int length) {
    CRC32C crc = new CRC32C();
    crc.update(data, offset, length);
    return (int) crc.getValue();
  }

  /**
   * Reads a whole store file, checking it in the order of docs/store-file.md §5.
   *
   * @throws CorruptStoreFile for a damaged file, naming the check that failed
   * @throws ResumeMismatch with reason {@code checkpoint_shape} when the body is not a valid
   *     checkpoint, as {@link Checkpoints#decode(byte[])} refuses it
   */
  public static StoreFile read(byte[] data) throws CorruptStoreFile, ResumeMismatch {
    int n = data.length;
    if (n < HEADER_SIZE) {
      throw corrupt(
          CorruptStoreFile.Kind.TRUNCATED, n + " bytes, a header needs " + HEADER_SIZE);
    }
    if (!Arrays.equals(data, 0, 8, MAGIC, 0, 8)) {
      throw corrupt(
          CorruptStoreFile.Kind.BAD_MAGIC, "not a dsxir checkpoint store file (bad magic)");
    }
    ByteBuffer header = ByteBuffer.wrap(data, 0, HEADER_SIZE); // big-endian
    if (crc32c(data, 0, 40) != header.getInt(40)) {
      throw corrupt(
          CorruptStoreFile.Kind.HEADER_CHECKSUM, "header checksum mismatch (damaged file)");
    }
    int version = Short.toUnsignedInt(header.getShort(8));
    if (version != FRAME_VERSION) {
      throw corrupt(
          CorruptStoreFile.Kind.UNSUPPORTED_VERSION, "unsupported frame version " + version);
    }
    int flags = Short.toUnsignedInt(header.getShort(10));
    if (flags != 0) {
      throw corrupt(
          CorruptStoreFile.Kind.UNSUPPORTED_FLAGS,
          String.format("unsupported frame flags 0x%04x", flags));
    }
    long generation = header.getLong(12);
    long summaryLength = Integer.toUnsignedLong(header.getInt(20));
    long bodyLength = header.getLong(24);
    if (summaryLength > MAX_SUMMARY_BYTES
        || Long.compareUnsigned(bodyLength, MAX_BODY_BYTES) > 0) {
      throw corrupt(
          CorruptStoreFile.Kind.OVER_LIMITS,
          "summary length "
              + summaryLength
              + " or body length "
              + Long.toUnsignedString(bodyLength)
              + " is over the limits ("
              + MAX_SUMMARY_BYTES
              + ", "
              + MAX_BODY_BYTES
              + ")");
    }
    long total = HEADER_SIZE + summaryLength + bodyLength;
    if (n != total) {
      throw corrupt(
          n < total ? CorruptStoreFile.Kind.TRUNCATED : CorruptStoreFile.Kind.TRAILING_BYTES,
          "file has " + n + " bytes, its frame says " + total);
    }
    int bodyStart = HEADER_SIZE + (int) summaryLength;
    if (crc32c(data, HEADER_SIZE, (int) summaryLength) != header.getInt(32)) {
      throw corrupt(
          CorruptStoreFile.Kind.SUMMARY_CHECKSUM, "summary checksum mismatch (damaged file)");
    }
    if (crc32c(data, bodyStart, (int) bodyLength) != header.getInt(36)) {
      throw corrupt(
          CorruptStoreFile.Kind.BODY_CHECKSUM, "checkpoint checksum mismatch (damaged file)");
    }
    Checkpoint cp = Checkpoints.decode(Arrays.copyOfRange(data, bodyStart, n));
    Summary values = summaryOf(cp);
    byte[] expected = summaryBytes(values);
    if (!Arrays.equals(data, HEADER_SIZE, bodyStart, expected, 0, expected.length)) {
      throw corrupt(
          CorruptStoreFile.Kind.SUMMARY_MISMATCH,
          "the summary is not the checkpoint's ("
              + summaryLength
              + " bytes, expected "
              + expected.length
              + ")");
    }
    return new StoreFile(generation, values, cp);
  }

  /**
   * The store file of {@code cp} committed as {@code generation} (unsigned): byte for byte what
   * the Python FileStore writes.
   *
   * @throws ResumeMismatch for an invalid checkpoint, or one whose encoding is over {@link
   *     #MAX_BODY_BYTES} (field {@code <input>})
   * @throws IllegalArgumentException for a summary over {@link #MAX_SUMMARY_BYTES} (a huge session
   *     id or optimizer)
   */
  public static byte[] write(long generation, Checkpoint cp) throws ResumeMismatch {
    Checkpoints.validate(cp);
    byte[] body;
    try {
      body = Checkpoints.encode(cp); // the canonical bytes with their trailer
    } catch (InvalidCheckpoint e) {
      // Over the size or weight limit: validate() has passed, so only the limits of the bytes
      // remain, which name <input>.
      throw ResumeMismatch.shape(e.rule(), e.path(), e.detail());
    }
    byte[] summary = summaryBytes(summaryOf(cp));
    if (summary.length > MAX_SUMMARY_BYTES) {
      throw new IllegalArgumentException(
          "summary of " + summary.length + " bytes is over " + MAX_SUMMARY_BYTES);
    }
    byte[] out = new byte[HEADER_SIZE + summary.length + body.length];
    ByteBuffer header = ByteBuffer.wrap(out);
    header.put(MAGIC);
    header.putShort((short) FRAME_VERSION);
    header.putShort((short) 0);
    header.putLong(generation);
    header.putInt(summary.length);
    header.putLong(body.length);
    header.putInt(crc32c(summary, 0, summary.length));
    header.putInt(crc32c(body, 0, body.length));
    header.putInt(crc32c(out, 0, 40));
    System.arraycopy(summary, 0, out, HEADER_SIZE, summary.length);
    System.arraycopy(body, 0, out, HEADER_SIZE + summary.length, body.length);
    return out;
  }

  /**
   * The canonical summary of a valid checkpoint (docs/store-file.md §3): the bytes of Python's
   * {@code encode_summary}.
   *
   * @throws ResumeMismatch for an invalid checkpoint
   */
  public static byte[] encodeSummary(Checkpoint cp) throws ResumeMismatch {
    Checkpoints.validate(cp);
    return summaryBytes(summaryOf(cp));
  }

  private static CorruptStoreFile corrupt(CorruptStoreFile.Kind kind, String detail) {
    return new CorruptStoreFile(kind, detail);
  }

  private static String statusName(Checkpoint cp) {
    switch (cp.getStatus()) {
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

  private static Summary summaryOf(Checkpoint cp) {
    Progress progress = cp.getProgress();
    Timestamp stamp = cp.getUpdatedAt();
    return new Summary(
        cp.getSessionId(),
        cp.getOptimizer(),
        statusName(cp),
        stamp.getSeconds(),
        stamp.getNanos(),
        progress.hasBestScore()
            ? OptionalDouble.of(progress.getBestScore())
            : OptionalDouble.empty(),
        progress.hasBestTrialIdx()
            ? OptionalLong.of(progress.getBestTrialIdx())
            : OptionalLong.empty(),
        progress.getAttempts(),
        progress.getCompleted(),
        progress.getErrors(),
        progress.getTrialLogCount());
  }

  private static byte[] summaryBytes(Summary s) {
    StringBuilder out = new StringBuilder(256 + s.sessionId().length() + s.optimizer().length());
    out.append("{\"attempts\":").append(Long.toUnsignedString(s.attempts()));
    out.append(",\"best_score\":");
    if (s.bestScore().isPresent()) {
      long bits = Double.doubleToRawLongBits(s.bestScore().getAsDouble());
      out.append('"').append(String.format("%016x", bits)).append('"');
    } else {
      out.append("null");
    }
    out.append(",\"best_trial_idx\":");
    if (s.bestTrialIdx().isPresent()) {
      out.append(Long.toUnsignedString(s.bestTrialIdx().getAsLong()));
    } else {
      out.append("null");
    }
    out.append(",\"completed\":").append(Long.toUnsignedString(s.completed()));
    out.append(",\"errors\":").append(Long.toUnsignedString(s.errors()));
    out.append(",\"optimizer\":");
    appendJsonString(out, s.optimizer());
    out.append(",\"session_id\":");
    appendJsonString(out, s.sessionId());
    out.append(",\"status\":");
    appendJsonString(out, s.status());
    out.append(",\"summary\":").append(SUMMARY_VERSION);
    out.append(",\"trials\":").append(Long.toUnsignedString(s.trials()));
    out.append(",\"updated_at\":[")
        .append(s.updatedAtSeconds())
        .append(',')
        .append(s.updatedAtNanos())
        .append("]}");
    return out.toString().getBytes(StandardCharsets.UTF_8);
  }

  /**
   * Appends {@code s} as a JSON string the way Python's {@code json.dumps(ensure_ascii=False)}
   * writes it: only {@code "}, {@code \} and characters below U+0020 are escaped ({@code \b \t \n
   * \f \r}, else {@code \}{@code u00xx} in lowercase); everything else is kept.
   */
  static void appendJsonString(StringBuilder out, String s) {
    out.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"':
          out.append("\\\"");
          break;
        case '\\':
          out.append("\\\\");
          break;
        case '\b':
          out.append("\\b");
          break;
        case '\t':
          out.append("\\t");
          break;
        case '\n':
          out.append("\\n");
          break;
        case '\f':
          out.append("\\f");
          break;
        case '\r':
          out.append("\\r");
          break;
        default:
          if (c < 0x20) {
            out.append(String.format("\\u%04x", (int) c));
          } else {
            out.append(c);
          }
      }
    }
    out.append('"');
  }
}
