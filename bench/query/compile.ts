import { parseQuery } from '../../src/index/query.js';
import { type CodedColumns, type CompiledQuery, compileQuery as compile } from '../../src/storage/fs/query-sql.js';

/**
 * A query's text compiled for the SQLite store's entries, as its search does (parse, then SQL);
 * `coded` for a table without terms (the peer: none).
 */
export const compileQuery = (q: string, nowMs: number, coded?: CodedColumns): CompiledQuery =>
  compile(parseQuery(q), nowMs, coded);
