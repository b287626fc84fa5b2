import { queryProblem } from '../../app/alerts.js';
import { defaultPolicyPath } from '../../app/datadir.js';
import { type Env, envValue, processEnv } from '../../core/config/env.js';
import { SteleError } from '../../core/errors.js';
import { Authorizer } from '../../policy/access.js';
import { formatDuration, formatKeep, loadPolicyFile, type PolicyProblem } from '../../policy/policy.js';
import { errorJson } from '../errors.js';

/**
 * The policy file `stele policy check` reads when none is named: $STELE_POLICY, else the policy of
 * the data directory $STELE_DIR names (the file `stele serve` would load), else ./stele.policy.yaml.
 */
export function defaultPolicyFile(env: Env = processEnv()): string {
  const dir = envValue(env, 'STELE_DIR');
  return envValue(env, 'STELE_POLICY') ?? (dir ? defaultPolicyPath(dir) : 'stele.policy.yaml');
}

/**
 * `stele policy check [file]`: validates a policy file and the stele.cedar beside it, if any, and
 * compiles both for Cedar (for CI). Prints a one-line summary (with --show-cedar, then the Cedar
 * schema and every policy); for a bad file throws the SteleError listing every problem as
 * file:line:column: path: message, one per line (with --json, first prints
 * `{"ok": false, "file", "error": {"code", "message"}, "problems": [...]}`; `problems` is empty when
 * the file is missing).
 */
export async function policyCheckCommand(file: string | undefined, opts: { json?: boolean; showCedar?: boolean }): Promise<void> {
  const path = file ?? defaultPolicyFile();
  let policy: ReturnType<typeof loadPolicyFile>;
  let authorizer: Authorizer;
  try {
    policy = loadPolicyFile(path, { queryProblem });
    authorizer = Authorizer.create(policy);
  } catch (err) {
    if (opts.json && err instanceof SteleError) {
      const problems = (err.detail?.problems as PolicyProblem[] | undefined) ?? [];
      console.log(JSON.stringify({ ok: false, file: path, error: errorJson(err), problems }));
    }
    throw err;
  }
  const r = policy.retention;
  const compiled = authorizer.describe();
  if (opts.json) {
    console.log(
      JSON.stringify({
        ok: true,
        file: path,
        sha256: policy.sha256,
        retention: {
          schedule: formatDuration(r.scheduleMs),
          default: r.defaultTier,
          tiers: r.tiers.map((t) => ({
            name: t.name,
            keep: formatKeep(t.keepMs),
            keep_ms: t.keepMs,
            encrypt: t.encrypt,
            actions: t.actions,
            sources: t.sources,
          })),
        },
        identity: { issuers: policy.identity.issuers },
        roles: policy.roles,
        cedar: policy.cedar ? { file: policy.cedar.source, sha256: policy.cedar.sha256 } : null,
        ...(opts.showCedar ? { compiled } : {}),
      }),
    );
    return;
  }
  const tiers = r.tiers.map(
    (t) => `${t.name} ${formatKeep(t.keepMs)}${t.encrypt ? '' : ' unencrypted'}${t.name === r.defaultTier ? ' (default)' : ''}`,
  );
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  const roles = policy.roles.map((role) => role.name);
  const parts = [
    `${count(r.tiers.length, 'tier')}: ${tiers.join(', ')}`,
    `${count(roles.length, 'role')}${roles.length > 0 ? `: ${roles.join(', ')}` : ''}`,
  ];
  if (policy.identity.issuers.length > 0) parts.push(count(policy.identity.issuers.length, 'OIDC issuer'));
  if (policy.cedar) parts.push(`Cedar ${policy.cedar.source} (sha256 ${policy.cedar.sha256})`);
  console.log(`ok: ${path} (sha256 ${policy.sha256}): ${parts.join('; ')}`);
  if (opts.showCedar) console.log(`\n// Cedar schema\n${compiled.schema}\n// Cedar policies\n${compiled.policies}`);
}
