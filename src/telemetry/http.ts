import { createServer, type Server } from 'node:http';

import { readiness, registry } from './metrics.ts';
import { STATUS_PAGE_HEADERS, STATUS_PAGE_HTML, statusSnapshot } from './status-page.ts';

/** What the process knows about itself, for the probes. */
export interface Probes {
  /** The source's own status: `connected` upstream, plus whatever else it reports (cursor, in flight, ...). */
  status(): { connected: boolean } & Record<string, unknown>;
  /** Whether the Kafka brokers answer. */
  kafkaReachable(): boolean;
  /** What this process is (command, source, upstream with credentials redacted, topic, version), for the status page. */
  info?: Record<string, unknown>;
}

/** Ready: events can flow, i.e. connected upstream and Kafka reachable. */
export function readinessOf(probes: Probes): { ready: boolean; upstream: boolean; kafka: boolean; detail: Record<string, unknown> } {
  const detail = probes.status();
  const kafka = probes.kafkaReachable();
  const ready = detail.connected && kafka;
  readiness(ready, kafka);
  return { ready, upstream: detail.connected, kafka, detail };
}

/**
 * `/metrics` for Prometheus and the probes, on the address the Go version
 * calls --metrics-listen-address ("host:port"):
 *   /healthz  200 while the process runs (liveness: restart it when this fails)
 *   /readyz   200 when events can flow (connected upstream and Kafka reachable), else 503
 *   /health   200 while connected upstream, else 503 (the first version's probe, kept)
 * Each answers JSON with what it looked at.
 *   /status   the status page (HTML), and /status.json what it reads (status-page.ts)
 */
export async function startMetricsServer(address: string, probes: Probes): Promise<Server> {
  const { host, port } = parseListenAddress(address);
  const started = Date.now();
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    if (path === '/metrics') {
      // The gauges of readiness are current at every scrape.
      readinessOf(probes);
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
    } else if (path === '/healthz') {
      json(200, { ok: true, uptimeSeconds: Math.round((Date.now() - started) / 1000) });
    } else if (path === '/readyz') {
      const r = readinessOf(probes);
      json(r.ready ? 200 : 503, { ready: r.ready, upstreamConnected: r.upstream, kafkaReachable: r.kafka, ...r.detail });
    } else if (path === '/health') {
      const detail = probes.status();
      json(detail.connected ? 200 : 503, { ok: detail.connected, ...detail });
    } else if (path === '/status') {
      // The status page (docs/status-page.md); it polls /status.json.
      res.writeHead(200, STATUS_PAGE_HEADERS);
      res.end(STATUS_PAGE_HTML);
    } else if (path === '/status.json') {
      statusSnapshot(probes, started).then(
        (snapshot) => json(200, snapshot),
        (err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
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
