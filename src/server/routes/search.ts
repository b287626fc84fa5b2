import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { EXPORT_FORMATS, type ExportFormat } from '../../app/export.js';
import { exportEvents, searchEvents, streamEvents } from '../../app/reading.js';
import type { Stele } from '../../app/stele.js';
import { summarizeEvents } from '../../app/summary.js';
import { formatMicros } from '../../event/record.js';
import { FACETS } from '../../index/aggregate.js';
import type { Hit } from '../../index/thread.js';
import { principalOf } from '../auth.js';

/** The `q` parameter of every route that takes a query (search, summary, stream, export). */
const queryParam = { type: 'string', maxLength: 4096 } as const;

export const MAX_PAGE = 1000;

/**
 * A search result: a readable entry (with `event`), or a gap — an entry whose data key was
 * destroyed — with `state` ("expired"/"erased") and, when known, `erasure` (the index of the
 * stele.erasure / stele.retention.run entry) instead of an event.
 */
const hit = {
  type: 'object',
  properties: {
    index: { type: 'integer' },
    received: { type: 'string' },
    ingest: { type: 'object', additionalProperties: true },
    tier: { type: 'string' },
    key: { type: 'string' },
    event: { type: 'object', additionalProperties: true },
    state: { type: 'string', enum: ['expired', 'erased'], description: 'Gaps only: how its data key was destroyed.' },
    erasure: { type: 'integer', description: 'Gaps only: index of the entry recording the erasure or expiry.' },
  },
} as const;

export const searchRoutes = (stele: Stele) => async (app: FastifyInstance) => {
  app.get<{
    Querystring: { q?: string; cursor?: number; limit?: number; order?: 'desc' | 'asc'; count?: boolean; after?: number };
  }>(
    '/v1/events',
    {
      schema: {
        summary: 'Search events',
        description:
          'Query language: `field:value` (actor, type, on_behalf_of, verified, action, source, host, resource, resource_type, ' +
          'outcome, subject, tier, key, principal, id, index), `*` wildcards, "quoted full text", bare words, since:/until: ' +
          '(7d, 36h, RFC 3339 times, dates), AND, OR, -term / NOT term, parentheses. Newest first; pass `next` back as ' +
          '`cursor` for the next page. Sees every acknowledged append. An entry whose data key was destroyed is a gap ' +
          '(index, received, tier, state, erasure; no event), found only by queries that test nothing but index:, tier: and ' +
          'since:/until: (receipt time). hits, next and total cover only what the caller may see: when the policy may ' +
          'hide entries within a tier, a page scans at most 100,000 log positions and may come back short (or empty) with a ' +
          '`next`; count=true answers 422 past 100,000 matches. `indexed_through` says how far the index had got: every ' +
          "entry below it is in the answer's view. Read your writes: `after=<index>` (an append's index) answers once that " +
          'entry is searchable, or after at most 5 s with 503 `index_behind` and Retry-After; an index not yet appended is 404.',
        security: [{ bearer: [] }],
        querystring: {
          type: 'object',
          properties: {
            q: queryParam,
            cursor: { type: 'integer', minimum: 0 },
            limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 50 },
            order: { type: 'string', enum: ['desc', 'asc'], default: 'desc' },
            count: { type: 'boolean', default: false },
            after: { type: 'integer', minimum: 0 },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              hits: { type: 'array', items: hit },
              next: { type: 'integer', description: 'Cursor of the next page; absent on the last.' },
              total: { type: 'integer', description: 'Number of matches, with count=true.' },
              indexed_through: { type: 'integer', description: 'Entries below this index were searchable for this answer.' },
            },
          },
        },
      },
    },
    async (req) => {
      const { q = '', cursor, limit = 50, order = 'desc', count = false, after } = req.query;
      const { indexedThrough, ...page } = await searchEvents(stele, principalOf(req), {
        q,
        ...(cursor === undefined ? {} : { cursor }),
        ...(after === undefined ? {} : { after }),
        limit,
        order,
        count,
      });
      return { ...page, indexed_through: indexedThrough };
    },
  );

  const facet = {
    type: 'object',
    properties: {
      values: {
        type: 'array',
        items: { type: 'object', properties: { value: { type: 'string' }, count: { type: 'integer' } } },
      },
      other: { type: 'integer', description: 'Matches whose value is not among `values`.' },
      distinct: { type: 'integer', description: 'How many different values the matches have.' },
    },
  } as const;
  app.get<{ Querystring: { q?: string; buckets?: number; top?: number } }>(
    '/v1/events/summary',
    {
      schema: {
        summary: 'Count what a search matches: a histogram of event time and the top values of each facet',
        description:
          'Every match the caller may see, not a page: `entries`, a `histogram` of event time (`origin` and `width` in ' +
          'RFC 3339 and milliseconds, `counts` of consecutive buckets, at most `buckets` of them, each a whole second, ' +
          'minute, hour, day... step) and for each of actor, action, source, outcome and tier its `top` values by count, ' +
          'with how many matches the rest hold (`other`) and how many values there are (`distinct`). Gaps (expired or ' +
          'erased entries) are not counted. When the policy may hide entries within a tier, at most 100,000 matches are ' +
          'examined, else 422 `count_unavailable`. Recorded as a stele.access.search with `summary: true`.',
        security: [{ bearer: [] }],
        querystring: {
          type: 'object',
          properties: {
            q: queryParam,
            buckets: { type: 'integer', minimum: 1, maximum: 1000, default: 60 },
            top: { type: 'integer', minimum: 1, maximum: 100, default: 10 },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              entries: { type: 'integer' },
              histogram: {
                type: ['object', 'null'],
                properties: {
                  origin: { type: 'string' },
                  width_ms: { type: 'integer' },
                  counts: { type: 'array', items: { type: 'integer' } },
                },
              },
              facets: { type: 'object', properties: Object.fromEntries(FACETS.map((f) => [f, facet])) },
              indexed_through: { type: 'integer', description: 'Entries below this index were counted if they match.' },
            },
          },
        },
      },
    },
    async (req, reply) => {
      const { q = '', buckets = 60, top = 10 } = req.query;
      const gone = new AbortController();
      // The response's close before it was sent: the client went away (as the console does when the query changes).
      reply.raw.once('close', () => gone.abort());
      const s = await summarizeEvents(stele, principalOf(req), { q, buckets, top, signal: gone.signal });
      return {
        entries: s.entries,
        histogram: s.histogram && {
          origin: formatMicros(BigInt(s.histogram.origin)),
          width_ms: s.histogram.width / 1000,
          counts: s.histogram.counts,
        },
        facets: s.facets,
        indexed_through: s.indexedThrough,
      };
    },
  );
};

