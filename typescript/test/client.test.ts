/**
 * The store client against the real Python server (`python -m dsxir.cli
 * serve`, from the repository's .venv made by `make setup`), over loopback.
 * Without the venv these tests fail: the client is only tested against the
 * real server.
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createPrivateKey, generateKeyPairSync, sign } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttp2Server } from "node:http2";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { inspect } from "node:util";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import {
  type CheckpointStoreClient,
  type CheckpointStoreClientOptions,
  type CheckpointWatchEvent,
  Conflict,
  CorruptStore,
  createCheckpointStoreClient,
  ERROR_DOMAIN,
  IllegalHistory,
  InvalidRequest,
  InvalidSessionId,
  Lease,
  LeaseHeld,
  LeaseLost,
  MAX_HOLDER_BYTES,
  MAX_LEASE_TTL_MS,
  NotFound,
  ResourceExhausted,
  ServiceError,
  StatusCode,
  Unauthenticated,
  Unavailable,
  type WatchEvent,
} from "../src/client.js";
import { fromCallError } from "../src/client/errors.js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  listSessions,
  putCheckpointDeltaRaw,
  putCheckpointRaw,
  RawWatchSessionResponseSchema,
} from "../src/client/messages.js";
import { ErrorReason } from "../src/gen/dsxir/checkpoint_store/v1/error_reason_pb.js";
import {
  SessionSummarySchema,
  WatchEventType,
  WatchSessionRequestSchema,
  WatchView,
} from "../src/gen/dsxir/checkpoint_store/v1/service_pb.js";
import {
  type Checkpoint,
  CheckpointSchema,
  decode,
  DeltaRule,
  encode,
  encodeDelta,
  InvalidCheckpoint,
  InvalidDelta,
  makeDelta,
  OptionEntrySchema,
  SessionStatus,
  toTerm,
  toTermMap,
  TrialLogEntrySchema,
  TrialStatus,
} from "../src/index.js";
import { freshCheckpoint, hexOf, manifest, vector } from "./helpers.js";

/** The repository's top folder (this file runs from typescript/dist/test/). */
const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const PYTHON = join(REPO, ".venv", "bin", "python");
const TOKEN = "ts-client-test-token-0123456789";
const TOKEN_ENV = "DSXIR_TS_TEST_TOKEN";

/** One running Python server. */
class Server {
  readonly address: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<number | null>;
  readonly #stderr: string[];

  private constructor(address: string, child: ChildProcess, exited: Promise<number | null>, stderr: string[]) {
    this.address = address;
    this.#child = child;
    this.#exited = exited;
    this.#stderr = stderr;
  }

  /** Start `serve --store memory: --listen 127.0.0.1:0` with `args` more, and wait for its address. */
  static start(args: string[] = [], env: Record<string, string> = {}): Promise<Server> {
    if (!existsSync(PYTHON)) {
      throw new Error(`the Python server is needed: ${PYTHON} is missing (run \`make setup\` at the repository top)`);
    }
    const argv = ["-m", "dsxir.cli", "serve", "--store", "memory:", "--listen", "127.0.0.1:0"];
    argv.push("--grace", "2", "--workers", "8", ...args);
    const child = spawn(PYTHON, argv, { cwd: REPO, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    const stderr: string[] = [];
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => stderr.push(chunk));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    // Every line is read to the end, so the server never writes to a closed pipe.
    const lines = createInterface({ input: child.stdout! });
    return new Promise<Server>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`the server did not report its address within 60 s; stderr:\n${stderr.join("")}`));
      }, 60_000);
      lines.on("line", (line) => {
        const found = /^serving on (\S+)$/.exec(line);
        if (found !== null) {
          clearTimeout(timer);
          resolve(new Server(found[1]!, child, exited, stderr));
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`the server exited (${code}) before serving; stderr:\n${stderr.join("")}`));
      });
      child.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  /** Send a signal to the server process. */
  signal(sig: NodeJS.Signals): void {
    this.#child.kill(sig);
  }

  /** Wait for the process to end; its exit code (null when killed by a signal). */
  exited(): Promise<number | null> {
    return this.#exited;
  }

  /** SIGTERM, then the exit code; SIGKILL after 20 s. */
  async stop(): Promise<number | null> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) {
      return this.#exited;
    }
    this.#child.kill("SIGTERM");
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), 20_000);
    try {
      return await this.#exited;
    } finally {
      clearTimeout(timer);
    }
  }

  get stderr(): string {
    return this.#stderr.join("");
  }
}

let main: Server;
const clients: CheckpointStoreClient[] = [];

before(async () => {
  main = await Server.start(["--token-env", TOKEN_ENV], { [TOKEN_ENV]: TOKEN });
});

after(async () => {
  for (const c of clients) {
    c.close();
  }
  if (main !== undefined) {
    const code = await main.stop();
    assert.equal(code, 0, `the server did not stop cleanly; stderr:\n${main.stderr}`);
  }
});

/** A client of `address` (the main server by default) with the test token, closed after the tests. */
function client(options: CheckpointStoreClientOptions = {}, address = main.address): CheckpointStoreClient {
  const c = createCheckpointStoreClient(address, { token: TOKEN, timeoutMs: 20_000, ...options });
  clients.push(c);
  return c;
}

const BASE = Date.UTC(2026, 2, 1, 12, 0, 0);
const HOUR = 3_600_000;

/**
 * A valid checkpoint of a session with `completed` ok trials, updated at
 * `updated` (ms). It is created and started an hour before BASE, so that
 * later samples of one session are legal successors of earlier ones.
 */
function sample(sessionId: string, optimizer: string, status: SessionStatus, updated: number, completed: number): Checkpoint {
  const cp = freshCheckpoint();
  cp.sessionId = sessionId;
  cp.optimizer = optimizer;
  cp.status = status;
  cp.optimizerOpts.push(create(OptionEntrySchema, { key: "num_trials", value: toTerm(10n) }));
  cp.createdAt = timestampFromDate(new Date(BASE - HOUR));
  cp.updatedAt = timestampFromDate(new Date(updated));
  const p = cp.progress!;
  p.startedAt = timestampFromDate(new Date(BASE - HOUR));
  for (let i = 0; i < completed; i++) {
    p.trialLog.push(
      create(TrialLogEntrySchema, {
        trialIdx: BigInt(i),
        score: 0.5,
        status: TrialStatus.OK,
        stats: toTermMap({ tokens: BigInt(100 + i) }),
        durationMs: 10n,
      }),
    );
  }
  p.attempts = BigInt(completed);
  p.completed = BigInt(completed);
  if (completed > 0) {
    p.bestScore = 0.5;
    p.bestTrialIdx = 0n;
  }
  return cp;
}

/** Assert that `promise` rejects with an instance of `type`, and return the error. */
async function rejectsWith<E>(promise: Promise<unknown>, type: abstract new (...args: never[]) => E, what: string): Promise<E> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof type, `${what}: ${String(e)} (${(e as Error)?.constructor?.name}), want ${type.name}`);
    return e;
  }
  assert.fail(`${what}: succeeded, want ${type.name}`);
}

