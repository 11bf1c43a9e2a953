/**
 * The agent's HTTP endpoints: `/metrics` (Prometheus), `/livez` (the event loop answers and the
 * last apply loop iteration is recent) and `/readyz` (in sync with the datastore and the last
 * apply succeeded). Bound to 127.0.0.1 by default; port 0 picks a free port (the caller decides
 * whether to start the server at all).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface HealthSource {
  live(): { ok: boolean; detail: string };
  ready(): { ok: boolean; detail: string };
}

export async function startHttp(host: string, port: number, registry: Registry, health: HealthSource): Promise<Server> {
  const server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (url === '/metrics') {
      registry.metrics().then((body) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(body);
      }, (err: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`metrics: ${err.message}\n`);
      });
      return;
    }
    if (url === '/livez' || url === '/readyz') {
      const r = url === '/livez' ? health.live() : health.ready();
      res.writeHead(r.ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(`${r.ok ? 'ok' : 'not ok'}: ${r.detail}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found; try /metrics, /livez or /readyz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  return server;
}

export function boundPort(server: Server): number {
  return (server.address() as AddressInfo).port;
}
