/**
 * A client of CheckpointStoreService, the checkpoint store served over gRPC
 * (docs/service.md; the Python server runs with `dsxir-checkpoint serve`).
 *
 * It keeps the semantics of the Python and Go clients and of a local store:
 *
 * - every commit is compare-and-swap on the session's generation
 *   ({@link CheckpointStoreClient.put}: expected generation 0 creates);
 * - a checkpoint is validated and encoded with {@link encode} before it is
 *   sent, so one a reader would refuse fails with {@link InvalidCheckpoint}
 *   and nothing is sent; its bytes cross the wire as `encode` wrote them;
 * - a checkpoint received is checked with {@link decode} on the bytes the
 *   server sent: one that breaks a rule of FORMAT.md, or is another session,
 *   is a {@link CorruptStore};
 * - a delta ({@link CheckpointStoreClient.putDelta}) is checked and encoded
 *   with {@link encodeDelta} before it is sent; one received
 *   ({@link CheckpointStoreClient.watchCheckpoints}) is read with
 *   {@link decodeDelta} and applied with {@link applyDelta};
 * - a failed call throws the error a local store throws for the same
 *   failure, or a {@link ServiceError} subclass (see `client/errors.ts`);
 * - a session's lease ({@link CheckpointStoreClient.acquireLease} and the
 *   calls after it) keeps it to one worker at a time, as the stores' leases
 *   do (docs/stores.md); a {@link Lease}'s token never shows in an error,
 *   `toString`, `toJSON` or `inspect`;
 * - nothing is retried behind the caller's back: a commit that fails with
 *   {@link Unavailable} may or may not have been made, so read the session
 *   and compare generations before trying again.
 *
 * The transport is gRPC over HTTP/2 (Connect for Node.js), plaintext or TLS.
 * A bearer token is sent as `authorization: Bearer <token>` on every call;
 * it is refused over plaintext to a host other than loopback unless
 * `insecure: true` says to send it anyway.
 *
 * @module
 */

import type { SecureClientSessionOptions } from "node:http2";
import { BlockList, isIP } from "node:net";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { decode, encode } from "./checkpoint.js";
import { encodeDelta } from "./delta.js";
import { CorruptStore, fromCallError, LeaseLost, localInvalidRequest, ServiceError, StatusCode } from "./client/errors.js";
import { checkHolder, invalidLease, Lease, leaseOf, plausibleToken, ttlDuration } from "./client/leases.js";
import {
  acquireLease,
  deleteCheckpoint,
  getCheckpointRaw,
  getLease,
  listSessions,
  putCheckpointDeltaRaw,
  putCheckpointRaw,
  type RawWatchSessionResponse,
  releaseLease,
  renewLease,
  watchSessionRaw,
} from "./client/messages.js";
import { concat, follow, type Followed, NOTHING, summaryOf } from "./client/watch.js";
import { ResumeMismatch } from "./errors.js";
import {
  type ListSessionsRequest,
  ListSessionsRequestSchema,
  type SessionSummary,
  type WatchEventType,
  WatchView,
} from "./gen/dsxir/checkpoint_store/v1/service_pb.js";
import { type Checkpoint, type CheckpointDelta, SessionStatus } from "./gen/dsxir/optimizer_session/v1/checkpoint_pb.js";
import { MAX_CHECKPOINT_BYTES } from "./validate.js";

export {
  Conflict,
  CorruptStore,
  ERROR_DOMAIN,
  IllegalHistory,
  InvalidRequest,
  InvalidSessionId,
  LeaseHeld,
  LeaseLost,
  NotFound,
  ResourceExhausted,
  ServiceError,
  StatusCode,
  Unauthenticated,
  Unavailable,
} from "./client/errors.js";
export { Lease, MAX_HOLDER_BYTES, MAX_LEASE_TTL_MS } from "./client/leases.js";

