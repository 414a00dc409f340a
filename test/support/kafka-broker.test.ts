import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { bootstrapList, startTestBroker, type TestBroker } from './kafka-broker.ts';

async function readFirst(bootstrap: string[], topic: string): Promise<{ key: string | undefined; value: string | undefined; offset: bigint }> {
  const consumer = new Consumer({ clientId: 'broker-test', groupId: `broker-test-${randomUUID()}`, bootstrapBrokers: bootstrap, deserializers: stringDeserializers });
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxWaitTime: 200 });
    for await (const m of stream) {
      await stream.close();
      return { key: m.key, value: m.value, offset: m.offset };
    }
    throw new Error('stream ended without a message');
  } finally {
    await consumer.close(true);
  }
}

function portOpen(hostPort: string): Promise<boolean> {
  const [host, port] = hostPort.split(':');
  return new Promise((resolve) => {
    const s = connect({ host, port: Number(port) });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

describe('test Kafka broker', { timeout: 180_000 }, () => {
  const external = Boolean(process.env.KAFKA_BOOTSTRAP_SERVERS?.trim()) && 'external broker (KAFKA_BOOTSTRAP_SERVERS): no halt/resume';
  const topic = `broker-test-${randomUUID()}`;
  let broker: TestBroker;
  before(async () => {
    broker = await startTestBroker();
  });
  after(async () => {
    await broker?.stop();
  });

  it('creates a topic, produces and consumes', async () => {
    const bootstrap = bootstrapList(broker);
    const admin = new Admin({ clientId: 'broker-test', bootstrapBrokers: bootstrap });
    const producer = new Producer({ clientId: 'broker-test', bootstrapBrokers: bootstrap, serializers: stringSerializers, idempotent: true });
    try {
      await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 });
      await producer.send({ messages: [{ topic, key: 'did:plc:test', value: 'hello' }] });
    } finally {
      await producer.close();
      await admin.close();
    }
    assert.deepEqual(await readFirst(bootstrap, topic), { key: 'did:plc:test', value: 'hello', offset: 0n });
  });

  it('keeps the message across a crash (SIGKILL) and restart on the same port', { skip: external }, async () => {
    assert.equal(broker.canRestart, true);
    const before = broker.bootstrap;
    await broker.halt();
    assert.equal(await portOpen(before), false, 'the halted broker still accepts connections');
    await broker.resume();
    assert.equal(broker.bootstrap, before, 'resume moved the broker to another port');
    assert.deepEqual(await readFirst(bootstrapList(broker), topic), { key: 'did:plc:test', value: 'hello', offset: 0n });
  });

  it('resumes after a clean shutdown (SIGTERM) too', { skip: external }, async () => {
    await broker.halt('SIGTERM');
    await broker.resume();
    assert.deepEqual(await readFirst(bootstrapList(broker), topic), { key: 'did:plc:test', value: 'hello', offset: 0n });
    const admin = new Admin({ clientId: 'broker-test', bootstrapBrokers: bootstrapList(broker) });
    try {
      const another = `broker-test-${randomUUID()}`;
      await admin.createTopics({ topics: [another], partitions: 1, replicas: 1 });
      assert.ok((await admin.listTopics()).includes(another));
    } finally {
      await admin.close();
    }
  });
});

describe('external broker (KAFKA_BOOTSTRAP_SERVERS)', () => {
  it('is returned as given and refuses halt/resume', async () => {
    const saved = process.env.KAFKA_BOOTSTRAP_SERVERS;
    process.env.KAFKA_BOOTSTRAP_SERVERS = '127.0.0.1:1,127.0.0.1:2';
    try {
      await using b = await startTestBroker();
      assert.equal(b.bootstrap, '127.0.0.1:1,127.0.0.1:2');
      assert.deepEqual(bootstrapList(b), ['127.0.0.1:1', '127.0.0.1:2']);
      assert.equal(b.canRestart, false);
      await assert.rejects(b.halt(), /not supported with an external broker/);
      await assert.rejects(b.resume(), /not supported with an external broker/);
    } finally {
      if (saved === undefined) delete process.env.KAFKA_BOOTSTRAP_SERVERS;
      else process.env.KAFKA_BOOTSTRAP_SERVERS = saved;
    }
  });
});
