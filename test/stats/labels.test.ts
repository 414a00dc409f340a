// What `atkafka stats` counts each message under, on real messages of every shape it reads.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { zstdDecompressSync } from 'node:zlib';
import { describe, test } from 'node:test';

import { COMPRESSED_HEADERS, JetstreamCompressor } from '../../src/format/jetstream-compress.ts';
import { ospreyEnvelope } from '../../src/format/osprey.ts';
import { labelsOf, type Labels } from '../../src/stats/labels.ts';
import { Tally } from '../../src/stats/tally.ts';
import { corpusFrames, expectedMessages } from '../support/corpus.ts';

const corpus = expectedMessages(corpusFrames());
const jetstream = zstdDecompressSync(readFileSync(new URL('../fixtures/jetstream/events.jsonl.zst', import.meta.url)))
  .toString()
  .split('\n')
  .filter((l) => l !== '');
const wikimedia = readFileSync(new URL('../fixtures/wikimedia/recentchange.ndjson', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => l !== '');
const ozone = (JSON.parse(readFileSync(new URL('./fixtures/ozone-queryEvents.json', import.meta.url), 'utf8')) as { events: unknown[] }).events;

/** Headers as the consumer hands them over: one single-key object each, values as bytes. */
const headers = (...pairs: [string, string][]) => pairs.map(([k, v]) => ({ [k]: Buffer.from(v) }));

function count(all: Labels[], key: keyof Labels): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of all) {
    const v = l[key];
    if (v !== undefined) out[v] = (out[v] ?? 0) + 1;
  }
  return out;
}

/** What the corpus says, read here from the JSON itself (the corpus manifest: 144 creates, 2 updates, 4 deletes, 1 identity, 1 account). */
const corpusCollections: Record<string, number> = {};
for (const m of corpus) {
  const c = (JSON.parse(m.value) as { operation?: { collection: string } }).operation?.collection;
  if (c !== undefined) corpusCollections[c] = (corpusCollections[c] ?? 0) + 1;
}