/** One hit as an SSE message: its index is the event id (a reconnect sends it back as Last-Event-ID). */
function sseEntry(h: Hit): string {
  const body = {
    index: h.index,
    received: h.received,
    ingest: h.ingest,
    tier: h.tier,
    ...(h.key ? { key: h.key } : {}),
    event: h.event,
  };
  return `id: ${h.index}\nevent: entry\ndata: ${JSON.stringify(body)}\n\n`;
}

export const streamRoutes = (stele: Stele) => async (app: FastifyInstance) => {
  app.get<{ Querystring: { q?: string; after?: number } }>(
    '/v1/stream',
    {
      schema: {
        summary: 'Follow the events a query matches (server-sent events)',
        description:
          'text/event-stream: each matching entry the caller may see, as `event: entry` with `id: <index>` and the search ' +
          'hit as `data`, in log order, as soon as it is searchable. From now on, or after `after` (an index), or after the ' +
          '`Last-Event-ID` a reconnecting client sends. Expired, erased and forbidden entries are never sent. A comment ' +
          'line every 15 s keeps the connection open. Recorded when it opens and closes (stele.access.stream, .end).',
        security: [{ bearer: [] }],
        querystring: {
          type: 'object',
          properties: { q: queryParam, after: { type: 'integer', minimum: 0 } },
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      const last = req.headers['last-event-id'];
      const resume = typeof last === 'string' && /^\d{1,15}$/.test(last) ? Number(last) : undefined;
      const after = resume ?? req.query.after;
      const closed = new AbortController();
      // The response's close: the client went away (or the server is shutting down).
      reply.raw.once('close', () => closed.abort());
      const entries = streamEvents(stele, principalOf(req), {
        q: req.query.q ?? '',
        ...(after === undefined ? {} : { after }),
        signal: closed.signal,
      });
      // The first step checks access and the query and records the stream: a refusal is still a 4xx.
      await entries.next();
      async function* sse() {
        yield 'retry: 2000\n\n';
        for await (const h of entries) yield h === null ? ': keep-alive\n\n' : sseEntry(h);
      }
      return reply
        .type('text/event-stream; charset=utf-8')
        .header('cache-control', 'no-cache')
        .header('x-accel-buffering', 'no')
        .send(Readable.from(sse()));
    },
  );
};

const CONTENT_TYPES: Record<ExportFormat, string> = {
  jsonl: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  bundle: 'application/x-ndjson; charset=utf-8',
};
const EXTENSIONS: Record<ExportFormat, string> = { jsonl: '.jsonl', csv: '.csv', bundle: '.stele-bundle.jsonl' };

export const exportRoutes = (stele: Stele) => async (app: FastifyInstance) => {
  app.get<{ Querystring: { q?: string; format?: ExportFormat; order?: 'asc' | 'desc' } }>(
    '/v1/export',
    {
      schema: {
        summary: 'Export the events a query matches: JSON Lines, CSV, or an evidence bundle',
        description:
          'Streams every match (same query language as /v1/events; oldest first by default). format=bundle: a JSON Lines ' +
          'evidence bundle (header with the signed checkpoint and verifier key, then each entry with its leaf, decrypted ' +
          'event, message key and C2SP tlog-proof, then a trailer) that `stele verify-bundle` checks offline.',
        security: [{ bearer: [] }],
        querystring: {
          type: 'object',
          properties: {
            q: queryParam,
            format: { type: 'string', enum: [...EXPORT_FORMATS], default: 'jsonl' },
            order: { type: 'string', enum: ['desc', 'asc'], default: 'asc' },
          },
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      const { q = '', format = 'jsonl', order = 'asc' } = req.query;
      const lines = exportEvents(stele, principalOf(req), { q, format, order });
      // Pull the first line before answering, so a bad query still gets its 400.
      const first = await lines.next();
      async function* all() {
        if (!first.done) yield first.value;
        yield* lines;
      }
      return reply
        .type(CONTENT_TYPES[format])
        .header('content-disposition', `attachment; filename="stele-export${EXTENSIONS[format]}"`)
        .send(Readable.from(all()));
    },
  );
};
