import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { eventSchema } from './schema.js';

type Schema = Record<string, unknown>;

/** Every subschema under `properties`/`items`, with its location. */
function* walk(s: Schema, at = '#'): Generator<[string, Schema]> {
  yield [at, s];
  const props = s.properties as Record<string, Schema> | undefined;
  for (const [k, v] of Object.entries(props ?? {})) yield* walk(v, `${at}/properties/${k}`);
  if (s.items) yield* walk(s.items as Schema, `${at}/items`);
}

describe('eventSchema (published at GET /v1/schema/event)', () => {
  test('is JSON Schema 2020-12 with an $id and a title', () => {
    assert.equal(eventSchema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.equal(eventSchema.$id, 'https://stele.dev/schema/event.json');
    assert.ok(eventSchema.title.length > 0);
  });

  test('compiles under a strict 2020-12 validator', () => {
    const ajv = new Ajv2020({ strict: true, strictRequired: false });
    addFormats.default(ajv);
    ajv.compile(eventSchema);
  });

  test('is plain JSON (survives a JSON round trip unchanged)', () => {
    assert.deepEqual(JSON.parse(JSON.stringify(eventSchema)), eventSchema);
  });

  test('every property has a description', () => {
    for (const [at, s] of walk(eventSchema as unknown as Schema)) {
      assert.equal(typeof s.description, 'string', `${at} has no description`);
      assert.ok((s.description as string).length > 5, `${at} has an empty description`);
    }
  });

  test('every object except data refuses additional properties', () => {
    for (const [at, s] of walk(eventSchema as unknown as Schema)) {
      if (s.type !== 'object') continue;
      if (at === '#/properties/data') assert.equal(s.additionalProperties, undefined);
      else assert.equal(s.additionalProperties, false, at);
    }
  });

  test('every string has a length bound or a fixed-length pattern', () => {
    for (const [at, s] of walk(eventSchema as unknown as Schema)) {
      if (s.type !== 'string') continue;
      const bounded = typeof s.maxLength === 'number' || /\{\d+\}\$$/.test(String(s.pattern));
      assert.ok(bounded, `${at} is unbounded`);
    }
  });

  test('requires actor, action, source and outcome', () => {
    assert.deepEqual([...eventSchema.required].sort(), ['action', 'actor', 'outcome', 'source']);
  });
});
