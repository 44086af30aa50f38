package com.dsxir.checkpoint;

import com.dsxir.optimizer_session.v1.Checkpoint;
import com.dsxir.optimizer_session.v1.CheckpointDelta;
import com.dsxir.optimizer_session.v1.Progress;
import com.dsxir.optimizer_session.v1.TrialLogEntry;
import com.google.protobuf.Timestamp;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalDouble;
import java.util.OptionalLong;
import java.util.zip.CRC32C;

/**
 * A store file: the file in which the file store keeps the latest checkpoint of one session
 * ({@code <session_id>.dsxckpt}). docs/store-file.md is the normative description.
 *
 * <p>A store file is a 44-byte header (magic, frame version, flags, generation, lengths and CRC32C
 * checksums), a JSON summary of the checkpoint and the canonical checkpoint bytes: the snapshot.
 * When the header's flag 1 ("appendable") is set, commit records may follow (§9), each a 28-byte
 * record header, the summary of the checkpoint after it and a checkpoint delta (FORMAT.md §13).
 * {@link #read(byte[])} checks the frame and every checksum, decodes the checkpoint with every
 * check of {@link Checkpoints#decode(byte[])}, checks that the summary is the checkpoint's, then
 * applies the records; {@link #write(long, Checkpoint, boolean)} returns the exact bytes the
 * Python FileStore writes for a checkpoint committed as a generation, and {@link #record(long,
 * Checkpoint, CheckpointDelta)} the bytes of one commit record.
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

  /** The header flag of a file that commit records may follow (docs/store-file.md §9). */
  public static final int FLAG_APPENDABLE = 1;

  /** The first 4 bytes of every commit record: {@code "\x89dlt"}. */
  private static final byte[] RECORD_MAGIC = {(byte) 0x89, 'd', 'l', 't'};

  /** The size of a commit record's header, in bytes. */
  public static final int RECORD_HEADER_SIZE = 28;

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
  private final int records;
  private final long end;

  private StoreFile(
      long generation, Summary summary, Checkpoint checkpoint, int records, long end) {
    this.generation = generation;
    this.summary = summary;
    this.checkpoint = checkpoint;
    this.records = records;
    this.end = end;
  }

  /**
   * The generation the checkpoint was committed as (unsigned): the last record's, or the
   * header's when no record was read.
   */
  public long generation() {
    return generation;
  }

  /** The number of commit records read after the snapshot (0 for flags 0). */
  public int records() {
    return records;
  }

  /**
   * Where the intact file ends: its length, or the start of the torn tail after its last intact
   * record (docs/store-file.md §9.2), where a writer cuts the file before it appends a record.
   */
  public long end() {
    return end;
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
   * Reads a whole store file, checking it in the order of docs/store-file.md §5, then, with flags
   * 1, its commit records (§9.2): the records are scanned first (a torn tail ends them; a wrong
   * record magic or a failing CRC is {@code record_checksum}, lengths over the limits {@code
   * over_limits}), then applied in order: each record's generation, its delta read by {@link
   * Deltas#decode(byte[])}, the delta's base generation, FORMAT.md §13.2 steps 1-2 and the merge,
   * without checking the checkpoints between records. The checkpoint the records end with is
   * checked by every rule of FORMAT.md §7, then the last record's summary against it.
   *
   * @throws CorruptStoreFile for a damaged file, naming the check that failed
   * @throws ResumeMismatch with reason {@code checkpoint_shape} when the body is not a valid
   *     checkpoint, as {@link Checkpoints#decode(byte[])} refuses it, or when the checkpoint the
   *     records end with breaks a rule of FORMAT.md §7 (its path and rule)
   * @throws InvalidDelta for an intact record whose delta is not readable (FORMAT.md §13.1) or
   *     does not apply to the checkpoint before it (§13.2 steps 1-2)
   */
  public static StoreFile read(byte[] data)
      throws CorruptStoreFile, ResumeMismatch, InvalidDelta {
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
    if (flags != 0 && flags != FLAG_APPENDABLE) {
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
    if (n < total || (n > total && flags == 0)) {
      throw corrupt(
          n < total ? CorruptStoreFile.Kind.TRUNCATED : CorruptStoreFile.Kind.TRAILING_BYTES,
          "file has " + n + " bytes, its frame says " + total);
    }
    int bodyEnd = (int) total;
    int bodyStart = HEADER_SIZE + (int) summaryLength;
    if (crc32c(data, HEADER_SIZE, (int) summaryLength) != header.getInt(32)) {
      throw corrupt(
          CorruptStoreFile.Kind.SUMMARY_CHECKSUM, "summary checksum mismatch (damaged file)");
    }
    if (crc32c(data, bodyStart, (int) bodyLength) != header.getInt(36)) {
      throw corrupt(
          CorruptStoreFile.Kind.BODY_CHECKSUM, "checkpoint checksum mismatch (damaged file)");
    }
    Checkpoint cp = Checkpoints.decode(Arrays.copyOfRange(data, bodyStart, bodyEnd));
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
    if (flags == 0) {
      return new StoreFile(generation, values, cp, 0, n);
    }
    List<Record> found = new ArrayList<>();
    long end = scan(data, bodyEnd, found);
    if (found.isEmpty()) {
      return new StoreFile(generation, values, cp, 0, end);
    }
    Checkpoint last = applied(data, cp, generation, found);
    values = summaryOf(last);
    expected = summaryBytes(values);
    Record tail = found.get(found.size() - 1);
    if (!Arrays.equals(
        data, tail.summaryStart(), tail.deltaStart(), expected, 0, expected.length)) {
      throw corrupt(
          CorruptStoreFile.Kind.SUMMARY_MISMATCH,
          "the summary of the record at byte "
              + tail.start()
              + " is not the checkpoint's ("
              + (tail.deltaStart() - tail.summaryStart())
              + " bytes, expected "
              + expected.length
              + ")");
    }
    return new StoreFile(tail.generation(), values, last, found.size(), end);
  }

  /** One intact commit record: where it starts, its generation, its summary and its delta. */
  private record Record(long start, long generation, int summaryStart, int deltaStart, int end) {}

  /**
   * The intact records from {@code start} (§9.2 steps 1-5), added to {@code found}; returns where
   * they end. A strict prefix of a record at the end (fewer than 28 bytes, or an intact record
   * header whose record runs past the end) is a torn tail: not read.
   */
  private static long scan(byte[] data, int start, List<Record> found) throws CorruptStoreFile {
    int n = data.length;
    ByteBuffer buffer = ByteBuffer.wrap(data); // big-endian, absolute offsets
    int at = start;
    while (at < n) {
      if (n - at < RECORD_HEADER_SIZE) {
        break; // a torn tail
      }
      if (!Arrays.equals(data, at, at + 4, RECORD_MAGIC, 0, 4)
          || crc32c(data, at, 24) != buffer.getInt(at + 24)) {
        throw corrupt(
            CorruptStoreFile.Kind.RECORD_CHECKSUM,
            "record at byte " + at + ": header damaged (magic or checksum)");
      }
      long generation = buffer.getLong(at + 4);
      long summaryLength = Integer.toUnsignedLong(buffer.getInt(at + 12));
      long deltaLength = Integer.toUnsignedLong(buffer.getInt(at + 16));
      if (summaryLength > MAX_SUMMARY_BYTES || deltaLength > MAX_BODY_BYTES) {
        throw corrupt(
            CorruptStoreFile.Kind.OVER_LIMITS,
            "record at byte "
                + at
                + ": summary length "
                + summaryLength
                + " or delta length "
                + deltaLength
                + " is over the limits ("
                + MAX_SUMMARY_BYTES
                + ", "
                + MAX_BODY_BYTES
                + ")");
      }
      long end = (long) at + RECORD_HEADER_SIZE + summaryLength + deltaLength;
      if (end > n) {
        break; // a torn tail
      }
      int payload = at + RECORD_HEADER_SIZE;
      if (crc32c(data, payload, (int) (end - payload)) != buffer.getInt(at + 20)) {
        throw corrupt(
            CorruptStoreFile.Kind.RECORD_CHECKSUM,
            "record at byte " + at + ": checksum mismatch (damaged)");
      }
      found.add(
          new Record(at, generation, payload, payload + (int) summaryLength, (int) end));
      at = (int) end;
    }
    return at;
  }

  /**
   * The checkpoint the records make from the snapshot {@code cp} of generation {@code generation}
   * (§9.2 steps 6-10), checked by every rule of FORMAT.md §7 once, at the end.
   */
  private static Checkpoint applied(
      byte[] data, Checkpoint cp, long generation, List<Record> found)
      throws CorruptStoreFile, InvalidDelta, ResumeMismatch {
    Checkpoint light = withoutLog(cp);
    List<TrialLogEntry> log = new ArrayList<>(cp.getProgress().getTrialLogList());
    for (Record item : found) {
      // generation + 1 does not exist for the largest generation (2^64-1): nothing follows it.
      if (generation == -1L || item.generation() != generation + 1) {
        throw corrupt(
            CorruptStoreFile.Kind.RECORD_GENERATION,
            "a record commits generation "
                + Long.toUnsignedString(item.generation())
                + " after "
                + Long.toUnsignedString(generation));
      }
      CheckpointDelta delta =
          Deltas.decode(Arrays.copyOfRange(data, item.deltaStart(), item.end()));
      if (delta.getBaseGeneration() != generation) {
        throw corrupt(
            CorruptStoreFile.Kind.RECORD_GENERATION,
            "the delta of generation "
                + Long.toUnsignedString(item.generation())
                + " applies to "
                + Long.toUnsignedString(delta.getBaseGeneration()));
      }
      light = Deltas.mergeUnchecked(light, log, delta);
      generation = item.generation();
    }
    Checkpoint last = light;
    if (light.hasProgress()) {
      last =
          light.toBuilder()
              .setProgress(light.getProgress().toBuilder().addAllTrialLog(log))
              .build();
    }
    Checkpoints.validate(last);
    return last;
  }

  /** {@code cp} without its trial entries. */
  private static Checkpoint withoutLog(Checkpoint cp) {
    if (!cp.hasProgress()) {
      return cp;
    }
    return cp.toBuilder().setProgress(cp.getProgress().toBuilder().clearTrialLog()).build();
  }

  /**
   * The store file of {@code cp} committed as {@code generation} (unsigned), with flags 0: {@link
   * #write(long, Checkpoint, boolean)} with {@code appendable} false.
   *
   * @throws ResumeMismatch as {@link #write(long, Checkpoint, boolean)}
   */
  public static byte[] write(long generation, Checkpoint cp) throws ResumeMismatch {
    return write(generation, cp, false);
  }

  /**
   * The store file of {@code cp} committed as {@code generation} (unsigned): byte for byte what
   * the Python FileStore writes (it writes {@code appendable} files). With {@code appendable} the
   * header's flags are 1, and commit records ({@link #record(long, Checkpoint, CheckpointDelta)})
   * may be appended to the bytes.
   *
   * @throws ResumeMismatch for an invalid checkpoint, or one whose encoding is over {@link
   *     #MAX_BODY_BYTES} (field {@code <input>})
   * @throws IllegalArgumentException for a summary over {@link #MAX_SUMMARY_BYTES} (a huge session
   *     id or optimizer)
   */
  public static byte[] write(long generation, Checkpoint cp, boolean appendable)
      throws ResumeMismatch {
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
    header.putShort((short) (appendable ? FLAG_APPENDABLE : 0));
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
   * The bytes of one commit record (docs/store-file.md §9.1) committing {@code after} as {@code
   * generation} (unsigned) by {@code delta}: the 28-byte record header, the summary of {@code
   * after}, then the delta's bytes. To append to a file of generation {@code g} holding the
   * checkpoint {@code C}, {@code delta} is the delta of {@code after} over {@code C} with base
   * generation {@code g}, and {@code generation} is {@code g + 1} (§9.3); this method checks
   * neither.
   *
   * @throws ResumeMismatch for an invalid {@code after}
   * @throws InvalidCheckpoint for a delta {@link Deltas#decode(byte[])} would refuse
   * @throws IllegalArgumentException for a summary over {@link #MAX_SUMMARY_BYTES}
   */
  public static byte[] record(long generation, Checkpoint after, CheckpointDelta delta)
      throws ResumeMismatch {
    return record(generation, encodeSummary(after), Deltas.encode(delta));
  }

  /** The bytes of one commit record of a summary's and a delta's bytes, as given. */
  static byte[] record(long generation, byte[] summary, byte[] delta) {
    if (summary.length > MAX_SUMMARY_BYTES || delta.length > MAX_BODY_BYTES) {
      throw new IllegalArgumentException(
          "a summary of "
              + summary.length
              + " bytes or a delta of "
              + delta.length
              + " bytes is over the limits");
    }
    byte[] out = new byte[RECORD_HEADER_SIZE + summary.length + delta.length];
    System.arraycopy(summary, 0, out, RECORD_HEADER_SIZE, summary.length);
    System.arraycopy(delta, 0, out, RECORD_HEADER_SIZE + summary.length, delta.length);
    ByteBuffer header = ByteBuffer.wrap(out);
    header.put(RECORD_MAGIC);
    header.putLong(generation);
    header.putInt(summary.length);
    header.putInt(delta.length);
    header.putInt(crc32c(out, RECORD_HEADER_SIZE, summary.length + delta.length));
    header.putInt(crc32c(out, 0, 24));
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

  private static Summary summaryOf(Checkpoint cp) {
    Progress progress = cp.getProgress();
    Timestamp stamp = cp.getUpdatedAt();
    return new Summary(
        cp.getSessionId(),
        cp.getOptimizer(),
        Sessions.statusName(cp),
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
