import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { formatAccount, formatIdentity, formatOperation } from '../../src/format/atkafka.ts';
import { withMetadata } from '../../src/format/metadata.ts';
import { checkTopicTemplate, topicRouter, TopicTemplateError } from '../../src/format/topic-template.ts';

const meta = { didDocument: { id: 'did:plc:abc' }, pdsHost: 'https://pds.example', handle: 'alice.test', accountAge: 12, profile: null };

describe('withMetadata', () => {
  const op = formatOperation('did:plc:abc', '2026-07-04T14:39:14.000Z', {
    action: 'create',
    collection: 'app.bsky.feed.post',
    rkey: '3k',
    path: 'app.bsky.feed.post/3k',
    cid: 'bafy',
    // A record whose text holds the very field name: only the real field is replaced.
    record: { text: '"eventMetadata":null <&>', $type: 'app.bsky.feed.post' },
  });

  it('puts the metadata into the eventMetadata field of strings and of UTF-8 bytes alike, nothing else changes', () => {
    for (const value of [op, Buffer.from(op)]) {
      const out = withMetadata(value, JSON.stringify(meta));
      const parsed = JSON.parse(out.toString()) as Record<string, unknown>;
      const expected = { ...(JSON.parse(op) as Record<string, unknown>), eventMetadata: meta };
      assert.deepEqual(parsed, expected);
      assert.deepEqual(Object.keys(parsed), ['did', 'timestamp', 'eventMetadata', 'operation']);
      assert.equal(typeof out, typeof value === 'string' ? 'string' : 'object');
    }
  });

  it('works for every event shape and keeps non-ASCII bytes intact', () => {
    const account = formatAccount({ kind: 'account', seq: 1, did: 'did:plc:abc', time: '2026-07-04T00:00:00Z', active: false, status: 'takendown' });
    const identity = formatIdentity({ kind: 'identity', seq: 2, did: 'did:plc:abc', time: '2026-07-04T00:00:00Z', handle: 'é.example' });
    for (const v of [account, identity]) {
      const out = withMetadata(Buffer.from(v), '{"handle":"ü"}');
      assert.deepEqual((JSON.parse(out.toString()) as { eventMetadata: unknown }).eventMetadata, { handle: 'ü' });
    }
  });

  it('refuses a message without the field (a formatter bug, not input)', () => {
    assert.throws(() => withMetadata('{"did":"x"}', 'null'), /no eventMetadata field/);
  });
});

describe('topic templates', () => {
  const sanitize = (n: string) => n.replace(/[^a-zA-Z0-9._-]/g, '_').slice(0, 249);

  it('expands {collection} (the kind for non-record events), {kind} and {source}', () => {
    const route = topicRouter({ template: 'atproto.{source}.{collection}', source: 'relay', sanitize, maxTopics: 100, fallback: 'fallback', onOverflow: () => {} });
    assert.equal(route('commit', 'app.bsky.feed.post'), 'atproto.relay.app.bsky.feed.post');
    assert.equal(route('identity', ''), 'atproto.relay.identity');
    const byKind = topicRouter({ template: 'x-{kind}', source: 'relay', sanitize, maxTopics: 100, fallback: 'fallback', onOverflow: () => {} });
    assert.equal(byKind('commit', 'app.bsky.feed.post'), 'x-commit');
    assert.equal(byKind('account', ''), 'x-account');
  });

  it('bounds the topics a hostile stream of collections can create: then the fallback, told once per 1000', () => {
    const told: string[] = [];
    const route = topicRouter({ template: 't.{collection}', source: 'relay', sanitize, maxTopics: 3, fallback: 'fallback', onOverflow: (w) => told.push(w) });
    for (let i = 0; i < 3; i++) assert.equal(route('commit', `com.example.c${i}`), `t.com.example.c${i}`);
    for (let i = 3; i < 2000; i++) assert.equal(route('commit', `com.example.c${i}`), 'fallback');
    assert.equal(route('commit', 'com.example.c1'), 't.com.example.c1', 'known topics keep working');
    assert.deepEqual(told, ['t.com.example.c3', 't.com.example.c1003']);
  });

  it('a collection that is no NSID never names a topic (after sanitising it could collide with a real one)', () => {
    const told: string[] = [];
    const route = topicRouter({ template: 'atproto.{collection}', source: 'relay', sanitize, maxTopics: 100, fallback: 'fallback', onOverflow: (w) => told.push(w) });
    for (const bad of ['app_bsky.feed.post', 'app.bsky', 'a.b.c!', 'app.bsky.feed.post ', '.app.bsky.x']) assert.equal(route('commit', bad), 'fallback', bad);
    assert.equal(route('commit', 'app.bsky.feed.post'), 'atproto.app.bsky.feed.post');
    assert.equal(told[0], 'app_bsky.feed.post');
  });

  it('checks templates', () => {
    checkTopicTemplate('atproto.{collection}');
    for (const bad of ['atproto', 'a.{did}', 'a.{kind', 'a.kind}.{kind}']) assert.throws(() => checkTopicTemplate(bad), TopicTemplateError, bad);
  });
});
