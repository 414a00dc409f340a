// The Kafka sink on a real broker: confirmation by flush epochs, and what happens when Kafka refuses a message.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { Admin, ConfigResourceTypes, IncrementalAlterConfigOperationTypes } from '@platformatic/kafka';
import { pino } from 'pino';

import { createKafkaSink, type KafkaSink, type KafkaSinkOptions } from '../../src/sink/kafka/index.ts';
import { bootstrapList, startTestBroker, type TestBroker } from '../support/kafka-broker.ts';
import { javaPartition, readTopic } from '../support/kafka-read.ts';

const log = pino({ level: 'silent' });

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

async function setTopicMaxMessageBytes(broker: TestBroker, topic: string, bytes: number): Promise<void> {
  const admin = new Admin({ clientId: 'atkafka-test-admin', bootstrapBrokers: bootstrapList(broker) });
  try {
    await admin.incrementalAlterConfigs({
      resources: [
        {
          resourceType: ConfigResourceTypes.TOPIC,
          resourceName: topic,
          configs: [{ name: 'max.message.bytes', configOperation: IncrementalAlterConfigOperationTypes.SET, value: String(bytes) }],
        },
      ],
    });
  } finally {
    await admin.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Kafka sink', () => {
  let broker: TestBroker;
  const sinks: KafkaSink[] = [];
  before(async () => {
    broker = await startTestBroker();
  });
  after(async () => {
    for (const s of sinks) await s.close();
    await broker?.stop();
  });

  it('confirms every message exactly once, only once Kafka holds it, with per-key order and Java partitions', async () => {
    const topic = `sink-epochs-${Date.now()}`;
    const sink = await createKafkaSink(options(broker, topic), log, 1000);
    sinks.push(sink);
    const confirmed: number[] = [];
    sink.onConfirmed((token) => confirmed.push(token as number));

    // Bursts with pauses, so messages arrive while earlier epochs are still being flushed.
    const keys = Array.from({ length: 50 }, (_, i) => `did:plc:key${i}`);
    const n = 3000;
    for (let i = 0; i < n; i++) {
      const value = JSON.stringify({ i, key: keys[i % keys.length] });
      sink.send(keys[i % keys.length]!, i % 2 === 0 ? value : Buffer.from(value), i);
      if (i % 500 === 499) await sleep(3);
    }
    assert.ok(sink.inFlight > 0, 'messages are in flight right after sending');
    await sink.flush();
    assert.equal(sink.inFlight, 0);
    assert.deepEqual([...confirmed].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i), 'each token confirmed once');

    const got = await readTopic(broker.bootstrap, topic);
    assert.equal(got.length, n, 'Kafka holds every confirmed message, and no more');
    const lastByKey = new Map<string, number>();
    for (const m of got) {
      const { i, key } = JSON.parse(m.value) as { i: number; key: string };
      assert.equal(m.key, key);
      assert.equal(m.partition, javaPartition(key, 8), `${key} on its Java partition`);
      assert.ok(i > (lastByKey.get(key) ?? -1), `${key}: message ${i} after ${lastByKey.get(key)}`);
      lastByKey.set(key, i);
    }
  });

  it('a topic it creates (default or routed) takes writes before its first message: no produce request meets a partition whose leader is not leading yet', async () => {
    // librdkafka's own log (--kafka-option debug=...) says when a ProduceRequest failed; right after
    // a topic is created every first batch would meet NOT_LEADER_OR_FOLLOWER, the window in which
    // librdkafka 2.15 was seen taking a partition's first message as delivered though Kafka never
    // wrote it (producer.ts, topicReady).
    const lines: string[] = [];
    const capture = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const topic = `sink-fresh-${Date.now()}`;
    const routed = `${topic}-routed`;
    const sink = await createKafkaSink(options(broker, topic, { partitions: 200, extra: { debug: 'broker,msg' } }), capture, 10_000);
    sinks.push(sink);
    assert.ok(lines.some((l) => l.includes('"msg":"created topic"') && l.includes('"ready":200')), 'every partition answered before the sink was handed out');
    const n = 600;
    for (let i = 0; i < n; i++) sink.send(`did:plc:key${i}`, JSON.stringify({ i }), i, i % 2 === 0 ? undefined : { topic: routed });
    await sink.flush();
    const failed = lines.filter((l) => l.includes('ProduceRequest failed'));
    assert.deepEqual(failed, [], 'no produce request failed');
    assert.ok(lines.some((l) => l.includes('"component":"librdkafka"')), 'librdkafka\'s debug log reached the logger');
    const got = [...(await readTopic(broker.bootstrap, topic)), ...(await readTopic(broker.bootstrap, routed))];
    assert.deepEqual(new Set(got.map((m) => (JSON.parse(m.value) as { i: number }).i)).size, n, 'every message in Kafka');
  });

  it('keeps a message Kafka refuses, and its epoch, unconfirmed and retried until Kafka takes it', async () => {
    const topic = `sink-refused-${Date.now()}`;
    // The topic is created refusing anything over 2 kB; the producer itself allows 64 kB more, so only the broker says no.
    const sink = await createKafkaSink(options(broker, topic, { maxMessageBytes: 2048 }), log, 1000);
    sinks.push(sink);
    const confirmed: string[] = [];
    sink.onConfirmed((token) => confirmed.push(token as string));

    // Random, so compression cannot bring it under the limit (the broker checks compressed batches).
    const big = JSON.stringify({ pad: randomBytes(8000).toString('base64') });
    sink.send('did:plc:small1', '{"n":1}', 'small-1');
    sink.send('did:plc:big', big, 'big');
    sink.send('did:plc:small2', '{"n":2}', 'small-2');

    // Refused (MESSAGE_TOO_LARGE) and produced again, over and over: never confirmed meanwhile.
    await sleep(2000);
    const before = (await readTopic(broker.bootstrap, topic)).map((m) => m.value);
    assert.ok(!before.includes(big), 'Kafka does not hold it');
    assert.ok(!confirmed.includes('big'), 'the refused message is not confirmed');
    assert.equal(sink.inFlight, 3 - confirmed.length);

    // Once the topic takes it, the retry lands and its carried epoch is confirmed.
    await setTopicMaxMessageBytes(broker, topic, 1_048_576);
    await sink.flush();
    assert.deepEqual([...confirmed].sort(), ['big', 'small-1', 'small-2']);
    const values = (await readTopic(broker.bootstrap, topic)).map((m) => m.value);
    assert.ok(values.includes(big), 'the retried message landed');
    assert.ok(values.includes('{"n":1}') && values.includes('{"n":2}'));
  });
});
