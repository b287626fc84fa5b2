/**
 * Evidence that proves what it says (issue 11, point 6), through the real CLI against `stele
 * serve`: an evidence bundle carries a manifest signed by the log and the log entry recording it,
 * so verify-bundle refuses anything dropped, added, reordered or tampered with; an export cut short
 * ends without a manifest; `stele prove` checks consistency against signed roots and fails loudly;
 * and the checking commands print their JSON result when the check fails too.
 */
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { formatCheckpoint } from '../src/tlog/checkpoint.js';
import { generateKey, newSigner, signNote } from '../src/tlog/note.js';
import { appendHttp, cleanup, getJson, initDir, runStele, SteleServer, sleep, tempDir } from './helpers/stele.js';

let dir: string;
let srv: SteleServer;
let vkey: string;
let token: string;
let origin: string;
const api = () => ['--url', srv.url, '--dir', dir];

async function ok(args: string[]) {
  const r = await runStele(args);
  assert.equal(r.code, 0, `stele ${args.join(' ')}:\n${r.output}`);
  return r;
}

/** Runs a command that must fail; returns its output, with stdout parsed as JSON. */
async function fails(args: string[]) {
  const r = await runStele(args);
  assert.equal(r.code, 1, `stele ${args.join(' ')} should fail:\n${r.output}`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    assert.fail(`stele ${args.join(' ')}: standard output is not one JSON result:\n${r.output}`);
  }
  return { ...r, json };
}

const ev = (actor: string, n: number) => ({
  actor: { id: actor, type: 'human' },
  action: 'doc.edit',
  source: { kind: 'editor' },
  outcome: 'success',
  data: { n },
});

before(async () => {
  const d = await initDir('evidence.test/log');
  ({ dir, vkey, token, origin } = d);
  srv = await SteleServer.start(dir, { checkpointIntervalMs: 20 });
  await appendHttp(srv.url, token, [
    ...Array.from({ length: 5 }, (_, i) => ev('alice', i)),
    ...Array.from({ length: 3 }, (_, i) => ev('bob', i)),
  ]);
});

after(async () => {
  if (srv?.running) await srv.stop();
  await cleanup();
});

test('a bundle proves it is complete and shows the entry that records the export; any change is refused', async () => {
  const file = join(tempDir(), 'alice.stele-bundle.jsonl');
  await ok(['export', ...api(), '--format', 'bundle', '--output', file, 'actor:alice']);
  const good = await ok(['verify-bundle', file, '--vkey', vkey, '--json']);
  const r = JSON.parse(good.stdout);
  assert.equal(r.ok, true);
  assert.equal(r.count, 5);
  assert.deepEqual(r.export.query, { q: 'actor:alice', order: 'asc' });
  assert.equal(r.export.asker.method, 'apikey');
  assert.ok(r.export.record > r.export.started, 'the end record follows the start record');
  assert.ok(r.export.record >= r.size && r.export.record_checkpoint_size > r.export.record);
  // The log's own entry says the same (read through the API).
  const rec = await getJson<{ event: { action: string; data: Record<string, unknown> } }>(
    `${srv.url}/v1/entries/${r.export.record}`,
    30_000,
    token,
  );
  assert.equal(rec.event.action, 'stele.access.export.end');
  assert.equal(rec.event.data.manifest_sha256, r.export.manifest_sha256);
  assert.equal(rec.event.data.started, r.export.started);
  assert.match(
    (await ok(['verify-bundle', file, '--vkey', vkey])).stdout,
    /^ok: 5 entries .*\nexport: complete, signed by the log/,
  );

  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  const trailer = JSON.parse(lines.at(-1) as string) as Record<string, unknown>;
  const withCount = (ls: string[]) => [...ls.slice(0, -1), JSON.stringify({ ...trailer, count: ls.length - 2 })];
  const refused = async (name: string, ls: string[], why: RegExp) => {
    const f = join(tempDir(), `${name}.stele-bundle.jsonl`);
    writeFileSync(f, `${ls.join('\n')}\n`);
    const bad = await fails(['verify-bundle', f, '--vkey', vkey, '--json']);
    assert.equal(bad.json.ok, false, name);
    assert.equal((bad.json.error as { code: string }).code, 'bundle_invalid', name);
    assert.match((bad.json.error as { message: string }).message, why, name);
    assert.match(bad.stderr, why, `${name}: standard error names the problem too`);
  };
  // Dropped (and the count fixed): before the manifest, this verified.
  await refused(
    'dropped',
    withCount([...lines.slice(0, 2), ...lines.slice(3)]),
    /the manifest says 5 entries, but the bundle has 4/,
  );
  // Reordered: two swapped, or the whole list reversed (a valid order on its own).
  const swapped = [...lines];
  [swapped[2], swapped[3]] = [swapped[3] as string, swapped[2] as string];
  await refused('swapped', swapped, /entries must be in strictly increasing order/);
  const reversed = [lines[0] as string, ...lines.slice(1, -1).reverse(), lines.at(-1) as string];
  await refused('reversed', reversed, /the entries are not the ones the manifest lists/);
  // A line added twice (count fixed).
  await refused('duplicated', withCount([...lines.slice(0, 3), lines[2] as string, ...lines.slice(3)]), /duplicate entry/);
  // The manifest edited to match a shortened bundle: its signature breaks.
  const forged = { ...trailer, count: 4, manifest: (trailer.manifest as string).replace('\ncount 5\n', '\ncount 4\n') };
  assert.notEqual(forged.manifest, trailer.manifest);
  await refused(
    'tampered',
    [...lines.slice(0, 2), ...lines.slice(3, -1), JSON.stringify(forged)],
    /the export manifest does not verify with the trusted key .*invalid signature/,
  );
  // Truncated: no trailer.
  await refused('truncated', lines.slice(0, -1), /the bundle is truncated: no \{"type":"end"\} trailer after 5 entries/);
  // The intact bundle checked with another key than the log's: the JSON result says why.
  const other = generateKey(origin).vkey;
  const wrongKey = await fails(['verify-bundle', file, '--vkey', other, '--json']);
  assert.equal(wrongKey.json.ok, false);
  assert.match((wrongKey.json.error as { message: string }).message, /does not verify with the trusted key/);
});

