// The status page in a real browser (Debian's chromium through playwright-core): the real corpus
// streams through a replay relay and the real CLI into a real broker while the page is open, and its
// numbers, charts and /status.json must move; the page must load nothing but itself and its JSON.
// `firehose jetstream` too, through the Jetstream stand-in after failing over from a dead host.
// The Tap, Ozone, Jetstream and Wikimedia sections are checked with numbers set by hand.
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
import { freePort, startBridge, startCommand, waitFor, type Bridge } from '../support/bridge.ts';
import { corpusFrames } from '../support/corpus.ts';
import { loadCorpusEvents, loopEvents, startJetstreamServer, type JetstreamServer } from '../support/jetstream-server.ts';
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
  jetstream: {
    host: string | null;
    cursor: number | null;
    cursorTime: string | null;
    savedCursor: number | null;
    lagSeconds: number | null;
    failovers: number;
    duplicatesDropped: number;
  } | null;
  wikimedia: { streams: string[]; lagSeconds: number | null; lastEventTime: string | null; cursorEventTime: string | null; reconnects: number } | null;
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
      assert.deepEqual(Object.keys(a), ['schemaVersion', 'time', 'uptimeSeconds', 'info', 'source', 'upstreamUrl', 'ready', 'upstreamConnected', 'kafkaReachable', 'status', 'counters', 'gauges', 'latency', 'process', 'relay', 'tap', 'ozone', 'jetstream', 'wikimedia']);
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
      assert.equal(a.jetstream, null);
      assert.equal(a.wikimedia, null);
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
      assert.equal(await page.locator('#jetstream').isHidden(), true);
      assert.equal(await page.locator('#wikimedia').isHidden(), true);

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

    describe('firehose jetstream', () => {
      let jetstream: JetstreamServer;
      let js: Bridge;
      let jsBase: string;
      let dead: string;
      let pushing = true;
      let live: Promise<void> | undefined;
      before(async () => {
        jetstream = await startJetstreamServer();
        // Nothing listens there: two refused connections, then the failover the page must follow.
        dead = `ws://127.0.0.1:${await freePort()}/subscribe`;
        js = await startCommand(
          ['firehose', 'jetstream'],
          ['--bootstrap-servers', broker.bootstrap, '--output-topic', 'status-page-jetstream', '--jetstream-host', `${dead},${jetstream.url}`, '--reconnect-backoff', '100ms', '--reconnect-backoff-max', '200ms', '--cursor-file', join(dir, 'jetstream-cursor.json'), '--cursor-save-interval', '200ms'],
        );
        jsBase = js.metricsUrl.replace('/metrics', '');
        // Live events stamped now by the stand-in, so the lag is a real, small one.
        live = (async () => {
          for (const e of loopEvents(loadCorpusEvents(), 1_000_000)) {
            if (!pushing) break;
            jetstream.push({ ...e, time_us: undefined });
            await new Promise((r) => setTimeout(r, 5));
          }
        })();
        await waitFor('jetstream ready', async () => (await fetch(`${jsBase}/readyz`).catch(() => undefined))?.status === 200, 60_000, 200);
      });
      after(async () => {
        pushing = false;
        await live;
        js?.child.kill('SIGTERM');
        if (js) assert.equal(await js.exited, 0, js.logs());
        await jetstream?.close();
      });

      it('/status.json has a jetstream section; the page shows the host it failed over to, the cursor and the lag', async () => {
        const get = async () => (await (await fetch(`${jsBase}/status.json`)).json()) as Snapshot;
        const a = await waitFor('a saved Jetstream cursor', async () => {
          const s = await get();
          return s.jetstream?.savedCursor && s.jetstream.lagSeconds !== null ? s : undefined;
        }, 30_000, 200);
        assert.equal(a.info.command, 'firehose jetstream');
        assert.equal(a.source, 'jetstream');
        assert.deepEqual(a.info.jetstreamHosts, [dead, jetstream.url]);
        assert.equal(a.upstreamUrl, jetstream.url, 'the host read now, not the first of the list');
        assert.equal(a.status.host, jetstream.url);
        assert.equal(a.relay, null);
        assert.equal(a.tap, null);
        assert.equal(a.ozone, null);
        assert.equal(a.wikimedia, null);
        const j = a.jetstream!;
        assert.deepEqual(Object.keys(j), ['host', 'cursor', 'cursorTime', 'savedCursor', 'lagSeconds', 'failovers', 'duplicatesDropped']);
        assert.equal(j.host, jetstream.url);
        assert.equal(j.failovers, 1);
        assert.equal(j.duplicatesDropped, 0);
        assert.ok(j.cursor !== null && j.cursor >= j.savedCursor!, `cursor ${j.cursor}, saved ${j.savedCursor}`);
        assert.equal(j.cursorTime, new Date(j.cursor / 1000).toISOString());
        assert.ok(Math.abs(Date.parse(j.cursorTime) - Date.now()) < 60_000, `cursor time ${j.cursorTime}`);
        assert.ok(j.lagSeconds! < 30, `lag ${j.lagSeconds}`);
        assert.equal(a.gauges.upstreamLagSeconds, j.lagSeconds);

        const { page, requests, errors } = await open(browser, `${jsBase}/status`);
        const text = async (selector: string) => (await page.locator(selector).textContent()) ?? '';
        await waitFor('the Jetstream host', async () => (await text('#jetstream-host')) === jetstream.url, 10_000, 100);
        assert.equal(await page.locator('#jetstream').isVisible(), true);
        assert.equal(await page.locator('#tap').isHidden(), true);
        assert.equal(await page.locator('#ozone').isHidden(), true);
        assert.equal(await page.locator('#wikimedia').isHidden(), true);
        assert.equal(await text('#command'), 'firehose jetstream');
        assert.equal(await text('#upstream'), jetstream.url);
        assert.match(await text('#read'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.match(await text('#jetstream-cursor-time'), /^\d{4}-\d\d-\d\dT/);
        assert.match(await text('#jetstream-saved'), /^\d{4}-\d\d-\d\dT/);
        assert.match(await text('#jetstream-lag'), /^\d+ ms$|^\d+\.\d s$/);
        assert.equal(await text('#jetstream-failovers'), '1');
        assert.equal(await text('#jetstream-duplicates'), '0');
        const hosts = await page.locator('#jetstream-hosts tr').evaluateAll((trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
        assert.deepEqual(hosts, [[dead, ''], [jetstream.url, 'reading']]);
        // Shown as a time in this mode, not as the time_us.
        const position = async () => Date.parse(await text('#position'));
        const p1 = await position();
        await waitFor('the position to move', async () => (await position()) > p1, 10_000, 250);
        assert.deepEqual(errors, []);
        assertOnlyOwnRequests(requests, jsBase);
        await page.close();
      });
    });
  });

  describe('Tap, Ozone, Jetstream and Wikimedia sections', () => {
    let servers: Server[] = [];
    after(() => {
      for (const s of servers) s.close();
      servers = [];
    });
    const serve = async (info: Record<string, unknown>, status: Record<string, unknown> = {}) => {
      const s = await startMetricsServer('127.0.0.1:0', { status: () => ({ connected: true, ...status }), kafkaReachable: () => true, info });
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
      assert.equal(await page.locator('#jetstream').isHidden(), true);
      assert.equal(await page.locator('#wikimedia').isHidden(), true);
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
      assert.equal(await page.locator('#jetstream').isHidden(), true);
      assert.equal(await page.locator('#wikimedia').isHidden(), true);
      assert.match((await page.locator('#ozone-lag').textContent())!, /^4\d\.\d s$/);
      assert.match((await page.locator('#poll-errors').textContent())!, /rate-limited\s*2/);
      assert.deepEqual(errors, []);
      assertOnlyOwnRequests(requests, base);
      await page.close();
    });

    it('Jetstream: the host failed over to, the cursor as a time, failovers and duplicates; no cursor file is a warning', async () => {
      const hosts = ['wss://jetstream1.example', 'wss://jetstream2.example'];
      metrics.jetstreamHosts(hosts, hosts[1]!);
      metrics.jetstreamFailover();
      for (let i = 0; i < 3; i++) metrics.jetstreamDuplicate();
      metrics.upstreamConfirmed('jetstream', 1_750_000_000_123_456);
      metrics.jetstreamRead((Date.now() - 42_000) * 1000);
      const base = await serve({ command: 'firehose jetstream', source: 'jetstream', jetstreamHosts: hosts, topic: 't', version: '0.1.0' });
      const s = (await (await fetch(`${base}/status.json`)).json()) as Snapshot;
      assert.equal(s.upstreamUrl, hosts[1]);
      const { lagSeconds, ...rest } = s.jetstream!;
      assert.deepEqual(rest, { host: hosts[1], cursor: 1_750_000_000_123_456, cursorTime: '2025-06-15T15:06:40.123Z', savedCursor: null, failovers: 1, duplicatesDropped: 3 });
      assert.ok(lagSeconds! >= 42 && lagSeconds! < 50, `lag ${lagSeconds}`);

      const { page, requests, errors } = await open(browser, `${base}/status`);
      const text = async (selector: string) => (await page.locator(selector).textContent()) ?? '';
      await waitFor('the Jetstream lag', async () => /s$/.test(await text('#jetstream-lag')), 10_000, 100);
      assert.equal(await page.locator('#jetstream').isVisible(), true);
      assert.equal(await page.locator('#tap').isHidden(), true);
      assert.equal(await page.locator('#ozone').isHidden(), true);
      assert.equal(await page.locator('#wikimedia').isHidden(), true);
      assert.equal(await text('#upstream'), hosts[1]);
      assert.equal(await text('#jetstream-host'), hosts[1]);
      assert.match(await text('#jetstream-lag'), /^4\d\.\d s$/);
      assert.equal(await text('#jetstream-cursor-time'), '2025-06-15T15:06:40.123Z');
      assert.equal(await text('#jetstream-cursor'), '1,750,000,000,123,456');
      assert.equal(await text('#jetstream-saved'), 'none (no --cursor-file)');
      assert.equal(await page.locator('#jetstream-saved').getAttribute('class'), 'n warn');
      assert.equal(await text('#jetstream-failovers'), '1');
      assert.equal(await text('#jetstream-duplicates'), '3');
      assert.match(await text('#jetstream-hosts'), /jetstream1\.example\s*wss:\/\/jetstream2\.example\s*reading/);
      assert.deepEqual(errors, []);
      assertOnlyOwnRequests(requests, base);
      await page.close();
    });

    it('Wikimedia: the EventStreams URL, the streams, the lag, event times, reconnects and the SSE id by topic; no cursor file is a warning', async () => {
      metrics.wikimediaConnection(true);
      for (const reason of ['closed', 'closed', 'stalled']) metrics.wikimediaReconnect(reason);
      const read = Date.now() - 42_000;
      metrics.wikimediaRead(read);
      const id = '[{"topic":"eqiad.mediawiki.recentchange","partition":0,"offset":5123456},{"topic":"codfw.mediawiki.recentchange","partition":0,"timestamp":1746230400000}]';
      const info = { command: 'wikimedia', source: 'wikimedia', wikimediaUrl: 'https://stream.wikimedia.org', streams: ['recentchange', 'page-create'], key: 'wiki', topic: 't', version: '0.1.0' };
      const base = await serve(info, { lastEventId: id, inFlight: 0, paused: false });
      const s = (await (await fetch(`${base}/status.json`)).json()) as Snapshot;
      assert.equal(s.upstreamUrl, 'https://stream.wikimedia.org');
      assert.equal(s.jetstream, null);
      const { lagSeconds, ...rest } = s.wikimedia!;
      // No cursor saved in this process yet: the time of the cursor file is unknown, not 1970.
      assert.deepEqual(rest, { streams: ['recentchange', 'page-create'], lastEventTime: new Date(read).toISOString(), cursorEventTime: null, reconnects: 3 });
      assert.ok(lagSeconds! >= 42 && lagSeconds! < 50, `lag ${lagSeconds}`);
      assert.equal(s.gauges.upstreamLagSeconds, lagSeconds, 'the shared lag covers Wikimedia too');

      const { page, requests, errors } = await open(browser, `${base}/status`);
      const text = async (selector: string) => (await page.locator(selector).textContent()) ?? '';
      await waitFor('the Wikimedia lag', async () => /s$/.test(await text('#wikimedia-lag')), 10_000, 100);
      assert.equal(await page.locator('#wikimedia').isVisible(), true);
      for (const other of ['#tap', '#ozone', '#jetstream']) assert.equal(await page.locator(other).isHidden(), true, other);
      assert.equal(await text('#upstream'), 'https://stream.wikimedia.org');
      assert.equal(await text('#wikimedia-streams'), 'recentchange, page-create');
      assert.match(await text('#wikimedia-lag'), /^4\d\.\d s$/);
      assert.match(await text('#lag'), /^4\d\.\d s$/);
      assert.equal(await text('#wikimedia-last'), new Date(read).toISOString());
      assert.equal(await text('#read'), new Date(read).toISOString());
      assert.equal(await text('#position'), 'SSE id, see Wikimedia');
      assert.equal(await text('#wikimedia-saved'), 'none (no --cursor-file)');
      assert.equal(await page.locator('#wikimedia-saved').getAttribute('class'), 'n warn');
      assert.equal(await text('#wikimedia-reconnects'), '3');
      const cursor = await page.locator('#wikimedia-cursor tr').evaluateAll((trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
      assert.deepEqual(cursor, [
        ['eqiad.mediawiki.recentchange/0', 'offset 5,123,456'],
        ['codfw.mediawiki.recentchange/0', '2025-05-03T00:00:00.000Z'],
      ]);
      await page.close();

      // With a cursor file: its event time once saved, and no warning.
      metrics.wikimediaCursorSaved(Date.parse('2025-05-03T12:34:56Z'));
      const saved = await serve({ ...info, cursorFile: 'wikimedia-cursor.json' }, { lastEventId: id });
      const t = (await (await fetch(`${saved}/status.json`)).json()) as Snapshot;
      assert.equal(t.wikimedia!.cursorEventTime, '2025-05-03T12:34:56.000Z');
      const second = await open(browser, `${saved}/status`);
      await waitFor('the cursor file time', async () => (await second.page.locator('#wikimedia-saved').textContent()) === '2025-05-03T12:34:56.000Z', 10_000, 100);
      assert.equal(await second.page.locator('#wikimedia-saved').getAttribute('class'), 'n');
      assert.deepEqual([...errors, ...second.errors], []);
      assertOnlyOwnRequests(requests, base);
      assertOnlyOwnRequests(second.requests, saved);
      await second.page.close();
    });
  });
});