/**
 * The largest message the client sends or accepts: the largest checkpoint a
 * reader accepts plus 64 KiB for the rest of a message, as the server's own
 * ceiling.
 */
export const MESSAGE_LIMIT = MAX_CHECKPOINT_BYTES + 64 * 1024;

/** The deadline of every unary call unless `timeoutMs` says otherwise: 60 s. */
export const DEFAULT_TIMEOUT_MS = 60_000;

/** The largest page ListSessions returns, and the page size {@link CheckpointStoreClient.list} asks for. */
export const MAX_PAGE_SIZE = 1000;

/** The shortest bearer token accepted, as by the server. */
export const MIN_TOKEN_CHARS = 16;

const MAX_INT64 = (1n << 63n) - 1n;

/** Options of {@link createCheckpointStoreClient}. */
export interface CheckpointStoreClientOptions {
  /**
   * A bearer token sent on every call (`authorization: Bearer <token>`), as
   * the server's `--token-file` / `--token-env` ask. Like the server, the
   * client refuses a token shorter than 16 characters or with characters
   * other than printable ASCII without spaces.
   */
  token?: string;
  /**
   * Connect over TLS: `true` with the system's roots, or the options of the
   * TLS connection (`ca`, `cert` and `key` for a client certificate,
   * `servername`…). Plaintext without it.
   */
  tls?: boolean | SecureClientSessionOptions;
  /**
   * Send the token over plaintext to a host other than loopback
   * (`localhost`, 127.0.0.0/8, `::1`). Without it such a client is refused:
   * off loopback, use `tls`. Meaningless with `tls`, and refused there.
   */
  insecure?: boolean;
  /**
   * The deadline of every unary call, in milliseconds ({@link DEFAULT_TIMEOUT_MS}
   * without this option; 0: none). Watch streams have no deadline.
   */
  timeoutMs?: number;
  /** The page size {@link CheckpointStoreClient.list} asks for, 1 to 1000 (default 1000). */
  pageSize?: number;
}

/** Per-call options of the unary calls. */
export interface CallOptions {
  /** Ends the call when aborted; it then fails with a {@link ServiceError} of code CANCELLED. */
  signal?: AbortSignal;
  /** The call's deadline in milliseconds, in place of the client's `timeoutMs` (0: none). */
  timeoutMs?: number;
}

/** A checkpoint read back, with the generation it was committed as. */
export interface StoredCheckpoint {
  checkpoint: Checkpoint;
  /** At least 1; send it as the expected generation of the next put. */
  generation: bigint;
}

/** What {@link CheckpointStoreClient.list} selects; filters combine with AND. */
export interface ListFilter {
  /** Only sessions with this status (absent or `SESSION_STATUS_UNSPECIFIED`: any). */
  status?: SessionStatus;
  /** Only sessions of this optimizer, exact match (absent or empty: any). */
  optimizer?: string;
  /**
   * Only sessions whose checkpoint's `updated_at` is at or after this time,
   * compared at microsecond precision (absent: any time).
   */
  updatedSince?: Date | Timestamp;
}

/** One event of a watched session. */
export interface WatchEvent {
  /**
   * `WATCH_EVENT_TYPE_INITIAL` (always first: the session as it was when the
   * watch started), then `WATCH_EVENT_TYPE_COMMITTED` or
   * `WATCH_EVENT_TYPE_DELETED`.
   */
  type: WatchEventType;
  /** The session the event is about. */
  sessionId: string;
  /**
   * The session's summary after the event; undefined for a deleted session,
   * and for the initial event of a session that did not exist.
   */
  session: SessionSummary | undefined;
}

/** One event of {@link CheckpointStoreClient.watchCheckpoints}: the event with the session's checkpoint. */
export interface CheckpointWatchEvent extends WatchEvent {
  /**
   * The session's checkpoint after the event: set on every COMMITTED event
   * and on the INITIAL event of a session that exists, undefined otherwise.
   * Treat it as read-only: the watch applies the next delta to it.
   */
  checkpoint: Checkpoint | undefined;
  /** The generation of `checkpoint`; 0n when it is undefined. */
  generation: bigint;
}

