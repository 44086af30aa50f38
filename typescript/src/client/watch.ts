/**
 * The events of WatchSession as the client reads them: the summary decoded,
 * and with the checkpoint view the session's checkpoint followed from event
 * to event (the whole checkpoint, or a delta applied to the previous one).
 *
 * @module
 */

import { fromBinary } from "@bufbuild/protobuf";
import { decode } from "../checkpoint.js";
import { applyDelta, decodeDelta, InvalidDelta } from "../delta.js";
import { ResumeMismatch } from "../errors.js";
import { type SessionSummary, SessionSummarySchema, WatchEventType } from "../gen/dsxir/checkpoint_store/v1/service_pb.js";
import type { Checkpoint } from "../gen/dsxir/optimizer_session/v1/checkpoint_pb.js";
import { CorruptStore } from "./errors.js";
import type { RawWatchSessionResponse } from "./messages.js";

/** The session's checkpoint after an event and its generation; no checkpoint and 0n when it has none. */
export interface Followed {
  checkpoint: Checkpoint | undefined;
  generation: bigint;
}

/** The nothing a watch follows before its first event, and after a delete. */
export const NOTHING: Followed = { checkpoint: undefined, generation: 0n };

/** The summary an event carries, if any; {@link CorruptStore} when it cannot be read. */
export function summaryOf(raw: RawWatchSessionResponse, sessionId: string): SessionSummary | undefined {
  if (raw.session.length === 0) {
    return undefined;
  }
  try {
    return fromBinary(SessionSummarySchema, concat(raw.session));
  } catch (e) {
    throw new CorruptStore(sessionId, `the server sent an unreadable summary: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * The checkpoint after an event of the checkpoint view, from the state it
 * carries and `previous`, the checkpoint after the event before it. A
 * checkpoint received is read with {@link decode}; a delta with
 * {@link decodeDelta}, must be based on `previous.generation` and is applied
 * with {@link applyDelta}. Anything else throws {@link CorruptStore}.
 */
export function follow(
  raw: RawWatchSessionResponse,
  session: SessionSummary | undefined,
  previous: Followed,
  sessionId: string,
): Followed {
  const corrupt = (detail: string): CorruptStore => new CorruptStore(sessionId, detail);
  const type = raw.type as WatchEventType;
  const name = WatchEventType[type] ?? String(raw.type);
  const hasCheckpoint = raw.checkpoint.length > 0;
  const hasDelta = raw.delta.length > 0;
  if (hasCheckpoint && hasDelta) {
    throw corrupt("the server sent an event with both a checkpoint and a delta");
  }
  switch (type) {
    case WatchEventType.DELETED:
      if (hasCheckpoint || hasDelta) {
        throw corrupt("the server sent a state with a delete event");
      }
      return NOTHING;
    case WatchEventType.INITIAL:
      if (session === undefined && !hasCheckpoint && !hasDelta) {
        return NOTHING; // the session does not exist
      }
      break;
    case WatchEventType.COMMITTED:
      break;
    default:
      throw corrupt(`the server sent an event of type ${name}`);
  }
  if (session === undefined || session.generation < 1n) {
    throw corrupt(`the server sent a ${name} event without the summary of a generation`);
  }
  let checkpoint: Checkpoint;
  try {
    if (hasCheckpoint) {
      checkpoint = decode(concat(raw.checkpoint));
    } else if (hasDelta) {
      if (type !== WatchEventType.COMMITTED) {
        throw corrupt(`the server sent a delta with a ${name} event`);
      }
      const delta = decodeDelta(concat(raw.delta));
      if (previous.checkpoint === undefined || delta.baseGeneration !== previous.generation) {
        const held = previous.checkpoint === undefined ? "none" : String(previous.generation);
        throw corrupt(
          `the server sent a delta on generation ${delta.baseGeneration}, the previous event's checkpoint is generation ${held}`,
        );
      }
      checkpoint = applyDelta(previous.checkpoint, delta);
    } else {
      throw corrupt(`the server sent a ${name} event without a checkpoint or a delta`);
    }
  } catch (e) {
    if (e instanceof InvalidDelta || e instanceof ResumeMismatch) {
      const what = hasCheckpoint ? "an invalid checkpoint" : "a delta that cannot be applied";
      throw corrupt(`the server sent ${what}: ${e.message}`);
    }
    throw e;
  }
  if (checkpoint.sessionId !== sessionId) {
    throw corrupt("the server sent another session");
  }
  return { checkpoint, generation: session.generation };
}

/** The bytes of a field's occurrences, concatenated. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) {
    return parts[0]!;
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
