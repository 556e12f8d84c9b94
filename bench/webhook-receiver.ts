// A webhook receiver for the bench (webhook-scenario.ts), in its own process on 127.0.0.1: answers every POST
// 204 once its body is read, and notes the message's webhook-id, the event's timestamp (the payload's
// `timestamp`, set in the change's transaction) and when the message arrived.
//   GET /take → the notes since the last take, as JSON [[webhook-id, event ms, received ms], …], and forgets them.
// Argument: the port. Stops on SIGTERM.
import http from 'node:http';

const port = Number(process.argv[2]);
let notes: [string, number, number][] = [];

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/take') {
    const body = JSON.stringify(notes);
    notes = [];
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    return;
  }
  if (req.method !== 'POST') {
    res.writeHead(req.url === '/healthz' ? 200 : 405).end();
    return;
  }
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.on('end', () => {
    const received = Date.now();
    let timestamp = NaN;
    try {
      timestamp = Date.parse((JSON.parse(body) as { timestamp: string }).timestamp);
    } catch {
      // an unreadable payload: noted without a timestamp
    }
    notes.push([String(req.headers['webhook-id'] ?? ''), timestamp, received]);
    res.writeHead(204).end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
