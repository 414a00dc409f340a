// The checkpoint rule with a sink that confirms late, out of order, and sometimes not at all for a
// while: the saved cursor must never pass an event whose messages are not all confirmed.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { pino } from 'pino';

import type { Ticket } from '../../src/checkpoint/watermark.ts';
import { RelayPipeline } from '../../src/sources/relay/pipeline.ts';
import { startReplayServer } from '../../src/replay/index.ts';
import type { MessageSink } from '../../src/sink/kafka/types.ts';
import { corpusFrames, expectedMessages, lastSeq } from '../support/corpus.ts';
import { prng } from '../support/prng.ts';

class ShuffledSink implements MessageSink<Ticket | null> {
  readonly held: (Ticket | null)[] = [];
  /** seqs of every confirmed message, in confirmation order */
  readonly confirmedSeqs: number[] = [];
  peakInFlight = 0;
  #handler: (t: Ticket | null) => void = () => {};
  #timer: NodeJS.Timeout;

  constructor(random: () => number) {
    // Every 3 ms confirm a random subset of what is held, in random order.
    this.#timer = setInterval(() => {
      const n = Math.floor(random() * (this.held.length + 1));
      for (let i = 0; i < n; i++) {
        const idx = Math.floor(random() * this.held.length);
        const [token] = this.held.splice(idx, 1);
        if (token) this.confirmedSeqs.push(token.position);
        this.#handler(token ?? null);
      }
    }, 3);
  }
  onConfirmed(handler: (t: Ticket | null) => void): void {
    this.#handler = handler;
  }
  send(_key: string, _value: string | Uint8Array, token: Ticket | null): void {
    this.held.push(token);
    this.peakInFlight = Math.max(this.peakInFlight, this.held.length);
  }
  get inFlight(): number {
    return this.held.length;
  }
  get inFlightBytes(): number {
    return 0;
  }
  async flush(): Promise<void> {
    while (this.held.length > 0) await new Promise((r) => setTimeout(r, 5));
  }
  async close(): Promise<void> {
    clearInterval(this.#timer);
  }
}

describe('relay pipeline checkpoint', () => {
  for (const [seed, decodeThreads] of [[1, 0], [2, 0], [3, 1], [4, 2]] as const) {
    it(`never saves a cursor past an unconfirmed event (seed ${seed}, ${decodeThreads} decode threads)`, async () => {
      const frames = corpusFrames();
      const expected = expectedMessages(frames);
      const dir = await mkdtemp(join(tmpdir(), 'atkafka-wm-'));
      const cursorFile = join(dir, 'cursor.json');
      await using relay = await startReplayServer({ frames, rate: 300 });
      const sink = new ShuffledSink(prng(seed));
      const maxInFlight = 8;
      const pipeline = new RelayPipeline({
        relayHost: relay.url,
        cursorFile,
        initialCursor: undefined,
        cursorSaveIntervalMs: 10,
        maxInFlight,
        maxInFlightBytes: 1 << 30,
        maxFrameBytes: 16 << 20,
        decodeThreads,
        stallTimeoutMs: 0,
        backoffInitialMs: 100,
        backoffMaxMs: 1000,
        userAgent: 'test',
        sink,
        logger: pino({ level: 'silent' }),
      });
      const abort = new AbortController();
      const running = pipeline.run(abort.signal);

      const violations: string[] = [];
      let reads = 0;
      let last = -1;
      while (last !== lastSeq(frames)) {
        const text = await readFile(cursorFile, 'utf8').catch(() => undefined);
        if (text !== undefined) {
          const seq = (JSON.parse(text) as { seq: number }).seq;
          reads++;
          const confirmed = new Set(sink.confirmedSeqs);
          for (const m of expected) {
            if (m.seq <= seq && !confirmed.has(m.seq)) violations.push(`cursor ${seq} saved before seq ${m.seq} was confirmed`);
          }
          assert.ok(seq >= last, 'the cursor never moves back');
          last = seq;
        }
        await new Promise((r) => setTimeout(r, 4));
      }
      abort.abort();
      await running;
      await sink.close();
      await rm(dir, { recursive: true, force: true });

      assert.deepEqual(violations, []);
      assert.ok(reads > 10, `observed the cursor move (${reads} reads)`);
      assert.equal(sink.confirmedSeqs.length, expected.length, 'every message confirmed exactly once');
      // Decoded messages are handed to the sink only while it has room: the cap holds exactly,
      // whatever the frames fan out into (docs/invariants.md, rule 4).
      assert.ok(sink.peakInFlight <= maxInFlight, `peak in flight ${sink.peakInFlight} > ${maxInFlight}`);
    });
  }
});
