/**
 * A real OpenID provider for tests: `oidc-provider` (panva) listening on 127.0.0.1 on a free port,
 * issuing JWT access tokens (RFC 9068) for the resource `urn:stele` with audience `stele`.
 *
 * - `clientCredentialsToken()`: the client-credentials grant of the confidential client
 *   `stele-ingest` (a machine: the token has no `email`).
 * - `deviceFlowToken(user)`: the device authorization grant (RFC 8628) of the public client
 *   `stele-cli`, driven for real over HTTP: device authorization request, the user's browser (a
 *   cookie jar) entering the user code, confirming, signing in and consenting on the provider's
 *   pages, and the device polling the token endpoint (honouring `authorization_pending`,
 *   `slow_down` and `interval`). The access token carries the user's `email`, `groups` and `tid`.
 * - `rotateKeys()`: new signing keys (RS256 and ES256) without changing the port or issuer.
 * - `stop()` / `start()`: the IdP goes down and comes back on the same port.
 * - `forge.*`: hand-made tokens for negative tests (expired, foreign key, HS256 with the public
 *   key as secret, `alg: none`, ...).
 *
 * Tokens of `stele-ingest` are signed ES256, those of `stele-cli` RS256, so both key types are used.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  base64url,
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from 'jose';
// @ts-expect-error oidc-provider ships no type declarations (the small surface used here is typed below).
import ProviderClass from 'oidc-provider';

/* ------------------------------------------------------------------------------------------------
 * The part of oidc-provider's API this harness uses (it has no .d.ts of its own).
 * ---------------------------------------------------------------------------------------------- */

