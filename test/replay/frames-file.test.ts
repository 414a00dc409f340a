import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { encode } from '@atcute/cbor';
import { frameSeq, indexFrames, readFramesFile, splitLengthPrefixed } from '../../src/replay/frames-file.ts';
import { CORPUS_FIRST_SEQ, CORPUS_LAST_SEQ, decodeFrame, loadCorpus } from './helpers.ts';

function lengthPrefixed(frames: Uint8Array[]): Buffer {
  return Buffer.concat(frames.flatMap((f) => {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(f.byteLength);
    return [len, f];
  }));
}

function messageFrame(t: string, body: Record<string, unknown>): Uint8Array {
  return Buffer.concat([encode({ op: 1, t }), encode(body)]);
}

test('reads the zstd corpus: 150 frames with ascending seqs', async () => {
  const file = await loadCorpus();
  assert.equal(file.frames.length, 150);
  assert.equal(file.firstSeq, CORPUS_FIRST_SEQ);
  assert.equal(file.lastSeq, CORPUS_LAST_SEQ);
  assert.equal(file.seqsAscending, true);
  const kinds = new Map<string, number>();
  file.frames.forEach((frame, i) => {
    assert.equal(frame.seq, CORPUS_FIRST_SEQ + i);
    const t = String(decodeFrame(frame.bytes).header['t']);
    kinds.set(t, (kinds.get(t) ?? 0) + 1);
  });
  assert.deepEqual(Object.fromEntries(kinds), { '#commit': 148, '#identity': 1, '#account': 1 });
});

test('a plain (uncompressed) frames file gives the same frames', async () => {
  const file = await loadCorpus();
  const dir = await mkdtemp(join(tmpdir(), 'replay-frames-'));
  try {
    const path = join(dir, 'frames.bin');
    await writeFile(path, lengthPrefixed(file.frames.map((f) => f.bytes)));
    const plain = await readFramesFile(path);
    assert.equal(plain.frames.length, 150);
    plain.frames.forEach((frame, i) => assert.deepEqual(frame, file.frames[i]));
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('a truncated file is rejected rather than silently dropping a frame', () => {
  const whole = lengthPrefixed([new Uint8Array([1, 2, 3]), new Uint8Array([4, 5])]);
  assert.equal(splitLengthPrefixed(whole).length, 2);
  assert.throws(() => splitLengthPrefixed(whole.subarray(0, whole.length - 1)), /truncated/);
  assert.throws(() => splitLengthPrefixed(whole.subarray(0, 9)), /truncated/);
});

test('frames without a seq keep their place: #info, error frames, garbage', () => {
  const info = messageFrame('#info', { name: 'OutdatedCursor' });
  const error = Buffer.concat([encode({ op: -1 }), encode({ error: 'FutureCursor' })]);
  const garbage = new Uint8Array([0xff, 0x00, 0x13]);
  const commit = messageFrame('#commit', { seq: 7, repo: 'did:plc:x' });
  const file = indexFrames([info, commit, error, garbage]);
  assert.deepEqual(file.frames.map((f) => f.seq), [undefined, 7, undefined, undefined]);
  assert.equal(file.firstSeq, 7);
  assert.equal(file.lastSeq, 7);
  assert.equal(frameSeq(messageFrame('#commit', { seq: -1 })), undefined);
});

test('out-of-order seqs are noted so cursor lookup does not binary-search them', () => {
  const file = indexFrames([5, 9, 7].map((seq) => messageFrame('#commit', { seq })));
  assert.equal(file.seqsAscending, false);
  assert.equal(file.firstSeq, 5);
  assert.equal(file.lastSeq, 9);
});
