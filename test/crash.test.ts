/**
 * "Acknowledged means durable" (DESIGN.md, guarantee 2), end to end: a real `stele serve` is
 * SIGKILLed at random moments while concurrent clients append, and restarted on the same data
 * directory. No acknowledged event may be lost or move, a repeated id must keep its index across
 * crashes, and the signed checkpoints must never shrink or fork.
 *
 * Knobs (environment): STELE_CRASH_CYCLES (kills, default 16), STELE_CRASH_CLIENTS (default 4).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { appendFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { keystorePath } from '../src/app/stele.js';
import { openEntry } from '../src/index/reader.js';
import { KeyStore } from '../src/keys/keystore.js';
import { loadMasterKeys } from '../src/keys/master.js';
import { type Checkpoint, parseCheckpoint } from '../src/tlog/checkpoint.js';
import { newVerifier, openNote } from '../src/tlog/note.js';
import { verifyConsistency } from '../src/tlog/proof.js';
import { decodeBundle, entriesPath, tileWidth } from '../src/tlog/tile.js';
import {
  type Appended,
  type AppendMode,
  appendHttp,
  cleanup,
  getBytes,
  getJson,
  getText,
  HttpError,
  initDir,
  makeEvent,
  runStele,
  SteleServer,
  sleep,
  tempDir,
} from './helpers/stele.js';

after(cleanup);

const CYCLES = Number(process.env.STELE_CRASH_CYCLES ?? 16);
const CLIENTS = Number(process.env.STELE_CRASH_CLIENTS ?? 4);

type Event = Record<string, unknown>;
const idOf = (e: Event) => e.id as string;
const rand = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

interface Health {
  status: string;
  size: number;
  checkpoint_size: number;
}

/**
 * The event id of every entry of the published tree of `size`, read from the C2SP entry bundles
 * and opened with the directory's own key store (so the data keys survived the crashes too).
 */
/** The id and action of every entry, read from the server's tiles and decrypted with the key store (no audited reads). */
async function eventsInLog(url: string, size: number, dir: string): Promise<{ id: string; action: string }[]> {
  const keys = KeyStore.open(keystorePath(dir), loadMasterKeys(dir), { readonly: true });
  try {
    const out: { id: string; action: string }[] = [];
    for (let b = 0; b * 256 < size; b++) {
      const width = tileWidth(0, b, size);
      const path = entriesPath(b, width);
      const data = await getBytes(`${url}/log/${path}`);
      assert.ok(data, `${path} is missing from the server`);
      for (const [k, leaf] of decodeBundle(data, width).entries()) {
        const { event } = openEntry(keys, b * 256 + k, leaf);
        out.push({ id: event.id, action: event.action });
      }
    }
    return out;
  } finally {
    keys.close();
  }
}

async function idsInLog(url: string, size: number, dir: string): Promise<string[]> {
  return (await eventsInLog(url, size, dir)).map((e) => e.id);
}

/** The tree size the server has marked its tiles durable to (state/synced.json; 0 before the first sync). */
function syncedSize(dir: string): number {
  try {
    return (JSON.parse(readFileSync(join(dir, 'state', 'synced.json'), 'utf8')) as { size: number }).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

/** Waits until the published checkpoint covers every sequenced entry (no appends running). */
async function settle(url: string): Promise<Health> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const h = await getJson<Health>(`${url}/healthz`);
    if (h.checkpoint_size === h.size) return h;
    if (Date.now() > deadline) throw new Error(`the checkpoint stays at ${h.checkpoint_size} of ${h.size} entries`);
    await sleep(20);
  }
}

