import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mirrorRetention } from './mirror.js';

const DAY = 86_400_000;

test("mirror retention: the flag, else the policy's longest keep, and 100 years for a tier kept forever", () => {
  assert.equal(mirrorRetention(7 * DAY, [null]), 7 * DAY);
  assert.equal(mirrorRetention(undefined, [90 * DAY, 400 * DAY]), 400 * DAY);
  assert.equal(mirrorRetention(undefined, [90 * DAY, null]), 100 * 365 * DAY);
});
