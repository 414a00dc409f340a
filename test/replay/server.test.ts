import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { encode } from '@atcute/cbor';
import { WebSocket } from 'ws';
import { startReplayServer } from '../../src/replay/server.ts';
import { CORPUS_FIRST_SEQ, CORPUS_FRAMES, CORPUS_LAST_SEQ, closeClient, collect, decodeFrame, loadCorpus, seqOf } from './helpers.ts';

const SPAN = CORPUS_LAST_SEQ - CORPUS_FIRST_SEQ + 1;

test('no cursor: all 150 frames in order, byte-identical, then the connection idles open', async () => {
  const file = await loadCorpus();
  await using server = await startReplayServer({ frames: CORPUS_FRAMES });
  assert.match(server.url, /^ws:\/\/127\.0\.0\.1:\d+$/);
  const got = await collect(server.subscribeUrl, { quietMs: 400 });
  assert.equal(got.closeCode, undefined, 'server must not close at end of file');
  assert.equal(got.ws.readyState, WebSocket.OPEN);
  assert.equal(got.frames.length, 150);
  got.frames.forEach((frame, i) => assert.deepEqual(frame, Buffer.from(file.frames[i]?.bytes ?? [])));
  assert.equal(server.stats.framesSent, 150);
  assert.equal(server.stats.bytesSent, file.totalBytes);
  assert.equal(server.stats.connections, 1);
  await closeClient(got.ws);
});

test('cursor mid-file: exactly the frames with seq > cursor', async () => {
  const file = await loadCorpus();
  await using server = await startReplayServer({ frames: file });
  const cursor = CORPUS_FIRST_SEQ + 78;
  const got = await collect(`${server.subscribeUrl}?cursor=${cursor}`);
  const expected = file.frames.filter((f) => (f.seq ?? 0) > cursor).map((f) => Buffer.from(f.bytes));
  assert.equal(got.frames.length, 71);
  assert.deepEqual(got.frames, expected);
  assert.equal(seqOf(got.frames[0] ?? new Uint8Array()), cursor + 1);
  await closeClient(got.ws);

  const atEnd = await collect(`${server.subscribeUrl}?cursor=${CORPUS_LAST_SEQ}`);
  assert.equal(atEnd.frames.length, 0);
  assert.equal(atEnd.ws.readyState, WebSocket.OPEN, 'caught-up cursor idles like a live relay');
  await closeClient(atEnd.ws);
});

test('cursor past the end: FutureCursor error frame, then close', async () => {
  await using server = await startReplayServer({ frames: await loadCorpus() });
  const got = await collect(`${server.subscribeUrl}?cursor=${CORPUS_LAST_SEQ + 1}`);
  assert.equal(got.frames.length, 1);
  const { header, body } = decodeFrame(got.frames[0] ?? new Uint8Array());
  assert.deepEqual(header, { op: -1 });
  assert.equal(body['error'], 'FutureCursor');
  assert.equal(typeof body['message'], 'string');
  assert.equal(got.closeCode, 1008);
  assert.equal(server.stats.framesSent, 0);
});

test('bad requests are refused at the HTTP layer', async () => {
  await using server = await startReplayServer({ frames: await loadCorpus() });
  await assert.rejects(collect(`${server.subscribeUrl}?cursor=abc`), { statusCode: 400 });
  await assert.rejects(collect(`${server.subscribeUrl}?cursor=-5`), { statusCode: 400 });
  await assert.rejects(collect(`${server.url}/xrpc/com.atproto.sync.subscribeLabels`), { statusCode: 404 });
  const res = await fetch(`${server.subscribeUrl.replace('ws:', 'http:')}`);
  assert.equal(res.status, 426);
});

test('loop + limit: exactly `limit` frames, seqs strictly increasing, canonical CBOR', async () => {
  const file = await loadCorpus();
  await using server = await startReplayServer({ frames: file, loop: true, limit: 1000 });
  const got = await collect(server.subscribeUrl, { quietMs: 400 });
  assert.equal(got.frames.length, 1000);
  assert.equal(got.ws.readyState, WebSocket.OPEN, 'limit reached: idle, not closed');
  got.frames.forEach((frame, i) => {
    const { header, body, bodyBytes } = decodeFrame(frame);
    // The corpus seqs are contiguous, so pass k frame j carries firstSeq + k*span + j.
    assert.equal(body['seq'], CORPUS_FIRST_SEQ + i);
    assert.deepEqual(Buffer.from(encode(body)), Buffer.from(bodyBytes));
    const original = file.frames[i % 150]?.bytes ?? new Uint8Array();
    assert.deepEqual(header, decodeFrame(original).header);
    assert.deepEqual(frame.subarray(0, frame.length - bodyBytes.byteLength), Buffer.from(original.subarray(0, frame.length - bodyBytes.byteLength)));
  });
  assert.equal(server.stats.framesSent, 1000);
  await closeClient(got.ws);
});

