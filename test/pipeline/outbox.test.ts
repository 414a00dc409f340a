// The stages between decoding and Kafka, with a recording sink and an identity source whose answers
// the test controls (both boundaries; the real enricher and the real broker are tested elsewhere).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { pino } from 'pino';

import type { Enricher, EventMetadata } from '../../src/enrich/index.ts';
import { serviceFilter, serviceMatcher } from '../../src/filter/index.ts';
import { formatAccount, formatOperation } from '../../src/format/atkafka.ts';
import { Snowflake } from '../../src/format/snowflake.ts';
import { Outbox, type OutboxOptions, type OutMessage } from '../../src/pipeline/outbox.ts';
import type { MessageSink, SendExtra } from '../../src/sink/kafka/types.ts';

interface Sent {
  key: string;
  value: string;
  token: number;
  extra: SendExtra | undefined;
}

class RecordingSink implements MessageSink<number> {
  readonly sent: Sent[] = [];
  onConfirmed(): void {}
  send(key: string, value: string | Uint8Array, token: number, extra?: SendExtra): void {
    this.sent.push({ key, value: value.toString(), token, extra });
  }
  get inFlight(): number {
    return this.sent.length;
  }
  get inFlightBytes(): number {
    return 0;
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

function meta(did: string, pdsHostname: string): EventMetadata {
  return {
    head: `{"didDocument":{"id":"${did}"},"pdsHost":"https://${pdsHostname}","handle":"h.test","accountAge":`,
    createdAtMs: Date.parse('2026-01-01T00:00:00Z'),
    tail: ',"profile":null}',
    pdsEndpoint: `https://${pdsHostname}`,
    pdsHostname,
  };
}

/** Answers lookups only when the test says so. */
class ControlledIdentities {
  readonly cache = new Map<string, EventMetadata | null>();
  readonly waiting = new Map<string, { promise: Promise<EventMetadata | null>; resolve: (m: EventMetadata | null) => void }>();
  readonly calls: string[] = [];
  readonly purged: string[] = [];
  readonly profilesDropped: string[] = [];
  cached(did: string): EventMetadata | null | undefined {
    return this.cache.get(did);
  }
  resolve(did: string): Promise<EventMetadata | null> {
    this.calls.push(did);
    let w = this.waiting.get(did);
    if (w === undefined) {
      let resolve!: (m: EventMetadata | null) => void;
      const promise = new Promise<EventMetadata | null>((r) => (resolve = r));
      w = { promise, resolve };
      this.waiting.set(did, w);
    }
    return w.promise;
  }
  answer(did: string, m: EventMetadata | null): void {
    this.cache.set(did, m);
    this.waiting.get(did)?.resolve(m);
    this.waiting.delete(did);
  }
  purgeIdentity(did: string): void {
    this.purged.push(did);
    this.cache.delete(did);
  }
  dropProfile(did: string): void {
    this.profilesDropped.push(did);
  }
  get pending(): number {
    return this.waiting.size;
  }
  close(): void {}
}

function op(did: string, rkey: string, collection = 'app.bsky.feed.post'): OutMessage {
  const value = formatOperation(did, '2026-07-04T14:39:14.000Z', { action: 'create', collection, rkey, path: `${collection}/${rkey}`, cid: 'bafy', record: { text: rkey } });
  return { value, action: 'operation#create', collection };
}

function setup(over: Partial<OutboxOptions<number>> = {}) {
  const sink = new RecordingSink();
  const ids = new ControlledIdentities();
  const dropped: number[] = [];
  const outbox = new Outbox<number>({
    sink,
    source: 'relay',
    enricher: ids as unknown as Enricher,
    enrich: true,
    keepService: undefined,
    deadlineMs: 200,
    osprey: undefined,
    topicFor: undefined,
    headers: true,
    onDropped: (t) => dropped.push(t),
    logger: pino({ level: 'silent' }),
    ...over,
  });
  return { sink, ids, dropped, outbox };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('outbox: enrichment stage', () => {
  it('a cached identity goes straight through with its metadata; an uncached one waits, and so do the later messages of that DID only', async () => {
    const { sink, ids, outbox } = setup();
    ids.cache.set('did:plc:a', meta('did:plc:a', 'pds.a.example'));
    outbox.send('did:plc:a', 1, 't', op('did:plc:a', 'a1'), 1);
    assert.equal(sink.sent.length, 1);
    const m = JSON.parse(sink.sent[0]!.value) as { eventMetadata: { handle: string; accountAge: number } };
    assert.equal(m.eventMetadata.handle, 'h.test');
    assert.ok(m.eventMetadata.accountAge > 0);

    outbox.send('did:plc:b', 2, 't', op('did:plc:b', 'b1'), 2);
    outbox.send('did:plc:a', 3, 't', op('did:plc:a', 'a2'), 3);
    // b's identity arrives while b waits: b2 must still queue behind b1.
    ids.cache.set('did:plc:b', meta('did:plc:b', 'pds.b.example'));
    outbox.send('did:plc:b', 4, 't', op('did:plc:b', 'b2'), 4);
    assert.deepEqual(sink.sent.map((s) => s.token), [1, 3], 'a flows while b waits');
    assert.equal(outbox.parked, 2);
    ids.answer('did:plc:b', meta('did:plc:b', 'pds.b.example'));
    await tick();
    assert.deepEqual(sink.sent.map((s) => s.token), [1, 3, 2, 4], 'b in its own order');
    assert.equal(outbox.parked, 0);
    assert.deepEqual(ids.calls, ['did:plc:b'], 'one lookup for the waiting DID');
    outbox.close();
  });

  it('past the deadline a message goes without metadata, in order, and is never dropped', async () => {
    const { sink, ids, outbox } = setup({ deadlineMs: 50 });
    outbox.send('did:plc:slow', 1, 't', op('did:plc:slow', 's1'), 1);
    outbox.send('did:plc:slow', 2, 't', op('did:plc:slow', 's2'), 2);
    const idle = outbox.idle();
    await new Promise((r) => setTimeout(r, 120));
    await idle;
    assert.deepEqual(sink.sent.map((s) => s.token), [1, 2]);
    for (const s of sink.sent) assert.equal((JSON.parse(s.value) as { eventMetadata: unknown }).eventMetadata, null);
    // The late answer changes nothing already sent, and serves the next message from the cache.
    ids.answer('did:plc:slow', meta('did:plc:slow', 'pds.example'));
    await tick();
    assert.equal(sink.sent.length, 2);
    outbox.send('did:plc:slow', 3, 't', op('did:plc:slow', 's3'), 3);
    assert.equal((JSON.parse(sink.sent[2]!.value) as { eventMetadata: { pdsHost: string } }).eventMetadata.pdsHost, 'https://pds.example');
    outbox.close();
  });

  it('an unresolvable DID (null) gets eventMetadata null at once; #identity/#account purge and profile ops drop the profile', async () => {
    const { sink, ids, outbox } = setup();
    ids.cache.set('did:plc:gone', null);
    outbox.send('did:plc:gone', 1, 't', op('did:plc:gone', 'g'), 1);
    assert.equal((JSON.parse(sink.sent[0]!.value) as { eventMetadata: unknown }).eventMetadata, null);

    ids.cache.set('did:plc:x', meta('did:plc:x', 'pds.example'));
    const account = formatAccount({ kind: 'account', seq: 5, did: 'did:plc:x', time: 't', active: false, status: 'deactivated' });
    outbox.send('did:plc:x', 5, 't', { value: account, action: 'account', collection: '' }, 5);
    assert.deepEqual(ids.purged, ['did:plc:x']);
    assert.equal(outbox.parked, 1, 'the purged identity is looked up again, not served stale');
    ids.answer('did:plc:x', meta('did:plc:x', 'pds2.example'));
    await tick();
    assert.equal((JSON.parse(sink.sent[1]!.value) as { eventMetadata: { pdsHost: string } }).eventMetadata.pdsHost, 'https://pds2.example');

    outbox.send('did:plc:x', 6, 't', op('did:plc:x', 'self', 'app.bsky.actor.profile'), 6);
    assert.deepEqual(ids.profilesDropped, ['did:plc:x']);
    outbox.close();
  });

  it('the service filter drops by PDS host through onDropped (the position still advances); unknown hosts pass', async () => {
    const { sink, ids, dropped, outbox } = setup({ keepService: serviceMatcher(serviceFilter('watched', ['*.bsky.network'])) });
    ids.cache.set('did:plc:in', meta('did:plc:in', 'morel.us-east.host.bsky.network'));
    ids.cache.set('did:plc:out', meta('did:plc:out', 'pds.example.com'));
    ids.cache.set('did:plc:nohost', meta('did:plc:nohost', ''));
    outbox.send('did:plc:in', 1, 't', op('did:plc:in', 'i'), 1);
    outbox.send('did:plc:out', 2, 't', op('did:plc:out', 'o'), 2);
    outbox.send('did:plc:nohost', 3, 't', op('did:plc:nohost', 'n'), 3);
    outbox.send('did:plc:late', 4, 't', op('did:plc:late', 'l'), 4);
    ids.answer('did:plc:late', meta('did:plc:late', 'pds.example.com'));
    await tick();
    assert.deepEqual(sink.sent.map((s) => s.token), [1, 3]);
    assert.deepEqual(dropped, [2, 4]);
    outbox.close();
  });

  it('without enrichment and filters: no lookups, messages unchanged apart from envelope, headers and topic', () => {
    const { sink, ids, outbox } = setup({
      enricher: undefined,
      enrich: false,
      osprey: new Snowflake({ workerId: 7 }),
      topicFor: (kind, collection) => `atproto.${collection || kind}`,
    });
    const m = op('did:plc:a', 'a1');
    outbox.send('did:plc:a', 42, '2026-07-04T14:39:14.000Z', m, 1);
    outbox.send('<unknown>', undefined, '2026-12-01T00:00:00.000Z', { value: '{"did":"","timestamp":"2026-12-01T00:00:00.000Z","eventMetadata":null,"info":{"name":"OutdatedCursor"}}', action: 'info', collection: '' }, 2);
    assert.equal(ids.calls.length, 0);
    const [a, info] = sink.sent;
    const env = JSON.parse(a!.value) as { data: { action_name: string; data: unknown; timestamp: string } };
    assert.equal(env.data.action_name, 'operation#create');
    assert.deepEqual(env.data.data, JSON.parse(m.value as string));
    assert.equal(env.data.timestamp, '2026-07-04T14:39:14.000Z');
    assert.deepEqual(a!.extra, {
      topic: 'atproto.app.bsky.feed.post',
      headers: [{ kind: 'commit' }, { collection: 'app.bsky.feed.post' }, { action: 'create' }, { seq: '42' }, { source: 'relay' }],
    });
    assert.deepEqual(info!.extra, { topic: 'atproto.info', headers: [{ kind: 'info' }, { source: 'relay' }] });
    assert.equal((JSON.parse(info!.value) as { data: { action_name: string } }).data.action_name, 'info');
    outbox.close();
  });
});
