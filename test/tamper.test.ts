/**
 * Tamper evidence (DESIGN.md, guarantee 1): every change, removal or reordering of a stored entry,
 * tile or checkpoint makes `stele verify` fail, and its message names the culprit. Each tampering
 * is done on a fresh copy of a stopped server's data directory.
 */
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseCheckpoint } from '../src/tlog/checkpoint.js';
import { leafHash } from '../src/tlog/hash.js';
import { newVerifier, openNote } from '../src/tlog/note.js';
import { decodeBundle, encodeBundle } from '../src/tlog/tile.js';
import {
  appendHttp,
  cleanup,
  type DataDir,
  getJson,
  getText,
  initDir,
  makeEvent,
  runStele,
  SteleServer,
  sleep,
  tempDir,
} from './helpers/stele.js';

// 700 entries: bundles 000 and 001 full, 002.p/188 partial; level-0 tiles alike; level 1 is the
// partial tile 1/000.p/2 (a full level-1 tile needs 65,536 entries).
const SIZE = 700;
const ORIGIN = 'tamper.test/log';

let d: DataDir;
let other: DataDir;
let srv: SteleServer;
let early: string; // a checkpoint of this log at 100 entries
let work: string;

/**
 * Appends events in batches until the log holds `size` entries (the server's own stele.policy.load
 * at start is one of them) and waits until a checkpoint covers them.
 */
async function fill(url: string, token: string, size: number): Promise<void> {
  const n = size - (await getJson<{ size: number }>(`${url}/healthz`)).size;
  for (let i = 0; i < n; i += 100) {
    await appendHttp(
      url,
      token,
      Array.from({ length: Math.min(100, n - i) }, (_, k) => makeEvent(undefined, i + k)),
    );
  }
  for (let tries = 0; ; tries++) {
    const h = await getJson<{ size: number; checkpoint_size: number }>(`${url}/healthz`);
    if (h.checkpoint_size >= h.size) return;
    if (tries > 500) throw new Error(`no checkpoint covers ${h.size} entries`);
    await sleep(20);
  }
}

before(async () => {
  work = tempDir('stele-tamper-');
  d = await initDir(ORIGIN);
  other = await initDir(ORIGIN); // a second log: same origin, its own key
  srv = await SteleServer.start(d.dir, { checkpointIntervalMs: 20 });
  await fill(srv.url, d.token, 100);
  early = await getText(`${srv.url}/log/checkpoint`);
  await fill(srv.url, d.token, SIZE);
});

after(cleanup);

