/** Shared helpers of the tests: the golden vectors, a seeded PRNG and a checkpoint builder. */

import { readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import {
  type Checkpoint,
  CheckpointSchema,
  FORMAT_ID,
  ProgressSchema,
  SamplerFormatSchema,
  SessionStatus,
} from "../src/index.js";

/** tests/vectors/ of the repository (this file runs from typescript/dist/test/). */
export const VECTORS = new URL("../../../tests/vectors/", import.meta.url);

export interface Manifest {
  valid: { name: string; binpb: string; json: string; description: string }[];
  unknown: { name: string; binpb: string; known_only: string; description: string }[];
  invalid: {
    name: string;
    binpb: string;
    field: string;
    rule: string;
    protobuf_level: boolean;
    description: string;
  }[];
  canonicalize: { name: string; input: string; canonical: string; description: string }[];
  trainset: { name: string; input: string; sha256: string; description: string }[];
}

export function manifest(): Manifest {
  return JSON.parse(readFileSync(new URL("manifest.json", VECTORS), "utf8")) as Manifest;
}

export function vector(path: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(path, VECTORS)));
}

export function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

export function fromHex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"));
}

/** A small deterministic PRNG (mulberry32), so failures reproduce. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A valid running checkpoint with no trials. */
export function freshCheckpoint(): Checkpoint {
  const stamp = () => create(TimestampSchema, { seconds: 1_767_225_600n, nanos: 123_456_000 });
  return create(CheckpointSchema, {
    format: FORMAT_ID,
    sessionId: "s1",
    optimizer: "dspy.teleprompt.MIPROv2",
    trainsetHash: new Uint8Array(32).fill(7),
    createdAt: stamp(),
    updatedAt: stamp(),
    progress: create(ProgressSchema, { startedAt: stamp() }),
    samplerBlob: new Uint8Array([1, 2, 3]),
    samplerFormat: create(SamplerFormatSchema, { module: "demo.RandomSearch", version: 1 }),
    status: SessionStatus.RUNNING,
  });
}
