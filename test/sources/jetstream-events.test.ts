// Jetstream events read by their head (the fast paths) and whole, on the real capture and on hostile input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InputError } from '../../src/atproto/errors.ts';
import { headOf, parseJetstreamEvent, parseJetstreamHead, parseJetstreamHeadFast } from '../../src/sources/jetstream/events.ts';
import { loadCorpusLines } from '../support/jetstream-server.ts';

const lines = loadCorpusLines();

describe('Jetstream events', () => {
  it('the head read from the first bytes, from the text, and from the parsed event agree on every real event', () => {
    for (const line of lines) {
      const whole = headOf(parseJetstreamEvent(line));
      assert.deepEqual(parseJetstreamHead(line), whole);
      assert.deepEqual(parseJetstreamHeadFast(Buffer.from(line)), whole);
      // Without that server's extra "cursor" too (the public wire).
      const publicLine = line.replace(/,"cursor":\d+/, '');
      assert.deepEqual(parseJetstreamHeadFast(Buffer.from(publicLine)), whole);
    }
  });

  it('another field order falls back to the whole event; nonsense is an InputError', () => {
    const e = JSON.parse(lines[0]!) as Record<string, unknown>;
    const reordered = JSON.stringify({ kind: e.kind, commit: e.commit, time_us: e.time_us, did: e.did });
    assert.equal(parseJetstreamHeadFast(Buffer.from(reordered)), undefined);
    assert.deepEqual(parseJetstreamHead(reordered), headOf(parseJetstreamEvent(lines[0]!)));
    for (const bad of ['', 'not json', '[]', '{"did":"x","time_us":1,"kind":"commit"}', '{"did":"did:plc:a","time_us":1,"kind":"other"}', '{"did":"did:plc:a","time_us":-1,"kind":"identity","identity":{"seq":1}}']) {
      assert.throws(() => parseJetstreamHead(bad), InputError, bad);
    }
  });
});
