import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SteleError } from '../core/errors.js';
import { retryOverloaded } from './client.js';

test('retryOverloaded retries 503 overloaded after its Retry-After, and nothing else', async () => {
  let calls = 0;
  const busy = () => new SteleError('overloaded', '503: busy', { detail: { retryAfter: 0 } });
  assert.equal(
    await retryOverloaded(async () => {
      if (++calls < 3) throw busy();
      return 'done';
    }),
    'done',
  );
  assert.equal(calls, 3);
  calls = 0;
  await assert.rejects(
    retryOverloaded(async () => {
      calls++;
      throw new SteleError('invalid_event', '400: bad');
    }),
    /bad/,
  );
  assert.equal(calls, 1);
  calls = 0;
  await assert.rejects(
    retryOverloaded(async () => {
      calls++;
      throw busy();
    }, 4),
    /busy/,
  );
  assert.equal(calls, 4);
});