test(`acknowledged appends survive ${CYCLES} SIGKILLs under ${CLIENTS} concurrent clients`, { timeout: 240_000 }, async (t) => {
  const d = await initDir('crash.test/log');
  const work = tempDir('stele-crash-cp-');
  const verifier = newVerifier(d.vkey);
  const open = (note: string): Checkpoint => parseCheckpoint(openNote(note, [verifier]).text);

  // Everything the clients were told, and every id they sent.
  const acked = new Map<string, number>();
  const ackedAt = new Map<number, string>();
  const sentEvents = new Map<string, Event>();
  const violations: string[] = [];
  const unexpected: string[] = [];
  const stats = { requests: 0, ackedRequests: 0, connectionFailures: 0, retriedBatches: 0, reacked: 0 };

  const record = (batch: readonly Event[], entries: readonly Appended[]) => {
    if (entries.length !== batch.length) {
      violations.push(`a batch of ${batch.length} was answered with ${entries.length} entries`);
      return;
    }
    entries.forEach((e, i) => {
      const id = idOf(batch[i] as Event);
      if (e.id !== id) violations.push(`entry ${i} of a batch answered id ${e.id} for ${id}`);
      const before = acked.get(id);
      if (before !== undefined && before !== e.index) {
        violations.push(`id ${id} was acknowledged at index ${before}, later at ${e.index} (idempotency lost)`);
      }
      if (before !== undefined) stats.reacked++;
      const holder = ackedAt.get(e.index);
      if (holder !== undefined && holder !== id) violations.push(`index ${e.index} was acknowledged for ${holder} and for ${id}`);
      acked.set(id, e.index);
      ackedAt.set(e.index, id);
    });
  };

  // The server of the moment; null while it is being killed and restarted.
  const shared: { url: string | null; stop: boolean; pauseMs: number } = { url: null, stop: false, pauseMs: 0 };
  let srv = await SteleServer.start(d.dir);
  shared.url = srv.url;

  const client = async (c: number) => {
    let retry: Event[] | null = null;
    let n = 0;
    const mine: Event[] = [];
    while (!shared.stop) {
      const url = shared.url;
      if (!url) {
        await sleep(5);
        continue;
      }
      let batch: Event[] | null = retry;
      if (!batch) {
        const size = Math.random() < 0.3 ? 1 : rand(1, 200);
        batch = Array.from({ length: size }, () => makeEvent(randomUUID(), c * 1_000_000 + n++));
        for (const e of batch) sentEvents.set(idOf(e), e);
        // Now and then, mix in events already acknowledged (maybe before a crash): they must come
        // back with their first index, and append nothing.
        if (mine.length && Math.random() < 0.15) {
          for (let k = rand(1, 5); k > 0; k--) batch.splice(rand(0, batch.length), 0, mine[rand(0, mine.length - 1)] as Event);
        }
      } else {
        stats.retriedBatches++;
      }
      const r = Math.random();
      const mode: AppendMode = batch.length === 1 && r < 0.6 ? 'single' : r < 0.8 ? 'array' : 'ndjson';
      stats.requests++;
      try {
        const entries = await appendHttp(url, d.token, batch, mode, 20_000);
        stats.ackedRequests++;
        record(batch, entries);
        for (const e of batch) if (mine.length < 5000) mine.push(e);
        retry = null;
        if (shared.pauseMs) await sleep(rand(shared.pauseMs / 2, (3 * shared.pauseMs) / 2));
      } catch (err) {
        if (err instanceof HttpError) {
          unexpected.push(`client ${c}: ${err.message}`);
          retry = null;
          await sleep(50);
          continue;
        }
        stats.connectionFailures++;
        // Only our own kill may break a connection; the url is cleared before each kill.
        if (shared.url === url)
          unexpected.push(
            `client ${c}: request failed while the server was up: ${(err as Error).message} ${String((err as Error).cause ?? '')}`,
          );
        // Half the time, send the same batch again once the server is back (some of it may be stored).
        retry = Math.random() < 0.5 ? batch : null;
        while (!shared.stop && (shared.url === url || shared.url === null)) await sleep(5);
      }
    }
  };

  // Polls the served checkpoint: it must never go back, and one size must always have one root.
  const firstNote = await getText(`${srv.url}/log/checkpoint`);
  const seen: { note: string; cp: Checkpoint } = { note: firstNote, cp: open(firstNote) };
  let polls = 0;
  const poller = async () => {
    while (!shared.stop) {
      const url = shared.url;
      if (url) {
        try {
          const note = await getText(`${url}/log/checkpoint`, 5000);
          const cp = open(note);
          polls++;
          if (cp.size < seen.cp.size) violations.push(`the served checkpoint went back from ${seen.cp.size} to ${cp.size}`);
          else if (cp.size === seen.cp.size && !cp.root.equals(seen.cp.root)) violations.push(`two roots for size ${cp.size}`);
          else {
            seen.note = note;
            seen.cp = cp;
          }
        } catch (err) {
          if (err instanceof HttpError || shared.url === url) unexpected.push(`checkpoint poll: ${(err as Error).message}`);
        }
      }
      await sleep(25);
    }
  };

  const consistencyOverHttp = async (url: string, older: Checkpoint, newer: Checkpoint) => {
    if (older.size === newer.size) {
      assert.ok(older.root.equals(newer.root), `two different signed roots for size ${older.size}`);
      return;
    }
    const r = await getJson<{ proof: string[] }>(`${url}/v1/proofs/consistency?from=${older.size}&to=${newer.size}`);
    verifyConsistency(
      older.size,
      newer.size,
      r.proof.map((p) => Buffer.from(p, 'base64')),
      older.root,
      newer.root,
    );
  };

  const started = Date.now();
  const clients = Array.from({ length: CLIENTS }, (_, c) => client(c));
  const polling = poller();
  let kills = 0;
  let prevFile: string | null = null;
  let firstNonEmpty: string | null = null;
  const sizes: number[] = [];
  const synced: number[] = [];
  const timing = { verifyMs: 0, startMs: 0 };
  let verifies = 0;
  try {
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      // Mostly 50-400 ms of uptime; twice a run long enough for the periodic tile sync (every 5 s)
      // to run under load, so recovery also starts from a synced size and a shortened WAL.
      const longRun = CYCLES >= 10 && (cycle === Math.floor(CYCLES / 3) || cycle === Math.floor((2 * CYCLES) / 3));
      // Clients slow down on the long runs, to keep the log (and the test's run time) small.
      shared.pauseMs = longRun ? 100 : 0;
      // A cold server takes a while to answer its first append: most kills wait for one, so that
      // they land among appends; every fourth kill may hit the server still warming up.
      const acksBefore = stats.ackedRequests;
      const t1 = Date.now();
      if (cycle % 4 !== 0) while (stats.ackedRequests === acksBefore && Date.now() - t1 < 3000) await sleep(2);
      await sleep(longRun ? rand(5100, 5800) : rand(50, 400));
      shared.url = null;
      await srv.kill();
      kills++;

      // The directory exactly as the crash left it: a static mirror of it must verify already, and be
      // consistent with the one last verified (every few cycles: this reads the whole log).
      const diskNote = readFileSync(join(d.dir, 'log', 'checkpoint'), 'utf8');
      const diskCp = open(diskNote);
      assert.ok(
        diskCp.size >= seen.cp.size,
        `cycle ${cycle}: the checkpoint on disk (${diskCp.size}) is older than one served (${seen.cp.size})`,
      );
      const file = join(work, `checkpoint.${cycle}`);
      writeFileSync(file, diskNote);
      if (diskCp.size > 0) firstNonEmpty ??= file;
      let t0 = Date.now();
      if (cycle % 4 === 1 || cycle === CYCLES) {
        const v = await runStele(prevFile ? ['verify', '--dir', d.dir, '--since', prevFile] : ['verify', '--dir', d.dir]);
        assert.equal(v.code, 0, `cycle ${cycle}: stele verify of the crashed directory failed:\n${v.output}`);
        assert.match(v.stdout, new RegExp(`: ${diskCp.size} entr(y|ies),`)); // "1 entry" when a kill lands that early
        verifies++;
        prevFile = file;
      }
      timing.verifyMs += Date.now() - t0;

      // Everything acknowledged so far came from the server just killed.
      let maxAcked = -1;
      for (const i of ackedAt.keys()) maxAcked = Math.max(maxAcked, i);

      t0 = Date.now();
      srv = await SteleServer.start(d.dir);
      timing.startMs += Date.now() - t0;
      const note = await getText(`${srv.url}/log/checkpoint`);
      const cp = open(note);
      assert.ok(
        cp.size >= diskCp.size,
        `cycle ${cycle}: after restart the checkpoint went back from ${diskCp.size} to ${cp.size}`,
      );
      await consistencyOverHttp(srv.url, diskCp, cp);
      await consistencyOverHttp(srv.url, seen.cp, cp);
      const h = await getJson<Health>(`${srv.url}/healthz`);
      assert.ok(
        h.size > maxAcked,
        `cycle ${cycle}: after restart the log has ${h.size} entries, but index ${maxAcked} was acknowledged`,
      );
      sizes.push(h.size);
      synced.push(syncedSize(d.dir));
      shared.url = srv.url;
    }
  } finally {
    shared.stop = true;
    await Promise.all([...clients, polling]);
  }
  const loopMs = Date.now() - started;

  assert.deepEqual(unexpected, [], 'unexpected errors');
  assert.deepEqual(violations, [], 'guarantee violations seen by clients');

  // Every acknowledged id is at its acknowledged index, and no id is in the log twice.
  const health = await settle(srv.url);
  const ids = await idsInLog(srv.url, health.size, d.dir);
  assert.equal(ids.length, health.size);
  const where = new Map<string, number>();
  ids.forEach((id, i) => {
    const prior = where.get(id);
    assert.equal(prior, undefined, `id ${id} is in the log twice, at ${prior} and ${i}`);
    where.set(id, i);
  });
  let lost = 0;
  let moved = 0;
  for (const [id, index] of acked) {
    const at = where.get(id);
    if (at === undefined) lost++;
    else if (at !== index) moved++;
  }
  assert.equal(lost, 0, `${lost} acknowledged events are not in the log`);
  assert.equal(moved, 0, `${moved} acknowledged events are at another index than acknowledged`);

  // The same through the entries API, for a sample (all of them were checked above).
  const sample = [...acked].sort(() => Math.random() - 0.5).slice(0, 1000);
  for (let i = 0; i < sample.length; i += 10) {
    await Promise.all(
      sample.slice(i, i + 10).map(async ([id, index]) => {
        const e = await getJson<{ event: { id: string } }>(`${srv.url}/v1/entries/${index}`, 30_000, d.token);
        assert.equal(e.event.id, id, `GET /v1/entries/${index}`);
      }),
    );
  }

  // Re-sending every acknowledged id returns its acknowledged index and appends nothing (the reads
  // above each appended a stele.access.read event: count from here).
  const beforeResend = (await getJson<Health>(`${srv.url}/healthz`)).size;
  // Sends the events of `ids` again, 2000 a request, and checks each answer.
  const resend = async (ids: string[], check: (id: string, index: number) => void) => {
    for (let i = 0; i < ids.length; i += 2000) {
      const chunk = ids.slice(i, i + 2000);
      const entries = await appendHttp(
        srv.url,
        d.token,
        chunk.map((id) => sentEvents.get(id) as Event),
      );
      for (const [k, e] of entries.entries()) check(chunk[k] as string, e.index);
    }
  };
  await resend([...acked.keys()], (id, index) => assert.equal(index, acked.get(id), `re-append of ${id}`));
  assert.equal(
    (await getJson<Health>(`${srv.url}/healthz`)).size,
    beforeResend,
    're-appending acknowledged ids appended something',
  );

  // Ids sent but never acknowledged: stored ones (fine) keep their index; the others append now.
  const unackedIds = [...sentEvents.keys()].filter((id) => !acked.has(id));
  const storedUnacked = unackedIds.filter((id) => where.has(id)).length;
  await resend(unackedIds, (id, index) => {
    const stored = where.get(id);
    if (stored !== undefined) assert.equal(index, stored, `re-append of stored, unacknowledged ${id}`);
    else assert.ok(index >= health.size, `new append of ${id} got old index ${index}`);
  });
  const final = await settle(srv.url);
  assert.equal(final.size, beforeResend + unackedIds.length - storedUnacked);

  const stopped = await srv.stop();
  assert.equal(stopped.code, 0, `stele serve did not shut down cleanly:\n${srv.output}`);
  const v = await runStele(['verify', '--dir', d.dir, ...(firstNonEmpty ? ['--since', firstNonEmpty] : [])]);
  assert.equal(v.code, 0, `final stele verify failed:\n${v.output}`);
  assert.match(v.stdout, new RegExp(`OK: .*: ${final.size} entr(y|ies),`));

  const summary =
    `${kills} SIGKILLs in ${(loopMs / 1000).toFixed(1)} s (restarts ${timing.startMs} ms, ${verifies} verifies of the crashed dir ${timing.verifyMs} ms); ${acked.size} events acknowledged ` +
    `(${stats.ackedRequests} of ${stats.requests} requests; ${stats.connectionFailures} broken by kills, ` +
    `${stats.retriedBatches} batches re-sent, ${stats.reacked} ids acknowledged twice); ` +
    `${unackedIds.length} sent but never acknowledged, ${storedUnacked} of them stored anyway; ` +
    `log size after each restart: ${sizes.join(' ')}; synced size: ${synced.join(' ')}; final size ${final.size}; ${polls} checkpoint polls`;
  t.diagnostic(summary);
  console.log(`crash test: ${summary}`);
});

