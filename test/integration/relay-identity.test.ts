// Identity enrichment end to end, as a user runs it: the real CLI reading a real PDS's firehose,
// resolving against that PDS's real PLC and the real AppView; and a PLC that misbehaves in every way
// while the stream must keep flowing, lose nothing and stay within its memory bound.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { startReplayServer } from '../../src/replay/index.ts';
import { splitFrame, joinFrame } from '../atproto/corpus.ts';
import { metricValue, readCursor, startBridge, waitFor } from '../support/bridge.ts';
import { corpusFrames, expectedMessages, lastSeq } from '../support/corpus.ts';
import { readTopic } from '../support/kafka-read.ts';
import { startTestBroker, type TestBroker } from '../support/kafka-broker.ts';
import { startPds, type PdsPeer } from '../support/peers.ts';

const frames = corpusFrames();
const expected = expectedMessages(frames);
const LAST = lastSeq(frames);

type Meta = { didDocument: { id: string }; pdsHost?: string; handle?: string; didCreatedAt?: string; accountAge: number; profile: Record<string, unknown> | null };
type Msg = { did: string; eventMetadata: Meta | null; operation?: { collection: string }; identity?: { handle: string }; account?: unknown };

/** A UDP port nothing answers on: DNS lookups fail at once, as on a machine without the network. */
async function deadDns(): Promise<string> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const address = `127.0.0.1:${sock.address().port}`;
  sock.close();
  return address;
}

