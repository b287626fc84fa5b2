/**
 * One entry: its event (or why it cannot be read: erased, expired, a tier the reader may not
 * see), who sent it and how they were authenticated, its tier, and Verify, which fetches the
 * leaf, the checkpoint and the inclusion proof and checks them here (verify.ts).
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, getBytes, getJson, getText, type Hit, type Hold, type Whoami } from './api.js';
import { Problem } from './problem.js';
import { quoteValue } from './query.js';
import { navigate } from './route.js';
import { loadTrust } from './trust.js';
import { fromBase64, type Proven, parseCheckpointNote, verifyEntry } from './verify.js';

interface EntryAnswer {
  index: number;
  leaf_hash: string;
  record: Record<string, unknown>;
  event?: Hit['event'];
  ingest?: Hit['ingest'];
  tier?: string;
  state?: string;
}

export async function proveEntry(index: number, me: Whoami): Promise<Proven> {
  const trust = loadTrust(me.origin, me.vkey);
  const note = await getText('/log/checkpoint');
  const cp = parseCheckpointNote(note);
  if (index >= cp.size)
    return {
      ok: false,
      checks: [
        {
          what: 'checkpoint',
          ok: false,
          decides: true,
          detail: `entry ${index} is not yet in a checkpoint (size ${cp.size}); try again in a moment`,
        },
      ],
    };
  const [leaf, proof] = await Promise.all([
    getBytes(`/v1/entries/${index}`),
    getJson<{ proof: string[] }>(`/v1/proofs/inclusion?index=${index}&size=${cp.size}`).then(
      (p) => p.proof.map(fromBase64),
      (err: Error) => err,
    ),
  ]);
  return verifyEntry({
    leaf,
    index,
    proof,
    note,
    logKey: trust.logKey,
    witnesses: trust.witnesses,
    quorum: trust.quorum,
  });
}

const DAY_MS = 86_400_000;

/** Whether a hold covers an entry: holds keep data keys, one per (tier, UTC day of receipt, actor or subject). */
export function covers(h: Hold, e: Hit): boolean {
  const received = Date.parse(e.received);
  const dayStart = received - (received % DAY_MS);
  return (
    (h.tier === null || h.tier === e.tier) &&
    (h.actor === null || h.actor === e.event?.actor.id) &&
    (h.subject === null || h.subject === e.event?.subject) &&
    (h.since === null || dayStart + DAY_MS > Date.parse(h.since)) &&
    (h.until === null || dayStart < Date.parse(h.until))
  );
}

function retention(me: Whoami, e: Hit): string {
  const days = me.retention[e.tier];
  if (days === undefined) return '';
  if (days === null) return 'kept forever';
  const received = Date.parse(e.received);
  const ends = new Date(received - (received % DAY_MS) + (days + 1) * DAY_MS);
  return `kept ${days} days: its key is destroyed after ${ends.toISOString().slice(0, 10)} unless a hold keeps it`;
}