function assertConflict(e: Conflict, sessionId: string, expected: bigint | null, actual: bigint | null): void {
  assert.equal(e.sessionId, sessionId);
  assert.equal(e.expected, expected);
  assert.equal(e.actual, actual);
}

/** The next event of a watch, failing after 20 s. */
async function nextEvent(events: AsyncIterator<WatchEvent>): Promise<WatchEvent> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("no watch event within 20 s")), 20_000);
  });
  try {
    const step = await Promise.race([events.next(), timeout]);
    assert.ok(step.done !== true, "the watch ended");
    return step.value;
  } finally {
    clearTimeout(timer);
  }
}

/** A loopback address where nothing listens. */
async function deadAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

const reasonName = (r: ErrorReason): string => ErrorReason[r];

test("the error domain is the service's protobuf package", () => {
  assert.equal(ERROR_DOMAIN, "dsxir.checkpoint_store.v1");
});

test("create, update: every commit counts a generation; get returns the checkpoint committed", async () => {
  const c = client();
  const id = "ts-cas";
  await c.delete(id);
  const first = sample(id, "demo.Opt", SessionStatus.RUNNING, BASE, 1);
  assert.equal(await c.put(first), 1n);
  const second = sample(id, "demo.Opt", SessionStatus.RUNNING, BASE + 60_000, 2);
  assert.equal(await c.put(second, 1n), 2n);
  const third = sample(id, "demo.Opt", SessionStatus.PAUSED, BASE + 120_000, 3);
  assert.equal(await c.put(third, 2), 3n); // a number is taken too

  const stored = await c.get(id);
  assert.equal(stored.generation, 3n);
  assert.equal(hexOf(encode(stored.checkpoint)), hexOf(encode(third)));
  await c.delete(id);
});

test("creating never overwrites: Conflict with expected none and the stored generation", async () => {
  const c = client();
  const id = "ts-create-twice";
  await c.delete(id);
  const original = sample(id, "demo.Opt", SessionStatus.RUNNING, BASE, 1);
  assert.equal(await c.put(original, 0n), 1n);
  const other = sample(id, "demo.Other", SessionStatus.RUNNING, BASE, 2);
  const e = await rejectsWith(c.put(other, 0n), Conflict, "create over an existing session");
  assertConflict(e, id, null, 1n);
  assert.match(e.message, /generation conflict for session "ts-create-twice": expected=none stored=1/);
  const stored = await c.get(id);
  assert.equal(stored.generation, 1n);
  assert.equal(stored.checkpoint.optimizer, "demo.Opt");
  await c.delete(id);
});

test("a commit that rewrites history is IllegalHistory naming the rule; nothing is stored", async () => {
  const c = client();
  const id = "ts-illegal-history";
  await c.delete(id);
  await c.put(sample(id, "demo.Opt", SessionStatus.RUNNING, BASE, 3));
  const shorter = sample(id, "demo.Opt", SessionStatus.RUNNING, BASE + 1_000, 1);
  const e = await rejectsWith(c.put(shorter, 1n), IllegalHistory, "a shortened trial log");
  assert.equal(e.sessionId, id);
  assert.equal(e.rule, "history.trial_log_shortened");
  assert.ok(e.detail.length > 0);
  const stored = await c.get(id);
  assert.equal(stored.generation, 1n);
  assert.equal(stored.checkpoint.progress!.trialLog.length, 3);
  await c.delete(id);
});

test("lease refusals carry their holder and end", () => {
  // The service's FAILED_PRECONDITION reasons, as the server sends them.
  const failed = (reason: ErrorReason, metadata: Record<string, string>): unknown => {
    const info = create(ErrorInfoSchema, { reason: ErrorReason[reason], domain: ERROR_DOMAIN, metadata });
    return fromCallError(
      new ConnectError("refused", Code.FailedPrecondition, { "grpc-status": "9" }, [{ desc: ErrorInfoSchema, value: info }]),
      "s1",
      false,
    );
  };
  const held = failed(ErrorReason.LEASE_HELD, { session_id: "s1", holder: "host-a:41", expires_at: "2026-01-02T03:04:05.678901Z" });
  assert.ok(held instanceof LeaseHeld, String(held));
  assert.equal(held.holder, "host-a:41");
  assert.equal(held.expiresAt?.toISOString(), "2026-01-02T03:04:05.678Z");
  const lost = failed(ErrorReason.LEASE_LOST, { session_id: "s1", detail: "taken over" });
  assert.ok(lost instanceof LeaseLost && lost.sessionId === "s1" && lost.detail === "taken over", String(lost));
});

test("a stale generation is refused, and so is a commit on a session that does not exist", async () => {
  const c = client();
  const id = "ts-stale";
  await c.delete(id);
  const cp = sample(id, "demo.Opt", SessionStatus.RUNNING, BASE, 0);
  await c.put(cp);
  await c.put(cp, 1n);
  assertConflict(await rejectsWith(c.put(cp, 1n), Conflict, "stale commit"), id, 1n, 2n);
  assertConflict(await rejectsWith(c.put(cp, 7n), Conflict, "commit ahead"), id, 7n, 2n);
  assert.equal((await c.get(id)).generation, 2n);
  const missing = sample("ts-stale-missing", "demo.Opt", SessionStatus.RUNNING, BASE, 0);
  await c.delete(missing.sessionId);
  assertConflict(await rejectsWith(c.put(missing, 5n), Conflict, "commit on nothing"), missing.sessionId, 5n, null);
  await c.delete(id);
});

test("get of a missing session is NotFound", async () => {
  const c = client();
  await c.delete("ts-missing");
  const e = await rejectsWith(c.get("ts-missing"), NotFound, "get of a missing session");
  assert.equal(e.sessionId, "ts-missing");
  assert.equal(e.message, 'no checkpoint stored for session "ts-missing"');
});

test("delete is idempotent, and a session created again starts at generation 1", async () => {
  const c = client();
  const id = "ts-delete";
  await c.delete(id);
  await c.delete(id);
  const cp = sample(id, "demo.Opt", SessionStatus.RUNNING, BASE, 1);
  await c.put(cp);
  await c.put(cp, 1n);
  await c.delete(id);
  await rejectsWith(c.get(id), NotFound, "get after delete");
  await c.delete(id);
  assert.equal(await c.put(cp), 1n);
  await c.delete(id);
});

