/**
 * Checks, in the reader's browser and with no help from the server, that an entry is in the log:
 * the leaf's RFC 6962 hash, its inclusion proof up to the checkpoint's root (RFC 9162 2.1.3.2),
 * the checkpoint's Ed25519 signature by the log's key (c2sp.org/signed-note) and, when witnesses
 * are trusted, their cosignatures (c2sp.org/tlog-cosignature). WebCrypto only (SHA-256, Ed25519).
 * Written apart from the server's own code (src/tlog/), so the two check each other in the tests.
 */

const enc = new TextEncoder();

/** Bytes on an ArrayBuffer (what WebCrypto takes). */
export type Bytes = Uint8Array<ArrayBuffer>;

export function fromBase64(s: string): Bytes {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function toHex(b: Bytes): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function concat(...parts: Bytes[]): Bytes {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equal(a: Bytes, b: Bytes): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function sha256(data: Bytes): Promise<Bytes> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', data));
}

export const leafHash = (leaf: Bytes) => sha256(concat(new Uint8Array([0]), leaf));
const nodeHash = (l: Bytes, r: Bytes) => sha256(concat(new Uint8Array([1]), l, r));

/** RFC 9162 2.1.3.2: the root an inclusion proof leads to from the leaf hash at `index` of a tree of `size`. */
export async function rootFromInclusion(hash: Bytes, index: number, size: number, proof: Bytes[]): Promise<Bytes> {
  if (!(index >= 0 && index < size)) throw new Error(`index ${index} is not in a tree of ${size}`);
  let fn = index;
  let sn = size - 1;
  let r = hash;
  for (const p of proof) {
    if (sn === 0) throw new Error('the proof is longer than the tree is deep');
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else r = await nodeHash(r, p);
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error('the proof is shorter than the tree is deep');
  return r;
}

/** A key a verifier trusts: `name+hexid+base64(type ‖ public key)` (a vkey, as `stele init` prints it). */
export interface TrustedKey {
  name: string;
  id: Bytes;
  type: number;
  key: CryptoKey;
}

/** Key type bytes: Ed25519 signed-note signatures, and cosignature/v1 witness signatures. */
const ED25519 = 0x01;
const COSIGNATURE_V1 = 0x04;

export async function parseVkey(vkey: string): Promise<TrustedKey> {
  // The base64 may hold '+' itself: the name ends at the first '+', the id is the next 8 hex digits.
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+=*)$/.exec(vkey.trim());
  if (!m) throw new Error('a verifier key is name+hexid+base64');
  const [, name, hexid, b64] = m as unknown as [string, string, string, string];
  if (!/^[0-9a-f]{8}$/.test(hexid)) throw new Error('the key id is not 8 hex digits');
  const raw = fromBase64(b64);
  const type = raw[0] as number;
  if ((type !== ED25519 && type !== COSIGNATURE_V1) || raw.length !== 33) throw new Error('not an Ed25519 or cosignature/v1 key');
  const pub = raw.slice(1);
  const id = (await sha256(concat(enc.encode(`${name}\n`), new Uint8Array([type]), pub))).slice(0, 4);
  if (toHex(id) !== hexid) throw new Error('the key id does not match the key');
  const key = await crypto.subtle.importKey('raw', pub, { name: 'Ed25519' }, false, ['verify']);
  return { name, id, type, key };
}

export interface Checkpoint {
  origin: string;
  size: number;
  root: Bytes;
  /** The signed text (the checkpoint body, with its final newline). */
  text: string;
  /** Signature lines: name and the signature bytes (key id first). */
  sigs: { name: string; sig: Bytes }[];
}

export function parseCheckpointNote(note: string): Checkpoint {
  const split = note.indexOf('\n\n');
  if (split < 0) throw new Error('the checkpoint has no signature lines');
  const text = note.slice(0, split + 1);
  const lines = text.split('\n');
  const [origin, size, root] = lines as [string, string, string];
  if (!origin || !/^[0-9]+$/.test(size ?? '') || !root) throw new Error('the checkpoint body is malformed');
  const sigs = note
    .slice(split + 2)
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const m = /^\u2014 (\S+) (\S+)$/.exec(l);
      if (!m) throw new Error(`a signature line is malformed: ${l}`);
      return { name: m[1] as string, sig: fromBase64(m[2] as string) };
    });
  return { origin, size: Number(size), root: fromBase64(root), text, sigs };
}

