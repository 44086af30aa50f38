/**
 * The credential screen of FORMAT.md §10, applied by every writer of this
 * package: {@link encode} refuses a checkpoint holding a credential, or with
 * `{ redactSecrets: true }` writes it redacted; `decode` never screens.
 *
 * - The key rule: an option key, or a string or atom map key, that names a
 *   credential ({@link credentialKey}) may only hold null, a boolean, a
 *   number, `""` or {@link REDACTED}.
 * - The value rule: no text (string or atom Term, option key, candidate id)
 *   may contain a secret of a well-known shape ({@link hasSecret}).
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import type { Checkpoint } from "./gen/dsxir/optimizer_session/v1/checkpoint_pb.js";
import { type Term, type TermMap, TermSchema } from "./gen/dsxir/optimizer_session/v1/term_pb.js";
import { InvalidCheckpoint } from "./errors.js";

/** What redaction stores in place of a credential, and of each secret inside a text. */
export const REDACTED = "[redacted]";

/** A key holding one of these words anywhere names a credential. */
export const SECRET_WORDS: ReadonlySet<string> = new Set([
  "accesskey",
  "accesstoken",
  "apikey",
  "apikeys",
  "authorization",
  "authtoken",
  "bearer",
  "bearertoken",
  "clientsecret",
  "cookie",
  "cookies",
  "credential",
  "credentials",
  "creds",
  "idtoken",
  "jwt",
  "passphrase",
  "passwd",
  "password",
  "passwords",
  "privatekey",
  "refreshtoken",
  "secret",
  "secretkey",
  "secrets",
  "sessiontoken",
  "signingkey",
]);

/** `key` or `keys` right after one of these words names a credential (`api_key`). */
export const KEY_QUALIFIERS: ReadonlySet<string> = new Set([
  "access",
  "api",
  "client",
  "encryption",
  "master",
  "private",
  "secret",
  "session",
  "signing",
  "ssh",
]);

/** A key whose last word is one of these names a credential (`hf_token`, not `token_count`). */
export const HEAD_WORDS: ReadonlySet<string> = new Set(["auth", "token"]);

/** Credentials as URL query parameters (`?key=…`), besides the key rule. */
export const QUERY_NAMES: ReadonlySet<string> = new Set(["key", "sig", "signature"]);

/** Secrets recognised by their shape: name, regular expression, group of the secret part. */
export const SHAPES: readonly (readonly [name: string, pattern: string, group: number])[] = [
  ["bearer token", String.raw`\b[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+([A-Za-z0-9._~+/-]{20,}=*)`, 1],
  ["sk- key", String.raw`\bsk-[A-Za-z0-9_-]{20,}`, 0],
  ["GitHub token", String.raw`\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})`, 0],
  ["Slack token", String.raw`\bxox[abposr]-[A-Za-z0-9-]{10,}`, 0],
  ["AWS access key id", String.raw`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`, 0],
  ["Google API key", String.raw`\bAIza[A-Za-z0-9_-]{35}`, 0],
  ["Hugging Face token", String.raw`\bhf_[A-Za-z0-9]{30,}`, 0],
  ["GitLab token", String.raw`\bglpat-[A-Za-z0-9_-]{20,}`, 0],
  ["JWT", String.raw`\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`, 0],
  [
    "private key block",
    String.raw`-----BEGIN[A-Z ]*PRIVATE KEY-----(?:[\s\S]*?-----END[A-Z ]*PRIVATE KEY-----|[A-Za-z0-9+/=\r\n \t]*)`,
    0,
  ],
];

const COMPILED = SHAPES.map(([name, pattern, group]) => ({ name, re: new RegExp(pattern, "gd"), group }));

const isUpper = (c: string): boolean => c >= "A" && c <= "Z";
const isLower = (c: string): boolean => c >= "a" && c <= "z";
const isNameChar = (c: string): boolean =>
  isUpper(c) || isLower(c) || (c >= "0" && c <= "9") || c === "_" || c === "." || c === "-";