test("list filters by status, optimizer and time, orders by session id and reads every page", async () => {
  const c = client({ pageSize: 2 }); // several pages
  const sessions = [
    sample("ts-list-d", "ts.list.Alpha", SessionStatus.RUNNING, BASE + 4 * HOUR, 2),
    sample("ts-list-b", "ts.list.Alpha", SessionStatus.COMPLETED, BASE + 2 * HOUR, 3),
    sample("ts-list-e", "ts.list.Alpha", SessionStatus.RUNNING, BASE + 5 * HOUR, 1),
    sample("ts-list-a", "ts.list.Alpha", SessionStatus.RUNNING, BASE, 1),
    sample("ts-list-c", "ts.list.Beta", SessionStatus.RUNNING, BASE + 3 * HOUR, 0),
    sample("ts-list-é", "ts.list.Alpha", SessionStatus.RUNNING, BASE + 6 * HOUR, 0), // after "z" in UTF-8
    sample("ts-list-z", "ts.list.Alpha", SessionStatus.RUNNING, BASE + 6 * HOUR, 0),
  ];
  for (const cp of sessions) {
    await c.delete(cp.sessionId);
    await c.put(cp);
  }
  try {
    const ids = async (filter: Parameters<CheckpointStoreClient["list"]>[0]): Promise<string[]> =>
      (await c.list(filter)).map((s) => s.sessionId).filter((id) => id.startsWith("ts-list-"));
    assert.deepEqual(await ids({}), ["ts-list-a", "ts-list-b", "ts-list-c", "ts-list-d", "ts-list-e", "ts-list-z", "ts-list-é"]);
    assert.deepEqual(await ids({ optimizer: "ts.list.Beta" }), ["ts-list-c"]);
    assert.deepEqual(await ids({ status: SessionStatus.COMPLETED }), ["ts-list-b"]);
    assert.deepEqual(await ids({ status: SessionStatus.RUNNING, optimizer: "ts.list.Alpha" }), [
      "ts-list-a",
      "ts-list-d",
      "ts-list-e",
      "ts-list-z",
      "ts-list-é",
    ]);
    assert.deepEqual(await ids({ optimizer: "ts.list.Alpha", updatedSince: new Date(BASE + 4 * HOUR) }), [
      "ts-list-d",
      "ts-list-e",
      "ts-list-z",
      "ts-list-é",
    ]);
    assert.deepEqual(await ids({ optimizer: "ts.list.Gamma" }), []);

    const [b] = await c.list({ optimizer: "ts.list.Alpha", status: SessionStatus.COMPLETED });
    assert.ok(b !== undefined);
    assert.equal(b.sessionId, "ts-list-b");
    assert.equal(b.generation, 1n);
    assert.equal(b.completed, 3n);
    assert.equal(b.trials, 3n);
    assert.equal(b.bestScore, 0.5);
    assert.equal(b.status, SessionStatus.COMPLETED);
    assert.equal(b.updatedAt?.seconds, BigInt((BASE + 2 * HOUR) / 1000));
  } finally {
    for (const cp of sessions) {
      await c.delete(cp.sessionId);
    }
  }
});

test("an invalid checkpoint is refused locally: nothing is sent", async () => {
  const bad = sample("ts-refused", "demo.Opt", SessionStatus.RUNNING, BASE, 1);
  bad.trainsetHash = new Uint8Array([1, 2, 3]);
  // To an address where nothing listens: sending anything would be Unavailable.
  const offline = client({}, await deadAddress());
  const e = await rejectsWith(offline.put(bad), InvalidCheckpoint, "put of a bad checkpoint");
  assert.equal(e.path, "trainset_hash");
  // And to the server: nothing stored.
  const c = client();
  await rejectsWith(c.put(bad), InvalidCheckpoint, "put of a bad checkpoint");
  await rejectsWith(c.get("ts-refused"), NotFound, "get of the refused session");
  // A generation out of range is a request field refused before sending.
  const good = sample("ts-refused", "demo.Opt", SessionStatus.RUNNING, BASE, 1);
  for (const g of [-1n, 1n << 63n, 1.5, -3]) {
    const refused = await rejectsWith(offline.put(good, g), InvalidRequest, `expected generation ${g}`);
    assert.equal(refused.field, "expected_generation");
    assert.equal(refused.code, StatusCode.INVALID_ARGUMENT);
    assert.equal(refused.reason, reasonName(ErrorReason.INVALID_REQUEST));
  }
});

test("session ids the server's store refuses are InvalidSessionId", async () => {
  const c = client();
  const escape = sample("../escape", "demo.Opt", SessionStatus.RUNNING, BASE, 0);
  const e = await rejectsWith(c.put(escape), InvalidSessionId, "put of ../escape");
  assert.equal(e.sessionId, "../escape");
  await rejectsWith(c.get(".hidden"), InvalidSessionId, "get of .hidden");
  await rejectsWith(c.delete("a/b"), InvalidSessionId, "delete of a/b");
});

test("every valid vector goes through the server and comes back byte for byte", async () => {
  const c = client();
  const m = manifest();
  const vectors = [...m.valid, ...m.unknown];
  assert.ok(vectors.length >= 2, `the manifest lists ${vectors.length} valid vectors`);
  for (const v of vectors) {
    const data = vector(v.binpb);
    const cp = decode(data);
    await c.delete(cp.sessionId);
    assert.equal(await c.put(cp), 1n, v.name);
    const stored = await c.get(cp.sessionId);
    assert.equal(hexOf(encode(stored.checkpoint)), hexOf(data), `${v.name}: read back as other bytes`);
    await c.delete(cp.sessionId);
  }
});

test("a missing or wrong token is Unauthenticated, on every call", async () => {
  const cp = sample("ts-auth", "demo.Opt", SessionStatus.RUNNING, BASE, 0);
  const none = createCheckpointStoreClient(main.address, { timeoutMs: 20_000 });
  const wrong = createCheckpointStoreClient(main.address, { token: "not-the-right-token-0123456789", timeoutMs: 20_000 });
  clients.push(none, wrong);
  for (const [name, c] of [["no token", none], ["wrong token", wrong]] as const) {
    const calls: [string, () => Promise<unknown>][] = [
      ["put", () => c.put(cp)],
      ["get", () => c.get("ts-auth")],
      ["list", () => c.list()],
      ["delete", () => c.delete("ts-auth")],
      [
        "watch",
        async () => {
          for await (const _ of c.watch("ts-auth")) {
            assert.fail("a watch without a valid token got an event");
          }
        },
      ],
    ];
    for (const [call, run] of calls) {
      const e = await rejectsWith(run(), Unauthenticated, `${name}, ${call}`);
      assert.ok(e instanceof ServiceError);
      assert.equal(e.code, StatusCode.UNAUTHENTICATED);
      assert.equal(e.reason, reasonName(ErrorReason.UNAUTHENTICATED), `${name}, ${call}`);
      assert.match(e.message, /^UNAUTHENTICATED: /);
    }
  }
});

