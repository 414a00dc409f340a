import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { CursorFileInvalid } from '../../src/checkpoint/cursor-file.ts';
import { jwtClaims } from '../../src/sources/ozone/client.ts';
import { checkOzoneCursor, comparePositions, parsePosition, positionAt, positionOf, saveOzoneCursor } from '../../src/sources/ozone/cursor.ts';
import { parseOzoneEvent, subjectOf } from '../../src/sources/ozone/events.ts';

const LABELER = 'did:plc:ar7c4by46qjdydhdevvrndac';

describe('Ozone positions', () => {
  test("an event's position is Ozone's own keyset cursor: <createdAt ms>::<id>", () => {
    const p = positionOf('2026-12-01T20:30:00.123Z', 42);
    assert.deepEqual(p, { cursor: `${Date.parse('2026-12-01T20:30:00.123Z')}::42`, timeMs: Date.parse('2026-12-01T20:30:00.123Z'), id: 42 });
    assert.deepEqual(parsePosition(p!.cursor), p);
  });

  test('order is (time, id): events of one millisecond by id', () => {
    const t = '2026-12-01T20:30:00.123Z';
    assert.ok(comparePositions(positionOf(t, 7)!, positionOf(t, 8)!) < 0);
    assert.ok(comparePositions(positionOf('2026-12-01T20:30:00.122Z', 9)!, positionOf(t, 8)!) < 0);
    assert.ok(comparePositions(positionAt(Date.parse(t)), positionOf(t, 1)!) < 0, 'a time-only position comes before every event of that millisecond');
  });

  test('malformed cursors are refused', () => {
    for (const bad of ['', '::', '1::', '::1', '1::2::3', 'x::1', '-1::2', '1.5::2', '01::2', '99999999999999999::1']) assert.equal(parsePosition(bad), undefined, bad);
  });
});

describe('Ozone event views', () => {
  const view = {
    id: 17,
    event: { $type: 'tools.ozone.moderation.defs#modEventTakedown', comment: 'spam', durationInHours: 0 },
    subject: { $type: 'com.atproto.repo.strongRef', uri: 'at://did:plc:abc123/app.bsky.feed.post/3kabc', cid: 'bafyrei' },
    subjectBlobCids: [],
    createdBy: 'did:plc:mod',
    createdAt: '2026-12-01T20:30:00.123Z',
    creatorHandle: 'mod.test',
    subjectHandle: 'user.test',
  };

  test('read: id, time, type, subject DID and collection; the JSON is the view as returned (same members, same order)', () => {
    const e = parseOzoneEvent(view);
    assert.equal(e.id, 17);
    assert.equal(e.type, 'tools.ozone.moderation.defs#modEventTakedown');
    assert.equal(e.subjectDid, 'did:plc:abc123');
    assert.equal(e.collection, 'app.bsky.feed.post');
    assert.equal(e.json, JSON.stringify(view));
    assert.deepEqual(Object.keys(JSON.parse(e.json)), Object.keys(view));
  });

  test('subjects: account, record, chat message, and none', () => {
    assert.deepEqual(subjectOf({ $type: 'com.atproto.admin.defs#repoRef', did: 'did:plc:x' }), { did: 'did:plc:x', collection: '' });
    assert.deepEqual(subjectOf({ uri: 'at://did:web:example.com/app.bsky.actor.profile/self' }), { did: 'did:web:example.com', collection: 'app.bsky.actor.profile' });
    assert.deepEqual(subjectOf({ $type: 'chat.bsky.convo.defs#messageRef', did: 'did:plc:y', convoId: 'c', messageId: 'm' }), { did: 'did:plc:y', collection: '' });
    assert.deepEqual(subjectOf({ uri: 'at://did:plc:z' }), { did: 'did:plc:z', collection: '' });
    assert.deepEqual(subjectOf({ did: 'not-a-did' }), { did: '', collection: '' });
    assert.deepEqual(subjectOf(undefined), { did: '', collection: '' });
  });

  test('an event that cannot be placed in the log is an InputError (invalid-event), never guessed', () => {
    const bad = [null, [], 'x', { ...view, id: 0 }, { ...view, id: 1.5 }, { ...view, id: '17' }, { ...view, createdAt: 'yesterday' }, { ...view, createdAt: undefined }, { ...view, event: {} }, { ...view, event: null }];
    for (const b of bad) assert.throws(() => parseOzoneEvent(b), (err: Error & { reason?: string }) => err.reason === 'invalid-event', JSON.stringify(b)?.slice(0, 60));
  });
});

