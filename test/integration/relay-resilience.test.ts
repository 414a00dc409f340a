// Losing nothing when things go wrong: crashes, a dead broker, bad frames.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';

import { decodeFrame } from '../../src/atproto/frame.ts';
import { startReplayServer } from '../../src/replay/index.ts';
import { badCar, cidMismatch, garbage, huge, seqOf, truncated } from '../support/bad-frames.ts';
import { metricValue, readCursor, startBridge, waitFor } from '../support/bridge.ts';
import { corpusFrames, expectedMessages, lastSeq } from '../support/corpus.ts';
import { readTopic } from '../support/kafka-read.ts';
import { startTestBroker, type TestBroker } from '../support/kafka-broker.ts';

const frames = corpusFrames();
const expected = expectedMessages(frames);
const LAST = lastSeq(frames);
const seqOfValue = new Map(expected.map((m) => [m.value, m.seq]));

function counts(values: string[]): Map<string, number> {
  const c = new Map<string, number>();
  for (const v of values) c.set(v, (c.get(v) ?? 0) + 1);
  return c;
}

describe('relay resilience', () => {
  let broker: TestBroker;
  let dir: string;
  before(async () => {
    broker = await startTestBroker();
    dir = await mkdtemp(join(tmpdir(), 'atkafka-res-'));
  });
  after(async () => {
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('kill -9 mid-stream, restart: every event lands; duplicates only after the saved cursor', async () => {
    await using relay = await startReplayServer({ frames, rate: 50 });
    const topic = 'kill9';
    const cursorFile = join(dir, 'kill9.json');
    const args = ['--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--relay-host', relay.url, '--cursor-file', cursorFile, '--cursor-save-interval', '200ms'];
    const first = await startBridge(args);
    await waitFor('some progress', async () => ((await readCursor(cursorFile)) ?? 0) > seqOf(frames[40]!));
    first.child.kill('SIGKILL');
    assert.equal(await first.exited, 'SIGKILL');
    const savedAtKill = (await readCursor(cursorFile))!;
    assert.ok(savedAtKill < LAST, 'killed before the end');

    const second = await startBridge(args);
    await waitFor('the rest of the stream', async () => (await readCursor(cursorFile)) === LAST);
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0, second.logs());

    const got = counts((await readTopic(broker.bootstrap, topic)).map((m) => m.value));
    for (const m of expected) assert.ok(got.has(m.value), `missing event of seq ${m.seq}`);
    assert.equal(got.size, expected.length, 'nothing but corpus events');
    for (const [value, n] of got) {
      if (n > 1) assert.ok(seqOfValue.get(value)! > savedAtKill, `seq ${seqOfValue.get(value)} duplicated though the saved cursor ${savedAtKill} covered it`);
    }
  });

  it('broker down for 10 s mid-stream: the bridge pauses, recovers by itself, loses nothing', async (t) => {
    if (!broker.canRestart) return t.skip('needs a local broker it can stop (KAFKA_BOOTSTRAP_SERVERS is set)');
    await using relay = await startReplayServer({ frames, rate: 8 });
    const topic = 'broker-down';
    const cursorFile = join(dir, 'down.json');
    const bridge = await startBridge([
      '--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--relay-host', relay.url,
      '--cursor-file', cursorFile, '--cursor-save-interval', '100ms', '--max-in-flight', '10',
    ]);
    await waitFor('some progress', async () => ((await readCursor(cursorFile)) ?? 0) > seqOf(frames[10]!));
    await broker.halt('SIGKILL');
    const haltedAt = Date.now();
    await sleep(4_000);
    const during = await bridge.metrics();
    const cursorDuring = await readCursor(cursorFile);
    await sleep(10_000 - (Date.now() - haltedAt));
    // Backpressure held: reading paused at the in-flight cap, the cursor did not move past unconfirmed events.
    assert.equal(metricValue(during, 'atkafka_backpressure_paused'), 1, 'paused while Kafka is down');
    assert.ok(metricValue(during, 'atkafka_kafka_in_flight') <= 10 + 20);
    // What was read is decoded and waits for Kafka; nothing is stuck in the decode thread.
    assert.equal(metricValue(during, 'atkafka_decode_backlog_frames'), 0);
    assert.ok(cursorDuring! < LAST);
    await broker.resume();
    await waitFor('the whole stream after the broker is back', async () => (await readCursor(cursorFile)) === LAST, 90_000);
    bridge.child.kill('SIGTERM');
    assert.equal(await bridge.exited, 0, bridge.logs());
    const got = counts((await readTopic(broker.bootstrap, topic)).map((m) => m.value));
    for (const m of expected) assert.ok(got.has(m.value), `missing event of seq ${m.seq}`);
    assert.equal(got.size, expected.length);
  });

  it('malformed frames are counted and skipped; the rest of the stream goes through', async () => {
    const commits = frames.map((f, i) => ({ f, i })).filter(({ f }) => decodeFrame(f).kind === 'commit');
    const victims = {
      car: commits[3]!.i,
      cid: commits[7]!.i,
      huge: commits[11]!.i,
    };
    const mixed: Uint8Array[] = [];
    for (let i = 0; i < frames.length; i++) {
      if (i === 5) mixed.push(truncated(frames[5]!));
      if (i === 6) mixed.push(garbage());
      if (i === victims.car) mixed.push(badCar(frames[i]!));
      else if (i === victims.cid) mixed.push(cidMismatch(frames[i]!));
      else if (i === victims.huge) mixed.push(huge(frames[i]!));
      else mixed.push(frames[i]!);
    }
    await using relay = await startReplayServer({ frames: mixed });
    const topic = 'malformed';
    const cursorFile = join(dir, 'malformed.json');
    const bridge = await startBridge(['--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--relay-host', relay.url, '--cursor-file', cursorFile, '--cursor-save-interval', '50ms']);
    await waitFor('end of stream', async () => (await readCursor(cursorFile)) === LAST);
    const metrics = await bridge.metrics();
    bridge.child.kill('SIGTERM');
    assert.equal(await bridge.exited, 0, bridge.logs());

    assert.equal(metricValue(metrics, 'atkafka_invalid_input', { reason: 'invalid-frame' }), 2, 'truncated + garbage');
    assert.equal(metricValue(metrics, 'atkafka_invalid_input', { reason: 'frame-too-large' }), 1);
    const opsOf = (i: number) => expected.filter((m) => m.seq === seqOf(frames[i]!));
    assert.equal(metricValue(metrics, 'atkafka_invalid_input', { reason: 'invalid-car' }), opsOf(victims.car).length);
    assert.equal(metricValue(metrics, 'atkafka_invalid_input', { reason: 'cid-mismatch' }), 1);
    // Every skip is logged with what it was.
    const warnings = bridge.logs().split('\n').filter((l) => l.includes('skipping invalid input'));
    assert.equal(warnings.length, 2 + 1 + opsOf(victims.car).length + 1);
    assert.ok(warnings.some((l) => l.includes(`"seq":${seqOf(frames[victims.cid]!)}`) && l.includes('"did":"did:')));

    const skippedSeqs = new Set([seqOf(frames[victims.car]!), seqOf(frames[victims.huge]!)]);
    const got = (await readTopic(broker.bootstrap, topic)).map((m) => m.value);
    const want = expected.filter((m) => !skippedSeqs.has(m.seq)).map((m) => m.value);
    // The CID-mismatch commit has one record op; only that op is gone.
    const cidVictim = opsOf(victims.cid);
    assert.equal(cidVictim.length, 1);
    assert.deepEqual(got.sort(), want.filter((v) => v !== cidVictim[0]!.value).sort());
  });
});
