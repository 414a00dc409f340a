import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { InputError } from '../../src/atproto/errors.ts';
import { parseTapEvent, recordTime, tapEventId, tidTime } from '../../src/sources/tap/events.ts';
import { channelUrl } from '../../src/sources/tap/pipeline.ts';

const lines = readFileSync(new URL('../fixtures/tap/tap-channel-events.jsonl', import.meta.url), 'utf8').trim().split('\n');

describe('Tap events', () => {
  it('parses every message the real Tap sent (records live and backfill, a delete, identity with is_active)', () => {
    const events = lines.map(parseTapEvent);
    assert.deepEqual(
      events.map((e) => e.type),
      lines.map((l) => (JSON.parse(l) as { type: string }).type),
    );
    for (const [i, e] of events.entries()) {
      const raw = JSON.parse(lines[i]!) as { id: number; record?: Record<string, unknown>; identity?: Record<string, unknown> };
      assert.equal(e.id, raw.id);
      if (e.type === 'record') {
        assert.equal(e.live, raw.record!.live);
        assert.equal(e.rev, raw.record!.rev);
        if (e.action === 'delete') {
          assert.equal(e.cid, '');
          assert.equal(e.record, null);
        } else {
          assert.equal(e.cid, raw.record!.cid);
          assert.deepEqual(e.record, raw.record!.record);
        }
      } else if (e.type === 'identity') {
        assert.equal(e.isActive, raw.identity!.is_active, 'is_active on the wire (the Go version read isActive)');
        assert.equal(e.status, raw.identity!.status);
      }
    }
    assert.ok(events.some((e) => e.type === 'identity' && !e.isActive), 'the sample has a deactivation');
  });

  it('refuses what is not a Tap event with a reason, and still finds the id to acknowledge', () => {
    const bad: [string, string][] = [
      ['not json', 'invalid-frame'],
      ['[1,2]', 'invalid-body'],
      ['{"id":7,"type":"record"}', 'invalid-body'],
      ['{"id":7,"type":"record","record":{"did":"nope","collection":"app.bsky.feed.post","rkey":"x","action":"create"}}', 'invalid-body'],
      ['{"id":7,"type":"record","record":{"did":"did:plc:abc","collection":"../etc","rkey":"x","action":"create"}}', 'invalid-body'],
      ['{"id":7,"type":"record","record":{"did":"did:plc:abc","collection":"app.bsky.feed.post","rkey":"x","action":"create"}}', 'invalid-body'],
      ['{"id":7,"type":"record","record":{"did":"did:plc:abc","collection":"app.bsky.feed.post","rkey":"x","action":"create","cid":"bafy","record":[1]}}', 'invalid-record'],
      ['{"id":-1,"type":"identity","identity":{"did":"did:plc:abc"}}', 'invalid-body'],
    ];
    for (const [text, reason] of bad) {
      assert.throws(() => parseTapEvent(text), (err: Error) => err instanceof InputError && err.reason === reason, text);
    }
    assert.equal(tapEventId('{"id":7,"type":"record"}'), 7);
    assert.equal(tapEventId('not json'), undefined);
    assert.deepEqual(parseTapEvent('{"id":9,"type":"user","user":{}}'), { type: 'other', id: 9, name: 'user' });
  });

  it("timestamps as the Go version: the record's createdAt, else the TID in the rkey, else the receive time", () => {
    const received = new Date('2026-12-01T00:00:00.000Z');
    assert.equal(recordTime({ createdAt: '2026-12-01T14:42:15.442Z' }, 'self', received), '2026-12-01T14:42:15.442Z');
    assert.equal(recordTime({ createdAt: '2026-12-01T16:42:15+02:00' }, 'self', received), '2026-12-01T14:42:15.000Z');
    // A real TID from the sample (rkey 3n3mi67755k2z, created at 14:42:15.4 on 2026-12-01).
    const tid = tidTime('3n3mi67755k2z')!;
    assert.ok(Math.abs(tid.getTime() - Date.parse('2026-12-01T14:42:15.442Z')) < 2000, tid.toISOString());
    assert.equal(recordTime({ createdAt: 'yesterday-ish' }, '3n3mi67755k2z', received), tid.toISOString());
    assert.equal(recordTime(null, 'self', received), received.toISOString());
    assert.equal(tidTime('self'), undefined);
    assert.equal(tidTime('zzzzzzzzzzzzz'), undefined);
  });

  it('the channel URL keeps a path prefix and maps http(s) to ws(s)', () => {
    assert.equal(channelUrl('ws://localhost:2480'), 'ws://localhost:2480/channel');
    assert.equal(channelUrl('https://tap.example/base/'), 'wss://tap.example/base/channel');
    assert.equal(channelUrl('http://127.0.0.1:9/'), 'ws://127.0.0.1:9/channel');
  });
});
