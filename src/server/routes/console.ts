/**
 * The console (issue 16): the static single-page app the build puts in dist/console/, served at
 * `/` with a strict Content-Security-Policy (its own scripts and the API only), and `GET
 * /v1/whoami`, which tells a signed-in user what the policy lets them do, so the console shows
 * only the views they can use (the API still decides every request).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Stele } from '../../app/stele.js';
import { SteleError } from '../../core/errors.js';
import { ROLE_ACTIONS } from '../../policy/schema.js';
import { principalOf } from '../auth.js';

/** Where the build writes the console (dist/console/ beside dist/src/). */
export const CONSOLE_DIR = fileURLToPath(new URL('../../../console/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The console's origin and the identity providers it signs in with; nothing else. */
function csp(issuers: readonly string[]): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self' ${issuers.join(' ')}`.trim(),
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export function consoleRoutes(stele: Stele, dir = CONSOLE_DIR) {
  return async (app: FastifyInstance) => {
    /** The build's files, read once: they change only with a new build, which restarts the server. */
    const files = new Map<string, Buffer | null>();
    const read = (path: string): Buffer | null => {
      let b = files.get(path);
      if (b === undefined) {
        b = existsSync(path) && statSync(path).isFile() ? readFileSync(path) : null;
        files.set(path, b);
      }
      return b;
    };
    /** A file of the build, gzip-compressed when the client takes it and the build made one. */
    const send = (reply: FastifyReply, file: string, acceptsGzip: boolean, cache: string) => {
      const path = normalize(join(dir, file));
      const plain = path.startsWith(dir) ? read(path) : null;
      if (plain === null) throw new SteleError('not_found', `no console file ${file}`);
      const gz = acceptsGzip ? read(`${path}.gz`) : null;
      const issuers = stele.access.policy.identity.issuers.filter((i) => i.console).map((i) => new URL(i.issuer).origin);
      reply
        .header('content-security-policy', csp(issuers))
        .header('x-frame-options', 'DENY')
        .header('content-type', TYPES[extname(path)] ?? 'application/octet-stream')
        .header('cache-control', cache)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('vary', 'accept-encoding');
      if (gz) reply.header('content-encoding', 'gzip');
      return reply.send(gz ?? plain);
    };
    const gzip = (h: string | string[] | undefined) => /\bgzip\b/.test(String(h ?? ''));

    app.get('/', { schema: { hide: true } }, async (req, reply) => {
      if (read(join(dir, 'index.html')) === null)
        throw new SteleError('not_found', 'the console is not built: run npm run build');
      return send(reply, 'index.html', gzip(req.headers['accept-encoding']), 'no-cache');
    });

    // Only the built scripts and styles, named by their content hashes: cached for good. (The page
    // itself only at /, where it is never cached.)
    app.get<{ Params: { file: string } }>('/console/:file', { schema: { hide: true } }, async (req, reply) => {
      const file = req.params.file;
      if (!/^[\w-]+-[A-Z0-9]{8}\.(js|css)$/.test(file)) throw new SteleError('not_found', `no console file ${file}`);
      return send(reply, file, gzip(req.headers['accept-encoding']), 'public, max-age=31536000, immutable');
    });

    // Public: what the sign-in screen offers. The issuers are in the page's CSP header already.
    app.get(
      '/v1/console/config',
      { schema: { summary: "The console's sign-in options (the policy's issuers with a console client)" } },
      async () => ({
        issuers: stele.access.policy.identity.issuers.flatMap((i) =>
          i.console
            ? [
                {
                  issuer: i.issuer,
                  label: i.console.label,
                  client_id: i.console.clientId,
                  scopes: i.console.scopes,
                  params: i.console.params,
                },
              ]
            : [],
        ),
      }),
    );

    app.get(
      '/v1/whoami',
      { schema: { summary: 'The signed-in principal and what the policy lets it do (for the console)' } },
      async (req) => {
        const p = principalOf(req);
        const actions = ROLE_ACTIONS.filter((a) => stele.access.allowed(p, a, { type: 'Log' }));
        return {
          principal: { kind: p.kind, id: p.id, method: p.method, groups: p.groups, roles: p.roles },
          actions,
          tiers: Object.fromEntries(
            (['read', 'search', 'export'] as const).map((a) => [a, actions.includes(a) ? stele.access.readableTiers(p, a) : []]),
          ),
          // Each tier's retention (days; null: kept forever), for the entries the console shows.
          retention: Object.fromEntries(
            stele.access.policy.retention.tiers.map((t) => [
              t.name,
              t.keepMs === null ? null : Math.round(t.keepMs / 86_400_000),
            ]),
          ),
          origin: stele.log.origin,
          // The console pins it on first use; verifying against a key the server hands out only
          // proves what this server says, so the console shows it for comparison with the auditors'.
          vkey: stele.vkey,
        };
      },
    );
  };
}
