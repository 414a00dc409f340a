// The Kafka sink's headers and topic routing on a real broker: headers arrive exactly, routed
// topics are created on first use while their messages wait, order holds per key within each
// topic, a refused message goes again with its headers, and a topic Kafka will not create stops
// the sink through onFatal.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';

import { Admin, ConfigResourceTypes, IncrementalAlterConfigOperationTypes } from '@platformatic/kafka';
import { pino } from 'pino';

import {
  createKafkaSink,
  sanitizeTopic,
  type KafkaFatalError,
  type KafkaSink,
  type KafkaSinkOptions,
  type MessageHeader,
} from '../../src/sink/kafka/index.ts';
import { bootstrapList, startTestBroker, type TestBroker } from '../support/kafka-broker.ts';
import { javaPartition } from '../support/kafka-read.ts';

const run = promisify(execFile);
const log = pino({ level: process.env.ATKAFKA_TEST_LOG ?? 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Consumed {
  partition: number;
  offset: number;
  key: string;
  value: string;
  /** [name, value] pairs in order; values as UTF-8 text. */
  headers: [string, string][];
}

/** The whole topic through kcat (an independent client), with headers; partition then offset order. */
async function readTopic(bootstrap: string, topic: string): Promise<Consumed[]> {
  const { stdout } = await run('kcat', ['-b', bootstrap, '-t', topic, '-C', '-e', '-q', '-J'], { maxBuffer: 1 << 30 });
  const out: Consumed[] = [];
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const m = JSON.parse(line) as { partition: number; offset: number; key: string | null; payload: string | null; headers?: (string | null)[] };
    const flat = m.headers ?? [];
    const headers: [string, string][] = [];
    for (let i = 0; i < flat.length; i += 2) headers.push([flat[i] ?? '', flat[i + 1] ?? '']);
    out.push({ partition: m.partition, offset: m.offset, key: m.key ?? '', value: m.payload ?? '', headers });
  }
  out.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  return out;
}

async function partitionCount(bootstrap: string, topic: string): Promise<number> {
  const { stdout } = await run('kcat', ['-b', bootstrap, '-L', '-t', topic, '-J']);
  const md = JSON.parse(stdout) as { topics: { topic: string; partitions: unknown[] }[] };
  return md.topics.find((t) => t.topic === topic)!.partitions.length;
}

function options(broker: TestBroker, topic: string, overrides: Partial<KafkaSinkOptions> = {}): KafkaSinkOptions {
  return {
    bootstrapServers: broker.bootstrap.split(','),
    topic,
    partitions: 8,
    replicationFactor: 1,
    compression: 'zstd',
    compressionLevel: 1,
    lingerMs: 5,
    batchBytes: 1_048_576,
    maxMessageBytes: 1_048_576,
    clientId: 'atkafka-test',
    extra: {},
    ...overrides,
  };
}

async function maxMessageBytes(broker: TestBroker, topic: string): Promise<string | null | undefined> {
  const [d] = await withAdmin(broker, (admin) =>
    admin.describeConfigs({ resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: topic, configurationKeys: ['max.message.bytes'] }] }),
  );
  return d?.configs.find((c) => c.name === 'max.message.bytes')?.value;
}

