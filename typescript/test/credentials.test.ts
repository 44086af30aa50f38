/** The credential screen of FORMAT.md §10, table-driven from the cases every implementation reads. */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  type Checkpoint,
  credentialKey,
  decode,
  encode,
  hasSecret,
  InvalidCheckpoint,
  OptionEntrySchema,
  REDACTED,
  redact,
  redactText,
  screen,
  type Term,
  TermSchema,
  toTerm,
  toTermMap,
  TrialLogEntrySchema,
  TrialStatus,
  CheckpointSchema,
} from "../src/index.js";
import { HEAD_WORDS, KEY_QUALIFIERS, QUERY_NAMES, SECRET_WORDS, SHAPES } from "../src/credentials.js";
import { freshCheckpoint, hexOf } from "./helpers.js";
import { seal } from "../src/grammar.js";

interface Cases {
  rule: {
    secret_words: string[];
    key_qualifiers: string[];
    head_words: string[];
    query_names: string[];
    shapes: [string, string, number][];
  };
  keys: [string, boolean][];
  texts: [string, string][];
  terms: { term: unknown; at: string | null; redacted?: unknown }[];
  options: { key: string; value: unknown; at: string | null; redacted?: unknown }[];
}

const FORMAT_MD = new URL("../../../FORMAT.md", import.meta.url);
const BLOCK = /<!-- credential-cases:begin -->\s*```json\n([\s\S]*?)```\s*<!-- credential-cases:end -->/;
const REPEAT = /\{([^{}*]+)\*(\d+)\}/g;

function loadCases(): Cases {
  const match = BLOCK.exec(readFileSync(FORMAT_MD, "utf8"));
  assert.ok(match, "FORMAT.md §10 has no credential cases");
  return JSON.parse(match[1]!) as Cases;
}

const CASES = loadCases();

/** `{s*n}` in every string of a case stands for `s` written `n` times. */
function expand(value: unknown): unknown {
  if (typeof value === "string") {
    return value.replace(REPEAT, (_, s: string, n: string) => s.repeat(Number(n)));
  }
  if (Array.isArray(value)) {
    return value.map(expand);
  }
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [expand(k), expand(v)]));
  }
  return value;
}

function refusedAt(fn: () => unknown): string {
  let path = "";
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidCheckpoint, String(e));
    path = e.path;
    return true;
  });
  return path;
}

function withTrial(): Checkpoint {
  const cp = freshCheckpoint();
  const p = cp.progress!;
  p.trialLog.push(create(TrialLogEntrySchema, { trialIdx: 0n, score: 0.5, status: TrialStatus.OK }));
  p.attempts = 1n;
  p.completed = 1n;
  p.bestScore = 0.5;
  p.bestTrialIdx = 0n;
  return cp;
}

const sameTerm = (a: Term | undefined, b: Term): boolean =>
  a !== undefined && hexOf(toBinary(TermSchema, a)) === hexOf(toBinary(TermSchema, b));

test("the rule's lists and shapes are the ones of FORMAT.md", () => {
  assert.deepEqual([...SECRET_WORDS].sort(), CASES.rule.secret_words);
  assert.deepEqual([...KEY_QUALIFIERS].sort(), CASES.rule.key_qualifiers);
  assert.deepEqual([...HEAD_WORDS].sort(), CASES.rule.head_words);
  assert.deepEqual([...QUERY_NAMES].sort(), CASES.rule.query_names);
  assert.deepEqual(
    SHAPES.map((s) => [...s]),
    CASES.rule.shapes,
  );
});

test("the key rule on every key case", () => {
  for (const [key, expected] of CASES.keys) {
    assert.equal(credentialKey(key), expected, key);
  }
});

test("the value rule on every text case, also as a candidate id", () => {
  CASES.texts.forEach(([rawText, rawRedacted], i) => {
    const text = expand(rawText) as string;
    const redacted = expand(rawRedacted) as string;
    assert.equal(redactText(text), redacted, `text ${i}`);
    assert.equal(hasSecret(text), text !== redacted, `text ${i}`);
    assert.equal(redactText(redacted), redacted, `text ${i} is redacted twice the same`);
    const cp = withTrial();
    cp.progress!.trialLog[0]!.candidateId = text;
    if (text === redacted) {
      encode(cp);
      return;
    }
    assert.equal(refusedAt(() => encode(cp)), "progress.trial_log[0].candidate_id", `text ${i}`);
    const out = decode(encode(cp, { redactSecrets: true }));
    assert.equal(out.progress!.trialLog[0]!.candidateId, redacted, `text ${i}`);
    assert.equal(cp.progress!.trialLog[0]!.candidateId, text, "encode does not change its argument");
  });
});

