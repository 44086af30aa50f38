/**
 * Messages the client needs beyond the generated code, described here at run
 * time (the generated code under `src/gen/` is never edited):
 *
 * - `google.rpc.ErrorInfo` and `google.rpc.BadRequest`, the details the
 *   service puts in the `grpc-status-details-bin` trailer of every error;
 * - wire-compatible views of the store's messages that keep a checkpoint or
 *   a delta as its bytes: the requests of PutCheckpoint and
 *   PutCheckpointDelta, the responses of GetCheckpoint and WatchSession. A
 *   checkpoint then crosses the wire exactly as {@link encode} wrote it, and
 *   reaches {@link decode} exactly as the server sent it (`decode` parses
 *   with the rules of the official runtimes, which `fromBinary` does not
 *   follow); a delta likewise with {@link encodeDelta} and
 *   {@link decodeDelta}.
 *
 * @module
 */

import {
  create,
  createFileRegistry,
  type DescMessage,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type Message,
} from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import {
  type DescriptorProto,
  DescriptorProtoSchema,
  type FieldDescriptorProto,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FieldDescriptorProtoSchema,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import {
  CheckpointStoreService,
  PutCheckpointResponseSchema,
  PutCheckpointDeltaResponseSchema,
  GetCheckpointRequestSchema,
  WatchSessionRequestSchema,
} from "../gen/dsxir/checkpoint_store/v1/service_pb.js";

/** google.rpc.ErrorInfo (AIP-193). */
export type ErrorInfo = Message<"google.rpc.ErrorInfo"> & {
  reason: string;
  domain: string;
  metadata: { [key: string]: string };
};

/** google.rpc.BadRequest: the request fields a call refused. */
export type BadRequest = Message<"google.rpc.BadRequest"> & {
  fieldViolations: BadRequest_FieldViolation[];
};

/** google.rpc.BadRequest.FieldViolation (the fields read by the client). */
export type BadRequest_FieldViolation = Message<"google.rpc.BadRequest.FieldViolation"> & {
  field: string;
  description: string;
  reason: string;
};

/** PutCheckpointRequest with its checkpoint as encoded bytes. */
export type RawPutCheckpointRequest = Message<"dsxir.checkpoint_store.v1.client.RawPutCheckpointRequest"> & {
  checkpoint: Uint8Array;
  expectedGeneration: bigint;
};

/**
 * GetCheckpointResponse with its checkpoint as bytes: every occurrence of
 * field 1 in the order received. Concatenated, they are the checkpoint's
 * encoding (protobuf merges repeated occurrences of a message field).
 */
export type RawGetCheckpointResponse = Message<"dsxir.checkpoint_store.v1.client.RawGetCheckpointResponse"> & {
  checkpoint: Uint8Array[];
  generation: bigint;
};

/** PutCheckpointDeltaRequest with its delta as encoded bytes. */
export type RawPutCheckpointDeltaRequest = Message<"dsxir.checkpoint_store.v1.client.RawPutCheckpointDeltaRequest"> & {
  delta: Uint8Array;
};

/**
 * WatchSessionResponse with its message fields as bytes, every occurrence in
 * the order received (concatenated, each is the field's encoding): the
 * summary, and the checkpoint or the delta of the `state` oneof.
 */
export type RawWatchSessionResponse = Message<"dsxir.checkpoint_store.v1.client.RawWatchSessionResponse"> & {
  type: number;
  session: Uint8Array[];
  sessionId: string;
  checkpoint: Uint8Array[];
  delta: Uint8Array[];
};

const T = FieldDescriptorProto_Type;
const L = FieldDescriptorProto_Label;

function field(
  name: string,
  number: number,
  type: FieldDescriptorProto_Type,
  options: { repeated?: boolean; typeName?: string } = {},
): FieldDescriptorProto {
  return create(FieldDescriptorProtoSchema, {
    name,
    number,
    type,
    label: options.repeated === true ? L.REPEATED : L.OPTIONAL,
    typeName: options.typeName,
  });
}

function message(name: string, fields: FieldDescriptorProto[], nested: DescriptorProto[] = [], mapEntry = false): DescriptorProto {
  return create(DescriptorProtoSchema, {
    name,
    field: fields,
    nestedType: nested,
    options: mapEntry ? { mapEntry: true } : undefined,
  });
}

const registry = createFileRegistry(
  create(FileDescriptorSetSchema, {
    file: [
      create(FileDescriptorProtoSchema, {
        name: "google/rpc/error_details.proto",
        package: "google.rpc",
        syntax: "proto3",
        messageType: [
          message(
            "ErrorInfo",
            [
              field("reason", 1, T.STRING),
              field("domain", 2, T.STRING),
              field("metadata", 3, T.MESSAGE, { repeated: true, typeName: ".google.rpc.ErrorInfo.MetadataEntry" }),
            ],
            [message("MetadataEntry", [field("key", 1, T.STRING), field("value", 2, T.STRING)], [], true)],
          ),
          message(
            "BadRequest",
            [
              field("field_violations", 1, T.MESSAGE, {
                repeated: true,
                typeName: ".google.rpc.BadRequest.FieldViolation",
              }),
            ],
            [
              message("FieldViolation", [
                field("field", 1, T.STRING),
                field("description", 2, T.STRING),
                field("reason", 3, T.STRING),
              ]),
            ],
          ),
        ],
      }),
      create(FileDescriptorProtoSchema, {
        name: "dsxir/checkpoint_store/v1/client_raw.proto",
        package: "dsxir.checkpoint_store.v1.client",
        // proto2: the checkpoint field has explicit presence, so it is
        // written even when empty, as the field of a message is.
        syntax: "proto2",
        messageType: [
          message("RawPutCheckpointRequest", [
            field("checkpoint", 1, T.BYTES),
            field("expected_generation", 2, T.INT64),
          ]),
          message("RawGetCheckpointResponse", [
            field("checkpoint", 1, T.BYTES, { repeated: true }),
            field("generation", 2, T.INT64),
          ]),
          message("RawPutCheckpointDeltaRequest", [field("delta", 1, T.BYTES)]),
          message("RawWatchSessionResponse", [
            field("type", 1, T.INT32),
            field("session", 2, T.BYTES, { repeated: true }),
            field("session_id", 3, T.STRING),
            field("checkpoint", 4, T.BYTES, { repeated: true }),
            field("delta", 5, T.BYTES, { repeated: true }),
          ]),
        ],
      }),
    ],
  }),
);

function mustMessage<M extends Message>(typeName: string): GenMessage<M> {
  const desc: DescMessage | undefined = registry.getMessage(typeName);
  if (desc === undefined) {
    throw new Error(`internal error: message ${typeName} is not described`);
  }
  return desc as GenMessage<M>;
}

export const ErrorInfoSchema: GenMessage<ErrorInfo> = mustMessage("google.rpc.ErrorInfo");
export const BadRequestSchema: GenMessage<BadRequest> = mustMessage("google.rpc.BadRequest");
export const RawPutCheckpointRequestSchema: GenMessage<RawPutCheckpointRequest> = mustMessage(
  "dsxir.checkpoint_store.v1.client.RawPutCheckpointRequest",
);
export const RawGetCheckpointResponseSchema: GenMessage<RawGetCheckpointResponse> = mustMessage(
  "dsxir.checkpoint_store.v1.client.RawGetCheckpointResponse",
);

export const RawPutCheckpointDeltaRequestSchema: GenMessage<RawPutCheckpointDeltaRequest> = mustMessage(
  "dsxir.checkpoint_store.v1.client.RawPutCheckpointDeltaRequest",
);
export const RawWatchSessionResponseSchema: GenMessage<RawWatchSessionResponse> = mustMessage(
  "dsxir.checkpoint_store.v1.client.RawWatchSessionResponse",
);

const generated = CheckpointStoreService.method;

/** PutCheckpoint, sending the checkpoint's bytes as they are. */
export const putCheckpointRaw: DescMethodUnary<typeof RawPutCheckpointRequestSchema, typeof PutCheckpointResponseSchema> = {
  ...generated.putCheckpoint,
  input: RawPutCheckpointRequestSchema,
};

/** PutCheckpointDelta, sending the delta's bytes as they are. */
export const putCheckpointDeltaRaw: DescMethodUnary<
  typeof RawPutCheckpointDeltaRequestSchema,
  typeof PutCheckpointDeltaResponseSchema
> = {
  ...generated.putCheckpointDelta,
  input: RawPutCheckpointDeltaRequestSchema,
};

/** GetCheckpoint, keeping the checkpoint's bytes as received. */
export const getCheckpointRaw: DescMethodUnary<typeof GetCheckpointRequestSchema, typeof RawGetCheckpointResponseSchema> = {
  ...generated.getCheckpoint,
  output: RawGetCheckpointResponseSchema,
};

export const listSessions = generated.listSessions;
export const deleteCheckpoint = generated.deleteCheckpoint;
export const acquireLease = generated.acquireLease;
export const renewLease = generated.renewLease;
export const releaseLease = generated.releaseLease;
export const getLease = generated.getLease;
/** WatchSession, keeping each event's summary, checkpoint and delta as bytes. */
export const watchSessionRaw: DescMethodServerStreaming<typeof WatchSessionRequestSchema, typeof RawWatchSessionResponseSchema> = {
  ...generated.watchSession,
  output: RawWatchSessionResponseSchema,
};
