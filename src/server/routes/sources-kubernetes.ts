import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Stele } from '../../app/stele.js';
import { SteleError } from '../../core/errors.js';
import { K8S_API_VERSION, kubernetesEvents, kubernetesItemName } from '../../sources/kubernetes.js';
import { principalOf } from '../auth.js';
import { jsonBody } from '../body.js';
import { anyBodyIsJson, appendedSchema, withItemNames } from './sources.js';

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
      '(items[i].field). The principal needs append and vouch for k8s.* (role k8s in docs/sources/kubernetes.md).',
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