test('a torn tail on the newest write-ahead log segment is cut off on restart, losing nothing', {
  timeout: 60_000,
}, async (t) => {
  const d = await initDir('torn.test/log');
  const walDir = join(d.dir, 'wal');
  const newestSegment = () => {
    const segs = readdirSync(walDir)
      .filter((n) => n.endsWith('.wal'))
      .sort();
    assert.ok(segs.length > 0, 'no write-ahead log segment');
    return join(walDir, segs[segs.length - 1] as string);
  };
  const acked = new Map<string, number>();
  const events = new Map<string, Event>();
  const appendSome = async (url: string, n: number) => {
    for (let i = 0; i < n; i += 100) {
      const batch = Array.from({ length: Math.min(100, n - i) }, (_, k) => makeEvent(randomUUID(), i + k));
      for (const e of batch) events.set(idOf(e), e);
      for (const e of await appendHttp(url, d.token, batch)) acked.set(e.id, e.index);
    }
  };
  // Every acknowledged event at its index; the rest of the log is the server's own stele.* events
  // (a stele.policy.load at each start).
  const checkAll = async (url: string) => {
    const h = await settle(url);
    assert.equal(h.status, 'ok');
    const all = await eventsInLog(url, h.size, d.dir);
    assert.deepEqual(
      all.filter((e) => !acked.has(e.id)).map((e) => e.action.split('.')[0]),
      all.filter((e) => !acked.has(e.id)).map(() => 'stele'),
      'the log after recovery holds only acknowledged events and its own',
    );
    for (const [id, index] of acked) assert.equal(all[index]?.id, id, `entry ${index} after recovery`);
    const again = await appendHttp(
      url,
      d.token,
      [...acked.keys()].map((id) => events.get(id) as Event),
    );
    for (const e of again) assert.equal(e.index, acked.get(e.id), `re-append of ${e.id}`);
    assert.equal((await getJson<Health>(`${url}/healthz`)).size, h.size);
  };

  // A partial record: a header promising 600 bytes, followed by only 37.
  const partialRecord = () => {
    const b = Buffer.alloc(8 + 37, 0x41);
    b.writeUInt32BE(600, 0);
    b.writeUInt32BE(0xdeadbeef, 4);
    return b;
  };
  // A whole record whose checksum does not match (a write torn inside the payload).
  const badChecksum = () => {
    const payload = Buffer.from(`\x24${randomUUID()}{"v":1,"torn":true}`, 'latin1');
    const b = Buffer.alloc(8 + payload.length);
    b.writeUInt32BE(payload.length, 0);
    b.writeUInt32BE(12345, 4);
    payload.copy(b, 8);
    return b;
  };

  // 1. After a clean shutdown.
  let srv = await SteleServer.start(d.dir);
  await appendSome(srv.url, 300);
  await settle(srv.url);
  const cpBefore = await getText(`${srv.url}/log/checkpoint`);
  const cpFile = join(d.dir, '..', 'before.checkpoint');
  writeFileSync(cpFile, cpBefore);
  assert.equal((await srv.stop()).code, 0);
  let seg = newestSegment();
  let good = statSync(seg).size;
  appendFileSync(seg, partialRecord());
  srv = await SteleServer.start(d.dir);
  assert.equal(statSync(seg).size, good, 'the torn tail was not truncated');
  // A clean restart adds only its stele.policy.load; the final verify checks the old checkpoint is a prefix.
  assert.equal(
    (await settle(srv.url)).size,
    Number(cpBefore.split('\n')[1]) + 1,
    'a clean restart appended more than its policy load',
  );
  await checkAll(srv.url);

  // 2. After a crash, with entries only in the write-ahead log (tiles are synced every 5 s).
  await appendSome(srv.url, 250);
  await srv.kill();
  seg = newestSegment();
  good = statSync(seg).size;
  appendFileSync(seg, badChecksum());
  appendFileSync(seg, partialRecord().subarray(0, 3)); // and a header cut short
  srv = await SteleServer.start(d.dir);
  assert.equal(statSync(seg).size, good, 'the torn tail was not truncated');
  await checkAll(srv.url);

  // 3. The log goes on: new appends land after the recovered ones and survive another restart.
  const before = acked.size;
  const size = (await settle(srv.url)).size;
  await appendSome(srv.url, 60);
  assert.deepEqual(
    [...acked.values()].slice(before).sort((a, b) => a - b),
    Array.from({ length: 60 }, (_, i) => size + i),
  );
  await settle(srv.url);
  assert.equal((await srv.stop()).code, 0);
  srv = await SteleServer.start(d.dir);
  await checkAll(srv.url);
  assert.equal((await srv.stop()).code, 0);
  const v = await runStele(['verify', '--dir', d.dir, '--since', cpFile]);
  assert.equal(v.code, 0, v.output);
  t.diagnostic(`${acked.size} entries intact after two torn tails`);
});