describe('stele verify --url against the running server', () => {
  test('passes with the right key, and with --since an earlier checkpoint of the same log', async () => {
    const ok = await runStele(['verify', '--url', srv.url, '--vkey', d.vkey]);
    assert.equal(ok.code, 0, ok.output);
    assert.match(ok.stdout, new RegExp(`^OK: .*: ${SIZE} entries`, 'm'));
    const since = join(work, 'early.checkpoint');
    writeFileSync(since, early);
    const ok2 = await runStele(['verify', '--url', srv.url, '--vkey', d.vkey, '--since', since]);
    assert.equal(ok2.code, 0, ok2.output);
    assert.match(ok2.stdout, /consistent with the old checkpoint/);
  });

  test('fails with the wrong verifier key, naming the key', async () => {
    const r = await runStele(['verify', '--url', srv.url, '--vkey', other.vkey]);
    assert.notEqual(r.code, 0, r.output);
    assert.match(r.stderr, /verification FAILED: the checkpoint does not verify with key tamper\.test\/log/);
    assert.match(r.stderr, /no verifiable signatures/);
  });

  test('fails with --since a checkpoint of another log (another key)', async () => {
    const o = await SteleServer.start(other.dir, { checkpointIntervalMs: 20 });
    await fill(o.url, other.token, 50);
    const since = join(work, 'other.checkpoint');
    writeFileSync(since, await getText(`${o.url}/log/checkpoint`));
    await o.stop();
    const r = await runStele(['verify', '--url', srv.url, '--vkey', d.vkey, '--since', since]);
    assert.notEqual(r.code, 0, r.output);
    assert.match(r.stderr, /verification FAILED: the old checkpoint does not verify with key/);
  });

  test('fails with --since a checkpoint of a fork (another log signed with the same key)', async () => {
    // A second data directory holding this log's key: its checkpoints verify, but for other entries.
    const fork = await initDir(ORIGIN);
    for (const f of ['keys/log.key', 'keys/log.vkey']) cpSync(join(d.dir, f), join(fork.dir, f));
    const o = await SteleServer.start(fork.dir, { checkpointIntervalMs: 20 });
    await fill(o.url, fork.token, 50);
    const since = join(work, 'fork.checkpoint');
    writeFileSync(since, await getText(`${o.url}/log/checkpoint`));
    await o.stop();
    const r = await runStele(['verify', '--url', srv.url, '--vkey', d.vkey, '--since', since]);
    assert.notEqual(r.code, 0, r.output);
    assert.match(r.stderr, /not consistent with the old checkpoint: its first 50 entries have a different root/);
  });

  test('fails with --since a checkpoint larger than the log (a rollback)', async () => {
    const fork = await initDir(ORIGIN);
    for (const f of ['keys/log.key', 'keys/log.vkey']) cpSync(join(d.dir, f), join(fork.dir, f));
    const o = await SteleServer.start(fork.dir, { checkpointIntervalMs: 20 });
    await fill(o.url, fork.token, SIZE + 5);
    const since = join(work, 'bigger.checkpoint');
    writeFileSync(since, await getText(`${o.url}/log/checkpoint`));
    await o.stop();
    const r = await runStele(['verify', '--url', srv.url, '--vkey', d.vkey, '--since', since]);
    assert.notEqual(r.code, 0, r.output);
    assert.match(r.stderr, new RegExp(`rolled back: its checkpoint has ${SIZE} entries, the old one ${SIZE + 5}`));
  });
});

