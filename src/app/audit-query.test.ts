import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { parseQuery } from '../index/query.js';
import { subjectHash } from '../keys/subject.js';
import { clip, recordedQuery, recordedRequest, textHash, valueHash } from './audit-query.js';

const pepper = randomBytes(32);
const h = (v: string) => subjectHash(pepper, v);

describe('recordedQuery', () => {
  test('identifying field values become the keyed hash erasure records; others stay', () => {
    const r = recordedQuery(
      'subject:alice@example.com action:emacs.* outcome:denied tier:compliance index:8..10 since:7d',
      pepper,
    );
    assert.equal(r, `subject:#h:${h('alice@example.com')} action:emacs.* outcome:denied tier:compliance index:8..10 since:7d`);
    assert.ok(!r.includes('alice'));
  });

  test('every identifying field, free text, phrases and prefixes', () => {
    const q =
      'actor:alice@example.com on_behalf_of:"Alice Smith" principal:user:alice@example.com resource:alice.txt ' +
      'host:alice-laptop id:alice-1 Alice@Example.com "alice smith" alic* type:human verified:true';
    const r = recordedQuery(q, pepper);
    assert.ok(!/alice|smith/i.test(r), r);
    assert.ok(r.includes(`actor:#h:${h('alice@example.com')}`));
    assert.ok(r.includes(`on_behalf_of:#h:${h('Alice Smith')}`));
    assert.ok(r.includes(`principal:#h:${h('user:alice@example.com')}`));
    // Full text matches case-insensitively, so its hash is of the lower-cased words.
    assert.ok(r.includes(`#h:${h('alice@example.com')} #h:${h('alice smith')} #h:${h('alic')}*`));
    assert.ok(r.endsWith('type:human verified:true'));
    // The record is itself a query the parser reads.
    assert.ok(parseQuery(r));
  });

  test('quoting tricks, globs, negation, OR and parentheses hide nothing', () => {
    const r = recordedQuery(
      'actor:"ali\\"ce\\*x" (subject:alice* OR -subject:bob@example.com) NOT "x \\"alice\\"" actor:* action:"a b"',
      pepper,
    );
    assert.ok(!/alice|bob/i.test(r), r);
    assert.ok(r.includes(`(subject:#g:${h('alice*')} OR -subject:#h:${h('bob@example.com')})`), r);
    assert.ok(r.includes('actor:*'), 'presence names no one');
    assert.ok(r.includes('action:"a b"'), 'non-identifying values keep their quotes');
    assert.ok(parseQuery(r));
  });

  test('NFC and NFD spellings hash alike; absolute times and empty queries', () => {
    const nfc = 'subject:zoë@example.com';
    assert.equal(recordedQuery(nfc, pepper), recordedQuery(nfc.normalize('NFD'), pepper));
    assert.equal(valueHash(pepper, 'zoë'.normalize('NFD')), h('zoë'));
    assert.equal(textHash(pepper, 'ZOË'), h('zoë'));
    assert.equal(
      recordedQuery('since:2026-11-17 until:2026-11-18T10:00:00.000123Z', pepper),
      'since:2026-11-17T00:00:00.000Z until:2026-11-18T10:00:00.000123Z',
    );
    assert.equal(recordedQuery('   ', pepper), '');
    assert.equal(recordedQuery('subject:"alice@example.com', pepper), '#unparsed');
    // 2,048 one-letter words (the longest query) would be 75 KB of hashes: clipped, to fit a leaf.
    assert.ok(recordedQuery('a '.repeat(2048), pepper).length < 8300);
  });
});

describe('recordedRequest and clip', () => {
  test('a request line keeps path and parameter names; q is rewritten', () => {
    const r = recordedRequest(
      'GET',
      `/v1/events?q=${encodeURIComponent('actor:alice@example.com')}&limit=5&token=secret-alice`,
      pepper,
    );
    assert.equal(r, `GET /v1/events?q=actor:#h:${h('alice@example.com')}&limit&token`);
    assert.equal(recordedRequest('GET', '/v1/export?q=alice%20OR', pepper), 'GET /v1/export?q=#unparsed');
    assert.equal(recordedRequest('GET', '/v1/entries/4', pepper), 'GET /v1/entries/4');
  });

  test('long text is clipped and marked', () => {
    assert.equal(clip('short'), 'short');
    const long = 'x'.repeat(8192);
    const c = clip(long);
    assert.ok(c.length < 240);
    assert.ok(c.endsWith('…[clipped, 8192 chars]'));
    assert.ok(recordedRequest('GET', `/log/${'y'.repeat(5000)}`, pepper).length < 300);
  });
});
