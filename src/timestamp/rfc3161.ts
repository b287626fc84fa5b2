/**
 * RFC 3161 trusted timestamps (with pkijs, PeculiarVentures' PKI library): a request for a
 * time-stamp token over a SHA-256 digest, a TSA's response, and the check of a token against the
 * digest and the certificates of the TSAs one trusts. Stele has its checkpoints timestamped (the
 * digest is the SHA-256 of the signed checkpoint note), so a third party can show that every entry
 * the checkpoint covers existed by the token's time.
 */
import { createHash, webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

const SHA256_OID = '2.16.840.1.101.3.4.2.1';

// pkijs needs a WebCrypto engine; Node's is the real one.
pkijs.setEngine(
  'node',
  new pkijs.CryptoEngine({
    name: 'node',
    crypto: webcrypto as unknown as ConstructorParameters<typeof pkijs.CryptoEngine>[0]['crypto'],
  }),
);

/** An X.509 certificate, as pkijs parses it (certificatesFromPem). */
export type Certificate = pkijs.Certificate;

/** A time-stamp token and what it says. */
export interface TimestampToken {
  /** The token (a CMS ContentInfo of SignedData over a TSTInfo), DER. */
  der: Buffer;
  /** When the TSA says it saw the digest. */
  genTime: Date;
  /** The TSA's serial number of the token (hex). */
  serial: string;
  /** The digest it timestamps (SHA-256). */
  digest: Buffer;
}

export class TimestampError extends Error {}

const bytesOf = (v: ArrayBuffer | ArrayBufferView) =>
  Buffer.from(v instanceof ArrayBuffer ? v : v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));

/** A TimeStampReq (DER) for a SHA-256 `digest`, asking for the TSA's certificate in the token. */
export function timestampRequest(digest: Uint8Array, nonce: Uint8Array): Buffer {
  if (digest.length !== 32) throw new TimestampError('a timestamp request takes a SHA-256 digest (32 bytes)');
  const req = new pkijs.TimeStampReq({
    version: 1,
    messageImprint: new pkijs.MessageImprint({
      hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: SHA256_OID, algorithmParams: new asn1js.Null() }),
      hashedMessage: new asn1js.OctetString({ valueHex: Uint8Array.from(digest).buffer }),
    }),
    nonce: new asn1js.Integer({ valueHex: Uint8Array.from([0x01, ...nonce]).buffer }),
    certReq: true,
  });
  return bytesOf(req.toSchema().toBER(false));
}

/** The TSTInfo inside a token (DER ContentInfo). */
function tstInfoOf(token: pkijs.ContentInfo): { signed: pkijs.SignedData; info: pkijs.TSTInfo } {
  if (token.contentType !== pkijs.ContentInfo.SIGNED_DATA) throw new TimestampError('the token is not CMS SignedData');
  const signed = new pkijs.SignedData({ schema: token.content });
  const e = signed.encapContentInfo;
  if (e.eContentType !== '1.2.840.113549.1.9.16.1.4' || !e.eContent)
    throw new TimestampError('the token does not hold a TSTInfo (id-ct-TSTInfo)');
  const parsed = asn1js.fromBER(e.eContent.getValue());
  if (parsed.offset === -1) throw new TimestampError('the TSTInfo is not DER');
  return { signed, info: new pkijs.TSTInfo({ schema: parsed.result }) };
}

function describeToken(der: Buffer, info: pkijs.TSTInfo): TimestampToken {
  if (info.messageImprint.hashAlgorithm.algorithmId !== SHA256_OID)
    throw new TimestampError(`the token timestamps a ${info.messageImprint.hashAlgorithm.algorithmId} digest, not SHA-256`);
  return {
    der,
    genTime: info.genTime,
    serial: bytesOf(info.serialNumber.valueBlock.valueHexView).toString('hex'),
    digest: bytesOf(info.messageImprint.hashedMessage.valueBlock.valueHexView),
  };
}

