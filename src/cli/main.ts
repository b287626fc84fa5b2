#!/usr/bin/env node
/**
 * The `stele` command line: every command, option and help text is declared here; each command's
 * code (and through it fastify, Cedar, SQLite, jose...) is loaded only when that command runs, so
 * `stele --version` and `stele --help` start in a fraction of the time.
 */
import { Command, Option } from 'commander';
import { type FlagName, helpText, SERVE_SETTINGS, SETTINGS } from '../core/config/settings.js';
import { printError } from './errors.js';
import { tokenOptions } from './options.js';

// Everything the CLI and the server create is owner-only (data directories, exports, spools);
// explicit modes say so too, this catches what a library creates with its defaults (SQLite).
process.umask(0o077);

/**
 * A command action that imports its module when the command runs. `name` must be a function the
 * module exports (checked by the compiler); commander's arguments are passed on unchanged.
 */
function lazy<M, K extends keyof M>(load: () => Promise<M>, name: K): (...args: unknown[]) => Promise<void> {
  return async (...args) => {
    const action = (await load())[name] as (...a: unknown[]) => unknown;
    await action(...args);
  };
}

const program = new Command('stele')
  .description('Stele: a tamper-evident audit log (RFC 6962 Merkle log in the C2SP formats)')
  .version('0.1.0')
  .showHelpAfterError();

/** The option of a setting of the table (src/core/config/settings.ts): its flag, help and default. */
function settingOption(name: FlagName, doc?: string): Option {
  const s = SETTINGS[name];
  return new Option(`${s.flag} ${s.arg}`, helpText(name, doc));
}
const dirOption = () => settingOption('dir');
const urlOption = () => settingOption('url');
/** verify, checkpoint and prove read a data directory unless given a server. */
const logUrlOption = () => new Option('--url <url>', 'read the log from this server (with --vkey) instead of --dir');

program
  .command('init')
  .description('create a data directory with a fresh signing key and an admin API key')
  .addOption(dirOption())
  .addOption(settingOption('origin', "the log origin, the checkpoint's first line"))
  .option('--json', 'print one JSON object')
  .action(lazy(() => import('./commands/init.js'), 'initCommand'));

const serve = program.command('serve').description('run the server on a data directory (created on first start)');
for (const name of SERVE_SETTINGS) serve.addOption(settingOption(name));
serve.action(lazy(() => import('./commands/serve.js'), 'serveCommand'));

program
  .command('append')
  .description('append events (JSON or NDJSON) from arguments, a file or standard input')
  .argument('[events...]', 'events as JSON text; none reads --file or standard input')
  .option('--file <file>', 'read events from a file (JSON object, array or NDJSON)')
  .addOption(urlOption());
tokenOptions(program.commands.at(-1) as Command)
  .addOption(dirOption())
  .option('--local', 'append straight into --dir without a server (the directory must not be in use)')
  .option('--batch <n>', 'events per request', '1000')
  .option(
    '--wait',
    "wait until the events are in a signed checkpoint (printing each entry's inclusion proof) and searchable (read your writes)",
  )
  .option('--wait-timeout <duration>', 'with --wait: how long to wait for the index to make them searchable', '30s')
  .action(lazy(() => import('./commands/append.js'), 'appendCommand'));

program
  .command('verify')
  .description('verify a whole log: signature, every entry, every tile, and consistency with an old checkpoint')
  .addOption(dirOption())
  .addOption(logUrlOption())
  .option('--vkey <key>', "verifier key (required with --url; default with --dir: the directory's key)")
  .option('--since <file>', 'an older checkpoint the log must be consistent with')
  .option(
    '--witness <vkey>',
    "a witness's cosignature verifier key: the checkpoint must carry its cosignature (repeat for several)",
    (v: string, all: string[]) => [...all, v],
    [],
  )
  .option('--witness-quorum <k>', 'how many of the --witness cosignatures are required (default: all)')
  .option('--json', 'print the result as JSON')
  .action(lazy(() => import('./commands/verify.js'), 'verifyCommand'));

