import { parseInteger } from '../../core/config/parse.js';
import { SteleError } from '../../core/errors.js';
import { plural } from '../../core/plural.js';
import type { Event } from '../../event/types.js';
import { formatDuration } from '../../policy/policy.js';
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
  summary?: boolean;
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

/** GET /v1/events/summary's answer. */
interface Summary {
  entries: number;
  histogram: { origin: string; width_ms: number; counts: number[] } | null;
  facets: Record<string, { values: { value: string; count: number }[]; other: number; distinct: number }>;
}

const BARS = '▁▂▃▄▅▆▇█';

/** A summary as lines: the count, the histogram as a sparkline with its span, and each facet's top values. */
export function formatSummary(s: Summary): string[] {
  const out = [plural(s.entries, 'matching entry', 'matching entries')];
  const h = s.histogram;
  if (h) {
    const max = Math.max(1, ...h.counts);
    const at = (ms: number) => new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
    const from = Date.parse(h.origin);
    out.push(
      `${at(from)} to ${at(from + h.counts.length * h.width_ms)}, ${formatDuration(h.width_ms)} a bar (the highest ${max.toLocaleString('en-US')}):`,
    );
    out.push(`  ${h.counts.map((c) => (c === 0 ? ' ' : BARS[Math.min(7, Math.floor((c / max) * 8))])).join('')}`);
  }
  for (const [name, f] of Object.entries(s.facets)) {
    if (f.distinct === 0) continue;
    const rest = f.other > 0 ? `  (${f.distinct - f.values.length} more: ${f.other.toLocaleString('en-US')})` : '';
    out.push(`${`${name}:`.padEnd(9)}${f.values.map((v) => `${v.value} ${v.count.toLocaleString('en-US')}`).join(' · ')}${rest}`);
  }
  return out;
}

/** `stele search <query>`: GET /v1/events, page by page; a bad query is shown with a caret under the problem. */
export async function searchCommand(words: string[], opts: SearchOptions): Promise<void> {
  const q = words.join(' ');
  const { url, token } = apiTarget(opts);
  if (opts.summary) {
    let s: Summary;
    try {
      s = await api<Summary>(url, `/v1/events/summary?${new URLSearchParams({ q })}`, { token });
    } catch (err) {
      throw withCaret(err, q);
    }
    process.stdout.write(opts.json ? `${JSON.stringify(s)}\n` : `${formatSummary(s).join('\n')}\n`);
    return;
  }
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