describe('identity enrichment against real peers', () => {
  let broker: TestBroker;
  let dir: string;
  let dns: string;
  before(async () => {
    broker = await startTestBroker();
    dir = await mkdtemp(join(tmpdir(), 'atkafka-identity-'));
    dns = await deadDns();
  });
  after(async () => {
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a real PDS firehose comes out enriched: verified handle, PDS host, creation time from the PLC audit log, profile from the AppView', async () => {
    await using pds: PdsPeer = await startPds();
    const cursorFile = join(dir, 'pds.json');
    const bridge = await startBridge([
      '--bootstrap-servers', broker.bootstrap, '--output-topic', 'pds-enriched', '--relay-host', pds.pdsUrl, '--cursor', '0', '--cursor-file', cursorFile, '--cursor-save-interval', '50ms',
      '--plc-host', pds.plcUrl, '--api-host', pds.appviewUrl, '--handle-well-known-url', pds.wellKnownTemplate, '--allow-private-identity-hosts', '--dns-servers', dns,
    ]);
    await waitFor('every event of the PDS', async () => (await readCursor(cursorFile)) === pds.lastSeq || (bridge.child.exitCode !== null && 'exited'), 60_000);
    const metrics = await bridge.metrics();
    bridge.child.kill('SIGTERM');
    assert.equal(await bridge.exited, 0, bridge.logs());

    const got = (await readTopic(broker.bootstrap, 'pds-enriched')).map((m) => JSON.parse(m.value) as Msg);
    assert.ok(got.length > 20, `${got.length} messages`);
    for (const account of pds.accounts) {
      const audit = (await (await fetch(`${pds.plcUrl}/${account.did}/log/audit`)).json()) as { createdAt: string }[];
      const profile = (await (await fetch(`${pds.appviewUrl}/xrpc/app.bsky.actor.getProfile?actor=${account.did}`)).json()) as Record<string, unknown>;
      const mine = got.filter((m) => m.did === account.did);
      assert.ok(mine.some((m) => m.operation?.collection === 'app.bsky.feed.post'), `${account.handle} posted`);
      for (const m of mine) {
        const meta = m.eventMetadata;
        assert.ok(meta !== null, `${account.handle}: ${JSON.stringify(m).slice(0, 300)}`);
        assert.equal(meta.didDocument.id, account.did);
        assert.equal(meta.handle, account.handle, 'the current handle, verified both ways against the PDS');
        assert.equal(meta.pdsHost, account.pdsEndpoint);
        assert.equal(meta.didCreatedAt, audit[0]!.createdAt);
        assert.ok(meta.accountAge >= 0 && meta.accountAge < 3600, `accountAge ${meta.accountAge}`);
        assert.equal(meta.profile?.did, account.did);
        assert.equal(meta.profile?.displayName, account.displayName);
        assert.equal(meta.profile?.handle, profile.handle);
        assert.equal(meta.profile?.postsCount, account.counts.posts);
      }
    }
    // A handle that no longer resolves (bob's before the rename) is never reported as verified.
    const renamed = pds.accounts.find((a) => a.previousHandles.length > 0)!;
    for (const m of got.filter((x) => x.did === renamed.did)) assert.notEqual(m.eventMetadata?.handle, renamed.previousHandles[0]);
    assert.equal(metricValue(metrics, 'atkafka_enrichment', { outcome: 'timeout' }), 0);
    assert.ok(metricValue(metrics, 'atkafka_api_requests', { kind: 'profile', status: 'ok' }) >= pds.accounts.length);
  });

  // A PLC that misbehaves: each way, the whole capture still goes through, every event once, without metadata.
  for (const mode of ['hangs', 'answers 500', 'answers 429', 'returns garbage'] as const) {
    it(`a PLC that ${mode}: the stream keeps flowing, nothing is lost, events come out without metadata`, async () => {
      let requests = 0;
      const plc = await httpServer((res) => {
        requests++;
        if (mode === 'hangs') return; // never answers
        if (mode === 'answers 500') return void res.writeHead(500).end('{"error":"InternalServerError"}');
        if (mode === 'answers 429') return void res.writeHead(429, { 'retry-after': '1' }).end('{"error":"RateLimitExceeded"}');
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"id": "did:plc:x", "alsoKnownAs": [1, 2'); // truncated JSON
      });
      try {
        await using relay = await startReplayServer({ frames });
        const topic = `plc-${mode.replace(/\W+/g, '-')}`;
        const cursorFile = join(dir, `${topic}.json`);
        const started = Date.now();
        const bridge = await startBridge([
          '--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--relay-host', relay.url, '--cursor-file', cursorFile, '--cursor-save-interval', '50ms',
          '--plc-host', plc.url, '--enrich-timeout', '300ms', '--dns-servers', dns,
        ]);
        await waitFor('the whole capture', async () => (await readCursor(cursorFile)) === LAST || (bridge.child.exitCode !== null && 'exited'), 60_000);
        const elapsed = Date.now() - started;
        const metrics = await bridge.metrics();
        bridge.child.kill('SIGTERM');
        assert.equal(await bridge.exited, 0, bridge.logs());
        const got = (await readTopic(broker.bootstrap, topic)).map((m) => m.value);
        assert.deepEqual(got.sort(), expected.map((m) => m.value).sort(), 'every event once, eventMetadata null');
        assert.ok(requests > 0, 'the PLC was asked');
        // At most a deadline or so per DID, not per event: 148 DIDs at 64 at a time.
        assert.ok(elapsed < 30_000, `${elapsed} ms for 150 frames`);
        // Every message of an account went out without metadata: after the deadline, or at once once the failure is known.
        const outcome = (o: string) => metricValue(metrics, 'atkafka_enrichment', { outcome: o });
        assert.equal(outcome('cached') + outcome('waited'), 0);
        assert.equal(outcome('timeout') + outcome('unresolved'), expected.length);
        if (mode === 'hangs') assert.ok(outcome('timeout') > 0);
        const errors = bridge.logs().split('\n').filter((l) => l.includes('"level":50') || l.includes('"level":60'));
        assert.deepEqual(errors, [], 'a failing PLC is a warning, not an error');
      } finally {
        plc.close();
      }
    });
  }

  it('a hanging PLC and 30,000 accounts never seen before: memory stays bounded, the stream goes on at the pace of the deadline, every event arrives', async (t) => {
    const plc = await httpServer(() => {}); // accepts, never answers
    const commits = frames.filter((f) => splitFrame(f).header.t === '#commit');
    const first = LAST + 1;
    const N = 30_000;
    const stream: Uint8Array[] = [];
    for (let i = 0; i < N; i++) {
      const parts = splitFrame(commits[i % commits.length]!);
      // A fresh did:plc per event (valid syntax: 24 base32 characters); records and CIDs are untouched.
      const id = i.toString(32).replace(/[0189]/g, (d) => 'wxyz'['0189'.indexOf(d)]!).padStart(24, 'a');
      stream.push(joinFrame(parts.header, { ...parts.body, repo: `did:plc:${id}`, seq: first + i }));
    }
    try {
      await using relay = await startReplayServer({ frames: stream });
      const cursorFile = join(dir, 'cold.json');
      const { writeFile } = await import('node:fs/promises');
      await writeFile(cursorFile, JSON.stringify({ seq: LAST, relayHost: relay.url, savedAt: new Date().toISOString() }));
      const bridge = await startBridge([
        '--bootstrap-servers', broker.bootstrap, '--output-topic', 'cold-start', '--relay-host', relay.url, '--cursor-file', cursorFile, '--cursor-save-interval', '100ms',
        // Caches bounded below the number of accounts, so what is measured is the bound, not a cache filling up.
        '--plc-host', plc.url, '--enrich-timeout', '300ms', '--dns-servers', dns, '--identity-cache-entries', '5000',
      ]);
      // /metrics serves once the sink is ready, i.e. once the new topic takes writes (a few seconds).
      await waitFor('the bridge serving /metrics', async () => (await bridge.metrics().catch(() => undefined)) !== undefined, 60_000);
      let peakRss = 0;
      let peakHeap = 0;
      let peakWaiting = 0;
      const positions: number[] = [];
      for (;;) {
        await sleep(500);
        const m = await bridge.metrics();
        peakRss = Math.max(peakRss, metricValue(m, 'atkafka_process_process_resident_memory_bytes'));
        peakHeap = Math.max(peakHeap, metricValue(m, 'atkafka_process_nodejs_heap_size_used_bytes'));
        peakWaiting = Math.max(peakWaiting, metricValue(m, 'atkafka_enrichment_waiting'));
        positions.push((await readCursor(cursorFile)) ?? LAST);
        if (positions.at(-1) === first + N - 1 || bridge.child.exitCode !== null || positions.length > 240) break;
      }
      const metrics = await bridge.metrics();
      bridge.child.kill('SIGTERM');
      assert.equal(await bridge.exited, 0, bridge.logs().slice(-3000));
      assert.equal(positions.at(-1), first + N - 1, 'the cursor reached the end');
      t.diagnostic(`peaks: RSS ${Math.round(peakRss / 2 ** 20)} MB, JS heap used ${Math.round(peakHeap / 2 ** 20)} MB, ${peakWaiting} messages waiting for an identity`);
      // What enrichment holds lives on the JS heap: waiting messages (within --max-in-flight-bytes, 32 MiB),
      // 10,000 queued lookups and the caches (5,000 entries here). RSS also holds librdkafka's buffers
      // and the decode thread, which grow at saturation with or without enrichment.
      assert.ok(peakHeap < 160 * 1024 * 1024, `JS heap ${Math.round(peakHeap / 2 ** 20)} MB`);
      assert.ok(peakRss < 512 * 1024 * 1024, `RSS ${Math.round(peakRss / 2 ** 20)} MB`);
      assert.ok(peakWaiting <= 10_000, `waiting for identities ${peakWaiting}, within --max-in-flight`);
      // No stall: with every lookup hanging, each event waits at most the 300 ms deadline, so 30,000 events of
      // 30,000 accounts take seconds, not the 9 s a lookup takes to fail (timeout x 3 attempts) times their number.
      // (The cursor moves in steps: Kafka confirms by flush epochs, which under this load take seconds each.)
      assert.ok(positions.length <= 60, `the whole stream took ${positions.length / 2} s`);
      t.diagnostic(`cursor every 0.5 s: ${positions.map((p) => p - LAST).join(' ')}`);
      assert.ok(metricValue(metrics, 'atkafka_plc_requests', { kind: 'did_doc', status: 'skipped' }) > 0, 'lookups beyond the queue bound are not queued');
      const got = await readTopic(broker.bootstrap, 'cold-start');
      const ops = stream.reduce((n, f) => n + (splitFrame(f).body.ops as unknown[]).length, 0);
      assert.equal(got.length, ops, 'every op of every event');
    } finally {
      plc.close();
    }
  });
});

async function httpServer(handle: (res: ServerResponse) => void): Promise<{ url: string; close: () => void }> {
  const server: Server = createServer((_req, res) => handle(res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
