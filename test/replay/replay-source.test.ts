import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode } from '@atcute/cbor';
import { indexFrames } from '../../src/replay/frames-file.ts';
import { createReplaySource } from '../../src/replay/replay-source.ts';
import { CORPUS_FIRST_SEQ, CORPUS_LAST_SEQ, loadCorpus, seqOf } from './helpers.ts';

const SPAN = CORPUS_LAST_SEQ - CORPUS_FIRST_SEQ + 1;

test('start positions without loop', async () => {
  const source = createReplaySource(await loadCorpus(), false);
  assert.deepEqual(source.planStart(undefined), { kind: 'start', position: { loop: 0, index: 0 } });
  assert.deepEqual(source.planStart(0), { kind: 'start', position: { loop: 0, index: 0 } });
  assert.deepEqual(source.planStart(CORPUS_FIRST_SEQ), { kind: 'start', position: { loop: 0, index: 1 } });
  assert.deepEqual(source.planStart(CORPUS_LAST_SEQ), { kind: 'start', position: { loop: 0, index: 150 } });
  assert.deepEqual(source.planStart(CORPUS_LAST_SEQ + 1), { kind: 'future-cursor', lastSeq: CORPUS_LAST_SEQ });
});

test('loop start is computed directly, however many passes in', async () => {
  const source = createReplaySource(await loadCorpus(), true);
  assert.equal(source.span, SPAN);
  assert.deepEqual(source.planStart(CORPUS_LAST_SEQ + 1), { kind: 'start', position: { loop: 1, index: 1 } });
  assert.deepEqual(source.planStart(CORPUS_LAST_SEQ), { kind: 'start', position: { loop: 1, index: 0 } });
  const cursor = CORPUS_FIRST_SEQ + 1_000_000 * SPAN + 41;
  assert.deepEqual(source.planStart(cursor), { kind: 'start', position: { loop: 1_000_000, index: 42 } });
  const it = source.open({ loop: 1_000_000, index: 42 });
  assert.equal(seqOf(it.next() ?? new Uint8Array()), cursor + 1);
});

test('loop iteration keeps seqs increasing across the wrap', async () => {
  const source = createReplaySource(await loadCorpus(), true);
  const it = source.open({ loop: 0, index: 148 });
  const seqs = Array.from({ length: 5 }, () => seqOf(it.next() ?? new Uint8Array()));
  assert.deepEqual(seqs, [CORPUS_LAST_SEQ - 1, CORPUS_LAST_SEQ, CORPUS_LAST_SEQ + 1, CORPUS_LAST_SEQ + 2, CORPUS_LAST_SEQ + 3]);
});

test('a finite replay ends; an empty loop does not spin', async () => {
  const once = createReplaySource(await loadCorpus(), false).open({ loop: 0, index: 149 });
  assert.ok(once.next());
  assert.equal(once.next(), undefined);
  assert.equal(once.next(), undefined);
  assert.equal(createReplaySource(indexFrames([]), true).open({ loop: 0, index: 0 }).next(), undefined);
});

test('seqless frames sit where they were: sent after the last seq the client has seen', () => {
  const commit = (seq: number) => Buffer.concat([encode({ op: 1, t: '#commit' }), encode({ seq })]);
  const info = Buffer.concat([encode({ op: 1, t: '#info' }), encode({ name: 'OutdatedCursor' })]);
  const source = createReplaySource(indexFrames([commit(10), info, commit(11), commit(12)]), false);
  assert.deepEqual(source.planStart(10), { kind: 'start', position: { loop: 0, index: 1 } });
  assert.deepEqual(source.planStart(11), { kind: 'start', position: { loop: 0, index: 3 } });
  assert.deepEqual(source.planStart(9), { kind: 'start', position: { loop: 0, index: 0 } });
});
