// The real relay capture through replay relay -> atkafka CLI -> real Kafka broker.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { startReplayServer, type ReplayServer } from '../../src/replay/index.ts';
import { metricValue, readCursor, startBridge, waitFor } from '../support/bridge.ts';
import { corpusFrames, expectedMessages, lastSeq } from '../support/corpus.ts';
import { javaPartition, readTopic } from '../support/kafka-read.ts';
import { startTestBroker, type TestBroker } from '../support/kafka-broker.ts';

const frames = corpusFrames();
const expected = expectedMessages(frames);
const LAST = lastSeq(frames);

describe('relay corpus -> Kafka', () => {
  let broker: TestBroker;
  let dir: string;
  before(async () => {
    broker = await startTestBroker();
    dir = await mkdtemp(join(tmpdir(), 'atkafka-it-'));
  });
  after(async () => {
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('produces exactly the corpus events, keyed by DID, in per-DID order, on the Java partition of each DID', async () => {
    await using relay = await startReplayServer({ frames });
    const topic = 'corpus-all';
    const cursorFile = join(dir, 'all.json');
    const bridge = await startBridge(['--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--relay-host', relay.url, '--cursor-file', cursorFile, '--cursor-save-interval', '50ms']);
    await waitFor('cursor at the last corpus seq', async () => (await readCursor(cursorFile)) === LAST, 60_000);
    const metrics = await bridge.metrics();
    bridge.child.kill('SIGTERM');
    assert.equal(await bridge.exited, 0, bridge.logs());

    assert.equal(metricValue(metrics, 'atkafka_handled_events', { action_name: 'operation#create' }), 144);
    assert.equal(metricValue(metrics, 'atkafka_handled_events', { action_name: 'operation#update' }), 2);
    assert.equal(metricValue(metrics, 'atkafka_handled_events', { action_name: 'operation#delete' }), 4);
    assert.equal(metricValue(metrics, 'atkafka_invalid_input'), 0);

    const got = await readTopic(broker.bootstrap, topic);
    assert.equal(got.length, 152);
    assert.equal(got.filter((m) => JSON.parse(m.value).operation).length, 150);
    assert.equal(got.filter((m) => JSON.parse(m.value).identity).length, 1);
    assert.equal(got.filter((m) => JSON.parse(m.value).account).length, 1);
    assert.deepEqual(got.map((m) => `${m.key} ${m.value}`).sort(), expected.map((m) => `${m.key} ${m.value}`).sort());

    for (const m of got) {
      const v = JSON.parse(m.value) as { did: string; operation?: { uri: string; collection: string; rkey: string } };
      assert.equal(m.key, v.did);
      if (v.operation) assert.equal(v.operation.uri, `at://${v.did}/${v.operation.collection}/${v.operation.rkey}`);
      assert.equal(m.partition, javaPartition(m.key, 200), `partition of ${m.key}`);
    }
    // Per-DID order: within its partition, a DID's messages appear in stream order.
    const byKey = new Map<string, string[]>();
    for (const m of got) byKey.set(m.key, [...(byKey.get(m.key) ?? []), m.value]);
    const wantByKey = new Map<string, string[]>();
    for (const m of expected) wantByKey.set(m.key, [...(wantByKey.get(m.key) ?? []), m.value]);
    assert.deepEqual(byKey, wantByKey);
  });

  it('resumes from its cursor file after a clean stop, without duplicates', async () => {
    // First run: only the first half of the stream exists.
    const half = Math.floor(frames.length / 2);
    const topic = 'corpus-resume';
    const cursorFile = join(dir, 'resume.json');
    const firstHalf = frames.slice(0, half);
    let port: number;
    {
      await using relay = await startReplayServer({ frames: firstHalf });
      port = relay.port;
      const bridge = await startBridge(['--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--relay-host', relay.url, '--cursor-file', cursorFile]);
      await waitFor('first half', async () => (await readCursor(cursorFile)) === lastSeq(firstHalf));
      bridge.child.kill('SIGINT');
      assert.equal(await bridge.exited, 0, bridge.logs());
    }
    // Same URL as before: the cursor file is bound to the relay it came from.
    await using relay = await startReplayServer({ frames, port });
    const bridge = await startBridge(['--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--relay-host', relay.url, '--cursor-file', cursorFile]);
    await waitFor('whole stream', async () => (await readCursor(cursorFile)) === LAST);
    bridge.child.kill('SIGTERM');
    assert.equal(await bridge.exited, 0, bridge.logs());
    const got = await readTopic(broker.bootstrap, topic);
    assert.deepEqual(got.map((m) => m.value).sort(), expected.map((m) => m.value).sort());
  });
});

