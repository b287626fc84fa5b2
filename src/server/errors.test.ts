import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyError } from 'fastify';
import { SteleError } from '../core/errors.js';
import { errorBody, fromFramework, INTERNAL_MESSAGE } from './errors.js';

test('an error answer is {error: {...detail, code, message}}, and a 500 tells nothing of its internals', () => {
  const e = new SteleError('forbidden', 'may not append', { at: 'event 2', detail: { action: 'append', batchIndex: 2 } });
  assert.deepEqual(errorBody(e), {
    error: { action: 'append', batchIndex: 2, code: 'forbidden', message: 'event 2: may not append' },
  });
  const bug = new SteleError('key_missing', 'entry 7 is sealed with data key k1, which the key store does not have', {
    detail: { index: 7 },
  });
  assert.deepEqual(errorBody(bug), { error: { code: 'key_missing', message: INTERNAL_MESSAGE } });
});

test("Fastify's own refusals map to codes of the table; anything else is not the client's doing", () => {
  const fe = (o: Partial<FastifyError>) => Object.assign(new Error(o.message ?? 'x'), o) as FastifyError;
  assert.equal(fromFramework(fe({ code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }), 10)?.code, 'body_too_large');
  assert.equal(fromFramework(fe({ code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }), 10)?.status, 415);
  assert.equal(fromFramework(fe({ code: 'FST_ERR_CTP_EMPTY_JSON_BODY', statusCode: 400 }), 10)?.code, 'bad_request');
  assert.equal(fromFramework(fe({ code: 'FST_ERR_X', statusCode: 500 }), 10), undefined);
});
