// `atkafka stats` against a real Kafka broker and a real Redis (Debian's redis-server), run as a user runs it.
//
// What makes the counts exact: each partition's batch is added in Redis by one Lua script together with the
// partition's watermark (its last offset counted), refused when the watermark moved, and the Kafka offset is
// committed only after that. So Kafka's committed offset is never past the counts, and whatever Kafka hands out
// again (a kill -9 between the Redis write and the commit, a rebalance, an offset rewound by hand) is at or below
// the watermark and skipped. The tests check the outcome (every hash equal to what the input holds, to the unit)
// and the two halves of the argument: the commit never ahead of the watermark, sampled all through a run with a
// kill -9; and a replay of the whole topic (the group's offsets rewound to 0, a crash window stretched over
// everything) that adds nothing.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { zstdDecompressSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';

import { Admin, Producer } from '@platformatic/kafka';
import { createClient } from 'redis';

import { JetstreamCompressor } from '../../src/format/jetstream-compress.ts';
import { ospreyEnvelope } from '../../src/format/osprey.ts';
import { startReplayServer } from '../../src/replay/index.ts';
import { startRedis, type Redis } from '../../tools/peers/redis.ts';
import { readCursor, startBridge, startCommand, waitFor } from '../support/bridge.ts';
import { corpusFrames, expectedMessages, lastSeq } from '../support/corpus.ts';
import { bootstrapList, startTestBroker, type TestBroker } from '../support/kafka-broker.ts';
import { loadWikimediaFixture, startWikimediaServer } from '../support/wikimedia-server.ts';

const BIN = fileURLToPath(new URL('../../bin/atkafka.js', import.meta.url));
const run = promisify(execFile);

const frames = corpusFrames();
const corpus = expectedMessages(frames);
const jetstream = zstdDecompressSync(readFileSync(new URL('../fixtures/jetstream/events.jsonl.zst', import.meta.url)))
  .toString()
  .split('\n')
  .filter((l) => l !== '');
