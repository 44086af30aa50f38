package com.dsxir.checkpoint;

import com.dsxir.optimizer_session.v1.Checkpoint;
import com.dsxir.optimizer_session.v1.Direction;
import com.dsxir.optimizer_session.v1.OptionEntry;
import com.dsxir.optimizer_session.v1.Progress;
import com.dsxir.optimizer_session.v1.SamplerFormat;
import com.dsxir.optimizer_session.v1.SessionStatus;
import com.dsxir.optimizer_session.v1.Term;
import com.dsxir.optimizer_session.v1.TermList;
import com.dsxir.optimizer_session.v1.TermMap;
import com.dsxir.optimizer_session.v1.TermMapEntry;
import com.dsxir.optimizer_session.v1.TrialLogEntry;
import com.dsxir.optimizer_session.v1.TrialStatus;
import com.google.protobuf.ByteString;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import com.google.protobuf.Timestamp;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reading and writing dsxir checkpoints (FORMAT.md).
 *
 * <p>{@link #decode(byte[])} applies every check of FORMAT.md §7 in its order and reports the first
 * failure as a {@link ResumeMismatch} naming the offending field and the broken rule ({@link
 * Rules}). {@link #encode(Checkpoint)} writes the canonical encoding (FORMAT.md §2) with its
 * CRC-32C trailer. Unknown fields of a newer minor version are kept and written after the known
 * fields of their message, byte for byte as read.
 */
public final class Checkpoints {
  /** The largest input a reader accepts (256 MiB, trailer included), checked first. */
  public static final int MAX_INPUT_BYTES = Grammar.MAX_INPUT_BYTES;

  /** The deepest Term a reader accepts (a scalar Term has depth 1). */
  public static final int MAX_TERM_DEPTH = Grammar.MAX_TERM_DEPTH;

  /** The format identifier this schema's writers write; readers accept any v1 minor. */
  public static final String FORMAT_ID = "dsxir.optimizer_session.checkpoint/v1.1";

  private static final Pattern FORMAT_RE =
      Pattern.compile(
          "dsxir\\.optimizer_session\\.checkpoint/v(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)");
  private static final long MIN_SECONDS = -62_135_596_800L;
  private static final long MAX_SECONDS = 253_402_300_799L;

  private Checkpoints() {}

  /**
   * Reads checkpoint bytes, trusting nothing about them: the size limit, the trailer and its
   * CRC-32C, the byte grammar of FORMAT.md §2.2 (only the canonical encoding is accepted), the
   * weight limit, then every check of FORMAT.md §7 in order.
   *
   * @throws ResumeMismatch with reason {@code checkpoint_shape}, the path of the first offending
   *     message or field (FORMAT.md §2.3 and §7; {@code <input>} for the size, the trailer, the
   *     checksum, the weight and the grammar of the top-level message) and the id of the broken
   *     rule
   */
  public static Checkpoint decode(byte[] bytes) throws ResumeMismatch {
    int body = Grammar.checkInput(bytes);
    Checkpoint cp = parse(Checkpoint.parser(), bytes, body);
    validate(cp);
    return cp;
  }

  /**
   * Decodes checkpoint bytes as {@link #decode(byte[])} does and encodes them again, as the
   * conformance testee's {@code reencode}. Since {@code decode} accepts only the canonical
   * encoding, the result equals the input.
   *
   * @throws ResumeMismatch as {@link #decode(byte[])}
   */
  public static byte[] reencode(byte[] bytes) throws ResumeMismatch {
    return encode(decode(bytes));
  }

  /**
   * Rewrites a checkpoint received in another protobuf encoding as its canonical bytes (FORMAT.md
   * §2.6): a rewrite, never done by {@link #decode(byte[])}. The bytes are parsed by the protobuf
   * runtime (fields out of order, defaults written, padded varints are accepted), with or without
   * the trailer: when the last 9 bytes start with the trailer tag they are the trailer, and its
   * CRC-32C must match ({@code input.checksum}). Bytes no protobuf parser reads are refused at
   * {@code <input>} with no rule id. The message is then checked as {@code decode} checks it and
   * written as {@link #encode(Checkpoint)} writes it (unknown fields after the known ones, by
   * field number). The result equals the input exactly when the input was canonical.
   *
   * @throws ResumeMismatch naming the field and the rule, as {@code decode}
   */
  public static byte[] canonicalize(byte[] bytes) throws ResumeMismatch {
    Grammar.checkSize(bytes.length);
    int bodyLength = Grammar.sealedBodyLength(bytes);
    try {
      Canonical.canonicalize(Arrays.copyOf(bytes, bodyLength), Checkpoint.getDescriptor());
    } catch (Canonical.Malformed e) {
      throw ResumeMismatch.shape(null, "<input>", "not a protobuf checkpoint: " + e.getMessage());
    }
    Checkpoint cp;
    try {
      cp = Checkpoint.parser().parseFrom(bytes, 0, bodyLength);
    } catch (InvalidProtocolBufferException e) {
      throw ResumeMismatch.shape(null, "<input>", "not a protobuf checkpoint: " + e.getMessage());
    }
    validate(cp);
    try {
      return encode(cp);
    } catch (InvalidCheckpoint e) {
      throw ResumeMismatch.shape(e.rule(), e.path(), e.detail());
    }
  }

  /** The message in the first {@code bodyLength} bytes, which the grammar has accepted. */
  static <T> T parse(Parser<T> parser, byte[] bytes, int bodyLength) throws ResumeMismatch {
    try {
      return parser.parseFrom(bytes, 0, bodyLength);
    } catch (InvalidProtocolBufferException e) {
      // The grammar accepted these bytes, and every byte string it accepts is a protobuf
      // encoding of the message that protobuf-java parses: reaching this is a bug of this
      // library, reported as the grammar's truncation rule at the top level.
      throw ResumeMismatch.shape(
          Rules.WIRE_TRUNCATED,
          "<input>",
          "protobuf-java refused bytes the grammar accepted (a bug): " + e.getMessage());
    }
  }

  /**
   * The canonical encoding of a checkpoint (FORMAT.md §2.5): the checks of FORMAT.md §7 (steps
   * 2-4) and the refusal of a lone surrogate in any string ({@link #validate(Checkpoint)}),
   * deterministic serialization (known fields in field-number order, presence fields
   * whenever set, unknown fields after them as read), the byte grammar and the weight limit on
   * the bytes produced, the size limit, then the CRC-32C trailer.
   *
   * @throws InvalidCheckpoint naming the field and the rule, for a checkpoint {@link
   *     #decode(byte[])} would refuse (its bytes over the size or weight limit included)
   */
  public static byte[] encode(Checkpoint cp) {
    try {
      validate(cp);
    } catch (ResumeMismatch e) {
      throw new InvalidCheckpoint(e.field(), e.detail(), e.rule());
    }
    byte[] out;
    try {
      out = Grammar.encodeBody(cp);
    } catch (ResumeMismatch e) {
      throw new InvalidCheckpoint(e.field(), e.detail(), e.rule());
    }
    Grammar.writeTrailer(out, out.length - Grammar.TRAILER_BYTES);
    return out;
  }

  /**
   * The canonical bytes of a Term (FORMAT.md §3.4), by which TermMap entries are ordered. Only
   * the UTF-8 rule is checked here (the Term rules are {@link #checkTerm(Term, String)}'s).
   *
   * @throws InvalidCheckpoint with rule {@code wire.utf8} for a {@code string_value} or {@code
   *     atom_value} holding a lone surrogate, its path starting at {@code term}, e.g. {@code
   *     term.map_value.entries[0].key.string_value}
   */
  public static byte[] termBytes(Term term) {
    try {
      checkTermText(term);
    } catch (TermRefusal bad) {
      throw bad.toInvalid("term");
    }
    return canonicalBytes(term);
  }

  /** Refuses a lone surrogate anywhere in a Term, whatever else the Term breaks. */
  private static void checkTermText(Term term) throws TermRefusal {
    if (!term.hasMapValue()) {
      checkStringsAndItems(term, Checkpoints::checkTermText);
      return;
    }
    List<TermMapEntry> entries = term.getMapValue().getEntriesList();
    for (int i = 0; i < entries.size(); i++) {
      TermMapEntry entry = entries.get(i);
      try {
        if (entry.hasKey()) {
          checkAt(entry.getKey(), ".key", Checkpoints::checkTermText);
        }
        if (entry.hasValue()) {
          checkAt(entry.getValue(), ".value", Checkpoints::checkTermText);
        }
      } catch (TermRefusal bad) {
        throw bad.at(".map_value.entries[" + i + "]");
      }
    }
  }

  /** A check of one Term, refusing it with its path below that Term. */
  private interface TermCheck {
    void check(Term term) throws TermRefusal;
  }

  /** Applies {@code each} to {@code term}, a refusal's path then going through {@code part}. */
  private static void checkAt(Term term, String part, TermCheck each) throws TermRefusal {
    try {
      each.check(term);
    } catch (TermRefusal bad) {
      throw bad.at(part);
    }
  }

  /**
   * Refuses a {@code string_value} or {@code atom_value} holding a lone surrogate and applies
   * {@code each} to the items of a {@code list_value} or {@code tuple_value}; other kinds pass.
   */
  private static void checkStringsAndItems(Term term, TermCheck each) throws TermRefusal {
    switch (term.getKindCase()) {
      case STRING_VALUE:
        if (!wellFormed(term.getStringValue())) {
          throw new TermRefusal(Rules.WIRE_UTF8, LONE_SURROGATE).at(".string_value");
        }
        break;
      case ATOM_VALUE:
        if (!wellFormed(term.getAtomValue())) {
          throw new TermRefusal(Rules.WIRE_UTF8, LONE_SURROGATE).at(".atom_value");
        }
        break;
      case LIST_VALUE:
        checkItems(term.getListValue(), ".list_value", each);
        break;
      case TUPLE_VALUE:
        checkItems(term.getTupleValue(), ".tuple_value", each);
        break;
      default:
        break;
    }
  }

  /** Applies {@code each} to every item of {@code list}, a refusal's path going through it. */
  private static void checkItems(TermList list, String kind, TermCheck each) throws TermRefusal {
    List<Term> items = list.getItemsList();
    for (int i = 0; i < items.size(); i++) {
      checkAt(items.get(i), kind + ".items[" + i + "]", each);
    }
  }

  private static byte[] canonicalBytes(MessageLite message) {
    int size = message.getSerializedSize();
    byte[] out = new byte[size];
    writeDeterministic(message, out, size);
    return out;
  }

  /** Writes {@code message}, {@code size} bytes long, deterministically from {@code out[0]}. */
  static void writeDeterministic(MessageLite message, byte[] out, int size) {
    CodedOutputStream stream = CodedOutputStream.newInstance(out, 0, size);
    stream.useDeterministicSerialization();
    try {
      message.writeTo(stream);
    } catch (IOException e) {
      throw new UncheckedIOException("writing to a byte array failed", e);
    }
    stream.checkNoSpaceLeft();
  }

  /**
   * Applies every check of FORMAT.md §7 (steps 2-4) to a checkpoint, parsed or built. A string
   * field holding a lone surrogate (which a Java string can, and which has no UTF-8 form) is
   * refused with rule {@code wire.utf8} at that field, e.g. {@code optimizer_opts[0].key} or
   * {@code progress.trial_log[2].stats.entries[0].key.atom_value}, where the walk meets it: after
   * the emptiness check of the same field, and for a trial's {@code candidate_id} and {@code
   * error_class} after its {@code stats} and {@code error}. A {@code format} holding one is not
   * the format identifier ({@code format.shape}).
   */
  public static void validate(Checkpoint cp) throws ResumeMismatch {
    checkFormat(cp.getFormat());
    if (cp.getSessionId().isEmpty()) {
      throw ResumeMismatch.shape(Rules.SESSION_ID_REQUIRED, "session_id", "must not be empty");
    }
    checkText(cp.getSessionId(), "session_id");
    if (cp.getOptimizer().isEmpty()) {
      throw ResumeMismatch.shape(Rules.OPTIMIZER_REQUIRED, "optimizer", "must not be empty");
    }
    checkText(cp.getOptimizer(), "optimizer");
    List<OptionEntry> options = cp.getOptimizerOptsList();
    for (int i = 0; i < options.size(); i++) {
      OptionEntry option = options.get(i);
      if (option.getKey().isEmpty()) {
        throw ResumeMismatch.shape(
            Rules.OPTIMIZER_OPTS_KEY_REQUIRED,
            "optimizer_opts[" + i + "].key",
            "must not be empty");
      }
      checkText(option.getKey(), "optimizer_opts[" + i + "].key");
      String path = "optimizer_opts[" + i + "].value";
      if (!option.hasValue()) {
        throw ResumeMismatch.shape(Rules.OPTIMIZER_OPTS_VALUE_REQUIRED, path, "is required");
      }
      checkTerm(option.getValue(), path);
    }
    if (cp.hasProgramModule() && cp.getProgramModule().isEmpty()) {
      throw ResumeMismatch.shape(
          Rules.PROGRAM_MODULE_NOT_EMPTY, "program_module", "must not be empty when present");
    }
    if (cp.hasProgramModule()) {
      checkText(cp.getProgramModule(), "program_module");
    }
    if (cp.getTrainsetHash().size() != 32) {
      throw ResumeMismatch.shape(
          Rules.TRAINSET_HASH_LENGTH,
          "trainset_hash",
          "must be 32 bytes (SHA-256), got " + cp.getTrainsetHash().size());
    }
    checkTimestamp(cp.hasCreatedAt(), cp.getCreatedAt(), "created_at");
    checkTimestamp(cp.hasUpdatedAt(), cp.getUpdatedAt(), "updated_at");
    if (!cp.hasProgress()) {
      throw ResumeMismatch.shape(Rules.PROGRESS_REQUIRED, "progress", "is required");
    }
    checkProgress(cp.getProgress());
    if (cp.hasBestProgramArtifact()) {
      checkTermMap(cp.getBestProgramArtifact(), "best_program_artifact");
    }
    if (!cp.hasSamplerFormat()) {
      throw ResumeMismatch.shape(Rules.SAMPLER_FORMAT_REQUIRED, "sampler_format", "is required");
    }
    SamplerFormat sampler = cp.getSamplerFormat();
    if (sampler.getModule().isEmpty()) {
      throw ResumeMismatch.shape(
          Rules.SAMPLER_FORMAT_MODULE_REQUIRED, "sampler_format.module", "must not be empty");
    }
    checkText(sampler.getModule(), "sampler_format.module");
    if (sampler.getVersion() == 0) { // uint32: 0 is the only value below 1
      throw ResumeMismatch.shape(
          Rules.SAMPLER_FORMAT_VERSION_MIN, "sampler_format.version", "must be at least 1");
    }
    int status = cp.getStatusValue();
    if (status < SessionStatus.SESSION_STATUS_RUNNING_VALUE
        || status > SessionStatus.SESSION_STATUS_CANCELLED_VALUE) {
      throw ResumeMismatch.shape(
          Rules.STATUS_KNOWN, "status", "unknown or unspecified status " + status);
    }
    if (cp.hasTerminalReason()) {
      checkTerm(cp.getTerminalReason(), "terminal_reason");
    }
    String direction = directionRefusal(cp.getDirectionValue());
    if (direction != null) {
      throw ResumeMismatch.shape(Rules.DIRECTION_KNOWN, "direction", direction);
    }
  }

  /**
   * Why a direction number is refused, or null for higher (0, also a v1.0 checkpoint's) and lower
   * (1).
   */
  static String directionRefusal(int direction) {
    if (direction == Direction.DIRECTION_HIGHER_VALUE
        || direction == Direction.DIRECTION_LOWER_VALUE) {
      return null;
    }
    return "unknown direction " + direction;
  }

  /** {@code dsxir.optimizer_session.checkpoint/v<major>.<minor>}, major 1. */
  private static void checkFormat(String formatId) throws ResumeMismatch {
    if (formatId.isEmpty()) {
      throw ResumeMismatch.shape(
          Rules.FORMAT_REQUIRED, "format", "missing format identifier: not a dsxir checkpoint");
    }
    Matcher match = FORMAT_RE.matcher(formatId);
    if (!match.matches()) {
      String shown =
          formatId.codePointCount(0, formatId.length()) > 80
              ? formatId.substring(0, formatId.offsetByCodePoints(0, 80))
              : formatId;
      throw ResumeMismatch.shape(
          Rules.FORMAT_SHAPE, "format", "wrong format identifier \"" + shown + "\"");
    }
    if (!match.group(1).equals("1")) {
      throw ResumeMismatch.shape(
          Rules.FORMAT_MAJOR,
          "format",
          "unsupported major version " + match.group(1) + " (this reader reads 1)");
    }
  }

  private static void checkTimestamp(boolean present, Timestamp stamp, String path)
      throws ResumeMismatch {
    if (!present) {
      throw ResumeMismatch.shape(Rules.TIMESTAMP_REQUIRED, path, "is required");
    }
    if (stamp.getNanos() < 0 || stamp.getNanos() >= 1_000_000_000) {
      throw ResumeMismatch.shape(Rules.TIMESTAMP_NANOS, path + ".nanos", "must be in [0, 1e9)");
    }
    if (stamp.getSeconds() < MIN_SECONDS || stamp.getSeconds() > MAX_SECONDS) {
      throw ResumeMismatch.shape(
          Rules.TIMESTAMP_SECONDS, path + ".seconds", "outside 0001-01-01..9999-12-31");
    }
  }

  private static void checkProgress(Progress progress) throws ResumeMismatch {
    long ok = 0;
    long error = 0;
    List<TrialLogEntry> log = progress.getTrialLogList();
    for (int i = 0; i < log.size(); i++) {
      TrialLogEntry entry = log.get(i);
      String at = "progress.trial_log[" + i + "]";
      if (entry.getTrialIdx() != i) {
        throw ResumeMismatch.shape(
            Rules.TRIAL_TRIAL_IDX,
            at + ".trial_idx",
            "is " + Long.toUnsignedString(entry.getTrialIdx()) + ", must be " + i);
      }
      if (entry.hasScore() && Double.isNaN(entry.getScore())) {
        throw ResumeMismatch.shape(Rules.FLOAT_NAN, at + ".score", "NaN is not allowed");
      }
      int status = entry.getStatusValue();
      if (status == TrialStatus.TRIAL_STATUS_OK_VALUE) {
        ok++;
      } else if (status == TrialStatus.TRIAL_STATUS_ERROR_VALUE) {
        error++;
      } else {
        throw ResumeMismatch.shape(
            Rules.TRIAL_STATUS, at + ".status", "unknown or unspecified status " + status);
      }
      if (entry.hasStats()) {
        checkTermMap(entry.getStats(), at + ".stats");
      }
      if (entry.hasError()) {
        checkTermMap(entry.getError(), at + ".error");
      }
      if (entry.hasCandidateId()) {
        checkText(entry.getCandidateId(), at + ".candidate_id");
      }
      if (entry.hasErrorClass()) {
        checkText(entry.getErrorClass(), at + ".error_class");
      }
    }
    checkTimestamp(progress.hasStartedAt(), progress.getStartedAt(), "progress.started_at");
    checkBest(progress);
    if (progress.getCompleted() != ok) {
      throw ResumeMismatch.shape(
          Rules.COUNTERS_COMPLETED,
          "progress.completed",
          "is "
              + Long.toUnsignedString(progress.getCompleted())
              + ", but "
              + ok
              + " trials are ok");
    }
    if (progress.getErrors() != error) {
      throw ResumeMismatch.shape(
          Rules.COUNTERS_ERRORS,
          "progress.errors",
          "is "
              + Long.toUnsignedString(progress.getErrors())
              + ", but "
              + error
              + " trials are errors");
    }
    // ok + error is at most the log's length, so it cannot overflow.
    if (Long.compareUnsigned(progress.getAttempts(), ok + error) < 0) {
      throw ResumeMismatch.shape(
          Rules.COUNTERS_ATTEMPTS,
          "progress.attempts",
          "is "
              + Long.toUnsignedString(progress.getAttempts())
              + ", less than completed + errors");
    }
  }

  private static void checkBest(Progress progress) throws ResumeMismatch {
    boolean hasScore = progress.hasBestScore();
    boolean hasIdx = progress.hasBestTrialIdx();
    if (hasScore && Double.isNaN(progress.getBestScore())) {
      throw ResumeMismatch.shape(Rules.FLOAT_NAN, "progress.best_score", "NaN is not allowed");
    }
    if (hasScore != hasIdx) {
      throw ResumeMismatch.shape(
          Rules.BEST_PAIR,
          hasIdx ? "progress.best_score" : "progress.best_trial_idx",
          "best_score and best_trial_idx must be set together");
    }
    if (!hasIdx) {
      return;
    }
    long idx = progress.getBestTrialIdx();
    String shownIdx = Long.toUnsignedString(idx);
    if (Long.compareUnsigned(idx, progress.getTrialLogCount()) >= 0) {
      throw ResumeMismatch.shape(
          Rules.BEST_TRIAL_IDX_RANGE,
          "progress.best_trial_idx",
          shownIdx + " is past the trial log");
    }
    TrialLogEntry best = progress.getTrialLog((int) idx);
    if (best.getStatusValue() != TrialStatus.TRIAL_STATUS_OK_VALUE || !best.hasScore()) {
      throw ResumeMismatch.shape(
          Rules.BEST_TRIAL_IDX_TRIAL,
          "progress.best_trial_idx",
          "trial " + shownIdx + " is not an ok trial with a score");
    }
    // Same 64 bits: -0.0 is not 0.0.
    if (Double.doubleToRawLongBits(best.getScore())
        != Double.doubleToRawLongBits(progress.getBestScore())) {
      throw ResumeMismatch.shape(
          Rules.BEST_SCORE,
          "progress.best_trial_idx",
          "trial "
              + shownIdx
              + " scored "
              + best.getScore()
              + ", not best_score "
              + progress.getBestScore());
    }
  }

  /**
   * Refuses a Term that breaks a rule of FORMAT.md §3; {@code path} names the Term. Checks,
   * depth-first in field order: depth, kind set, {@code float_value} not NaN, {@code bigint_value}
   * minimal and outside int64, map entries with key and value, keys strictly increasing.
   */
  public static void checkTerm(Term term, String path) throws ResumeMismatch {
    try {
      check(term, 1);
    } catch (TermRefusal bad) {
      throw bad.toMismatch(path);
    }
  }

  /**
   * Refuses a TermMap (a {@code stats}, {@code error} or {@code best_program_artifact} field) that
   * breaks a rule of FORMAT.md §3. The map counts as a Term of depth 1, so its keys and values are
   * at depth 2.
   */
  public static void checkTermMap(TermMap map, String path) throws ResumeMismatch {
    try {
      checkMap(map, 2);
    } catch (TermRefusal bad) {
      throw bad.toMismatch(path);
    }
  }

  private static void check(Term term, int depth) throws TermRefusal {
    if (depth > MAX_TERM_DEPTH) {
      throw new TermRefusal(Rules.TERM_DEPTH, "nesting deeper than " + MAX_TERM_DEPTH);
    }
    switch (term.getKindCase()) {
      case KIND_NOT_SET:
        throw new TermRefusal(Rules.TERM_KIND, "term has no kind");
      case FLOAT_VALUE:
        if (Double.isNaN(term.getFloatValue())) {
          throw new TermRefusal(Rules.FLOAT_NAN, "NaN is not allowed").at(".float_value");
        }
        break;
      case BIGINT_VALUE:
        String problem = bigintProblem(term.getBigintValue());
        if (problem != null) {
          throw new TermRefusal(Rules.TERM_BIGINT, problem).at(".bigint_value");
        }
        break;
      case MAP_VALUE:
        try {
          checkMap(term.getMapValue(), depth + 1);
        } catch (TermRefusal bad) {
          throw bad.at(".map_value");
        }
        break;
      case STRING_VALUE:
      case ATOM_VALUE:
      case LIST_VALUE:
      case TUPLE_VALUE:
        checkStringsAndItems(term, item -> check(item, depth + 1));
        break;
      default:
        break;
    }
  }

  private static void checkMap(TermMap map, int depth) throws TermRefusal {
    byte[] previous = null;
    List<TermMapEntry> entries = map.getEntriesList();
    for (int i = 0; i < entries.size(); i++) {
      try {
        previous = checkEntry(entries.get(i), depth, previous);
      } catch (TermRefusal bad) {
        throw bad.at(".entries[" + i + "]");
      }
    }
  }

  /** Checks one map entry; returns the canonical bytes of its key. */
  private static byte[] checkEntry(TermMapEntry entry, int depth, byte[] previous)
      throws TermRefusal {
    if (!entry.hasKey()) {
      throw new TermRefusal(Rules.TERM_MAP_KEY_REQUIRED, "map entry has no key");
    }
    try {
      check(entry.getKey(), depth);
    } catch (TermRefusal bad) {
      throw bad.at(".key");
    }
    if (!entry.hasValue()) {
      throw new TermRefusal(Rules.TERM_MAP_VALUE_REQUIRED, "map entry has no value");
    }
    try {
      check(entry.getValue(), depth);
    } catch (TermRefusal bad) {
      throw bad.at(".value");
    }
    byte[] keyBytes = canonicalBytes(entry.getKey()); // checked above
    if (previous != null) {
      int order = Arrays.compareUnsigned(keyBytes, previous);
      if (order <= 0) {
        String problem = order == 0 ? "duplicate map key" : "keys are not sorted";
        throw new TermRefusal(Rules.TERM_MAP_ORDER, problem).at(".key");
      }
    }
    return keyBytes;
  }

  private static final String LONE_SURROGATE = "string has a lone surrogate: no UTF-8 form";

  /**
   * Refuses a string field holding a lone surrogate (rule {@code wire.utf8}, FORMAT.md §2.2): a
   * Java string may hold one, and protobuf-java would write {@code ?} in its place.
   */
  private static void checkText(String value, String path) throws ResumeMismatch {
    if (!wellFormed(value)) {
      throw ResumeMismatch.shape(Rules.WIRE_UTF8, path, LONE_SURROGATE);
    }
  }

  /** Whether a Java string is valid Unicode (no lone surrogate), so that it has a UTF-8 form. */
  static boolean wellFormed(String s) {
    int n = s.length();
    for (int i = 0; i < n; i++) {
      char c = s.charAt(i);
      if (c < Character.MIN_SURROGATE) {
        continue;
      }
      if (c <= Character.MAX_HIGH_SURROGATE) {
        if (i + 1 == n || !Character.isLowSurrogate(s.charAt(i + 1))) {
          return false;
        }
        i++;
      } else if (c <= Character.MAX_LOW_SURROGATE) {
        return false;
      }
    }
    return true;
  }

  /** Why a {@code bigint_value} is refused (FORMAT.md §3.3), or null. */
  static String bigintProblem(ByteString raw) {
    if (raw.isEmpty()) {
      return "empty big integer";
    }
    if (raw.size() > 1) {
      int first = raw.byteAt(0) & 0xff;
      int second = raw.byteAt(1) & 0xff;
      if ((first == 0x00 && second < 0x80) || (first == 0xff && second >= 0x80)) {
        return "big integer is not minimal";
      }
    }
    // A minimal encoding of at most 8 bytes is exactly an int64 value.
    if (raw.size() <= 8) {
      return "big integer fits in int64; it must be an int_value";
    }
    return null;
  }
}
