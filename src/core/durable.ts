import { closeSync, openSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Makes a folder's entries (new, renamed or removed files) durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Atomic, durable replace: write a temporary file, fsync it, rename it over, fsync the folder.
 * Owner-only unless told otherwise: what Stele writes is its data directory's business alone.
 */
export async function writeDurably(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  // Named by the process: two processes replacing one file (nodes sharing a configuration) never share a temporary.
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await syncDir(dirname(path));
}

/**
 * Creates `path` empty and owner-only unless it exists: SQLite gives its -wal and -shm files the
 * mode of the database file, so a database made this way stays owner-only whatever the umask.
 */
export function createPrivate(path: string): void {
  closeSync(openSync(path, 'a', 0o600));
}
