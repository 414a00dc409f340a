// The Redis side of `atkafka stats` on a real Redis (Debian's redis-server): each offset is counted once,
// however often and by however many members its message is read.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { pino } from 'pino';
import { createClient } from 'redis';

import type { Labels } from '../../src/stats/labels.ts';
import { keyPrefix, StatsStore, StatsStoreError, type Counted } from '../../src/stats/store.ts';
import { Tally } from '../../src/stats/tally.ts';
import { startRedis, type Redis } from '../../tools/peers/redis.ts';
import { prng } from '../support/prng.ts';

const log = pino({ level: 'silent' });
const KINDS: Labels[] = [
  { source: 'relay', kind: 'commit', collection: 'app.bsky.feed.like', action: 'create' },
  { source: 'relay', kind: 'commit', collection: 'app.bsky.feed.post', action: 'delete' },
  { source: 'relay', kind: 'identity' },
  { source: 'wikimedia', kind: 'recentchange', type: 'edit', wiki: 'enwiki' },
];
/** Offset n of partition p: its labels are a function of both, so any double count shows. */
const entry = (p: number, n: number): Counted => ({ offset: n, labels: KINDS[(n * 7 + p) % KINDS.length]!, bytes: 100 + (n % 13) });

function expected(partitions: number, perPartition: number) {
  const kinds: Record<string, number> = {};
  let bytes = 0;
  for (let p = 0; p < partitions; p++) {
    for (let n = 0; n < perPartition; n++) {
      const e = entry(p, n);
      kinds[e.labels.kind] = (kinds[e.labels.kind] ?? 0) + 1;
      bytes += e.bytes;
    }
  }
  return { events: partitions * perPartition, bytes, kinds };
}