test('with --url, verify-bundle checks that the live log still extends the bundle (a fork is caught)', async () => {
  const file = join(tempDir(), 'bob.stele-bundle.jsonl');
  await ok(['export', ...api(), '--format', 'bundle', '--output', file, 'actor:bob']);
  const live = JSON.parse((await ok(['verify-bundle', file, '--vkey', vkey, '--url', srv.url, '--json'])).stdout);
  assert.equal(live.ok, true);
  assert.ok(live.live.size >= live.export.record_checkpoint_size);
  const noKey = await fails(['verify-bundle', file, '--url', srv.url, '--json']);
  assert.match((noKey.json.error as { message: string }).message, /--url needs --vkey/);

  // Another log signed with the same key (a fork): its bundle verifies offline, but not against this log.
  const fork = await initDir(origin);
  for (const f of ['keys/log.key', 'keys/log.vkey']) cpSync(join(dir, f), join(fork.dir, f));
  const o = await SteleServer.start(fork.dir, { checkpointIntervalMs: 20 });
  try {
    await appendHttp(
      o.url,
      fork.token,
      Array.from({ length: 40 }, (_, i) => ev('bob', i)),
    );
    const forked = join(tempDir(), 'fork.stele-bundle.jsonl');
    await ok(['export', '--url', o.url, '--token', fork.token, '--format', 'bundle', '--output', forked, 'actor:bob']);
    await ok(['verify-bundle', forked, '--vkey', vkey]);
    const bad = await fails(['verify-bundle', forked, '--vkey', vkey, '--url', srv.url, '--json']);
    assert.match((bad.json.error as { message: string }).message, /does not extend the bundle's checkpoint|the log rolled back/);
  } finally {
    await o.stop();
  }
});

test('an export cut short (the client went away) is recorded as incomplete and carries no manifest', async () => {
  // More than a page (1,000 entries), so the export is still streaming when the client leaves.
  for (let b = 0; b < 3; b++) {
    await appendHttp(
      srv.url,
      token,
      Array.from({ length: 1000 }, (_, i) => ev('carol', b * 1000 + i)),
    );
  }
  const ac = new AbortController();
  const res = await fetch(`${srv.url}/v1/export?format=bundle&q=${encodeURIComponent('actor:carol')}`, {
    headers: { authorization: `Bearer ${token}` },
    signal: ac.signal,
  });
  assert.equal(res.status, 200);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  let got = '';
  while (!got.includes('\n')) got += Buffer.from((await reader.read()).value ?? []).toString('utf8');
  ac.abort();
  await reader.cancel().catch(() => {});
  assert.ok(!got.includes('"type":"end"'), 'the client left before the end');

  type Hit = { index: number; event: { action: string; data: Record<string, unknown> } };
  const deadline = Date.now() + 30_000;
  let end: Hit | undefined;
  while (!end) {
    const page = await getJson<{ hits: Hit[] }>(
      `${srv.url}/v1/events?q=${encodeURIComponent('action:stele.access.export.end')}&limit=1`,
      30_000,
      token,
    );
    const h = page.hits[0];
    if (h && h.event.data.complete === false) end = h;
    else if (Date.now() > deadline) assert.fail(`no incomplete export recorded; last: ${JSON.stringify(h)}`);
    else await sleep(100);
  }
  assert.equal(end.event.data.complete, false);
  assert.equal('manifest_sha256' in end.event.data, false, 'no manifest was signed for a cut export');
});

test('stele prove checks consistency against signed checkpoints and fails loudly', async () => {
  const old = join(tempDir(), 'old.checkpoint');
  writeFileSync(old, (await ok(['checkpoint', '--url', srv.url, '--vkey', vkey])).stdout);
  const oldSize = Number(readFileSync(old, 'utf8').split('\n')[1]);
  await appendHttp(srv.url, token, [ev('dave', 1), ev('dave', 2)]);
  let latest = oldSize;
  for (const deadline = Date.now() + 30_000; latest <= oldSize + 1 && Date.now() < deadline; await sleep(50)) {
    latest = JSON.parse((await ok(['checkpoint', '--url', srv.url, '--vkey', vkey, '--json'])).stdout).size;
  }
  const src = ['--url', srv.url, '--vkey', vkey];

  // From a saved checkpoint (signed) to the latest (signed).
  const fromSaved = JSON.parse((await ok(['prove', ...src, '--from', old])).stdout);
  assert.equal(fromSaved.verified, true);
  assert.equal(fromSaved.from, oldSize);
  assert.ok(fromSaved.to > oldSize);
  assert.equal(fromSaved.from_checkpoint, readFileSync(old, 'utf8'));
  // Between two sizes: both roots computed from the tiles and proven against the signed checkpoint.
  const sizes = JSON.parse((await ok(['prove', ...src, '--from', '3', '--to', '5'])).stdout);
  assert.equal(sizes.verified, true);
  assert.deepEqual([sizes.from, sizes.to], [3, 5]);
  const incl = JSON.parse((await ok(['prove', ...src, '--index', '1', '--size', '4'])).stdout);
  assert.equal(incl.verified, true);

  // A checkpoint the log signed for a tree it does not have (a fork): refused, exit 1.
  const skey = readFileSync(join(dir, 'keys', 'log.key'), 'utf8').trim();
  const forkFile = join(tempDir(), 'fork.checkpoint');
  writeFileSync(
    forkFile,
    signNote(formatCheckpoint({ origin, size: 3, root: Buffer.alloc(32, 7), extensions: [] }), [newSigner(skey)]),
  );
  const fork = await fails(['prove', ...src, '--from', forkFile]);
  assert.equal(fork.json.verified, false);
  assert.match((fork.json.error as { message: string }).message, /the log forked/);
  // A checkpoint signed by another key.
  const stranger = generateKey(origin);
  const strangeFile = join(tempDir(), 'stranger.checkpoint');
  writeFileSync(
    strangeFile,
    signNote(formatCheckpoint({ origin, size: 3, root: Buffer.alloc(32, 7), extensions: [] }), [newSigner(stranger.skey)]),
  );
  const strange = await fails(['prove', ...src, '--from', strangeFile]);
  assert.match((strange.json.error as { message: string }).message, /the checkpoint does not verify/);
  // A saved checkpoint newer than the log's: it rolled back.
  const aheadFile = join(tempDir(), 'ahead.checkpoint');
  writeFileSync(
    aheadFile,
    signNote(formatCheckpoint({ origin, size: latest + 100, root: Buffer.alloc(32, 7), extensions: [] }), [newSigner(skey)]),
  );
  assert.match(
    ((await fails(['prove', ...src, '--from', aheadFile])).json.error as { message: string }).message,
    /the log rolled back, or forked/,
  );
});

test('verify and checkpoint print their JSON result when the check fails', async () => {
  const other = generateKey(origin).vkey;
  const good = await ok(['verify', '--url', srv.url, '--vkey', vkey, '--json']);
  assert.equal(JSON.parse(good.stdout).ok, true);
  const bad = await fails(['verify', '--url', srv.url, '--vkey', other, '--json']);
  assert.equal(bad.json.ok, false);
  assert.equal((bad.json.error as { code: string }).code, 'verify_failed');
  assert.match(bad.stderr, /verification FAILED/);
  const missing = await fails(['verify', '--url', srv.url, '--vkey', vkey, '--since', join(tempDir(), 'nope'), '--json']);
  assert.match((missing.json.error as { message: string }).message, /--since: cannot read/);
  const cp = await fails(['checkpoint', '--url', srv.url, '--vkey', other, '--json']);
  assert.equal(cp.json.ok, false);
  assert.match((cp.json.error as { message: string }).message, /the checkpoint does not verify/);
});
