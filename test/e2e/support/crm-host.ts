// A stand-in for the CRM: a tiny web server on other origins (http://127.0.0.1:<port>, while the app is
// http://localhost:<port>) whose page frames SIM Link and records every message it receives from it.
// One port is in the app's CRM_ORIGINS, the other is not (the browser must refuse to frame the app there).
import { createServer, type Server } from 'node:http';

/** The CRM's page: an iframe on `src` (a query parameter), and a list of the messages the frame sent. */
function hostPage(src: string): string {
  const escaped = src.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>CRM</title></head>
<body>
  <h1>CRM</h1>
  <iframe id="simlink" title="SIM Link" src="${escaped}" style="width: 1100px; height: 700px; border: 1px solid #888"></iframe>
  <h2>Messages from SIM Link</h2>
  <ol id="received" aria-label="Messages from SIM Link"></ol>
  <script>
    window.received = [];
    window.addEventListener('message', (event) => {
      window.received.push({ origin: event.origin, data: event.data });
      const item = document.createElement('li');
      item.textContent = event.origin + ' ' + JSON.stringify(event.data);
      document.getElementById('received').append(item);
    });
  </script>
</body>
</html>`;
}

export interface CrmHost {
  close(): Promise<void>;
}

/** Serves the host page on each of the given ports of 127.0.0.1: GET /crm?src=<url of the frame>. */
export async function startCrmHost(ports: number[]): Promise<CrmHost> {
  const servers: Server[] = [];
  for (const port of ports) {
    const server = createServer((request, response) => {
      const url = new URL(request.url ?? '/', `http://127.0.0.1:${port}`);
      if (url.pathname !== '/crm') {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      response.end(hostPage(url.searchParams.get('src') ?? 'about:blank'));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    servers.push(server);
  }
  return {
    close: async () => {
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    },
  };
}
