import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SteleError } from '../../errors.js';
import { K8S_API_VERSION, kubernetesEvents, kubernetesItemName } from '../../sources/kubernetes.js';
import type { Stele } from '../../stele.js';
import { principalOf } from '../auth.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The JSON value of a request body (bodies arrive as bytes; see app.ts), or 400. */
export function jsonBody(req: FastifyRequest): unknown {
  const body = req.body as Buffer | undefined;
  let text: string;
  try {
    text = utf8.decode(body ?? new Uint8Array());
  } catch {
    throw new SteleError('invalid_utf8', 'the request body is not valid UTF-8');
  }
  if (text.trim() === '') throw new SteleError('invalid_json', 'the request body is empty');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new SteleError('invalid_json', `the request body is not valid JSON: ${(err as Error).message}`);
  }
}

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

/** Names a cluster (`source.host`): 1 to 255 characters, no spaces or control characters. */
const CLUSTER = /^[^\s\p{Cc}]{1,255}$/u;

/**
 * `POST /v1/sources/kubernetes[/<cluster>]`: the kube-apiserver audit webhook backend's target. The
 * cluster (`source.host`) is the path segment, else `?cluster=`, else the principal's name; the
 * path form is the one to use in the webhook kubeconfig, because client-go drops a query string
 * from the server URL.
 */
export const kubernetesRoutes = (stele: Stele) => async (app: FastifyInstance) => {
  anyBodyIsJson(app);
  const schema = {
    summary: 'Append Kubernetes audit events (the API server audit webhook)',
    description:
      `Body: an ${K8S_API_VERSION} EventList as the API server's webhook backend sends it (batch or blocking mode), or one ` +
      'Event. Each audit event becomes one Stele event (action k8s.<resource>[.<subresource>].<verb>, or ' +
      'k8s.nonresource.<verb>), idempotent by auditID, stage and requestReceivedTimestamp. Answers once every event is ' +
      'durable; all or nothing: a structurally invalid event refuses the whole request with its position ' +
      '(items[i].field). The principal needs append and vouch for k8s.* (role k8s in the README).',
    security: [{ bearer: [] }],
    querystring: {
      type: 'object',
      properties: { cluster: { type: 'string', minLength: 1, maxLength: 255 } },
      additionalProperties: false,
    },
    response: appendedSchema,
  };
  const handler = async (req: FastifyRequest<{ Params: { cluster?: string }; Querystring: { cluster?: string } }>) => {
    const principal = principalOf(req);
    const cluster = req.params.cluster ?? req.query.cluster ?? principal.id;
    if (!CLUSTER.test(cluster)) {
      throw new SteleError(
        'bad_request',
        `the cluster name must be 1 to 255 characters without spaces, got ${JSON.stringify(cluster)}`,
      );
    }
    const body = jsonBody(req);
    const events = kubernetesEvents(body, { cluster });
    if (events.length === 0) return { entries: [] };
    return { entries: await withItemNames(stele.appendAs(events, principal), kubernetesItemName(body), events.length) };
  };
  app.post('/v1/sources/kubernetes', { schema }, handler);
  app.post(
    '/v1/sources/kubernetes/:cluster',
    { schema: { ...schema, summary: `${schema.summary}, for a named cluster` } },
    handler,
  );
};
