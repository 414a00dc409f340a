// Hostile relay input, each case a defect found by adversarial testing: the bridge must neither die,
// nor wedge, nor exit quietly, nor grow without bound. Real CLI, real broker.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';

import { WebSocketServer, type WebSocket } from 'ws';

import { decodeFrame, type CommitEvent } from '../../src/atproto/frame.ts';
import { MAX_RECORD_DEPTH } from '../../src/atproto/commit-ops.ts';
import { startReplayServer } from '../../src/replay/index.ts';
import { metricValue, readCursor, startBridge, waitFor } from '../support/bridge.ts';
import { corpusFrames, expectedMessages, lastSeq } from '../support/corpus.ts';
import { commitWith, deepRecord, seqOf, withSeq } from '../support/hostile-frames.ts';
import { readTopic } from '../support/kafka-read.ts';
import { startTestBroker, type TestBroker } from '../support/kafka-broker.ts';

const frames = corpusFrames();
const expected = expectedMessages(frames);
const LAST = lastSeq(frames);
const commitIndexes = frames.map((f, i) => ({ f, i })).filter(({ f }) => decodeFrame(f).kind === 'commit').map(({ i }) => i);
const smallRecord = Buffer.from([0xa1, 0x65, ...Buffer.from('$type'), 0x65, ...Buffer.from('x.y.z')]);

