/**
 * The errors of the store client, and how a failed call becomes one.
 *
 * A status the server sends is turned into the error a local store raises
 * for the same failure (the classes of the Python store and the Go client):
 *
 * | error                 | status code and ErrorInfo reason                        |
 * |-----------------------|---------------------------------------------------------|
 * | {@link NotFound}          | NOT_FOUND, SESSION_NOT_FOUND                        |
 * | {@link Conflict}          | ABORTED, GENERATION_CONFLICT                        |
 * | {@link InvalidDelta}      | INVALID_ARGUMENT, INVALID_CHECKPOINT with subject `delta` (`path`: the delta's field) |
 * | {@link InvalidCheckpoint} | INVALID_ARGUMENT, INVALID_CHECKPOINT (`path`: the FORMAT.md field) |
 * | {@link InvalidSessionId}  | INVALID_ARGUMENT, INVALID_SESSION_ID                |
 * | {@link CorruptStore}      | DATA_LOSS, CORRUPT_STORE (or a damaged checkpoint or delta received) |
 * | {@link IllegalHistory}    | FAILED_PRECONDITION, ILLEGAL_HISTORY (`rule`: the FORMAT.md §9.1 rule) |
 * | {@link LeaseHeld}         | FAILED_PRECONDITION, LEASE_HELD (`holder`, `expiresAt`) |
 * | {@link LeaseLost}         | FAILED_PRECONDITION, LEASE_LOST                     |
 * | {@link InvalidRequest}    | any other INVALID_ARGUMENT                          |
 * | {@link Unavailable}       | UNAVAILABLE, DEADLINE_EXCEEDED, or no answer at all |
 * | {@link Unauthenticated}   | UNAUTHENTICATED, PERMISSION_DENIED                  |
 * | {@link ResourceExhausted} | RESOURCE_EXHAUSTED                                  |
 * | {@link ServiceError}      | any other status                                    |
 *
 * The last four extend {@link ServiceError}, which carries the code and the
 * reason: the name of an {@link ErrorReason} value, in an ErrorInfo of the
 * domain {@link ERROR_DOMAIN}. Compare it with the enum, never with a
 * literal: `err.reason === ErrorReason[ErrorReason.WATCH_OVERFLOW]`.
 *
 * @module
 */

import { ConnectError } from "@connectrpc/connect";
import { InvalidDelta } from "../delta.js";
import { isDeltaRuleId } from "../delta_rules.js";
import { CheckpointError, InvalidCheckpoint } from "../errors.js";
import { isRuleId } from "../rules.js";
import {
  ErrorReason,
  file_dsxir_checkpoint_store_v1_error_reason,
} from "../gen/dsxir/checkpoint_store/v1/error_reason_pb.js";
import { BadRequestSchema, ErrorInfoSchema, type ErrorInfo } from "./messages.js";

/**
 * The ErrorInfo domain of every error the service sends: the protobuf
 * package of the service and of its ErrorReason enum,
 * `dsxir.checkpoint_store.v1`.
 */
export const ERROR_DOMAIN: string = file_dsxir_checkpoint_store_v1_error_reason.proto.package;

/** No checkpoint is stored for the session (NOT_FOUND). */
export class NotFound extends CheckpointError {
  readonly sessionId: string;

  constructor(sessionId: string) {
    super(`no checkpoint stored for session "${sessionId}"`);
    this.sessionId = sessionId;
  }
}

/**
 * A compare-and-swap commit found another generation than the one expected
 * (ABORTED, GENERATION_CONFLICT). `expected` is the generation the caller
 * sent, `actual` the one stored; `null` stands for none (a create, or no
 * session stored). Nothing was committed: read the session again.
 */
export class Conflict extends CheckpointError {
  readonly sessionId: string;
  readonly expected: bigint | null;
  readonly actual: bigint | null;

  constructor(sessionId: string, expected: bigint | null, actual: bigint | null) {
    super(`generation conflict for session "${sessionId}": expected=${expected ?? "none"} stored=${actual ?? "none"}`);
    this.sessionId = sessionId;
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * A session id the server's store refuses (INVALID_ARGUMENT,
 * INVALID_SESSION_ID: `/`, `..`, a leading dot, control characters, over 200
 * bytes…); the message says why.
 */
export class InvalidSessionId extends CheckpointError {
  readonly sessionId: string;

  constructor(sessionId: string, message: string) {
    super(message);
    this.sessionId = sessionId;
  }
}

/**
 * Stored data is damaged (DATA_LOSS, CORRUPT_STORE: `path` names the file or
 * row), or the server sent a checkpoint that {@link decode} refuses or that
 * is not the session asked for, or watch events whose checkpoint cannot be
 * followed (`path`: the session id).
 */
export class CorruptStore extends CheckpointError {
  readonly path: string;
  readonly detail: string;

