/**
 * The agent's HTTP endpoints: `/metrics` (Prometheus), `/livez` = Felix's `/liveness` (the event
 * loop answers and the last apply loop iteration is recent) and `/readyz` = `/readiness` (in sync
 * with the datastore and the last apply succeeded). One server serves health, metrics or both
 * (the health port and the metrics port; one listener when they are the same port). Bound to
 * 127.0.0.1 by default; port 0 picks a free port (the caller decides whether to start it at all).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface HealthSource {
  live(): { ok: boolean; detail: string };
  ready(): { ok: boolean; detail: string };
}

const LIVE_PATHS = new Set(['/livez', '/liveness']);
const READY_PATHS = new Set(['/readyz', '/readiness']);

/** `registry` undefined: no /metrics here; `health` undefined: no health paths here. */
export async function startHttp(host: string, port: number, registry: Registry | undefined, health: HealthSource | undefined): Promise<Server> {
  const server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0]!;
    if (url === '/metrics' && registry) {
      registry.metrics().then((body) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(body);
      }, (err: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`metrics: ${err.message}\n`);
      });
      return;
    }
    if (health && (LIVE_PATHS.has(url) || READY_PATHS.has(url))) {
      const r = LIVE_PATHS.has(url) ? health.live() : health.ready();
      res.writeHead(r.ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(`${r.ok ? 'ok' : 'not ok'}: ${r.detail}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    const paths = [...(registry ? ['/metrics'] : []), ...(health ? ['/livez', '/readyz', '/liveness', '/readiness'] : [])];
    res.end(`not found; try ${paths.join(', ')}\n`);
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
