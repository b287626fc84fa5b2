/**
 * Search: the query box (coloured as the language reads, field names completed, a refused
 * query's error shown at its position), a results table that only renders the rows in view (so
 * thousands stay fast), more pages loaded as it scrolls, and the open entry beside it.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, download, follow, getJson, type Hit, type SearchPage, type Whoami } from './api.js';
import { Detail } from './detail.js';
import { Overview } from './overview.js';
import { completions, tokens } from './query.js';
import { navigate } from './route.js';

const ROW = 32;
/** The results' columns: class (widths in style.css) and heading. */
const COLUMNS = [
  ['c-index', '#'],
  ['c-time', 'time (UTC)'],
  ['c-actor', 'actor'],
  ['c-action', 'action'],
  ['c-resource', 'resource'],
  ['c-outcome', 'outcome'],
  ['c-tier', 'tier'],
] as const;
const OVERSCAN = 8;

function QueryBox(props: {
  value: string;
  error: ApiError | null;
  recent: Readonly<Record<string, readonly string[]>>;
  onSubmit: (q: string) => void;
}) {
  const [q, setQ] = useState(props.value);
  const [caret, setCaret] = useState(0);
  const [pick, setPick] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => setQ(props.value), [props.value]);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === '/' && document.activeElement?.tagName !== 'INPUT') {
        e.preventDefault();
        input.current?.focus();
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, []);
  const done = completions(q, caret, props.recent);
  const complete = (f: string) => {
    const next = `${q.slice(0, done.from)}${f}${q.slice(caret)}`;
    const at = done.from + f.length;
    // Into the element at once, not after a frame: a key typed straight after Tab would land
    // before a deferred caret move and end up behind it ("actor:ve" for "ev").
    const el = input.current;
    if (el) {
      el.value = next;
      el.setSelectionRange(at, at);
    }
    setQ(next);
    setCaret(at);
  };
  const pos = typeof props.error?.detail.position === 'number' ? (props.error.detail.position as number) : null;
  return (
    <form
      class="query"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        props.onSubmit(q);
      }}
    >
      <div class="box">
        <div class="paint" aria-hidden="true">
          {tokens(q).map((t) => (
            <span class={`t-${t.kind}${pos !== null && pos >= t.start && pos < t.start + t.text.length ? ' t-bad' : ''}`}>
              {t.text}
            </span>
          ))}
        </div>
        <input
          ref={input}
          aria-label="search query"
          aria-describedby={props.error ? 'query-error' : undefined}
          aria-invalid={props.error ? 'true' : undefined}
          spellcheck={false}
          autocomplete="off"
          value={q}
          placeholder="actor:alice action:git.* outcome:failure since:7d &quot;init.el&quot;"
          onInput={(e) => {
            const el = e.target as HTMLInputElement;
            setQ(el.value);
            setCaret(el.selectionStart ?? el.value.length);
            setPick(0);
          }}
          onKeyUp={(e) => setCaret((e.target as HTMLInputElement).selectionStart ?? 0)}
          onKeyDown={(e) => {
            if (done.options.length && (e.key === 'Tab' || (e.key === 'Enter' && pick >= 0 && e.altKey))) {
              e.preventDefault();
              complete(done.options[pick] as string);
            } else if (done.options.length && e.key === 'ArrowDown') {
              e.preventDefault();
              setPick((pick + 1) % done.options.length);
            }
          }}
        />
        {done.options.length > 0 && (
          <div class="complete" role="listbox" aria-label="completions, Tab to complete">
            {done.options.map((f, i) => (
              <div
                role="option"
                tabIndex={-1}
                aria-selected={i === pick}
                onMouseDown={(e) => {
                  e.preventDefault();
                  complete(f);
                }}
              >
                {f}
              </div>
            ))}
          </div>
        )}
      </div>
      <button type="submit">Search</button>
      {props.error && (
        <p id="query-error" role="alert" class="error">
          {props.error.message}
        </p>
      )}
    </form>
  );
}

const actorOf = (h: Hit) => h.event?.actor.id ?? '';

