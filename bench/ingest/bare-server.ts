/**
 * A reference point, not a competitor: the least a Node HTTP server on this machine does for the
 * same requests. It reads the body, JSON.parses it and answers `{"entries":[{"id","index"}…]}`
 * like Stele, on one thread, with no validation, no hashing, no disk and no fsync.
 *
 * `node dist/bench/ingest/bare-server.js` prints "listening on http://127.0.0.1:PORT".
 */
import http from 'node:http';

let next = 0;
const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let body: string;
    try {
      const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: string } | { id?: string }[];
      const events = Array.isArray(parsed) ? parsed : [parsed];
      body = JSON.stringify({ entries: events.map((e) => ({ id: e.id ?? '', index: next++ })) });
    } catch (err) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'invalid_json', message: (err as Error).message } }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 72_000;
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  console.log(`listening on http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
