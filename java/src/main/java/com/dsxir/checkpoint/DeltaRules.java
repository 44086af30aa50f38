package com.dsxir.checkpoint;

import java.util.List;

/**
 * The stable ids of the rules a v1 reader applies to a checkpoint delta beyond the byte grammar:
 * one constant per rule of spec/delta-rules-v1.json (FORMAT.md §13), the same ids in every
 * language. Grammar refusals of a delta use the ids of {@link Rules} ({@code input.*}, {@code
 * wire.*}, {@code term.depth}), and so does a refusal of the checkpoint a delta makes.
 */
public final class DeltaRules {
  /**
   * At {@code format} (FORMAT.md §13.1): the delta format identifier is not
   * dsxir.optimizer_session.delta/v1.&lt;minor&gt;.
   */
  public static final String DELTA_FORMAT = "delta.format";

  /** At {@code base_generation} (FORMAT.md §13.1): the base generation is 0. */
  public static final String DELTA_BASE_GENERATION = "delta.base_generation";

  /** At {@code head} (FORMAT.md §13.1): the head is absent. */
  public static final String DELTA_HEAD = "delta.head";

  /**
   * At {@code kept} (FORMAT.md §13.1): kept has a bit set outside the fields 3-7 and 10-15 (the
   * mask 0xFCF8).
   */
  public static final String DELTA_KEPT = "delta.kept";

  /** At {@code head.<name>} (FORMAT.md §13.1): the head holds a field the delta keeps. */
  public static final String DELTA_KEPT_IN_HEAD = "delta.kept_in_head";

  /** At {@code head.session_id} (FORMAT.md §13.2): the head's session id is not the base's. */
  public static final String DELTA_SESSION = "delta.session";

  /**
   * At {@code base_trials} (FORMAT.md §13.2): the base's trial log does not have base_trials
   * entries.
   */
  public static final String DELTA_BASE_TRIALS = "delta.base_trials";

  /** Every id, in the order of spec/delta-rules-v1.json. */
  public static final List<String> ALL =
      List.of(
          DELTA_FORMAT,
          DELTA_BASE_GENERATION,
          DELTA_HEAD,
          DELTA_KEPT,
          DELTA_KEPT_IN_HEAD,
          DELTA_SESSION,
          DELTA_BASE_TRIALS);

  private DeltaRules() {}
}
