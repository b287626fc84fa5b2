/**
 * The log's health (size, checkpoint, index, mirror, witnesses, from /healthz), who you are and
 * what you may do, and the keys this browser verifies against.
 */
import { useEffect, useState } from 'preact/hooks';
import { getJson, type Whoami } from './api.js';
import { Problem } from './problem.js';
import { loadTrust, saveTrust, type Trust } from './trust.js';
import { parseVkey } from './verify.js';

interface Healthz {
  status: string;
  origin: string;
  size: number;
  checkpoint_size: number;
  mirror?: { size: number; ok: boolean; last_success: string | null };
  witnesses?: { quorum: number; ok: number; cosigned_at: string | null };
  integrator?: boolean;
}

function TrustForm({ me }: { me: Whoami }) {
  const [trust, setTrust] = useState<Trust>(() => loadTrust(me.origin, me.vkey));
  const [logKey, setLogKey] = useState(trust.logKey);
  const [witnesses, setWitnesses] = useState(trust.witnesses.join('\n'));
  const [quorum, setQuorum] = useState(String(trust.quorum));
  const [msg, setMsg] = useState<string | null>(null);
  const save = async (e: Event) => {
    e.preventDefault();
    try {
      const ws = witnesses
        .split('\n')
        .map((w) => w.trim())
        .filter(Boolean);
      await parseVkey(logKey);
      for (const w of ws) await parseVkey(w);
      const q = Math.min(ws.length, Math.max(0, Number(quorum) || 0));
      const t: Trust = {
        logKey: logKey.trim(),
        pinned: { at: new Date().toISOString(), by: 'user' },
        witnesses: ws,
        quorum: ws.length ? Math.max(1, q) : 0,
      };
      saveTrust(me.origin, t);
      setTrust(t);
      setMsg('Saved: Verify now checks against these keys.');
    } catch (err) {
      setMsg(`Not saved: ${(err as Error).message}`);
    }
  };
  return (
    <form class="trust" onSubmit={save} aria-label="keys this browser trusts">
      <h2>Keys this browser verifies against</h2>
      <p class="hint">
        The log key was pinned {trust.pinned.by === 'first-use' ? 'from this server the first time you signed in' : 'by you'} on{' '}
        {trust.pinned.at.slice(0, 10)}. A server can only prove what it says with its own key: compare it with the key your
        auditors hold.
        {trust.logKey !== me.vkey && <strong class="error"> This server now names another key: {me.vkey}</strong>}
      </p>
      <label for="logkey">Log verifier key</label>
      <input id="logkey" value={logKey} onInput={(e) => setLogKey((e.target as HTMLInputElement).value)} spellcheck={false} />
      <label for="witnesses">Witness keys (one a line)</label>
      <textarea
        id="witnesses"
        rows={3}
        value={witnesses}
        onInput={(e) => setWitnesses((e.target as HTMLTextAreaElement).value)}
        spellcheck={false}
      />
      <label for="quorum">Witnesses that must have cosigned</label>
      <input id="quorum" type="number" min={0} value={quorum} onInput={(e) => setQuorum((e.target as HTMLInputElement).value)} />
      <button type="submit">Save</button>
      {msg && <p role="status">{msg}</p>}
    </form>
  );
}

export function Health({ me }: { me: Whoami }) {
  const [h, setH] = useState<Healthz | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const load = () => getJson<Healthz>('/healthz').then(setH, (e: Error) => setError(e.message));
    void load();
    const t = setInterval(load, 5000);
    return () => clearInterval(t);
  }, []);
  return (
    <main class="health">
      <h1>Health</h1>
      <Problem text={error} />
      {h && (
        <dl class="facts">
          <dt>status</dt>
          <dd>{h.status}</dd>
          <dt>entries</dt>
          <dd>{h.size.toLocaleString()}</dd>
          <dt>checkpoint covers</dt>
          <dd>{h.checkpoint_size.toLocaleString()}</dd>
          {h.mirror && (
            <>
              <dt>S3 mirror</dt>
              <dd>
                {h.mirror.size.toLocaleString()} entries, {h.mirror.ok ? 'ok' : 'failing'}
                {h.mirror.last_success ? `, last copy ${h.mirror.last_success}` : ''}
              </dd>
            </>
          )}
          {h.witnesses && (
            <>
              <dt>witnesses</dt>
              <dd>
                {h.witnesses.ok} answering, quorum {h.witnesses.quorum}
                {h.witnesses.cosigned_at ? `, last cosigned ${h.witnesses.cosigned_at}` : ''}
              </dd>
            </>
          )}
          {h.integrator !== undefined && (
            <>
              <dt>this node</dt>
              <dd>{h.integrator ? 'integrates the log' : 'takes appends and reads'}</dd>
            </>
          )}
        </dl>
      )}
      <h2>You</h2>
      <dl class="facts">
        <dt>principal</dt>
        <dd>
          {me.principal.id} ({me.principal.kind}, {me.principal.method})
        </dd>
        <dt>roles</dt>
        <dd>{me.principal.roles.join(', ') || 'none'}</dd>
        <dt>may</dt>
        <dd>{me.actions.join(', ') || 'nothing'}</dd>
        <dt>tiers you may search</dt>
        <dd>{me.tiers.search.join(', ') || 'none'}</dd>
      </dl>
      <TrustForm me={me} />
    </main>
  );
}
