/**
 * A throwaway PostgreSQL for tests: `initdb` in a temporary directory, `pg_ctl start` on a free
 * 127.0.0.1 port (unix socket in the same directory), stopped and removed by `stop()` (the recipe
 * in ../shared/recipes/s3-object-lock-and-postgres.md: about 1.5 s to the first query). PostgreSQL
 * refuses to run as root, so as root the server runs as the `postgres` user (runuser).
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './rgw.js';
import { tempDir } from './stele.js';

/** The newest installed PostgreSQL's bin directory (Debian keeps it off PATH), or null. */
function binDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : null;
}

export const PG_INSTALL = 'apt-get install postgresql';

/** Why the PostgreSQL suites cannot run here, or null when they can. */
export function pgProblem(): string | null {
  if (!binDir()) return `PostgreSQL is not installed (${PG_INSTALL})`;
  if (process.getuid?.() === 0) {
    try {
      execFileSync('id', ['postgres'], { stdio: 'ignore' });
    } catch {
      return 'running as root, and there is no postgres user to run the server as';
    }
  }
  return null;
}

export class Postgres {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
  ) {}

  /** A connection URL for database `db` (default: postgres). */
  url(db = 'postgres'): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/${db}`;
  }

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  private static run(bin: string, cmd: string, args: string[]): string {
    const asRoot = process.getuid?.() === 0;
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] : [join(bin, cmd), args];
    return execFileSync(file, argv, { stdio: 'pipe', timeout: 60_000 }).toString();
  }

  /** `durable`: fsync and synchronous commits on (a benchmark's honest durability); tests leave them off. */
  static async start(opts: { durable?: boolean } = {}): Promise<Postgres> {
    const bin = binDir();
    if (!bin) throw new Error(`PostgreSQL is not installed (${PG_INSTALL})`);
    // A short path: the unix socket's must stay under 107 bytes.
    const dir = tempDir('pg-');
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
      chownSync(dir, uid, gid);
    }
    const port = await freePort();
    const pg = new Postgres(dir, port, bin);
    Postgres.run(bin, 'initdb', ['-D', pg.dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    // fsync off for tests: they kill Stele nodes, never the machine; a committed row is in the OS's cache.
    const sync = opts.durable ? '-c fsync=on -c synchronous_commit=on' : '-c fsync=off -c full_page_writes=off';
    const o = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 ${sync} -c max_connections=200`;
    Postgres.run(bin, 'pg_ctl', ['-D', pg.dataDir, '-l', join(dir, 'postgres.log'), '-w', '-t', '60', '-o', o, 'start']);
    return pg;
  }

  /** Creates a database and returns its URL. */
  createDb(name: string): string {
    execFileSync('psql', [this.url(), '-v', 'ON_ERROR_STOP=1', '-qc', `CREATE DATABASE "${name}"`], { stdio: 'pipe' });
    return this.url(name);
  }

  /**
   * Every byte of database `db`'s table and index files (`base/<oid>/`) and the shared ones
   * (`global/`), after a checkpoint: what an erasure must leave no trace in. Not pg_wal (see
   * docs/operations.md on WAL retention).
   */
  tableBytes(db: string): Buffer {
    const oid = execFileSync('psql', [this.url(), '-Atc', `SELECT oid FROM pg_database WHERE datname = '${db}'`])
      .toString()
      .trim();
    execFileSync('psql', [this.url(), '-qc', 'CHECKPOINT'], { stdio: 'pipe' });
    const out: Buffer[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else out.push(readFileSync(p));
      }
    };
    walk(join(this.dataDir, 'base', oid));
    walk(join(this.dataDir, 'global'));
    return Buffer.concat(out);
  }

  async stop(): Promise<void> {
    try {
      Postgres.run(this.bin, 'pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // already stopped
    }
  }
}
