/**
 * Leases over the service: the {@link Lease} value, the checks the client
 * makes before sending (the ones every store makes, as the Python client
 * does), and the conversions of the `Lease` message.
 *
 * - `holder`: non-empty, at most {@link MAX_HOLDER_BYTES} bytes of UTF-8,
 *   well-formed (no lone surrogate), without control characters (C0, DEL,
 *   C1);
 * - `ttlMs`: a finite number of milliseconds, positive and at most
 *   {@link MAX_LEASE_TTL_MS} (one day), at least a nanosecond;
 * - a lease's token: one no store gives (empty, longer than 256 bytes) is
 *   never sent.
 *
 * @module
 */

import { inspect } from "node:util";
import { create } from "@bufbuild/protobuf";
import { type Duration, DurationSchema } from "@bufbuild/protobuf/wkt";
import type { Lease as LeaseMessage } from "../gen/dsxir/checkpoint_store/v1/service_pb.js";
import { localInvalidRequest, ServiceError, StatusCode } from "./errors.js";

/** The longest holder name a store accepts, in bytes of UTF-8. */
export const MAX_HOLDER_BYTES = 256;

/** The longest lease a store grants, in milliseconds (one day). */
export const MAX_LEASE_TTL_MS = 86_400_000;

const MAX_TOKEN_BYTES = 256;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const MIN_SECONDS = -62135596800n; // 0001-01-01T00:00:00Z, the first time a Timestamp holds
const MAX_SECONDS = 253402300799n; // 9999-12-31T23:59:59Z, the last

/**
 * A worker's hold on a session until `expiresAt` (on the server's clock).
 *
 * `token` is the secret handle that renews and releases the lease; it is
 * empty in what `getLease` returns. `toString`, `toJSON` and Node's
 * `inspect` (`console.log`) leave it out, so a logged or printed lease never
 * shows it. `holder` is the name the worker gave itself (e.g. `"host:pid"`),
 * shown to the workers it refuses.
 */
export class Lease {
  readonly sessionId: string;
  readonly holder: string;
  readonly expiresAt: Date;
  readonly #token: string;

  constructor(sessionId: string, holder: string, token: string, expiresAt: Date) {
    this.sessionId = sessionId;
    this.holder = holder;
    this.#token = token;
    this.expiresAt = expiresAt;
  }

  /** The lease's secret handle (empty for a lease read with `getLease`). */
  get token(): string {
    return this.#token;
  }

  /** Whether the lease has ended at `now` (default: the local clock). */
  expired(now: Date = new Date()): boolean {
    return this.expiresAt.getTime() <= now.getTime();
  }

  toString(): string {
    return `Lease(session ${JSON.stringify(this.sessionId)}, holder ${JSON.stringify(this.holder)}, expires ${this.expiresAt.toISOString()})`;
  }

  /** The lease without its token. */
  toJSON(): { sessionId: string; holder: string; expiresAt: string } {
    return { sessionId: this.sessionId, holder: this.holder, expiresAt: this.expiresAt.toISOString() };
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** Refuse, before anything is sent, a holder name a store refuses (InvalidRequest on `holder`). */
export function checkHolder(holder: unknown): string {
  if (typeof holder !== "string") {
    throw new TypeError(`holder must be a string, not ${typeof holder}`);
  }
  if (holder === "") {
    throw localInvalidRequest("holder", "must not be empty");
  }
  if (LONE_SURROGATE.test(holder)) {
    throw localInvalidRequest("holder", "is not valid Unicode (lone surrogate)");
  }
  const size = Buffer.byteLength(holder, "utf8");
  if (size > MAX_HOLDER_BYTES) {
    throw localInvalidRequest("holder", `is ${size} bytes of UTF-8, over the limit of ${MAX_HOLDER_BYTES}`);
  }
  const found = CONTROL.exec(holder);
  if (found !== null) {
    const code = found[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
    throw localInvalidRequest("holder", `contains the control character U+${code}`);
  }
  return holder;
}

/** The Duration of `ttlMs` milliseconds, or InvalidRequest on `ttl` when a store does not grant it. */
export function ttlDuration(ttlMs: unknown): Duration {
  if (typeof ttlMs !== "number") {
    throw new TypeError(`ttlMs must be a number of milliseconds, not ${typeof ttlMs}`);
  }
  if (!(Number.isFinite(ttlMs) && ttlMs > 0 && ttlMs <= MAX_LEASE_TTL_MS)) {
    throw localInvalidRequest("ttl", `must be a finite number of milliseconds in (0, ${MAX_LEASE_TTL_MS}], got ${ttlMs}`);
  }
  const nanos = BigInt(Math.round(ttlMs * 1e6));
  if (nanos === 0n) {
    throw localInvalidRequest("ttl", `must be at least a nanosecond, got ${ttlMs} ms`);
  }
  return create(DurationSchema, { seconds: nanos / 1_000_000_000n, nanos: Number(nanos % 1_000_000_000n) });
}

/** Whether `token` could be a token a store gave (non-empty, at most 256 bytes of UTF-8). */
export function plausibleToken(token: unknown): token is string {
  return typeof token === "string" && token !== "" && Buffer.byteLength(token, "utf8") <= MAX_TOKEN_BYTES;
}

/** The lease a Lease message describes; a ServiceError (INTERNAL) when it is no lease a store gives. */
export function leaseOf(message: LeaseMessage | undefined): Lease {
  const stamp = message?.expiresAt;
  if (message === undefined || stamp === undefined) {
    throw invalidLease("the server sent a lease without expires_at");
  }
  if (stamp.seconds < MIN_SECONDS || stamp.seconds > MAX_SECONDS || stamp.nanos < 0 || stamp.nanos >= 1e9) {
    throw invalidLease("the server sent an invalid lease: expires_at is not a valid time");
  }
  if (message.holder !== "") {
    try {
      checkHolder(message.holder);
    } catch {
      throw invalidLease("the server sent an invalid lease: a holder no store accepts");
    }
  }
  // Milliseconds cut down, as Date.parse reads the RFC 3339 times of LeaseHeld.
  const ms = Number(stamp.seconds) * 1000 + Math.floor(stamp.nanos / 1e6);
  return new Lease(message.sessionId, message.holder, message.token, new Date(ms));
}

/** The error of a lease the server should never have sent. */
export function invalidLease(message: string): ServiceError {
  return new ServiceError(StatusCode.INTERNAL, message);
}