/**
 * The lower-case words of a key (FORMAT.md §10): runs of ASCII letters, split
 * before an upper-case letter that follows a lower-case one or that is
 * followed by one (`APIKey` is `api`, `key`).
 */
export function keyWords(name: string): string[] {
  const words: string[] = [];
  const n = name.length;
  let i = 0;
  while (i < n) {
    if (!isUpper(name[i]!) && !isLower(name[i]!)) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < n && (isUpper(name[j]!) || isLower(name[j]!))) {
      if (isUpper(name[j]!) && (isLower(name[j - 1]!) || (j + 1 < n && isLower(name[j + 1]!)))) {
        break;
      }
      j++;
    }
    words.push(name.slice(i, j).toLowerCase());
    i = j;
  }
  return words;
}

/**
 * Whether a map or option key names a credential: one of its words is a
 * credential word (`password`, `secret`, `authorization`…), `key` or `keys`
 * follows a qualifier (`api_key`, `access_key_id`), or its last word is
 * `token` or `auth` (`hf_token`; not `token_count`, not `max_tokens`).
 */
export function credentialKey(name: string): boolean {
  const words = keyWords(name);
  let previous = "";
  for (const w of words) {
    if (SECRET_WORDS.has(w) || ((w === "key" || w === "keys") && KEY_QUALIFIERS.has(previous))) {
      return true;
    }
    previous = w;
  }
  return words.length > 0 && HEAD_WORDS.has(words[words.length - 1]!);
}

interface Span {
  start: number;
  end: number;
  kind: string;
}

function isSecretPart(text: string, start: number, end: number): boolean {
  return end > start && text.slice(start, end) !== REDACTED;
}

const VALUE_STOP = new Set([..." \t\r\n&#'\"<>,;)"]);
const USER_STOP = new Set([..." \t\r\n/?#@:"]);
const PASSWORD_STOP = new Set([..." \t\r\n/?#@"]);

function assignments(text: string, spans: Span[]): void {
  for (let at = text.indexOf("="); at !== -1; at = text.indexOf("=", at + 1)) {
    let begin = at;
    while (begin > 0 && isNameChar(text[begin - 1]!)) {
      begin--;
    }
    const name = text.slice(begin, at);
    if (
      name !== "" &&
      (credentialKey(name) ||
        (begin > 0 && (text[begin - 1] === "?" || text[begin - 1] === "&") && QUERY_NAMES.has(name.toLowerCase())))
    ) {
      let start = at + 1;
      if (start < text.length && (text[start] === "'" || text[start] === '"')) {
        start++;
      }
      let end = start;
      while (end < text.length && !VALUE_STOP.has(text[end]!)) {
        end++;
      }
      if (isSecretPart(text, start, end)) {
        spans.push({ start, end, kind: "credential assignment" });
      }
    }
  }
}

const isQuote = (c: string | undefined): boolean => c === "'" || c === '"';

function quotedPairs(text: string, spans: Span[]): void {
  const n = text.length;
  for (let at = text.indexOf(":"); at !== -1; at = text.indexOf(":", at + 1)) {
    let before = at;
    while (before > 0 && (text[before - 1] === " " || text[before - 1] === "\t")) {
      before--;
    }
    if (before === 0 || !isQuote(text[before - 1])) {
      continue;
    }
    const endName = before - 1;
    let begin = endName;
    while (begin > 0 && isNameChar(text[begin - 1]!)) {
      begin--;
    }
    if (!(begin < endName && begin > 0 && isQuote(text[begin - 1]))) {
      continue;
    }
    let after = at + 1;
    while (after < n && (text[after] === " " || text[after] === "\t")) {
      after++;
    }
    if (!(after < n && isQuote(text[after]) && credentialKey(text.slice(begin, endName)))) {
      continue;
    }
    const quote = text[after];
    let end = after + 1;
    while (end < n && text[end] !== quote && text[end] !== "\r" && text[end] !== "\n") {
      end++;
    }
    if (end < n && text[end] === quote && isSecretPart(text, after + 1, end)) {
      spans.push({ start: after + 1, end, kind: "credential pair" });
    }
  }
}