function Row({ hit, at, selected, onOpen }: { hit: Hit; at: number; selected: boolean; onOpen: () => void }) {
  const e = hit.event;
  return (
    <div
      role="row"
      aria-rowindex={at + 2}
      aria-selected={selected}
      tabIndex={selected ? 0 : -1}
      class={`row${selected ? ' selected' : ''}${e ? '' : ' gap'}`}
      style={{ top: `${at * ROW}px` }}
      onClick={onOpen}
      onKeyDown={(e) => {
        if (e.key === 'Enter') onOpen();
      }}
      data-index={hit.index}
    >
      <span role="gridcell" tabIndex={-1} class="c-index">
        {hit.index}
      </span>
      <span role="gridcell" tabIndex={-1} class="c-time">
        {e ? e.time.replace('T', ' ').replace(/\.\d+Z$|Z$/, '') : hit.received.replace('T', ' ').slice(0, 19)}
      </span>
      <span role="gridcell" tabIndex={-1} class="c-actor">
        {e ? actorOf(hit) : `(${hit.state ?? 'gap'})`}
        {e?.actor.on_behalf_of && <span class="for"> for {e.actor.on_behalf_of}</span>}
      </span>
      <span role="gridcell" tabIndex={-1} class="c-action">
        {e?.action ?? ''}
      </span>
      <span role="gridcell" tabIndex={-1} class="c-resource">
        {e?.resource ? `${e.resource.type}:${e.resource.id}` : ''}
      </span>
      <span role="gridcell" tabIndex={-1} class={`c-outcome o-${e?.outcome ?? 'none'}`}>
        {e?.outcome ?? ''}
      </span>
      <span role="gridcell" tabIndex={-1} class="c-tier">
        {hit.tier}
      </span>
    </div>
  );
}

