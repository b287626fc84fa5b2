#!/usr/bin/env node
/** The `stele` command line. */
import { Command, Option } from 'commander';
import { SteleError } from '../errors.js';
import { appendCommand } from './commands/append.js';
import { checkpointCommand } from './commands/checkpoint.js';
import { initCommand } from './commands/init.js';
import { proveCommand } from './commands/prove.js';
import { serveCommand } from './commands/serve.js';
import { verifyCommand } from './commands/verify.js';

const program = new Command('stele')
  .description('Stele: a tamper-evident audit log (RFC 6962 Merkle log in the C2SP formats)')
  .version('0.1.0')
  .showHelpAfterError();

const dirOption = () => new Option('--dir <dir>', 'data directory (default: $STELE_DIR or ./stele-data)');
const urlOption = () => new Option('--url <url>', 'server URL (default: $STELE_URL or http://127.0.0.1:7433)');

program
  .command('init')
  .description('create a data directory with a fresh signing key and admin token')
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
  .action(serveCommand);

program
  .command('append')
  .description('append events (JSON or NDJSON) from arguments, a file or standard input')
  .argument('[events...]', 'events as JSON text; none reads --file or standard input')
  .option('--file <file>', 'read events from a file (JSON object, array or NDJSON)')
  .addOption(urlOption())
  .option('--token <token>', "bearer token (default: $STELE_TOKEN or the data directory's admin.token)")
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
  .description('print and check an inclusion proof (--index) or a consistency proof (--from)')
  .option('--index <n>', 'entry index for an inclusion proof')
  .option('--size <n>', 'tree size for the inclusion proof (default: latest checkpoint)')
  .option('--from <n>', 'older tree size for a consistency proof')
  .option('--to <n>', 'newer tree size (default: latest checkpoint)')
  .addOption(dirOption())
  .addOption(urlOption())
  .option('--vkey <key>', 'verifier key')
  .action(proveCommand);

program.parseAsync().catch((err: unknown) => {
  if (err instanceof SteleError) console.error(`stele: ${err.message}`);
  else console.error(`stele: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