const monitor = program
  .command('monitor')
  .description('keep verifying a log from outside: each new checkpoint incrementally, in full at start and every --full-every')
  .addOption(dirOption())
  .addOption(logUrlOption())
  .option('--vkey <key>', "verifier key (required with --url; default with --dir: the directory's key)")
  .option('--state <file>', 'keep the last verified checkpoint here, so a rollback or fork while the monitor was down is caught')
  .option(
    '--witness <vkey>',
    "a witness's cosignature verifier key: the checkpoint must carry its cosignature (repeat for several)",
    (v: string, all: string[]) => [...all, v],
    [],
  )
  .option('--witness-quorum <k>', 'how many of the --witness cosignatures are required (default: all)')
  .option('--interval <duration>', 'how often to look for a new checkpoint', '10s')
  .option('--full-every <duration>', 'how often to verify the whole log again', '24h')
  .option('--once', 'one full verification, then exit 0 (verified) or 1')
  .option('--json', 'print each run as a JSON line')
  .option(
    '--report <url>',
    'record each run in the log of the Stele server at <url> as a stele.validation.run event (a key of a monitoring role: --token-file)',
  );
tokenOptions(monitor, 'API key for --report');
monitor.action(lazy(() => import('./commands/monitor.js'), 'monitorCommand'));

program
  .command('witness')
  .description('run a witness (c2sp.org/tlog-witness): cosign checkpoints of the given logs that extend what it cosigned before')
  .option('--dir <dir>', 'where the witness keeps its key and what it cosigned', 'stele-witness')
  .option('--name <name>', "the witness's name, on first start (default: <hostname>/witness)")
  .option('--log <vkey>', 'verifier key of a log to witness (repeat for several)', (v: string, all: string[]) => [...all, v], [])
  .option('--listen <host:port>', 'where to listen', '127.0.0.1:7380')
  .option('--log-level <level>', 'server log level', 'warn')
  .action(lazy(() => import('./commands/witness.js'), 'witnessCommand'));

program
  .command('checkpoint')
  .description('print the latest signed checkpoint (verified when the key is known)')
  .addOption(dirOption())
  .addOption(logUrlOption())
  .option('--vkey <key>', 'verifier key')
  .option('--json', 'print origin, size and root as JSON')
  .action(lazy(() => import('./commands/checkpoint.js'), 'checkpointCommand'));

program
  .command('prove')
  .description('print an inclusion (--index) or consistency (--from) proof after checking it against signed checkpoints')
  .option('--index <n>', 'entry index for an inclusion proof')
  .option('--size <n>', 'tree size for the inclusion proof (default: latest checkpoint)')
  .option('--from <n|file>', 'older tree size, or a saved signed checkpoint, for a consistency proof')
  .option('--to <n|file>', 'newer tree size or saved checkpoint (default: latest checkpoint)')
  .addOption(dirOption())
  .addOption(logUrlOption())
  .option('--vkey <key>', 'verifier key')
  .action(lazy(() => import('./commands/prove.js'), 'proveCommand'));

const apiOptions = (c: Command) => tokenOptions(c.addOption(urlOption())).addOption(dirOption()).option('--json', 'print JSON');

apiOptions(
  program
    .command('search')
    .description('search events: stele search actor:alice action:emacs.package.* since:7d "init.el"')
    .argument('[query...]', 'the query (fields, * wildcards, "full text", since:/until:, AND, OR, -negation); none: everything')
    .option('--limit <n>', 'most hits to show', '50')
    .option('--all', 'page through every hit')
    .option('--cursor <index>', 'continue after this entry (printed as "more: --cursor N")')
    .option('--order <order>', 'desc (newest first) or asc', 'desc')
    .option('--count', 'also print how many entries match')
    .option('--summary', 'instead of the hits: how every match spreads over time, actors, actions, sources, outcomes and tiers')
    .option('--after <index>', "answer once this entry (an append's index) is searchable (read your writes)"),
).action(lazy(() => import('./commands/search.js'), 'searchCommand'));

apiOptions(
  program
    .command('tail')
    .description('follow the events a query matches as they arrive (reconnects, resuming where it stopped)')
    .argument('[query...]', 'the query, as for search; none: everything')
    .option('--after <index>', 'start after this entry (default: from now on)'),
).action(lazy(() => import('./commands/tail.js'), 'tailCommand'));

apiOptions(
  program
    .command('export')
    .description('export the events a query matches as JSON Lines, CSV, or an evidence bundle (streamed)')
    .argument('[query...]', 'the query, as for search; none: everything')
    .option('--format <format>', 'jsonl, csv or bundle', 'jsonl')
    .option('--order <order>', 'asc (oldest first) or desc', 'asc')
    .option('--output <file>', 'write to a file (default: standard output)'),
).action(lazy(() => import('./commands/export.js'), 'exportCommand'));

