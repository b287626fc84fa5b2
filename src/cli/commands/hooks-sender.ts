/**
 * The background sender of the client git hooks, as the hooks start it:
 * `node hooks-sender.js <common git dir>` (src/sources/git-send.ts does the work). Started detached
 * from the hook, with its output going nowhere: problems go to `<git dir>/stele/log`.
 */
import { getPriority, setPriority } from 'node:os';
import { note, runSender, senderPaths } from '../../sources/git-send.js';

// A hook's terminal closing, or Ctrl-C at it, must not lose a batch half sent (it would be sent again, once).
for (const sig of ['SIGINT', 'SIGHUP'] as const) process.on(sig, () => {});

// The hook started us with nice(1) where it could; else be nice from here on. git comes first.
try {
  setPriority(Math.max(getPriority(), 10));
} catch {
  // not allowed: stay as we are
}

const dir = process.argv[2];
if (!dir) {
  console.error('usage: hooks-sender.js <common git directory>');
  process.exit(2);
}
runSender(dir, { background: true }).then(
  () => process.exit(0),
  (err: unknown) => {
    note(senderPaths(dir), `sender failed: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
