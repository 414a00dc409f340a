// The Jetstream shape from relay frames, against what a real Jetstream server wrote for the same frames
// (test/fixtures/jetstream/events.jsonl.zst: bluesky-social/jetstream read the shared relay capture).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { zstdDecompressSync } from 'node:zlib';

import { decodeRelayFrame, jetstreamFormatter } from '../../src/decode/relay-frame.ts';
import { MicrosClock, recordJson } from '../../src/format/jetstream.ts';
import { corpusFrames } from '../support/corpus.ts';

const JETSTREAM_FILE = new URL('../fixtures/jetstream/events.jsonl.zst', import.meta.url);

/** A line without its `time_us` and that server's extra `cursor` (neither is derived from the frames). */
const withoutClock = (line: string) => line.replace(/,"time_us":\d+/, '').replace(/,"cursor":\d+/, '');

describe('the Jetstream shape', () => {
  it('is, byte for byte apart from time_us, what Jetstream wrote for the relay capture', () => {
    const want = zstdDecompressSync(readFileSync(JETSTREAM_FILE)).toString().trim().split('\n');
    const format = jetstreamFormatter(new MicrosClock());
    const got: string[] = [];
    const at = new Date('2026-07-04T14:38:07Z');
    for (const frame of corpusFrames()) {
      const piece = decodeRelayFrame(frame, at, format);
      assert.equal(piece.kind, 'event');
      if (piece.kind !== 'event') continue;
      assert.deepEqual(piece.skipped, []);
      for (const m of piece.messages) got.push(m.value as string);
    }
    assert.equal(got.length, want.length);
    // That server verified commits in parallel and so sent events of different DIDs in another order than
    // the relay; each DID's events are in relay order in both.
    const byDid = (lines: string[]) => {
      const m = new Map<string, string[]>();
      for (const l of lines.map(withoutClock)) {
        const did = (JSON.parse(l) as { did: string }).did;
        m.set(did, [...(m.get(did) ?? []), l]);
      }
      return m;
    };
    const wantByDid = byDid(want);
    for (const [did, lines] of byDid(got)) assert.deepEqual(lines, wantByDid.get(did), did);
    assert.equal(byDid(got).size, wantByDid.size);
    // time_us: the receive clock, strictly increasing even for events received in the same millisecond.
    const times = got.map((l) => Number(/"time_us":(\d+)/.exec(l)![1]));
    assert.equal(times[0], at.getTime() * 1000);
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! > times[i - 1]!, `time_us ${i} after ${i - 1}`);
    // Go escapes <, > and & in strings; one of the real records has an &.
    assert.ok(got.some((l) => l.includes('\\u0026')));
  });

  it('sorts record keys at every level and writes links and bytes as the data model says', () => {
    assert.equal(recordJson({ text: 'a<b', $type: 'x', nested: { z: 1, a: [{ y: true, b: null }] } }), '{"$type":"x","nested":{"a":[{"b":null,"y":true}],"z":1},"text":"a\\u003cb"}');
  });

  it('hands out unique time_us values across decode threads', () => {
    const clocks = [new MicrosClock(0, 3), new MicrosClock(1, 3), new MicrosClock(2, 3)];
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      for (const [k, c] of clocks.entries()) {
        const t = c.next(1_000_000 + Math.floor(i / 10));
        assert.equal(t % 3, k);
        assert.ok(!seen.has(t));
        seen.add(t);
      }
    }
  });
});