export function Detail({ me, index, hit, onClose }: { me: Whoami; index: number; hit: Hit | null; onClose: () => void }) {
  const [holds, setHolds] = useState<Hold[] | null>(null);
  useEffect(() => {
    if (!me.actions.includes('hold')) return;
    getJson<{ holds: Hold[] }>('/v1/holds').then(
      (r) => setHolds(r.holds),
      () => setHolds(null),
    );
  }, [index]);
  const [entry, setEntry] = useState<Hit | null>(hit);
  const [error, setError] = useState<string | null>(null);
  const [proven, setProven] = useState<Proven | null>(null);
  const [verifying, setVerifying] = useState(false);
  useEffect(() => {
    setProven(null);
    setError(null);
    if (hit) {
      setEntry(hit);
      return;
    }
    // Opened from a link: read it (a read the log records, as any other).
    getJson<EntryAnswer>(`/v1/entries/${index}`).then(
      (a) =>
        setEntry({
          index: a.index,
          received: String(a.record.received ?? ''),
          tier: a.tier ?? '',
          ...(a.event ? { event: a.event } : {}),
          ...(a.ingest ? { ingest: a.ingest } : {}),
          ...(a.state ? { state: a.state } : {}),
        }),
      (err: Error) => setError(err instanceof ApiError ? `${err.message}` : err.message),
    );
  }, [index, hit]);
  const verify = async () => {
    setVerifying(true);
    setProven(null);
    try {
      setProven(await proveEntry(index, me));
    } catch (err) {
      setProven({ ok: false, checks: [{ what: 'verification', ok: false, decides: true, detail: (err as Error).message }] });
    } finally {
      setVerifying(false);
    }
  };
  const trust = loadTrust(me.origin, me.vkey);
  const e = entry?.event;
  const kept = entry ? retention(me, entry) : '';
  return (
    <aside class="detail" aria-label={`entry ${index}`}>
      <div class="detail-head">
        <h2>Entry {index}</h2>
        <button type="button" class="link" onClick={onClose} aria-label="close entry">
          ✕
        </button>
      </div>
      <Problem text={error} />
      {entry && (
        <dl>
          <dt>received</dt>
          <dd>{entry.received}</dd>
          <dt>tier</dt>
          <dd>
            {entry.tier}
            {entry.event && kept ? ` (${kept})` : ''}
          </dd>
          {holds && entry.event && (
            <>
              <dt>legal holds</dt>
              <dd>
                {holds
                  .filter((h) => covers(h, entry))
                  .map((h) => `${h.reason} (by ${h.created_by})`)
                  .join('; ') || 'none covers it'}
              </dd>
            </>
          )}
          {entry.ingest && (
            <>
              <dt>sent by</dt>
              <dd>
                {entry.ingest.principal}
                {entry.ingest.method ? ` (${entry.ingest.method})` : ''}
              </dd>
            </>
          )}
          {e && (
            <>
              <dt>actor</dt>
              <dd>
                {e.actor.id} ({e.actor.type}
                {e.actor.verified ? ', verified' : ', vouched for by the sender'})
                {e.actor.on_behalf_of ? ` on behalf of ${e.actor.on_behalf_of}` : ''}
              </dd>
            </>
          )}
          {!e && (
            <>
              <dt>state</dt>
              <dd class="gap">
                {entry.state === 'erased'
                  ? 'erased: its key was destroyed, so nobody can read it; its leaf and proofs remain'
                  : entry.state === 'expired'
                    ? 'expired under its tier’s retention: its key was destroyed'
                    : (entry.state ?? 'not readable by you')}
              </dd>
            </>
          )}
        </dl>
      )}
      <div class="verify">
        <button type="button" onClick={() => void verify()} disabled={verifying}>
          {verifying ? 'Verifying…' : 'Verify in this browser'}
        </button>
        {proven && (
          <div class={`proof ${proven.ok ? 'ok' : 'bad'}`} role="status">
            <strong>{proven.ok ? '✔ Verified: this entry is in the log' : '✘ Not verified'}</strong>
            <ul>
              {proven.checks.map((c) => (
                <li class={c.ok ? 'ok' : 'bad'}>
                  <span class="what">{c.what}</span>: {c.detail}
                </li>
              ))}
            </ul>
            <p class="hint">
              Checked against the log key {trust.logKey.split('+').slice(0, 2).join('+')}, pinned{' '}
              {trust.pinned.by === 'first-use' ? 'from this server on first use' : 'by you'} on {trust.pinned.at.slice(0, 10)}:
              compare it with the key your auditors hold (Health shows it in full).
            </p>
          </div>
        )}
      </div>
      {e && (
        <p class="related">
          <button
            type="button"
            class="link"
            onClick={() => navigate('search', { q: `actor:${quoteValue(e.actor.id)} OR on_behalf_of:${quoteValue(e.actor.id)}` })}
          >
            Everything by {e.actor.id}
            {e.actor.type === 'human' ? ' (and AI agents on their behalf)' : ''}
          </button>
          {e.resource && (
            <button
              type="button"
              class="link"
              onClick={() => navigate('search', { q: `resource:${quoteValue(e.resource?.id ?? '')}` })}
            >
              History of {e.resource.type} {e.resource.id}
            </button>
          )}
        </p>
      )}
      {e && <pre class="json">{JSON.stringify(e, null, 2)}</pre>}
    </aside>
  );
}