function urlPasswords(text: string, spans: Span[]): void {
  const n = text.length;
  for (let at = text.indexOf("://"); at !== -1; at = text.indexOf("://", at + 3)) {
    let i = at + 3;
    while (i < n && !USER_STOP.has(text[i]!)) {
      i++;
    }
    if (i < n && text[i] === ":") {
      const start = i + 1;
      let end = start;
      while (end < n && !PASSWORD_STOP.has(text[end]!)) {
        end++;
      }
      if (end < n && text[end] === "@" && isSecretPart(text, start, end)) {
        spans.push({ start, end, kind: "URL password" });
      }
    }
  }
}

function secretSpans(text: string): Span[] {
  const found: Span[] = [];
  for (const { name, re, group } of COMPILED) {
    for (const m of text.matchAll(re)) {
      const span = m.indices?.[group];
      if (span !== undefined && isSecretPart(text, span[0], span[1])) {
        found.push({ start: span[0], end: span[1], kind: name });
      }
    }
  }
  if (text.includes("://")) {
    urlPasswords(text, found);
  }
  if (text.includes("=")) {
    assignments(text, found);
  }
  if (text.includes(":")) {
    quotedPairs(text, found);
  }
  found.sort((a, b) => a.start - b.start || a.end - b.end);
  const merged: Span[] = [];
  for (const s of found) {
    const last = merged[merged.length - 1];
    if (last !== undefined && s.start <= last.end) {
      last.end = Math.max(last.end, s.end);
    } else {
      merged.push({ ...s });
    }
  }
  return merged;
}

/** Whether a text holds a secret of the value rule of FORMAT.md §10. */
export function hasSecret(text: string): boolean {
  return secretSpans(text).length > 0;
}

/** `text` with each secret of the value rule replaced by {@link REDACTED}, the rest kept. */
export function redactText(text: string): string {
  return replaceSpans(text, secretSpans(text));
}

function replaceSpans(text: string, spans: Span[]): string {
  let out = "";
  let last = 0;
  for (const s of spans) {
    out += text.slice(last, s.start) + REDACTED;
    last = s.end;
  }
  return out + text.slice(last);
}

function kinds(spans: Span[]): string {
  return [...new Set(spans.map((s) => s.kind))].join(", ");
}

function keyRefusal(path: string, what: string, name: string): InvalidCheckpoint {
  return new InvalidCheckpoint(
    path,
    `${what} ${JSON.stringify(name)} looks like a credential; encode with { redactSecrets: true } ` +
      "to store a redaction marker instead of its value",
    null,
  );
}

function textRefusal(path: string, spans: Span[]): InvalidCheckpoint {
  return new InvalidCheckpoint(
    path,
    `text holds a secret (${kinds(spans)}); encode with { redactSecrets: true } to store ${REDACTED} in its place`,
    null,
  );
}

function keyTextRefusal(path: string, spans: Span[]): InvalidCheckpoint {
  return new InvalidCheckpoint(path, `a key holds a secret (${kinds(spans)}); keys are never redacted`, null);
}

/** Whether a value cannot carry a credential: null, a boolean, a number, `""` or the marker. */
function harmless(t: Term | undefined): boolean {
  switch (t?.kind.case) {
    case "nullValue":
    case "boolValue":
    case "intValue":
    case "bigintValue":
    case "floatValue":
      return true;
    case "stringValue":
      return t.kind.value === "" || t.kind.value === REDACTED;
    default:
      return false;
  }
}

function redactedTerm(): Term {
  return create(TermSchema, { kind: { case: "stringValue", value: REDACTED } });
}

class Walk {
  constructor(readonly redact: boolean) {}

