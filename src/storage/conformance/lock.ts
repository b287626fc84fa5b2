import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type DriverUnderTest, withCode } from './driver.js';

/** What every driver's write lock must do: one writer at a time, and a clear refusal for the second. */
export function lockConformance(d: DriverUnderTest): void {
  describe(`${d.name}: write lock`, () => {
    test('a second lock is refused while the first is held, and granted once it is released', async () => {
      const b = await d.create();
      const release = b.lock();
      assert.throws(
        () => d.reopen(b).lock(),
        (err: Error) => withCode('locked')(err) && /in use/.test(err.message),
      );
      release();
      const again = d.reopen(b).lock();
      again();
    });
  });
}
