// `atkafka firehose jetstream` (the real CLI, a real broker) against the Jetstream stand-in
// (test/support/jetstream-server.ts, written from Jetstream's source) serving real Jetstream output:
// the shapes, the upstream filters, restarts (SIGTERM, SIGKILL), dropped sockets, a stalled
// server and failover between two servers with different clocks lose nothing and repeat nothing
// (SIGKILL: only what was after the saved cursor).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { zstdDecompressSync } from 'node:zlib';

import { metricValue, startCommand, waitFor, type Bridge } from '../support/bridge.ts';
import { corpusFrames, expectedMessages } from '../support/corpus.ts';
import { startTestBroker, type TestBroker } from '../support/kafka-broker.ts';
import { readTopic, readTopicRaw, type ReadMessage } from '../support/kafka-read.ts';
import { loadCorpusEvents, loopEvents, startJetstreamServer, type JetstreamEvent, type JetstreamServer } from '../support/jetstream-server.ts';

const corpus = loadCorpusEvents();
const header = (m: ReadMessage, name: string) => m.headers.find(([k]) => k === name)?.[1];

/** What names an event in both shapes: the record path, operation and CID, or the relay seq. */
function keyOf(e: JetstreamEvent): string {
  if (e.commit) return `${e.did} ${e.commit.collection}/${e.commit.rkey} ${e.commit.operation} ${e.commit.cid ?? ''}`;
  return `${e.did} ${e.kind} ${(e.identity ?? e.account)!.seq}`;
}
/** The same of an at-kafka message. */
function atkafkaKey(v: { did: string; operation?: { collection: string; rkey: string; action: string; cid: string }; identity?: { seq: number }; account?: { seq: number } }): string {
  if (v.operation) return `${v.did} ${v.operation.collection}/${v.operation.rkey} ${v.operation.action} ${v.operation.cid}`;
  return `${v.did} ${v.identity ? 'identity' : 'account'} ${(v.identity ?? v.account)!.seq}`;
}
const keysOf = (msgs: ReadMessage[]) => msgs.map((m) => atkafkaKey(JSON.parse(m.value)));

async function readSoFar(bootstrap: string, topic: string): Promise<ReadMessage[]> {
  try {
    return await readTopic(bootstrap, topic);
  } catch {
    return [];
  }
}

