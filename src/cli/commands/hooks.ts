/** `stele hooks install|uninstall|status|drain`: the git hooks (clients/git/stele-hook); main.ts declares the commands. */
import { processEnv } from '../../core/config/env.js';
import { SteleError } from '../../core/errors.js';
import { plural } from '../../core/plural.js';
import { drainQueue, hooksStatus, type InstallOptions, installHooks, uninstallHooks } from '../../sources/git-hooks.js';
import { out } from '../client.js';

export function hooksInstallCommand(
  opts: Omit<InstallOptions, 'command'> & { steleCommand?: string; json?: boolean; requireLog?: boolean },
): void {
  const { steleCommand, json, ...rest } = opts;
  const r = installHooks({ ...rest, ...(steleCommand !== undefined ? { command: steleCommand } : {}) }, processEnv());
  if (json) {
    out(r);
    return;
  }
  const names = [...r.installed, ...r.unchanged].filter((n) => n !== 'stele-hook');
  console.log(`Stele ${opts.server ? 'server ' : ''}hooks in ${r.hooksDir}: ${names.join(', ')}`);
  if (r.installed.length === 0) console.log('  already installed; nothing changed');
  for (const n of r.chained) console.log(`  your existing ${n} hook is kept as ${n}.pre-stele and runs first`);
  for (const n of r.removed) if (n === 'pre-receive') console.log(`  removed ${n} (install again with --require-log to keep it)`);
  for (const [k, v] of Object.entries(r.config)) console.log(`  git config ${k} ${v}`);
  for (const n of r.removed)
    if (n !== 'pre-receive') console.log(`  removed ${n}: no longer needed (the sender reads the reflogs)`);
  console.log(`  queue: ${r.queue} (sent in the background; stele hooks status shows it)`);
  for (const w of r.warnings) console.error(`stele: warning: ${w}`);
}

export function hooksUninstallCommand(opts: { repo?: string; json?: boolean }): void {
  const r = uninstallHooks(opts);
  if (opts.json) {
    out(r);
    return;
  }
  if (r.removed.length === 0) console.log(`no Stele hooks in ${r.hooksDir}`);
  else console.log(`removed ${r.removed.join(', ')} from ${r.hooksDir}`);
  for (const n of r.restored) console.log(`  ${n}: your earlier hook is back`);
  if (r.unset.length) console.log(`  git config --unset ${r.unset.join(', ')}`);
  if (r.queued)
    console.error(
      `stele: warning: ${plural(r.queued, 'event is', 'events are')} still queued and will not be sent; stele hooks drain first`,
    );
}

export function hooksStatusCommand(opts: { repo?: string; json?: boolean }): void {
  const s = hooksStatus(opts);
  if (opts.json) {
    out(s);
    return;
  }
  console.log(`hooks:    ${s.hooks.map((h) => (h.chained ? `${h.name} (+${h.name}.pre-stele)` : h.name)).join(', ') || 'none'}`);
  console.log(`          in ${s.hooksDir}`);
  for (const [k, v] of Object.entries(s.config)) console.log(`config:   ${k} ${v}`);
  console.log(`queued:   ${plural(s.queued, 'event')} (${s.queue})`);
  console.log(`rejected: ${plural(s.rejected, 'event')}${s.rejected ? ` (${s.rejectedFile})` : ''}`);
  if (s.problems.length) console.log(`recent problems (${s.log}):\n  ${s.problems.join('\n  ')}`);
}

export async function hooksDrainCommand(opts: { repo?: string; json?: boolean }): Promise<void> {
  const r = await drainQueue(opts);
  if (opts.json) {
    out(r);
    return;
  }
  if (!r.sent)
    throw new SteleError(
      'not_sent',
      `could not send the queue (${plural(r.queued, 'event')} left); stele hooks status tells why`,
    );
  console.log('queue sent');
}
