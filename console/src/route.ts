/** The hash route: `#/search?q=…&entry=…`, `#/health`, `#/holds`, `#/policy`, `#/keys`; a search and its open entry can be shared as a link. */
export const VIEWS = ['search', 'health', 'holds', 'policy', 'keys'] as const;

export interface Route {
  view: (typeof VIEWS)[number];
  params: URLSearchParams;
}

export function parseRoute(): Route {
  const h = location.hash.replace(/^#\/?/, '');
  const [path = '', qs = ''] = h.split('?', 2);
  const view = VIEWS.find((v) => v === path) ?? 'search';
  return { view, params: new URLSearchParams(qs) };
}

export function navigate(view: Route['view'], params: Record<string, string | undefined> = {}): void {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') p.set(k, v);
  const qs = p.toString();
  const hash = `#/${view}${qs ? `?${qs}` : ''}`;
  if (location.hash !== hash) location.hash = hash;
}