/** Whether `key` signed the checkpoint (a note signature for a log key, a cosignature/v1 for a witness), and when the witness did. */
export async function signedBy(cp: Checkpoint, key: TrustedKey): Promise<{ ok: boolean; time?: number }> {
  for (const s of cp.sigs) {
    if (s.name !== key.name || !equal(s.sig.slice(0, 4), key.id)) continue;
    if (key.type === ED25519) {
      if (s.sig.length !== 68) continue;
      const ok = await crypto.subtle.verify({ name: 'Ed25519' }, key.key, s.sig.slice(4), enc.encode(cp.text));
      if (ok) return { ok };
    } else {
      if (s.sig.length !== 76) continue;
      const t = new DataView(s.sig.buffer, s.sig.byteOffset + 4, 8).getBigUint64(0);
      const msg = enc.encode(`cosignature/v1\ntime ${t}\n${cp.text}`);
      const ok = await crypto.subtle.verify({ name: 'Ed25519' }, key.key, s.sig.slice(12), msg);
      if (ok) return { ok, time: Number(t) };
    }
  }
  return { ok: false };
}

/** One check of a verification, as shown to the reader. */
export interface Check {
  what: string;
  ok: boolean;
  detail: string;
  /** False for one witness among several: only the quorum decides. */
  decides: boolean;
}

export interface Proven {
  ok: boolean;
  checks: Check[];
}

/**
 * Verifies one entry: `leaf` (its bytes), the inclusion `proof` for `index` in the tree of the
 * checkpoint `note`, the log key `logKey` and witnesses (`quorum` of them must have cosigned).
 */
export async function verifyEntry(o: {
  leaf: Bytes;
  index: number;
  /** The proof, or why it could not be had (the other checks are still made). */
  proof: Bytes[] | Error;
  note: string;
  logKey: string;
  witnesses?: string[];
  quorum?: number;
}): Promise<Proven> {
  const checks: Check[] = [];
  const add = (what: string, ok: boolean, detail: string, decides = true) => checks.push({ what, ok, detail, decides });
  try {
    const log = await parseVkey(o.logKey);
    const cp = parseCheckpointNote(o.note);
    const signed = log.type === ED25519 && (await signedBy(cp, log)).ok;
    add(
      'checkpoint signature',
      signed,
      signed ? `signed by ${log.name} (key ${toHex(log.id)})` : `no valid signature by ${log.name}`,
    );
    add('log origin', cp.origin === log.name, `the checkpoint is for ${cp.origin}`);
    const hash = await leafHash(o.leaf);
    if (o.proof instanceof Error) throw new Error(`no inclusion proof: ${o.proof.message}`);
    const root = await rootFromInclusion(hash, o.index, cp.size, o.proof);
    const included = equal(root, cp.root);
    add(
      'inclusion proof',
      included,
      included
        ? `leaf ${o.index} (hash ${toHex(hash).slice(0, 16)}…) is in the tree of ${cp.size} entries`
        : `the proof leads to another root than the checkpoint's (${toHex(root).slice(0, 16)}…)`,
    );
    const ws = o.witnesses ?? [];
    if (ws.length) {
      let n = 0;
      for (const w of ws) {
        const key = await parseVkey(w);
        const r = await signedBy(cp, key);
        if (r.ok) n++;
        add(
          `witness ${key.name}`,
          r.ok,
          r.ok ? `cosigned at ${new Date((r.time ?? 0) * 1000).toISOString()}` : 'no valid cosignature',
          false,
        );
      }
      const quorum = o.quorum ?? ws.length;
      add('witness quorum', n >= quorum, `${n} of ${ws.length} witnesses cosigned; ${quorum} required`);
    }
  } catch (err) {
    add('verification', false, (err as Error).message);
  }
  return { ok: checks.length > 0 && checks.every((c) => c.ok || !c.decides), checks };
}
