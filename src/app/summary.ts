/**
 * `GET /v1/events/summary`: how the entries a query matches spread over time and over actors,
 * actions, sources, outcomes and tiers (the console's histogram and facets), counted over every
 * match the asker may see, not a page. Audited like a search, because counts are what they read.
 */
import type { Principal } from '../core/principal.js';
import { parseMicros } from '../event/record.js';
import { bucketsFor, type Summary, spanOf, summarize, type TallyRow, tallyRows } from '../index/aggregate.js';
import type { Match } from '../index/thread.js';
import { eachVisible, entryResource } from './reading.js';
import type { Stele } from './stele.js';

export interface SummaryInput {
  q: string;
  /** At most this many histogram buckets. */
  buckets: number;
  /** Values shown per facet. */
  top: number;
  /** Aborts when the asker goes away: the rest is not counted. */
  signal?: AbortSignal;
}

/**
 * The summary of what `p` may see of the query's matches. When the policy's tier filter decides
 * every entry, the store counts (exact, at any size). When a Cedar policy may hide single entries,
 * each match is opened and checked, as count=true does: at most COUNT_BUDGET of them, else 422, so
 * that no count includes an entry `p` may not see.
 */
export async function summarizeEvents(
  stele: Stele,
  p: Principal,
  req: SummaryInput,
): Promise<Summary & { indexedThrough: number }> {
  stele.access.require(p, 'search');
  const base = { q: req.q, nowMs: Date.now(), tiers: stele.access.readableTiers(p, 'search') };
  const published = stele.log.checkpoint.size;
  let out: Summary & { indexedThrough: number };
  if (!stele.access.entryDependent) {
    const { indexed, ...s } = await stele.index.summarize({ ...base, buckets: req.buckets, top: req.top }, published, req.signal);
    out = { ...s, indexedThrough: indexed };
  } else {
    const indexedThrough = stele.index.indexedThrough;
    const rows = await visibleRows(stele, p, base, published);
    const span = spanOf(rows);
    const b = span ? bucketsFor(span, req.buckets) : null;
    out = { ...summarize(tallyRows(rows, b), b, req.top), indexedThrough };
  }
  await stele.audit.record('stele.access.search', p, { query: req.q, summary: true, results: out.entries });
  return out;
}

/** The counted fields of every entry `p` may see among the matches; refused (422) past COUNT_BUDGET matches. */
async function visibleRows(
  stele: Stele,
  p: Principal,
  base: { q: string; nowMs: number; tiers?: string[] },
  published: number,
): Promise<TallyRow[]> {
  const rows: TallyRow[] = [];
  const see = (m: Match) => m.kind === 'entry' && stele.access.allowed(p, 'search', entryResource(stele, m));
  for await (const m of eachVisible(stele, base, see, published, 'to summarize them')) {
    if (m.kind !== 'entry') continue;
    const e = m.event;
    rows.push({
      time: Number(parseMicros(e.time)),
      actor: e.actor.id,
      action: e.action,
      source: e.source.kind,
      outcome: e.outcome,
      tier: m.tier,
    });
  }
  return rows;
}