const wikimedia = readFileSync(new URL('../fixtures/wikimedia/recentchange.ndjson', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => l !== '');

type Counts = Record<string, Record<string, number>>;

/** What the input holds, read from each fixture's JSON here, not through the code under test. */
class Expected {
  readonly by: Counts = { source: {}, kind: {}, collection: {}, action: {}, type: {}, wiki: {} };
  events = 0;
  add(labels: Record<string, string | undefined>): void {
    this.events++;
    for (const [k, v] of Object.entries(labels)) if (v !== undefined) this.by[k]![v] = (this.by[k]![v] ?? 0) + 1;
  }
  atkafka(value: string, source: string): void {
    const v = JSON.parse(value) as { operation?: { collection: string; action: string }; identity?: unknown; account?: unknown };
    if (v.operation) this.add({ source, kind: 'commit', collection: v.operation.collection, action: v.operation.action });
    else this.add({ source, kind: v.identity ? 'identity' : 'account' });
  }
}

interface Stats {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** The JSON log records on stderr so far. */
  logs(): Record<string, unknown>[];
  exited: Promise<number | string>;
}

function startStats(args: string[]): Stats {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ATKAFKA_') && k !== 'DEBUG' && k !== 'LOG_LEVEL') env[k] = v;
  const child = spawn(process.execPath, [BIN, 'stats', '--log-format', 'json', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const logs = () =>
    err
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { child, stdout: () => out, stderr: () => err, logs, exited };
}

/** The partitions a member holds now, from its last assignment log line. */
function heldBy(s: Stats): number[] | undefined {
  const last = s.logs().filter((l) => l.msg === 'partitions assigned' || l.msg === 'partitions revoked').at(-1);
  return last?.now as number[] | undefined;
}

/** partition -> offset after its last message, read with kcat (an independent client). */
async function endOffsets(bootstrap: string, topic: string): Promise<Map<number, number>> {
  const { stdout } = await run('kcat', ['-b', bootstrap, '-t', topic, '-C', '-e', '-q', '-f', '%p %o\n'], { maxBuffer: 1 << 28 });
  const ends = new Map<number, number>();
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    const [p, o] = line.split(' ').map(Number) as [number, number];
    ends.set(p, Math.max(ends.get(p) ?? 0, o + 1));
  }
  return ends;
}

describe('atkafka stats on a real broker and a real Redis', { timeout: 170_000 }, () => {
  let broker: TestBroker;
  let redis: Redis;
  let dir: string;
  let db: ReturnType<typeof createClient>;
  let admin: Admin;
  const hashes = async (group: string, topic: string): Promise<{ totals: Record<string, number>; by: Counts; offsets: Map<number, number> }> => {
    const prefix = `atkafka:stats:${group}:${topic}`;
    const num = (r: Record<string, string>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v)]));
    const by: Counts = {};
    for (const d of ['source', 'kind', 'collection', 'action', 'type', 'wiki']) by[d] = num(await db.hGetAll(`${prefix}:by-${d}`));
    const offsets = new Map(Object.entries(await db.hGetAll(`${prefix}:offsets`)).map(([p, o]) => [Number(p), Number(o)]));
    return { totals: num(await db.hGetAll(`${prefix}:totals`)), by, offsets };
  };
  const committed = async (group: string, topic: string): Promise<Map<number, number>> => {
    const [g] = await admin.listConsumerGroupOffsets({ groups: [{ groupId: group, topics: [{ name: topic, partitionIndexes: [0, 1, 2, 3] }] }] });
    const out = new Map<number, number>();
    for (const p of g?.topics.find((t) => t.name === topic)?.partitions ?? []) if (p.committedOffset >= 0n) out.set(p.partitionIndex, Number(p.committedOffset));
    return out;
  };

  before(async () => {
    [broker, redis] = await Promise.all([startTestBroker(), startRedis()]);
    dir = await mkdtemp(join(tmpdir(), 'atkafka-stats-'));
    db = createClient({ url: `redis://${redis.host}` });
    await db.connect();
    admin = new Admin({ clientId: 'stats-test', bootstrapBrokers: bootstrapList(broker) });
  });
  after(async () => {
    await admin?.close();
    await db?.close();
    await Promise.all([broker?.stop(), redis?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('counts the relay corpus as `atkafka firehose relay` wrote it; --once prints the table; a replay of the whole topic adds nothing', async () => {
    const topic = 'stats-relay';
    {
      await using relay = await startReplayServer({ frames });
      const cursorFile = join(dir, 'relay.json');
      const bridge = await startBridge(['--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--topic-partitions', '4', '--relay-host', relay.url, '--cursor-file', cursorFile, '--cursor-save-interval', '50ms']);
      await waitFor('the bridge at the last corpus seq', async () => (await readCursor(cursorFile)) === lastSeq(frames), 60_000);
      bridge.child.kill('SIGTERM');
      assert.equal(await bridge.exited, 0, bridge.logs());
    }
    const want = new Expected();
    for (const m of corpus) want.atkafka(m.value, 'relay');
    const redisUrl = `redis://${redis.host}`;

    const first = startStats(['--topic', topic, '--bootstrap-servers', broker.bootstrap, '--redis-url', redisUrl, '--once']);
    assert.equal(await first.exited, 0, first.stderr());
    const table = first.stdout();
    assert.match(table, /^atkafka stats \(final\)  topic stats-relay  group atkafka-stats  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n152 events, [\d.]+ KiB, from 4 of 4 partitions\nthis instance: partitions 0-3, counted 152, read again and skipped 0\n/);
    assert.match(table, /\nSOURCE +COUNT +%\nrelay +152 +100\.0%\n/);
    assert.match(table, /\nKIND +COUNT +%\ncommit +150 +98\.7%\naccount +1 +0\.7%\nidentity +1 +0\.7%\n/);
    assert.match(table, /\nACTION +COUNT +%\ncreate +144 +96\.0%\ndelete +4 +2\.7%\nupdate +2 +1\.3%\n/);
    assert.match(table, /\nCOLLECTION +COUNT +%\napp\.bsky\.feed\.like +105 +70\.0%\n/);
    // Only the final table: stdout is not a terminal and --once shows no live one there.
    assert.equal(table.match(/^atkafka stats/gm)?.length, 1);
    const counted = await hashes('atkafka-stats', topic);
    assert.deepEqual(counted.totals.events, 152);
    assert.deepEqual({ ...counted.by, type: undefined, wiki: undefined }, { ...want.by, type: undefined, wiki: undefined });
    assert.deepEqual(await committed('atkafka-stats', topic), await endOffsets(broker.bootstrap, topic), 'every offset committed');

    // The crash window, stretched over the whole topic: Kafka's offsets rewound to 0 hand everything out again.
    await admin.alterConsumerGroupOffsets({ groupId: 'atkafka-stats', topics: [{ name: topic, partitionOffsets: [0, 1, 2, 3].map((partition) => ({ partition, offset: 0n })) }] });
    assert.deepEqual([...(await committed('atkafka-stats', topic)).values()], [0, 0, 0, 0]);
    // Not --once: that would see at once that Redis has everything up to the end, and stop before reading it all.
    const replay = startStats(['--topic', topic, '--bootstrap-servers', broker.bootstrap, '--redis-url', redisUrl, '--interval', '0']);
    const ends = await endOffsets(broker.bootstrap, topic);
    await waitFor('the replay committed to the end', async () => JSON.stringify([...(await committed('atkafka-stats', topic))].sort()) === JSON.stringify([...ends].sort()), 30_000, 50);
    replay.child.kill('SIGINT');
    assert.equal(await replay.exited, 0, replay.stderr());
    assert.match(replay.stdout(), /^atkafka stats \(final\).*\n152 events, .*\nthis instance: partitions 0-3, counted 0, read again and skipped 152\n/);
    const done = replay.logs().find((l) => l.msg === 'stopped');
    assert.deepEqual({ counted: done?.counted, skipped: done?.skipped }, { counted: 0, skipped: 152 });
    assert.deepEqual(await hashes('atkafka-stats', topic), counted, 'not one count changed');

    // Another group counts the same topic on its own keys.
    const other = startStats(['--topic', topic, '--group', 'second-look', '--bootstrap-servers', broker.bootstrap, '--redis-url', redisUrl, '--once', '--interval', '0']);
    assert.equal(await other.exited, 0, other.stderr());
    assert.deepEqual((await hashes('second-look', topic)).by, counted.by);
    assert.equal((await hashes('atkafka-stats', topic)).totals.events, 152);
  });

  it('counts the Wikimedia topic as `atkafka wikimedia` wrote it (the EventStreams stand-in serving real events): by type and wiki', async () => {
    const topic = 'stats-wikimedia';
    {
      await using server = await startWikimediaServer({ events: loadWikimediaFixture() });
      const bridge = await startCommand(['wikimedia'], ['--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--topic-partitions', '4', '--url', server.httpUrl, '--since', '2025-05-03T00:00:00Z', '--cursor-file=']);
      await waitFor('every event in Kafka', async () => [...(await endOffsets(broker.bootstrap, topic).catch(() => new Map<number, number>())).values()].reduce((a, b) => a + b, 0) === wikimedia.length, 60_000, 200);
      bridge.child.kill('SIGTERM');
      assert.equal(await bridge.exited, 0, bridge.logs());
    }
    const want = new Expected();
    for (const line of wikimedia) {
      const e = JSON.parse(line) as { type: string; wiki: string; meta: { stream: string } };
      want.add({ source: 'wikimedia', kind: e.meta.stream, type: e.type, wiki: e.wiki });
    }
    const s = startStats(['--topic', topic, '--bootstrap-servers', broker.bootstrap, '--redis-url', `redis://${redis.host}`, '--once', '--top', '4']);
    assert.equal(await s.exited, 0, s.stderr());
    assert.match(s.stdout(), /\nWIKIMEDIA TYPE +COUNT +%\ncategorize +68 +47\.2%\nedit +66 +45\.8%\nlog +7 +4\.9%\nnew +3 +2\.1%\n/);
    assert.match(s.stdout(), /\nWIKI \(top 4 of 22\) +COUNT +%\ncommonswiki +69 +47\.9%\nwikidatawiki +15 +10\.4%\nenwiki +11 +7\.6%\nzhwiki +9 +6\.3%\n\(18 more\) +40 +27\.8%\n/);
    const counted = await hashes('atkafka-stats', topic);
    assert.equal(counted.totals.events, wikimedia.length);
    assert.deepEqual(counted.by, want.by);
  });

  it('two instances in one group share the partitions; one killed -9 mid-way and restarted: exact counts, the commit never ahead of them', async () => {
    const topic = 'stats-mixed';
    const group = 'pair';
    await admin.createTopics({ topics: [topic], partitions: 4, replicas: 1 });
    const redisUrl = `redis://${redis.host}`;
    const args = (id: string) => ['--topic', topic, '--group', group, '--instance-id', id, '--bootstrap-servers', broker.bootstrap, '--redis-url', redisUrl, '--batch-size', '20', '--interval', '300ms'];
    const a = startStats(args('a'));
    const b = startStats(args('b'));
    const members = [a, b];
    try {
      await waitFor('both members holding partitions', async () => {
        const [ha, hb] = [heldBy(a), heldBy(b)];
        return ha !== undefined && hb !== undefined && ha.length > 0 && hb.length > 0 && [...ha, ...hb].sort().join() === '0,1,2,3';
      }, 30_000, 50);
      const aHeld = heldBy(a)!;

      // Every shape atkafka writes, and the Wikimedia one, round-robin over the partitions.
      const want = new Expected();
      const compressor = new JetstreamCompressor();
      const messages: { topic: string; partition: number; key: Buffer; value: Buffer; headers?: Map<Buffer, Buffer> }[] = [];
      const push = (key: string, value: Buffer | string, headers?: Record<string, string>) =>
        messages.push({
          topic,
          partition: messages.length % 4,
          key: Buffer.from(key),
          value: Buffer.from(value),
          ...(headers && { headers: new Map(Object.entries(headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])) }),
        });
      for (let round = 0; round < 20; round++) {
        for (const m of corpus) {
          // As the relay source writes it (headers on), and as --osprey-compatible --kafka-headers=false does.
          const v = JSON.parse(m.value) as { operation?: { collection: string; action: string } };
          const kind = v.operation ? 'commit' : m.value.includes('"identity":') ? 'identity' : 'account';
          push(m.key, m.value, v.operation ? { kind, collection: v.operation.collection, action: v.operation.action, seq: String(m.seq), source: 'relay' } : { kind, seq: String(m.seq), source: 'relay' });
          want.atkafka(m.value, 'relay');
          push(m.key, ospreyEnvelope(m.value, v.operation ? `operation#${v.operation.action}` : kind, String(1e15 + messages.length), '2026-07-04T14:38:06Z', new Date()));
          want.atkafka(m.value, 'unknown');
        }
        for (const line of jetstream) {
          // --format jetstream --jetstream-compress --kafka-headers=false: one zstd frame, no header to say so.
          const e = JSON.parse(line) as { did: string; kind: string; commit?: { collection: string; operation: string } };
          push(e.did, compressor.compress(line));
          want.add({ source: 'unknown', kind: e.kind, collection: e.commit?.collection, action: e.commit?.operation });
        }
        for (const line of wikimedia) {
          const e = JSON.parse(line) as { type: string; wiki: string };
          push(e.wiki, line);
          want.add({ source: 'wikimedia', kind: 'mediawiki.recentchange', type: e.type, wiki: e.wiki });
        }
      }
      // Partition p gets messages p, p+4, ...: its end offset is known before a message is sent.
      const ends = new Map([0, 1, 2, 3].map((p) => [p, Math.ceil((messages.length - p) / 4)]));
      // Produced while the group counts, so a member is killed while there is still more coming to it.
      const producer = new Producer({ clientId: 'stats-test', bootstrapBrokers: bootstrapList(broker) });
      const produced = (async () => {
        try {
          for (let i = 0; i < messages.length; i += 250) await producer.send({ messages: messages.slice(i, i + 250) });
        } finally {
          await producer.close();
        }
      })();

      // Watch the group while it counts: Kafka's commit must never be past the counts (committed read first: the
      // watermark only grows, so a later read that is still below the commit would be a commit ahead of Redis).
      let samples = 0;
      const check = async () => {
        const c = await committed(group, topic);
        const w = (await hashes(group, topic)).offsets;
        for (const [p, offset] of c) assert.ok(offset <= (w.get(p) ?? -1) + 1, `partition ${p}: committed ${offset}, counted up to ${w.get(p)}`);
        samples++;
      };
      const progress = async (parts: number[]) => {
        const w = (await hashes(group, topic)).offsets;
        return parts.reduce((s, p) => s + (w.get(p) ?? -1) + 1, 0) / parts.reduce((s, p) => s + ends.get(p)!, 0);
      };
      await waitFor('a mid-way through its partitions', async () => {
        await check();
        return (await progress(aHeld)) >= 0.2;
      }, 60_000, 5);
      a.child.kill('SIGKILL');
      assert.equal(await a.exited, 'SIGKILL');
      await produced;
      assert.deepEqual(await endOffsets(broker.bootstrap, topic), ends);
      // A static member's partitions wait for it (until the session timeout): nobody counts them meanwhile. (The
      // wait also lets a Redis write or a commit the dead process had already sent land before they are read.)
      await new Promise((r) => setTimeout(r, 1500));
      await check();
      const atKill = await progress(aHeld);
      assert.ok(atKill < 0.9, `killed at ${atKill}`);
      // Frozen now: what the restarted member must read again and count.
      const countedAtKill = (await hashes(group, topic)).offsets;
      const committedAtKill = await committed(group, topic);
      await new Promise((r) => setTimeout(r, 300));
      const later = (await hashes(group, topic)).offsets;
      assert.deepEqual(aHeld.map((p) => later.get(p)), aHeld.map((p) => countedAtKill.get(p)), 'the killed member left its partitions uncounted');

      const again = startStats(args('a'));
      members.push(again);
      await waitFor('everything counted', async () => {
        await check();
        const w = (await hashes(group, topic)).offsets;
        return [...ends].every(([p, end]) => w.get(p) === end - 1);
      }, 60_000, 20);
      assert.deepEqual(heldBy(again), aHeld, 'the restarted member got its partitions back');
      assert.ok(samples > 10, `samples ${samples}`);

      for (const s of [b, again]) s.child.kill('SIGTERM');
      for (const s of [b, again]) assert.equal(await s.exited, 0, s.stderr());
      // The restarted member resumed from the committed offsets: it read again exactly what was counted but not
      // committed when the other one died (a kill -9 between the Redis write and the commit), skipped all of it,
      // and counted exactly the rest.
      const sum = (f: (p: number) => number) => aHeld.reduce((n, p) => n + f(p), 0);
      const stopped = again.logs().find((l) => l.msg === 'stopped');
      assert.deepEqual(
        { counted: stopped?.counted, skipped: stopped?.skipped },
        {
          counted: sum((p) => ends.get(p)! - ((countedAtKill.get(p) ?? -1) + 1)),
          skipped: sum((p) => (countedAtKill.get(p) ?? -1) + 1 - (committedAtKill.get(p) ?? 0)),
        },
      );
      const counted = await hashes(group, topic);
      assert.equal(counted.totals.events, want.events);
      assert.deepEqual(counted.by, want.by);
      assert.deepEqual(await committed(group, topic), ends, 'after a clean stop everything counted is committed');
      // The live table, printed again every --interval (stdout is not a terminal), then the final one.
      assert.ok((b.stdout().match(/^atkafka stats  topic stats-mixed  group pair /gm)?.length ?? 0) >= 2, b.stdout());
      assert.match(b.stdout(), new RegExp(`atkafka stats \\(final\\)  topic stats-mixed  group pair  .*\\n${want.events} events, `));
      for (const s of [a, b, again]) assert.ok(!/\n\s+at /.test(s.stderr()), `no stack trace:\n${s.stderr()}`);
    } finally {
      for (const s of members) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    }
  });
});
