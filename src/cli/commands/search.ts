import { parseInteger } from '../../core/config/parse.js';
import { SteleError } from '../../core/errors.js';
import { plural } from '../../core/plural.js';
import type { Event } from '../../event/types.js';
import { api, apiTarget } from '../client.js';

export interface SearchOptions {
  url?: string;
  token?: string;
  dir?: string;
  limit: string;
  cursor?: string;
  order: string;
  all?: boolean;
  json?: boolean;
  count?: boolean;
  after?: string;
}

interface Hit {
  index: number;
  received: string;
  tier: string;
  event: Event;
}

/** An entry whose data key was destroyed: the API sends `state` (and `erasure`) instead of an event. */
interface Gap {
  index: number;
  received: string;
  tier: string;
  state: 'expired' | 'erased';
  erasure?: number;
}

interface Page {
  hits: (Hit | Gap)[];
  next?: number;
  total?: number;
}

/** One line per hit: index, time, actor, action, outcome, resource; for a gap, index, receipt time, state. */
export function formatHit(h: Hit | Gap): string {
  if ('state' in h) {
    const by = h.erasure === undefined ? '' : ` by #${h.erasure}`;
    return `#${h.index}  ${h.received}  (${h.state}${by}: its data key was destroyed)  [${h.tier}]`;
  }
  const e = h.event;
  const actor = e.actor.on_behalf_of ? `${e.actor.id} (for ${e.actor.on_behalf_of})` : e.actor.id;
  const resource = e.resource ? ` ${e.resource.type}:${e.resource.id}` : '';
  return `#${h.index}  ${e.time}  ${actor}  ${e.action}  ${e.outcome}${resource}  [${e.source.kind}, ${h.tier}]`;
}

/** `stele search <query>`: GET /v1/events, page by page; a bad query is shown with a caret under the problem. */
export async function searchCommand(words: string[], opts: SearchOptions): Promise<void> {
  const q = words.join(' ');
  const { url, token } = apiTarget(opts);
  const limit = parseInteger(opts.limit, '--limit', 1);
  if (!['asc', 'desc'].includes(opts.order)) throw new SteleError('bad_option', '--order must be asc or desc');
  let cursor = opts.cursor === undefined ? undefined : parseInteger(opts.cursor, '--cursor');
  const after = opts.after === undefined ? undefined : parseInteger(opts.after, '--after');
  let shown = 0;
  for (;;) {
    const params = new URLSearchParams({ q, limit: String(Math.min(limit, 1000)), order: opts.order });
    if (cursor !== undefined) params.set('cursor', String(cursor));
    if (opts.count && shown === 0) params.set('count', 'true');
    if (after !== undefined && shown === 0) params.set('after', String(after));
    let page: Page;
    try {
      page = await api<Page>(url, `/v1/events?${params}`, { token });
    } catch (err) {
      throw withCaret(err, q);
    }
    if (page.total !== undefined) process.stderr.write(`${plural(page.total, 'matching entry', 'matching entries')}\n`);
    for (const h of page.hits) process.stdout.write(`${opts.json ? JSON.stringify(h) : formatHit(h)}\n`);
    shown += page.hits.length;
    if (page.next === undefined || (!opts.all && shown >= limit)) {
      if (page.next !== undefined) process.stderr.write(`more: --cursor ${page.next}\n`);
      return;
    }
    cursor = page.next;
  }
}

function withCaret(err: unknown, q: string): unknown {
  if (!(err instanceof SteleError) || err.code !== 'bad_query' || typeof err.detail?.position !== 'number') return err;
  const pos = err.detail.position;
  const len = Math.max(1, String(err.detail.token ?? ' ').length);
  return new SteleError(err.code, `${err.message}\n  ${q}\n  ${' '.repeat(pos)}${'^'.repeat(len)}`, {
    detail: err.detail,
    cause: err,
  });
}