test("tokens are checked, and never sent in plain text off loopback unless insecure", () => {
  assert.throws(() => createCheckpointStoreClient("127.0.0.1:1", { token: "short" }), TypeError);
  assert.throws(() => createCheckpointStoreClient("127.0.0.1:1", { token: "has a space in it, 0123456789" }), TypeError);
  assert.throws(
    () => createCheckpointStoreClient("store.example:50051", { token: TOKEN }),
    /refusing to send the bearer token in plain text to store\.example:50051/,
  );
  assert.throws(() => createCheckpointStoreClient("10.0.0.1:50051", { token: TOKEN }), /plain text/);
  assert.throws(() => createCheckpointStoreClient("[::ffff:10.0.0.1]:50051", { token: TOKEN }), /plain text/);
  assert.throws(() => createCheckpointStoreClient("10.0.0.1:50051", { tls: true, insecure: true }), TypeError);
  for (const address of ["localhost:50051", "127.0.0.1:50051", "127.8.9.10:50051", "[::1]:50051"]) {
    createCheckpointStoreClient(address, { token: TOKEN }).close();
  }
  createCheckpointStoreClient("store.example:50051", { token: TOKEN, insecure: true }).close();
  createCheckpointStoreClient("store.example:50051", { token: TOKEN, tls: true }).close();
  for (const address of ["store.example", "store.example:0", "store.example:70000", "[nope]:1", "http://a:1", ""]) {
    assert.throws(() => createCheckpointStoreClient(address), TypeError, address);
  }
  assert.throws(() => createCheckpointStoreClient("127.0.0.1:1", { timeoutMs: -1 }), TypeError);
  assert.throws(() => createCheckpointStoreClient("127.0.0.1:1", { pageSize: 1001 }), TypeError);
});

test("watch sees INITIAL, then COMMITTED and DELETED events in commit order", { timeout: 120_000 }, async () => {
  const watcher = client();
  const writer = client(); // another client, another connection
  const id = "ts-watch";
  await writer.delete(id);
  const stop = new AbortController();
  const events = watcher.watch(id, stop.signal)[Symbol.asyncIterator]();

  let ev = await nextEvent(events);
  assert.equal(ev.type, WatchEventType.INITIAL);
  assert.equal(ev.sessionId, id);
  assert.equal(ev.session, undefined, "the initial event of a missing session has no summary");

  await writer.put(sample(id, "ts.watch.Opt", SessionStatus.RUNNING, BASE, 1));
  ev = await nextEvent(events);
  assert.equal(ev.type, WatchEventType.COMMITTED);
  assert.equal(ev.session?.generation, 1n);
  assert.equal(ev.session?.optimizer, "ts.watch.Opt");
  assert.equal(ev.session?.completed, 1n);

  await writer.put(sample(id, "ts.watch.Opt", SessionStatus.COMPLETED, BASE + 60_000, 4), 1n);
  ev = await nextEvent(events);
  assert.equal(ev.type, WatchEventType.COMMITTED);
  assert.equal(ev.session?.generation, 2n);
  assert.equal(ev.session?.status, SessionStatus.COMPLETED);

  await writer.delete(id);
  ev = await nextEvent(events);
  assert.equal(ev.type, WatchEventType.DELETED);
  assert.equal(ev.sessionId, id);
  assert.equal(ev.session, undefined);

  await writer.put(sample(id, "ts.watch.Opt", SessionStatus.RUNNING, BASE, 0));
  ev = await nextEvent(events);
  assert.equal(ev.type, WatchEventType.COMMITTED);
  assert.equal(ev.session?.generation, 1n);

  // Watching an existing session starts with its summary; leaving the loop ends the watch.
  for await (const first of watcher.watch(id)) {
    assert.equal(first.type, WatchEventType.INITIAL);
    assert.equal(first.session?.generation, 1n);
    break;
  }

  // Aborting the signal ends the iteration quietly.
  const pending = events.next();
  setTimeout(() => stop.abort(), 100);
  assert.deepEqual(await pending, { value: undefined, done: true });
  await writer.delete(id);
});

test("close ends watches quietly and refuses later calls", { timeout: 60_000 }, async () => {
  const c = createCheckpointStoreClient(main.address, { token: TOKEN });
  const events = c.watch("ts-close")[Symbol.asyncIterator]();
  assert.equal((await nextEvent(events)).type, WatchEventType.INITIAL);
  const pending = events.next();
  setTimeout(() => c.close(), 100);
  assert.deepEqual(await pending, { value: undefined, done: true });
  assert.ok(c.closed);
  const e = await rejectsWith(c.get("ts-close"), ServiceError, "get after close");
  assert.equal(e.code, StatusCode.CANCELLED);
  c.close(); // idempotent
});

test("a server killed mid-call gives Unavailable", { timeout: 120_000 }, async () => {
  const server = await Server.start();
  try {
    const c = client({ token: undefined }, server.address);
    await c.delete("ts-killed"); // connected

    // A watch in flight when the server dies.
    const events = c.watch("ts-killed")[Symbol.asyncIterator]();
    assert.equal((await nextEvent(events)).type, WatchEventType.INITIAL);

    // A server that takes the call and never answers: the deadline passes.
    server.signal("SIGSTOP");
    const late = await rejectsWith(c.get("ts-killed", { timeoutMs: 300 }), Unavailable, "get past its deadline");
    assert.equal(late.code, StatusCode.DEADLINE_EXCEEDED);

    // A unary call in flight when the server is killed.
    const inFlight = c.put(sample("ts-killed", "demo.Opt", SessionStatus.RUNNING, BASE, 1));
    await new Promise((resolve) => setTimeout(resolve, 300));
    server.signal("SIGKILL");
    const killed = await rejectsWith(inFlight, Unavailable, "put in flight when the server is killed");
    assert.equal(killed.code, StatusCode.UNAVAILABLE);
    const watchEnd = await rejectsWith(nextEvent(events), Unavailable, "watch when the server is killed");
    assert.equal(watchEnd.code, StatusCode.UNAVAILABLE);
    assert.equal(await server.exited(), null);

    // Nothing listens any more.
    await rejectsWith(c.get("ts-killed"), Unavailable, "get from a dead server");
    await rejectsWith(c.list(), Unavailable, "list from a dead server");
  } finally {
    server.signal("SIGKILL");
  }
});

test("a watch ends with Unavailable (SERVER_SHUTTING_DOWN) when the server shuts down", { timeout: 120_000 }, async () => {
  const server = await Server.start();
  try {
    const c = client({ token: undefined }, server.address);
    const events = c.watch("ts-shutdown")[Symbol.asyncIterator]();
    assert.equal((await nextEvent(events)).type, WatchEventType.INITIAL);
    const stopped = server.stop();
    const e = await rejectsWith(nextEvent(events), Unavailable, "watch when the server shuts down");
    assert.equal(e.reason, reasonName(ErrorReason.SERVER_SHUTTING_DOWN));
    assert.equal(await stopped, 0);
  } finally {
    server.signal("SIGKILL");
  }
});

