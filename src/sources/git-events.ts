/**
 * The events of the client git hooks (docs/sources/git.md), built by the background sender from
 * what git wrote: raw commit objects (`git cat-file --batch`), reflog entries and the pre-push
 * hook's spool lines. The shapes and ids are those the shell hooks (clients/git/stele-hook) send, and
 * a commit's id is `commitEventId(sha)`, the Emacs client's.
 */
import { commitEventId, derivedId } from './ids.js';

export type Json = Record<string, unknown>;

export interface Context {
  repo: string;
  host: string;
}

export interface Person {
  name: string;
  email: string;
  epoch: number;
  tz: string;
}

export interface RawCommit {
  sha: string;
  parents: string[];
  author: Person;
  committer: Person;
  /** A signature header (gpgsig, gpgsig-sha256) is present: not verified here. */
  signed: boolean;
  subject: string;
}

const PERSON = /^(.*?) ?<([^>]*)> (\d+) ([+-]\d{4})$/;

function person(s: string): Person {
  const m = PERSON.exec(s);
  if (!m) return { name: s, email: '', epoch: 0, tz: '+0000' };
  return { name: m[1] as string, email: m[2] as string, epoch: Number(m[3]), tz: m[4] as string };
}

/** A commit object as `git cat-file --batch` prints its body. */
export function parseCommit(sha: string, body: string): RawCommit {
  const split = body.indexOf('\n\n');
  const headers = (split < 0 ? body : body.slice(0, split)).split('\n');
  const message = split < 0 ? '' : body.slice(split + 2);
  const c: RawCommit = {
    sha,
    parents: [],
    author: person(''),
    committer: person(''),
    signed: false,
    subject: subjectOf(message),
  };
  for (const h of headers) {
    if (h.startsWith(' ')) continue; // a continued header (a signature's lines)
    const sp = h.indexOf(' ');
    const key = sp < 0 ? h : h.slice(0, sp);
    const value = sp < 0 ? '' : h.slice(sp + 1);
    if (key === 'parent') c.parents.push(value);
    else if (key === 'author') c.author = person(value);
    else if (key === 'committer') c.committer = person(value);
    else if (key.startsWith('gpgsig')) c.signed = true;
  }
  return c;
}

/** git's %s: the first paragraph, its lines joined by spaces. */
function subjectOf(message: string): string {
  const out: string[] = [];
  for (const line of message.split('\n')) {
    const t = line.trimEnd();
    if (t === '') {
      if (out.length) break;
      continue;
    }
    out.push(t);
  }
  return out.join(' ');
}

/** git's %cI: strict ISO 8601 in the committer's own offset. */
export function isoWithOffset(epoch: number, tz: string): string {
  const sign = tz.startsWith('-') ? -1 : 1;
  const minutes = sign * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(3, 5)));
  const local = new Date((epoch + minutes * 60) * 1000).toISOString().slice(0, 19);
  return `${local}${tz.slice(0, 3)}:${tz.slice(3, 5)}`;
}

/** UTC to the second, as the shell hooks write times. */
export const isoUtc = (epoch: number) => `${new Date(epoch * 1000).toISOString().slice(0, 19)}Z`;

// Control characters are dropped (a tab kept), as the shell hooks do.
// biome-ignore lint/suspicious/noControlCharactersInRegex: that is the point
const clean = (s: string) => s.replace(/[\u0000-\u0008\u000a-\u001f]/g, '');

/** At most `max` bytes, never cutting a UTF-8 character in two, "..." when cut. */
export function truncate(s: string, max: number): string {
  const b = Buffer.from(s);
  if (b.length <= max) return s;
  let end = max;
  while (end > 0 && ((b[end] as number) & 0xc0) === 0x80) end--;
  return `${b.subarray(0, end).toString('utf8')}...`;
}

function head(ctx: Context, id: string, time: string, actor: string, action: string, resource: Json, data: Json): Json {
  return {
    id,
    time,
    actor: { id: actor || 'unknown', type: 'human' },
    action,
    source: { kind: 'git', host: ctx.host || 'unknown', agent: 'stele-hooks', version: '1' },
    resource,
    outcome: 'success',
    data: { repo: ctx.repo, ...data },
  };
}

export function commitEvent(ctx: Context, c: RawCommit, branch: string | undefined): Json {
  const who = (p: Person) => ({ name: clean(p.name), email: clean(p.email) });
  return head(
    ctx,
    commitEventId(c.sha),
    isoWithOffset(c.committer.epoch, c.committer.tz),
    clean(c.committer.email || c.committer.name),
    'git.commit',
    { type: 'commit', id: c.sha },
    {
      ...(branch ? { branch } : {}),
      sha: c.sha,
      parents: c.parents,
      summary: truncate(clean(c.subject), 500),
      author: who(c.author),
      committer: who(c.committer),
      signed: c.signed,
    },
  );
}

export interface RefUpdate {
  ref: string;
  old: string;
  new: string;
  kind: 'create' | 'delete' | 'rewrite';
  time: string;
  actor: string;
  reflog?: string;
  removed?: { shas: string[]; count: number };
}

export function refUpdateEvent(ctx: Context, u: RefUpdate): Json {
  return head(
    ctx,
    derivedId('git.ref.update', `${ctx.repo}:${u.ref}:${u.old}:${u.new}:${u.time}`),
    u.time,
    u.actor,
    'git.ref.update',
    { type: 'ref', id: u.ref },
    {
      ref: u.ref,
      old: u.old,
      new: u.new,
      kind: u.kind,
      ...(u.reflog ? { reflog: truncate(clean(u.reflog), 500) } : {}),
      ...(u.removed ? { removed: u.removed.shas, removed_count: u.removed.count } : {}),
    },
  );
}

export interface Push {
  time: string;
  actor: string;
  remote: string;
  url: string;
  localRef: string;
  localSha: string;
  remoteRef: string;
  remoteSha: string;
  kind: 'create' | 'delete' | 'fast-forward' | 'rewrite' | 'unknown';
  commits?: number;
}

export function pushEvent(ctx: Context, p: Push): Json {
  return head(
    ctx,
    derivedId('git.push', `${p.url}:${p.remoteRef}:${p.remoteSha}:${p.localSha}`),
    p.time,
    p.actor,
    'git.push',
    { type: 'ref', id: p.remoteRef },
    {
      remote: p.remote,
      url: p.url,
      ref: p.remoteRef,
      local_ref: p.localRef,
      old: p.remoteSha,
      new: p.localSha,
      kind: p.kind,
      ...(p.commits !== undefined ? { commits: p.commits } : {}),
      stage: 'pre-push',
    },
  );
}

/** A URL without the user and password git may carry in it. */
export const stripCredentials = (url: string) => url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/@]*@/, '$1');

/**
 * Whether a HEAD reflog message is git making a commit (commit, amend, merge, cherry-pick, revert,
 * am, a rebase or `pull --rebase` step) rather than moving to one that exists (checkout, reset,
 * fast-forward, the start and end of a rebase).
 */
export function makesCommit(message: string): boolean {
  if (/Fast-forward|fast-forward/.test(message)) return false;
  return (
    /^commit(?: \((?:initial|amend|merge|cherry-pick)\))?:/.test(message) ||
    /^(?:cherry-pick|revert|am)\b/.test(message) ||
    /^[a-z -]*\((?:pick|reword|edit|squash|fixup|continue)\):/.test(message) ||
    /: Merge made by /.test(message)
  );
}
