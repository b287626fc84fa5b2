import { parseQuery } from '../../src/index/query.js';
import { type CompiledQuery, compileQuery as compile } from '../../src/storage/fs/query-sql.js';

/** A query's text compiled for the SQLite store's entries, as its search does (parse, then SQL). */
export const compileQuery = (q: string, nowMs: number): CompiledQuery => compile(parseQuery(q), nowMs);
