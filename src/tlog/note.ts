/**
 * c2sp.org/signed-note with Ed25519 keys, in the key formats of golang.org/x/mod/sumdb/note:
 *
 *   signer key   PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 ‖ 32-byte seed)
 *   verifier key <name>+<hex key ID>+base64(0x01 ‖ 32-byte public key)
 *   note         text (ending in \n), a blank line, then "— <name> base64(key ID ‖ sig)\n" lines
 */
import crypto from 'node:crypto';
import { decodeBase64Strict } from './base64.js';
import { sha256 } from './hash.js';

export interface Signer {
  name: string;
  keyId: Buffer;
  sign(msg: Uint8Array): Buffer;
}

export interface Verifier {
  name: string;
  keyId: Buffer;
  verify(msg: Uint8Array, sig: Uint8Array): boolean;
}

export interface NoteSignature {
  name: string;
  /** The 4-byte key ID that prefixes the signature on the line. */
  keyId: Buffer;
  /** The signature proper (without the key ID). */
  sig: Buffer;
  /** True iff a given verifier matched name and key ID and accepted the signature. */
  verified: boolean;
}

const ALG_ED25519 = 0x01;
const MAX_SIGNATURES = 100; // as x/mod's Open; the spec requires accepting at least 16
const SIG_PREFIX = '\u2014 '; // em dash, space
// DER wrappers for raw Ed25519 keys (RFC 8410), so node:crypto can import them.
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// Union of Go's unicode.IsSpace and JS \s, so a name valid here is valid for x/mod too.
const SPACE = /[\s\u0085]/;
/** Offset of the first ASCII control character other than newline (forbidden in notes), or -1. */
function controlAt(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) return i;
  }
  return -1;
}

function describeControl(s: string, i: number): string {
  return `control character U+${s.charCodeAt(i).toString(16).padStart(4, '0')} at offset ${i}`;
}

/** Why `name` is not a valid key name, or null if it is. */
function nameProblem(name: string): string | null {
  if (name === '') return 'is empty';
  if (name.includes('+')) return "contains '+'";
  if (SPACE.test(name)) return 'contains a space';
  if (controlAt(name) >= 0 || name.includes('\n')) return 'contains a control character';
  if (LONE_SURROGATE.test(name)) return 'is not valid UTF-8 (lone surrogate)';
  return null;
}

function checkName(name: string): void {
  const p = nameProblem(name);
  if (p !== null) throw new Error(`invalid key name ${JSON.stringify(name)}: ${p}`);
}

export function idHex(keyId: Uint8Array): string {
  return Buffer.from(keyId).toString('hex');
}

/** Ed25519 key ID: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)[:4]. */
export function keyId(name: string, publicKey: Uint8Array): Buffer {
  if (publicKey.length !== 32) throw new RangeError(`Ed25519 public key must be 32 bytes, got ${publicKey.length}`);
  return ed25519KeyId(name, Buffer.concat([Buffer.of(ALG_ED25519), publicKey]));
}

/** Key ID over an already type-prefixed key (0x01 ‖ public key). */
function ed25519KeyId(name: string, typedKey: Uint8Array): Buffer {
  return sha256(Buffer.concat([Buffer.from(`${name}\n`, 'utf8'), typedKey])).subarray(0, 4);
}

export function publicKeyObject(pub: Uint8Array): crypto.KeyObject {
  return crypto.createPublicKey({ key: Buffer.concat([SPKI_ED25519, pub]), format: 'der', type: 'spki' });
}

export function rawPublicKey(key: crypto.KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519.length);
}

function formatVkey(name: string, pub: Uint8Array): string {
  const typed = Buffer.concat([Buffer.of(ALG_ED25519), pub]);
  return `${name}+${idHex(ed25519KeyId(name, typed))}+${typed.toString('base64')}`;
}

/** A fresh Ed25519 key pair in x/mod note's text formats. Keep skey secret. */
export function generateKey(name: string): { skey: string; vkey: string } {
  checkName(name);
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_ED25519.length);
  const pub = rawPublicKey(publicKey);
  const id = idHex(keyId(name, pub));
  const skey = `PRIVATE+KEY+${name}+${id}+${Buffer.concat([Buffer.of(ALG_ED25519), seed]).toString('base64')}`;
  return { skey, vkey: formatVkey(name, pub) };
}