test("TLS: calls go through with the server's certificate; a message over the limit is ResourceExhausted", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "dsxir-ts-client-tls-"));
  let server: Server | undefined;
  try {
    const { certPem, keyPem } = selfSigned();
    writeFileSync(join(dir, "cert.pem"), certPem);
    writeFileSync(join(dir, "key.pem"), keyPem, { mode: 0o600 });
    server = await Server.start([
      "--tls-cert",
      join(dir, "cert.pem"),
      "--tls-key",
      join(dir, "key.pem"),
      "--max-message-bytes",
      "65536",
    ]);
    const c = client({ token: undefined, tls: { ca: certPem } }, server.address);
    await c.delete("ts-tls");
    const cp = sample("ts-tls", "demo.Opt", SessionStatus.RUNNING, BASE, 2);
    assert.equal(await c.put(cp), 1n);
    assert.equal((await c.get("ts-tls")).generation, 1n);

    const big = sample("ts-big", "demo.Opt", SessionStatus.RUNNING, BASE, 0);
    big.samplerBlob = new Uint8Array(100 * 1024).fill(7);
    const e = await rejectsWith(c.put(big), ResourceExhausted, "put of 100 KiB to a 64 KiB server");
    assert.equal(e.code, StatusCode.RESOURCE_EXHAUSTED);

    // Plaintext to a TLS server, or TLS without trusting its certificate, does not get through.
    const plain = client({ token: undefined, timeoutMs: 5_000 }, server.address);
    await rejectsWith(plain.get("ts-tls"), Unavailable, "plaintext to TLS");
    const untrusting = client({ token: undefined, tls: true, timeoutMs: 5_000 }, server.address);
    await rejectsWith(untrusting.get("ts-tls"), Unavailable, "TLS with an untrusted certificate");
  } finally {
    if (server !== undefined) {
      assert.equal(await server.stop(), 0);
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the server's refusals keep their details: the FORMAT.md field, the request field", async () => {
  // Checkpoint bytes the client would never send, sent as they are.
  const session = new Http2SessionManager(`http://${main.address}`);
  const transport = createGrpcTransport({ baseUrl: `http://${main.address}`, sessionManager: session });
  const header = { authorization: `Bearer ${TOKEN}` };
  const refused = async (call: () => Promise<unknown>): Promise<unknown> => {
    try {
      await call();
    } catch (e) {
      return fromCallError(e, null, false);
    }
    return assert.fail("the server accepted it");
  };
  try {
    const invalid = manifest().invalid;
    assert.ok(invalid.length > 0);
    for (const v of invalid) {
      const e = await refused(() =>
        transport.unary(putCheckpointRaw, undefined, 20_000, header, { checkpoint: vector(v.binpb) }),
      );
      assert.ok(e instanceof InvalidCheckpoint, `${v.name}: ${String(e)}`);
      assert.equal(e.path, v.field, v.name);
    }

    // A page token used with other filters is refused as a request field.
    const c = client();
    for (const id of ["ts-page-a", "ts-page-b"]) {
      await c.delete(id);
      await c.put(sample(id, "ts.page.Alpha", SessionStatus.RUNNING, BASE, 0));
    }
    const first = await transport.unary(listSessions, undefined, 20_000, header, { pageSize: 1, optimizer: "ts.page.Alpha" });
    assert.notEqual(first.message.nextPageToken, "");
    const e = await refused(() =>
      transport.unary(listSessions, undefined, 20_000, header, {
        pageSize: 1,
        optimizer: "ts.page.Beta",
        pageToken: first.message.nextPageToken,
      }),
    );
    assert.ok(e instanceof InvalidRequest, String(e));
    assert.equal(e.field, "page_token");
    assert.equal(e.reason, reasonName(ErrorReason.INVALID_REQUEST));
    for (const id of ["ts-page-a", "ts-page-b"]) {
      await c.delete(id);
    }
  } finally {
    session.abort();
  }
});

/**
 * A gRPC server of fixed answers per method (by name), over plaintext
 * HTTP/2: one message, or the messages of a stream, then status OK.
 * `requests` gets the message of every call, in order.
 */