describe('Ozone cursor file', () => {
  test('saved and loaded; a cursor of another labeler is refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'atkafka-ozone-cursor-'));
    try {
      const path = join(dir, 'ozone-cursor.json');
      assert.equal(await checkOzoneCursor(path, LABELER), undefined);
      const p = positionOf('2026-12-01T20:30:00.123Z', 42)!;
      await saveOzoneCursor(path, p, LABELER, 'https://user:pw@pds.example.com');
      const saved = JSON.parse(await readFile(path, 'utf8'));
      assert.equal(saved.cursor, p.cursor);
      assert.equal(saved.createdAt, '2026-12-01T20:30:00.123Z');
      assert.equal(saved.labelerDid, LABELER);
      assert.ok(!JSON.stringify(saved).includes('pw@'), 'no credentials in the file');
      const loaded = await checkOzoneCursor(path, LABELER);
      assert.equal(loaded?.from, 'cursor-file');
      assert.deepEqual({ ...loaded!.position }, { ...p, labelerDid: LABELER, pdsHost: saved.pdsHost, savedAt: saved.savedAt });
      await assert.rejects(checkOzoneCursor(path, 'did:plc:other'), (err: Error) => err instanceof CursorFileInvalid && /did:plc:other/.test(err.message));
      await writeFile(path, '{"cursor":"nope","labelerDid":"x"}');
      await assert.rejects(checkOzoneCursor(path, LABELER), CursorFileInvalid);
      await writeFile(path, 'not json');
      await assert.rejects(checkOzoneCursor(path, LABELER), CursorFileInvalid);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("the Go version's ozone-cursor.txt (createdAt + 1 ms) is read when ours does not exist: events at or after that time", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'atkafka-ozone-cursor-'));
    try {
      await mkdir(join(dir, 'data'));
      // What Go's time.Format(time.RFC3339Nano) writes: trailing zeros of the fraction dropped.
      await writeFile(join(dir, 'data', 'ozone-cursor.txt'), '2026-12-01T20:30:00.12Z');
      const loaded = await checkOzoneCursor(join(dir, 'data', 'ozone-cursor.json'), LABELER);
      assert.equal(loaded?.from, 'go-cursor');
      assert.deepEqual(loaded?.position, positionAt(Date.parse('2026-12-01T20:30:00.120Z')));
      await writeFile(join(dir, 'data', 'ozone-cursor.txt'), 'garbage');
      await assert.rejects(checkOzoneCursor(join(dir, 'data', 'ozone-cursor.json'), LABELER), CursorFileInvalid);
      // Ours, once it exists, wins.
      await saveOzoneCursor(join(dir, 'data', 'ozone-cursor.json'), positionOf('2026-12-02T00:00:00.000Z', 5)!, LABELER, 'https://pds');
      assert.equal((await checkOzoneCursor(join(dir, 'data', 'ozone-cursor.json'), LABELER))?.from, 'cursor-file');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

test('JWT claims are read for planning the refresh, and garbage gives none', () => {
  const payload = Buffer.from(JSON.stringify({ exp: 1_800_000_000, iat: 1_799_992_800, sub: 'did:plc:x' })).toString('base64url');
  assert.deepEqual(jwtClaims(`e30.${payload}.sig`), { exp: 1_800_000_000, iat: 1_799_992_800 });
  assert.deepEqual(jwtClaims('garbage'), {});
  assert.deepEqual(jwtClaims('a.!!!.c'), {});
});