/**
 * Split "<name>+<8 hex>+<base64>" (base64 may itself contain '+', so only the first
 * two '+' separate fields, as in x/mod's chop).
 */
export function splitKey(what: string, s: string): { name: string; id: Buffer; key: Buffer } {
  const i = s.indexOf('+');
  const j = i < 0 ? -1 : s.indexOf('+', i + 1);
  if (j < 0) throw new Error(`malformed ${what}: want <name>+<hex key ID>+<base64 key>`);
  const name = s.slice(0, i);
  const hexId = s.slice(i + 1, j);
  const b64 = s.slice(j + 1);
  const p = nameProblem(name);
  if (p !== null) throw new Error(`malformed ${what}: key name ${JSON.stringify(name)} ${p}`);
  if (!/^[0-9a-fA-F]{8}$/.test(hexId)) {
    throw new Error(`malformed ${what}: key ID ${JSON.stringify(hexId)} is not 8 hex digits`);
  }
  const key = decodeBase64Strict(b64);
  if (key === null || key.length === 0) throw new Error(`malformed ${what}: key is not canonical standard base64`);
  return { name, id: Buffer.from(hexId, 'hex'), key };
}

export function checkEd25519Key(what: string, key: Buffer): Buffer {
  if (key[0] !== ALG_ED25519) {
    throw new Error(`${what} uses unknown algorithm 0x${(key[0] ?? 0).toString(16).padStart(2, '0')} (only Ed25519, 0x01)`);
  }
  if (key.length !== 33) throw new Error(`malformed ${what}: Ed25519 key must be 32 bytes, got ${key.length - 1}`);
  return key.subarray(1);
}

/** The Ed25519 key pair of an x/mod note signer key, its name and stated key ID (checked by the caller). */
export function parseSignerKey(skey: string): { name: string; id: Buffer; priv: crypto.KeyObject; pub: Buffer } {
  const PREFIX = 'PRIVATE+KEY+';
  if (!skey.startsWith(PREFIX)) throw new Error(`malformed signer key: must start with ${PREFIX}`);
  const { name, id, key } = splitKey('signer key', skey.slice(PREFIX.length));
  const seed = checkEd25519Key('signer key', key);
  const priv = crypto.createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
  return { name, id, priv, pub: rawPublicKey(crypto.createPublicKey(priv)) };
}

/** Signer from an x/mod note signer key "PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>". */
export function newSigner(skey: string): Signer & { vkey: string } {
  const { name, id, priv, pub } = parseSignerKey(skey);
  // The ID is over the public key, so it can only be checked after deriving it.
  const want = keyId(name, pub);
  if (!want.equals(id)) {
    throw new Error(`signer key ID ${idHex(id)} does not match its key (want ${idHex(want)} for name ${name})`);
  }
  return {
    name,
    keyId: want,
    vkey: formatVkey(name, pub),
    sign: (msg: Uint8Array): Buffer => crypto.sign(null, msg, priv),
  };
}

/** Verifier from an x/mod note verifier key "<name>+<hex id>+<base64(0x01 ‖ public key)>". */
export function newVerifier(vkey: string): Verifier {
  const { name, id, key } = splitKey('verifier key', vkey);
  const want = ed25519KeyId(name, key);
  if (!want.equals(id)) {
    throw new Error(`verifier key ID ${idHex(id)} does not match its key (want ${idHex(want)} for name ${name})`);
  }
  const pub = checkEd25519Key('verifier key', key);
  let keyObject: crypto.KeyObject;
  try {
    keyObject = publicKeyObject(pub);
  } catch (e) {
    throw new Error(`verifier key ${name}+${idHex(id)} is not a valid Ed25519 public key: ${(e as Error).message}`);
  }
  return {
    name,
    keyId: want,
    verify: (msg: Uint8Array, sig: Uint8Array): boolean => {
      if (sig.length !== 64) return false;
      try {
        return crypto.verify(null, msg, keyObject, sig);
      } catch {
        return false;
      }
    },
  };
}

/** Why `text` cannot be a note text, or null if it can. */
function textProblem(text: string): string | null {
  if (text === '') return 'is empty';
  if (!text.endsWith('\n')) return 'does not end with a newline';
  const c = controlAt(text);
  if (c >= 0) return `contains ${describeControl(text, c)}`;
  if (LONE_SURROGATE.test(text)) return 'is not valid UTF-8 (lone surrogate)';
  return null;
}