async function fakeServer(
  answers: Record<string, Uint8Array | Uint8Array[]>,
): Promise<{ address: string; requests: Uint8Array[]; close: () => Promise<void> }> {
  const server = createHttp2Server();
  const requests: Uint8Array[] = [];
  server.on("stream", (stream, headers) => {
    const method = String(headers[":path"]).split("/").pop() ?? "";
    const received: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => received.push(chunk));
    stream.on("end", () => {
      requests.push(Buffer.concat(received).subarray(5));
      const answer = answers[method];
      stream.respond({ ":status": 200, "content-type": "application/grpc+proto" }, { waitForTrailers: true });
      stream.on("wantTrailers", () =>
        stream.sendTrailers(answer === undefined ? { "grpc-status": "12", "grpc-message": "unimplemented" } : { "grpc-status": "0" }),
      );
      if (answer === undefined) {
        stream.end();
        return;
      }
      const frames = (answer instanceof Uint8Array ? [answer] : answer).map((body) => {
        const frame = Buffer.alloc(5 + body.length);
        frame.writeUInt32BE(body.length, 1);
        frame.set(body, 5);
        return frame;
      });
      stream.end(Buffer.concat(frames));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function varint(n: number): number[] {
  const out: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return out;
}

function getResponse(parts: Uint8Array[], generation: number): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    out.push(0x0a, ...varint(p.length), ...p);
  }
  out.push(0x10, ...varint(generation));
  return Uint8Array.from(out);
}

test("what the server sends is checked: a bad checkpoint, another session or generation is CorruptStore", async () => {
  const good = sample("ts-fake", "demo.Opt", SessionStatus.RUNNING, BASE, 2);
  const raw = encode(good);
  const bad = sample("ts-fake", "demo.Opt", SessionStatus.RUNNING, BASE, 2);
  bad.trainsetHash = new Uint8Array([1, 2, 3]); // written by a lax writer
  const cases: [string, Uint8Array, string][] = [
    ["invalid", getResponse([toBinary(CheckpointSchema, bad)], 1), "the server sent an invalid checkpoint"],
    ["another session", getResponse([encode(sample("ts-other", "demo.Opt", SessionStatus.RUNNING, BASE, 0))], 1), "another session"],
    ["generation 0", getResponse([raw], 0), "another session"],
  ];
  for (const [name, answer, detail] of cases) {
    const fake = await fakeServer({ GetCheckpoint: answer, PutCheckpoint: Uint8Array.of(0x08, 0x00) });
    const c = createCheckpointStoreClient(fake.address, { timeoutMs: 10_000 });
    try {
      const e = await rejectsWith(c.get("ts-fake"), CorruptStore, name);
      assert.equal(e.path, "ts-fake");
      assert.match(e.detail, new RegExp(detail), name);
      await rejectsWith(c.put(good), CorruptStore, `${name}: put answered generation 0`);
    } finally {
      c.close();
      await fake.close();
    }
  }

  // The checkpoint's bytes are read as sent: a message field in two records is one merged message.
  const cut = 2 + raw[1]!; // after field 1, the format id (shorter than 128 bytes)
  const fake = await fakeServer({ GetCheckpoint: getResponse([raw.subarray(0, cut), raw.subarray(cut)], 4) });
  const c = createCheckpointStoreClient(fake.address, { timeoutMs: 10_000 });
  try {
    const stored = await c.get("ts-fake");
    assert.equal(stored.generation, 4n);
    assert.equal(hexOf(encode(stored.checkpoint)), hexOf(raw));
    // A method the server does not have keeps its code.
    const e = await rejectsWith(c.list(), ServiceError, "list on a server without it");
    assert.equal(e.code, StatusCode.UNIMPLEMENTED);
  } finally {
    c.close();
    await fake.close();
  }
});

/**
 * A self-signed P-256 certificate for localhost and 127.0.0.1, valid for a
 * day, written in DER by hand (node:crypto signs but builds no certificate).
 */
function selfSigned(): { certPem: string; keyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const len = (n: number): number[] => {
    if (n < 0x80) return [n];
    const bytes: number[] = [];
    for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
    return [0x80 | bytes.length, ...bytes];
  };
  const tlv = (tag: number, ...parts: Uint8Array[]): Uint8Array => {
    const body = Buffer.concat(parts);
    return Buffer.concat([Uint8Array.from([tag, ...len(body.length)]), body]);
  };
  const seq = (...p: Uint8Array[]): Uint8Array => tlv(0x30, ...p);
  const oid = (text: string): Uint8Array => {
    const [a, b, ...rest] = text.split(".").map(Number);
    const out = [a! * 40 + b!];
    for (const n of rest) {
      const groups: number[] = [n & 0x7f];
      for (let v = n >>> 7; v > 0; v >>>= 7) groups.unshift(0x80 | (v & 0x7f));
      out.push(...groups);
    }
    return tlv(0x06, Uint8Array.from(out));
  };
  const time = (ms: number): Uint8Array =>
    tlv(0x17, Buffer.from(new Date(ms).toISOString().replace(/[-:T]/g, "").slice(2, 14) + "Z"));
  const ecdsaSha256 = seq(oid("1.2.840.10045.4.3.2"));
  const name = seq(tlv(0x31, seq(oid("2.5.4.3"), tlv(0x0c, Buffer.from("localhost")))));
  const now = Date.now();
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Uint8Array.of(2))), // v3
    tlv(0x02, Uint8Array.of(1)),
    ecdsaSha256,
    name,
    seq(time(now - HOUR), time(now + 24 * HOUR)),
    name,
    new Uint8Array(publicKey.export({ type: "spki", format: "der" })),
    tlv(
      0xa3,
      seq(
        seq(oid("2.5.29.19"), tlv(0x01, Uint8Array.of(0xff)), tlv(0x04, seq(tlv(0x01, Uint8Array.of(0xff))))),
        seq(
          oid("2.5.29.17"),
          tlv(0x04, seq(tlv(0x82, Buffer.from("localhost")), tlv(0x87, Uint8Array.of(127, 0, 0, 1)))),
        ),
      ),
    ),
  );
  const signature = sign("sha256", tbs, privateKey);
  const cert = seq(tbs, ecdsaSha256, tlv(0x03, Uint8Array.of(0), signature));
  const b64 = Buffer.from(cert).toString("base64").replace(/.{64}/g, "$&\n");
  const certPem = `-----BEGIN CERTIFICATE-----\n${b64.trimEnd()}\n-----END CERTIFICATE-----\n`;
  const keyPem = createPrivateKey(privateKey.export({ type: "pkcs8", format: "pem" })).export({
    type: "pkcs8",
    format: "pem",
  }) as string;
  return { certPem, keyPem };
}

/** Every way a lease is shown: none may hold its token. */
function assertTokenHidden(lease: Lease, token: string): void {
  for (const shown of [String(lease), `${lease}`, JSON.stringify(lease), inspect(lease), inspect({ lease }, { depth: 5 })]) {
    assert.ok(!shown.includes(token), `a lease shows its token: ${shown}`);
  }
}

test("leases: acquire, refuse a second holder, renew, release idempotently, get without the token", async () => {
  const c = client();
  const id = "ts-lease";
  assert.equal(await c.getLease(id), null);

  const before = Date.now();
  const first = await c.acquireLease(id, "worker-a:1", 30_000);
  assert.ok(first instanceof Lease);
  assert.equal(first.sessionId, id);
  assert.equal(first.holder, "worker-a:1");
  assert.ok(first.token.length > 0);
  const end = first.expiresAt.getTime();
  assert.ok(end >= before + 25_000 && end <= Date.now() + 35_000, `a 30 s lease ends at ${first.expiresAt.toISOString()}`);
  assertTokenHidden(first, first.token);

  const held = await rejectsWith(c.acquireLease(id, "worker-b:2", 30_000), LeaseHeld, "second acquire");
  assert.equal(held.sessionId, id);
  assert.equal(held.holder, "worker-a:1");
  assert.equal(held.expiresAt?.getTime(), end);
  assert.ok(!held.message.includes(first.token) && !inspect(held).includes(first.token));

  const seen = await c.getLease(id);
  assert.ok(seen !== null);
  assert.equal(seen.token, "");
  assert.equal(seen.holder, "worker-a:1");
  assert.equal(seen.expiresAt.getTime(), end);

  const renewed = await c.renewLease(first, HOUR);
  assert.equal(renewed.token, first.token);
  assert.ok(renewed.expiresAt.getTime() > end + 50 * 60_000, `renewed for an hour: ${renewed.expiresAt.toISOString()}`);

  await c.releaseLease(renewed);
  await c.releaseLease(renewed);
  assert.equal(await c.getLease(id), null);

  const lost = await rejectsWith(c.renewLease(renewed, 30_000), LeaseLost, "renew of a released lease");
  assert.equal(lost.sessionId, id);
  assert.ok(!lost.message.includes(first.token) && !inspect(lost).includes(first.token));

  // Once released, another worker takes the session; releasing the old lease changes nothing.
  const second = await c.acquireLease(id, "worker-b:2", 30_000);
  assert.notEqual(second.token, first.token);
  await c.releaseLease(first);
  assert.equal((await c.getLease(id))?.holder, "worker-b:2");
  await c.releaseLease(second);
});