/**
 * A client of the service at `address` (`HOST:PORT`; `[::1]:PORT` for an
 * IPv6 address). The connection is made lazily, on the first call;
 * {@link CheckpointStoreClient.close} releases it. Throws a TypeError for
 * bad options and an Error when a token would go over plaintext to another
 * host (see {@link CheckpointStoreClientOptions.insecure}).
 */
export function createCheckpointStoreClient(
  address: string,
  options: CheckpointStoreClientOptions = {},
): CheckpointStoreClient {
  return new CheckpointStoreClient(address, options);
}

/** A client of one CheckpointStoreService; safe for concurrent calls. See {@link createCheckpointStoreClient}. */
export class CheckpointStoreClient {
  /** The `HOST:PORT` the client calls. */
  readonly address: string;
  readonly #transport: Transport;
  readonly #session: Http2SessionManager;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;
  readonly #pageSize: number;
  readonly #closing = new AbortController();

  constructor(address: string, options: CheckpointStoreClientOptions = {}) {
    const { host, port } = splitAddress(address);
    const tls = options.tls ?? false;
    if (typeof tls !== "boolean" && (typeof tls !== "object" || tls === null)) {
      throw new TypeError("tls must be a boolean or the options of a TLS connection");
    }
    const secure = tls !== false;
    if (options.insecure === true && secure) {
      throw new TypeError("insecure is for plaintext connections; it cannot go with tls");
    }
    const headers: Record<string, string> = {};
    if (options.token !== undefined) {
      checkToken(options.token);
      if (!secure && options.insecure !== true && !isLoopback(host)) {
        throw new Error(
          `refusing to send the bearer token in plain text to ${address}: ` +
            "use tls, or allow it with insecure: true",
        );
      }
      headers["authorization"] = `Bearer ${options.token}`;
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    checkTimeout(timeoutMs, "timeoutMs");
    const pageSize = options.pageSize ?? MAX_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
      throw new TypeError(`pageSize must be an integer from 1 to ${MAX_PAGE_SIZE}`);
    }
    const hostPart = isIP(host) === 6 ? `[${host}]` : host;
    const baseUrl = `${secure ? "https" : "http"}://${hostPart}:${port}`;
    this.address = address;
    this.#headers = headers;
    this.#timeoutMs = timeoutMs;
    this.#pageSize = pageSize;
    this.#session = new Http2SessionManager(baseUrl, {}, typeof tls === "object" ? { ...tls } : {});
    this.#transport = createGrpcTransport({
      baseUrl,
      sessionManager: this.#session,
      readMaxBytes: MESSAGE_LIMIT,
      writeMaxBytes: MESSAGE_LIMIT,
    });
  }

  /**
   * Commit `cp` under the compare-and-swap rule and return the new
   * generation. With `expectedGeneration` 0 (the default) it creates the
   * session (generation 1); with g >= 1 it commits generation g + 1 when the
   * stored generation is still g. Otherwise it throws {@link Conflict} and
   * nothing is stored. `cp` is validated and encoded with {@link encode}
   * first: a checkpoint a reader would refuse throws {@link InvalidCheckpoint}
   * (naming the field) before anything is sent; so does one the server
   * refuses.
   */
  async put(cp: Checkpoint, expectedGeneration: bigint | number = 0n, call: CallOptions = {}): Promise<bigint> {
    const expected = checkGeneration(expectedGeneration);
    const body = encode(cp);
    const sessionId = cp.sessionId;
    const response = await this.#unary(sessionId, call, (signal, timeoutMs) =>
      // Field 1 holds the bytes of encode; field 2 is left out when 0, as proto3 does.
      this.#transport.unary(
        putCheckpointRaw,
        signal,
        timeoutMs,
        this.#headers,
        expected === 0n ? { checkpoint: body } : { checkpoint: body, expectedGeneration: expected },
      ),
    );
    const generation = response.message.generation;
    if (generation < 1n) {
      throw new CorruptStore(sessionId, `the server answered generation ${generation}`);
    }
    return generation;
  }

  /**
   * Commit what `delta` (FORMAT.md §13) adds to the stored checkpoint, under
   * the compare-and-swap rule with `delta.baseGeneration` as the expected
   * generation, and return the new generation, `baseGeneration + 1n`. A base
   * generation that is not the stored one, or a session that does not exist,
   * throws {@link Conflict} and nothing is stored. `delta` is checked and
   * encoded with {@link encodeDelta} first: a delta a reader would refuse
   * throws {@link InvalidDelta} before anything is sent. A delta the server
   * refuses (one that does not apply to the stored checkpoint) throws
   * {@link InvalidDelta} naming the delta's field; a new checkpoint that
   * breaks a rule of FORMAT.md, {@link InvalidCheckpoint}; one that is not a
   * legal successor, {@link IllegalHistory}.
   */
  async putDelta(delta: CheckpointDelta, call: CallOptions = {}): Promise<bigint> {
    const body = encodeDelta(delta);
    const sessionId = delta.head?.sessionId ?? "";
    const base = delta.baseGeneration;
    const response = await this.#unary(sessionId, call, (signal, timeoutMs) =>
      this.#transport.unary(putCheckpointDeltaRaw, signal, timeoutMs, this.#headers, { delta: body }),
    );
    const generation = response.message.generation;
    if (generation !== base + 1n) {
      throw new CorruptStore(sessionId, `the server answered generation ${generation} to a delta on generation ${base}`);
    }
    return generation;
  }

  /**
   * The latest committed checkpoint of a session and its generation (send it
   * as the expected generation of the next put); {@link NotFound} when none
   * is stored. The checkpoint is checked with {@link decode} on the bytes
   * received: one that breaks a rule of FORMAT.md, or another session, is a
   * {@link CorruptStore}.
   */
  async get(sessionId: string, call: CallOptions = {}): Promise<StoredCheckpoint> {
    const response = await this.#unary(sessionId, call, (signal, timeoutMs) =>
      this.#transport.unary(getCheckpointRaw, signal, timeoutMs, this.#headers, { sessionId }),
    );
    const { checkpoint: parts, generation } = response.message;
    let checkpoint: Checkpoint;
    try {
      checkpoint = decode(concat(parts));
    } catch (e) {
      if (e instanceof ResumeMismatch) {
        throw new CorruptStore(sessionId, `the server sent an invalid checkpoint: ${e.message}`);
      }
      throw e;
    }
    if (checkpoint.sessionId !== sessionId || generation < 1n) {
      throw new CorruptStore(sessionId, "the server sent another session");
    }
    return { checkpoint, generation };
  }

  /**
   * The summaries of every session matching `filter`, ordered by session id
   * (by the bytes of its UTF-8 encoding), reading every page (AIP-158).
   * Summaries hold no trial log. The server leaves damaged sessions out.
   */
  async list(filter: ListFilter = {}, call: CallOptions = {}): Promise<SessionSummary[]> {
    const request: ListSessionsRequest = create(ListSessionsRequestSchema, {
      pageSize: this.#pageSize,
      status: filter.status ?? SessionStatus.UNSPECIFIED,
      optimizer: filter.optimizer ?? "",
    });
    if (filter.updatedSince !== undefined) {
      request.updatedSince =
        filter.updatedSince instanceof Date ? timestampFromDate(filter.updatedSince) : filter.updatedSince;
    }
    const found: SessionSummary[] = [];
    for (;;) {
      const response = await this.#unary(null, call, (signal, timeoutMs) =>
        this.#transport.unary(listSessions, signal, timeoutMs, this.#headers, request),
      );
      found.push(...response.message.sessions);
      const next = response.message.nextPageToken;
      if (next === "") {
        return found;
      }
      request.pageToken = next;
    }
  }

  /**
   * Forget a session and its generation. Deleting a session that does not
   * exist succeeds; a session created again starts at generation 1.
   */
  async delete(sessionId: string, call: CallOptions = {}): Promise<void> {
    await this.#unary(sessionId, call, (signal, timeoutMs) =>
      this.#transport.unary(deleteCheckpoint, signal, timeoutMs, this.#headers, { sessionId }),
    );
  }

  /**
   * Take the lease of `sessionId` (it need not exist yet) for `ttlMs`
   * milliseconds, measured on the server's clock: granted when nobody holds
   * it or the current lease has expired; {@link LeaseHeld} naming the holder
   * and the lease's end otherwise. `holder` (non-empty, at most
   * {@link MAX_HOLDER_BYTES} bytes of UTF-8, no control characters) and
   * `ttlMs` (positive, at most {@link MAX_LEASE_TTL_MS}) are checked before
   * anything is sent: {@link InvalidRequest} naming the field.
   */
  async acquireLease(sessionId: string, holder: string, ttlMs: number, call: CallOptions = {}): Promise<Lease> {
    checkHolder(holder);
    const ttl = ttlDuration(ttlMs);
    const response = await this.#unary(sessionId, call, (signal, timeoutMs) =>
      this.#transport.unary(acquireLease, signal, timeoutMs, this.#headers, { sessionId, holder, ttl }),
    );
    return granted(leaseOf(response.message.lease), sessionId);
  }

  /**
   * Extend a lease the caller holds to now + `ttlMs` (server's clock) and
   * return it with its new end; {@link LeaseLost} when it is no longer the
   * session's lease (released, or expired and taken over), and without a
   * call for a token no store gives. `ttlMs` is checked as in
   * {@link CheckpointStoreClient.acquireLease}.
   */
  async renewLease(lease: Lease, ttlMs: number, call: CallOptions = {}): Promise<Lease> {
    checkLease(lease);
    const ttl = ttlDuration(ttlMs);
    const { sessionId, token } = lease;
    if (!plausibleToken(token)) {
      throw new LeaseLost(sessionId, "not a lease token of this store");
    }
    const response = await this.#unary(sessionId, call, (signal, timeoutMs) =>
      this.#transport.unary(renewLease, signal, timeoutMs, this.#headers, { sessionId, token, ttl }),
    );
    return granted(leaseOf(response.message.lease), sessionId);
  }

  /**
   * Give a lease up. Releasing a lease that is no longer the session's
   * (already released, or taken over) succeeds and changes nothing.
   */
  async releaseLease(lease: Lease, call: CallOptions = {}): Promise<void> {
    checkLease(lease);
    const { sessionId, token } = lease;
    if (!plausibleToken(token)) {
      return; // never the session's lease
    }
    await this.#unary(sessionId, call, (signal, timeoutMs) =>
      this.#transport.unary(releaseLease, signal, timeoutMs, this.#headers, { sessionId, token }),
    );
  }

  /** The session's lease (expired or not) without its token, or null when it has none. */
  async getLease(sessionId: string, call: CallOptions = {}): Promise<Lease | null> {
    const response = await this.#unary(sessionId, call, (signal, timeoutMs) =>
      this.#transport.unary(getLease, signal, timeoutMs, this.#headers, { sessionId }),
    );
    if (response.message.lease === undefined) {
      return null;
    }
    const found = leaseOf(response.message.lease);
    if (found.sessionId !== sessionId) {
      throw invalidLease("the server sent another session's lease");
    }
    return new Lease(found.sessionId, found.holder, "", found.expiresAt);
  }

  /**
   * Watch a session (it need not exist yet): first one initial event with
   * the session as it is, then one event on every later commit and delete,
   * in commit order. Once the initial event has arrived no later commit can
   * be missed. The stream has no deadline.
   *
   * Iteration ends quietly when `signal` aborts, when the loop is left
   * (`break`) or when the client is closed (events received but not yet read
   * are then dropped). Otherwise it throws the error of the status that ended
   * the stream: {@link Unavailable} when the server shuts down, is lost or
   * its commit feed is interrupted; a {@link ServiceError} of code ABORTED
   * (reason WATCH_OVERFLOW) for a watcher that fell too far behind;
   * {@link Unauthenticated} without a valid token. Watch again after an
   * error: the initial event gives the current state.
   */
  async *watch(sessionId: string, signal?: AbortSignal): AsyncGenerator<WatchEvent, void, undefined> {
    for await (const raw of this.#watch(sessionId, WatchView.UNSPECIFIED, signal)) {
      yield { type: raw.type as WatchEventType, sessionId: raw.sessionId, session: summaryOf(raw, sessionId) };
    }
  }

  /**
   * Watch a session as {@link CheckpointStoreClient.watch} does, with the
   * session's checkpoint in every event that has one (`checkpoint` and
   * `generation`), kept without reading it again (`WATCH_VIEW_CHECKPOINT`):
   * the initial event brings the whole checkpoint, and each commit either a
   * delta (FORMAT.md §13) that the watch applies to the checkpoint of the
   * previous event or the whole new checkpoint. Every checkpoint received is
   * checked with {@link decode}, every delta with {@link decodeDelta} and
   * {@link applyDelta}, and a delta must be based on the previous event's
   * generation; events that break this end the watch with
   * {@link CorruptStore}.
   */
  async *watchCheckpoints(sessionId: string, signal?: AbortSignal): AsyncGenerator<CheckpointWatchEvent, void, undefined> {
    let state: Followed = NOTHING;
    for await (const raw of this.#watch(sessionId, WatchView.CHECKPOINT, signal)) {
      const session = summaryOf(raw, sessionId);
      state = follow(raw, session, state, sessionId);
      yield { type: raw.type as WatchEventType, sessionId: raw.sessionId, session, ...state };
    }
  }

  async *#watch(
    sessionId: string,
    view: WatchView,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<RawWatchSessionResponse, void, undefined> {
    this.#checkOpen();
    const link = linkSignals(this.#closing.signal, signal);
    try {
      if (link.signal.aborted) {
        return;
      }
      const response = await this.#transport.stream(
        watchSessionRaw,
        link.signal,
        undefined,
        this.#headers,
        once(view === WatchView.UNSPECIFIED ? { sessionId } : { sessionId, view }),
      );
      yield* response.message;
    } catch (e) {
      if (link.signal.aborted) {
        return;
      }
      throw fromCallError(e, sessionId, false);
    } finally {
      link.abort();
    }
  }

  /** Release the connection. Calls in flight fail (watches end quietly); later calls throw. Idempotent. */
  close(): void {
    if (this.#closing.signal.aborted) {
      return;
    }
    this.#closing.abort();
    this.#session.abort();
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closing.signal.aborted;
  }

  async #unary<R>(
    sessionId: string | null,
    call: CallOptions,
    run: (signal: AbortSignal, timeoutMs: number | undefined) => Promise<R>,
  ): Promise<R> {
    this.#checkOpen();
    const timeoutMs = call.timeoutMs ?? this.#timeoutMs;
    checkTimeout(timeoutMs, "timeoutMs");
    const link = linkSignals(this.#closing.signal, call.signal);
    try {
      return await run(link.signal, timeoutMs === 0 ? undefined : timeoutMs);
    } catch (e) {
      throw fromCallError(e, sessionId, link.signal.aborted);
    } finally {
      link.abort();
    }
  }

  #checkOpen(): void {
    if (this.#closing.signal.aborted) {
      throw new ServiceError(StatusCode.CANCELLED, `the client of ${this.address} is closed`);
    }
  }
}

