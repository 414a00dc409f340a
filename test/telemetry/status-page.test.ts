// The status page in a real browser (Debian's chromium through playwright-core): the real corpus
// streams through a replay relay and the real CLI into a real broker while the page is open, and its
// numbers, charts and /status.json must move; the page must load nothing but itself and its JSON.
// UPDATE_SCREENSHOT=1 copies the screenshot taken while streaming to docs/status-page.png.
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium, type Browser, type Page } from 'playwright-core';

import { startReplayServer, type ReplayServer } from '../../src/replay/index.ts';
import { startMetricsServer } from '../../src/telemetry/http.ts';
import * as metrics from '../../src/telemetry/metrics.ts';
import { startBridge, waitFor, type Bridge } from '../support/bridge.ts';
import { corpusFrames } from '../support/corpus.ts';
import { startTestBroker, type TestBroker } from '../support/kafka-broker.ts';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = fileURLToPath(new URL('../../docs/status-page.png', import.meta.url));

interface Snapshot {
  schemaVersion: number;
  time: string;
  uptimeSeconds: number;
  info: Record<string, unknown>;
  source: string | null;
  upstreamUrl: string | null;
  ready: boolean;
  upstreamConnected: boolean;
  kafkaReachable: boolean;
  status: Record<string, unknown>;
  counters: {
    handled: { action: string; collection: string; value: number }[];
    produced: { ok: number; error: number };
    deliveryRetries: number;
    invalidInput: unknown[];
    reconnects: unknown[];
    filtered: { collection: number; service: number };
    enrichment: Record<string, number>;
    backpressurePausedSeconds: number;
  };
  gauges: Record<string, number | boolean | null>;
  latency: Record<'delivery' | 'event', { p50: number | null; p99: number | null; count: number; sum: number; buckets: { le: number | '+Inf'; count: number }[] }>;
  process: { cpuSecondsTotal: number; residentMemoryBytes: number };
  relay: Record<string, unknown> | null;
  tap: { repos: Record<string, number | null>; recordsIndexed: number | null; outboxBuffer: number | null } | null;
  ozone: { lagSeconds: number | null; pollErrors: { kind: string; value: number }[] } | null;
}

/** A page that records every request it makes and every console error. */
async function open(browser: Browser, url: string): Promise<{ page: Page; requests: string[]; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const requests: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  return { page, requests, errors };
}

function assertOnlyOwnRequests(requests: string[], origin: string): void {
  assert.ok(requests.length > 0);
  for (const r of requests) {
    const u = new URL(r);
    assert.equal(u.origin, origin, `request to another origin: ${r}`);
    assert.ok(u.pathname === '/status' || u.pathname === '/status.json', `unexpected request: ${r}`);
  }
}

const total = (s: Snapshot) => s.counters.handled.reduce((a, h) => a + h.value, 0);