test("leases: bad holders and ttls are refused before anything is sent", async () => {
  const c = client();
  // A client of an address where nothing listens refuses them too: nothing is sent.
  const dead = client({}, await deadAddress());
  const id = "ts-lease-refused";
  const holders: Record<string, string> = {
    empty: "",
    "too long": "é".repeat(129),
    newline: "host\n1",
    DEL: "host\u007f",
    C1: "host\u0085",
    "lone surrogate": "host\ud800",
  };
  for (const [name, holder] of Object.entries(holders)) {
    for (const each of [c, dead]) {
      const e = await rejectsWith(each.acquireLease(id, holder, 60_000), InvalidRequest, `holder ${name}`);
      assert.equal(e.field, "holder", name);
    }
  }
  for (const ttl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, MAX_LEASE_TTL_MS + 1, 1e-7]) {
    for (const each of [c, dead]) {
      const e = await rejectsWith(each.acquireLease(id, "worker", ttl), InvalidRequest, `ttl ${ttl}`);
      assert.equal(e.field, "ttl", String(ttl));
    }
    const fake = new Lease(id, "worker", "0123456789abcdef0123456789abcdef", new Date());
    const r = await rejectsWith(dead.renewLease(fake, ttl), InvalidRequest, `renew with ttl ${ttl}`);
    assert.equal(r.field, "ttl", String(ttl));
  }
  assert.equal(await c.getLease(id), null, "a refused acquire left a lease");

  const longest = await c.acquireLease(id, "h".repeat(MAX_HOLDER_BYTES), MAX_LEASE_TTL_MS);
  assert.equal(longest.holder.length, MAX_HOLDER_BYTES);
  await c.releaseLease(longest);

  // A token no store gives is lost without a call; releasing it does nothing.
  const tokenless = new Lease(id, "worker", "", new Date());
  await rejectsWith(dead.renewLease(tokenless, 60_000), LeaseLost, "renew without a token");
  await dead.releaseLease(tokenless);
});

/** The checkpoint of `id` after `trials` ok trials, `minute` minutes after BASE: later ones are legal successors. */
function successor(id: string, trials: number, minute: number): Checkpoint {
  return sample(id, "ts.delta.Opt", SessionStatus.RUNNING, BASE + minute * 60_000, trials);
}

test("putDelta commits what a delta adds: get returns the new checkpoint byte for byte", async () => {
  const c = client();
  const id = "ts-put-delta";
  await c.delete(id);
  const base = successor(id, 1, 0);
  // On a session that does not exist: Conflict, nothing stored.
  const missing = await rejectsWith(c.putDelta(makeDelta(base, successor(id, 2, 1), 1n)), Conflict, "delta on nothing");
  assertConflict(missing, id, 1n, null);

  assert.equal(await c.put(base), 1n);
  let cp = base;
  let generation = 1n;
  for (const [step, trials] of [3, 3, 6].entries()) {
    const next = successor(id, trials, step + 1);
    assert.equal(await c.putDelta(makeDelta(cp, next, generation)), generation + 1n);
    generation += 1n;
    const stored = await c.get(id);
    assert.equal(stored.generation, generation);
    assert.equal(hexOf(encode(stored.checkpoint)), hexOf(encode(next)));
    cp = next;
  }

  // A stale base generation: Conflict naming both generations.
  const stale = await rejectsWith(c.putDelta(makeDelta(base, successor(id, 7, 9), 1n)), Conflict, "stale base");
  assertConflict(stale, id, 1n, generation);

  // Refused locally by encodeDelta: a kept bit outside the mask; nothing is sent.
  const local = makeDelta(cp, successor(id, 7, 9), generation);
  local.kept |= 1 << 9;
  const refused = await rejectsWith(c.putDelta(local), InvalidDelta, "kept bit 9");
  assert.equal(refused.rule, DeltaRule.KEPT);

  const stored = await c.get(id);
  assert.equal(stored.generation, generation);
  assert.equal(hexOf(encode(stored.checkpoint)), hexOf(encode(cp)));
  await c.delete(id);
});

test("a tampered delta is InvalidDelta; the server names the field under delta.", async () => {
  const c = client();
  const id = "ts-tampered-delta";
  await c.delete(id);
  const base = successor(id, 3, 0);
  await c.put(base);
  // A delta counting another number of base trials: it does not apply to the stored checkpoint.
  const tampered = makeDelta(base, successor(id, 4, 1), 1n);
  tampered.baseTrials = 2n;
  const e = await rejectsWith(c.putDelta(tampered), InvalidDelta, "a delta on 2 base trials");
  assert.equal(e.path, "base_trials");
  assert.equal(e.rule, DeltaRule.BASE_TRIALS);

  // The same bytes, and the bytes with one bit flipped, sent as they are.
  const session = new Http2SessionManager(`http://${main.address}`);
  const transport = createGrpcTransport({ baseUrl: `http://${main.address}`, sessionManager: session });
  const header = { authorization: `Bearer ${TOKEN}` };
  const refusal = async (body: Uint8Array): Promise<{ mapped: unknown; field: string | undefined }> => {
    try {
      await transport.unary(putCheckpointDeltaRaw, undefined, 20_000, header, { delta: body });
    } catch (err) {
      assert.ok(err instanceof ConnectError, String(err));
      const field = err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field;
      return { mapped: fromCallError(err, id, false), field };
    }
    return assert.fail("the server took the delta");
  };
  try {
    const body = encodeDelta(tampered);
    const counted = await refusal(body);
    assert.equal(counted.field, "delta.base_trials");
    assert.ok(counted.mapped instanceof InvalidDelta && counted.mapped.path === "base_trials", String(counted.mapped));

    const flipped = body.slice();
    flipped[flipped.length >> 1]! ^= 0x01;
    const damaged = await refusal(flipped);
    assert.equal(damaged.field, "<input>");
    assert.ok(damaged.mapped instanceof InvalidDelta, String(damaged.mapped));
    assert.equal(damaged.mapped.path, "<input>");
    assert.match(damaged.mapped.rule ?? "", /^input\./);
  } finally {
    session.abort();
  }
  const stored = await c.get(id);
  assert.equal(stored.generation, 1n);
  assert.equal(hexOf(encode(stored.checkpoint)), hexOf(encode(base)));
  await c.delete(id);
});

/** The next event of a checkpoint watch, failing after 20 s. */
function nextCheckpointEvent(events: AsyncIterator<CheckpointWatchEvent>): Promise<CheckpointWatchEvent> {
  return nextEvent(events as AsyncIterator<WatchEvent>) as Promise<CheckpointWatchEvent>;
}