/** The lease of an AcquireLease or RenewLease response: one of the session, with a token. */
function granted(lease: Lease, sessionId: string): Lease {
  if (lease.sessionId !== sessionId || lease.token === "") {
    throw invalidLease("the server sent no lease of the session");
  }
  return lease;
}

/** Refuse what is not a {@link Lease} (a TypeError). */
function checkLease(lease: unknown): asserts lease is Lease {
  if (!(lease instanceof Lease)) {
    throw new TypeError("lease must be a Lease (from acquireLease or renewLease)");
  }
}

/** The host and port of `HOST:PORT` or `[IPV6]:PORT`. */
function splitAddress(address: string): { host: string; port: number } {
  if (typeof address !== "string") {
    throw new TypeError("the address must be a string, HOST:PORT");
  }
  const match = /^(?:\[([^\]]+)\]|([^:[\]/\s@?#]+)):([0-9]{1,5})$/.exec(address);
  const port = match === null ? NaN : Number(match[3]);
  const host = match === null ? "" : (match[1] ?? match[2] ?? "");
  if (match === null || port < 1 || port > 65535 || (match[1] !== undefined && isIP(host) !== 6)) {
    throw new TypeError(`address ${JSON.stringify(address)}: expected HOST:PORT, or [IPV6]:PORT`);
  }
  return { host, port };
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");
LOOPBACK.addSubnet("::ffff:127.0.0.0", 104, "ipv6");

/** Whether a host is this machine: `localhost`, 127.0.0.0/8 or `::1`. */
function isLoopback(host: string): boolean {
  if (host.toLowerCase() === "localhost") {
    return true;
  }
  const family = isIP(host);
  if (family === 4) {
    return LOOPBACK.check(host, "ipv4");
  }
  if (family === 6) {
    return LOOPBACK.check(host, "ipv6");
  }
  return false;
}

function checkToken(token: unknown): void {
  if (typeof token !== "string" || token.length < MIN_TOKEN_CHARS) {
    throw new TypeError(`a token must be a string of at least ${MIN_TOKEN_CHARS} characters`);
  }
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) {
      throw new TypeError("a token must be printable ASCII without spaces");
    }
  }
}

function checkTimeout(ms: unknown, name: string): void {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
    throw new TypeError(`${name} must be a finite number of milliseconds, 0 or more`);
  }
}

