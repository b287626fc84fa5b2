/**
 * What the source routes (Kubernetes, CloudTrail) share: a JSON body read whatever its content
 * type, the answer schema, and append errors renamed to the source's item paths.
 */
import type { FastifyInstance } from 'fastify';
import { batchIndexOf, relabel, SteleError } from '../../core/errors.js';

/**
 * Awaits an append of events mapped one to one from a source payload, naming the item of its
 * errors (invalid, too large, forbidden) by the payload's own name, e.g. `items[3]` for the
 * "event 3" of `detail.batchIndex`.
 */
export async function withItemNames<T>(append: Promise<T>, name: (i: number) => string, count: number): Promise<T> {
  try {
    return await append;
  } catch (err) {
    if (!(err instanceof SteleError) || err.status >= 500 || err.status === 429) throw err;
    const i = batchIndexOf(err);
    if (i !== undefined) throw relabel(err, name(i));
    if (count === 1) throw relabel(err, name(0), err.message);
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
