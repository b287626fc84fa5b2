import type { Command } from 'commander';
import { SteleError } from '../../core/errors.js';
import { drainQueue, hooksStatus, type InstallOptions, installHooks, uninstallHooks } from '../../sources/git-hooks.js';
import { out } from '../client.js';

/** `stele hooks install|uninstall|status|drain`: the git hooks (clients/git/stele-hook). */
export function hooksCommands(program: Command): void {
  const hooks = program.command('hooks').description('git hooks that record commits, rewrites and pushes in the log');

  hooks
    .command('install')
    .description(
      'install the git hooks into a repository (core.hooksPath respected; existing hooks kept and run first; idempotent)',
    )
    .option('--repo <dir>', 'the repository (default: the current directory)')
    .option('--server', 'server hooks for a repository others push to: post-receive (pusher, signature checks)')
    .option('--require-log', 'with --server: also pre-receive, refusing pushes while the log is unreachable')
    .option('--url <url>', 'server URL, saved as git config stele.url (default: $STELE_URL or http://127.0.0.1:7433)')
    .option('--token-file <file>', 'a file holding the API key, saved as stele.tokenFile (else the hooks use $STELE_TOKEN)')
    .option('--client <client>', 'how the hooks send: curl, stele or auto (curl when installed), saved as stele.client')
    .option('--stele-command <cmd>', 'how the hooks run the stele CLI with --client stele (default: stele)')
    .option('--timeout <seconds>', 'per request, saved as stele.timeout (default 10)')
    .option('--name <name>', "the repository's name in events, saved as stele.repo (default: origin's URL, else the path)")
    .option('--json', 'print JSON')
    .action((opts: Omit<InstallOptions, 'command'> & { steleCommand?: string; json?: boolean; requireLog?: boolean }) => {
      const { steleCommand, json, ...rest } = opts;
      const r = installHooks({ ...rest, ...(steleCommand !== undefined ? { command: steleCommand } : {}) });
      if (json) {
        out(r);
        return;
      }
      const names = [...r.installed, ...r.unchanged].filter((n) => n !== 'stele-hook');
      console.log(`Stele ${opts.server ? 'server ' : ''}hooks in ${r.hooksDir}: ${names.join(', ')}`);
      if (r.installed.length === 0) console.log('  already installed; nothing changed');
      for (const n of r.chained) console.log(`  your existing ${n} hook is kept as ${n}.pre-stele and runs first`);
      for (const n of r.removed) console.log(`  removed ${n} (install again with --require-log to keep it)`);
      for (const [k, v] of Object.entries(r.config)) console.log(`  git config ${k} ${v}`);
      console.log(`  queue: ${r.queue} (sent in the background; stele hooks status shows it)`);
      for (const w of r.warnings) console.error(`stele: warning: ${w}`);
    });

  hooks
    .command('uninstall')
    .description("remove Stele's hooks and put back the hooks they chained (config and queue stay)")
    .option('--repo <dir>', 'the repository (default: the current directory)')
    .option('--json', 'print JSON')
    .action((opts: { repo?: string; json?: boolean }) => {
      const r = uninstallHooks(opts);
      if (opts.json) {
        out(r);
        return;
      }
      if (r.removed.length === 0) console.log(`no Stele hooks in ${r.hooksDir}`);
      else console.log(`removed ${r.removed.join(', ')} from ${r.hooksDir}`);
      for (const n of r.restored) console.log(`  ${n}: your earlier hook is back`);
      if (r.queued)
        console.error(`stele: warning: ${r.queued} events are still queued and will not be sent; stele hooks drain first`);
    });

  hooks
    .command('status')
    .description('the hooks installed, their configuration, what is queued or was rejected, recent problems')
    .option('--repo <dir>', 'the repository (default: the current directory)')
    .option('--json', 'print JSON')
    .action((opts: { repo?: string; json?: boolean }) => {
      const s = hooksStatus(opts);
      if (opts.json) {
        out(s);
        return;
      }
      console.log(
        `hooks:    ${s.hooks.map((h) => (h.chained ? `${h.name} (+${h.name}.pre-stele)` : h.name)).join(', ') || 'none'}`,
      );
      console.log(`          in ${s.hooksDir}`);
      for (const [k, v] of Object.entries(s.config)) console.log(`config:   ${k} ${v}`);
      console.log(`queued:   ${s.queued} events (${s.queue})`);
      console.log(`rejected: ${s.rejected} events${s.rejected ? ` (${s.rejectedFile})` : ''}`);
      if (s.problems.length) console.log(`recent problems (${s.log}):\n  ${s.problems.join('\n  ')}`);
    });

  hooks
    .command('drain')
    .description('send the queued events now, in the foreground')
    .option('--repo <dir>', 'the repository (default: the current directory)')
    .option('--json', 'print JSON')
    .action((opts: { repo?: string; json?: boolean }) => {
      const r = drainQueue(opts);
      if (opts.json) {
        out(r);
        return;
      }
      if (!r.sent)
        throw new SteleError('not_sent', `could not send the queue (${r.queued} events left); stele hooks status tells why`, 503);
      console.log('queue sent');
    });
}
