import { SteleError } from '../../core/errors.js';
import { plural } from '../../core/plural.js';
import { api, apiTarget, out, post, type Target } from '../client.js';

export async function retentionRunCommand(opts: Target): Promise<void> {
  const r = await post<{
    event: number;
    expiredKeys: number;
    entries: number;
    held: unknown[];
    expired: { tier: string; day: string }[];
  }>(opts, '/v1/retention/run');
  if (opts.json) return out(r);
  console.log(
    `expired ${plural(r.expiredKeys, 'data key')} (${r.expired.map((e) => `${e.tier} ${e.day}`).join(', ') || 'none due'}); ` +
      `${plural(r.entries, 'entry', 'entries')} left the index; ${plural(r.held.length, 'key')} kept by legal holds; recorded as entry ${r.event}`,
  );
}

export interface HoldAddOptions extends Target {
  reason: string;
  tier?: string;
  actor?: string;
  subject?: string;
  since?: string;
  until?: string;
}

export async function holdAddCommand(opts: HoldAddOptions): Promise<void> {
  const body: Record<string, string> = { reason: opts.reason };
  for (const k of ['tier', 'actor', 'subject', 'since', 'until'] as const) {
    const v = opts[k];
    if (v !== undefined) body[k] = v;
  }
  const h = await post<{ id: string; event: number }>(opts, '/v1/holds', body);
  if (opts.json) return out(h);
  console.log(`legal hold ${h.id} placed (entry ${h.event})`);
}

export async function holdListCommand(opts: Target & { all?: boolean }): Promise<void> {
  const { url, token } = apiTarget(opts);
  const r = await api<{ holds: Record<string, unknown>[] }>(url, `/v1/holds${opts.all ? '?all=true' : ''}`, { token });
  if (opts.json) return out(r.holds);
  if (r.holds.length === 0) return console.log('no legal holds');
  for (const h of r.holds) {
    const what = ['tier', 'actor', 'subject', 'since', 'until']
      .filter((k) => h[k] !== null && h[k] !== undefined)
      .map((k) => `${k}=${k === 'since' || k === 'until' ? new Date(Number(h[k]) / 1000).toISOString() : h[k]}`)
      .join(' ');
    const state = h.released ? `released ${h.released} by ${h.released_by}` : 'active';
    console.log(`${h.id}  ${what}  "${h.reason}"  by ${h.created_by} ${h.created}  ${state}`);
  }
}

export async function holdReleaseCommand(id: string, opts: Target & { reason: string }): Promise<void> {
  const h = await post<{ id: string; event: number }>(opts, `/v1/holds/${encodeURIComponent(id)}/release`, {
    reason: opts.reason,
  });
  if (opts.json) return out(h);
  console.log(`legal hold ${h.id} released (entry ${h.event})`);
}

export async function eraseCommand(opts: Target & { subject: string; reason: string }): Promise<void> {
  if (!opts.subject) throw new SteleError('bad_option', '--subject is required');
  const r = await post<{ event: number; keys: number; entries: number; events?: number; message?: string }>(
    opts,
    '/v1/erasures',
    { subject: opts.subject, reason: opts.reason },
  );
  if (opts.json) return out(r);
  if (r.keys === 0)
    return console.log(`${r.message ?? 'no events carry this subject'}; the request is recorded as entry ${r.event}`);
  console.log(
    `erased: ${plural(r.entries, 'indexed entry', 'indexed entries')} under ${plural(r.keys, 'data key')} can no longer be read; recorded as entry ${r.event}`,
  );
}
