/**
 * The Stele console: sign in (an API key, or the policy's OpenID Connect issuers), then search,
 * read and verify entries, and see the log's health. State lives in memory and in the URL's
 * hash (the query and the open entry, so a search can be shared); credentials only in memory.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Holds, Keys, Policy } from './admin.js';
import { ApiError, getJson, signIn, signOut, type Whoami } from './api.js';
import { Health } from './health.js';
import { finishLogin, type IssuerLogin, startLogin } from './oidc.js';
import { Problem } from './problem.js';
import { parseRoute, type Route } from './route.js';
import { Search } from './search.js';

function SignIn({ onDone }: { onDone: (w: Whoami) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [issuers, setIssuers] = useState<IssuerLogin[]>([]);
  const enter = async (credential: string) => {
    signIn(credential);
    try {
      onDone(await getJson<Whoami>('/v1/whoami'));
    } catch (err) {
      signOut();
      throw err;
    }
  };
  const attempt = async (what: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await what();
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? `Not accepted: ${err.message}` : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => {
    void getJson<{ issuers: IssuerLogin[] }>('/v1/console/config').then(
      (c) => setIssuers(c.issuers),
      () => setIssuers([]),
    );
    // Back from an identity provider: finish its sign-in.
    void attempt(async () => {
      const token = await finishLogin();
      if (token) await enter(token);
    });
  }, []);
  return (
    <main class="signin">
      <h1>Stele</h1>
      <p>A tamper-evident audit log. Sign in to search it; every entry you open can be verified by this browser.</p>
      {issuers.map((i) => (
        <p>
          <button type="button" disabled={busy} onClick={() => void attempt(() => startLogin(i))}>
            Sign in with {i.label}
          </button>
        </p>
      ))}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void attempt(() => enter(key.trim()));
        }}
      >
        <label for="key">{issuers.length ? 'Or an API key' : 'API key'}</label>
        <input
          id="key"
          type="password"
          autocomplete="off"
          value={key}
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
          placeholder="stele_…"
          required
        />
        <button type="submit" disabled={busy || key.trim() === ''}>
          Sign in
        </button>
        <Problem text={error} />
      </form>
      <p class="hint">Your credential stays in this tab's memory: reloading the page signs you out.</p>
    </main>
  );
}

function App() {
  const [me, setMe] = useState<Whoami | null>(null);
  const [route, setRoute] = useState<Route>(parseRoute);
  useEffect(() => {
    const on = () => setRoute(parseRoute());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  if (!me) return <SignIn onDone={setMe} />;
  const may = (a: string) => me.actions.includes(a);
  const tab = (view: Route['view'], label: string) => (
    <a href={`#/${view}`} aria-current={route.view === view ? 'page' : undefined}>
      {label}
    </a>
  );
  return (
    <div class="shell">
      <header>
        <span class="brand">Stele</span>
        <span class="origin" title="the log's origin">
          {me.origin}
        </span>
        <nav aria-label="views">
          {tab('search', 'Search')}
          {(may('hold') || may('erase')) && tab('holds', 'Holds')}
          {may('admin') && tab('policy', 'Policy')}
          {may('admin') && tab('keys', 'Keys')}
          {tab('health', 'Health')}
        </nav>
        <span class="who" title={`roles: ${me.principal.roles.join(', ') || 'none'}`}>
          {me.principal.id}
        </span>
        <button
          type="button"
          class="link"
          onClick={() => {
            signOut();
            setMe(null);
          }}
        >
          Sign out
        </button>
      </header>
      {route.view === 'health' ? (
        <Health me={me} />
      ) : route.view === 'holds' ? (
        <Holds canHold={may('hold')} canErase={may('erase')} />
      ) : route.view === 'policy' ? (
        <Policy />
      ) : route.view === 'keys' ? (
        <Keys />
      ) : (
        <Search me={me} params={route.params} />
      )}
    </div>
  );
}

render(<App />, document.getElementById('app') as HTMLElement);