function parseToken(der: Uint8Array): pkijs.ContentInfo {
  try {
    return pkijs.ContentInfo.fromBER(Uint8Array.from(der).buffer);
  } catch (err) {
    throw new TimestampError(`the token is not DER: ${(err as Error).message}`);
  }
}

/**
 * The token of a TSA's TimeStampResp (DER), after checking it answers this request: granted, the
 * same digest and nonce. Its signature is checked by verifyTimestamp (against trusted TSAs).
 */
export function readTimestampResponse(der: Uint8Array, digest: Uint8Array, nonce: Uint8Array): TimestampToken {
  const parsed = asn1js.fromBER(Uint8Array.from(der).buffer);
  if (parsed.offset === -1) throw new TimestampError('the TSA answered something that is not DER');
  let resp: pkijs.TimeStampResp;
  try {
    resp = new pkijs.TimeStampResp({ schema: parsed.result });
  } catch (err) {
    throw new TimestampError(`the TSA did not answer a TimeStampResp: ${(err as Error).message}`);
  }
  const status = resp.status.status;
  if (status !== 0 && status !== 1) {
    const text = resp.status.statusStrings?.map((s) => s.valueBlock.value).join('; ') ?? '';
    throw new TimestampError(`the TSA refused the request (status ${status}${text ? `: ${text}` : ''})`);
  }
  if (!resp.timeStampToken) throw new TimestampError('the TSA granted the request without a token');
  const tokenDer = bytesOf(resp.timeStampToken.toSchema().toBER(false));
  const { info } = tstInfoOf(resp.timeStampToken);
  const token = describeToken(tokenDer, info);
  if (!token.digest.equals(Buffer.from(digest))) throw new TimestampError('the token timestamps another digest');
  const got = info.nonce ? bytesOf(info.nonce.valueBlock.valueHexView) : null;
  if (!got?.equals(Buffer.from([0x01, ...nonce]))) throw new TimestampError('the token does not carry the nonce of the request');
  return token;
}

/** What a token (DER) says, unverified: for showing it; verifyTimestamp checks it. */
export function readTimestampToken(der: Uint8Array): TimestampToken {
  return describeToken(Buffer.from(der), tstInfoOf(parseToken(der)).info);
}

/** Parses PEM certificates (one or several) into pkijs certificates. */
export function certificatesFromPem(pem: string): pkijs.Certificate[] {
  const out: pkijs.Certificate[] = [];
  for (const m of pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)) {
    const der = Buffer.from((m[1] as string).replace(/\s+/g, ''), 'base64');
    out.push(pkijs.Certificate.fromBER(Uint8Array.from(der).buffer));
  }
  if (out.length === 0) throw new TimestampError('no PEM certificate found');
  return out;
}

/**
 * Checks a token (DER) over `message` (the bytes timestamped; the token holds their SHA-256): the
 * TSA's signature, and its certificate's chain to one of `trusted` (valid at the token's time, with
 * the time-stamping key usage). Returns what it says.
 */
export async function verifyTimestamp(
  der: Uint8Array,
  message: Uint8Array,
  trusted: readonly pkijs.Certificate[],
): Promise<TimestampToken> {
  const content = parseToken(der);
  const { signed, info } = tstInfoOf(content);
  const token = describeToken(Buffer.from(der), info);
  if (!token.digest.equals(createHash('sha256').update(message).digest()))
    throw new TimestampError('the token timestamps another digest');
  let result: { signatureVerified?: boolean | null; signerCertificateVerified?: boolean | null; message?: string };
  try {
    result = await signed.verify({
      signer: 0,
      trustedCerts: [...trusted],
      checkChain: true,
      checkDate: token.genTime,
      extendedMode: true,
      data: Uint8Array.from(message).buffer,
    });
  } catch (err) {
    const e = err as { message?: string };
    throw new TimestampError(`the token does not verify: ${e.message ?? String(err)}`);
  }
  if (!result.signatureVerified)
    throw new TimestampError(`the token's signature does not verify${result.message ? `: ${result.message}` : ''}`);
  if (!result.signerCertificateVerified)
    throw new TimestampError('the TSA certificate does not chain to a trusted TSA certificate');
  return token;
}
