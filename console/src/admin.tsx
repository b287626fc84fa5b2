/**
 * The views for those whose role allows them: legal holds and erasures (a reason is required for
 * each, and recorded), the policy in force and its load history, and API keys. Thin over the API,
 * which decides and records every action.
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, getJson, type Hold, postJson, type SearchPage } from './api.js';
import { Problem } from './problem.js';

const message = (err: unknown) => (err instanceof ApiError ? err.message : (err as Error).message);

function useLoad<T>(path: string, deps: unknown[] = []): { data: T | null; error: string | null; reload: () => void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [n, setN] = useState(0);
  useEffect(() => {
    getJson<T>(path).then(
      (d) => {
        setData(d);
        setError(null);
      },
      (e) => setError(message(e)),
    );
  }, [path, n, ...deps]);
  return { data, error, reload: () => setN(n + 1) };
}

function Field(props: {
  id: string;
  label: string;
  value: string;
  set: (v: string) => void;
  required?: boolean;
  placeholder?: string;
}) {
  return (
    <>
      <label for={props.id}>{props.label}</label>
      <input
        id={props.id}
        value={props.value}
        required={props.required}
        placeholder={props.placeholder}
        onInput={(e) => props.set((e.target as HTMLInputElement).value)}
      />
    </>
  );
}

function Release({ hold, done }: { hold: Hold; done: () => void }) {
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | null>(null);
  return (
    <form
      class="inline"
      onSubmit={(e) => {
        e.preventDefault();
        postJson(`/v1/holds/${encodeURIComponent(hold.id)}/release`, { reason }).then(done, (err) => setError(message(err)));
      }}
    >
      <input
        aria-label={`why release hold ${hold.id}`}
        placeholder="why"
        value={reason}
        onInput={(e) => setReason((e.target as HTMLInputElement).value)}
      />
      <button type="submit" disabled={reason.trim() === ''}>
        Release
      </button>
      {error && <span class="error">{error}</span>}
    </form>
  );
}

export function Holds({ canHold, canErase }: { canHold: boolean; canErase: boolean }) {
  const holds = useLoad<{ holds: Hold[] }>('/v1/holds?all=true');
  const [f, setF] = useState({ reason: '', tier: '', actor: '', subject: '', since: '', until: '' });
  const [msg, setMsg] = useState<string | null>(null);
  const [erase, setErase] = useState({ subject: '', reason: '', sure: false });
  const [erased, setErased] = useState<string | null>(null);
  const set = (k: keyof typeof f) => (v: string) => setF({ ...f, [k]: v });
  const place = async (e: Event) => {
    e.preventDefault();
    try {
      const body = Object.fromEntries(Object.entries(f).filter(([, v]) => v.trim() !== ''));
      const h = await postJson<Hold>('/v1/holds', body);
      setMsg(`Hold ${h.id} placed.`);
      setF({ reason: '', tier: '', actor: '', subject: '', since: '', until: '' });
      holds.reload();
    } catch (err) {
      setMsg(`Not placed: ${message(err)}`);
    }
  };
  const doErase = async (e: Event) => {
    e.preventDefault();
    try {
      const r = await postJson<{ keys: number; entries: number; events: number; event: number; message?: string }>(
        '/v1/erasures',
        {
          subject: erase.subject,
          reason: erase.reason,
        },
      );
      setErased(
        `Erased: ${r.events} events of the subject, ${r.entries} entries made unreadable, ${r.keys} keys destroyed; recorded as entry ${r.event}.${r.message ? ` ${r.message}` : ''}`,
      );
      setErase({ subject: '', reason: '', sure: false });
    } catch (err) {
      setErased(`Not erased: ${message(err)}`);
    }
  };
  return (
    <main class="admin">
      <h1>Legal holds and erasures</h1>
      <Problem text={holds.error} />
      <table class="list">
        <caption>Holds (a hold keeps what it covers from expiry and erasure)</caption>
        <thead>
          <tr>
            <th scope="col">reason</th>
            <th scope="col">covers</th>
            <th scope="col">placed</th>
            <th scope="col">state</th>
          </tr>
        </thead>
        <tbody>
          {(holds.data?.holds ?? []).map((h) => (
            <tr>
              <td>{h.reason}</td>
              <td>
                {[
                  h.tier && `tier ${h.tier}`,
                  h.actor && `actor ${h.actor}`,
                  h.subject && `subject ${h.subject}`,
                  h.since && `since ${h.since}`,
                  h.until && `until ${h.until}`,
                ]
                  .filter(Boolean)
                  .join(', ') || 'everything'}
              </td>
              <td>
                {h.created.slice(0, 19).replace('T', ' ')} by {h.created_by}
              </td>
              <td>
                {h.released ? (
                  `released ${h.released.slice(0, 10)} by ${h.released_by}: ${h.release_reason}`
                ) : canHold ? (
                  <Release hold={h} done={holds.reload} />
                ) : (
                  'active'
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {canHold && (
        <form class="grid" onSubmit={place} aria-label="place a hold">
          <h2>Place a hold</h2>
          <Field
            id="h-reason"
            label="Reason (recorded)"
            value={f.reason}
            set={set('reason')}
            required
            placeholder="litigation 2026-114"
          />
          <Field id="h-tier" label="Tier" value={f.tier} set={set('tier')} />
          <Field id="h-actor" label="Actor" value={f.actor} set={set('actor')} />
          <Field id="h-subject" label="Subject" value={f.subject} set={set('subject')} />
          <Field id="h-since" label="Since (RFC 3339)" value={f.since} set={set('since')} placeholder="2026-01-01T00:00:00Z" />
          <Field id="h-until" label="Until (RFC 3339)" value={f.until} set={set('until')} />
          <button type="submit" disabled={f.reason.trim() === ''}>
            Place hold
          </button>
          {msg && <p role="status">{msg}</p>}
        </form>
      )}
      {canErase && (
        <form class="grid danger" onSubmit={doErase} aria-label="erase a subject">
          <h2>Erase a subject (right to erasure)</h2>
          <p class="hint">
            Destroys the data keys of every entry about the subject: their events can never be read again, by anyone. The leaves
            and every proof stay valid. Refused while a hold covers the subject.
          </p>
          <Field id="e-subject" label="Subject" value={erase.subject} set={(v) => setErase({ ...erase, subject: v })} required />
          <Field
            id="e-reason"
            label="Reason (recorded)"
            value={erase.reason}
            set={(v) => setErase({ ...erase, reason: v })}
            required
          />
          <label>
            <input
              type="checkbox"
              checked={erase.sure}
              onChange={(e) => setErase({ ...erase, sure: (e.target as HTMLInputElement).checked })}
            />{' '}
            I understand this cannot be undone
          </label>
          <button type="submit" disabled={!erase.sure || erase.subject.trim() === '' || erase.reason.trim() === ''}>
            Erase
          </button>
          {erased && <p role="status">{erased}</p>}
        </form>
      )}
    </main>
  );
}

interface PolicyView {
  source: string;
  sha256: string;
  tiers: string[];
  roles: { name: string; members: string[]; actions: string[]; tiers: string[]; vouch: string[] }[];
}

export function Policy() {
  const p = useLoad<PolicyView>('/v1/policy');
  const loads = useLoad<SearchPage>(`/v1/events?${new URLSearchParams({ q: 'action:stele.policy.*', limit: '20' })}`);
  return (
    <main class="admin">
      <h1>Policy in force</h1>
      <Problem text={p.error} />
      {p.data && (
        <>
          <dl class="facts">
            <dt>file</dt>
            <dd>{p.data.source}</dd>
            <dt>SHA-256</dt>
            <dd>
              <code>{p.data.sha256}</code>
            </dd>
            <dt>tiers</dt>
            <dd>{p.data.tiers.join(', ')}</dd>
          </dl>
          <table class="list">
            <caption>Roles</caption>
            <thead>
              <tr>
                <th scope="col">role</th>
                <th scope="col">members</th>
                <th scope="col">may</th>
                <th scope="col">tiers</th>
              </tr>
            </thead>
            <tbody>
              {p.data.roles.map((r) => (
                <tr>
                  <td>{r.name}</td>
                  <td>{r.members.join(', ') || '(by API key)'}</td>
                  <td>{r.actions.join(', ')}</td>
                  <td>{r.tiers.join(', ') || 'all'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      <table class="list">
        <caption>Load history (newest first)</caption>
        <thead>
          <tr>
            <th scope="col">entry</th>
            <th scope="col">time</th>
            <th scope="col">what</th>
            <th scope="col">by</th>
            <th scope="col">SHA-256</th>
          </tr>
        </thead>
        <tbody>
          {(loads.data?.hits ?? []).map((h) => (
            <tr>
              <td>{h.index}</td>
              <td>{(h.event?.time ?? h.received).slice(0, 19).replace('T', ' ')}</td>
              <td>{h.event?.action ?? h.state}</td>
              <td>{h.event?.actor.id}</td>
              <td>
                <code>{String((h.event?.data as { sha256?: string } | undefined)?.sha256 ?? '').slice(0, 16)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </main>
  );
}

interface KeyInfo {
  id: string;
  name: string;
  roles: string[];
  created: string;
  created_by: string;
  revoked?: { at: string; by: string; reason: string };
}

export function Keys() {
  const keys = useLoad<{ keys: KeyInfo[] }>('/v1/keys?all=true');
  const [name, setName] = useState('');
  const [roles, setRoles] = useState('');
  const [made, setMade] = useState<string | null>(null);
  const [msg, setMsg] = useState<string | null>(null);
  const [revoking, setRevoking] = useState<{ name: string; reason: string } | null>(null);
  const create = async (e: Event) => {
    e.preventDefault();
    try {
      const r = await postJson<{ key: string; name: string }>('/v1/keys', {
        name,
        roles: roles
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean),
      });
      setMade(r.key);
      setMsg(`Key ${r.name} made. It is shown once: copy it now.`);
      setName('');
      setRoles('');
      keys.reload();
    } catch (err) {
      setMade(null);
      setMsg(`Not made: ${message(err)}`);
    }
  };
  return (
    <main class="admin">
      <h1>API keys</h1>
      <Problem text={keys.error} />
      <table class="list">
        <caption>Keys</caption>
        <thead>
          <tr>
            <th scope="col">name</th>
            <th scope="col">roles</th>
            <th scope="col">made</th>
            <th scope="col">state</th>
          </tr>
        </thead>
        <tbody>
          {(keys.data?.keys ?? []).map((k) => (
            <tr>
              <td>{k.name}</td>
              <td>{k.roles.join(', ')}</td>
              <td>
                {k.created.slice(0, 10)} by {k.created_by}
              </td>
              <td>
                {k.revoked ? (
                  `revoked ${k.revoked.at.slice(0, 10)} by ${k.revoked.by}: ${k.revoked.reason}`
                ) : revoking?.name === k.name ? (
                  <form
                    class="inline"
                    onSubmit={(e) => {
                      e.preventDefault();
                      postJson(`/v1/keys/${encodeURIComponent(k.name)}/revoke`, { reason: revoking.reason }).then(
                        () => {
                          setRevoking(null);
                          keys.reload();
                        },
                        (err) => setMsg(`Not revoked: ${message(err)}`),
                      );
                    }}
                  >
                    <input
                      aria-label={`why revoke ${k.name}`}
                      placeholder="why"
                      value={revoking.reason}
                      onInput={(e) => setRevoking({ name: k.name, reason: (e.target as HTMLInputElement).value })}
                    />
                    <button type="submit" disabled={revoking.reason.trim() === ''}>
                      Revoke
                    </button>
                  </form>
                ) : (
                  <button type="button" class="link" onClick={() => setRevoking({ name: k.name, reason: '' })}>
                    revoke…
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="grid" onSubmit={create} aria-label="make a key">
        <h2>Make a key</h2>
        <Field id="k-name" label="Name" value={name} set={setName} required placeholder="ci-deploy" />
        <Field id="k-roles" label="Roles (comma-separated)" value={roles} set={setRoles} required placeholder="writer" />
        <button type="submit" disabled={name.trim() === '' || roles.trim() === ''}>
          Make key
        </button>
        {msg && <p role="status">{msg}</p>}
        {made && (
          <p>
            <code class="secret">{made}</code>
          </p>
        )}
      </form>
    </main>
  );
}
