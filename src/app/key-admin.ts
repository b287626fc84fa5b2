/**
 * Creating and revoking API keys: the operations behind `stele keys ...` and /v1/keys. Each change
 * is appended to the log (never the key itself), and a key may only name roles the policy defines.
 */

import type { ApiKeyInfo, ApiKeyRecord, ApiKeyStore } from '../auth/apikeys.js';
import { SteleError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import type { Policy } from '../policy/policy.js';
import type { Audit } from './audit.js';

export interface KeyAdmin {
  apikeys: ApiKeyStore;
  audit: Audit;
  policy: Policy;
}

export interface NewKey {
  name: string;
  roles: string[];
  restrict?: ApiKeyRecord['restrict'];
}

export async function createApiKey(ctx: KeyAdmin, spec: NewKey, by: Principal): Promise<{ key: string; info: ApiKeyInfo }> {
  const known = new Set(ctx.policy.roles.map((r: { name: string }) => r.name));
  const unknown = spec.roles.filter((r) => !known.has(r));
  if (unknown.length > 0) {
    throw new SteleError(
      'bad_request',
      `no role ${unknown.map((r) => `"${r}"`).join(', ')} in the policy (${ctx.policy.source}); its roles: ${[...known].join(', ') || 'none'}`,
    );
  }
  const made = await ctx.apikeys.create({ ...spec, by: `${by.method}:${by.id}` });
  await ctx.audit.record('stele.key.create', by, { ...made.info });
  return made;
}

export async function revokeApiKey(ctx: KeyAdmin, name: string, reason: string, by: Principal): Promise<ApiKeyInfo> {
  const info = await ctx.apikeys.revoke(name, `${by.method}:${by.id}`, reason);
  await ctx.audit.record('stele.key.revoke', by, { ...info }, { reason });
  return info;
}
