import { SteleError } from '../../errors.js';
import { formatDuration, formatKeep, loadPolicyFile, type PolicyProblem } from '../../policy/policy.js';

/** The policy file `stele policy check` reads when none is named: $STELE_POLICY or ./stele.policy.yaml. */
export function defaultPolicyFile(): string {
  return process.env.STELE_POLICY || 'stele.policy.yaml';
}

/**
 * `stele policy check [file]`: validates a policy file (for CI). Prints a one-line summary; for a
 * bad file throws the SteleError listing every problem as file:line:column: path: message, one per
 * line (with --json, first prints `{"ok": false, "file", "error": {"code", "message"}, "problems": [...]}`;
 * `problems` is empty when the file is missing).
 */
export async function policyCheckCommand(file: string | undefined, opts: { json?: boolean }): Promise<void> {
  const path = file ?? defaultPolicyFile();
  let policy: ReturnType<typeof loadPolicyFile>;
  try {
    policy = loadPolicyFile(path);
  } catch (err) {
    if (opts.json && err instanceof SteleError) {
      const problems = (err.detail?.problems as PolicyProblem[] | undefined) ?? [];
      console.log(JSON.stringify({ ok: false, file: path, error: { code: err.code, message: err.message }, problems }));
    }
    throw err;
  }
  const r = policy.retention;
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
      }),
    );
    return;
  }
  const tiers = r.tiers.map(
    (t) => `${t.name} ${formatKeep(t.keepMs)}${t.encrypt ? '' : ' unencrypted'}${t.name === r.defaultTier ? ' (default)' : ''}`,
  );
  const count = `${r.tiers.length} tier${r.tiers.length === 1 ? '' : 's'}`;
  console.log(`ok: ${path} (sha256 ${policy.sha256}): ${count}: ${tiers.join(', ')}`);
}
