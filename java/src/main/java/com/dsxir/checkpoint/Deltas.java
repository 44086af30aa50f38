package com.dsxir.checkpoint;

import com.dsxir.optimizer_session.v1.Checkpoint;
import com.dsxir.optimizer_session.v1.CheckpointDelta;
import com.dsxir.optimizer_session.v1.Progress;
import com.dsxir.optimizer_session.v1.TrialLogEntry;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Reading, writing and applying checkpoint deltas (FORMAT.md §13).
 *
 * <p>A delta carries what one commit adds to a checkpoint, its base: the entries appended to the
 * trial log, and the other fields of the new checkpoint except those it keeps from the base. Its
 * bytes are sealed and checked exactly as a checkpoint's (the size limit, the CRC-32C trailer, the
 * byte grammar with {@code CheckpointDelta} as the top-level message, the weight limit), then by
 * the rules of §13.1 ({@link DeltaRules}). {@link #decode(byte[])} reads them, {@link
 * #encode(CheckpointDelta)} writes them ({@code encode(decode(b))} equals {@code b}), and {@link
 * #apply(Checkpoint, CheckpointDelta)} makes the new checkpoint (§13.2), which is then checked by
 * every rule of FORMAT.md §7 and the writer's limits, as {@link Checkpoints#encode(Checkpoint)}
 * checks any checkpoint.
 */
public final class Deltas {
  /** The delta format identifier this schema's writers write; readers accept any v1 minor. */
  public static final String FORMAT_ID = "dsxir.optimizer_session.delta/v1.0";

  private static final Pattern FORMAT_RE =
      Pattern.compile("dsxir\\.optimizer_session\\.delta/v1\\.(0|[1-9][0-9]*)");

  /** The bits of the Checkpoint fields a delta may keep from its base: 3-7 and 10-15. */
  public static final int KEEPABLE = 0xFCF8;

  /** Deeper than any message a Term of the depth limit reaches; the grammar refuses the rest. */
  private static final int MAX_WALK_DEPTH = 100;

  private Deltas() {}

  /**
   * Reads delta bytes, trusting nothing about them: the size limit, the trailer and its CRC-32C,
   * the byte grammar of FORMAT.md §2.2 with {@code CheckpointDelta} as the top-level message (the
   * head is scanned as a Checkpoint; its paths start with {@code head.}), the weight limit, then
   * the rules of §13.1 in order. The head is not checked against §7 on its own. Unknown fields of
   * the delta and of its head are kept.
   *
   * @throws InvalidDelta naming the first broken rule and its path
   */
  public static CheckpointDelta decode(byte[] bytes) throws InvalidDelta {
    CheckpointDelta delta;
    try {
      int body = Grammar.checkDeltaInput(bytes);
      delta = Checkpoints.parse(CheckpointDelta.parser(), bytes, body);
    } catch (ResumeMismatch e) {
      throw new InvalidDelta(e.rule(), e.field(), e.detail());
    }
    check(delta);
    return delta;
  }

  /**
   * Decodes delta bytes as {@link #decode(byte[])} does and encodes them again. Since {@code
   * decode} accepts only the canonical encoding, the result equals the input.
   *
   * @throws InvalidDelta as {@link #decode(byte[])}
   */
  public static byte[] reencode(byte[] bytes) throws InvalidDelta {
    CheckpointDelta delta = decode(bytes);
    try {
      return encode(delta);
    } catch (InvalidCheckpoint e) {
      throw new InvalidDelta(e.rule(), e.path(), e.detail());
    }
  }

  /**
   * The canonical bytes of a delta (FORMAT.md §2.5, §13): known fields in number order, the
   * unknown fields after them as read, the head as a checkpoint
   * is written, then the CRC-32C trailer. Refuses what {@link #decode(byte[])} refuses, in its
   * order: a string holding a lone surrogate ({@code wire.utf8} at that field, as the grammar would
   * find it), the size limit, the byte grammar and the weight limit on the bytes produced, then the
   * rules of §13.1.
   *
   * @throws InvalidCheckpoint naming the path and the rule (of {@link DeltaRules} or {@link
   *     Rules}), for a delta {@code decode} would refuse
   */
  public static byte[] encode(CheckpointDelta delta) {
    String bad = loneSurrogate(delta, "", 0);
    if (bad != null) {
      throw new InvalidCheckpoint(
          bad, "string has a lone surrogate: no UTF-8 form", Rules.WIRE_UTF8);
    }
    byte[] out;
    try {
      out = Grammar.encodeBody(delta);
    } catch (ResumeMismatch e) {
      throw new InvalidCheckpoint(e.field(), e.detail(), e.rule());
    }
    try {
      check(delta);
    } catch (InvalidDelta e) {
      throw new InvalidCheckpoint(e.field(), e.detail(), e.rule());
    }
    Grammar.writeTrailer(out, out.length - Grammar.TRAILER_BYTES);
    return out;
  }

  /**
   * The rules of FORMAT.md §13.1, in order: the format identifier, the base generation, the head,
   * the kept bits, and no kept field held by the head.
   *
   * @throws InvalidDelta naming the first broken rule and its path
   */
  public static void check(CheckpointDelta delta) throws InvalidDelta {
    String format = delta.getFormat();
    if (!FORMAT_RE.matcher(format).matches()) {
      String shown =
          format.codePointCount(0, format.length()) > 80
              ? format.substring(0, format.offsetByCodePoints(0, 80))
              : format;
      throw new InvalidDelta(
          DeltaRules.DELTA_FORMAT,
          "format",
          format.isEmpty()
              ? "missing delta format identifier: not a dsxir delta"
              : "wrong delta format identifier \"" + shown + "\"");
    }
    if (delta.getBaseGeneration() == 0) {
      throw new InvalidDelta(
          DeltaRules.DELTA_BASE_GENERATION, "base_generation", "must be at least 1");
    }
    if (!delta.hasHead()) {
      throw new InvalidDelta(DeltaRules.DELTA_HEAD, "head", "is required");
    }
    int kept = delta.getKept();
    if ((kept & ~KEEPABLE) != 0) {
      throw new InvalidDelta(
          DeltaRules.DELTA_KEPT,
          "kept",
          String.format(
              "0x%X has a bit set outside the fields a delta may keep (mask 0x%X)",
              Integer.toUnsignedLong(kept),
              KEEPABLE));
    }
    Checkpoint head = delta.getHead();
    for (int k = 0; k < 32; k++) {
      if ((kept & (1 << k)) != 0 && holds(head, k)) {
        String name = Checkpoint.getDescriptor().findFieldByNumber(k).getName();
        throw new InvalidDelta(
            DeltaRules.DELTA_KEPT_IN_HEAD,
            "head." + name,
            "the head holds " + name + " (" + k + "), which the delta keeps from the base");
      }
    }
  }

  /** Whether field {@code k} of the head, one a delta may keep, appears in its canonical bytes. */
  private static boolean holds(Checkpoint head, int k) {
    FieldDescriptor field = keepable(k);
    return field.isRepeated() ? head.getRepeatedFieldCount(field) > 0 : head.hasField(field);
  }

  /** The Checkpoint field numbered {@code k}; refused unless a delta may keep it. */
  private static FieldDescriptor keepable(int k) {
    if ((KEEPABLE & (1 << k)) == 0) {
      throw new IllegalArgumentException("field " + k + " cannot be kept");
    }
    return Checkpoint.getDescriptor().findFieldByNumber(k);
  }

  /**
   * Applies a delta to its base (FORMAT.md §13.2): refuses a head whose session id is not the
   * base's ({@code delta.session}) and a {@code base_trials} that is not the length of the base's
   * trial log ({@code delta.base_trials}); the new checkpoint is the head with every kept field
   * set to the base's value (absent or empty when the base's is; unknown fields inside it
   * included) and, when the head has a progress, its trial log made of the base's entries then
   * the head's. The result must pass every rule of FORMAT.md §7 and the writer's size and weight
   * limits. A delta the rules of §13.1 refuse is refused first.
   *
   * @param base a valid checkpoint, as {@link Checkpoints#decode(byte[])} returns
   * @throws InvalidDelta for the rules of §13.1 and §13.2 (kind {@code delta_shape})
   * @throws ResumeMismatch of kind {@code checkpoint_shape} for a new checkpoint that breaks a rule
   *     of §7 or a writer's limit, at its path, e.g. {@code progress.trial_log[9].trial_idx}
   */
  public static Checkpoint apply(Checkpoint base, CheckpointDelta delta)
      throws InvalidDelta, ResumeMismatch {
    return applied(base, delta).checkpoint();
  }

  /**
   * Reads a base checkpoint and a delta and returns the canonical bytes of the checkpoint the
   * delta makes, sealed: {@link Checkpoints#decode(byte[])} of the base, {@link #decode(byte[])}
   * of the delta, then {@link #apply(Checkpoint, CheckpointDelta)}.
   *
   * @throws ResumeMismatch for a base the checkpoint reader refuses, or a new checkpoint that
   *     breaks a rule of §7 or a writer's limit
   * @throws InvalidDelta for delta bytes {@code decode} refuses, or a delta that does not apply to
   *     the base
   */
  public static byte[] apply(byte[] base, byte[] delta) throws InvalidDelta, ResumeMismatch {
    Checkpoint baseCheckpoint = Checkpoints.decode(base);
    return applied(baseCheckpoint, decode(delta)).bytes();
  }

  private record Applied(Checkpoint checkpoint, byte[] bytes) {}

  private static Applied applied(Checkpoint base, CheckpointDelta delta)
      throws InvalidDelta, ResumeMismatch {
    check(delta);
    checkBase(base, base.getProgress().getTrialLogCount(), delta);
    Checkpoint head = delta.getHead();
    Checkpoint.Builder out = headKeeping(base, delta);
    if (head.hasProgress()) {
      Progress.Builder progress = head.getProgress().toBuilder();
      progress.clearTrialLog();
      progress.addAllTrialLog(base.getProgress().getTrialLogList());
      progress.addAllTrialLog(head.getProgress().getTrialLogList());
      out.setProgress(progress);
    }
    Checkpoint result = out.build();
    byte[] bytes;
    try {
      bytes = Checkpoints.encode(result); // the rules of §7, then the size and weight limits
    } catch (InvalidCheckpoint e) {
      throw ResumeMismatch.shape(e.rule(), e.path(), e.detail());
    }
    return new Applied(result, bytes);
  }

  /**
   * FORMAT.md §13.2 steps 1-2: the head's session id is the base's ({@code delta.session}) and
   * {@code base_trials} is {@code trials}, the length of the base's trial log ({@code
   * delta.base_trials}).
   */
  private static void checkBase(Checkpoint base, long trials, CheckpointDelta delta)
      throws InvalidDelta {
    Checkpoint head = delta.getHead();
    if (!head.getSessionId().equals(base.getSessionId())) {
      throw new InvalidDelta(
          DeltaRules.DELTA_SESSION,
          "head.session_id",
          "the head is of session \""
              + head.getSessionId()
              + "\", the base of \""
              + base.getSessionId()
              + "\"");
    }
    if (delta.getBaseTrials() != trials) {
      throw new InvalidDelta(
          DeltaRules.DELTA_BASE_TRIALS,
          "base_trials",
          "is "
              + Long.toUnsignedString(delta.getBaseTrials())
              + ", but the base's trial log has "
              + trials
              + " entries");
    }
  }

  /**
   * Changes a base by a delta after FORMAT.md §13.2 steps 1-2 only, for a reader that applies
   * many deltas and checks the checkpoint they end with (docs/store-file.md §9.2): the result is
   * not checked against §7. The base is held in two parts, so that the work grows with the delta,
   * not with the trial log: {@code base}, the checkpoint without its trial entries, and {@code
   * log}, its trial entries. Returns the new checkpoint without its trial entries and changes
   * {@code log} into the new trial log: the head's entries appended when the head has a progress,
   * emptied when it has none.
   *
   * @param delta a delta {@link #decode(byte[])} returned
   * @throws InvalidDelta for another session ({@code delta.session}) or another trial count
   *     ({@code delta.base_trials})
   */
  static Checkpoint mergeUnchecked(
      Checkpoint base, List<TrialLogEntry> log, CheckpointDelta delta) throws InvalidDelta {
    checkBase(base, log.size(), delta);
    Checkpoint head = delta.getHead();
    Checkpoint.Builder out = headKeeping(base, delta);
    if (head.hasProgress()) {
      log.addAll(head.getProgress().getTrialLogList());
      out.setProgress(head.getProgress().toBuilder().clearTrialLog());
    } else {
      log.clear();
    }
    return out.build();
  }

  /** The head of {@code delta} with every field it keeps set to the base's value, or cleared. */
  private static Checkpoint.Builder headKeeping(Checkpoint base, CheckpointDelta delta) {
    Checkpoint.Builder out = delta.getHead().toBuilder();
    int kept = delta.getKept();
    for (int k = 0; k < 32; k++) {
      if ((kept & (1 << k)) != 0) {
        FieldDescriptor field = keepable(k);
        if (field.isRepeated() || base.hasField(field)) {
          out.setField(field, base.getField(field));
        } else {
          out.clearField(field);
        }
      }
    }
    return out;
  }

  /**
   * The path of the first string (in field-number order, depth first: the order of the bytes)
   * holding a lone surrogate, which has no UTF-8 form; null when there is none.
   */
  private static String loneSurrogate(Message message, String path, int depth) {
    if (depth > MAX_WALK_DEPTH) {
      return null; // nested past every Term the grammar accepts: refused as term.depth
    }
    for (Map.Entry<FieldDescriptor, Object> e : message.getAllFields().entrySet()) {
      FieldDescriptor field = e.getKey();
      String at = path.isEmpty() ? field.getName() : path + "." + field.getName();
      if (field.isRepeated()) {
        List<?> items = (List<?>) e.getValue();
        for (int i = 0; i < items.size(); i++) {
          String bad = loneSurrogate(field, items.get(i), at + "[" + i + "]", depth);
          if (bad != null) {
            return bad;
          }
        }
      } else {
        String bad = loneSurrogate(field, e.getValue(), at, depth);
        if (bad != null) {
          return bad;
        }
      }
    }
    return null;
  }

  private static String loneSurrogate(FieldDescriptor field, Object value, String at, int depth) {
    if (field.getType() == FieldDescriptor.Type.STRING) {
      return Checkpoints.wellFormed((String) value) ? null : at;
    }
    if (field.getType() == FieldDescriptor.Type.MESSAGE) {
      return loneSurrogate((Message) value, at, depth + 1);
    }
    return null;
  }
}