interface KoaContext {
  path: string;
  method: string;
  status: number;
  type: string;
  body: unknown;
  respond: boolean;
  req: IncomingMessage;
  res: import('node:http').ServerResponse;
  oidc?: { route?: string; params?: Record<string, unknown> };
}
interface GrantInstance {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(resource: string, scope: string): void;
  save(): Promise<string>;
}
interface InteractionDetails {
  uid: string;
  prompt: { name: string; details: Record<string, unknown> };
  params: Record<string, unknown>;
  session?: { accountId?: string };
  grantId?: string;
}
interface ProviderInstance {
  issuer: string;
  callback(): (req: IncomingMessage, res: import('node:http').ServerResponse) => void;
  use(fn: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>): void;
  interactionDetails(req: IncomingMessage, res: import('node:http').ServerResponse): Promise<InteractionDetails>;
  interactionFinished(
    req: IncomingMessage,
    res: import('node:http').ServerResponse,
    result: Record<string, unknown>,
    opts?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  Grant: {
    new (init: { accountId?: string; clientId?: string }): GrantInstance;
    find(id: string): Promise<GrantInstance | undefined>;
  };
}
const Provider = ProviderClass as new (issuer: string, config: Record<string, unknown>) => ProviderInstance;

/* ------------------------------------------------------------------------------------------------
 * Public types
 * ---------------------------------------------------------------------------------------------- */

export interface IdpUser {
  email: string;
  groups?: string[];
  /** Tenant claim `tid`; defaults to the IdP's `tenant`. */
  tid?: string;
  /** Subject; defaults to a stable id derived from the email. */
  sub?: string;
  /** `email_verified` in the user's tokens (default true). */
  emailVerified?: boolean;
  /** false: the access token carries no `email` (as IdPs that put only `sub` in access tokens), default true. */
  emailInToken?: boolean;
}

export interface StartIdpOptions {
  /** Port to listen on (default: a free one). */
  port?: number;
  /** `aud` of access tokens for the resource (default `stele`). */
  audience?: string;
  /** The resource indicator (RFC 8707) that names Stele (default `urn:stele`). */
  resource?: string;
  /** `tid` put in every token (default `acme`). */
  tenant?: string;
  /** Access token lifetime, seconds (default 300). */
  accessTokenTtlS?: number;
  /** Device flow polling interval announced to devices and enforced with `slow_down`, seconds (default 1). */
  deviceIntervalS?: number;
  /** Users known from the start (more are added by `deviceFlowToken`). */
  users?: IdpUser[];
  /**
   * Let the device-flow client use the refresh-token grant: a refresh token is then issued when the
   * device asks for the `offline_access` scope (and rotated at each use, as for any public client).
   * Default false.
   */
  refreshTokens?: boolean;
  /**
   * A public client `stele-console` for the console's sign-in (authorization code with PKCE) that
   * returns to `redirectUri`, with CORS for that URI's origin on discovery and the token endpoint.
   */
  consoleClient?: { redirectUri: string };
}

export type IdpAlg = 'RS256' | 'ES256';

export interface IdpSigningKey {
  alg: IdpAlg;
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  privateJwk: JWK;
  publicJwk: JWK;
}

export interface DeviceFlowResult {
  accessToken: string;
  idToken?: string;
  scope?: string;
  expiresIn?: number;
  userCode: string;
  /** Token endpoint answers seen while polling. */
  pendingPolls: number;
  slowDowns: number;
}

export interface Idp {
  /** The issuer identifier, `http://127.0.0.1:<port>` (no trailing slash). */
  readonly issuer: string;
  readonly port: number;
  readonly audience: string;
  readonly resource: string;
  readonly tenant: string;
  /** Client ids: the confidential client-credentials client and the public device-flow client. */
  readonly clients: { service: { id: string; secret: string }; device: { id: string } };
  /** The current signing keys (first RS256, then ES256). */
  keys(): IdpSigningKey[];
  key(alg: IdpAlg): IdpSigningKey;
  /** The published JWKS (public keys). */
  jwks(): { keys: JWK[] };
  /** How many requests the IdP has served for this path (e.g. `/.well-known/openid-configuration`, `/jwks`). */
  hits(path: string): number;
  resetHits(): void;
  /** A client-credentials access token (JWT, `aud` = audience, signed ES256). */
  clientCredentialsToken(opts?: { scope?: string; resource?: string }): Promise<string>;
  /** A device-flow access token for `user` (JWT with email/groups/tid, signed RS256). */
  deviceFlowToken(user: IdpUser, opts?: { scope?: string }): Promise<string>;
  /** The device flow with its details (polling counts, id token). */
  deviceFlow(user: IdpUser, opts?: { scope?: string }): Promise<DeviceFlowResult>;
  /** New RS256 and ES256 keys; with `keepPrevious` the old ones stay published (but unused). */
  rotateKeys(opts?: { keepPrevious?: boolean }): Promise<void>;
  /** Takes the IdP off the network (connections refused) without forgetting its keys. */
  stop(): Promise<void>;
  /** Back on the same port after `stop()`. */
  start(): Promise<void>;
  close(): Promise<void>;
  /** Claims of a plausible user access token of this IdP, with overrides (undefined removes a claim). */
  claims(overrides?: Record<string, unknown>): JWTPayload;
  /** Signs claims with one of the IdP's real keys (default RS256), as the IdP would. */
  sign(claims: JWTPayload, opts?: { alg?: IdpAlg; header?: Record<string, unknown> }): Promise<string>;
  /** Ready-made hostile or broken tokens. */
  readonly forge: Forge;
}

export interface Forge {
  /** Signed by the IdP, expired `agoS` seconds ago (default 3600). */
  expired(agoS?: number): Promise<string>;
  /** Signed by the IdP, `nbf` `inS` seconds ahead (default 3600). */
  notYetValid(inS?: number): Promise<string>;
  /** Signed by the IdP, `iat` `inS` seconds ahead (default 3600). */
  issuedInFuture(inS?: number): Promise<string>;
  /** Signed by the IdP but naming another issuer. */
  wrongIssuer(iss?: string): Promise<string>;
  /** Signed by the IdP for another audience. */
  wrongAudience(aud?: string | string[]): Promise<string>;
  /** Signed by the IdP, without these claims. */
  withoutClaims(...names: string[]): Promise<string>;
  /** Signed by the IdP, for another tenant. */
  otherTenant(tid?: string): Promise<string>;
  /** Correct claims, signed by a key the IdP never had (same `kid` as the IdP's key: a signature failure). */
  foreignKey(alg?: IdpAlg): Promise<string>;
  /** Correct claims, signed by a foreign key with a `kid` the IdP never published. */
  unknownKid(alg?: IdpAlg): Promise<string>;
  /** HS256 with the IdP's RSA public key (SPKI PEM) as the HMAC secret: the algorithm-confusion attack. */
  hs256WithPublicKey(): Promise<string>;
  /** `alg: none`, empty signature. */
  algNone(): Promise<string>;
}

/* ------------------------------------------------------------------------------------------------
 * Stand-alone token forging
 * ---------------------------------------------------------------------------------------------- */

/** An unsigned JWT (`alg: none`, empty signature). */
export function unsignedJwt(claims: JWTPayload, header: Record<string, unknown> = {}): string {
  const enc = (o: unknown) => base64url.encode(JSON.stringify(o));
  return `${enc({ alg: 'none', typ: 'JWT', ...header })}.${enc(claims)}.`;
}

/** Generates a signing key like the IdP's (extractable, with a thumbprint `kid`). */
export async function generateSigningKey(alg: IdpAlg): Promise<IdpSigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = `${alg.toLowerCase()}-${(await calculateJwkThumbprint(publicJwk)).slice(0, 16)}`;
  Object.assign(publicJwk, { kid, alg, use: 'sig' });
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, privateJwk, publicJwk };
}

