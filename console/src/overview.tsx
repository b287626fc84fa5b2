/**
 * What the matches look like: a time histogram (drag across it to narrow the query to that span:
 * since:/until:) and the commonest values of actor, action, source, outcome and tier (click one to
 * add it to the query). Counted by the server over every match the user may see
 * (/v1/events/summary); when it cannot (a policy that decides entry by entry, past its budget),
 * over the matches loaded so far, and the header says which.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, getJson, type Hit } from './api.js';
import { quoteValue } from './query.js';

const BUCKETS = 60;
const TOP = 5;
/** How often a summary is counted again while live mode follows new matches (ms). */
const LIVE_REFRESH = 10_000;
const FACETS = [
  ['actor', (h: Hit) => h.event?.actor.id],
  ['action', (h: Hit) => h.event?.action],
  ['source', (h: Hit) => h.event?.source.kind],
  ['outcome', (h: Hit) => h.event?.outcome],
  ['tier', (h: Hit) => h.tier],
] as const;

/** GET /v1/events/summary's answer. */
interface Summary {
  entries: number;
  histogram: { origin: string; width_ms: number; counts: number[] } | null;
  facets: Record<string, { values: { value: string; count: number }[]; other: number; distinct: number }>;
}

/** The same summary counted in the browser over the loaded matches. */
function loadedSummary(hits: Hit[]): Summary {
  const times = hits.flatMap((h) => (h.event ? [Date.parse(h.event.time)] : [])).filter((t) => !Number.isNaN(t));
  let histogram: Summary['histogram'] = null;
  if (times.length > 0) {
    const lo = times.reduce((a, t) => Math.min(a, t));
    const hi = times.reduce((a, t) => Math.max(a, t));
    const width = Math.max(1, Math.ceil((hi - lo + 1) / BUCKETS));
    const counts = new Array<number>(Math.floor((hi - lo) / width) + 1).fill(0);
    for (const t of times) {
      const b = Math.floor((t - lo) / width);
      counts[b] = (counts[b] ?? 0) + 1;
    }
    histogram = { origin: new Date(lo).toISOString(), width_ms: width, counts };
  }
  const facets: Summary['facets'] = {};
  for (const [name, get] of FACETS) {
    const n = new Map<string, number>();
    for (const h of hits) {
      const v = get(h);
      if (v) n.set(v, (n.get(v) ?? 0) + 1);
    }
    const values = [...n].sort((a, b) => b[1] - a[1]).map(([value, count]) => ({ value, count }));
    const top = values.slice(0, TOP);
    facets[name] = { values: top, other: hits.length - top.reduce((s, v) => s + v.count, 0), distinct: values.length };
  }
  return { entries: hits.length, histogram, facets };
}