describe('relay hostile input', () => {
  let broker: TestBroker;
  let dir: string;
  before(async () => {
    broker = await startTestBroker();
    dir = await mkdtemp(join(tmpdir(), 'atkafka-hostile-'));
  });
  after(async () => {
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  for (const threads of ['0', '1']) {
    it(`a record nested thousands deep is skipped as invalid and the stream goes on (--decode-threads ${threads})`, async () => {
      const victim = commitIndexes[4]!;
      const evt = decodeFrame(frames[victim]!) as CommitEvent;
      const hostile = await commitWith(frames[victim]!, {
        ops: [
          { action: 'create', path: 'x.y.z/deep', record: deepRecord(20_000) },
          { action: 'create', path: 'x.y.z/limit', record: deepRecord(MAX_RECORD_DEPTH) },
          { action: 'create', path: 'x.y.z/over', record: deepRecord(MAX_RECORD_DEPTH + 1) },
          { action: 'create', path: 'x.y.z/fine', record: smallRecord },
        ],
      });
      const stream = frames.map((f, i) => (i === victim ? hostile : f));
      await using relay = await startReplayServer({ frames: stream });
      const topic = `deep-${threads}`;
      const cursorFile = join(dir, `deep-${threads}.json`);
      const bridge = await startBridge(['--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--relay-host', relay.url, '--cursor-file', cursorFile, '--cursor-save-interval', '50ms', '--decode-threads', threads]);
      await waitFor('end of stream', async () => (await readCursor(cursorFile)) === LAST || (bridge.child.exitCode !== null && 'exited'));
      assert.equal(bridge.child.exitCode, null, `the bridge died: ${bridge.logs().slice(-2000)}`);
      const metrics = await bridge.metrics();
      bridge.child.kill('SIGTERM');
      assert.equal(await bridge.exited, 0, bridge.logs());

      assert.equal(metricValue(metrics, 'atkafka_invalid_input', { reason: 'invalid-record' }), 2, 'the 20,000-deep and the one-too-deep records');
      const skips = bridge.logs().split('\n').filter((l) => l.includes('skipping invalid input'));
      assert.equal(skips.length, 2);
      for (const l of skips) assert.ok(l.includes(`"seq":${evt.seq}`) && l.includes(`"did":"${evt.repo}"`), l);
      const got = (await readTopic(broker.bootstrap, topic)).map((m) => JSON.parse(m.value) as { operation?: { path: string } });
      const paths = got.filter((m) => m.operation?.path.startsWith('x.y.z/')).map((m) => m.operation!.path).sort();
      assert.deepEqual(paths, ['x.y.z/fine', 'x.y.z/limit']);
      const others = expected.filter((m) => m.seq !== evt.seq).length;
      assert.equal(got.length, others + 2, 'every other event of the stream');
    });
  }

  for (const threads of ['0', '1']) {
    it(`FutureCursor then close: exits 1 with the reason, every time (--decode-threads ${threads})`, async () => {
      await using relay = await startReplayServer({ frames });
      for (let round = 0; round < 3; round++) {
        const cursorFile = join(dir, `future-${threads}-${round}.json`);
        await writeFile(cursorFile, JSON.stringify({ seq: LAST + 1000, relayHost: relay.url, savedAt: new Date().toISOString() }));
        const bridge = await startBridge(['--bootstrap-servers', broker.bootstrap, '--output-topic', 'future', '--relay-host', relay.url, '--cursor-file', cursorFile, '--decode-threads', threads]);
        const code = await Promise.race([bridge.exited, sleep(30_000).then(() => 'still running')]);
        if (code === 'still running') bridge.child.kill('SIGKILL');
        assert.equal(code, 1, bridge.logs().slice(-2000));
        const lastLine = bridge.logs().trimEnd().split('\n').at(-1)!;
        assert.match(lastLine, /^atkafka: relay says FutureCursor: cursor \d+ is ahead of its stream/);
        assert.equal(await readCursor(cursorFile), LAST + 1000, 'the cursor is left alone');
      }
    });
  }

  it('one far-future seq mid-stream: every event is still delivered and the cursor is not poisoned', async () => {
    const victim = commitIndexes[10]!;
    const bogus = seqOf(frames[victim]!)! + 1_000_000_000;
    const stream = frames.map((f, i) => (i === victim ? withSeq(f, bogus) : f));
    await using relay = await startReplayServer({ frames: stream });
    const topic = 'far-future';
    const cursorFile = join(dir, 'far-future.json');
    const bridge = await startBridge(['--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--relay-host', relay.url, '--cursor-file', cursorFile, '--cursor-save-interval', '50ms']);
    await waitFor('end of stream', async () => (await readCursor(cursorFile)) === LAST, 30_000);
    const metrics = await bridge.metrics();
    bridge.child.kill('SIGTERM');
    assert.equal(await bridge.exited, 0, bridge.logs());
    assert.equal(await readCursor(cursorFile), LAST);

    const got = (await readTopic(broker.bootstrap, topic)).map((m) => m.value);
    assert.deepEqual(got.sort(), expected.map((m) => m.value).sort(), 'every event, the bogus-seq one included, once');
    assert.equal(metricValue(metrics, 'atkafka_relay_seq_anomalies', { kind: 'jump' }), 1);
    assert.equal(metricValue(metrics, 'atkafka_relay_seq_anomalies', { kind: 'outlier' }), 1);
    assert.equal(metricValue(metrics, 'atkafka_relay_duplicate_events'), 0);
    const errors = bridge.logs().split('\n').filter((l) => l.includes('"level":50'));
    assert.ok(errors.some((l) => l.includes('SEQ JUMPED') && l.includes(String(bogus))), 'the jump is logged at error level');
    assert.ok(errors.some((l) => l.includes('BOGUS SEQ')), 'and so is the verdict');
  });

  it('a real jump far ahead (the stream goes on after it) and a seq going backwards: everything delivered, the cursor follows the relay', async () => {
    const jumpAt = commitIndexes[10]!;
    const swapAt = commitIndexes[3]!;
    const JUMP = 5_000_000;
    const seqs = frames.map((f) => seqOf(f));
    // Frames from jumpAt on are renumbered +JUMP; two frames early on swap places (their seqs go backwards).
    const stream = frames.map((f, i) => (i >= jumpAt && seqs[i] !== undefined ? withSeq(f, seqs[i]! + JUMP) : f));
    [stream[swapAt], stream[swapAt + 1]] = [stream[swapAt + 1]!, stream[swapAt]!];
    const last = Math.max(...stream.map((f) => seqOf(f) ?? -1));
    await using relay = await startReplayServer({ frames: stream });
    const topic = 'real-jump';
    const cursorFile = join(dir, 'real-jump.json');
    const bridge = await startBridge(['--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--relay-host', relay.url, '--cursor-file', cursorFile, '--cursor-save-interval', '50ms']);
    await waitFor('end of stream', async () => (await readCursor(cursorFile)) === last, 30_000);
    const metrics = await bridge.metrics();
    bridge.child.kill('SIGTERM');
    assert.equal(await bridge.exited, 0, bridge.logs());
    const got = (await readTopic(broker.bootstrap, topic)).map((m) => (JSON.parse(m.value) as { operation?: { cid: string; path: string } }).operation);
    const want = expected.map((m) => (JSON.parse(m.value) as { operation?: { cid: string; path: string } }).operation);
    const key = (o: { cid: string; path: string } | undefined) => (o ? `${o.path} ${o.cid}` : 'other');
    assert.deepEqual(got.map(key).sort(), want.map(key).sort(), 'every event once');
    assert.equal(metricValue(metrics, 'atkafka_relay_seq_anomalies', { kind: 'jump' }), 1);
    assert.equal(metricValue(metrics, 'atkafka_relay_seq_anomalies', { kind: 'outlier' }), 0, 'the jump was confirmed by the next event');
    assert.equal(metricValue(metrics, 'atkafka_relay_seq_anomalies', { kind: 'backwards' }), 1);
    assert.equal(metricValue(metrics, 'atkafka_relay_duplicate_events'), 0);
  });

  for (const order of ['large records first', 'dense commits first'] as const) it(`op-dense frames while Kafka is down (${order}): in flight stays within the caps and memory stays bounded`, async (t) => {
    if (!broker.canRestart) return t.skip('needs a local broker it can stop (KAFKA_BOOTSTRAP_SERVERS is set)');
    // 20 commits of 200 creates that all point at one 20 kB record, then 40 commits of 5,000 deletes
    // (a relay caps commits at 200 ops; a hostile one need not): 4,000 large and 200k small messages.
    const base = frames[commitIndexes[0]!]!;
    const first = LAST + 1;
    const big = Buffer.concat([Buffer.from([0xa2, 0x61, 0x62, 0x59, 0x4e, 0x20]), Buffer.alloc(20_000, 7), Buffer.from([0x65, ...Buffer.from('$type'), 0x65, ...Buffer.from('x.y.z')])]);
    const large: Uint8Array[] = [];
    const dense: Uint8Array[] = [];
    for (let i = 0; i < 20; i++) {
      large.push(await commitWith(base, { ops: Array.from({ length: 200 }, (_, k) => ({ action: 'create' as const, path: `x.y.z/big-${i}-${k}`, record: big })) }));
    }
    for (let i = 0; i < 40; i++) {
      dense.push(await commitWith(base, { ops: Array.from({ length: 5000 }, (_, k) => ({ action: 'delete' as const, path: `x.y.z/${i}-${k}` })) }));
    }
    // Whichever comes first decides which cap binds: bytes for large records, messages for dense commits.
    const hostile = (order === 'large records first' ? [...large, ...dense] : [...dense, ...large]).map((f, i) => withSeq(f, first + i));
    const total = 40 * 5000 + 20 * 200;

    // A relay we can hold back: frames go out only once Kafka is down.
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((r) => wss.once('listening', r));
    const sockets: WebSocket[] = [];
    wss.on('connection', (ws) => sockets.push(ws));
    const url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}`;
    const topic = order === 'large records first' ? 'dense-large' : 'dense-small';
    const cursorFile = join(dir, `${topic}.json`);
    await writeFile(cursorFile, JSON.stringify({ seq: LAST, relayHost: url, savedAt: new Date().toISOString() }));
    const bridge = await startBridge(['--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--relay-host', url, '--cursor-file', cursorFile, '--cursor-save-interval', '100ms']);
    try {
      await waitFor('the bridge connected', async () => sockets.length > 0 && (await bridge.metrics()).includes('atkafka_relay_connected 1'));
      await broker.halt('SIGKILL');
      for (const f of hostile) sockets[0]!.send(f);
      let peakInFlight = 0;
      let peakBytes = 0;
      let peakRss = 0;
      for (let i = 0; i < 16; i++) {
        await sleep(500);
        const m = await bridge.metrics();
        peakInFlight = Math.max(peakInFlight, metricValue(m, 'atkafka_kafka_in_flight'));
        peakBytes = Math.max(peakBytes, metricValue(m, 'atkafka_kafka_in_flight_bytes'));
        peakRss = Math.max(peakRss, metricValue(m, 'atkafka_process_process_resident_memory_bytes'));
      }
      t.diagnostic(`peaks while Kafka was down: ${peakInFlight} messages, ${peakBytes} bytes in flight, RSS ${Math.round(peakRss / 1048576)} MB`);
      assert.ok(peakInFlight > 0 && peakInFlight <= 10_000, `messages in flight ${peakInFlight}, cap 10000`);
      if (order === 'dense commits first') assert.equal(peakInFlight, 10_000, 'the message cap is what binds');
      else assert.ok(peakBytes >= 32 * 1024 * 1024, 'the byte cap is what binds');
      // The cap is checked before each message, so the last one may pass it by its own size.
      const largestMessage = Math.ceil((big.length * 4) / 3) + 1024;
      assert.ok(peakBytes <= 32 * 1024 * 1024 + largestMessage, `bytes in flight ${peakBytes}, cap 32 MiB`);
      // The README's figure for the default caps (docs/invariants.md, rule 4).
      assert.ok(peakRss < 300 * 1024 * 1024, `RSS ${Math.round(peakRss / 1048576)} MB while Kafka was down`);
      await broker.resume();
      await waitFor('every hostile event delivered', async () => (await readCursor(cursorFile)) === first + 59, 120_000);
      bridge.child.kill('SIGTERM');
      assert.equal(await bridge.exited, 0, bridge.logs().slice(-2000));
      const got = await readTopic(broker.bootstrap, topic);
      assert.ok(got.length >= total, `${got.length} of ${total} messages`);
      assert.equal(new Set(got.map((m) => (JSON.parse(m.value) as { operation: { path: string } }).operation.path)).size, total);
    } finally {
      bridge.child.kill('SIGKILL');
      for (const ws of sockets) ws.terminate();
      wss.close();
    }
  });

  it('a frame above --max-frame-size: an error line and a metric on each try, with backoff, not a silent loop', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((r) => wss.once('listening', r));
    let connections = 0;
    wss.on('connection', (ws) => {
      connections++;
      // A good frame first (so the connection counts as one that made progress), then the
      // header of a binary frame announcing 100 MB; ws refuses it from the length alone.
      const header = Buffer.from([0x82, 127, 0, 0, 0, 0, 0, 0, 0, 0]);
      header.writeUInt32BE(100_000_000, 6);
      ws.send(frames[0]!, () => (ws as unknown as { _socket: { write(b: Buffer): void } })._socket.write(header));
    });
    const url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}`;
    const bridge = await startBridge(['--bootstrap-servers', broker.bootstrap, '--output-topic', 'oversize', '--relay-host', url, '--cursor-file', '', '--reconnect-backoff', '100ms', '--reconnect-backoff-max', '5s']);
    try {
      await sleep(4_000);
      const metrics = await bridge.metrics();
      assert.ok(metricValue(metrics, 'atkafka_relay_oversize_frames') >= 2, 'counted on each try');
      assert.equal(metricValue(metrics, 'atkafka_relay_oversize_frames'), metricValue(metrics, 'atkafka_relay_reconnects', { reason: 'frame-too-large' }));
      // 100, 200, 400, 800, 1600 ms...: a handful of tries in 4 s, not one every few ms.
      assert.ok(connections >= 2 && connections <= 7, `${connections} connections in 4 s`);
      const errors = bridge.logs().split('\n').filter((l) => l.includes('"level":50') && l.includes('LARGER THAN --max-frame-size'));
      assert.equal(errors.length, metricValue(metrics, 'atkafka_relay_oversize_frames'));
    } finally {
      bridge.child.kill('SIGTERM');
      await bridge.exited;
      wss.close();
    }
  });
});