describe('status page', () => {
  let browser: Browser;
  before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM });
  });
  after(async () => {
    await browser?.close();
  });

  describe('while the corpus streams through the CLI', () => {
    let broker: TestBroker;
    let relay: ReplayServer;
    let bridge: Bridge;
    let base: string;
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'atkafka-status-'));
      broker = await startTestBroker();
      // The corpus over and over, slowly enough to watch it move.
      relay = await startReplayServer({ frames: corpusFrames(), rate: 200, loop: true });
      bridge = await startBridge(['--bootstrap-servers', broker.bootstrap, '--output-topic', 'status-page', '--relay-host', relay.url, '--cursor-file', join(dir, 'cursor.json'), '--cursor-save-interval', '200ms']);
      base = bridge.metricsUrl.replace('/metrics', '');
      await waitFor('ready', async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200, 60_000, 200);
    });
    after(async () => {
      bridge?.child.kill('SIGTERM');
      if (bridge) assert.equal(await bridge.exited, 0, bridge.logs());
      await relay?.close();
      await broker?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    it('/status.json has the documented shape, and its counters increase', async () => {
      const get = async () => {
        const res = await fetch(`${base}/status.json`);
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
        return (await res.json()) as Snapshot;
      };
      const a = await waitFor('a saved position', async () => {
        const s = await get();
        return (s.gauges.upstreamPosition as number) > 0 ? s : undefined;
      }, 30_000, 200);
      await new Promise((r) => setTimeout(r, 2000));
      const b = await get();

      assert.equal(a.schemaVersion, 1);
      assert.ok(Date.parse(b.time) > Date.parse(a.time));
      assert.equal(typeof a.uptimeSeconds, 'number');
      assert.deepEqual(Object.keys(a), ['schemaVersion', 'time', 'uptimeSeconds', 'info', 'source', 'upstreamUrl', 'ready', 'upstreamConnected', 'kafkaReachable', 'status', 'counters', 'gauges', 'latency', 'process', 'relay', 'tap', 'ozone']);
      assert.equal(a.info.command, 'firehose relay');
      assert.equal(a.info.topic, 'status-page');
      assert.equal(a.source, 'relay');
      assert.equal(a.upstreamUrl, relay.url);
      assert.equal(a.ready, true);
      assert.equal(a.upstreamConnected, true);
      assert.equal(a.kafkaReachable, true);
      assert.equal(a.status.connected, true);
      assert.equal(a.tap, null);
      assert.equal(a.ozone, null);
      assert.deepEqual(Object.keys(a.counters), ['handled', 'produced', 'deliveryRetries', 'invalidInput', 'reconnects', 'filtered', 'enrichment', 'backpressurePausedSeconds']);
      assert.deepEqual(Object.keys(a.gauges), ['upstreamPosition', 'upstreamLagSeconds', 'inFlightMessages', 'inFlightBytes', 'decodeBacklogFrames', 'enrichmentWaiting', 'backpressurePaused']);
      assert.ok(a.counters.handled.some((h) => h.action === 'operation#create' && h.collection.startsWith('app.bsky.')));
      for (const l of [a.latency.delivery, a.latency.event]) {
        assert.deepEqual(Object.keys(l), ['p50', 'p99', 'count', 'sum', 'buckets']);
        assert.equal(l.buckets.at(-1)!.le, '+Inf');
        assert.equal(l.buckets.at(-1)!.count, l.count);
      }
      assert.ok(a.relay !== null && typeof a.relay.lastSeq === 'number');

      // Cumulative: a script diffs two snapshots.
      assert.ok(total(b) > total(a), `handled ${total(a)} -> ${total(b)}`);
      assert.ok(b.counters.produced.ok > a.counters.produced.ok, 'produced ok');
      assert.ok((b.gauges.upstreamPosition as number) > (a.gauges.upstreamPosition as number), 'position');
      assert.ok(b.latency.delivery.count > a.latency.delivery.count, 'delivery latency observations');
      assert.ok(b.latency.event.count > a.latency.event.count, 'event latency observations');
      assert.ok(typeof b.latency.event.p99 === 'number' && b.latency.event.p99 >= b.latency.event.p50!);
      assert.ok(b.process.cpuSecondsTotal > a.process.cpuSecondsTotal);

      const secret = JSON.stringify(b);
      for (const k of Object.keys(process.env).filter((k) => k.startsWith('ATKAFKA_'))) assert.ok(!secret.includes(process.env[k]!), k);
    });

    it('the page shows numbers that move, charts with points, and loads nothing else', async () => {
      const res = await fetch(`${base}/status`);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
      assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'.*connect-src 'self'/);

      const { page, requests, errors } = await open(browser, `${base}/status`);
      const text = async (selector: string) => (await page.locator(selector).textContent()) ?? '';
      const points = async (selector: string) => Number((await page.locator(selector).getAttribute('data-points')) ?? 0);
      const read = async () => ({
        handled: await text('#handled'),
        eps: await text('#eps'),
        position: await text('#position'),
        connected: await text('#connected'),
        ready: await text('#ready'),
        kafka: await text('#kafka'),
        command: await text('#command'),
        upstream: await text('#upstream'),
        lag: await text('#lag'),
        p99: await text('#el-p99'),
        chart: await points('#eps-chart'),
        kinds: await page.locator('#kinds tr td:first-child').allTextContents(),
        kindCharts: await Promise.all((await page.locator('#kinds svg').all()).map(async (l) => Number((await l.getAttribute('data-points')) ?? 0))),
        collections: await page.locator('#collections tr').count(),
      });
      // A few polls, so the rates and charts have something to show.
      await waitFor('a chart with points', async () => (await read()).chart >= 3, 15_000, 250);
      const first = await read();
      await new Promise((r) => setTimeout(r, 2500));
      const second = await read();

      assert.equal(first.command, 'firehose relay');
      assert.equal(first.upstream, relay.url);
      assert.equal(second.connected, 'yes');
      assert.equal(second.ready, 'yes');
      assert.equal(second.kafka, 'yes');
      const n = (s: string) => Number(s.replace(/,/g, ''));
      assert.ok(n(second.handled) > n(first.handled), `handled ${first.handled} -> ${second.handled}`);
      assert.ok(n(second.position) > n(first.position), `position ${first.position} -> ${second.position}`);
      assert.ok(n(second.eps) > 0, `events/s ${second.eps}`);
      assert.ok(second.chart > first.chart, `chart points ${first.chart} -> ${second.chart}`);
      assert.match(second.lag, /\d/);
      assert.match(second.p99, /\d+ ms|\d s/);
      assert.ok(second.kinds.includes('operation#create'), `kinds ${second.kinds.join(', ')}`);
      assert.ok(second.kindCharts.every((p) => p > 0));
      assert.ok(second.collections > 1);
      assert.equal(await page.locator('#tap').isHidden(), true);
      assert.equal(await page.locator('#ozone').isHidden(), true);

      // For the committed screenshot, let the charts fill up with a minute of history first.
      if (process.env.UPDATE_SCREENSHOT === '1') await new Promise((r) => setTimeout(r, 60_000));
      const shot = join(dir, 'status-page.png');
      await page.screenshot({ path: shot, fullPage: true });
      if (process.env.UPDATE_SCREENSHOT === '1') await copyFile(shot, SCREENSHOT);

      assert.deepEqual(errors, []);
      assertOnlyOwnRequests(requests, base);
      assert.ok(requests.filter((r) => r.endsWith('/status.json')).length >= 4, 'polls every second');
      await page.close();
    });
  });

  describe('Tap and Ozone sections', () => {
    let servers: Server[] = [];
    after(() => {
      for (const s of servers) s.close();
      servers = [];
    });
    const serve = async (info: Record<string, unknown>) => {
      const s = await startMetricsServer('127.0.0.1:0', { status: () => ({ connected: true }), kafkaReachable: () => true, info });
      servers.push(s);
      return `http://127.0.0.1:${(s.address() as { port: number }).port}`;
    };

    it('Tap: the backfill progress bar, records indexed and the outbox', async () => {
      metrics.tapProgress({ repos: 400, backfilled: 100, backfilling: 20, failed: 1, recordsIndexed: 123456, outboxBuffer: 7, resyncBuffer: 3 });
      const base = await serve({ command: 'firehose tap', source: 'tap', tapHost: 'ws://tap.example:2480', topic: 't', version: '0.1.0' });
      const s = (await (await fetch(`${base}/status.json`)).json()) as Snapshot;
      assert.deepEqual(s.tap?.repos, { known: 400, backfilling: 20, backfilled: 100, failed: 1 });
      assert.equal(s.tap?.recordsIndexed, 123456);
      assert.equal(s.upstreamUrl, 'ws://tap.example:2480');

      const { page, requests, errors } = await open(browser, `${base}/status`);
      await waitFor('the Tap numbers', async () => (await page.locator('#records').textContent()) === '123,456', 10_000, 100);
      assert.equal(await page.locator('#tap').isVisible(), true);
      assert.equal(await page.locator('#ozone').isHidden(), true);
      assert.deepEqual([await page.locator('#backfill').getAttribute('value'), await page.locator('#backfill').getAttribute('max')], ['100', '400']);
      assert.match((await page.locator('#backfill-text').textContent())!, /100 of 400 repos backfilled \(25\.0%\), 20 in progress, 1 failed/);
      assert.equal(await page.locator('#outbox').textContent(), '7');
      assert.deepEqual(errors, []);
      assertOnlyOwnRequests(requests, base);
      await page.close();
    });

    it('Ozone: the poll lag and poll errors by kind', async () => {
      metrics.ozonePosition(Date.now() - 42_000);
      metrics.ozonePollError('rate-limited');
      metrics.ozonePollError('rate-limited');
      metrics.ozonePoll(3);
      const base = await serve({ command: 'ozone-events', source: 'ozone', pdsHost: 'https://pds.example', topic: 't', version: '0.1.0' });
      const s = (await (await fetch(`${base}/status.json`)).json()) as Snapshot;
      assert.ok(s.ozone !== null && s.ozone.lagSeconds! >= 42);
      assert.deepEqual(s.ozone.pollErrors, [{ kind: 'rate-limited', value: 2 }]);

      const { page, requests, errors } = await open(browser, `${base}/status`);
      await waitFor('the Ozone lag', async () => /s$/.test((await page.locator('#ozone-lag').textContent()) ?? ''), 10_000, 100);
      assert.equal(await page.locator('#ozone').isVisible(), true);
      assert.equal(await page.locator('#tap').isHidden(), true);
      assert.match((await page.locator('#ozone-lag').textContent())!, /^4\d\.\d s$/);
      assert.match((await page.locator('#poll-errors').textContent())!, /rate-limited\s*2/);
      assert.deepEqual(errors, []);
      assertOnlyOwnRequests(requests, base);
      await page.close();
    });
  });
});