async function withAdmin<R>(broker: TestBroker, fn: (admin: Admin) => Promise<R>): Promise<R> {
  const admin = new Admin({ clientId: 'atkafka-test-admin', bootstrapBrokers: bootstrapList(broker) });
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

const asPairs = (headers: MessageHeader[]): [string, string][] =>
  headers.map((h) => {
    const [name, value] = Object.entries(h)[0]!;
    return [name, typeof value === 'string' ? value : value.toString()];
  });

/** Messages of one key must come in increasing `i` within one topic (Kafka orders per partition). */
function assertPerKeyOrder(got: Consumed[], label: string): void {
  const last = new Map<string, number>();
  for (const m of got) {
    const { i } = JSON.parse(m.value) as { i: number };
    const before = last.get(m.key) ?? -1;
    assert.ok(i > before, `${label}: ${m.key}: message ${i} after ${before}`);
    last.set(m.key, i);
  }
}

describe('sanitizeTopic', () => {
  it('keeps valid names and makes anything else a valid name', () => {
    assert.equal(sanitizeTopic('atproto.app.bsky.feed.post'), 'atproto.app.bsky.feed.post');
    assert.equal(sanitizeTopic('a-b_c.D9'), 'a-b_c.D9');
    assert.equal(sanitizeTopic('atproto.com.example/weird:name'), 'atproto.com.example_weird_name');
    assert.equal(sanitizeTopic('x é 😀'), 'x____', 'one _ per code point');
    assert.equal(sanitizeTopic(''), '_');
    assert.equal(sanitizeTopic('.'), '_');
    assert.equal(sanitizeTopic('..'), '__');
    assert.equal(sanitizeTopic('...'), '...');
    const long = sanitizeTopic('a'.repeat(300));
    assert.equal(long.length, 249);
    assert.equal(sanitizeTopic('😀'.repeat(300)), '_'.repeat(249));
    for (const s of ['', '.', '..', '/', 'a b', '😀'.repeat(200), 'x'.repeat(1000), '\u0000']) {
      assert.match(sanitizeTopic(s), /^[a-zA-Z0-9._-]{1,249}$/);
      assert.ok(!['.', '..'].includes(sanitizeTopic(s)));
    }
  });
});

describe('Kafka sink: headers and routing', () => {
  let broker: TestBroker;
  const sinks: KafkaSink[] = [];
  before(async () => {
    broker = await startTestBroker();
  });
  after(async () => {
    for (const s of sinks) await s.close();
    await broker?.stop();
  });

  async function sink(topic: string, overrides: Partial<KafkaSinkOptions> = {}): Promise<KafkaSink> {
    const s = await createKafkaSink(options(broker, topic, overrides), log, 1000);
    sinks.push(s);
    return s;
  }

  it('delivers headers exactly: names, values, order, repeats, Buffer values; no headers without extra', async () => {
    const topic = `hdr-exact-${Date.now()}`;
    const s = await sink(topic);
    const confirmed: number[] = [];
    s.onConfirmed((t) => confirmed.push(t as number));
    const sets: MessageHeader[][] = [
      [{ kind: 'commit' }, { collection: 'app.bsky.feed.post' }, { action: 'create' }, { seq: '31527015322' }, { source: 'relay' }],
      [{ kind: 'identity' }, { seq: '1' }, { source: 'relay' }],
      [{ a: 'x' }, { a: 'y' }, { b: Buffer.from('bytes') }, { empty: '' }, { 'ünï': 'çødé ✓' }],
    ];
    const n = 300;
    const expected: [string, string][][] = [];
    for (let i = 0; i < n; i++) {
      const key = `did:plc:h${i % 7}`;
      const value = JSON.stringify({ i });
      if (i % 4 === 3) {
        s.send(key, value, i);
        expected.push([]);
      } else {
        const h = sets[i % 3]!;
        s.send(key, i % 2 === 0 ? value : Buffer.from(value), i, { headers: h });
        expected.push(asPairs(h));
      }
    }
    await s.flush();
    assert.equal(confirmed.length, n);
    const got = await readTopic(broker.bootstrap, topic);
    assert.equal(got.length, n);
    for (const m of got) {
      const { i } = JSON.parse(m.value) as { i: number };
      assert.deepEqual(m.headers, expected[i], `headers of message ${i}`);
    }
    assertPerKeyOrder(got, topic);
  });

  it('routes to new topics created like the default one, interleaved with it, in per-key order', async () => {
    const base = `route-${Date.now()}`;
    const s = await sink(base, { maxMessageBytes: 1_000_123 });
    const confirmed = new Set<number>();
    s.onConfirmed((t) => {
      assert.ok(!confirmed.has(t as number), `token ${String(t)} confirmed twice`);
      confirmed.add(t as number);
    });
    const routed = [`${base}.a`, `${base}.b`, `${base}.c`];
    const topics = [base, ...routed];
    const keys = Array.from({ length: 40 }, (_, i) => `did:plc:r${i}`);
    const n = 4000;
    const topicOf = (i: number) => topics[(i * 7 + Math.floor(i / 13)) % 4]!;
    for (let i = 0; i < n; i++) {
      const topic = topicOf(i);
      const key = keys[i % keys.length]!;
      const value = JSON.stringify({ i, topic });
      const headers: MessageHeader[] = [{ seq: String(i) }, { topic }];
      // The default topic both ways: without extra and named explicitly.
      if (topic === base && i % 2 === 0) s.send(key, value, i);
      else s.send(key, value, i, { topic, headers });
      if (i % 700 === 699) await sleep(2);
    }
    assert.ok(s.inFlight > 0);
    await s.flush();
    assert.equal(s.inFlight, 0);
    assert.equal(s.inFlightBytes, 0);
    assert.equal(confirmed.size, n, 'every token confirmed once');

    let total = 0;
    for (const topic of topics) {
      assert.equal(await partitionCount(broker.bootstrap, topic), 8, `${topic} has the default's partition count`);
      assert.equal(await maxMessageBytes(broker, topic), '1000123', `${topic} has the default's max.message.bytes`);
      const got = await readTopic(broker.bootstrap, topic);
      total += got.length;
      for (const m of got) {
        const v = JSON.parse(m.value) as { i: number; topic: string };
        assert.equal(v.topic, topic, `message ${v.i} in its topic`);
        assert.equal(m.partition, javaPartition(m.key, 8), `${m.key} on its Java partition in ${topic}`);
        const wantHeaders = topic === base && v.i % 2 === 0 ? [] : [['seq', String(v.i)], ['topic', topic]];
        assert.deepEqual(m.headers, wantHeaders);
      }
      assertPerKeyOrder(got, topic);
    }
    assert.equal(total, n, 'no message lost or doubled');
  });

  it('holds many messages while their topic is created, counted in flight, none confirmed before Kafka has them', async () => {
    const base = `hold-${Date.now()}`;
    const s = await sink(base);
    const routed = `${base}.new`;
    const confirmed: number[] = [];
    s.onConfirmed((t) => confirmed.push(t as number));
    const n = 5000;
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const value = JSON.stringify({ i, pad: 'x'.repeat(i % 50) });
      bytes += value.length;
      s.send(`did:plc:k${i % 25}`, value, i, { topic: routed, headers: [{ n: String(i) }] });
    }
    // Nothing of it can be produced before CreateTopics answers: all waits, in flight.
    assert.equal(s.inFlight, n);
    assert.equal(s.inFlightBytes, bytes);
    assert.equal(confirmed.length, 0);
    // A default-topic message meanwhile flows.
    s.send('did:plc:other', '{"i":-1}', -1);
    // Whatever is confirmed first is in Kafka already.
    while (confirmed.length === 0) await sleep(1);
    const early = new Set(confirmed);
    const inKafka = new Set<number>();
    for (const t of [base, routed]) for (const m of await readTopic(broker.bootstrap, t)) inKafka.add((JSON.parse(m.value) as { i: number }).i);
    for (const t of early) assert.ok(inKafka.has(t), `token ${t} was confirmed before Kafka held its message`);
    await s.flush();
    assert.equal(s.inFlight, 0);
    assert.equal(confirmed.length, n + 1);
    assert.deepEqual(
      [...confirmed].sort((a, b) => a - b),
      Array.from({ length: n + 1 }, (_, i) => i - 1),
    );
    const got = await readTopic(broker.bootstrap, routed);
    assert.equal(got.length, n);
    for (const m of got) assert.deepEqual(m.headers, [['n', String((JSON.parse(m.value) as { i: number }).i)]]);
    assertPerKeyOrder(got, routed);
  });

  it('produces a refused message again with its topic and headers, confirming nothing of its epoch until Kafka takes it', async () => {
    const base = `refuse-${Date.now()}`;
    // Routed topics are created like the default one: refusing anything over 2 kB.
    const s = await sink(base, { maxMessageBytes: 2048 });
    const routed = `${base}.routed`;
    const confirmed: string[] = [];
    s.onConfirmed((t) => confirmed.push(t as string));
    const big = (tag: string) => JSON.stringify({ tag, pad: randomBytes(6000).toString('base64') });
    const key = 'did:plc:same';
    // Same key, same topic, different headers around the refused ones: each must keep its own.
    const sent: { token: string; value: string; headers: MessageHeader[] }[] = [
      { token: 's1', value: '{"tag":"s1"}', headers: [{ seq: '1' }, { action: 'create' }] },
      { token: 'big1', value: big('big1'), headers: [{ seq: '2' }, { action: 'update' }] },
      { token: 's2', value: '{"tag":"s2"}', headers: [{ seq: '3' }] },
      { token: 'big2', value: big('big2'), headers: [{ seq: '4' }, { action: 'delete' }, { extra: Buffer.from([0x41, 0x42]) }] },
    ];
    for (const m of sent) s.send(key, m.value, m.token, { topic: routed, headers: m.headers });

    await sleep(2500);
    let values = (await readTopic(broker.bootstrap, routed)).map((m) => m.value);
    assert.ok(!values.some((v) => v.includes('big')), 'Kafka does not hold the big ones');
    assert.ok(!confirmed.includes('big1') && !confirmed.includes('big2'), 'refused messages are not confirmed');
    assert.equal(s.inFlight, 4 - confirmed.length);

    await withAdmin(broker, (admin) =>
      admin.incrementalAlterConfigs({
        resources: [
          {
            resourceType: ConfigResourceTypes.TOPIC,
            resourceName: routed,
            configs: [{ name: 'max.message.bytes', configOperation: IncrementalAlterConfigOperationTypes.SET, value: '1048576' }],
          },
        ],
      }),
    );
    await s.flush();
    assert.deepEqual([...confirmed].sort(), ['big1', 'big2', 's1', 's2']);
    const got = await readTopic(broker.bootstrap, routed);
    values = got.map((m) => m.value);
    for (const m of sent) {
      const landed = got.filter((g) => g.value === m.value);
      assert.ok(landed.length >= 1, `${m.token} landed in ${routed}`);
      for (const l of landed) assert.deepEqual(l.headers, asPairs(m.headers), `${m.token} kept its headers`);
    }
    assert.equal((await readTopic(broker.bootstrap, base)).length, 0, 'nothing went to the default topic');
  });

  it('gives each of hundreds of refused messages (reported 100 per event-loop pass) its own headers again', async () => {
    const base = `mass-${Date.now()}`;
    const s = await sink(base, { maxMessageBytes: 2048 });
    const routed = `${base}.routed`;
    const confirmed = new Set<number>();
    s.onConfirmed((t) => confirmed.add(t as number));
    const n = 600;
    const values = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      // Few keys, so that many refused messages share a key; a small one of the same key now and then.
      const key = `did:plc:m${i % 3}`;
      const value = i % 5 === 4 ? JSON.stringify({ i }) : JSON.stringify({ i, pad: randomBytes(3000).toString('base64') });
      values.set(value, i);
      s.send(key, value, i, { topic: i % 2 === 0 ? routed : base, headers: [{ seq: String(i) }, { parity: i % 2 === 0 ? 'even' : 'odd' }] });
    }
    await sleep(1500);
    assert.ok(confirmed.size < n, 'the big ones are not confirmed');
    await withAdmin(broker, (admin) =>
      admin.incrementalAlterConfigs({
        resources: [routed, base].map((topic) => ({
          resourceType: ConfigResourceTypes.TOPIC,
          resourceName: topic,
          configs: [{ name: 'max.message.bytes', configOperation: IncrementalAlterConfigOperationTypes.SET, value: '1048576' }],
        })),
      }),
    );
    await s.flush();
    assert.equal(confirmed.size, n);
    const seen = new Set<number>();
    for (const topic of [base, routed]) {
      for (const m of await readTopic(broker.bootstrap, topic)) {
        const i = values.get(m.value);
        assert.ok(i !== undefined);
        assert.ok(!seen.has(i), `message ${i} once`);
        seen.add(i);
        assert.equal(topic, i % 2 === 0 ? routed : base, `message ${i} in its topic`);
        assert.deepEqual(m.headers, [['seq', String(i)], ['parity', i % 2 === 0 ? 'even' : 'odd']], `message ${i} kept its headers`);
      }
    }
    assert.equal(seen.size, n);
  });

  it('stops through onFatal, naming the topic, when Kafka refuses to create a routed topic (a name colliding with an existing one)', async () => {
    const base = `fatal-${Date.now()}`;
    const s = await sink(base);
    // Kafka refuses a topic whose name differs from an existing one only by '.' versus '_'.
    const existing = `${base}_collide`;
    await withAdmin(broker, (admin) => admin.createTopics({ topics: [existing], partitions: 1, replicas: 1 }));
    const colliding = `${base}.collide`;
    const fatal = Promise.withResolvers<KafkaFatalError>();
    s.onFatal((err) => fatal.resolve(err));
    const confirmed: unknown[] = [];
    s.onConfirmed((t) => confirmed.push(t));
    s.send('did:plc:x', '{"n":1}', 'routed', { topic: colliding, headers: [{ a: 'b' }] });
    s.send('did:plc:x', '{"n":2}', 'default');
    const err = await Promise.race([fatal.promise, sleep(20_000).then(() => undefined)]);
    assert.ok(err, 'onFatal was called');
    assert.equal(err.name, 'KafkaFatalError');
    assert.ok(err.message.includes(`"${colliding}"`), err.message);
    assert.match(err.message, /collides|not retriable/);
    const cause = err.cause as { code?: number } | undefined;
    assert.equal(cause?.code, 17, `INVALID_TOPIC_EXCEPTION, got ${String(cause?.code)}: ${err.message}`);
    await sleep(200);
    assert.ok(!confirmed.includes('routed'), 'its message is never confirmed');
    assert.ok(s.inFlight >= 1);
  });

  it('refuses an invalid topic name in send: a bug in the caller, nothing counted', async () => {
    const s = await sink(`invalid-${Date.now()}`);
    for (const bad of ['', '.', '..', 'a b', 'a/b', 'x'.repeat(250), 'é']) {
      assert.throws(() => s.send('k', 'v', null, { topic: bad }), /invalid topic name/);
    }
    assert.equal(s.inFlight, 0);
    assert.equal(s.inFlightBytes, 0);
  });

  // Last: it restarts the broker.
  it('retries creating a topic while Kafka is down, never dropping its messages', { timeout: 180_000 }, async (t) => {
    if (!broker.canRestart) {
      t.skip('needs a local broker');
      return;
    }
    const base = `retry-${Date.now()}`;
    const lines: string[] = [];
    const s = await createKafkaSink(options(broker, base), pino({ level: 'warn' }, { write: (line: string) => lines.push(line) }), 1000);
    sinks.push(s);
    const confirmed: number[] = [];
    s.onConfirmed((tok) => confirmed.push(tok as number));
    let fatal: Error | undefined;
    s.onFatal((err) => (fatal = err));
    await broker.halt();
    const routed = `${base}.later`;
    const n = 200;
    for (let i = 0; i < n; i++) s.send(`did:plc:z${i % 5}`, JSON.stringify({ i }), i, { topic: routed, headers: [{ i: String(i) }] });
    // Longer than one CreateTopics request may wait (15 s): it times out and is tried again.
    await sleep(17_000);
    assert.equal(confirmed.length, 0);
    assert.equal(s.inFlight, n);
    const retries = lines.map((l) => JSON.parse(l) as { msg: string; topic?: string; code?: number }).filter((l) => l.msg.startsWith('cannot create topic yet'));
    assert.ok(retries.length >= 1, 'a failed attempt was logged');
    assert.equal(retries[0]!.topic, routed);
    await broker.resume();
    await s.flush();
    assert.equal(fatal, undefined, 'a broker being down is not fatal');
    assert.equal(confirmed.length, n);
    const got = await readTopic(broker.bootstrap, routed);
    assert.equal(got.length, n);
    assertPerKeyOrder(got, routed);
  });
});