/** The query with its since:/until: terms replaced by `from`–`to`. */
export function withSpan(q: string, from: Date, to: Date): string {
  const rest = q
    .replace(/(^|\s)(since|until):\S+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return `${rest} since:${from.toISOString()} until:${to.toISOString()}`.trim();
}

const stamp = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');

function Histogram({ h, onSpan }: { h: NonNullable<Summary['histogram']>; onSpan: (from: Date, to: Date) => void }) {
  const svg = useRef<SVGSVGElement>(null);
  const [drag, setDrag] = useState<{ a: number; b: number } | null>(null);
  const n = h.counts.length;
  const lo = Date.parse(h.origin);
  const hi = lo + n * h.width_ms;
  const max = h.counts.reduce((a, c) => Math.max(a, c), 1);
  const at = (e: PointerEvent) => {
    const r = (svg.current as SVGSVGElement).getBoundingClientRect();
    return Math.max(0, Math.min(1, (e.clientX - r.left) / r.width));
  };
  const span = (d: { a: number; b: number }) =>
    [lo + Math.min(d.a, d.b) * (hi - lo), lo + Math.max(d.a, d.b) * (hi - lo)] as const;
  return (
    <figure class="histogram">
      <svg
        ref={svg}
        viewBox={`0 0 ${n} 100`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`matches over time, ${new Date(lo).toISOString()} to ${new Date(hi).toISOString()}, ${h.width_ms / 1000} s a bar; drag across to narrow the search to a span`}
        onPointerDown={(e) => {
          (e.target as Element).setPointerCapture?.(e.pointerId);
          const x = at(e);
          setDrag({ a: x, b: x });
        }}
        onPointerMove={(e) => drag && setDrag({ ...drag, b: at(e) })}
        onPointerUp={() => {
          if (drag && Math.abs(drag.b - drag.a) > 0.01) {
            const [f, t] = span(drag);
            onSpan(new Date(Math.floor(f)), new Date(Math.ceil(t)));
          }
          setDrag(null);
        }}
      >
        {h.counts.map((c, i) => (
          <rect x={i + 0.1} width={0.8} y={100 - (c / max) * 100} height={(c / max) * 100} class="bar">
            <title>{`${stamp(lo + i * h.width_ms)}: ${c.toLocaleString()}`}</title>
          </rect>
        ))}
        {drag && <rect x={Math.min(drag.a, drag.b) * n} width={Math.abs(drag.b - drag.a) * n} y={0} height={100} class="sel" />}
      </svg>
      <figcaption>
        <span>{stamp(lo)}</span>
        <span>{stamp(hi)} UTC</span>
      </figcaption>
    </figure>
  );
}

export function Overview(props: {
  hits: Hit[];
  more: boolean;
  q: string;
  /** The search's first page is in. */
  ready: boolean;
  live: boolean;
  onQuery: (q: string) => void;
}) {
  const { hits, more, q, ready, live, onQuery } = props;
  const [server, setServer] = useState<Summary | null>(null);
  const [unavailable, setUnavailable] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!live) return;
    const t = setInterval(() => setTick((n) => n + 1), LIVE_REFRESH);
    return () => clearInterval(t);
  }, [live]);
  useEffect(() => setServer(null), [q]);
  useEffect(() => {
    // Asked once the first page is in (its search must not queue behind this count), and abandoned
    // when the query changes, so the server stops counting for nobody.
    if (!ready) return;
    const gone = new AbortController();
    setUnavailable(null);
    getJson<Summary>(`/v1/events/summary?q=${encodeURIComponent(q)}&buckets=${BUCKETS}&top=${TOP}`, gone.signal)
      .then((s) => setServer(s))
      .catch((e: unknown) => {
        if (gone.signal.aborted) return;
        setServer(null);
        setUnavailable(e instanceof ApiError ? e.message : String(e));
      });
    return () => gone.abort();
  }, [q, tick, ready]);
  const loaded = useMemo(() => loadedSummary(hits), [hits]);
  // Until the server's count arrives, the loaded matches'.
  const s = server ?? loaded;
  if (s.entries === 0) return null;
  return (
    <section class="overview" aria-label="overview of the matches">
      <p class="hint">
        {server
          ? `All ${server.entries.toLocaleString()} matches you may see:`
          : `Over the ${hits.length.toLocaleString()} matches loaded${more ? ' (scroll the results to load more)' : ''}${
              unavailable ? `; the server could not count them all: ${unavailable}` : more ? '; counting all of them…' : ':'
            }`}
      </p>
      {s.histogram && <Histogram h={s.histogram} onSpan={(f, t) => onQuery(withSpan(q, f, t))} />}
      <div class="facets">
        {FACETS.map(([name]) => {
          const f = s.facets[name];
          if (!f) return null;
          return (
            <div class="facet">
              <h3>{name}</h3>
              <ul>
                {f.values.map(({ value, count }) => (
                  <li>
                    <button
                      type="button"
                      class="link"
                      onClick={() => onQuery(`${q} ${name}:${quoteValue(value)}`.trim())}
                      title={`add ${name}:${value}`}
                    >
                      {value}
                    </button>{' '}
                    <span class="count">{count.toLocaleString()}</span>
                  </li>
                ))}
                {f.other > 0 && (
                  <li class="other">
                    {(f.distinct - f.values.length).toLocaleString()} more: <span class="count">{f.other.toLocaleString()}</span>
                  </li>
                )}
              </ul>
            </div>
          );
        })}
      </div>
    </section>
  );
}
