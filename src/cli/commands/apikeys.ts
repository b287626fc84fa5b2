import { api, apiTarget, out, post, type Target } from '../client.js';

interface KeyInfo {
  id: string;
  name: string;
  roles: string[];
  restrict?: { sources?: string[]; actions?: string[] };
  created: string;
  created_by: string;
  revoked?: { at: string; by: string; reason: string };
}

const scope = (k: KeyInfo) =>
  [
    k.restrict?.sources ? `sources ${k.restrict.sources.join(',')}` : '',
    k.restrict?.actions ? `actions ${k.restrict.actions.join(',')}` : '',
  ]
    .filter(Boolean)
    .join('; ');

export interface KeyCreateOptions extends Target {
  name: string;
  role: string[];
  source?: string[];
  action?: string[];
}

/** `stele keys create`: prints the key once; the server keeps only its hash. */
export async function keyCreateCommand(opts: KeyCreateOptions): Promise<void> {
  const k = await post<KeyInfo & { key: string }>(opts, '/v1/keys', {
    name: opts.name,
    roles: opts.role,
    ...(opts.source?.length ? { sources: opts.source } : {}),
    ...(opts.action?.length ? { actions: opts.action } : {}),
  });
  if (opts.json) return out(k);
  console.log(k.key);
  console.error(
    `API key "${k.name}" (id ${k.id}), roles ${k.roles.join(', ')}${scope(k) ? `, may only append ${scope(k)}` : ''}. ` +
      'This is the only time it is shown: store it now (e.g. in your secret manager).',
  );
}

export async function keyListCommand(opts: Target & { all?: boolean }): Promise<void> {
  const { url, token } = apiTarget(opts);
  const r = await api<{ keys: KeyInfo[] }>(url, `/v1/keys${opts.all ? '?all=true' : ''}`, { token });
  if (opts.json) return out(r.keys);
  if (r.keys.length === 0) return console.log('no API keys');
  for (const k of r.keys) {
    const state = k.revoked ? `revoked ${k.revoked.at} by ${k.revoked.by}: "${k.revoked.reason}"` : 'active';
    console.log(
      `${k.name}  id ${k.id}  roles ${k.roles.join(',')}${scope(k) ? `  (${scope(k)})` : ''}  created ${k.created} by ${k.created_by}  ${state}`,
    );
  }
}

export async function keyRevokeCommand(name: string, opts: Target & { reason: string }): Promise<void> {
  const k = await post<KeyInfo>(opts, `/v1/keys/${encodeURIComponent(name)}/revoke`, { reason: opts.reason });
  if (opts.json) return out(k);
  console.log(`API key "${k.name}" (id ${k.id}) revoked; requests with it are refused from now on`);
}

/** `stele policy reload`: the running server loads its policy file again (as SIGHUP does). */
export async function policyReloadCommand(opts: Target): Promise<void> {
  const r = await post<{ index: number; source: string; sha256: string; cedar?: { source: string; sha256: string } }>(
    opts,
    '/v1/policy/reload',
  );
  if (opts.json) return out(r);
  console.log(
    `policy ${r.source} (sha256 ${r.sha256.slice(0, 16)}…)${r.cedar ? ` with ${r.cedar.source}` : ''} in force; recorded as entry ${r.index}`,
  );
}
