/**
 * The ids of the rules a v1 reader applies to a checkpoint delta beyond the
 * byte grammar (spec/delta-rules-v1.json, FORMAT.md §13), the same in every
 * language. A delta's grammar refusals use the ids of {@link Rule}; so do the
 * refusals of the checkpoint a delta makes.
 */

/** The delta rule ids, in the order of spec/delta-rules-v1.json. */
export const DeltaRule = {
  /** The delta format identifier is not dsxir.optimizer_session.delta/v1.<minor> (FORMAT.md §13.1). */
  FORMAT: "delta.format",
  /** The base generation is 0 (FORMAT.md §13.1). */
  BASE_GENERATION: "delta.base_generation",
  /** The head is absent (FORMAT.md §13.1). */
  HEAD: "delta.head",
  /** Kept has a bit set outside the fields 3-7 and 10-15 (the mask 0xFCF8) (FORMAT.md §13.1). */
  KEPT: "delta.kept",
  /** The head holds a field the delta keeps from the base (FORMAT.md §13.1). */
  KEPT_IN_HEAD: "delta.kept_in_head",
  /** The head's session id is not the base's (FORMAT.md §13.2). */
  SESSION: "delta.session",
  /** The base's trial log does not have base_trials entries (FORMAT.md §13.2). */
  BASE_TRIALS: "delta.base_trials",
} as const;

/** One of the rule ids of {@link DeltaRule}. */
export type DeltaRuleId = (typeof DeltaRule)[keyof typeof DeltaRule];

const IDS: ReadonlySet<string> = new Set(Object.values(DeltaRule));

/** Whether `text` is one of the delta rule ids. */
export function isDeltaRuleId(text: unknown): text is DeltaRuleId {
  return typeof text === "string" && IDS.has(text);
}