function checkCase(name: string, cp: Checkpoint, at: string | null, redacted: unknown, get: (c: Checkpoint) => Term | undefined): void {
  if (at === null) {
    encode(cp);
    return;
  }
  assert.equal(refusedAt(() => encode(cp)), at, name);
  decode(seal(toBinary(CheckpointSchema, cp))); // readers do not screen
  if (redacted === null) {
    refusedAt(() => encode(cp, { redactSecrets: true }));
    return;
  }
  const out = decode(encode(cp, { redactSecrets: true }));
  assert.ok(sameTerm(get(out), toTerm(redacted)), `${name}: redacted`);
  assert.equal(hexOf(encode(out)), hexOf(encode(cp, { redactSecrets: true })), `${name}: passes once redacted`);
}

test("every Term case, as a terminal reason and as trial stats", () => {
  CASES.terms.forEach((c, i) => {
    const value = expand(c.term);
    const redacted = c.redacted === undefined ? undefined : expand(c.redacted);
    const cp = freshCheckpoint();
    cp.terminalReason = toTerm(value);
    checkCase(`term ${i}`, cp, c.at === null ? null : `terminal_reason.${c.at}`, redacted, (x) => x.terminalReason);
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      const withStats = withTrial();
      withStats.progress!.trialLog[0]!.stats = toTermMap(value);
      checkCase(
        `term ${i} as stats`,
        withStats,
        c.at === null ? null : `progress.trial_log[0].stats.${c.at.replace(/^map_value\./, "")}`,
        redacted,
        (x) => {
          const stats = x.progress!.trialLog[0]!.stats;
          return stats && create(TermSchema, { kind: { case: "mapValue", value: stats } });
        },
      );
    }
  });
});

test("every option case", () => {
  CASES.options.forEach((c, i) => {
    const cp = freshCheckpoint();
    cp.optimizerOpts.push(create(OptionEntrySchema, { key: expand(c.key) as string, value: toTerm(expand(c.value)) }));
    const redacted = c.redacted === undefined ? undefined : expand(c.redacted);
    checkCase(`option ${i}`, cp, c.at, redacted, (x) => x.optimizerOpts[0]!.value);
  });
});

test("common names and values pass", () => {
  const harmless = {
    tokens: 120n,
    max_tokens: 512n,
    num_tokens: 7n,
    token_count: 3n,
    token_type: "bpe",
    tokenizer: "cl100k_base",
    temperature: 0.7,
    keyboard: "qwerty",
    author: "someone",
    key: "value",
    url: "https://api.example.com/v1/chat?model=gpt&stream=true",
    sha256: "9e".repeat(32),
    prompt: "Answer with the key fact. Use the Bearer scheme. x = 1; y = 2",
    api_key: null,
    password: REDACTED,
    secret: 42n,
    auth: false,
  };
  const cp = withTrial();
  cp.optimizerOpts.push(create(OptionEntrySchema, { key: "lm", value: toTerm(harmless) }));
  cp.progress!.trialLog[0]!.stats = toTermMap(harmless);
  cp.bestProgramArtifact = toTermMap({ demos: [harmless] });
  cp.terminalReason = toTerm(harmless);
  const raw = encode(cp);
  screen(cp);
  assert.equal(hexOf(encode(cp, { redactSecrets: true })), hexOf(raw));
});

test("screen and redact in place; a secret in a key stays refused", () => {
  const cp = withTrial();
  cp.optimizerOpts.push(create(OptionEntrySchema, { key: "Authorization", value: toTerm("Bearer " + "t0".repeat(12)) }));
  cp.progress!.trialLog[0]!.stats = toTermMap({ message: "GET /v1?key=" + "k1".repeat(10) + " failed" });
  assert.equal(refusedAt(() => screen(cp)), "optimizer_opts[0].key");
  redact(cp);
  assert.ok(sameTerm(cp.optimizerOpts[0]!.value, toTerm(REDACTED)));
  assert.ok(sameTerm(create(TermSchema, { kind: { case: "mapValue", value: cp.progress!.trialLog[0]!.stats! } }), toTerm({ message: "GET /v1?key=[redacted] failed" })));
  screen(cp);
  cp.terminalReason = toTerm({ ["sk-" + "a1".repeat(12)]: 1n });
  assert.equal(refusedAt(() => redact(cp)), "terminal_reason.map_value.entries[0].key.string_value");
});