program
  .command('verify-bundle')
  .description('verify an evidence bundle offline: checkpoint signature, every entry, proof, event and message key')
  .argument('<file>', 'the .stele-bundle.jsonl file (- reads standard input)')
  .option('--vkey <key>', "the log's verifier key to trust (default: the bundle's own key, with a warning)")
  .option('--url <url>', 'also check that the live log (with --vkey) still extends the bundle (no fork, no rollback)')
  .option('--tsa-ca <file>', "PEM certificates of the time-stamping authorities to trust: check the bundle's RFC 3161 timestamps")
  .option('--json', 'print the result as JSON (also when the check fails: ok false, and the error)')
  .action(lazy(() => import('./commands/verify-bundle.js'), 'verifyBundleCommand'));

const retention = program.command('retention').description('retention tiers (stele.policy.yaml)');
apiOptions(
  retention.command('run').description('expire now: destroy the data keys of expired (tier, day) pairs not under a legal hold'),
).action(lazy(() => import('./commands/forget.js'), 'retentionRunCommand'));

const hold = program.command('hold').description('legal holds: they block expiry and erasure');
apiOptions(
  hold
    .command('add')
    .description('place a legal hold on a tier, actor, subject and/or time range')
    .requiredOption('--reason <text>', 'why (recorded in the log)')
    .option('--tier <tier>', 'retention tier')
    .option('--actor <id>', 'actor id')
    .option('--subject <subject>', 'data subject')
    .option('--since <time>', 'from this receipt time (RFC 3339 or YYYY-MM-DD)')
    .option('--until <time>', 'until this receipt time (exclusive)'),
).action(lazy(() => import('./commands/forget.js'), 'holdAddCommand'));
apiOptions(hold.command('list').description('list legal holds').option('--all', 'include released holds')).action(
  lazy(() => import('./commands/forget.js'), 'holdListCommand'),
);
apiOptions(
  hold
    .command('release')
    .description('release a legal hold')
    .argument('<id>', 'hold id')
    .requiredOption('--reason <text>', 'why (recorded in the log)'),
).action(lazy(() => import('./commands/forget.js'), 'holdReleaseCommand'));

apiOptions(
  program
    .command('erase')
    .description('right to erasure: destroy the data keys of every event about a subject (proofs keep verifying)')
    .requiredOption('--subject <subject>', 'the data subject (the events\' "subject" field)')
    .requiredOption('--reason <text>', 'why (recorded in the log)'),
).action(lazy(() => import('./commands/forget.js'), 'eraseCommand'));

program
  .command('reindex')
  .description('rebuild the query store from the log and the key store (stop the server first)')
  .addOption(dirOption())
  .option('--json', 'print JSON')
  .action(lazy(() => import('./commands/keys-admin.js'), 'reindexCommand'));

program
  .command('subject-hash')
  .description("the keyed hashes that stand for a value (a person) in the log's own records and erasure events")
  .argument('<value...>', 'values to hash, e.g. alice@example.com')
  .addOption(dirOption())
  .option('--json', 'print JSON')
  .action(lazy(() => import('./commands/subject-hash.js'), 'subjectHashCommand'));

program
  .command('master-key')
  .description('the master key that wraps the data keys')
  .command('rotate')
  .description('re-wrap every data key under a new master key; the log is untouched (stop the server first)')
  .addOption(dirOption())
  .option('--json', 'print JSON')
  .action(lazy(() => import('./commands/keys-admin.js'), 'rotateCommand'));

const keys = program.command('keys').description('API keys for services (shown once; the server keeps their hashes)');
const collect = (v: string, prev: string[] = []) => [...prev, ...v.split(',').filter(Boolean)];
apiOptions(
  keys
    .command('create')
    .description('create an API key with one or more roles of the policy; prints the key once')
    .requiredOption('--name <name>', 'a name for the key (the ingest principal of what it appends)')
    .requiredOption('--role <role>', 'a role of the policy (repeat or comma-separate for several)', collect)
    .option('--source <glob>', 'may only append events from these source kinds (repeatable), e.g. kubernetes', collect)
    .option('--action <glob>', 'may only append these actions (repeatable), e.g. k8s.*', collect),
).action(lazy(() => import('./commands/apikeys.js'), 'keyCreateCommand'));
apiOptions(keys.command('list').description('list API keys').option('--all', 'include revoked keys')).action(
  lazy(() => import('./commands/apikeys.js'), 'keyListCommand'),
);
apiOptions(
  keys
    .command('revoke')
    .description('revoke an API key: requests with it are refused from now on')
    .argument('<name>', 'the key name')
    .requiredOption('--reason <text>', 'why (recorded in the log)'),
).action(lazy(() => import('./commands/apikeys.js'), 'keyRevokeCommand'));