  constructor(path: string, detail: string) {
    super(`${path}: ${detail}`);
    this.path = path;
    this.detail = detail;
  }
}

/**
 * A commit that is not a legal successor of the stored generation
 * (FAILED_PRECONDITION, ILLEGAL_HISTORY; FORMAT.md §9.1). `rule` names the
 * broken rule, e.g. `history.trial_log_rewritten`. Nothing was stored.
 */
export class IllegalHistory extends CheckpointError {
  readonly sessionId: string;
  readonly rule: string;
  readonly detail: string;

  constructor(sessionId: string, rule: string, detail: string) {
    super(`illegal history for session "${sessionId}": ${rule}: ${detail}`);
    this.sessionId = sessionId;
    this.rule = rule;
    this.detail = detail;
  }
}

/**
 * Another worker holds the session's lease (FAILED_PRECONDITION, LEASE_HELD)
 * until `expiresAt` (null when the server sent no readable time).
 */
export class LeaseHeld extends CheckpointError {
  readonly sessionId: string;
  readonly holder: string;
  readonly expiresAt: Date | null;

  constructor(sessionId: string, holder: string, expiresAt: Date | null) {
    super(`session "${sessionId}" is held by ${JSON.stringify(holder)} until ${expiresAt?.toISOString() ?? "unknown"}`);
    this.sessionId = sessionId;
    this.holder = holder;
    this.expiresAt = expiresAt;
  }
}

/**
 * The lease named by the call is no longer the session's lease
 * (FAILED_PRECONDITION, LEASE_LOST): released, or expired and taken over.
 */
export class LeaseLost extends CheckpointError {
  readonly sessionId: string;
  readonly detail: string;

  constructor(sessionId: string, detail: string) {
    super(detail === "" ? `lease on session "${sessionId}" lost` : `lease on session "${sessionId}" lost: ${detail}`);
    this.sessionId = sessionId;
    this.detail = detail;
  }
}

/**
 * The gRPC status codes, by their canonical names (the numbers of
 * google.rpc.Code).
 */
export enum StatusCode {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

/**
 * A call failed with a status that has no store-level meaning. `code` is the
 * gRPC status code,
 * `reason` the ErrorInfo reason, the name of an {@link ErrorReason} value
 * (empty when the status carried none), `rawMessage` the status message. The
 * message reads `<CODE>: <status message>`, e.g. `UNAVAILABLE: …`.
 */
export class ServiceError extends CheckpointError {
  readonly code: StatusCode;
  readonly reason: string;
  readonly rawMessage: string;

  constructor(code: StatusCode, rawMessage: string, reason = "", options?: { cause?: unknown }) {
    super(`${codeName(code)}: ${rawMessage}`);
    this.code = code;
    this.reason = reason;
    this.rawMessage = rawMessage;
    if (options?.cause !== undefined) {
      Object.defineProperty(this, "cause", { value: options.cause, configurable: true, writable: true });
    }
  }
}

/**
 * The service or its storage cannot be reached, no answer came (connection
 * refused or lost, server killed, TLS handshake failed), or the call's
 * deadline passed (UNAVAILABLE, DEADLINE_EXCEEDED). A commit that failed so
 * may or may not have been made: read the session's generation to learn
 * which. Nothing is retried behind the caller's back.
 */
export class Unavailable extends ServiceError {}

/** The call carried no valid bearer token (UNAUTHENTICATED, PERMISSION_DENIED). */
export class Unauthenticated extends ServiceError {}

/** A message was over a size limit, or the server ran out of a resource such as watch slots (RESOURCE_EXHAUSTED). */
export class ResourceExhausted extends ServiceError {}

/**
 * A request field was refused (INVALID_ARGUMENT other than a checkpoint or a
 * session id: a negative generation, a mismatched page token…). `field` names
 * it when known.
 */
export class InvalidRequest extends ServiceError {
  readonly field: string | null;