describe('StatsStore on a real Redis', () => {
  let redis: Redis;
  const url = () => `redis://${redis.host}`;
  const open = (prefix: string) => StatsStore.connect(url(), prefix, log, new AbortController().signal);
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  test('a batch read again (a crash between the Redis write and the Kafka commit) is skipped, not added', async () => {
    const store = await open(keyPrefix('g1', 't'));
    try {
      const batch = Array.from({ length: 100 }, (_, n) => entry(0, n));
      assert.deepEqual(await store.count(0, batch, undefined), { before: undefined, watermark: 99, counted: 100 });
      // The restarted member knows nothing and is handed the batch again from an older commit, then more.
      assert.deepEqual(await store.count(0, batch.slice(40), undefined), { before: 99, watermark: 99, counted: 0 });
      const more = Array.from({ length: 60 }, (_, n) => entry(0, 70 + n));
      assert.deepEqual(await store.count(0, more, undefined), { before: 99, watermark: 129, counted: 30 });
      // A stale cache (another member moved on meanwhile): the script refuses, the rest is counted from the real watermark.
      assert.deepEqual(await store.count(0, [entry(0, 129), entry(0, 130)], { watermark: 50 }), { before: 50, watermark: 130, counted: 1 });
      const s = await store.snapshot();
      const want = expected(1, 131);
      assert.deepEqual(s.totals, { events: want.events, bytes: want.bytes });
      assert.deepEqual(Object.fromEntries(s.by.kind), want.kinds);
      assert.deepEqual([...s.offsets], [[0, 130]]);
    } finally {
      await store.close();
    }
  });

  test('the same increments applied twice with the same expected watermark (a reply lost with the connection) land once', async () => {
    const store = await open(keyPrefix('g2', 't'));
    try {
      const t = new Tally();
      t.add(KINDS[0]!, 10);
      assert.deepEqual(await store.apply(3, undefined, 41, t), { applied: true, watermark: 41 });
      assert.deepEqual(await store.apply(3, undefined, 41, t), { applied: false, watermark: 41 });
      assert.deepEqual((await store.snapshot()).totals, { events: 1, bytes: 10 });
    } finally {
      await store.close();
    }
  });

  test('two members racing over the same partitions, with rebalances and replays at random points: every offset counted exactly once', async () => {
    const prefix = keyPrefix('race', 't');
    const members = [await open(prefix), await open(prefix), await open(prefix)];
    const PARTITIONS = 4;
    const PER = 1500;
    // How often the script refused a batch because another member had moved the watermark: the race did happen.
    let refused = 0;
    for (const store of members) {
      const apply = store.apply.bind(store);
      store.apply = async (...args) => {
        const r = await apply(...args);
        if (!r.applied) refused++;
        return r;
      };
    }
    try {
      const rand = prng(12);
      await Promise.all(
        members.map(async (store, m) => {
          // Each member goes through every partition in random batch sizes, forgetting its cache now and then (a
          // partition revoked and assigned back), from a random position at or below the next offset to count: what
          // Kafka hands out after a commit that lags the counts (a crash, a rebalance), never one past them.
          for (let round = 0; round < 3; round++) {
            for (let p = (m + round) % PARTITIONS, k = 0; k < PARTITIONS; k++, p = (p + 1) % PARTITIONS) {
              let known: { watermark: number | undefined } | undefined;
              const next = ((await store.watermark(p)) ?? -1) + 1;
              for (let at = Math.floor(rand() * (next + 1)); at < PER; ) {
                const size = 1 + Math.floor(rand() * 120);
                const batch = Array.from({ length: Math.min(size, PER - at) }, (_, i) => entry(p, at + i));
                const r = await store.count(p, batch, rand() < 0.15 ? undefined : known);
                known = { watermark: r.watermark };
                at += batch.length;
              }
            }
          }
        }),
      );
      // A last replay of everything changes nothing.
      for (let p = 0; p < PARTITIONS; p++) assert.equal((await members[0]!.count(p, Array.from({ length: PER }, (_, n) => entry(p, n)), undefined)).counted, 0);
      assert.ok(refused > 10, `refused ${refused}`);
      const s = await members[0]!.snapshot();
      const want = expected(PARTITIONS, PER);
      assert.deepEqual(s.totals, { events: want.events, bytes: want.bytes });
      assert.deepEqual(Object.fromEntries(s.by.kind), want.kinds);
      assert.deepEqual([...s.offsets].sort((a, b) => a[0] - b[0]), [0, 1, 2, 3].map((p) => [p, PER - 1]));
    } finally {
      for (const store of members) await store.close();
    }
  });

  test('keys: per group and topic, so two groups counting one topic do not add into each other', async () => {
    const a = await open(keyPrefix('group-a', 'topic.x'));
    const b = await open(keyPrefix('group-b', 'topic.x'));
    const client = createClient({ url: url() });
    await client.connect();
    try {
      await a.count(0, [entry(0, 0), entry(0, 1)], undefined);
      await b.count(0, [entry(0, 0)], undefined);
      assert.equal((await a.snapshot()).totals.events, 2);
      assert.equal((await b.snapshot()).totals.events, 1);
      const keys = (await client.keys('atkafka:stats:group-a:*')).sort();
      assert.deepEqual(keys, [
        'atkafka:stats:group-a:topic.x:by-action',
        'atkafka:stats:group-a:topic.x:by-collection',
        'atkafka:stats:group-a:topic.x:by-kind',
        'atkafka:stats:group-a:topic.x:by-source',
        'atkafka:stats:group-a:topic.x:by-type',
        'atkafka:stats:group-a:topic.x:by-wiki',
        'atkafka:stats:group-a:topic.x:offsets',
        'atkafka:stats:group-a:topic.x:totals',
      ]);
      assert.deepEqual(await client.hGetAll('atkafka:stats:group-a:topic.x:offsets'), { '0': '1' });
    } finally {
      await client.close();
      await a.close();
      await b.close();
    }
  });

  test('a Redis that forgot the script (restart, SCRIPT FLUSH) is given it again; keys of another type end it with a clear error', async () => {
    const store = await open(keyPrefix('g3', 't'));
    const client = createClient({ url: url() });
    await client.connect();
    try {
      await client.scriptFlush();
      assert.equal((await store.count(0, [entry(0, 0)], undefined)).counted, 1);
      await client.set('atkafka:stats:g3:t:by-kind', 'not a hash');
      await assert.rejects(store.count(0, [entry(0, 1)], undefined), (err: Error) => err instanceof StatsStoreError && /WRONGTYPE/.test(err.message));
    } finally {
      await client.close();
      await store.close();
    }
  });

  test('a Redis that cannot be reached: connect keeps trying until stopped; wrong credentials end it at once', async () => {
    const stop = new AbortController();
    const pending = StatsStore.connect('redis://127.0.0.1:1', 'p', log, stop.signal);
    setTimeout(() => stop.abort(new Error('stopped')), 300);
    await assert.rejects(pending, /stopped/);
    await assert.rejects(StatsStore.connect(`redis://nobody:wrong@${redis.host}`, 'p', log, new AbortController().signal), (err: Error) => err instanceof StatsStoreError && /WRONGPASS|invalid/i.test(err.message));
  });

  test('close() returns with Redis gone and a command still queued (it used to never settle: `atkafka stats` then exited 13)', async () => {
    const own = await startRedis();
    const store = await StatsStore.connect(`redis://${own.host}`, keyPrefix('gone', 't'), log, new AbortController().signal);
    await own.stop();
    // What the final table does at a stop: a snapshot that gives up after its timeout, its commands left queued.
    await assert.rejects(store.snapshot(AbortSignal.timeout(300)));
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([store.close().then(() => true), new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 10_000)))]);
    clearTimeout(timer);
    assert.equal(closed, true, 'close() settled');
  });
});
