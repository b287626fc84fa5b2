/**
 * What the source routes (Kubernetes, CloudTrail) share: a JSON body read whatever its content
 * type, the answer schema, and append errors renamed to the source's item paths.
 */
import type { FastifyInstance } from 'fastify';
import { SteleError } from '../../core/errors.js';

/**
 * Awaits an append of events mapped one to one from a source payload, renaming the "event N" of
 * its errors (invalid, too large, forbidden) to the payload's own name for the item, e.g. `items[3]`.
 */
export async function withItemNames<T>(append: Promise<T>, name: (i: number) => string, count: number): Promise<T> {
  try {
    return await append;
  } catch (err) {
    if (!(err instanceof SteleError) || err.status >= 500 || err.status === 429) throw err;
    const m = /^event (\d+): /.exec(err.message);
    if (m) throw new SteleError(err.code, `${name(Number(m[1]))}: ${err.message.slice(m[0].length)}`, err.status, err.detail);
    if (count === 1) throw new SteleError(err.code, `${name(0)}: ${err.message}`, err.status, err.detail);
    throw err;
  }
}

export const appendedSchema = {
  200: {
    type: 'object',
    required: ['entries'],
    properties: {
      entries: {
        type: 'array',
        description: 'One per source event, in order: its Stele event id and log index (the first index for a repeat).',
        items: {
          type: 'object',
          required: ['id', 'index'],
          properties: { id: { type: 'string' }, index: { type: 'integer' } },
        },
      },
    },
  },
} as const;

/**
 * Within a source plugin, a body of any or no content type is read as bytes and parsed as JSON:
 * these payloads are always JSON, and not every sender labels them (`kubectl create --raw -f` sends
 * none). Fastify scopes the parser to the plugin's routes.
 */
export function anyBodyIsJson(app: FastifyInstance): void {
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
}
