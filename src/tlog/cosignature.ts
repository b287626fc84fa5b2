/**
 * c2sp.org/tlog-cosignature, Ed25519 type (cosignature/v1): a witness's timestamped signature on a
 * checkpoint, carried as one more signed-note line.
 *
 *   key ID     SHA-256(name ‖ 0x0A ‖ 0x04 ‖ 32-byte public key)[:4]
 *   signature  u64 timestamp (big-endian, POSIX seconds) ‖ Ed25519 signature
 *   message    "cosignature/v1\n" ‖ "time <timestamp>\n" ‖ the checkpoint's note text
 *
 * A witness key is an ordinary Ed25519 signer key of x/mod's format (generateKey); its
 * cosignature verifier key has algorithm byte 0x04. Verifier keys of type 0x01 are accepted too,
 * read as the same key's cosignature key (as transparency-dev/formats' VKeyToCosignatureV1 does).
 */
import crypto from 'node:crypto';
import { sha256 } from './hash.js';
import { idHex, openNote, parseSignerKey, publicKeyObject, type Signer, signNote, splitKey, type Verifier } from './note.js';

const ALG_ED25519 = 0x01;
const ALG_COSIGNATURE_V1 = 0x04;

/** Key ID of an Ed25519 cosigner: SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4]. */
export function cosignatureKeyId(name: string, publicKey: Uint8Array): Buffer {
  return sha256(Buffer.concat([Buffer.from(`${name}\n`, 'utf8'), Buffer.of(ALG_COSIGNATURE_V1), publicKey])).subarray(0, 4);
}

/** The bytes a cosignature/v1 signs: the header, the time line, then the checkpoint's note text. */
export function cosignedMessage(text: string | Uint8Array, time: number): Buffer {
  return Buffer.concat([Buffer.from(`cosignature/v1\ntime ${time}\n`, 'utf8'), Buffer.from(text)]);
}

/** The POSIX time a cosignature (the bytes after its key ID) says it was made at. */
export function cosignatureTime(sig: Uint8Array): number {
  if (sig.length !== 8 + 64) throw new Error(`a cosignature/v1 signature has 72 bytes, got ${sig.length}`);
  const t = Buffer.from(sig).readBigUInt64BE(0);
  if (t > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`cosignature time ${t} is out of range`);
  return Number(t);
}

/** The cosignature verifier key of a cosigner: "<name>+<hex key ID>+base64(0x04 ‖ public key)". */
export function cosignatureVkey(name: string, publicKey: Uint8Array): string {
  return `${name}+${idHex(cosignatureKeyId(name, publicKey))}+${Buffer.concat([Buffer.of(ALG_COSIGNATURE_V1), publicKey]).toString('base64')}`;
}

/**
 * A cosigner from an Ed25519 signer key: signs a checkpoint's note text as cosignature/v1 at the
 * time `now` gives (ms since the epoch). `vkey` is its cosignature verifier key.
 */
export function newCosigner(skey: string, now: () => number = Date.now): Signer & { vkey: string } {
  const { name, priv, pub } = parseSignerKey(skey);
  return {
    name,
    keyId: cosignatureKeyId(name, pub),
    vkey: cosignatureVkey(name, pub),
    sign(msg: Uint8Array): Buffer {
      const time = Math.floor(now() / 1000);
      const ts = Buffer.alloc(8);
      ts.writeBigUInt64BE(BigInt(time));
      return Buffer.concat([ts, crypto.sign(null, cosignedMessage(msg, time), priv)]);
    },
  };
}

/** The signature line(s) `signer` adds to a checkpoint's note text (what a witness answers). */
export function cosignatureLines(text: string, signer: Signer): string {
  return signNote(text, [signer]).slice(text.length + 1);
}

/**
 * A verifier of cosignature/v1 lines, for openNote: from a cosignature verifier key (0x04) or an
 * Ed25519 one (0x01) of the same key. `maxTime`: reject cosignatures timestamped after it (s).
 */
export function newCosignatureVerifier(vkey: string, maxTime?: () => number): Verifier {
  const { name, id, key } = splitKey('witness key', vkey);
  if ((key[0] !== ALG_COSIGNATURE_V1 && key[0] !== ALG_ED25519) || key.length !== 33)
    throw new Error(`witness key ${name}: want an Ed25519 cosignature key (type 0x04) or Ed25519 key (0x01) of 32 bytes`);
  const pub = key.subarray(1);
  const stated =
    key[0] === ALG_ED25519 ? sha256(Buffer.concat([Buffer.from(`${name}\n`), key])).subarray(0, 4) : cosignatureKeyId(name, pub);
  if (!stated.equals(id))
    throw new Error(`witness key ${name}: key ID ${idHex(id)} does not match its key (want ${idHex(stated)})`);
  let keyObject: crypto.KeyObject;
  try {
    keyObject = publicKeyObject(pub);
  } catch (e) {
    throw new Error(`witness key ${name} is not a valid Ed25519 public key: ${(e as Error).message}`);
  }
  return {
    name,
    keyId: cosignatureKeyId(name, pub),
    verify(msg: Uint8Array, sig: Uint8Array): boolean {
      try {
        const time = cosignatureTime(sig);
        if (maxTime && time > maxTime()) return false;
        return crypto.verify(null, cosignedMessage(msg, time), keyObject, sig.subarray(8));
      } catch {
        return false; // not 72 bytes, or a time out of range
      }
    },
  };
}

/** Witnesses a verifier requires: their cosignature verifiers, and how many must have cosigned. */
export interface WitnessPolicy {
  witnesses: readonly Verifier[];
  quorum: number;
}

/**
 * Throws unless `note`, signed by the log's key `log`, carries valid cosignatures of at least
 * `quorum` distinct witnesses of the policy; the message names those missing. (A line that names a
 * witness's key but does not verify throws too: openNote refuses it.)
 */
export function requireCosignatures(note: string, log: Verifier, policy: WitnessPolicy): void {
  const keyOf = (name: string, id: Uint8Array) => `${name}+${idHex(id)}`;
  const { sigs } = openNote(note, [log, ...policy.witnesses]);
  const named = policy.witnesses.map((w) => keyOf(w.name, w.keyId));
  const signed = new Set(
    sigs.filter((x) => x.verified && named.includes(keyOf(x.name, x.keyId))).map((x) => keyOf(x.name, x.keyId)),
  );
  if (signed.size >= policy.quorum) return;
  const missing = named.filter((k) => !signed.has(k));
  throw new Error(
    `the checkpoint has ${signed.size} of the ${policy.quorum} witness cosignatures required (missing: ${missing.join(', ')})`,
  );
}