describe('labelsOf', () => {
  test('the at-kafka JSON of the relay corpus, without headers: kind, collection and action from the value', () => {
    const labels = corpus.map((m) => labelsOf(Buffer.from(m.value), undefined));
    assert.deepEqual(count(labels, 'kind'), { commit: 150, identity: 1, account: 1 });
    assert.deepEqual(count(labels, 'action'), { create: 144, update: 2, delete: 4 });
    assert.deepEqual(count(labels, 'collection'), corpusCollections);
    // The at-kafka shape does not say which source wrote it.
    assert.deepEqual(count(labels, 'source'), { unknown: 152 });
  });

  test("atkafka's headers win and spare parsing: a value that is not JSON at all still counts as they say", () => {
    const h = headers(['kind', 'commit'], ['collection', 'app.bsky.feed.like'], ['action', 'create'], ['seq', '31527015322'], ['source', 'relay']);
    assert.deepEqual(labelsOf(Buffer.from('not json'), h), { source: 'relay', kind: 'commit', collection: 'app.bsky.feed.like', action: 'create' });
    assert.deepEqual(labelsOf(Buffer.from('{}'), headers(['kind', 'identity'], ['seq', '1'], ['source', 'tap'])), { source: 'tap', kind: 'identity' });
    // Ozone's: kind moderation, the event type as action, the subject's collection when it is a record.
    assert.deepEqual(labelsOf(Buffer.from('{}'), headers(['kind', 'moderation'], ['action', 'tools.ozone.moderation.defs#modEventTag'], ['id', '7'], ['source', 'ozone'])), {
      source: 'ozone',
      kind: 'moderation',
      action: 'tools.ozone.moderation.defs#modEventTag',
    });
    // Header values as strings (another client's form) too.
    assert.deepEqual(labelsOf(null, [{ kind: 'sync' }, { source: 'relay' }]), { source: 'relay', kind: 'sync' });
  });

  test('the Osprey envelope: counted as the event inside it', () => {
    for (const m of corpus) {
      const inner = labelsOf(Buffer.from(m.value), undefined);
      const action = inner.kind === 'commit' ? `operation#${inner.action}` : inner.kind;
      const wrapped = ospreyEnvelope(m.value, action, '1234567890123456789', '2026-07-04T14:38:06.830Z', new Date());
      assert.deepEqual(labelsOf(Buffer.from(wrapped), undefined), inner);
    }
  });

  test('the Jetstream shape: plain, one zstd frame with its dictionary (header content-encoding), and that frame with no header at all', () => {
    const compressor = new JetstreamCompressor();
    const plain = jetstream.map((l) => labelsOf(Buffer.from(l), undefined));
    const framed = jetstream.map((l) => labelsOf(compressor.compress(l), COMPRESSED_HEADERS));
    // --jetstream-compress with --kafka-headers=false: no header says it, the zstd magic does.
    const bare = jetstream.map((l) => labelsOf(compressor.compress(l), undefined));
    assert.deepEqual(framed, plain);
    assert.deepEqual(bare, plain);
    assert.deepEqual(count(plain, 'kind'), { commit: 150, identity: 1, account: 1 });
    assert.deepEqual(count(plain, 'action'), { create: 144, update: 2, delete: 4 });
    // The same relay window as the corpus: the same collections.
    assert.deepEqual(count(plain, 'collection'), corpusCollections);
    // Compressed, with atkafka's headers: the headers, no decompression.
    const h = [...headers(['kind', 'commit'], ['collection', 'app.bsky.feed.post'], ['action', 'create'], ['time_us', '1'], ['source', 'jetstream']), ...COMPRESSED_HEADERS];
    assert.deepEqual(labelsOf(compressor.compress(jetstream[0]!), h), { source: 'jetstream', kind: 'commit', collection: 'app.bsky.feed.post', action: 'create' });
  });

  test('Wikimedia recentchange events: source wikimedia, the stream as kind, type and wiki from the value, with or without headers', () => {
    const labels = wikimedia.map((l) => labelsOf(Buffer.from(l), undefined));
    assert.deepEqual(count(labels, 'type'), { edit: 66, categorize: 68, log: 7, new: 3 });
    assert.deepEqual(count(labels, 'source'), { wikimedia: 144 });
    assert.deepEqual(count(labels, 'kind'), { 'mediawiki.recentchange': 144 });
    const wikis = count(labels, 'wiki');
    assert.equal(Object.keys(wikis).length, 22);
    assert.equal(wikis.commonswiki, 69);
    assert.equal(wikis.enwiki, 11);
    assert.equal(labels.filter((l) => l.collection !== undefined || l.action !== undefined).length, 0);
    // atkafka wikimedia's headers (kind = the stream, action = the type): the same labels.
    const withHeaders = wikimedia.map((l) => {
      const e = JSON.parse(l) as { type: string; meta: { stream: string; offset: number } };
      return labelsOf(Buffer.from(l), headers(['kind', e.meta.stream], ['action', e.type], ['offset', String(e.meta.offset)], ['source', 'wikimedia']));
    });
    assert.deepEqual(withHeaders, labels);
    // The other streams: the wiki is their `database`; a value that says nothing leaves the type to the header.
    const pageCreate = { $schema: '/mediawiki/revision/create/2.0.0', meta: { stream: 'mediawiki.page-create', domain: 'en.wikipedia.org' }, database: 'enwiki', page_title: 'X' };
    assert.deepEqual(labelsOf(Buffer.from(JSON.stringify(pageCreate)), undefined), { source: 'wikimedia', kind: 'mediawiki.page-create', wiki: 'enwiki' });
    assert.deepEqual(labelsOf(Buffer.from('{}'), headers(['kind', 'mediawiki.recentchange'], ['action', 'edit'], ['source', 'wikimedia'])), { source: 'wikimedia', kind: 'mediawiki.recentchange', type: 'edit' });
  });

  test("Ozone's event views without headers: kind moderation, the event type, the record subject's collection", () => {
    const labels = ozone.map((e) => labelsOf(Buffer.from(JSON.stringify(e)), undefined));
    assert.deepEqual(labels, [
      { source: 'ozone', kind: 'moderation', action: 'tools.ozone.moderation.defs#modEventReport', collection: 'app.bsky.feed.post' },
      { source: 'ozone', kind: 'moderation', action: 'tools.ozone.moderation.defs#modEventTag', collection: 'app.bsky.feed.post' },
      { source: 'ozone', kind: 'moderation', action: 'tools.ozone.moderation.defs#modEventLabel', collection: 'app.bsky.feed.post' },
      { source: 'ozone', kind: 'moderation', action: 'tools.ozone.moderation.defs#modEventAcknowledge' },
      { source: 'ozone', kind: 'moderation', action: 'tools.ozone.moderation.defs#modEventTag' },
    ]);
  });

  test('what is none of these is counted, not dropped: empty, undecodable, unknown', () => {
    assert.deepEqual(labelsOf(null, undefined), { source: 'unknown', kind: 'empty' });
    assert.deepEqual(labelsOf(Buffer.alloc(0), undefined), { source: 'unknown', kind: 'empty' });
    assert.deepEqual(labelsOf(Buffer.from('{"did":'), undefined), { source: 'unknown', kind: 'undecodable' });
    assert.deepEqual(labelsOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3]), undefined), { source: 'unknown', kind: 'undecodable' });
    assert.deepEqual(labelsOf(Buffer.from('not zstd'), headers(['content-encoding', 'zstd'])), { source: 'unknown', kind: 'undecodable' });
    assert.deepEqual(labelsOf(Buffer.from('[1,2]'), undefined), { source: 'unknown', kind: 'unknown' });
    assert.deepEqual(labelsOf(Buffer.from('{"hello":"world"}'), headers(['source', 'relay'])), { source: 'relay', kind: 'unknown' });
  });
});

describe('Tally', () => {
  test('sums a batch into one increment per hash and field, events and bytes in totals', () => {
    const t = new Tally();
    t.add({ source: 'relay', kind: 'commit', collection: 'app.bsky.feed.like', action: 'create' }, 100);
    t.add({ source: 'relay', kind: 'commit', collection: 'app.bsky.feed.like', action: 'delete' }, 50);
    t.add({ source: 'wikimedia', kind: 'recentchange', type: 'edit', wiki: 'enwiki' }, 1);
    const plain = Object.fromEntries([...t.counts].map(([k, m]) => [k, Object.fromEntries(m)]));
    assert.deepEqual(plain, {
      totals: { events: 3, bytes: 151 },
      source: { relay: 2, wikimedia: 1 },
      kind: { commit: 2, recentchange: 1 },
      collection: { 'app.bsky.feed.like': 2 },
      action: { create: 1, delete: 1 },
      type: { edit: 1 },
      wiki: { enwiki: 1 },
    });
  });
});
