/**
 * @dsxir/checkpoint: reader and writer of the dsxir optimizer-session
 * checkpoint format, v1 (see FORMAT.md in the repository).
 */

export {
  checkResume,
  decode,
  encode,
  hashTrainset,
  type EncodeOptions,
  type ResumeExpectation,
} from "./checkpoint.js";
export { MAX_INTEGER_DIGITS, TrainsetJsonError, hashTrainsetJson, hashTrainsetJsonl } from "./trainset_json.js";
export { directionName, isTerminal, statusName, type DirectionName } from "./status.js";
export {
  cancel,
  complete,
  fail,
  pause,
  recordTrial,
  resume,
  type ReasonOptions,
  type Trial,
} from "./transitions.js";
export { REDACTED, credentialKey, hasSecret, redact, redactText, screen } from "./credentials.js";
export {
  AlreadyTerminal,
  CheckpointError,
  InvalidCheckpoint,
  InvalidTransition,
  ResumeMismatch,
  TermTypeError,
  hex,
  type MismatchReason,
} from "./errors.js";
export { Rule, isRuleId, type RuleId } from "./rules.js";
export {
  DELTA_FORMAT_ID,
  InvalidDelta,
  KEPT_MASK,
  applyDelta,
  decodeDelta,
  encodeDelta,
  makeDelta,
  mergeUnchecked,
} from "./delta.js";
export { DeltaRule, isDeltaRuleId, type DeltaRuleId } from "./delta_rules.js";
export {
  Atom,
  MAX_TERM_DEPTH,
  Tuple,
  bigintToBytes,
  bytesToBigint,
  canonicalTerm,
  checkTerm,
  checkTermMap,
  compareBytes,
  fromTerm,
  termBytes,
  toTerm,
  toTermMap,
} from "./term.js";
export { FORMAT_ID, FORMAT_MAJOR, MAX_CHECKPOINT_BYTES, check as validate } from "./validate.js";
export { TRAILER_SIZE, TRAILER_TAG, weightLimit } from "./grammar.js";
export { unknownFields } from "./wire.js";
export * from "./gen/dsxir/optimizer_session/v1/checkpoint_pb.js";
export * from "./gen/dsxir/optimizer_session/v1/term_pb.js";
export {
  CorruptStoreFile,
  MAX_BODY_BYTES,
  MAX_SUMMARY_BYTES,
  RECORD_HEADER_SIZE,
  RECORD_MAGIC,
  STORE_FILE_MAGIC,
  STORE_FLAG_APPENDABLE,
  STORE_FRAME_VERSION,
  STORE_HEADER_SIZE,
  SUMMARY_VERSION,
  commitRecord,
  crc32c,
  encodeRecord,
  encodeSummary,
  readStoreFile,
  writeStoreFile,
  type DamageKind,
  type StoreFile,
  type StoreSummary,
  type WriteStoreFileOptions,
} from "./storefile.js";
export {
  CheckpointStoreClient,
  Conflict,
  CorruptStore,
  createCheckpointStoreClient,
  DEFAULT_TIMEOUT_MS,
  ERROR_DOMAIN,
  IllegalHistory,
  InvalidRequest,
  InvalidSessionId,
  Lease,
  LeaseHeld,
  LeaseLost,
  MAX_HOLDER_BYTES,
  MAX_LEASE_TTL_MS,
  MAX_PAGE_SIZE,
  MESSAGE_LIMIT,
  MIN_TOKEN_CHARS,
  NotFound,
  ResourceExhausted,
  ServiceError,
  StatusCode,
  Unauthenticated,
  Unavailable,
  type CallOptions,
  type CheckpointStoreClientOptions,
  type CheckpointWatchEvent,
  type ListFilter,
  type StoredCheckpoint,
  type WatchEvent,
} from "./client.js";
export * from "./gen/dsxir/checkpoint_store/v1/service_pb.js";
export * from "./gen/dsxir/checkpoint_store/v1/error_reason_pb.js";