/** Sign `text` with each signer: text, a blank line, one "— name base64(id ‖ sig)" line per signer. */
export function signNote(text: string, signers: readonly Signer[]): string {
  const p = textProblem(text);
  if (p !== null) throw new Error(`cannot sign note: text ${p}`);
  if (signers.length === 0) throw new Error('cannot sign note: no signers (a note needs at least one signature)');
  if (signers.length > MAX_SIGNATURES) throw new Error(`cannot sign note: more than ${MAX_SIGNATURES} signers`);
  const msg = Buffer.from(text, 'utf8');
  const seen = new Set<string>();
  let out = `${text}\n`;
  for (const s of signers) {
    checkName(s.name);
    if (s.keyId.length !== 4) throw new Error(`signer ${s.name}: key ID must be 4 bytes, got ${s.keyId.length}`);
    const k = `${s.name}+${idHex(s.keyId)}`;
    if (seen.has(k)) throw new Error(`cannot sign note: signer ${k} given twice`);
    seen.add(k);
    const sig = s.sign(msg);
    out += `${SIG_PREFIX}${s.name} ${Buffer.concat([s.keyId, sig]).toString('base64')}\n`;
  }
  return out;
}

/**
 * Parse a signed note and check its signatures. A signature whose name AND key ID
 * match a verifier must verify (else this throws); others are kept with
 * verified=false. Throws unless at least one signature verified. Repeated identical
 * signature lines are reported once.
 */
export function openNote(note: string, verifiers: readonly Verifier[]): { text: string; sigs: NoteSignature[] } {
  const c = controlAt(note);
  if (c >= 0) throw new Error(`malformed note: ${describeControl(note, c)}`);
  if (LONE_SURROGATE.test(note)) throw new Error('malformed note: not valid UTF-8 (lone surrogate)');
  // The text ends at the last blank line; signature lines never contain one.
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new Error('malformed note: no blank line separating the text from the signatures');
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (block === '') throw new Error('malformed note: no signature lines after the blank line');
  if (!block.endsWith('\n')) throw new Error('malformed note: last signature line does not end with a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) {
    throw new Error(`malformed note: ${lines.length} signature lines, more than the limit of ${MAX_SIGNATURES}`);
  }

  const msg = Buffer.from(text, 'utf8');
  const sigs: NoteSignature[] = [];
  const seenLines = new Set<string>();
  const verifiedKeys = new Set<string>();
  lines.forEach((line, n) => {
    const where = `signature line ${n + 1}`;
    if (!line.startsWith(SIG_PREFIX)) throw new Error(`malformed note: ${where} does not start with "— "`);
    const rest = line.slice(SIG_PREFIX.length);
    const sp = rest.indexOf(' ');
    if (sp < 0) throw new Error(`malformed note: ${where} has no space between key name and signature`);
    const name = rest.slice(0, sp);
    const p = nameProblem(name);
    if (p !== null) throw new Error(`malformed note: ${where}: key name ${JSON.stringify(name)} ${p}`);
    const raw = decodeBase64Strict(rest.slice(sp + 1));
    if (raw === null) throw new Error(`malformed note: ${where}: signature is not canonical standard base64`);
    if (raw.length < 5)
      throw new Error(`malformed note: ${where}: signature has ${raw.length} bytes, need a 4-byte key ID and a signature`);
    const id = raw.subarray(0, 4);
    const sig = raw.subarray(4);
    const key = `${name}+${idHex(id)}`;

    const matches = verifiers.filter((v) => v.name === name && Buffer.from(v.keyId).equals(id));
    if (matches.length > 1) throw new Error(`ambiguous key ${key}: ${matches.length} verifiers match`);
    const v = matches[0];
    let verified = false;
    if (v !== undefined) {
      if (!v.verify(msg, sig)) throw new Error(`invalid signature for key ${key}`);
      verified = true;
    }
    if (seenLines.has(line) || (verified && verifiedKeys.has(key))) return;
    seenLines.add(line);
    if (verified) verifiedKeys.add(key);
    sigs.push({ name, keyId: Buffer.from(id), sig: Buffer.from(sig), verified });
  });
  if (verifiedKeys.size === 0) {
    const names = sigs.map((s) => `${s.name}+${idHex(s.keyId)}`).join(', ');
    throw new Error(`note has no verifiable signatures: none from a known key (signed by: ${names})`);
  }
  return { text, sigs };
}