  text(text: string, path: string): string {
    const spans = secretSpans(text);
    if (spans.length === 0) {
      return text;
    }
    if (!this.redact) {
      throw textRefusal(path, spans);
    }
    return replaceSpans(text, spans);
  }

  term(t: Term | undefined, path: string, inKey: boolean): void {
    const kind = t?.kind;
    switch (kind?.case) {
      case "stringValue":
      case "atomValue": {
        const spans = secretSpans(kind.value);
        if (spans.length === 0) {
          return;
        }
        const where = `${path}.${kind.case === "stringValue" ? "string_value" : "atom_value"}`;
        if (inKey) {
          throw keyTextRefusal(where, spans);
        }
        if (!this.redact) {
          throw textRefusal(where, spans);
        }
        kind.value = replaceSpans(kind.value, spans);
        return;
      }
      case "listValue":
      case "tupleValue": {
        const name = kind.case === "listValue" ? "list_value" : "tuple_value";
        kind.value.items.forEach((item, i) => this.term(item, `${path}.${name}.items[${i}]`, inKey));
        return;
      }
      case "mapValue":
        this.termMap(kind.value, `${path}.map_value`, inKey);
        return;
      default:
        return;
    }
  }

  termMap(m: TermMap, path: string, inKey: boolean): void {
    m.entries.forEach((entry, i) => {
      const p = `${path}.entries[${i}]`;
      this.term(entry.key, `${p}.key`, true);
      const key = entry.key?.kind;
      const name = key?.case === "stringValue" || key?.case === "atomValue" ? key.value : undefined;
      if (name !== undefined && credentialKey(name) && !harmless(entry.value)) {
        if (inKey || !this.redact) {
          throw keyRefusal(`${p}.key`, "key", name);
        }
        entry.value = redactedTerm();
        return;
      }
      this.term(entry.value, `${p}.value`, inKey);
    });
  }

  checkpoint(cp: Checkpoint): void {
    cp.optimizerOpts.forEach((option, i) => {
      const p = `optimizer_opts[${i}]`;
      const spans = secretSpans(option.key);
      if (spans.length > 0) {
        throw keyTextRefusal(`${p}.key`, spans);
      }
      if (credentialKey(option.key) && !harmless(option.value)) {
        if (!this.redact) {
          throw keyRefusal(`${p}.key`, "option", option.key);
        }
        option.value = redactedTerm();
        return;
      }
      this.term(option.value, `${p}.value`, false);
    });
    cp.progress?.trialLog.forEach((entry, i) => {
      const p = `progress.trial_log[${i}]`;
      if (entry.candidateId !== undefined) {
        entry.candidateId = this.text(entry.candidateId, `${p}.candidate_id`);
      }
      if (entry.stats !== undefined) {
        this.termMap(entry.stats, `${p}.stats`, false);
      }
      if (entry.error !== undefined) {
        this.termMap(entry.error, `${p}.error`, false);
      }
    });
    if (cp.bestProgramArtifact !== undefined) {
      this.termMap(cp.bestProgramArtifact, "best_program_artifact", false);
    }
    if (cp.terminalReason !== undefined) {
      this.term(cp.terminalReason, "terminal_reason", false);
    }
  }
}

/**
 * Apply the credential screen of FORMAT.md §10 to `cp`: throws
 * {@link InvalidCheckpoint} naming the first finding (in the order of §7),
 * e.g. `optimizer_opts[0].key` or
 * `progress.trial_log[3].error.entries[1].value.string_value`.
 */
export function screen(cp: Checkpoint): void {
  new Walk(false).checkpoint(cp);
}

/**
 * Redact `cp` in place: the value of every option or map key that names a
 * credential becomes {@link REDACTED}, and every secret inside a text is
 * replaced by it. A secret inside a map key or an option key cannot be
 * redacted: {@link InvalidCheckpoint} is thrown (`cp` may then be partly
 * redacted).
 */
export function redact(cp: Checkpoint): void {
  new Walk(true).checkpoint(cp);
}
