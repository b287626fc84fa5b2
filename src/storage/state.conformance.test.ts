/**
 * The conformance suites of the state stores (data keys, legal holds, API keys) on every driver:
 * the fs driver in a fresh temporary data directory each time, and the in-memory classes.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { apiKeyRecordsConformance } from './conformance/apikeys.js';
import type { Driver } from './conformance/driver.js';
import { holdRecordsConformance } from './conformance/holds.js';
import { keyRecordsConformance } from './conformance/keys.js';
import { FsBackend } from './fs/backend.js';
import { MemoryApiKeyRecords } from './memory/apikeys.js';
import { MemoryHoldRecords } from './memory/holds.js';
import { MemoryKeyRecords } from './memory/keys.js';

const root = mkdtempSync(join(tmpdir(), 'stele-state-'));
after(() => rmSync(root, { recursive: true, force: true }));

/**
 * The fs driver's store `pick` chooses: a fresh data directory each open(); reopen() closes the
 * store and opens it again from the same directory; stored() is every file of that directory.
 */
function fsDriver<R>(pick: (b: FsBackend) => R): Driver<R> & { same(): FsBackend } {
  let backend = new FsBackend(mkdtempSync(join(root, 'd-')));
  const files = (dir: string): Buffer[] =>
    readdirSync(dir).flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? files(p) : [readFileSync(p)];
    });
  const same = () => new FsBackend(backend.dir);
  return {
    open: () => {
      backend = new FsBackend(mkdtempSync(join(root, 'd-')));
      return pick(backend);
    },
    reopen: async (r) => {
      await (r as { close?(): Promise<void> }).close?.();
      return pick(same());
    },
    stored: () => Buffer.concat(files(backend.dir)),
    same,
  };
}

const keys = fsDriver((b) => b.keys());
keyRecordsConformance('fs', { ...keys, reader: () => keys.same().keys({ readonly: true }) });
keyRecordsConformance('memory', {
  open: () => new MemoryKeyRecords(),
  reader: (r) => (r as MemoryKeyRecords).reader(),
});

holdRecordsConformance(
  'fs',
  fsDriver((b) => b.holds()),
);
holdRecordsConformance('memory', { open: () => new MemoryHoldRecords() });

apiKeyRecordsConformance(
  'fs',
  fsDriver((b) => b.apiKeys()),
);
apiKeyRecordsConformance('memory', { open: () => new MemoryApiKeyRecords() });
