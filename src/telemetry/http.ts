import { createServer, type Server } from 'node:http';

import { registry } from './metrics.ts';

/**
 * `/metrics` for Prometheus and `/health` for container probes, on the
 * address the Go version calls --metrics-listen-address ("host:port").
 */
export async function startMetricsServer(address: string, health: () => { ok: boolean; detail: object }): Promise<Server> {
  const { host, port } = parseListenAddress(address);
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
    } else if (req.url === '/health' || req.url === '/healthz') {
      const { ok, detail } = health();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok, ...detail }));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref();
  return server;
}

export function parseListenAddress(address: string): { host: string; port: number } {
  const idx = address.lastIndexOf(':');
  const host = idx === -1 ? '0.0.0.0' : address.slice(0, idx).replace(/^\[|\]$/g, '') || '0.0.0.0';
  const port = Number(idx === -1 ? address : address.slice(idx + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid listen address "${address}"`);
  return { host, port };
}
