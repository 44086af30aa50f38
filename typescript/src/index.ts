/**
 * @dsxir/checkpoint: reader and writer of the dsxir optimizer-session
 * checkpoint format, v1 (see FORMAT.md in the repository).
 */

export {
  checkResume,
  decode,
  encode,
  hashTrainset,
  isTerminal,
  statusName,
  type ResumeExpectation,
} from "./checkpoint.js";
export {
  AlreadyTerminal,
  CheckpointError,
  InvalidCheckpoint,
  ResumeMismatch,
  TermTypeError,
  hex,
  type MismatchReason,
} from "./errors.js";
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
export * from "./gen/dsxir/optimizer_session/v1/checkpoint_pb.js";
export * from "./gen/dsxir/optimizer_session/v1/term_pb.js";
