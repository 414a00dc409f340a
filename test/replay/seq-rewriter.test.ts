import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode } from '@atcute/cbor';
import { indexFrames } from '../../src/replay/frames-file.ts';
import { createSeqRewriter, rewriteFrameSeq } from '../../src/replay/seq-rewriter.ts';
import { decodeFrame, loadCorpus } from './helpers.ts';

test('the cached rewrite equals a full decode/set/re-encode for every corpus frame', async () => {
  const file = await loadCorpus();
  const rewriter = createSeqRewriter(file.frames);
  const span = 150;
  for (const k of [1, 2, 1000, 123_456_789]) {
    file.frames.forEach((frame, i) => {
      const seq = (frame.seq ?? 0) + k * span;
      const fast = rewriter.bytesWithSeq(i, seq);
      assert.deepEqual(Buffer.from(fast), Buffer.from(rewriteFrameSeq(frame.bytes, seq)), `frame ${i}, loop ${k}`);
      const { header, body, bodyBytes } = decodeFrame(fast);
      const original = decodeFrame(frame.bytes);
      assert.deepEqual(header, original.header);
      assert.deepEqual(Buffer.from(fast.subarray(0, fast.byteLength - bodyBytes.byteLength)), Buffer.from(frame.bytes.subarray(0, frame.bytes.byteLength - original.bodyBytes.byteLength)));
      assert.equal(body['seq'], seq);
      assert.deepEqual(Buffer.from(encode(body)), Buffer.from(bodyBytes), 'canonical DAG-CBOR');
      assert.deepEqual({ ...body, seq: original.body['seq'] }, original.body, 'only seq changes');
    });
  }
});

test('rewritten buffers are fresh, so a queued send is never mutated by a later one', async () => {
  const file = await loadCorpus();
  const rewriter = createSeqRewriter(file.frames);
  const seq = file.frames[0]?.seq ?? 0;
  const a = rewriter.bytesWithSeq(0, seq + 150);
  const b = rewriter.bytesWithSeq(0, seq + 300);
  assert.equal(decodeFrame(a).body['seq'], seq + 150);
  assert.equal(decodeFrame(b).body['seq'], seq + 300);
  assert.equal(rewriter.bytesWithSeq(0, seq), file.frames[0]?.bytes, 'unchanged seq returns the original');
});

test('seqs that change encoded width are re-encoded, not patched', () => {
  const frame = Buffer.concat([encode({ op: 1, t: '#commit' }), encode({ seq: 3, repo: 'did:plc:abc', ops: [] })]);
  const file = indexFrames([frame]);
  const rewriter = createSeqRewriter(file.frames);
  for (const seq of [4, 23, 24, 255, 256, 300, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER, 5]) {
    const bytes = rewriter.bytesWithSeq(0, seq);
    assert.deepEqual(Buffer.from(bytes), Buffer.from(rewriteFrameSeq(frame, seq)), `seq ${seq}`);
    assert.equal(decodeFrame(bytes).body['seq'], seq);
  }
});

test('frames without a seq are passed through untouched', () => {
  const garbage = new Uint8Array([0xff, 1, 2]);
  const rewriter = createSeqRewriter(indexFrames([garbage]).frames);
  assert.equal(rewriter.bytesWithSeq(0, 99), garbage);
});
