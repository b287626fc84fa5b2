import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { formatCheckpoint } from '../tlog/checkpoint.js';
import { newCosignatureVerifier, newCosigner } from '../tlog/cosignature.js';
import { emptyRoot, leafHash, merkleRoot } from '../tlog/hash.js';
import { generateKey, newSigner, newVerifier, openNote, signNote } from '../tlog/note.js';
import { consistencyProof } from '../tlog/proof.js';
import { type AddCheckpoint, formatAddCheckpoint, parseAddCheckpoint, WitnessError } from './protocol.js';
import { SqliteWitnessState } from './state.js';
import { Witness } from './witness.js';

const ORIGIN = 'example.com/log';
const log = generateKey(ORIGIN);
const other = generateKey(ORIGIN); // another key claiming the same origin
const witnessKey = generateKey('witness.example/w1');
const leaves = Array.from({ length: 40 }, (_, i) => leafHash(Buffer.from(`entry ${i}`)));
const forked = leaves.map((h, i) => (i < 10 ? h : leafHash(Buffer.from(`forged ${i}`))));

const checkpoint = (size: number, hashes = leaves, skey = log.skey) =>
  signNote(
    formatCheckpoint({
      origin: ORIGIN,
      size,
      root: size === 0 ? emptyRoot() : merkleRoot(hashes.slice(0, size)),
      extensions: [],
    }),
    [newSigner(skey)],
  );

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function witnessAt(dir: string): { w: Witness; state: SqliteWitnessState } {
  const state = new SqliteWitnessState(join(dir, 'witness.db'));
  return { w: new Witness(newCosigner(witnessKey.skey), new Map([[ORIGIN, [newVerifier(log.vkey)]]]), state), state };
}

function fresh(): { w: Witness; state: SqliteWitnessState; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'witness-'));
  dirs.push(dir);
  return { ...witnessAt(dir), dir };
}

const refusal = (status: number, size?: number) => (err: unknown) =>
  err instanceof WitnessError && err.status === status && (size === undefined || err.size === size);

const add = (w: Witness, r: AddCheckpoint) => w.addCheckpoint(formatAddCheckpoint(r));

describe('witness (c2sp.org/tlog-witness add-checkpoint)', () => {
  test("the request body parses as the spec's example, and a malformed one is 400", () => {
    const body =
      'old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\njrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n';
    const r = parseAddCheckpoint(body);
    assert.equal(r.oldSize, 20852014);
    assert.equal(r.proof.length, 4);
    assert.ok(r.checkpoint.startsWith('example.com/behind-the-sofa\n20852163\n'));
    assert.equal(formatAddCheckpoint(r), body, 'formats back byte for byte');
    for (const bad of ['old 01\n\nx', 'old -1\n\nx', 'olde 5\n\nx', 'old 5\nnot-base64\n\nx', 'old 5\nx'])
      assert.throws(() => parseAddCheckpoint(bad), refusal(400), bad);
    assert.throws(
      () => parseAddCheckpoint(`old 1\n${'PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n'.repeat(64)}\nx`),
      refusal(400),
    );
  });

  test('cosigns a first checkpoint and then only consistent growth; the cosignature verifies', () => {
    const { w } = fresh();
    const cosig = add(w, { oldSize: 0, proof: [], checkpoint: checkpoint(10) });
    const opened = openNote(checkpoint(10) + cosig, [newCosignatureVerifier(w.cosigner.vkey)]);
    assert.equal(opened.sigs.find((s) => s.verified)?.name, 'witness.example/w1');
    add(w, { oldSize: 10, proof: consistencyProof(10, 25, leaves), checkpoint: checkpoint(25) });
    // The same checkpoint again is cosigned again.
    add(w, { oldSize: 25, proof: [], checkpoint: checkpoint(25) });
  });

  test('refuses as the spec says: 404 unknown log, 403 bad signature, 400 old above size, 409 stale old, 422 bad proof', () => {
    const { w } = fresh();
    const unknown = signNote(
      formatCheckpoint({ origin: 'other.example/log', size: 1, root: leaves[0] as Buffer, extensions: [] }),
      [newSigner(generateKey('other.example/log').skey)],
    );
    assert.throws(() => add(w, { oldSize: 0, proof: [], checkpoint: unknown }), refusal(404));
    assert.throws(() => add(w, { oldSize: 0, proof: [], checkpoint: checkpoint(5, leaves, other.skey) }), refusal(403));
    assert.throws(() => add(w, { oldSize: 0, proof: [], checkpoint: checkpoint(5).replace('\n5\n', '\n6\n') }), refusal(403));
    assert.throws(() => add(w, { oldSize: 6, proof: [], checkpoint: checkpoint(5) }), refusal(400));
    add(w, { oldSize: 0, proof: [], checkpoint: checkpoint(10) });
    // A client that does not know where the witness is learns it from the 409.
    assert.throws(() => add(w, { oldSize: 0, proof: [], checkpoint: checkpoint(20) }), refusal(409, 10));
    assert.throws(
      () => add(w, { oldSize: 10, proof: consistencyProof(11, 20, leaves), checkpoint: checkpoint(20) }),
      refusal(422),
    );
    assert.throws(() => add(w, { oldSize: 0, proof: [leaves[0] as Buffer], checkpoint: checkpoint(10) }), refusal(409, 10));
  });

  test('a split view is refused: a second history with the same key gets no cosignature', () => {
    const { w } = fresh();
    add(w, { oldSize: 0, proof: [], checkpoint: checkpoint(20) });
    // The fork's own consistency proof, from its own tree: it cannot reach the root the witness holds.
    assert.throws(
      () => add(w, { oldSize: 20, proof: consistencyProof(20, 30, forked), checkpoint: checkpoint(30, forked) }),
      refusal(422),
    );
    // The same size with another root.
    assert.throws(() => add(w, { oldSize: 20, proof: [], checkpoint: checkpoint(20, forked) }), refusal(409, 20));
  });

  test('what it cosigned survives a restart: it never cosigns a smaller or other tree after one', () => {
    const { w, state, dir } = fresh();
    add(w, { oldSize: 0, proof: [], checkpoint: checkpoint(30) });
    state.close();
    const again = witnessAt(dir);
    assert.deepEqual(again.state.all(), { [ORIGIN]: { size: 30 } });
    assert.throws(() => add(again.w, { oldSize: 0, proof: [], checkpoint: checkpoint(20) }), refusal(409, 30));
    assert.throws(() => add(again.w, { oldSize: 30, proof: [], checkpoint: checkpoint(20) }), refusal(400));
    add(again.w, { oldSize: 30, proof: consistencyProof(30, 40, leaves), checkpoint: checkpoint(40) });
    again.state.close();
  });

  test('a size-0 checkpoint needs the empty root', () => {
    const { w } = fresh();
    add(w, { oldSize: 0, proof: [], checkpoint: checkpoint(0) });
    const bad = signNote(formatCheckpoint({ origin: ORIGIN, size: 0, root: leaves[0] as Buffer, extensions: [] }), [
      newSigner(log.skey),
    ]);
    assert.throws(() => add(w, { oldSize: 0, proof: [], checkpoint: bad }), refusal(422));
  });
});