test("watchCheckpoints keeps the checkpoint: after each commit it is the one get returns", { timeout: 120_000 }, async () => {
  const watcher = client();
  const writer = client();
  const id = "ts-watch-checkpoints";
  await writer.delete(id);
  const stop = new AbortController();
  const events = watcher.watchCheckpoints(id, stop.signal)[Symbol.asyncIterator]();
  const sameAsGet = async (ev: CheckpointWatchEvent, type: WatchEventType): Promise<void> => {
    assert.equal(ev.type, type);
    assert.equal(ev.sessionId, id);
    assert.ok(ev.checkpoint !== undefined, `${WatchEventType[ev.type]} event without a checkpoint`);
    const stored = await writer.get(id);
    assert.equal(ev.generation, stored.generation);
    assert.equal(ev.session?.generation, stored.generation);
    assert.equal(hexOf(encode(ev.checkpoint)), hexOf(encode(stored.checkpoint)));
  };

  const initial = await nextCheckpointEvent(events);
  assert.equal(initial.type, WatchEventType.INITIAL);
  assert.equal(initial.checkpoint, undefined);
  assert.equal(initial.generation, 0n);

  let cp = successor(id, 1, 0);
  let generation = await writer.put(cp);
  await sameAsGet(await nextCheckpointEvent(events), WatchEventType.COMMITTED);
  for (const [step, trials] of [2, 4, 4, 5].entries()) {
    const next = successor(id, trials, step + 1);
    generation = await writer.putDelta(makeDelta(cp, next, generation));
    await sameAsGet(await nextCheckpointEvent(events), WatchEventType.COMMITTED);
    cp = next;
  }
  // A whole checkpoint committed with put is followed too.
  cp = successor(id, 8, 10);
  generation = await writer.put(cp, generation);
  await sameAsGet(await nextCheckpointEvent(events), WatchEventType.COMMITTED);

  // A watch of an existing session starts with its checkpoint.
  for await (const first of watcher.watchCheckpoints(id)) {
    await sameAsGet(first, WatchEventType.INITIAL);
    break;
  }

  // Deleted: no checkpoint; created again: generation 1.
  await writer.delete(id);
  const deleted = await nextCheckpointEvent(events);
  assert.equal(deleted.type, WatchEventType.DELETED);
  assert.equal(deleted.checkpoint, undefined);
  assert.equal(deleted.generation, 0n);
  await writer.put(successor(id, 1, 0));
  await sameAsGet(await nextCheckpointEvent(events), WatchEventType.COMMITTED);

  const pending = events.next();
  setTimeout(() => stop.abort(), 100);
  assert.deepEqual(await pending, { value: undefined, done: true });
  await writer.delete(id);
});

test("watchCheckpoints checks what it receives: what cannot be followed is CorruptStore", { timeout: 60_000 }, async () => {
  const id = "ts-fake-watch";
  const base = successor(id, 1, 0);
  const next = successor(id, 3, 1);
  const baseBytes = encode(base);
  const deltaOn = (from: Checkpoint, generation: bigint): Uint8Array => encodeDelta(makeDelta(from, next, generation));
  const good = deltaOn(base, 1n);
  const flipped = good.slice();
  flipped[flipped.length >> 1]! ^= 0x01;
  const event = (
    type: WatchEventType,
    generation: bigint,
    state: { checkpoint?: Uint8Array; delta?: Uint8Array } = {},
  ): Uint8Array =>
    toBinary(
      RawWatchSessionResponseSchema,
      create(RawWatchSessionResponseSchema, {
        type,
        session: generation === 0n ? [] : [toBinary(SessionSummarySchema, create(SessionSummarySchema, { sessionId: id, generation }))],
        sessionId: id,
        checkpoint: state.checkpoint === undefined ? [] : [state.checkpoint],
        delta: state.delta === undefined ? [] : [state.delta],
      }),
    );
  const start = event(WatchEventType.INITIAL, 1n, { checkpoint: baseBytes });
  const viewOf = (request: Uint8Array | undefined): WatchView =>
    fromBinary(WatchSessionRequestSchema, request ?? new Uint8Array()).view;

  // A correct server's events: the checkpoint, then a delta on it.
  {
    const fake = await fakeServer({ WatchSession: [start, event(WatchEventType.COMMITTED, 2n, { delta: good })] });
    const c = createCheckpointStoreClient(fake.address, { timeoutMs: 10_000 });
    try {
      const seen: CheckpointWatchEvent[] = [];
      for await (const ev of c.watchCheckpoints(id)) {
        seen.push(ev);
      }
      assert.deepEqual(
        seen.map((ev) => [ev.generation, hexOf(encode(ev.checkpoint!))]),
        [
          [1n, hexOf(baseBytes)],
          [2n, hexOf(encode(next))],
        ],
      );
      assert.equal(viewOf(fake.requests[0]), WatchView.CHECKPOINT);
      // watch asks for summaries and leaves the state alone.
      const summaries: WatchEvent[] = [];
      for await (const ev of c.watch(id)) {
        summaries.push(ev);
      }
      assert.deepEqual(
        summaries.map((ev) => [ev.type, ev.session?.generation, "checkpoint" in ev]),
        [
          [WatchEventType.INITIAL, 1n, false],
          [WatchEventType.COMMITTED, 2n, false],
        ],
      );
      assert.equal(viewOf(fake.requests[1]), WatchView.UNSPECIFIED);
    } finally {
      c.close();
      await fake.close();
    }
  }

  const cases: [string, Uint8Array[], string][] = [
    [
      "a delta on another generation",
      [start, event(WatchEventType.COMMITTED, 6n, { delta: deltaOn(base, 5n) })],
      "a delta on generation 5, the previous event's checkpoint is generation 1",
    ],
    [
      "a delta with no checkpoint before it",
      [event(WatchEventType.INITIAL, 0n), event(WatchEventType.COMMITTED, 2n, { delta: good })],
      "a delta on generation 1, the previous event's checkpoint is generation none",
    ],
    [
      "a delta of another base",
      [start, event(WatchEventType.COMMITTED, 2n, { delta: deltaOn(successor(id, 2, 0), 1n) })],
      "a delta that cannot be applied",
    ],
    ["flipped delta bytes", [start, event(WatchEventType.COMMITTED, 2n, { delta: flipped })], "a delta that cannot be applied"],
    ["a delta in the initial event", [event(WatchEventType.INITIAL, 2n, { delta: good })], "a delta with a INITIAL event"],
    ["a commit without state", [start, event(WatchEventType.COMMITTED, 2n)], "without a checkpoint or a delta"],
    [
      "both a checkpoint and a delta",
      [start, event(WatchEventType.COMMITTED, 2n, { checkpoint: baseBytes, delta: good })],
      "both a checkpoint and a delta",
    ],
    [
      "an invalid checkpoint",
      [event(WatchEventType.INITIAL, 1n, { checkpoint: baseBytes.subarray(0, baseBytes.length - 1) })],
      "an invalid checkpoint",
    ],
    [
      "another session",
      [event(WatchEventType.INITIAL, 1n, { checkpoint: encode(successor("ts-fake-other", 1, 0)) })],
      "another session",
    ],
  ];
  for (const [name, answers, detail] of cases) {
    const fake = await fakeServer({ WatchSession: answers });
    const c = createCheckpointStoreClient(fake.address, { timeoutMs: 10_000 });
    try {
      let taken = 0;
      const drain = async (): Promise<void> => {
        for await (const _ of c.watchCheckpoints(id)) {
          taken++;
        }
      };
      const e = await rejectsWith(drain(), CorruptStore, name);
      assert.equal(e.path, id, name);
      assert.ok(e.detail.includes(detail), `${name}: ${e.detail}`);
      assert.equal(taken, answers.length - 1, `${name}: the events before the bad one are taken`);
    } finally {
      c.close();
      await fake.close();
    }
  }
});