/** Signs claims with a key of one's own (a foreign key, from the verifier's point of view). */
export async function signJwt(claims: JWTPayload, key: IdpSigningKey, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ typ: 'at+jwt', kid: key.kid, ...header, alg: key.alg }).sign(key.privateKey);
}

/** HS256 over the claims with `publicKey`'s SPKI PEM as the secret, header `kid` = that key's kid. */
export async function hs256WithPublicKeyAsSecret(claims: JWTPayload, key: IdpSigningKey): Promise<string> {
  const secret = new TextEncoder().encode(await exportSPKI(key.publicKey));
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: key.kid }).sign(secret);
}

/* ------------------------------------------------------------------------------------------------
 * A browser: cookie jar (with paths), redirects, HTML forms
 * ---------------------------------------------------------------------------------------------- */

interface Page {
  url: string;
  status: number;
  body: string;
}

interface Form {
  action: string;
  method: string;
  fields: Record<string, string>;
}

const decodeEntities = (s: string) =>
  s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos|#39);/gi, (_, e: string) => {
    const l = e.toLowerCase();
    if (l.startsWith('#x')) return String.fromCodePoint(Number.parseInt(l.slice(2), 16));
    if (l.startsWith('#')) return String.fromCodePoint(Number.parseInt(l.slice(1), 10));
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[l] ?? '';
  });

const attr = (tag: string, name: string) => {
  const m = new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)')`, 'i').exec(tag);
  return m ? decodeEntities(m[2] ?? m[3] ?? '') : undefined;
};

/** The first form of a page (its action resolved against the page URL) and its named inputs. */
export function parseForm(page: Page): Form | undefined {
  const m = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(page.body);
  if (!m) return undefined;
  const [, formAttrs = '', inner = ''] = m;
  const fields: Record<string, string> = {};
  for (const input of inner.match(/<input\b[^>]*>/gi) ?? []) {
    const name = attr(input, 'name');
    if (name) fields[name] = attr(input, 'value') ?? '';
  }
  return {
    action: new URL(attr(` ${formAttrs}`, 'action') ?? page.url, page.url).href,
    method: (attr(` ${formAttrs}`, 'method') ?? 'get').toLowerCase(),
    fields,
  };
}

/** Enough of a browser to sign in on the IdP's pages: cookies (with path scoping) and redirects. */
export class Browser {
  private readonly jar = new Map<string, { name: string; value: string; path: string }>();

