/**
 * The console's own verifier (console/src/verify.ts, WebCrypto only, written apart from src/tlog)
 * against a real log: every entry of a served log verifies at every index, and each kind of lie
 * (another leaf, another index, a shortened or altered proof, another log's key, a missing or
 * foreign witness cosignature) is refused. The build puts the verifier, unbundled, in
 * dist/console/lib/verify.js.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newCosigner } from '../src/tlog/cosignature.js';
import { generateKey } from '../src/tlog/note.js';
import { appendHttp, cleanup, type DataDir, getJson, getText, initDir, makeEvent, SteleServer, sleep } from './helpers/stele.js';

type Bytes = Uint8Array<ArrayBuffer>;
interface VerifyModule {
  fromBase64(s: string): Bytes;
  verifyEntry(o: {
    leaf: Bytes;
    index: number;
    proof: Bytes[] | Error;
    note: string;
    logKey: string;
    witnesses?: string[];
    quorum?: number;
  }): Promise<{ ok: boolean; checks: { what: string; ok: boolean; detail: string }[] }>;
}

const verifier = (await import(String(new URL('../console/lib/verify.js', import.meta.url)))) as VerifyModule;
const bytes = (b: Uint8Array): Bytes => new Uint8Array(b) as Bytes;

describe("the console's verifier against a real log", { timeout: 120_000 }, () => {
  let data: DataDir;
  let srv: SteleServer;
  let note: string;
  let size: number;
  const leaves: Bytes[] = [];
  const proofs: Bytes[][] = [];

  before(async () => {
    data = await initDir('console-verify.test/log');
    srv = await SteleServer.start(data.dir, { checkpointIntervalMs: 20 });
    // Sizes that exercise every shape of the right edge of the tree.
    await appendHttp(
      srv.url,
      data.token,
      Array.from({ length: 70 }, (_, i) => makeEvent(undefined, i)),
    );
    for (;;) {
      note = await getText(`${srv.url}/log/checkpoint`);
      size = Number(note.split('\n')[1]);
      if (size >= 71) break;
      await sleep(50);
    }
    for (let i = 0; i < size; i++) {
      const raw = await fetch(`${srv.url}/v1/entries/${i}`, { headers: { accept: 'application/octet-stream' } });
      assert.equal(raw.status, 200);
      leaves.push(bytes(new Uint8Array(await raw.arrayBuffer())));
      const p = await getJson<{ proof: string[] }>(`${srv.url}/v1/proofs/inclusion?index=${i}&size=${size}`);
      proofs.push(p.proof.map(verifier.fromBase64));
    }
  });
  after(async () => {
    await srv?.kill();
    await cleanup();
  });

  const check = (i: number, over: Partial<Parameters<VerifyModule['verifyEntry']>[0]> = {}) =>
    verifier.verifyEntry({ leaf: leaves[i] as Bytes, index: i, proof: proofs[i] as Bytes[], note, logKey: data.vkey, ...over });

  test('every entry verifies at its index against the signed checkpoint', async () => {
    for (let i = 0; i < size; i++) {
      const r = await check(i);
      assert.ok(r.ok, `entry ${i}: ${JSON.stringify(r.checks)}`);
    }
  });

  test('another leaf, another index, a shortened, lengthened or altered proof are refused', async () => {
    const fail = async (what: string, r: Promise<{ ok: boolean }>) => assert.equal((await r).ok, false, what);
    const altered = proofs[5]?.map((h, k) => (k === 1 ? bytes(h.map((b, j) => (j === 0 ? b ^ 1 : b))) : h)) as Bytes[];
    await fail('leaf of entry 6 at 5', check(5, { leaf: leaves[6] as Bytes }));
    await fail('entry 5 claimed at 6', check(5, { index: 6 }));
    await fail('a proof missing its last hash', check(5, { proof: (proofs[5] as Bytes[]).slice(0, -1) }));
    await fail('a proof with a hash too many', check(5, { proof: [...(proofs[5] as Bytes[]), proofs[5]?.[0] as Bytes] }));
    await fail('an altered hash', check(5, { proof: altered }));
    await fail('an index beyond the tree', check(5, { index: size }));
    await fail('no proof', check(5, { proof: new Error('the server refused') }));
  });

  test("a checkpoint signed by another log's key, or altered, is refused", async () => {
    const other = generateKey('console-verify.test/log');
    const r = await check(3, { logKey: other.vkey });
    assert.equal(r.ok, false);
    assert.ok(r.checks.some((c) => c.what === 'checkpoint signature' && !c.ok));
    const altered = note.replace(/^(\d+)$/m, String(size));
    assert.equal((await check(3, { note: altered.replace(`\n${size}\n`, `\n${size + 1}\n`) })).ok, false);
  });

  test('witness cosignatures: a quorum of trusted witnesses passes; a foreign or missing one does not', async () => {
    const w1 = newCosigner(generateKey('witness.one.example').skey);
    const w2 = newCosigner(generateKey('witness.two.example').skey);
    const stranger = newCosigner(generateKey('witness.one.example').skey);
    const text = note.slice(0, note.indexOf('\n\n') + 1);
    const { cosignatureLines } = await import('../src/tlog/cosignature.js');
    const cosigned = `${note}${cosignatureLines(text, w1)}`;
    assert.ok((await check(7, { note: cosigned, witnesses: [w1.vkey], quorum: 1 })).ok);
    assert.ok((await check(7, { note: cosigned, witnesses: [w1.vkey, w2.vkey], quorum: 1 })).ok, 'one of two suffices for 1');
    assert.equal((await check(7, { note: cosigned, witnesses: [w1.vkey, w2.vkey], quorum: 2 })).ok, false, 'two needed');
    assert.equal((await check(7, { note: cosigned, witnesses: [stranger.vkey], quorum: 1 })).ok, false, 'same name, other key');
    assert.equal((await check(7, { note, witnesses: [w1.vkey], quorum: 1 })).ok, false, 'no cosignature at all');
  });
});