describe("stele verify --dir on a tampered copy of the stopped server's directory", () => {
  let pristine: string;
  let copies = 0;

  before(async () => {
    const stopped = await srv.stop();
    assert.equal(stopped.code, 0, srv.output);
    pristine = d.dir;
    const cp = parseCheckpoint(openNote(readFileSync(join(pristine, 'log', 'checkpoint'), 'utf8'), [newVerifier(d.vkey)]).text);
    assert.equal(cp.size, SIZE);
  });

  /** A fresh copy of the data directory, tampered with by `mutate` (given the copy's log/ folder). */
  async function tampered(mutate: (log: string) => void): Promise<Awaited<ReturnType<typeof runStele>>> {
    const copy = join(work, `copy-${++copies}`);
    cpSync(pristine, copy, { recursive: true });
    try {
      mutate(join(copy, 'log'));
      return await runStele(['verify', '--dir', copy]);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  }

  const flip = (path: string, offset: number) => {
    const b = readFileSync(path);
    assert.ok(offset < b.length, `${path} has only ${b.length} bytes`);
    b[offset] = (b[offset] as number) ^ 0x01;
    writeFileSync(path, b);
  };
  const rewriteBundle = (path: string, edit: (entries: Buffer[]) => Buffer[]) => {
    writeFileSync(path, encodeBundle(edit(decodeBundle(readFileSync(path)))));
  };
  /** Byte offset of the payload of entry `k` of a bundle. */
  const entryOffset = (bundle: Buffer, k: number) => {
    let off = 0;
    for (let i = 0; i < k; i++) off += 2 + bundle.readUInt16BE(off);
    return off + 2;
  };
  const failed = (r: Awaited<ReturnType<typeof runStele>>) => {
    assert.notEqual(r.code, 0, `stele verify passed a tampered log:\n${r.output}`);
    assert.match(r.stderr, /verification FAILED/, r.output);
    return r.stderr;
  };

  test('the untouched copy verifies', async () => {
    const r = await tampered(() => {});
    assert.equal(r.code, 0, r.output);
    assert.match(r.stdout, new RegExp(`${SIZE} entries`));
  });

  test('a flipped byte inside an entry of a full bundle names the entry and its bundle', async () => {
    const msg = failed(
      await tampered((log) => {
        const p = join(log, 'tile/entries/001');
        flip(p, entryOffset(readFileSync(p), 44) + 30); // entry 256 + 44
      }),
    );
    assert.match(msg, /entry 300 \(in tile\/entries\/001\) does not match its hash in tile\/0\/001/);
    assert.match(msg, /the entry was altered/);
  });

  test('a flipped byte inside an entry of the partial bundle names the entry', async () => {
    const msg = failed(
      await tampered((log) => {
        const p = join(log, 'tile/entries/002.p/188');
        flip(p, entryOffset(readFileSync(p), 187) + 5); // the last entry, 699
      }),
    );
    assert.match(msg, /entry 699 \(in tile\/entries\/002\.p\/188\)/);
  });

  test('a flipped byte in a full level-0 tile names the tile and the hash', async () => {
    const msg = failed(await tampered((log) => flip(join(log, 'tile/0/001'), 17 * 32 + 9)));
    assert.match(msg, /tile\/0\/001 is corrupt: hash 17 \(entry 273\) does not match the entries/);
  });

  test('a flipped byte in the partial level-0 tile names the tile', async () => {
    const msg = failed(await tampered((log) => flip(join(log, 'tile/0/002.p/188'), 100 * 32)));
    assert.match(msg, /tile\/0\/002\.p\/188 is corrupt: hash 100 \(entry 612\)/);
  });

  test('a flipped byte in the (partial) level-1 tile names the tile', async () => {
    const msg = failed(await tampered((log) => flip(join(log, 'tile/1/000.p/2'), 32 + 31)));
    assert.match(msg, /tile\/1\/000\.p\/2 is corrupt: hash 1 does not match the tiles below it/);
  });

  test("a flipped character in the checkpoint's root line breaks its signature", async () => {
    const msg = failed(
      await tampered((log) => {
        const p = join(log, 'checkpoint');
        const lines = readFileSync(p, 'utf8').split('\n');
        const root = lines[2] as string;
        lines[2] = (root[0] === 'A' ? 'B' : 'A') + root.slice(1);
        writeFileSync(p, lines.join('\n'));
      }),
    );
    assert.match(
      msg,
      /the checkpoint does not verify with key tamper\.test\/log: invalid signature for key tamper\.test\/log\+[0-9a-f]{8}/,
    );
  });

  test("a flipped byte in the checkpoint's signature is refused", async () => {
    const msg = failed(
      await tampered((log) => {
        const p = join(log, 'checkpoint');
        const note = readFileSync(p, 'utf8');
        const m = /^(— \S+ )(\S+)$/m.exec(note);
        assert.ok(m, note);
        const sig = Buffer.from(m[2] as string, 'base64');
        sig[4 + 10] = (sig[4 + 10] as number) ^ 0x01; // past the 4-byte key ID
        writeFileSync(p, note.replace(m[0], `${m[1]}${sig.toString('base64')}`));
      }),
    );
    assert.match(
      msg,
      /the checkpoint does not verify with key tamper\.test\/log: invalid signature for key tamper\.test\/log\+[0-9a-f]{8}/,
    );
  });

  test('an entry dropped from a bundle names the bundle', async () => {
    const msg = failed(await tampered((log) => rewriteBundle(join(log, 'tile/entries/001'), (e) => e.toSpliced(10, 1))));
    assert.match(msg, /tile\/entries\/001 \(entries [0-9-]+\) is malformed: bundle has 255 entries, expected 256/);
  });

  test('an entry dropped from the partial bundle names the bundle', async () => {
    const msg = failed(await tampered((log) => rewriteBundle(join(log, 'tile/entries/002.p/188'), (e) => e.toSpliced(0, 1))));
    assert.match(msg, /tile\/entries\/002\.p\/188 \(entries [0-9-]+\) is malformed: bundle has 187 entries, expected 188/);
  });

  test('two entries swapped within a bundle names the first one moved', async () => {
    const msg = failed(
      await tampered((log) =>
        rewriteBundle(join(log, 'tile/entries/001'), (e) => {
          const out = [...e];
          [out[4], out[200]] = [out[200] as Buffer, out[4] as Buffer];
          return out;
        }),
      ),
    );
    assert.match(msg, /entry 260 \(in tile\/entries\/001\) does not match its hash in tile\/0\/001/);
  });

  test('a truncated bundle names the bundle', async () => {
    const msg = failed(
      await tampered((log) =>
        truncateSync(join(log, 'tile/entries/001'), readFileSync(join(log, 'tile/entries/001')).length - 7),
      ),
    );
    assert.match(msg, /tile\/entries\/001 \(entries [0-9-]+\) is malformed: bundle truncated/);
  });

  test('a bundle with bytes appended names the bundle', async () => {
    const msg = failed(
      await tampered((log) =>
        writeFileSync(
          join(log, 'tile/entries/001'),
          Buffer.concat([readFileSync(join(log, 'tile/entries/001')), encodeBundle([Buffer.from('{}')])]),
        ),
      ),
    );
    assert.match(msg, /tile\/entries\/001 \(entries [0-9-]+\) is malformed: bundle has 4 trailing bytes/);
  });

  test('a deleted tile names the tile', async () => {
    for (const t of ['tile/0/000', 'tile/0/002.p/188', 'tile/1/000.p/2']) {
      const msg = failed(await tampered((log) => rmSync(join(log, t))));
      assert.match(msg, new RegExp(`${t.replaceAll('.', '\\.')} is missing`));
    }
  });

  test('a deleted bundle names the bundle', async () => {
    const msg = failed(await tampered((log) => rmSync(join(log, 'tile/entries/001'))));
    assert.match(msg, /tile\/entries\/001 is missing/);
  });

  /** Entry 100 changed, and its leaf hash in tile/0/000 recomputed so the two agree. */
  const rewriteEntryAndTile = (log: string) => {
    const bp = join(log, 'tile/entries/000');
    const entries = decodeBundle(readFileSync(bp));
    // A different ciphertext in a still well-formed, canonical sealed record.
    const text = (entries[100] as Buffer).toString('utf8');
    const at = text.indexOf('"sealed":"') + 20;
    const altered = Buffer.from(text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1));
    assert.notDeepEqual(altered, entries[100]);
    entries[100] = altered;
    writeFileSync(bp, encodeBundle(entries));
    const tp = join(log, 'tile/0/000');
    const tile = readFileSync(tp);
    leafHash(altered).copy(tile, 100 * 32);
    writeFileSync(tp, tile);
  };

  test('an entry rewritten together with its level-0 tile hash is still caught', async () => {
    // Only the level-1 tile and the signed root still pin the old entry.
    failed(await tampered(rewriteEntryAndTile));
  });

  test('an entry rewritten together with its level-0 tile hash is blamed on the entries, not on the level-1 tile', async () => {
    const msg = failed(await tampered(rewriteEntryAndTile));
    // The stored right edge (tile/1/000.p/2 and tile/0/002.p/188) reproduces the signed root, so
    // tile/1/000.p/2 is authentic; the culprit is below its hash 0: tile/0/000 and tile/entries/000.
    assert.doesNotMatch(msg, /tile\/1\/000\.p\/2 is corrupt/, msg);
    assert.match(msg, /tile\/entries\/000|tile\/0\/000/, msg);
  });
});