describe('firehose jetstream', () => {
  let broker: TestBroker;
  let dir: string;
  let topicNo = 0;
  const running: Bridge[] = [];
  const servers: JetstreamServer[] = [];

  before(async () => {
    broker = await startTestBroker();
    dir = await mkdtemp(join(tmpdir(), 'atkafka-jetstream-test-'));
  });
  after(async () => {
    await broker?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const b of running.splice(0)) if (b.child.exitCode === null) b.child.kill('SIGKILL');
    for (const s of servers.splice(0)) await s.close().catch(() => {});
  });

  const topic = () => `jetstream-${++topicNo}`;

  async function server(events: Iterable<JetstreamEvent> = corpus, opts: Parameters<typeof startJetstreamServer>[0] = {}): Promise<JetstreamServer> {
    const s = await startJetstreamServer({ events, ...opts });
    servers.push(s);
    return s;
  }

  async function bridge(t: string, hosts: string[], extra: string[] = []): Promise<Bridge> {
    const b = await startCommand(
      ['firehose', 'jetstream'],
      ['--bootstrap-servers', broker.bootstrap, '--output-topic', t, '--jetstream-host', hosts.join(','), '--reconnect-backoff', '100ms', '--reconnect-backoff-max', '500ms', '--cursor-save-interval', '100ms', ...extra],
    );
    running.push(b);
    return b;
  }

  async function stop(b: Bridge): Promise<void> {
    b.child.kill('SIGTERM');
    assert.equal(await b.exited, 0, b.logs());
  }

  async function waitForCount(t: string, n: number, b: Bridge, timeoutMs = 60_000): Promise<ReadMessage[]> {
    return waitFor(
      `${n} messages in ${t}`,
      async () => {
        if (b.child.exitCode !== null) throw new Error(`the bridge exited (${b.child.exitCode}):\n${b.logs()}`);
        const msgs = await readSoFar(broker.bootstrap, t);
        return msgs.length >= n ? msgs : undefined;
      },
      timeoutMs,
      200,
    ).catch(async (err: Error) => {
      const m = await b.metrics().catch(() => '');
      const lines = m.split('\n').filter((l) => /^atkafka_(jetstream|upstream|backpressure|handled|produced|invalid|kafka_in_flight)/.test(l)).join('\n');
      throw new Error(`${err.message} (have ${(await readSoFar(broker.bootstrap, t)).length}); metrics:\n${lines}\nbridge log:\n${b.logs().slice(-4000)}`);
    });
  }

  it('the at-kafka shape: what relay mode writes for the same events, but the commit timestamp (Jetstream has none)', async () => {
    const s = await server();
    const t = topic();
    const b = await bridge(t, [s.url], ['--cursor', '1000000000000000', '--cursor-file', join(dir, `${t}.json`)]);
    const got = await waitForCount(t, corpus.length, b);
    await stop(b);
    assert.equal(got.length, corpus.length);
    // Compressed upstream by default, with Jetstream's dictionary.
    assert.equal(s.requests[0]!.searchParams.get('compress'), 'true');
    assert.equal(s.requests[0]!.searchParams.get('cursor'), '1000000000000000');
    const noTime = (v: string) => v.replace(/"timestamp":"[^"]*"/, '"timestamp":""');
    const relay = expectedMessages(corpusFrames());
    const want = new Map<string, string[]>();
    for (const m of relay) want.set(m.key, [...(want.get(m.key) ?? []), noTime(m.value)]);
    const have = new Map<string, string[]>();
    for (const m of got) have.set(m.key, [...(have.get(m.key) ?? []), noTime(m.value)]);
    assert.deepEqual(have, want, 'per DID, in order, byte for byte apart from the commit timestamp');
    // Identity and account events keep their own time; a commit's timestamp is when Jetstream saw it.
    const where = (e: JetstreamEvent) => (e.commit ? `${e.did} ${e.commit.collection}/${e.commit.rkey} ${e.commit.operation}` : `${e.did} ${e.kind}`);
    const byPlace = new Map(corpus.map((e) => [where(e), e]));
    for (const m of got) {
      const v = JSON.parse(m.value) as { did: string; timestamp: string; operation?: { collection: string; rkey: string; action: string }; identity?: unknown };
      const place = v.operation ? `${v.did} ${v.operation.collection}/${v.operation.rkey} ${v.operation.action}` : `${v.did} ${v.identity ? 'identity' : 'account'}`;
      const e = byPlace.get(place)!;
      assert.ok(e, place);
      if (v.operation) assert.equal(v.timestamp, new Date(Math.floor(e.time_us! / 1000)).toISOString());
      assert.equal(header(m, 'time_us'), String(e.time_us));
      assert.equal(header(m, 'source'), 'jetstream');
    }
    const saved = JSON.parse(await readFile(join(dir, `${t}.json`), 'utf8')) as { cursor: number; host: string };
    assert.equal(saved.cursor, Math.max(...corpus.map((e) => e.time_us!)));
    assert.equal(new URL(saved.host).host, new URL(s.url).host);
  });

  it('--format jetstream: the bytes Jetstream sent; --jetstream-compress: its own zstd frames, passed through', async () => {
    const s = await server();
    const t = topic();
    const b = await bridge(t, [s.url], ['--cursor', '1000000000000000', '--format', 'jetstream', '--cursor-file', '']);
    const got = await waitForCount(t, corpus.length, b);
    await stop(b);
    const sent = new Set(Array.from({ length: corpus.length }, (_, i) => s.stored(i + 1)!.json));
    for (const m of got) assert.ok(sent.has(m.value), `as sent: ${m.value.slice(0, 80)}`);
    assert.equal(new Set(got.map((m) => m.value)).size, corpus.length);

    // --jetstream-compress: Jetstream's zstd frames (compress=true upstream) go to Kafka as they came.
    const t2 = topic();
    const b2 = await bridge(t2, [s.url], ['--cursor', '1000000000000000', '--format', 'jetstream', '--jetstream-compress', '--cursor-file', '']);
    await waitForCount(t2, corpus.length, b2);
    await stop(b2);
    const raw = await readTopicRaw(broker.bootstrap, t2);
    assert.equal(raw.length, corpus.length);
    const dictionary = readFileSync(new URL('../../src/format/zstd/legacy_subscribe.zdict', import.meta.url));
    const plain = new Set<string>();
    for (const m of raw) {
      assert.equal(m.headers.find(([k]) => k === 'content-encoding')?.[1], 'zstd');
      assert.equal(m.headers.find(([k]) => k === 'zstd-dictionary')?.[1], '1612007021');
      plain.add(zstdDecompressSync(m.value, { dictionary }).toString());
    }
    assert.deepEqual(plain, sent);
  });

  it('--osprey-compatible: the at-kafka message in Osprey\'s envelope, action_name from the event', async () => {
    const s = await server();
    const t = topic();
    const b = await bridge(t, [s.url], ['--cursor', '1000000000000000', '--cursor-file', '', '--osprey-compatible']);
    const got = await waitForCount(t, corpus.length, b);
    await stop(b);
    for (const m of got) {
      const env = JSON.parse(m.value) as { data: { action_name: string; action_id: number; data: { did: string; operation?: { action: string } }; timestamp: string }; send_time: string };
      const inner = env.data.data;
      assert.equal(inner.did, m.key);
      assert.equal(env.data.action_name, inner.operation ? `operation#${inner.operation.action}` : JSON.parse(m.value).data.data.identity ? 'identity' : 'account');
      assert.match(m.value, /"action_id":[1-9]\d*,/);
    }
  });

  it('asks Jetstream for the filters (wantedCollections, wantedDids; a long list in options_update), and filters ignored collections itself', async () => {
    const s = await server();
    const dids = [...new Set(corpus.map((e) => e.did))];
    const some = dids.slice(0, 5);
    let t = topic();
    let b = await bridge(t, [s.url], ['--cursor', '1000000000000000', '--cursor-file', '', '--watched-collections', 'app.bsky.feed.like,app.bsky.graph.*', '--watched-dids', some.join(',')]);
    const want = corpus.filter((e) => some.includes(e.did) && (e.kind !== 'commit' || e.commit!.collection === 'app.bsky.feed.like' || e.commit!.collection.startsWith('app.bsky.graph.')));
    assert.ok(want.length > 0);
    await waitForCount(t, want.length, b);
    await sleep(500);
    await stop(b);
    const q = s.requests.at(-1)!.searchParams;
    assert.deepEqual(q.getAll('wantedCollections'), ['app.bsky.feed.like', 'app.bsky.graph.*']);
    assert.deepEqual(q.getAll('wantedDids'), some);
    assert.deepEqual(new Set(keysOf(await readTopic(broker.bootstrap, t))), new Set(want.map(keyOf)));

    // 300 DIDs do not fit a URL: requireHello and an options_update.
    const many = [...dids, ...Array.from({ length: 300 - dids.length }, (_, i) => `did:plc:${String(i).padStart(24, 'a')}`)];
    t = topic();
    b = await bridge(t, [s.url], ['--cursor', '1000000000000000', '--cursor-file', '', '--watched-dids', many.join(','), '--ignored-collections', 'app.bsky.feed.like']);
    const want2 = corpus.filter((e) => e.kind !== 'commit' || e.commit!.collection !== 'app.bsky.feed.like');
    await waitForCount(t, want2.length, b);
    await sleep(500);
    await stop(b);
    const q2 = s.requests.at(-1)!.searchParams;
    assert.equal(q2.get('requireHello'), 'true');
    assert.equal(q2.getAll('wantedDids').length, 0);
    assert.equal(q2.getAll('wantedCollections').length, 0, 'ignored collections cannot be asked for');
    assert.deepEqual(new Set(keysOf(await readTopic(broker.bootstrap, t))), new Set(want2.map(keyOf)));
  });

  it('restarts: SIGTERM repeats nothing, SIGKILL loses nothing and repeats only what was after the saved cursor; a dropped socket and a stall lose nothing', async () => {
    const s = await server(loopEvents(corpus, 2000));
    const t = topic();
    const cursorFile = join(dir, `${t}.json`);
    const args = ['--cursor', '1000000000000000', '--cursor-file', cursorFile, '--stall-timeout', '1s'];
    let b = await bridge(t, [s.url], args);
    // Live events keep coming the whole time.
    let pushing = true;
    const live = (async () => {
      let i = 0;
      for (const e of loopEvents(corpus, 1_000_000, Date.now() * 1000 + 1)) {
        if (!pushing) break;
        // The first round is the corpus itself, already stored: the same events again would rightly be dropped.
        if (i++ < corpus.length) continue;
        // loopEvents numbers identity and account seqs by round; these rounds must not repeat the stored ones'.
        const fresh = e.identity ? { ...e, identity: { ...e.identity, seq: e.identity.seq + 500_000_000_000 } } : e.account ? { ...e, account: { ...e.account, seq: e.account.seq + 500_000_000_000 } } : e;
        s.push({ ...fresh, time_us: undefined });
        await sleep(2);
      }
    })();
    try {
    await waitForCount(t, 1500, b);
    const m1 = await b.metrics();
    await stop(b);
    const afterTerm = keysOf(await readTopic(broker.bootstrap, t));
    assert.equal(new Set(afterTerm).size, afterTerm.length, 'nothing twice across a clean stop');
    // Everything up to the cursor the clean stop saved is in Kafka: a loss shows here, with its bridge.
    const termCursor = (JSON.parse(await readFile(cursorFile, 'utf8')) as { cursor: number }).cursor;
    const inKafka = new Set(afterTerm);
    const lostByFirst = [];
    for (let seq = 1; seq < s.nextSeq; seq++) {
      const e = s.stored(seq)!;
      if (e.json === '' || e.time_us > termCursor) continue;
      const k = keyOf(JSON.parse(e.json));
      if (!inKafka.has(k)) lostByFirst.push(`seq ${seq} time_us ${e.time_us}: ${k}`);
    }
    const m1Lines = m1.split('\n').filter((l) => /^atkafka_(jetstream|invalid|kafka|produced|handled|delivery)/.test(l) && !/ 0$/.test(l)).join('\n');
    assert.deepEqual(lostByFirst, [], `the first bridge lost nothing below its saved cursor ${termCursor}; its metrics:\n${m1Lines}\nits log:\n${b.logs().split('\n').filter((l) => !l.includes('"level":30')).join('\n').slice(-6000)}`);

    b = await bridge(t, [s.url], args);
    await waitForCount(t, afterTerm.length + 500, b);
    await waitFor('an open connection to drop', async () => s.openConnections >= 1, 30_000);
    const connectionsBefore = s.connections;
    assert.ok(s.dropConnections() >= 1);
    await waitFor('a reconnect after the dropped socket', async () => s.connections > connectionsBefore, 30_000);
    // Stalled until the bridge saw it: a stall shorter than a backpressure pause (a loaded host) goes unseen, by design.
    s.stall();
    await waitFor('a reconnect after the stall', async () => metricValue(await b.metrics(), 'atkafka_upstream_reconnects', { source: 'jetstream', reason: 'stalled' }) >= 1, 60_000);
    s.resume();
    await waitForCount(t, afterTerm.length + 1500, b);
    b.child.kill('SIGKILL');
    await b.exited;
    const saved = JSON.parse(await readFile(cursorFile, 'utf8')) as { cursor: number };

    b = await bridge(t, [s.url], args);
    await sleep(1000);
    pushing = false;
    await live;
    const total = s.nextSeq - 1;
    const all = Array.from({ length: total }, (_, i) => s.stored(i + 1)!).filter((e) => e.json !== '');
    const timeOf = new Map(all.map((e) => [keyOf(JSON.parse(e.json)), e.time_us]));
    assert.equal(timeOf.size, all.length, 'the test data has no two events with one key');
    await waitFor('every event in Kafka', async () => new Set(keysOf(await readSoFar(broker.bootstrap, t))).size >= timeOf.size, 90_000, 500).catch(async (err: Error) => {
      // Say which events are missing and where they sit against the cursors: lost, or still coming.
      const have = new Set(keysOf(await readSoFar(broker.bootstrap, t)));
      const missing = [...timeOf].filter(([k]) => !have.has(k)).map(([, us]) => us);
      const now = JSON.parse(await readFile(cursorFile, 'utf8').catch(() => '{}')) as { cursor?: number };
      const span = missing.length === 0 ? '' : `time_us ${Math.min(...missing)}..${Math.max(...missing)}`;
      throw new Error(`${err.message}: ${missing.length} of ${timeOf.size} missing (${span}); cursor saved before the SIGKILL ${saved.cursor}, now ${now.cursor}; requests ${s.requests.map((u) => u.searchParams.get('cursor')).join(' ')}\nbridge log:\n${b.logs().slice(-6000)}`);
    });
    await sleep(1000);
    await stop(b);

    const got = await readTopic(broker.bootstrap, t);
    const counts = new Map<string, number>();
    for (const k of keysOf(got)) counts.set(k, (counts.get(k) ?? 0) + 1);
    for (const k of timeOf.keys()) assert.ok(counts.has(k), `event ${k} is in Kafka`);
    for (const [k, c] of counts) {
      if (c === 1) continue;
      assert.equal(c, 2, `${k} at most twice`);
      assert.ok(timeOf.get(k)! >= saved.cursor, `${k}, repeated, was at or after the cursor saved before the SIGKILL`);
      assert.ok(!afterTerm.includes(k), `${k} from before the clean stop is not repeated`);
    }
    } finally {
      pushing = false;
    }
  });

  it('fails over to the next host when one goes away, rewinding on its clock: nothing lost, nothing twice', async () => {
    // Two Jetstreams reading one relay: the same events, each stamped by its own clock (B's 3 s behind A's).
    // In the past (a cursor in the future means live).
    const base = Date.now() * 1000 - 600_000_000;
    const events = [...loopEvents(corpus, 3000)].map((e, i) => ({ ...e, time_us: base + i * 1000 }));
    const a = await server(events);
    const bServer = await server(events.map((e) => ({ ...e, time_us: e.time_us - 3_000_000 })));
    const t = topic();
    const cursorFile = join(dir, `${t}.json`);
    const b = await bridge(t, [a.url, bServer.url], ['--cursor', '1000000000000000', '--cursor-file', cursorFile, '--jetstream-rewind', '5s', '--max-in-flight', '200']);
    await waitForCount(t, 1000, b);
    await a.close();
    // New events after the switch, on B only.
    const more = [...loopEvents(corpus, 3300)].slice(3000).map((e, i) => ({ ...e, time_us: base + (3000 + i) * 1000 - 3_000_000 }));
    bServer.push(...more);
    await waitForCount(t, events.length + more.length, b, 90_000);
    await sleep(1000);
    const m = await b.metrics();
    await stop(b);
    const got = keysOf(await readTopic(broker.bootstrap, t));
    assert.equal(got.length, new Set(got).size, 'no event twice');
    assert.deepEqual(new Set(got), new Set([...events, ...more].map(keyOf)), 'every event once');
    assert.equal(metricValue(m, 'atkafka_jetstream_failovers'), 1);
    assert.ok(metricValue(m, 'atkafka_jetstream_duplicates_dropped') > 0, 'the rewind sent some again, and they were dropped');
    const rewound = bServer.requests.find((u) => u.pathname === '/subscribe')!;
    assert.ok(Number(rewound.searchParams.get('cursor')) < base + 1000 * 1000 - 3_000_000, 'resumed on B earlier than where A stopped, on B\'s clock');
    const saved = JSON.parse(await readFile(cursorFile, 'utf8')) as { cursor: number; host: string };
    assert.equal(new URL(saved.host).host, new URL(bServer.url).host, 'the cursor is of the host it came from');
    assert.equal(saved.cursor, more.at(-1)!.time_us);
  });
});
