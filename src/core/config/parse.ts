/**
 * The parsers of setting values, one per kind of the settings table. Each takes the text and
 * where it came from (`--body-limit`, `$STELE_URL`), and throws SteleError 'bad_option' (or
 * 'bad_listen') naming that place and the text, so a bad value stops a command before it touches
 * anything.
 */
import { isIP } from 'node:net';
import { parseDuration } from '../duration.js';
import { SteleError } from '../errors.js';
import type { Kind } from './settings.js';

const bad = (message: string) => new SteleError('bad_option', message);

/** A whole number of at least `min`. */
export function parseInteger(text: string, where: string, min = 0): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(n) || n < min) {
    throw bad(`${where} must be an integer of at least ${min}, got "${text}"`);
  }
  return n;
}

/** A duration longer than 0 (e.g. 60s, 500ms), in milliseconds. */
export function parsePositiveDuration(text: string, where: string): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (err) {
    throw bad(`${where}: ${(err as Error).message}`);
  }
  if (ms < 1) throw bad(`${where} must be longer than 0, got "${text}"`);
  return ms;
}

export interface Listen {
  host: string;
  port: number;
}

/** host:port, an IPv6 host in brackets ([::1]:7433); port 0 lets the kernel choose one. */
export function parseListen(text: string, where = '--listen'): Listen {
  const m = /^(.*):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65535) throw new SteleError('bad_listen', `${where} must be host:port, got "${text}"`);
  return { host: (m[1] as string).replace(/^\[(.*)\]$/, '$1'), port };
}

/** `host:port` as --listen spells it (an IPv6 host in brackets). */
export const formatListen = ({ host, port }: Listen) => `${host.includes(':') ? `[${host}]` : host}:${port}`;

/** The levels of the server's log (pino's); another would fail only once the server is built. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function parseLogLevel(text: string, where: string): string {
  if (!(LOG_LEVELS as readonly string[]).includes(text))
    throw bad(`${where} must be one of ${LOG_LEVELS.join(', ')}, got "${text}"`);
  return text;
}

/** Reverse proxies: IP addresses or CIDRs (or loopback, linklocal, uniquelocal), comma-separated. */
export function parseProxies(text: string, where = '--trust-proxy'): string {
  const items = text.split(',').map((s) => s.trim());
  for (const item of items) {
    if (['loopback', 'linklocal', 'uniquelocal'].includes(item)) continue;
    const [addr = '', prefix, extra] = item.split('/');
    const family = isIP(addr);
    const max = family === 4 ? 32 : 128;
    if (family === 0 || extra !== undefined || (prefix !== undefined && !(/^\d+$/.test(prefix) && Number(prefix) <= max))) {
      throw bad(`${where}: "${item}" is not an IP address or CIDR (e.g. 10.0.0.0/8, ::1, loopback)`);
    }
  }
  return items.join(',');
}

/** An http or https URL. */
export function parseUrl(text: string, where: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'http:' && url?.protocol !== 'https:') throw bad(`${where} must be an http or https URL, got "${text}"`);
  return text;
}

/** Any text but empty. */
export function parseText(text: string, where: string): string {
  if (text === '') throw bad(`${where} must not be empty`);
  return text;
}

/** Where a log is mirrored: an S3 bucket and a key prefix ('' for the bucket's root). */
export interface S3Location {
  bucket: string;
  prefix: string;
}

/** `s3://bucket[/prefix]`: a bucket name as S3 allows it (3–63 of a-z 0-9 . -), a prefix without leading or trailing slashes. */
export function parseS3Location(text: string, where: string): S3Location {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(text);
  const bucket = m?.[1] ?? '';
  if (!m || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
    throw bad(
      `${where} must be s3://bucket or s3://bucket/prefix (a bucket name of 3 to 63 characters a-z 0-9 . -), got "${text}"`,
    );
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((p) => p === '.' || p === '..'))
    throw bad(`${where}: the prefix must not hold . or .. parts, got "${text}"`);
  return { bucket, prefix };
}

/** on or off. */
export function parseSwitch(text: string, where: string): boolean {
  if (text === 'on') return true;
  if (text === 'off') return false;
  throw bad(`${where} must be on or off, got "${text}"`);
}

/** A witness as configured: its verifier key (checked when used) and URL. */
export interface WitnessSetting {
  vkey: string;
  url: string;
}

/** Witnesses: "<vkey>@<url>", comma-separated (a verifier key holds neither @ nor a comma). */
export function parseWitnesses(text: string, where: string): WitnessSetting[] {
  return text.split(',').map((part, i) => {
    const at = part.indexOf('@');
    const vkey = part.slice(0, at).trim();
    const url = part.slice(at + 1).trim();
    if (at < 0 || vkey === '') throw bad(`${where}: witness ${i + 1} must be <verifier key>@<URL>, got "${part}"`);
    parseUrl(url, `${where}: witness ${i + 1}'s URL`);
    return { vkey, url };
  });
}

/** http or https URLs, comma-separated. */
export function parseUrls(text: string, where: string): string[] {
  return text.split(',').map((u, i) => parseUrl(u.trim(), `${where} (URL ${i + 1})`));
}

/** A PostgreSQL connection URL; the error does not repeat it (it may hold a password). */
export function parsePostgresUrl(text: string, where: string): string {
  let protocol: string | undefined;
  try {
    protocol = new URL(text).protocol;
  } catch {
    protocol = undefined;
  }
  if (protocol !== 'postgres:' && protocol !== 'postgresql:')
    throw bad(`${where} must be a postgres:// or postgresql:// URL (e.g. postgres://stele@db.internal/stele)`);
  return text;
}

/** A lower-case SQL name (a PostgreSQL schema). */
export function parseIdentifier(text: string, where: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(text))
    throw bad(`${where} must be a-z, 0-9 and _ (not first a digit, at most 63), got ${JSON.stringify(text)}`);
  return text;
}

/** What each kind parses to. */
export interface Parsed {
  integer: number;
  duration: number;
  listen: Listen;
  logLevel: string;
  proxies: string;
  url: string;
  s3: S3Location;
  switch: boolean;
  witnesses: WitnessSetting[];
  urls: string[];
  postgres: string;
  identifier: string;
  text: string;
}

/** The parser of each kind (integers get the setting's `min`). */
export const PARSERS: { readonly [K in Kind]: (text: string, where: string, min?: number) => Parsed[K] } = {
  integer: parseInteger,
  duration: parsePositiveDuration,
  listen: parseListen,
  logLevel: parseLogLevel,
  proxies: parseProxies,
  url: parseUrl,
  s3: parseS3Location,
  switch: parseSwitch,
  witnesses: parseWitnesses,
  urls: parseUrls,
  postgres: parsePostgresUrl,
  identifier: parseIdentifier,
  text: parseText,
};