test('loop + cursor many passes in resumes at the right seq', async () => {
  await using server = await startReplayServer({ frames: await loadCorpus(), loop: true, limit: 300 });
  const cursor = CORPUS_FIRST_SEQ + 5_000 * SPAN + 149;
  const got = await collect(`${server.subscribeUrl}?cursor=${cursor}`);
  assert.equal(got.frames.length, 300);
  got.frames.forEach((frame, i) => assert.equal(seqOf(frame), cursor + 1 + i));
  await closeClient(got.ws);
});

test('rate: 200 events at 1000/s take about 200 ms', async () => {
  await using server = await startReplayServer({ frames: await loadCorpus(), loop: true, rate: 1000, limit: 200 });
  const started = performance.now();
  const got = await collect(server.subscribeUrl, { count: 200 });
  const elapsed = performance.now() - started;
  assert.equal(got.frames.length, 200);
  assert.ok(elapsed >= 150, `took only ${elapsed.toFixed(0)} ms`);
  assert.ok(elapsed < 1500, `took ${elapsed.toFixed(0)} ms`);
  await closeClient(got.ws);
});

test('a reader that stops reading throttles the server instead of growing its buffers', async () => {
  const highWaterMark = 1024 * 1024;
  await using server = await startReplayServer({ frames: await loadCorpus(), loop: true, highWaterMark });
  const ws = new WebSocket(server.subscribeUrl);
  let received = 0;
  let lastSeq = 0;
  ws.on('message', (data: Buffer) => {
    received++;
    const seq = seqOf(data);
    assert.ok(seq > lastSeq);
    lastSeq = seq;
  });
  await new Promise((resolve) => ws.once('open', resolve));
  ws.pause();
  await sleep(500);
  const stalledAt = server.stats.bytesSent;
  await sleep(500);
  // Unthrottled, loop mode pushes hundreds of MB/s; what is sent but unread can only sit in kernel
  // buffers plus our high-water mark, and once those fill nothing more is sent.
  assert.ok(server.stats.bytesSent < 64 * 1024 * 1024, `sent ${server.stats.bytesSent} bytes to a stalled reader`);
  assert.ok(server.stats.bytesSent - stalledAt < 2 * highWaterMark, `kept sending: ${server.stats.bytesSent - stalledAt} bytes`);

  const framesAtStall = server.stats.framesSent;
  ws.resume();
  // Everything queued during the stall arrives, and then fresh frames beyond it: nothing lost, stream resumed.
  const deadline = performance.now() + 5000;
  while (received <= framesAtStall && performance.now() < deadline) await sleep(20);
  assert.ok(received > framesAtStall, `received ${received}, ${framesAtStall} were sent during the stall`);
  await closeClient(ws);
});

test('clients get independent streams; a disconnect mid-stream leaves the server serving', async () => {
  const file = await loadCorpus();
  await using server = await startReplayServer({ frames: file, rate: 2000, loop: true });
  const quitter = new WebSocket(server.subscribeUrl);
  await new Promise((resolve) => quitter.once('message', resolve));
  quitter.terminate();

  const [a, b] = await Promise.all([
    collect(server.subscribeUrl, { count: 100 }),
    collect(`${server.subscribeUrl}?cursor=${CORPUS_FIRST_SEQ + 99}`, { count: 100 }),
  ]);
  assert.deepEqual(a.frames.map(seqOf), Array.from({ length: 100 }, (_, i) => CORPUS_FIRST_SEQ + i));
  assert.deepEqual(b.frames.map(seqOf), Array.from({ length: 100 }, (_, i) => CORPUS_FIRST_SEQ + 100 + i));
  assert.equal(server.stats.connectionsTotal, 3);
  assert.equal(server.stats.connections, 2);
  await Promise.all([closeClient(a.ws), closeClient(b.ws)]);
  await sleep(50);
  assert.equal(server.stats.connections, 0);
});

test('in-memory frames are served as given, malformed ones included', async () => {
  const file = await loadCorpus();
  const good = file.frames[0]?.bytes ?? new Uint8Array();
  const garbage = new Uint8Array([0xff, 0xfe, 0x00]);
  const frames = [garbage, good, new Uint8Array(0), good];
  await using server = await startReplayServer({ frames, loop: true, limit: 8 });
  const got = await collect(server.subscribeUrl);
  assert.equal(got.frames.length, 8);
  assert.deepEqual(got.frames.slice(0, 4), frames.map((f) => Buffer.from(f)));
  assert.deepEqual(got.frames[4], Buffer.from(garbage), 'malformed frames repeat unchanged each pass');
  await closeClient(got.ws);
});

test('close() ends open connections with 1001 and resolves', async () => {
  const server = await startReplayServer({ frames: await loadCorpus() });
  const ws = new WebSocket(server.subscribeUrl);
  await new Promise((resolve) => ws.once('open', resolve));
  const closed = new Promise<number>((resolve) => ws.once('close', resolve));
  await server.close();
  assert.equal(await closed, 1001);
  await server.close();
});
