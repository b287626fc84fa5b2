#!/usr/bin/env node
/** The `stele` command line. */
import { Command, Option } from 'commander';
import { SteleError } from '../core/errors.js';
import { policySchema } from '../policy/schema.js';
import { keyCreateCommand, keyListCommand, keyRevokeCommand, policyReloadCommand } from './commands/apikeys.js';
import { appendCommand } from './commands/append.js';
import { checkpointCommand } from './commands/checkpoint.js';
import { exportCommand } from './commands/export.js';
import { eraseCommand, holdAddCommand, holdListCommand, holdReleaseCommand, retentionRunCommand } from './commands/forget.js';
import { hooksCommands } from './commands/hooks.js';
import { importCommands } from './commands/import.js';
import { initCommand } from './commands/init.js';
import { reindexCommand, rotateCommand } from './commands/keys-admin.js';
import { policyCheckCommand } from './commands/policy.js';
import { proveCommand } from './commands/prove.js';
import { searchCommand } from './commands/search.js';
import { serveCommand } from './commands/serve.js';
import { subjectHashCommand } from './commands/subject-hash.js';
import { verifyCommand } from './commands/verify.js';
import { verifyBundleCommand } from './commands/verify-bundle.js';
import { tokenOptions } from './options.js';

// Everything the CLI and the server create is owner-only (data directories, exports, spools);
// explicit modes say so too, this catches what a library creates with its defaults (SQLite).
process.umask(0o077);

const program = new Command('stele')
  .description('Stele: a tamper-evident audit log (RFC 6962 Merkle log in the C2SP formats)')
  .version('0.1.0')
  .showHelpAfterError();

const dirOption = () => new Option('--dir <dir>', 'data directory (default: $STELE_DIR or ./stele-data)');
const urlOption = () => new Option('--url <url>', 'server URL (default: $STELE_URL or http://127.0.0.1:7433)');

program
  .command('init')
  .description('create a data directory with a fresh signing key and an admin API key')
  .addOption(dirOption())
  .option('--origin <origin>', "the log origin, the checkpoint's first line (default: <hostname>/stele)")
  .option('--json', 'print one JSON object')
  .action(initCommand);

program
  .command('serve')
  .description('run the server on a data directory (created on first start)')
  .addOption(dirOption())
  .option('--listen <host:port>', 'address to listen on', '127.0.0.1:7433')
  .option('--origin <origin>', 'origin for a new data directory')
  .option('--checkpoint-interval <ms>', 'least time between checkpoints', '100')
  .option('--body-limit <bytes>', 'largest request body', String(16 * 1024 * 1024))
  .option('--ingest-workers <n>', 'threads that parse and encode events (default: cores - 1, at least 1; 0: main thread)')
  .option('--log-level <level>', 'server log level', 'info')
  .option('--policy <file>', "policy file (default: $STELE_POLICY, else the data directory's stele.policy.yaml)")
  .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate chain (with --tls-key)')
  .option('--tls-key <file>', 'the PEM private key of --tls-cert')
  .option('--tls-client-ca <file>', 'accept client certificates signed by this PEM CA (mutual TLS; principal = the CN)')
  .option(
    '--rate-limit <n>',
    'requests per minute per principal, appends apart (they get 503 + Retry-After when overloaded)',
    '6000',
  )
  .option('--anonymous-limit <n>', 'requests per minute per address without credentials (/log/ and /healthz apart)', '1200')
  .option('--denial-limit <n>', 'refusals of one credential from one address per minute before it gets 429 unchecked', '60')
  .option('--request-timeout <duration>', 'most time to receive a whole request (headers and body)', '60s')
  .option('--headers-timeout <duration>', "most time to receive a request's headers (and a TLS handshake)", '10s')
  .option('--idle-timeout <duration>', 'most time a connection may sit idle during a request or response', '2m')
  .option('--keep-alive-timeout <duration>', 'how long an idle keep-alive connection waits for its next request', '72s')
  .option('--max-connections <n>', 'most open connections; more are closed as they arrive', '4096')
  .option(
    '--max-body-memory <bytes>',
    'most bytes of request bodies held at once; more get 503 + Retry-After unread',
    String(256 * 1024 * 1024),
  )
  .option('--max-queued-events <n>', 'events waiting to be written before appends are answered 503 + Retry-After', '100000')
  .option('--trust-proxy <addresses>', 'reverse proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For names the client')
  .action(serveCommand);

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
  .option('--wait', "wait for a checkpoint and print each entry's inclusion proof")
  .action(appendCommand);

program
  .command('verify')
  .description('verify a whole log: signature, every entry, every tile, and consistency with an old checkpoint')
  .addOption(dirOption())
  .addOption(urlOption())
  .option('--vkey <key>', "verifier key (required with --url; default with --dir: the directory's key)")
  .option('--since <file>', 'an older checkpoint the log must be consistent with')
  .option('--json', 'print the result as JSON')
  .action(verifyCommand);

