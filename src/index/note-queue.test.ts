import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { NoteQueue } from './note-queue.js';

const dir = mkdtempSync(join(tmpdir(), 'stele-notes-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const note = (i: number) => Buffer.from(`note ${i}`);
const run = (first: number, n: number) =>
  Array.from({ length: n }, (_, k) => ((first + k) % 7 === 3 ? Buffer.alloc(0) : note(first + k)));

test('notes past the memory bound queue in the file and come back in order; the file empties once they are read', () => {
  const file = join(dir, 'a.spill');
  const q = new NoteQueue(file, 10);
  for (let first = 0; first < 100; first += 5) q.push(first, run(first, 5));
  assert.ok(statSync(file).size > 0, 'past 10 notes in memory, the rest went to the file');
  for (let i = 0; i < 100; i++) {
    const want = i % 7 === 3 ? undefined : note(i);
    assert.deepEqual(q.get(i), want, `note ${i}`);
    q.dropBelow(i + 1);
  }
  assert.equal(statSync(file).size, 0, 'drained: the file is emptied');
  // Pushes after a drain go to memory again.
  q.push(100, run(100, 3));
  assert.deepEqual(q.get(102), note(102));
});

test('runs the thread skipped (indexed from their leaves) are dropped unread; without a file, notes past the bound are dropped', () => {
  const file = join(dir, 'b.spill');
  const q = new NoteQueue(file, 4);
  q.push(0, run(0, 4));
  q.push(4, run(4, 4)); // spilled
  q.push(8, run(8, 4)); // spilled
  q.dropBelow(8); // entries 0–7 indexed some other way
  assert.deepEqual(q.get(9), note(9));
  q.dropBelow(12);
  assert.equal(statSync(file).size, 0);

  const mem = new NoteQueue(null, 4);
  mem.push(0, run(0, 4));
  mem.push(4, run(4, 4));
  assert.deepEqual(mem.get(2), note(2));
  assert.equal(mem.get(5), undefined, 'no file: dropped');
  assert.ok(!existsSync(join(dir, 'null')));
});

test('the spill file holds no note in the clear, and a run altered on disk is dropped (its entries are then opened from their leaves)', () => {
  const file = join(dir, 'c.spill');
  const q = new NoteQueue(file, 2);
  const secret = (i: number) => Buffer.from(`Zanzibar42 note ${i}`);
  q.push(0, [secret(0), secret(1)]);
  q.push(2, [secret(2), secret(3)]); // spilled
  q.push(4, [secret(4), secret(5)]); // spilled
  const bytes = readFileSync(file);
  assert.ok(bytes.length > 0);
  assert.ok(!bytes.includes('Zanzibar42'), 'sealed, not in the clear');
  // Flip a byte of the first spilled run: it fails its tag and is dropped; the next run still reads.
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.from([(bytes[0] as number) ^ 1]), 0, 1, 0);
  closeSync(fd);
  q.dropBelow(2);
  assert.equal(q.get(2), undefined);
  assert.equal(q.get(3), undefined);
  assert.deepEqual(q.get(4), secret(4));
});
