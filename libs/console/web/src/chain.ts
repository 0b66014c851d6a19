// Checks, in the browser, that an event is in the log: the C2SP tlog-proof file the API
// serves is verified against the log's public key with WebCrypto (Ed25519, SHA-256) and
// @noble/hashes (SHA3-256), following docs/chain-format.md. Nothing the server says is
// trusted until these checks pass; the key to check against is the one the auditor pins.

import { sha3_256 } from "@noble/hashes/sha3";

export interface ProvenEvent {
  eventId: string;
  position: number;
  aggregateType: string;
  aggregateId: string;
  streamVersion: number;
  eventType: string;
  actor: string;
  recordedAt: Date;
  payload: string;
  digestHex: string;
  treeSize: number;
  rootBase64: string;
  origin: string;
  signer: string;
}

/** Why a proof does not check out. */
export class ProofError extends Error {}

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

function b64(s: string): Uint8Array {
  let bin: string;
  try {
    bin = atob(s.trim());
  } catch {
    throw new ProofError(`not base64: ${s.slice(0, 40)}`);
  }
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

export function toBase64(b: Uint8Array): string {
  return btoa(String.fromCharCode(...b));
}

export function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data as BufferSource));
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A big-endian reader over the chain's canonical encoding. */
class Reader {
  private at = 0;
  constructor(private readonly b: Uint8Array) {}
  take(n: number, what: string): Uint8Array {
    if (this.at + n > this.b.length) throw new ProofError(`truncated ${what}`);
    const out = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  u32(what: string): number {
    return new DataView(this.take(4, what).slice().buffer).getUint32(0);
  }
  u64(what: string): number {
    const v = new DataView(this.take(8, what).slice().buffer).getBigUint64(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProofError(`${what} too large`);
    return Number(v);
  }
  i64(what: string): bigint {
    return new DataView(this.take(8, what).slice().buffer).getBigInt64(0);
  }
  bytes(what: string): Uint8Array {
    return this.take(this.u32(what), what);
  }
  str(what: string): string {
    try {
      return dec.decode(this.bytes(what));
    } catch {
      throw new ProofError(`${what} is not UTF-8`);
    }
  }
  uuid(what: string): string {
    const h = hex(this.take(16, what));
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  magic(m: string): void {
    const want = concat(enc.encode(m), Uint8Array.of(2));
    if (!equal(this.take(want.length, m), want)) throw new ProofError(`not a ${m} v2 structure`);
  }
  done(): boolean {
    return this.at === this.b.length;
  }
}

/** A C2SP signed-note verifier key: `name+hash+base64(0x01 || Ed25519 public key)`. */
export interface Vkey {
  name: string;
  hash: Uint8Array;
  key: Uint8Array;
}

export async function parseVkey(text: string): Promise<Vkey> {
  // The base64 key may itself contain "+": split at the first two only.
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+={0,2})$/.exec(text.trim());
  if (!m) throw new ProofError("a verifier key reads name+8 hex digits+base64 key");
  const [, name, hashHex, keyB64] = m as unknown as [string, string, string, string];
  const raw = b64(keyB64);
  if (raw.length !== 33 || raw[0] !== 1) throw new ProofError("not an Ed25519 verifier key");
  const hash = (await sha256(concat(enc.encode(name), Uint8Array.of(0x0a), raw))).subarray(0, 4);
  if (hex(hash) !== hashHex) throw new ProofError("the key hash does not match the key");
  return { name, hash, key: raw.subarray(1) };
}

interface Note {
  text: string;
  lines: string[];
  signatures: { name: string; hash: Uint8Array; sig: Uint8Array }[];
}

function parseNote(note: string): Note {
  const split = note.indexOf("\n\n");
  if (split < 0) throw new ProofError("the checkpoint has no signatures");
  const text = note.slice(0, split + 1);
  const signatures = note
    .slice(split + 2)
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const m = /^\u2014 (\S+) (\S+)$/.exec(l);
      if (!m) throw new ProofError(`not a signature line: ${l}`);
      const raw = b64(m[2] as string);
      return { name: m[1] as string, hash: raw.subarray(0, 4), sig: raw.subarray(4) };
    });
  return { text, lines: text.split("\n").slice(0, -1), signatures };
}

async function verifyNote(note: Note, vkey: Vkey): Promise<void> {
  const sig = note.signatures.find((s) => s.name === vkey.name && equal(s.hash, vkey.hash));
  if (!sig) throw new ProofError(`the checkpoint is not signed by ${vkey.name} with this key`);
  if (sig.sig.length !== 64) throw new ProofError("not an Ed25519 signature");
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey("raw", vkey.key as BufferSource, { name: "Ed25519" }, false, ["verify"]);
  } catch (e) {
    throw new ProofError(`this browser cannot check Ed25519 signatures (WebCrypto): ${String(e)}`);
  }
  const ok = await crypto.subtle.verify(
    { name: "Ed25519" },
    key,
    sig.sig as BufferSource,
    enc.encode(note.text) as BufferSource,
  );
  if (!ok) throw new ProofError("the checkpoint's signature does not verify with the log key");
}