export function Search({ me, params }: { me: Whoami; params: URLSearchParams }) {
  const q = params.get('q') ?? '';
  const open = params.get('entry');
  const [hits, setHits] = useState<Hit[]>([]);
  const [next, setNext] = useState<string | undefined>();
  const [indexed, setIndexed] = useState<number | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(false);
  /** The query the rows shown are the answer to (tests and screen readers wait on it). */
  const [shownFor, setShownFor] = useState<string | null>(null);
  const [scroll, setScroll] = useState(0);
  const [height, setHeight] = useState(600);
  const [cursorAt, setCursorAt] = useState(0);
  const body = useRef<HTMLDivElement>(null);
  const generation = useRef(0);
  const [live, setLive] = useState(false);
  /** Where live mode resumes: the search answered for everything below indexed_through, so nothing is missed between the two. */
  const seenThrough = useRef<number | null>(null);

  // Live: new matches as they become searchable, on top (the stream resumes after the newest shown).
  useEffect(() => {
    if (!live) return;
    const stop = new AbortController();
    const run = async () => {
      while (!stop.signal.aborted) {
        try {
          await follow(
            q,
            seenThrough.current,
            (h) => {
              seenThrough.current = Math.max(seenThrough.current ?? -1, h.index);
              setHits((old) => (old.some((x) => x.index === h.index) ? old : [h, ...old]));
            },
            stop.signal,
          );
        } catch (err) {
          if (stop.signal.aborted) return;
          if (err instanceof ApiError && err.status < 500) {
            setError(err);
            setLive(false);
            return;
          }
        }
        await new Promise((r) => setTimeout(r, 2000));
      }
    };
    void run();
    return () => stop.abort();
  }, [live, q]);

  const fetchPage = async (cursor: string | undefined, replace: boolean) => {
    const gen = generation.current;
    setLoading(true);
    try {
      const p = new URLSearchParams({ q, limit: '200' });
      if (cursor) p.set('cursor', cursor);
      const page = await getJson<SearchPage>(`/v1/events?${p}`);
      if (gen !== generation.current) return;
      setHits((old) => (replace ? page.hits : [...old, ...page.hits]));
      setNext(page.next);
      setIndexed(page.indexed_through);
      if (replace) seenThrough.current = Math.max(seenThrough.current ?? -1, page.indexed_through - 1);
      setError(null);
    } catch (err) {
      if (gen !== generation.current) return;
      setError(err instanceof ApiError ? err : new ApiError(0, 'network', (err as Error).message, {}));
      if (replace) setHits([]);
    } finally {
      if (gen === generation.current) {
        setLoading(false);
        setShownFor(q);
      }
    }
  };

  useEffect(() => {
    generation.current++;
    seenThrough.current = null;
    setHits([]);
    setNext(undefined);
    setCursorAt(0);
    body.current?.scrollTo(0, 0);
    void fetchPage(undefined, true);
  }, [q]);

  useEffect(() => {
    const el = body.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // More rows once the view nears the end of what is loaded.
  useEffect(() => {
    if (next && !loading && (scroll + height) / ROW > hits.length - 40) void fetchPage(next, false);
  }, [scroll, height, hits.length, next, loading]);

  // Values seen in the loaded matches, for completion after `field:`.
  const recent = useMemo(() => {
    const seen: Record<string, Set<string>> = {};
    const add = (f: string, v: string | undefined) => {
      if (!v) return;
      seen[f] ??= new Set();
      seen[f].add(v);
    };
    for (const h of hits.slice(0, 2000)) {
      const e = h.event;
      add('tier', h.tier);
      if (!e) continue;
      add('actor', e.actor.id);
      add('on_behalf_of', e.actor.on_behalf_of);
      add('action', e.action);
      add('source', e.source.kind);
      add('host', e.source.host);
      add('resource', e.resource?.id);
      add('outcome', e.outcome);
    }
    return Object.fromEntries(Object.entries(seen).map(([f, vs]) => [f, [...vs].sort()]));
  }, [hits]);
  const first = Math.max(0, Math.floor(scroll / ROW) - OVERSCAN);
  const last = Math.min(hits.length, Math.ceil((scroll + height) / ROW) + OVERSCAN);
  const openHit = useMemo(() => (open === null ? null : (hits.find((h) => String(h.index) === open) ?? null)), [open, hits]);
  const select = (i: number) => {
    const h = hits[i];
    if (!h) return;
    setCursorAt(i);
    navigate('search', { q, entry: String(h.index) });
    const el = body.current;
    if (el && (i * ROW < el.scrollTop || (i + 1) * ROW > el.scrollTop + el.clientHeight))
      el.scrollTop = i * ROW - el.clientHeight / 2;
  };

  return (
    <main class="search">
      <QueryBox value={q} error={error} recent={recent} onSubmit={(nq) => navigate('search', { q: nq })} />
      <div
        class="status"
        aria-live="polite"
        data-query={shownFor ?? undefined}
        data-state={loading || shownFor !== q ? 'loading' : 'done'}
      >
        {loading ? 'Searching…' : error ? '' : `${hits.length}${next ? '+' : ''} entries`}
        {indexed !== null && <span class="indexed"> · searchable through entry {indexed - 1}</span>}
        {me.actions.includes('search') && (
          <>
            {' · '}
            <button type="button" class="link" aria-pressed={live} onClick={() => setLive(!live)}>
              {live ? 'live: following new matches (stop)' : 'follow live'}
            </button>
          </>
        )}
        {me.actions.includes('export') && (
          <span class="exports">
            {' '}
            · export:{' '}
            {(['jsonl', 'csv', 'bundle'] as const).map((f) => (
              <button
                type="button"
                class="link"
                onClick={() =>
                  void download(
                    `/v1/export?${new URLSearchParams({ q, format: f })}`,
                    `stele-export.${f === 'bundle' ? 'bundle.jsonl' : f}`,
                  ).catch((err: Error) => setError(err instanceof ApiError ? err : new ApiError(0, 'network', err.message, {})))
                }
              >
                {f === 'bundle' ? 'evidence bundle' : f.toUpperCase()}
              </button>
            ))}
          </span>
        )}
      </div>
      <Overview
        hits={hits}
        more={next !== undefined}
        q={q}
        ready={shownFor === q && !error}
        live={live}
        onQuery={(nq) => navigate('search', { q: nq })}
      />
      <div class="split">
        <div
          class="table"
          role="grid"
          tabIndex={0}
          aria-label="search results: arrow keys move, Enter opens"
          aria-rowcount={hits.length + 1}
          onKeyDown={(e) => {
            if (e.key === 'ArrowDown' || e.key === 'j') select(Math.min(hits.length - 1, cursorAt + 1));
            else if (e.key === 'ArrowUp' || e.key === 'k') select(Math.max(0, cursorAt - 1));
            else if (e.key === 'Enter') select(cursorAt);
            else return;
            e.preventDefault();
          }}
        >
          <div role="rowgroup" class="head">
            <div role="row" aria-rowindex={1} class="row" tabIndex={-1}>
              {COLUMNS.map(([cls, label]) => (
                <span role="columnheader" tabIndex={-1} class={cls}>
                  {label}
                </span>
              ))}
            </div>
          </div>
          <div ref={body} class="body" onScroll={(e) => setScroll((e.target as HTMLDivElement).scrollTop)}>
            <div role="rowgroup" class="spacer" style={{ height: `${hits.length * ROW}px` }}>
              {hits.slice(first, last).map((h, k) => (
                <Row key={h.index} hit={h} at={first + k} selected={String(h.index) === open} onOpen={() => select(first + k)} />
              ))}
            </div>
            {!loading && !error && hits.length === 0 && <p class="empty">No entries you may see match this query.</p>}
          </div>
        </div>
        {open !== null && <Detail me={me} index={Number(open)} hit={openHit} onClose={() => navigate('search', { q })} />}
      </div>
    </main>
  );
}