/** The expected generation as an int64, or the error of a request field refused locally. */
function checkGeneration(g: bigint | number): bigint {
  if (typeof g === "number") {
    if (!Number.isSafeInteger(g)) {
      throw localInvalidRequest("expected_generation", `must be an integer, got ${g}`);
    }
    g = BigInt(g);
  } else if (typeof g !== "bigint") {
    throw localInvalidRequest("expected_generation", `must be a bigint or a number, got ${typeof g}`);
  }
  if (g < 0n || g > MAX_INT64) {
    throw localInvalidRequest("expected_generation", `must be from 0 to ${MAX_INT64}, got ${g}`);
  }
  return g;
}

async function* once<T>(value: T): AsyncIterable<T> {
  yield value;
}

/** An AbortController aborted when any of `signals` aborts; `abort()` also detaches it from them. */
function linkSignals(...signals: (AbortSignal | undefined)[]): AbortController {
  const controller = new AbortController();
  const listeners: [AbortSignal, () => void][] = [];
  const detach = (): void => {
    for (const [s, l] of listeners) {
      s.removeEventListener("abort", l);
    }
    listeners.length = 0;
  };
  controller.signal.addEventListener("abort", detach, { once: true });
  for (const s of signals) {
    if (s === undefined) {
      continue;
    }
    if (s.aborted) {
      controller.abort(s.reason);
      break;
    }
    const listener = (): void => controller.abort(s.reason);
    s.addEventListener("abort", listener, { once: true });
    listeners.push([s, listener]);
  }
  return controller;
}