  private store(res: Response, url: URL): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = url.pathname.replace(/\/[^/]*$/, '') || '/';
      let expired = value === '';
      for (const a of attrs) {
        const [k = '', v = ''] = a.split('=').map((s) => s.trim());
        const key = k.toLowerCase();
        if (key === 'path' && v.startsWith('/')) path = v;
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      const id = `${path}\t${name}`;
      if (expired) this.jar.delete(id);
      else this.jar.set(id, { name, value, path });
    }
  }

  private cookieHeader(url: URL): string {
    const p = url.pathname;
    return [...this.jar.values()]
      .filter((c) => p === c.path || p.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  async request(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Page> {
    let u = new URL(url);
    let method = (init.method ?? 'GET').toUpperCase();
    let body: string | undefined = init.form ? new URLSearchParams(init.form).toString() : undefined;
    for (let hops = 0; hops < 20; hops++) {
      const headers: Record<string, string> = { accept: 'text/html' };
      const cookie = this.cookieHeader(u);
      if (cookie) headers.cookie = cookie;
      if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
      const res = await fetch(u, { method, headers, body, redirect: 'manual' });
      this.store(res, u);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        u = new URL(location, u);
        if (res.status !== 307 && res.status !== 308) {
          method = 'GET';
          body = undefined;
        }
        continue;
      }
      return { url: u.href, status: res.status, body: await res.text() };
    }
    throw new Error(`too many redirects from ${url}`);
  }

  submit(form: Form, values: Record<string, string> = {}): Promise<Page> {
    const fields = { ...form.fields, ...values };
    if (form.method === 'post') return this.request(form.action, { method: 'POST', form: fields });
    const u = new URL(form.action);
    for (const [k, v] of Object.entries(fields)) u.searchParams.set(k, v);
    return this.request(u.href);
  }
}

/**
 * The user's side of a device authorization (RFC 8628) that a device (e.g. Emacs's `stele-login`)
 * started: a browser opens `verificationUri` (the plain or the `_complete` one), enters `userCode`
 * if the page asks for it, confirms, signs in as `email` and consents. `email` must be a user the
 * IdP knows (`startIdp({ users })`). Resolves once the IdP shows its success page.
 */
export async function approveDevice(verificationUri: string, email: string, userCode?: string): Promise<void> {
  const browser = new Browser();
  let page = await browser.request(verificationUri);
  for (let step = 0; step < 12; step++) {
    const form = parseForm(page);
    if (!form) break;
    const values: Record<string, string> = {};
    if ('user_code' in form.fields && !form.fields.user_code) {
      if (!userCode) throw new Error(`device approval: ${page.url} asks for the user code and none was given`);
      values.user_code = userCode;
    }
    if ('login' in form.fields) values.login = email;
    page = await browser.submit(form, values);
  }
  if (page.status !== 200 || !page.body.includes('Device signed in')) {
    throw new Error(`device approval did not finish (HTTP ${page.status} at ${page.url}): ${page.body}`);
  }
}

/* ------------------------------------------------------------------------------------------------
 * The IdP
 * ---------------------------------------------------------------------------------------------- */

const esc = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

const html = (title: string, body: string) =>
  `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><h1>${esc(title)}</h1>${body}</body></html>`;

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * oidc-provider's storage: one per IdP (kept across `rotateKeys()`), instead of its process-wide
 * development adapter (which also prints a warning).
 */
function storageAdapter() {
  const store = new Map<string, { payload: Record<string, unknown>; expiresAt: number }>();
  const live = (k: string) => {
    const e = store.get(k);
    if (e && e.expiresAt <= Date.now()) store.delete(k);
    return e && e.expiresAt > Date.now() ? e : undefined;
  };
  return class Adapter {
    constructor(private readonly model: string) {}
    private k(id: string) {
      return `${this.model}:${id}`;
    }
    private findBy(field: string, value: string) {
      for (const [k, e] of store) {
        if (k.startsWith(`${this.model}:`) && e.payload[field] === value) return live(k)?.payload;
      }
      return undefined;
    }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
      store.set(this.k(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Number.POSITIVE_INFINITY });
    }
    async find(id: string) {
      return live(this.k(id))?.payload;
    }
    async findByUserCode(userCode: string) {
      return this.findBy('userCode', userCode);
    }
    async findByUid(uid: string) {
      return this.findBy('uid', uid);
    }
    async consume(id: string) {
      const e = live(this.k(id));
      if (e) e.payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      store.delete(this.k(id));
    }
    async revokeByGrantId(grantId: string) {
      for (const [k, e] of store) if (e.payload.grantId === grantId) store.delete(k);
    }
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const epoch = () => Math.floor(Date.now() / 1000);

const SERVICE_CLIENT = 'stele-ingest';
const DEVICE_CLIENT = 'stele-cli';
export const CONSOLE_CLIENT = 'stele-console';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const RESOURCE_SCOPES = 'events:write events:read';

/** Starts a real OpenID provider on 127.0.0.1. Call `close()` when done. */
export async function startIdp(opts: StartIdpOptions = {}): Promise<Idp> {
  const audience = opts.audience ?? 'stele';
  const resource = opts.resource ?? 'urn:stele';
  const tenant = opts.tenant ?? 'acme';
  const ttl = opts.accessTokenTtlS ?? 300;
  const intervalS = opts.deviceIntervalS ?? 1;
  const serviceSecret = randomBytes(24).toString('base64url');
  const cookieKeys = [randomBytes(32).toString('base64url')];

  const accounts = new Map<string, IdpUser & { sub: string }>();
  const byEmail = new Map<string, string>();
  const addUser = (u: IdpUser) => {
    const sub = u.sub ?? `user-${Buffer.from(u.email).toString('base64url')}`;
    accounts.set(sub, { ...u, sub });
    byEmail.set(u.email.toLowerCase(), sub);
    return sub;
  };
  for (const u of opts.users ?? []) addUser(u);

  let keys: IdpSigningKey[] = [await generateSigningKey('RS256'), await generateSigningKey('ES256')];
  let published: IdpSigningKey[] = keys;

  const server: Server = createServer((_req, res) => {
    res.statusCode = 503;
    res.end('starting');
  });
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const port = await listen(opts.port ?? 0);
  const issuer = `http://127.0.0.1:${port}`;

  // Device polling state (RFC 8628 §3.5): last poll and current interval per device code.
  const polls = new Map<string, { at: number; intervalS: number }>();
  const adapter = storageAdapter();

  function buildProvider(): ProviderInstance {
    const provider = new Provider(issuer, {
      adapter,
      clients: [
        {
          client_id: SERVICE_CLIENT,
          client_secret: serviceSecret,
          grant_types: ['client_credentials'],
          response_types: [],
          redirect_uris: [],
          token_endpoint_auth_method: 'client_secret_basic',
        },
        {
          client_id: DEVICE_CLIENT,
          client_name: 'Stele CLI',
          grant_types: opts.refreshTokens ? [DEVICE_GRANT, 'refresh_token'] : [DEVICE_GRANT],
          response_types: [],
          redirect_uris: [],
          token_endpoint_auth_method: 'none',
        },
        ...(opts.consoleClient
          ? [
              {
                client_id: CONSOLE_CLIENT,
                client_name: 'Stele console',
                grant_types: ['authorization_code'],
                response_types: ['code'],
                redirect_uris: [opts.consoleClient.redirectUri],
                token_endpoint_auth_method: 'none',
              },
            ]
          : []),
      ],
      // The console (a page of another origin) reads discovery and redeems its code from the browser.
      clientBasedCORS: (_ctx: unknown, origin: string, client: { clientId: string }) =>
        client.clientId === CONSOLE_CLIENT &&
        opts.consoleClient !== undefined &&
        origin === new URL(opts.consoleClient.redirectUri).origin,
      // Newest first: oidc-provider signs with the first key that fits the algorithm.
      jwks: { keys: [...keys, ...published.filter((k) => !keys.includes(k))].map((k) => k.privateJwk) },
      cookies: { keys: cookieKeys },
      claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'], tenant: ['tid'] },
      async findAccount(_ctx: unknown, sub: string) {
        const u = accounts.get(sub);
        if (!u) return undefined;
        return {
          accountId: sub,
          async claims() {
            return { sub, email: u.email, email_verified: u.emailVerified ?? true, groups: u.groups ?? [], tid: u.tid ?? tenant };
          },
        };
      },
      // User claims in the JWT access token (oidc-provider puts only iss/sub/aud/client_id/scope there).
      async extraTokenClaims(_ctx: unknown, token: { accountId?: string }) {
        if (!token.accountId) return { tid: tenant };
        const u = accounts.get(token.accountId);
        if (!u) return undefined;
        const email = u.emailInToken === false ? {} : { email: u.email, email_verified: u.emailVerified ?? true };
        return { ...email, groups: u.groups ?? [], tid: u.tid ?? tenant };
      },
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: { enabled: false },
        revocation: { enabled: false },
        deviceFlow: {
          enabled: true,
          userCodeInputSource: async (ctx: KoaContext, form: string) => {
            ctx.body = html('Enter the code shown on your device', form);
          },
          userCodeConfirmSource: async (ctx: KoaContext, form: string, _client: unknown, _info: unknown, userCode: string) => {
            ctx.body = html('Confirm device', `<p>Code <code>${esc(userCode)}</code></p>${form}`);
          },
          successSource: async (ctx: KoaContext) => {
            ctx.body = html('Device signed in', '<p>You can close this page.</p>');
          },
        },
        resourceIndicators: {
          enabled: true,
          defaultResource: async () => resource,
          useGrantedResource: async () => true,
          getResourceServerInfo: async (_ctx: unknown, indicator: string, client: { clientId: string }) => {
            if (indicator !== resource) throw new Error(`unknown resource ${indicator}`);
            return {
              scope: RESOURCE_SCOPES,
              audience,
              accessTokenTTL: ttl,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: client.clientId === SERVICE_CLIENT ? 'ES256' : 'RS256' } },
            };
          },
        },
      },
      ttl: {
        AccessToken: ttl,
        ClientCredentials: ttl,
        DeviceCode: 300,
        ...(opts.refreshTokens ? { RefreshToken: 3600 } : {}),
        Interaction: 300,
        Session: 3600,
        Grant: 3600,
        IdToken: 300,
      },
      async renderError(ctx: KoaContext, out: Record<string, string>) {
        ctx.type = 'html';
        ctx.body = html(
          'Error',
          Object.entries(out)
            .map(([k, v]) => `<p>${esc(k)}: ${esc(v)}</p>`)
            .join(''),
        );
      },
    });

    // Minimal interactions (instead of devInteractions): a login form asking for the email, then consent.
    provider.use(async (ctx, next) => {
      const m = /^\/interaction\/([\w-]+)(?:\/(login|consent))?$/.exec(ctx.path);
      if (!m) return next();
      const [, uid, step] = m;
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      if (!step) {
        ctx.type = 'html';
        ctx.body =
          details.prompt.name === 'login'
            ? html(
                'Sign in',
                `<form method="post" action="/interaction/${esc(uid)}/login"><label>Email <input type="email" name="login" value=""></label> <button>Continue</button></form>`,
              )
            : html(
                'Allow access',
                `<p>${esc(String(details.params.client_id))} asks for ${esc(String(details.params.scope))}</p>` +
                  `<form method="post" action="/interaction/${esc(uid)}/consent"><input type="hidden" name="allow" value="yes"><button>Allow</button></form>`,
              );
        return;
      }
      if (ctx.method !== 'POST') {
        ctx.status = 405;
        return;
      }
      const form = await readForm(ctx.req);
      if (step === 'login') {
        const sub = byEmail.get((form.get('login') ?? '').toLowerCase());
        if (!sub) {
          ctx.status = 200;
          ctx.type = 'html';
          ctx.body = html('Sign in', '<p>unknown user</p>');
          return;
        }
        ctx.respond = false;
        await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: sub } }, { mergeWithLastSubmission: false });
        return;
      }
      const { prompt, grantId, session, params } = details;
      const grant = grantId
        ? await provider.Grant.find(grantId)
        : new provider.Grant({ accountId: session?.accountId, clientId: String(params.client_id) });
      if (!grant) throw new Error('grant not found');
      const d = prompt.details as {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const result = { consent: { grantId: await grant.save() } };
      ctx.respond = false;
      await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: true });
    });

    // RFC 8628: announce the polling interval, and answer slow_down to devices that poll faster.
    provider.use(async (ctx, next) => {
      await next();
      const route = ctx.oidc?.route;
      if (route === 'device_authorization' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
        (ctx.body as Record<string, unknown>).interval = intervalS;
      }
      if (route === 'token' && ctx.oidc?.params?.grant_type === DEVICE_GRANT) {
        const code = String(ctx.oidc.params.device_code);
        const body = ctx.body as { error?: string; error_description?: string } | undefined;
        const now = Date.now();
        const last = polls.get(code);
        if (body?.error === 'authorization_pending') {
          if (last && now - last.at < last.intervalS * 1000) {
            last.intervalS += 5;
            last.at = now;
            body.error = 'slow_down';
            body.error_description = 'you are polling too quickly and should back off at a reasonable rate';
          } else {
            polls.set(code, { at: now, intervalS: last?.intervalS ?? intervalS });
          }
        } else {
          polls.delete(code);
        }
      }
    });
    return provider;
  }

  const hits = new Map<string, number>();
  let provider = buildProvider();
  const attach = () => {
    const handle = provider.callback();
    server.removeAllListeners('request');
    server.on('request', (req, res) => {
      const path = new URL(req.url ?? '/', issuer).pathname;
      hits.set(path, (hits.get(path) ?? 0) + 1);
      handle(req, res);
    });
  };
  attach();
  let running = true;

  const url = (path: string) => `${issuer}${path}`;

  async function tokenRequest(form: Record<string, string>, basic?: [string, string]) {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (basic) headers.authorization = `Basic ${Buffer.from(`${basic[0]}:${basic[1]}`).toString('base64')}`;
    const res = await fetch(url('/token'), { method: 'POST', headers, body: new URLSearchParams(form) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  async function clientCredentialsToken(o: { scope?: string; resource?: string } = {}): Promise<string> {
    const { status, json } = await tokenRequest(
      { grant_type: 'client_credentials', resource: o.resource ?? resource, scope: o.scope ?? RESOURCE_SCOPES },
      [SERVICE_CLIENT, serviceSecret],
    );
    if (status !== 200 || typeof json.access_token !== 'string') {
      throw new Error(`client credentials grant failed: HTTP ${status} ${JSON.stringify(json)}`);
    }
    return json.access_token;
  }

  async function deviceFlow(user: IdpUser, o: { scope?: string } = {}): Promise<DeviceFlowResult> {
    addUser(user);
    // 1. The device asks for a device code.
    const res = await fetch(url('/device/auth'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({
        client_id: DEVICE_CLIENT,
        scope: o.scope ?? `openid email groups ${RESOURCE_SCOPES}`,
        resource,
      }),
    });
    const da = (await res.json()) as Record<string, unknown>;
    if (res.status !== 200 || typeof da.device_code !== 'string' || typeof da.user_code !== 'string') {
      throw new Error(`device authorization failed: HTTP ${res.status} ${JSON.stringify(da)}`);
    }
    const deviceCode = da.device_code;
    let interval = typeof da.interval === 'number' ? da.interval : 5;
    let pendingPolls = 0;
    let slowDowns = 0;

    const poll = async () => {
      const r = await tokenRequest({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: DEVICE_CLIENT });
      if (r.status === 200) return r.json;
      if (r.json.error === 'authorization_pending') pendingPolls++;
      else if (r.json.error === 'slow_down') {
        slowDowns++;
        interval += 5;
      } else throw new Error(`device token request failed: HTTP ${r.status} ${JSON.stringify(r.json)}`);
      return undefined;
    };

    // 2. The device polls once before the user has done anything: authorization_pending.
    let tokens = await poll();
    if (tokens) throw new Error('device flow: token issued before the user approved');

    // 3. The user's browser: enter the code, confirm, sign in, consent.
    const browser = new Browser();
    let page = await browser.request(String(da.verification_uri));
    for (let step = 0; step < 12; step++) {
      const form = parseForm(page);
      if (!form) break;
      const values: Record<string, string> = {};
      if ('user_code' in form.fields && !form.fields.user_code) values.user_code = da.user_code;
      if ('login' in form.fields) values.login = user.email;
      page = await browser.submit(form, values);
    }
    if (page.status !== 200 || !page.body.includes('Device signed in')) {
      throw new Error(`device flow: the browser did not finish signing in (HTTP ${page.status} at ${page.url}): ${page.body}`);
    }

    // 4. The device polls at the announced interval until it gets the tokens.
    const deadline = Date.now() + 60_000;
    while (!tokens) {
      if (Date.now() > deadline) throw new Error('device flow: no token within 60 s');
      await sleep(interval * 1000);
      tokens = await poll();
    }
    if (typeof tokens.access_token !== 'string') throw new Error(`device flow: no access token in ${JSON.stringify(tokens)}`);
    return {
      accessToken: tokens.access_token,
      idToken: typeof tokens.id_token === 'string' ? tokens.id_token : undefined,
      scope: typeof tokens.scope === 'string' ? tokens.scope : undefined,
      expiresIn: typeof tokens.expires_in === 'number' ? tokens.expires_in : undefined,
      userCode: da.user_code,
      pendingPolls,
      slowDowns,
    };
  }

  const key = (alg: IdpAlg) => {
    const k = keys.find((x) => x.alg === alg);
    if (!k) throw new Error(`no ${alg} key`);
    return k;
  };

  const claims = (overrides: Record<string, unknown> = {}): JWTPayload => {
    const now = epoch();
    const base: Record<string, unknown> = {
      iss: issuer,
      sub: 'user-forged',
      aud: audience,
      client_id: DEVICE_CLIENT,
      email: 'mallory@example.com',
      email_verified: true,
      groups: ['admins'],
      tid: tenant,
      scope: RESOURCE_SCOPES,
      jti: randomUUID(),
      iat: now,
      exp: now + ttl,
    };
    for (const [k, v] of Object.entries(overrides)) {
      if (v === undefined) delete base[k];
      else base[k] = v;
    }
    return base as JWTPayload;
  };

  const sign = (c: JWTPayload, o: { alg?: IdpAlg; header?: Record<string, unknown> } = {}) =>
    signJwt(c, key(o.alg ?? 'RS256'), o.header);

  const forge: Forge = {
    expired: (agoS = 3600) => sign(claims({ iat: epoch() - agoS - ttl, exp: epoch() - agoS })),
    notYetValid: (inS = 3600) => sign(claims({ nbf: epoch() + inS, exp: epoch() + inS + ttl })),
    issuedInFuture: (inS = 3600) => sign(claims({ iat: epoch() + inS, exp: epoch() + inS + ttl })),
    wrongIssuer: (iss = 'https://evil.example') => sign(claims({ iss })),
    wrongAudience: (aud = 'not-stele') => sign(claims({ aud })),
    withoutClaims: (...names) => sign(claims(Object.fromEntries(names.map((n) => [n, undefined])))),
    otherTenant: (tid = 'other') => sign(claims({ tid })),
    foreignKey: async (alg = 'RS256') => {
      const foreign = await generateSigningKey(alg);
      return signJwt(claims(), { ...foreign, kid: key(alg).kid });
    },
    unknownKid: async (alg = 'RS256') => signJwt(claims(), await generateSigningKey(alg)),
    hs256WithPublicKey: async () => hs256WithPublicKeyAsSecret(claims(), key('RS256')),
    algNone: async () => unsignedJwt(claims(), { kid: key('RS256').kid }),
  };

  async function stop(): Promise<void> {
    if (!running) return;
    running = false;
    server.closeAllConnections();
    await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  }

  async function start(): Promise<void> {
    if (running) return;
    await listen(port);
    running = true;
  }

  return {
    issuer,
    port,
    audience,
    resource,
    tenant,
    clients: { service: { id: SERVICE_CLIENT, secret: serviceSecret }, device: { id: DEVICE_CLIENT } },
    keys: () => [...keys],
    key,
    jwks: () => ({ keys: published.map((k) => k.publicJwk) }),
    hits: (path) => hits.get(path) ?? 0,
    resetHits: () => hits.clear(),
    clientCredentialsToken,
    deviceFlow,
    deviceFlowToken: async (user, o) => (await deviceFlow(user, o)).accessToken,
    async rotateKeys(o = {}) {
      const fresh = [await generateSigningKey('RS256'), await generateSigningKey('ES256')];
      published = o.keepPrevious ? [...fresh, ...published] : fresh;
      keys = fresh;
      provider = buildProvider();
      attach();
    },
    stop,
    start,
    close: stop,
    claims,
    sign,
    forge,
  };
}