/** RFC 9162 §2.1.3.2: the root an inclusion path gives for `leaf` at `index` in a tree of `size`. */
export async function rootFromInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  path: Uint8Array[],
): Promise<Uint8Array> {
  if (index >= size) throw new ProofError(`leaf ${index} is outside a tree of ${size}`);
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) throw new ProofError("the inclusion path is too long");
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(concat(Uint8Array.of(1), p, r));
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await sha256(concat(Uint8Array.of(1), r, p));
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new ProofError("the inclusion path is too short");
  return r;
}

function decodeRecord(
  record: Uint8Array,
): Omit<ProvenEvent, "digestHex" | "treeSize" | "rootBase64" | "origin" | "signer"> {
  const r = new Reader(record);
  r.magic("GGEV-RECORD");
  const position = r.u64("position");
  r.take(32, "previous digest");
  const content = r.bytes("content");
  if (!r.done()) throw new ProofError("bytes after the record");
  const c = new Reader(content);
  c.magic("GGEV-CONTENT");
  const eventId = c.uuid("event id");
  const aggregateType = c.str("aggregate type");
  const aggregateId = c.str("aggregate id");
  const streamVersion = c.u64("stream version");
  const eventType = c.str("event type");
  c.str("schema version");
  const payload = c.str("payload");
  const actor = c.str("actor");
  for (const what of ["correlation id", "causation id"]) {
    const flag = c.take(1, what)[0];
    if (flag === 1) c.take(16, what);
    else if (flag !== 0) throw new ProofError(`bad ${what} flag`);
  }
  const nanos = c.i64("recorded at");
  return {
    eventId,
    position,
    aggregateType,
    aggregateId,
    streamVersion,
    eventType,
    actor,
    recordedAt: new Date(Number(nanos / 1_000_000n)),
    payload,
  };
}

/**
 * Verifies a tlog-proof file for `eventId` against the log key `vkeyText`: the record names
 * that event, its leaf is at the stated index, the path leads to the checkpoint's root, and the
 * checkpoint is signed by the key.
 */
export async function verifyInclusion(proofText: string, eventId: string, vkeyText: string): Promise<ProvenEvent> {
  const vkey = await parseVkey(vkeyText);
  const blank = proofText.indexOf("\n\n");
  if (!proofText.startsWith("c2sp.org/tlog-proof@v1\n") || blank < 0) {
    throw new ProofError("not a c2sp.org/tlog-proof@v1 file");
  }
  const head = proofText.slice(0, blank).split("\n").slice(1);
  let extra: Uint8Array | null = null;
  if (head[0]?.startsWith("extra ")) extra = b64((head.shift() as string).slice(6));
  const indexLine = head.shift() ?? "";
  if (!/^index \d+$/.test(indexLine)) throw new ProofError("no index line");
  const index = Number(indexLine.slice(6));
  const path = head.map(b64);
  if (path.some((p) => p.length !== 32)) throw new ProofError("a proof hash is not 32 bytes");
  if (!extra) throw new ProofError("the proof carries no record (extra data)");

  const note = parseNote(proofText.slice(blank + 2));
  const [origin, sizeText, rootText] = note.lines;
  if (note.lines.length < 3 || !/^\d+$/.test(sizeText ?? "")) throw new ProofError("not a checkpoint");
  if (origin !== vkey.name) throw new ProofError(`the checkpoint is for ${origin}, the key for ${vkey.name}`);
  await verifyNote(note, vkey);

  const x = new Reader(extra);
  x.magic("GGPROOF");
  const record = x.bytes("record");
  const event = decodeRecord(record);
  if (event.eventId !== eventId.toLowerCase()) {
    throw new ProofError(`the proof is for event ${event.eventId}, not ${eventId}`);
  }
  if (event.position !== index) {
    throw new ProofError(`the record is at position ${event.position}, the proof at ${index}`);
  }
  const digest = sha3_256(record);
  const leaf = await sha256(concat(Uint8Array.of(0), digest));
  const root = await rootFromInclusion(index, Number(sizeText), leaf, path);
  if (!equal(root, b64(rootText as string))) {
    throw new ProofError("the inclusion path does not lead to the checkpoint's root");
  }
  return {
    ...event,
    digestHex: hex(digest),
    treeSize: Number(sizeText),
    rootBase64: rootText as string,
    origin: origin as string,
    signer: vkey.name,
  };
}

export interface CheckedCheckpoint {
  origin: string;
  size: number;
  rootBase64: string;
  /** Signature lines other than the log's (witness cosignatures), by name. */
  others: string[];
}

/** Verifies a checkpoint note's log signature with `vkeyText`. */
export async function verifyCheckpoint(noteText: string, vkeyText: string): Promise<CheckedCheckpoint> {
  const vkey = await parseVkey(vkeyText);
  const note = parseNote(noteText);
  const [origin, sizeText, rootText] = note.lines;
  if (note.lines.length < 3 || !/^\d+$/.test(sizeText ?? "")) throw new ProofError("not a checkpoint");
  if (origin !== vkey.name) throw new ProofError(`the checkpoint is for ${origin}, the key for ${vkey.name}`);
  await verifyNote(note, vkey);
  return {
    origin: origin as string,
    size: Number(sizeText),
    rootBase64: rootText as string,
    others: note.signatures.filter((s) => s.name !== vkey.name).map((s) => s.name),
  };
}
