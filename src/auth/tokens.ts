import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeDurably } from '../durable.js';

/**
 * Bearer tokens for writers. Only a SHA-256 of each token is stored (a token is 256 random bits,
 * so a plain hash is enough to make the file useless to a thief); the plain token is shown once.
 */
export interface TokenRecord {
  name: string;
  role: 'admin' | 'writer';
  sha256: string;
  created: string;
}

export interface Principal {
  name: string;
  role: TokenRecord['role'];
}

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

export class TokenStore {
  private byHash: Map<string, TokenRecord>;

  private constructor(
    private readonly path: string,
    private records: TokenRecord[],
  ) {
    this.byHash = new Map(records.map((r) => [r.sha256, r]));
  }

  static load(path: string): TokenStore {
    let records: TokenRecord[] = [];
    try {
      records = JSON.parse(readFileSync(path, 'utf8')) as TokenRecord[];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return new TokenStore(path, records);
  }

  /** Creates a token and returns it in the clear — the only time it is ever visible. */
  async create(name: string, role: TokenRecord['role']): Promise<string> {
    const token = `stele_${randomBytes(32).toString('base64url')}`;
    this.records = [...this.records, { name, role, sha256: hashToken(token), created: new Date().toISOString() }];
    await writeDurably(this.path, `${JSON.stringify(this.records, null, 2)}\n`);
    this.byHash = new Map(this.records.map((r) => [r.sha256, r]));
    return token;
  }

  authenticate(token: string): Principal | null {
    const r = this.byHash.get(hashToken(token));
    return r ? { name: r.name, role: r.role } : null;
  }
}