program
  .command('checkpoint')
  .description('print the latest signed checkpoint (verified when the key is known)')
  .addOption(dirOption())
  .addOption(urlOption())
  .option('--vkey <key>', 'verifier key')
  .option('--json', 'print origin, size and root as JSON')
  .action(checkpointCommand);

program
  .command('prove')
  .description('print an inclusion (--index) or consistency (--from) proof after checking it against signed checkpoints')
  .option('--index <n>', 'entry index for an inclusion proof')
  .option('--size <n>', 'tree size for the inclusion proof (default: latest checkpoint)')
  .option('--from <n|file>', 'older tree size, or a saved signed checkpoint, for a consistency proof')
  .option('--to <n|file>', 'newer tree size or saved checkpoint (default: latest checkpoint)')
  .addOption(dirOption())
  .addOption(urlOption())
  .option('--vkey <key>', 'verifier key')
  .action(proveCommand);

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
    .option('--count', 'also print how many entries match'),
).action(searchCommand);

apiOptions(
  program
    .command('export')
    .description('export the events a query matches as JSON Lines, CSV, or an evidence bundle (streamed)')
    .argument('[query...]', 'the query, as for search; none: everything')
    .option('--format <format>', 'jsonl, csv or bundle', 'jsonl')
    .option('--order <order>', 'asc (oldest first) or desc', 'asc')
    .option('--output <file>', 'write to a file (default: standard output)'),
).action(exportCommand);

program
  .command('verify-bundle')
  .description('verify an evidence bundle offline: checkpoint signature, every entry, proof, event and message key')
  .argument('<file>', 'the .stele-bundle.jsonl file (- reads standard input)')
  .option('--vkey <key>', "the log's verifier key to trust (default: the bundle's own key, with a warning)")
  .option('--url <url>', 'also check that the live log (with --vkey) still extends the bundle (no fork, no rollback)')
  .option('--json', 'print the result as JSON (also when the check fails: ok false, and the error)')
  .action(verifyBundleCommand);

const retention = program.command('retention').description('retention tiers (stele.policy.yaml)');
apiOptions(
  retention.command('run').description('expire now: destroy the data keys of expired (tier, day) pairs not under a legal hold'),
).action(retentionRunCommand);

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
).action(holdAddCommand);
apiOptions(hold.command('list').description('list legal holds').option('--all', 'include released holds')).action(
  holdListCommand,
);
apiOptions(
  hold
    .command('release')
    .description('release a legal hold')
    .argument('<id>', 'hold id')
    .requiredOption('--reason <text>', 'why (recorded in the log)'),
).action(holdReleaseCommand);

apiOptions(
  program
    .command('erase')
    .description('right to erasure: destroy the data keys of every event about a subject (proofs keep verifying)')
    .requiredOption('--subject <subject>', 'the data subject (the events\' "subject" field)')
    .requiredOption('--reason <text>', 'why (recorded in the log)'),
).action(eraseCommand);

program
  .command('reindex')
  .description('rebuild the query store from the log and the key store (stop the server first)')
  .addOption(dirOption())
  .option('--json', 'print JSON')
  .action(reindexCommand);

program
  .command('subject-hash')
  .description("the keyed hashes that stand for a value (a person) in the log's own records and erasure events")
  .argument('<value...>', 'values to hash, e.g. alice@example.com')
  .addOption(dirOption())
  .option('--json', 'print JSON')
  .action(subjectHashCommand);

program
  .command('master-key')
  .description('the master key that wraps the data keys')
  .command('rotate')
  .description('re-wrap every data key under a new master key; the log is untouched (stop the server first)')
  .addOption(dirOption())
  .option('--json', 'print JSON')
  .action(rotateCommand);

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
).action(keyCreateCommand);
apiOptions(keys.command('list').description('list API keys').option('--all', 'include revoked keys')).action(keyListCommand);
apiOptions(
  keys
    .command('revoke')
    .description('revoke an API key: requests with it are refused from now on')
    .argument('<name>', 'the key name')
    .requiredOption('--reason <text>', 'why (recorded in the log)'),
).action(keyRevokeCommand);

const policy = program.command('policy').description('the policy file (stele.policy.yaml)');
policy
  .command('schema')
  .description('print the JSON Schema of stele.policy.yaml (for editors and CI validators)')
  .action(() => {
    process.stdout.write(`${JSON.stringify(policySchema, null, 2)}\n`);
  });
apiOptions(policy.command('reload').description('make the running server load its policy file again (as SIGHUP does)')).action(
  policyReloadCommand,
);
policy
  .command('check')
  .description('validate a policy file and list every problem as file:line:column (for CI)')
  .argument('[file]', 'policy file (default: $STELE_POLICY or ./stele.policy.yaml)')
  .option('--json', 'print the result as JSON')
  .option('--show-cedar', 'also print the Cedar schema and policies the roles and stele.cedar compile to')
  .action(policyCheckCommand);

importCommands(program);
hooksCommands(program);

program.parseAsync().catch((err: unknown) => {
  if (err instanceof SteleError) console.error(`stele: ${err.message}`);
  else console.error(`stele: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
