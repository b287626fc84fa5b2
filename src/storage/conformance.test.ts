import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import type { DriverUnderTest } from './conformance/driver.js';
import { faultConformance } from './conformance/faults.js';
import { idsConformance } from './conformance/ids.js';
import { lockConformance } from './conformance/lock.js';
import { logConformance } from './conformance/log.js';
import { FsBackend } from './fs/backend.js';
import { MemoryBackend } from './memory/backend.js';
import { openEmbedded } from './open.js';

const dirs: string[] = [];
const names: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  for (const n of names) MemoryBackend.drop(n);
});

const drivers: DriverUnderTest[] = [
  {
    name: 'fs',
    async create() {
      const dir = mkdtempSync(join(tmpdir(), 'stele-conformance-'));
      dirs.push(dir);
      return new FsBackend(dir);
    },
    reopen: (b) => openEmbedded(b.spec),
  },
  {
    name: 'memory',
    async create() {
      names.push(randomUUID());
      return MemoryBackend.named(names.at(-1) as string);
    },
    reopen: (b) => openEmbedded(b.spec),
  },
];

for (const d of drivers) {
  logConformance(d);
  idsConformance(d);
  lockConformance(d);
  faultConformance(d);
}
