/**
 * Session status names: the words stores, listings and the command line use
 * (`running`, `paused`, `completed`, `failed`, `cancelled`), and the names of
 * a session's direction (`higher`, `lower`).
 */

import { type Checkpoint, Direction, SessionStatus } from "./gen/dsxir/optimizer_session/v1/checkpoint_pb.js";

const STATUS_NAMES: ReadonlyMap<number, string> = new Map([
  [SessionStatus.RUNNING, "running"],
  [SessionStatus.PAUSED, "paused"],
  [SessionStatus.COMPLETED, "completed"],
  [SessionStatus.FAILED, "failed"],
  [SessionStatus.CANCELLED, "cancelled"],
]);

const TERMINAL: ReadonlySet<number> = new Set([
  SessionStatus.COMPLETED,
  SessionStatus.FAILED,
  SessionStatus.CANCELLED,
]);

function statusOf(x: Checkpoint | SessionStatus): number {
  return typeof x === "number" ? x : x.status;
}

/**
 * The status as a word: running, paused, completed, failed or cancelled
 * (`unspecified` for any other value). Takes a checkpoint or a
 * `SessionStatus`.
 */
export function statusName(x: Checkpoint | SessionStatus): string {
  return STATUS_NAMES.get(statusOf(x)) ?? "unspecified";
}

/** Which scores a session prefers: `higher` (the default, also a v1.0 checkpoint's) or `lower`. */
export type DirectionName = "higher" | "lower";

/**
 * The direction of a checkpoint (or a `Direction`) as a word: `higher` or
 * `lower`; `undefined` for a number the format does not define.
 */
export function directionName(x: Checkpoint | Direction): DirectionName | undefined {
  const d = typeof x === "number" ? x : x.direction;
  return d === Direction.HIGHER ? "higher" : d === Direction.LOWER ? "lower" : undefined;
}

/** Whether the status (of a checkpoint, or a `SessionStatus`) is completed, failed or cancelled. */
export function isTerminal(x: Checkpoint | SessionStatus): boolean {
  return TERMINAL.has(statusOf(x));
}