  constructor(code: StatusCode, rawMessage: string, reason: string, field: string | null) {
    super(code, rawMessage, reason);
    this.field = field;
  }
}

/** The name of a status code, e.g. `UNAVAILABLE` (`CODE_<n>` for a code gRPC does not define). */
export function codeName(code: StatusCode): string {
  return StatusCode[code] ?? `CODE_${code}`;
}

function reasonName(reason: ErrorReason): string {
  return ErrorReason[reason];
}

/** The error of a request field refused before anything was sent. */
export function localInvalidRequest(field: string, detail: string): InvalidRequest {
  return new InvalidRequest(StatusCode.INVALID_ARGUMENT, `${field}: ${detail}`, reasonName(ErrorReason.INVALID_REQUEST), field);
}

/**
 * Whether a failed call got an answer from a gRPC server: a status in the
 * response headers or trailers. Without one the call never reached a server
 * or lost it midway (refused, reset or closed connection, failed TLS
 * handshake, a stream that ended with no status).
 */
function answered(error: ConnectError): boolean {
  return error.metadata.has("grpc-status") || error.details.length > 0;
}

/** Codes a call ends with, without a status from a server, when the connection failed or was lost. */
const NO_ANSWER_CODES: ReadonlySet<StatusCode> = new Set([
  StatusCode.CANCELLED,
  StatusCode.UNKNOWN,
  StatusCode.ABORTED,
  StatusCode.INTERNAL,
  StatusCode.UNAVAILABLE,
]);

/**
 * The store-level error of a failed call (see the module text). `sessionId`
 * is the session of the call, if any; `cancelled` says whether the caller
 * (or closing the client) ended the call. Anything that is not a
 * ConnectError is returned as it is.
 */
export function fromCallError(error: unknown, sessionId: string | null, cancelled: boolean): unknown {
  if (!(error instanceof ConnectError)) {
    return error;
  }
  // Connect's codes are the gRPC status codes, number for number.
  const code = error.code as number as StatusCode;
  const message = error.rawMessage;
  if (!answered(error) && NO_ANSWER_CODES.has(code)) {
    if (code === StatusCode.CANCELLED && cancelled) {
      return new ServiceError(code, message, "", { cause: error });
    }
    // No status came back: the connection was refused, failed or was lost
    // mid-call (a reset, a server killed, a stream closed without a status).
    return new Unavailable(StatusCode.UNAVAILABLE, message, "", { cause: error });
  }
  const { info, field } = findDetails(error);
  const reason = info?.reason ?? "";
  const meta = info?.metadata ?? {};
  const is = (want: StatusCode, wantReason: ErrorReason): boolean => code === want && reason === reasonName(wantReason);
  const sid = meta["session_id"] ?? sessionId ?? "";
  if (is(StatusCode.NOT_FOUND, ErrorReason.SESSION_NOT_FOUND)) {
    return new NotFound(sid);
  }
  if (is(StatusCode.ABORTED, ErrorReason.GENERATION_CONFLICT)) {
    return new Conflict(sid, generation(meta["expected_generation"]), generation(meta["stored_generation"]));
  }
  if (is(StatusCode.INVALID_ARGUMENT, ErrorReason.INVALID_CHECKPOINT) && meta["subject"] === "delta") {
    const rule = meta["rule"];
    const known = isRuleId(rule) || isDeltaRuleId(rule) ? rule : null;
    return new InvalidDelta(meta["field"] ?? "<input>", meta["detail"] ?? message, known);
  }
  if (is(StatusCode.INVALID_ARGUMENT, ErrorReason.INVALID_CHECKPOINT)) {
    const rule = meta["rule"];
    return new InvalidCheckpoint(meta["field"] ?? "<input>", meta["detail"] ?? message, isRuleId(rule) ? rule : null);
  }
  if (is(StatusCode.INVALID_ARGUMENT, ErrorReason.INVALID_SESSION_ID)) {
    return new InvalidSessionId(sessionId ?? "", message);
  }
  if (is(StatusCode.FAILED_PRECONDITION, ErrorReason.ILLEGAL_HISTORY)) {
    return new IllegalHistory(sid, meta["rule"] ?? "", meta["detail"] ?? message);
  }
  if (is(StatusCode.FAILED_PRECONDITION, ErrorReason.LEASE_HELD)) {
    const until = new Date(meta["expires_at"] ?? "");
    return new LeaseHeld(sid, meta["holder"] ?? "", Number.isNaN(until.getTime()) ? null : until);
  }
  if (is(StatusCode.FAILED_PRECONDITION, ErrorReason.LEASE_LOST)) {
    return new LeaseLost(sid, meta["detail"] ?? "");
  }
  if (is(StatusCode.DATA_LOSS, ErrorReason.CORRUPT_STORE)) {
    return new CorruptStore(meta["path"] ?? "?", meta["detail"] ?? message);
  }
  switch (code) {
    case StatusCode.INVALID_ARGUMENT:
      return new InvalidRequest(code, message, reason, meta["field"] ?? field);
    case StatusCode.UNAVAILABLE:
    case StatusCode.DEADLINE_EXCEEDED:
      return new Unavailable(code, message, reason, { cause: error });
    case StatusCode.UNAUTHENTICATED:
    case StatusCode.PERMISSION_DENIED:
      return new Unauthenticated(code, message, reason);
    case StatusCode.RESOURCE_EXHAUSTED:
      return new ResourceExhausted(code, message, reason);
    default:
      return new ServiceError(code, message, reason);
  }
}

/** A generation of ErrorInfo metadata: null for "0", absent or unreadable (none). */
function generation(text: string | undefined): bigint | null {
  if (text === undefined || !/^[0-9]{1,19}$/.test(text)) {
    return null;
  }
  const g = BigInt(text);
  return g === 0n ? null : g;
}

/** The ErrorInfo of the service's domain and the field of the first BadRequest violation, if any. */
function findDetails(error: ConnectError): { info: ErrorInfo | undefined; field: string | null } {
  let info: ErrorInfo | undefined;
  let field: string | null = null;
  try {
    info = error.findDetails(ErrorInfoSchema).find((x) => x.domain === ERROR_DOMAIN);
  } catch {
    info = undefined; // a damaged detail is ignored; the code still counts
  }
  try {
    for (const bad of error.findDetails(BadRequestSchema)) {
      const first = bad.fieldViolations[0];
      if (first !== undefined && first.field !== "") {
        field = first.field;
        break;
      }
    }
  } catch {
    field = null;
  }
  return { info, field };
}
