/**
 * Sign-in with an OpenID Connect issuer of the policy: the authorization code flow with PKCE
 * (RFC 7636, S256) as a public client, run by this page. Across the redirect to the IdP and back
 * only the PKCE verifier, the state and where to return are kept (sessionStorage, this tab,
 * removed on return); the access token never leaves memory.
 */

export interface IssuerLogin {
  issuer: string;
  label: string;
  client_id: string;
  scopes: string[];
  params: Record<string, string>;
}

interface Pending {
  state: string;
  verifier: string;
  tokenEndpoint: string;
  clientId: string;
  redirectUri: string;
  params: Record<string, string>;
  hash: string;
}

const KEY = 'stele.oidc.pending';

const b64url = (b: Uint8Array) =>
  btoa(String.fromCharCode(...b))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
const random = (n: number) => b64url(crypto.getRandomValues(new Uint8Array(n)));

async function discover(issuer: string): Promise<{ authorization_endpoint: string; token_endpoint: string }> {
  const res = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
  if (!res.ok) throw new Error(`${issuer} did not answer its discovery document (HTTP ${res.status})`);
  const d = (await res.json()) as { issuer?: string; authorization_endpoint?: string; token_endpoint?: string };
  if (d.issuer !== issuer || !d.authorization_endpoint || !d.token_endpoint)
    throw new Error(`${issuer}'s discovery document names another issuer or lacks its endpoints`);
  return { authorization_endpoint: d.authorization_endpoint, token_endpoint: d.token_endpoint };
}

/** Leaves for the IdP's sign-in page; the IdP sends the browser back to `/` with a code. */
export async function startLogin(i: IssuerLogin): Promise<void> {
  const d = await discover(i.issuer);
  const verifier = random(32);
  const challenge = b64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  const pending: Pending = {
    state: random(16),
    verifier,
    tokenEndpoint: d.token_endpoint,
    clientId: i.client_id,
    redirectUri: `${location.origin}/`,
    params: i.params,
    hash: location.hash,
  };
  sessionStorage.setItem(KEY, JSON.stringify(pending));
  const u = new URL(d.authorization_endpoint);
  for (const [k, v] of Object.entries({
    ...i.params,
    response_type: 'code',
    client_id: i.client_id,
    redirect_uri: pending.redirectUri,
    scope: i.scopes.join(' '),
    state: pending.state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }))
    u.searchParams.set(k, v);
  location.assign(u.href);
}

/**
 * On return from the IdP (`?code=…&state=…` or `?error=…`): the access token, after checking the
 * state and exchanging the code with the PKCE verifier; null when this is not such a return.
 */
export async function finishLogin(): Promise<string | null> {
  const q = new URLSearchParams(location.search);
  if (!q.has('code') && !q.has('error')) return null;
  const saved = sessionStorage.getItem(KEY);
  sessionStorage.removeItem(KEY);
  const pending = saved ? (JSON.parse(saved) as Pending) : null;
  // The code leaves the address bar (and history) at once.
  history.replaceState(null, '', `/${pending?.hash ?? ''}`);
  if (q.has('error')) throw new Error(`the identity provider refused: ${q.get('error_description') ?? q.get('error')}`);
  if (!pending || q.get('state') !== pending.state)
    throw new Error('this sign-in was not started here (state mismatch): sign in again');
  const body = new URLSearchParams({
    ...pending.params,
    grant_type: 'authorization_code',
    code: q.get('code') as string,
    redirect_uri: pending.redirectUri,
    client_id: pending.clientId,
    code_verifier: pending.verifier,
  });
  const res = await fetch(pending.tokenEndpoint, { method: 'POST', body, headers: { accept: 'application/json' } });
  const t = (await res.json().catch(() => ({}))) as { access_token?: string; error?: string; error_description?: string };
  if (!res.ok || !t.access_token)
    throw new Error(`the token request failed: ${t.error_description ?? t.error ?? `HTTP ${res.status}`}`);
  return t.access_token;
}