const policy = program.command('policy').description('the policy file (stele.policy.yaml)');
policy
  .command('schema')
  .description('print the JSON Schema of stele.policy.yaml (for editors and CI validators)')
  .action(async () => {
    const { policySchema } = await import('../policy/schema.js');
    process.stdout.write(`${JSON.stringify(policySchema, null, 2)}\n`);
  });
apiOptions(policy.command('reload').description('make the running server load its policy file again (as SIGHUP does)')).action(
  lazy(() => import('./commands/apikeys.js'), 'policyReloadCommand'),
);
policy
  .command('check')
  .description('validate a policy file and list every problem as file:line:column (for CI)')
  .argument('[file]', 'policy file (default: $STELE_POLICY, else $STELE_DIR/stele.policy.yaml, else ./stele.policy.yaml)')
  .option('--json', 'print the result as JSON')
  .option('--show-cedar', 'also print the Cedar schema and policies the roles and stele.cedar compile to')
  .action(lazy(() => import('./commands/policy.js'), 'policyCheckCommand'));

const imp = program.command('import').description("import events from other systems' logs");
const cloudtrail = imp
  .command('cloudtrail')
  .description('import AWS CloudTrail log files (.json.gz or .json); resumable, and safe to repeat')
  .argument('<paths...>', 'log files, or directories searched recursively (e.g. an `aws s3 sync` of the trail bucket)')
  .addOption(urlOption());
tokenOptions(cloudtrail)
  .addOption(settingOption('dir', 'data directory whose admin.token to use'))
  .option('--batch <n>', 'events per request', '500')
  .option('--state <file>', 'journal of imported files (default: $XDG_STATE_HOME/stele/import-cloudtrail-<url hash>.jsonl)')
  .option('--force', 'send every file again, even those the journal lists (harmless: event ids derive from eventID)')
  .option('--retries <n>', 'retries of a request the server could not take (unreachable, 5xx, 429), with backoff', '5')
  .option('--json', 'print the summary as JSON')
  .action(lazy(() => import('./commands/import.js'), 'importCloudTrailCommand'));

const hooks = program.command('hooks').description('git hooks that record commits, rewrites and pushes in the log');
hooks
  .command('install')
  .description(
    'install the git hooks into a repository (core.hooksPath respected; existing hooks kept and run first; idempotent)',
  )
  .option('--repo <dir>', 'the repository (default: the current directory)')
  .option('--server', 'server hooks for a repository others push to: post-receive (pusher, signature checks)')
  .option('--require-log', 'with --server: also pre-receive, refusing pushes while the log is unreachable')
  .addOption(settingOption('url', 'server URL, saved as git config stele.url'))
  .option('--token-file <file>', 'a file holding the API key, saved as stele.tokenFile (else the hooks use $STELE_TOKEN)')
  .option('--client <client>', 'how the hooks send: curl, stele or auto (curl when installed), saved as stele.client')
  .option('--stele-command <cmd>', 'how the hooks run the stele CLI with --client stele (default: stele)')
  .option('--timeout <seconds>', 'per request, saved as stele.timeout (default 10)')
  .option('--name <name>', "the repository's name in events, saved as stele.repo (default: origin's URL, else the path)")
  .option('--json', 'print JSON')
  .action(lazy(() => import('./commands/hooks.js'), 'hooksInstallCommand'));
hooks
  .command('uninstall')
  .description(
    "remove Stele's hooks, put back the hooks they chained, remove the stele.* settings install added (the queue stays)",
  )
  .option('--repo <dir>', 'the repository (default: the current directory)')
  .option('--json', 'print JSON')
  .action(lazy(() => import('./commands/hooks.js'), 'hooksUninstallCommand'));
hooks
  .command('status')
  .description('the hooks installed, their configuration, what is queued or was rejected, recent problems')
  .option('--repo <dir>', 'the repository (default: the current directory)')
  .option('--json', 'print JSON')
  .action(lazy(() => import('./commands/hooks.js'), 'hooksStatusCommand'));
hooks
  .command('drain')
  .description('send the queued events now, in the foreground')
  .option('--repo <dir>', 'the repository (default: the current directory)')
  .option('--json', 'print JSON')
  .action(lazy(() => import('./commands/hooks.js'), 'hooksDrainCommand'));

program.parseAsync().catch((err: unknown) => {
  printError(err);
  process.exit(1);
});
