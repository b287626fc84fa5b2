/**
 * What the loaded matches look like: a time histogram (drag across it to narrow the query to that
 * span: since:/until:) and the commonest values of actor, action, source, outcome and tier (click
 * one to add it to the query). Counted over the matches loaded so far, which the header says.
 */
import { useMemo, useRef, useState } from 'preact/hooks';
import type { Hit } from './api.js';
import { quoteValue } from './query.js';

const BUCKETS = 48;
const FACETS = [
  ['actor', (h: Hit) => h.event?.actor.id],
  ['action', (h: Hit) => h.event?.action],
  ['source', (h: Hit) => h.event?.source.kind],
  ['outcome', (h: Hit) => h.event?.outcome],
  ['tier', (h: Hit) => h.tier],
] as const;

/** The query with its since:/until: terms replaced by `from`–`to`. */
export function withSpan(q: string, from: Date, to: Date): string {
  const rest = q
    .replace(/(^|\s)(since|until):\S+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return `${rest} since:${from.toISOString()} until:${to.toISOString()}`.trim();
}

function Histogram({ hits, onSpan }: { hits: Hit[]; onSpan: (from: Date, to: Date) => void }) {
  const svg = useRef<SVGSVGElement>(null);
  const [drag, setDrag] = useState<{ a: number; b: number } | null>(null);
  const times = useMemo(
    () => hits.flatMap((h) => (h.event ? [Date.parse(h.event.time)] : [])).filter((t) => !Number.isNaN(t)),
    [hits],
  );
  if (times.length < 2) return null;
  const lo = Math.min(...times);
  let hi = Math.max(...times);
  if (hi === lo) hi = lo + 1000;
  const width = (hi - lo) / BUCKETS;
  const counts = new Array<number>(BUCKETS).fill(0);
  for (const t of times) {
    const b = Math.min(BUCKETS - 1, Math.floor((t - lo) / width));
    counts[b] = (counts[b] ?? 0) + 1;
  }
  const max = Math.max(...counts);
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
        viewBox={`0 0 ${BUCKETS} 100`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`matches over time, ${new Date(lo).toISOString()} to ${new Date(hi).toISOString()}; drag across to narrow the search to a span`}
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
        {counts.map((c, i) => (
          <rect x={i + 0.1} width={0.8} y={100 - (c / max) * 100} height={(c / max) * 100} class="bar" />
        ))}
        {drag && (
          <rect
            x={Math.min(drag.a, drag.b) * BUCKETS}
            width={Math.abs(drag.b - drag.a) * BUCKETS}
            y={0}
            height={100}
            class="sel"
          />
        )}
      </svg>
      <figcaption>
        <span>{new Date(lo).toISOString().slice(0, 19).replace('T', ' ')}</span>
        <span>{new Date(hi).toISOString().slice(0, 19).replace('T', ' ')} UTC</span>
      </figcaption>
    </figure>
  );
}

export function Overview({ hits, more, q, onQuery }: { hits: Hit[]; more: boolean; q: string; onQuery: (q: string) => void }) {
  const facets = useMemo(
    () =>
      FACETS.map(([name, get]) => {
        const n = new Map<string, number>();
        for (const h of hits) {
          const v = get(h);
          if (v) n.set(v, (n.get(v) ?? 0) + 1);
        }
        return [name, [...n].sort((a, b) => b[1] - a[1]).slice(0, 5)] as const;
      }),
    [hits],
  );
  if (hits.length === 0) return null;
  return (
    <section class="overview" aria-label="overview of the matches">
      <p class="hint">
        Over the {hits.length.toLocaleString()} matches loaded{more ? ' (scroll the results to load more)' : ''}:
      </p>
      <Histogram hits={hits} onSpan={(f, t) => onQuery(withSpan(q, f, t))} />
      <div class="facets">
        {facets.map(([name, values]) => (
          <div class="facet">
            <h3>{name}</h3>
            <ul>
              {values.map(([v, c]) => (
                <li>
                  <button
                    type="button"
                    class="link"
                    onClick={() => onQuery(`${q} ${name}:${quoteValue(v)}`.trim())}
                    title={`add ${name}:${v}`}
                  >
                    {v}
                  </button>{' '}
                  <span class="count">{c.toLocaleString()}</span>
                </li>
              ))}
            </ul>
          </div>
        ))}
      </div>
    </section>
  );
}
