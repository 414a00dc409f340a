import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { createFrameDecoder, type FrameDecoder } from '../../src/decode/decoder.ts';
import { decodeRelayFrame, type DecodedEvent, type DecodedFrame } from '../../src/decode/relay-frame.ts';
import { badCar, cidMismatch, garbage, huge, truncated } from '../support/bad-frames.ts';
import { corpusFrames, expectedMessages } from '../support/corpus.ts';

/** Values as strings, so results from a thread (bytes) and from the main thread (strings) compare. */
function normalized(frame: DecodedFrame): unknown {
  const text = (v: string | Uint8Array) => (typeof v === 'string' ? v : Buffer.from(v).toString('utf8'));
  if (frame.kind === 'event') return { ...frame, messages: frame.messages.map((m) => ({ ...m, value: text(m.value) })) };
  if (frame.kind === 'info') return { ...frame, value: text(frame.value) };
  return frame;
}

/** The real corpus, repeated to span many batches, with every kind of bad frame mixed in. */
function stream(): Uint8Array[] {
  const corpus = corpusFrames();
  const commit = corpus.find((f) => decodeRelayFrame(f, new Date()).kind === 'event' && f.length < 20_000)!;
  const bad = [badCar(commit), cidMismatch(commit), huge(commit), truncated(commit), garbage()];
  const out: Uint8Array[] = [];
  for (let round = 0; round < 12; round++) {
    for (const f of corpus) out.push(f);
    out.push(bad[round % bad.length]!);
  }
  return out;
}

/** Pulls every piece, merging the pieces of a frame back into the whole frame decodeRelayFrame gives. */
async function decodeAll(threads: number, frames: Uint8Array[]): Promise<{ results: unknown[]; stamps: number[]; decoder: FrameDecoder }> {
  const results: unknown[] = [];
  const stamps: number[] = [];
  let partial: DecodedEvent | undefined;
  const decoder: FrameDecoder = createFrameDecoder({
    threads,
    onReadable: () => {
      for (let piece = decoder.next(); piece !== undefined; piece = decoder.next()) {
        if (piece.kind === 'event' && !(piece.first && piece.last)) {
          if (piece.first) partial = { ...piece, messages: [...piece.messages], skipped: [...piece.skipped] };
          else {
            partial!.messages.push(...piece.messages);
            partial!.skipped.push(...piece.skipped);
          }
          if (!piece.last) continue;
          piece = { ...partial!, last: true };
        }
        results.push(normalized(piece));
        stamps.push(decoder.receivedAt);
      }
    },
    onFatal: (err) => assert.fail(err),
  });
  frames.forEach((f, i) => decoder.push(f, i));
  await decoder.drained();
  return { results, stamps, decoder };
}

describe('frame decoder', () => {
  const frames = stream();
  const inline = frames.map((f) => normalized(decodeRelayFrame(f, new Date(0))));

  it('on the main thread: the corpus\'s messages, and every bad frame skipped with a reason', async () => {
    const corpus = corpusFrames();
    const { results } = await decodeAll(0, frames);
    let messages = 0;
    let badSeen = 0;
    for (let i = 0; i < frames.length; i++) {
      const r = results[i] as DecodedFrame;
      const isBad = (i + 1) % (corpus.length + 1) === 0;
      if (isBad) {
        badSeen++;
        const skipped = r.kind === 'invalid' ? [r.skipped] : r.kind === 'event' ? r.skipped : [];
        assert.ok(skipped.length > 0 && skipped.every((s) => s.reason.length > 0), `bad frame ${i} skipped with a reason`);
      } else if (r.kind === 'event') {
        messages += r.messages.length;
      }
    }
    assert.equal(badSeen, 12);
    assert.equal(messages, 12 * expectedMessages(corpus).length);
  });

  for (const threads of [1, 3]) {
    it(`gives the same results in the same order on ${threads} thread(s), across batches`, async () => {
      const { results, stamps, decoder } = await decodeAll(threads, frames);
      try {
        assert.equal(decoder.pending, 0);
        assert.equal(decoder.pendingBytes, 0);
        assert.deepEqual(stamps, frames.map((_, i) => i), 'each result with its own frame\'s stamp, in push order');
        // #info values carry the time of decoding; there are none in the corpus, so results must be identical.
        assert.deepEqual(results, inline);
      } finally {
        await decoder.close();
      }
    });
  }

  it('counts frames and bytes in flight until they come back', async () => {
    const decoder: FrameDecoder = createFrameDecoder({ threads: 1, onReadable: () => { while (decoder.next() !== undefined); }, onFatal: (err) => assert.fail(err) });
    try {
      const some = frames.slice(0, 10);
      for (const f of some) decoder.push(f, 0);
      assert.equal(decoder.pending, 10);
      assert.equal(decoder.pendingBytes, some.reduce((n, f) => n + f.length, 0));
      await decoder.drained();
      assert.equal(decoder.pending, 0);
      assert.equal(decoder.pendingBytes, 0);
    } finally {
      await decoder.close();
    }
  });
});
