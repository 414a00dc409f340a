// The real Tap (test/support/tap.ts, built by scripts/tap.sh) against the real PDS and
// PLC of test/support/peers.ts: backfill, acks, redelivery, live events and Tap's
// per-account withholding, as docs/tap-protocol.md describes them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';

import { startPds, type PdsAccount, type PdsPeer } from '../support/peers.ts';
import { startTap, type TapPeer } from '../support/tap.ts';

const RETRY_MS = 1500;

interface TapEvent {
  id: number;
  type: 'record' | 'identity';
  record?: {
    live: boolean;
    did: string;
    rev: string;
    collection: string;
    rkey: string;
    action: 'create' | 'update' | 'delete';
    cid?: string;
    record?: Record<string, unknown>;
  };
  identity?: { did: string; handle: string; is_active: boolean; status: string };
}
interface Received {
  evt: TapEvent;
  raw: string;
  binary: boolean;
  at: number;
}

/** One /channel connection: every message kept in arrival order; `next` waits for one not yet taken. */
class Channel {
  readonly all: Received[] = [];
  private taken = 0;
  private wake: (() => void) | undefined;
  readonly ws: WebSocket;
  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: Buffer, binary: boolean) => {
      const raw = data.toString('utf8');
      this.all.push({ evt: JSON.parse(raw) as TapEvent, raw, binary, at: Date.now() });
      this.wake?.();
    });
  }
  static async open(url: string, headers: Record<string, string> = {}): Promise<Channel> {
    const ws = new WebSocket(url, { headers });
    await new Promise<void>((ok, fail) => {
      ws.once('open', () => ok());
      ws.once('error', fail);
    });
    return new Channel(ws);
  }
  /** The next message (in arrival order, skipping none) that matches, waiting up to timeoutMs. */
  async next(match: (r: Received) => boolean, timeoutMs = 20_000, what = 'a matching event'): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (; this.taken < this.all.length; this.taken++) {
        const r = this.all[this.taken]!;
        if (match(r)) {
          this.taken++;
          return r;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; got ${this.all.length} messages`);
      await new Promise<void>((ok) => {
        const t = setTimeout(ok, left);
        this.wake = () => (clearTimeout(t), ok());
      });
      this.wake = undefined;
    }
  }
  ack(id: number): void {
    this.ws.send(JSON.stringify({ type: 'ack', id }));
  }
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((ok) => this.ws.once('close', () => ok()));
    this.ws.close();
    await closed;
  }
}

const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

async function xrpc(pds: PdsPeer, nsid: string, init: { query?: Record<string, string>; body?: unknown; jwt?: string } = {}) {
  const qs = init.query ? `?${new URLSearchParams(init.query)}` : '';
  const res = await fetch(`${pds.pdsUrl}/xrpc/${nsid}${qs}`, {
    method: init.body === undefined ? 'GET' : 'POST',
    headers: {
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(init.jwt ? { authorization: `Bearer ${init.jwt}` } : {}),
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const json = (await res.json()) as any;
  if (!res.ok) throw new Error(`${nsid}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Every record in the account's repo as the PDS lists it: "collection/rkey" -> { cid, value }. */
async function repoRecords(pds: PdsPeer, did: string) {
  const out = new Map<string, { cid: string; value: unknown }>();
  const { collections } = await xrpc(pds, 'com.atproto.repo.describeRepo', { query: { repo: did } });
  for (const collection of collections as string[]) {
    const { records } = await xrpc(pds, 'com.atproto.repo.listRecords', { query: { repo: did, collection, limit: '100' } });
    for (const r of records as { uri: string; cid: string; value: unknown }[]) {
      out.set(`${collection}/${r.uri.split('/').pop()}`, { cid: r.cid, value: r.value });
    }
  }
  return out;
}

async function createPost(pds: PdsPeer, acct: PdsAccount, text: string) {
  const { accessJwt } = await xrpc(pds, 'com.atproto.server.createSession', {
    body: { identifier: acct.did, password: acct.password },
  });
  const res = await xrpc(pds, 'com.atproto.repo.createRecord', {
    jwt: accessJwt,
    body: {
      repo: acct.did,
      collection: 'app.bsky.feed.post',
      record: { $type: 'app.bsky.feed.post', text, createdAt: new Date().toISOString() },
    },
  });
  return res as { uri: string; cid: string; commit: { cid: string; rev: string } };
}
const rkeyOf = (uri: string) => uri.split('/').pop()!;

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(200);
  }
}

describe('the real Tap against the real PDS', () => {
  let pds: PdsPeer;
  let tap: TapPeer;
  let alice: PdsAccount, carol: PdsAccount;
  let expected: Map<string, Map<string, { cid: string; value: unknown }>>;
  let ch1: Channel;
  /** one of carol's backfill events, never acked by the first test */
  let withheld: Received | undefined;
  let backfillRecords = 0;

  before(async () => {
    pds = await startPds();
    [alice, , carol] = pds.accounts as [PdsAccount, PdsAccount, PdsAccount];
    tap = await startTap({ relayUrl: pds.pdsUrl, plcUrl: pds.plcUrl, retryTimeoutMs: RETRY_MS });
    expected = new Map();
    for (const a of pds.accounts) expected.set(a.did, await repoRecords(pds, a.did));
  });
  after(async () => {
    await ch1?.close();
    await tap?.[Symbol.asyncDispose]();
    await pds?.[Symbol.asyncDispose]();
  });

  it('backfills every existing record of the added accounts (live: false, text frames, one event each), after one identity event per account', async () => {
    ch1 = await Channel.open(tap.channelUrl);
    await tap.addRepos(pds.accounts.map((a) => a.did));

    const want = new Set<string>();
    for (const [did, recs] of expected) for (const k of recs.keys()) want.add(`${did}/${k}`);
    backfillRecords = want.size;
    const identities = new Map<string, Received>();
    const records = new Map<string, Received>();
    while (records.size < want.size || identities.size < pds.accounts.length) {
      const r = await ch1.next((r) => !ids(records, identities).has(r.evt.id), 30_000, 'backfill event');
      assert.equal(r.binary, false, 'Tap sends text frames');
      if (r.evt.type === 'identity') {
        identities.set(r.evt.identity!.did, r);
      } else {
        assert.equal(r.evt.type, 'record');
        const { did, collection, rkey } = r.evt.record!;
        records.set(`${did}/${collection}/${rkey}`, r);
      }
      // Ack all but one event of carol's (a post), kept for the redelivery test.
      if (!withheld && r.evt.record?.did === carol.did && r.evt.record.collection === 'app.bsky.feed.post') withheld = r;
      else ch1.ack(r.evt.id);
    }
    assert.deepEqual(new Set(records.keys()), want);

    for (const acct of pds.accounts) {
      const { rev } = await xrpc(pds, 'com.atproto.sync.getLatestCommit', { query: { did: acct.did } });
      const id = identities.get(acct.did)!.evt;
      // Local *.test handles have no DNS / well-known answer Tap can reach: "handle.invalid".
      assert.deepEqual(id, {
        id: id.id,
        type: 'identity',
        identity: { did: acct.did, handle: 'handle.invalid', is_active: true, status: 'active' },
      });
      for (const [key, { cid, value }] of expected.get(acct.did)!) {
        const [collection, rkey] = key.split('/') as [string, string];
        const evt = records.get(`${acct.did}/${key}`)!.evt;
        // The record is the PDS's own JSON form of it (listRecords): {"$type":"blob","ref":{"$link"}} etc.
        assert.deepEqual(evt.record, { live: false, did: acct.did, rev, collection, rkey, action: 'create', cid, record: value });
        assert.ok(id.id < evt.id, 'the identity event comes before the account\'s records');
      }
      const info = await tap.info(acct.did);
      assert.equal(info.state, 'active', 'backfill done');
      assert.equal(info.records, expected.get(acct.did)!.size);
      assert.equal(info.rev, rev);
    }
    // A blob comes as data-model JSON.
    const profile = records.get(`${alice.did}/app.bsky.actor.profile/self`)!.evt.record!.record as any;
    assert.equal(profile.avatar.$type, 'blob');
    assert.match(profile.avatar.ref.$link, /^bafkrei/);
    assert.ok(withheld, 'carol has a post to withhold');
  });

  it('redelivers an unacked event every retry timeout, to whichever client is connected, until acked', async () => {
    const kept = withheld;
    assert.ok(kept, 'the first test kept an event unacked');
    await ch1.close(); // the event stays in flight: Tap does not notice the client left
    const ch2 = await Channel.open(tap.channelUrl);
    try {
      const same = (r: Received) => r.evt.id === kept.evt.id;
      const again = await ch2.next(same, 4 * RETRY_MS + 5_000, 'redelivery');
      assert.equal(again.raw, kept.raw, 'the same id and the same bytes');
      assert.ok(again.at - kept.at >= RETRY_MS - 250, `redelivered after ${again.at - kept.at} ms`);
      const third = await ch2.next(same, 2 * RETRY_MS + 5_000, 'second redelivery');
      assert.ok(third.at - again.at >= RETRY_MS - 250, `then again after ${third.at - again.at} ms`);
      ch2.ack(kept.evt.id);
      // A duplicate ack and an ack for an id Tap never sent are ignored; the socket stays open.
      ch2.ack(kept.evt.id);
      ch2.ack(987_654_321);
      await sleep(2 * RETRY_MS + 500);
      const later = ch2.all.filter((r) => same(r) && r.at > third.at + 100);
      assert.equal(later.length, 0, 'no redelivery after the ack');
      assert.equal(ch2.ws.readyState, WebSocket.OPEN);
    } finally {
      ch1 = ch2;
    }
  });

  it('delivers a new post live (live: true) with the commit\'s rev and the record', async () => {
    const post = await createPost(pds, alice, 'hello from a live test <&>');
    const r = await ch1.next((r) => r.evt.record?.rkey === rkeyOf(post.uri), 20_000, 'the live post');
    assert.deepEqual(r.evt.record, {
      live: true,
      did: alice.did,
      rev: post.commit.rev,
      collection: 'app.bsky.feed.post',
      rkey: rkeyOf(post.uri),
      action: 'create',
      cid: post.cid,
      record: (await xrpc(pds, 'com.atproto.repo.getRecord', { query: { repo: alice.did, collection: 'app.bsky.feed.post', rkey: rkeyOf(post.uri) } })).value,
    });
    assert.match(r.raw, /live test \\u003c\\u0026\\u003e/, 'Go\'s encoder escapes <, & and > in strings');
    ch1.ack(r.evt.id);
  });

  it('holds back a live event while an earlier event of the same account is unacked, and sends it on the ack', async () => {
    const stored0 = (await tap.stats()).record_count as number;
    const p1 = await createPost(pds, alice, 'first');
    const r1 = await ch1.next((r) => r.evt.record?.rkey === rkeyOf(p1.uri), 20_000, 'first post');
    const p2 = await createPost(pds, alice, 'second');
    // Tap has the second post (stored with its outbox event in one transaction)...
    await until('Tap stores the second post', 20_000, async () =>
      (await tap.stats()).record_count === stored0 + 2 ? true : undefined,
    );
    await sleep(500);
    // ...but does not send it while the first one is in flight (redeliveries of the first aside).
    const isP2 = (r: Received) => r.evt.record?.rkey === rkeyOf(p2.uri);
    assert.equal(ch1.all.filter(isP2).length, 0, 'the second post waits for the first one\'s ack');
    const acked = Date.now();
    ch1.ack(r1.evt.id);
    const r2 = await ch1.next(isP2, RETRY_MS, 'second post right after the ack');
    assert.ok(r2.at - acked < RETRY_MS, 'sent on the ack, not on a retry tick');
    assert.equal(r2.evt.record!.live, true);
    ch1.ack(r2.evt.id);
  });

  it('shows nothing outstanding once everything is acked: stats outbox_buffer 0 (acked rows are deleted in batches, every 10 s)', async () => {
    const stats = await until('outbox_buffer 0', 15_000, async () => {
      const s = await tap.stats();
      return s.outbox_buffer === 0 ? s : undefined;
    });
    assert.equal(stats.repo_count, 3);
    assert.equal(stats.record_count, backfillRecords + 3);
    assert.equal(stats.resync_buffer, 0);
    assert.equal(typeof stats.firehose, 'number', 'the last firehose seq Tap processed');
    const m = await tap.metrics();
    assert.equal(m.tap_event_cache_size, 0, 'the in-memory outbox is empty too');
    assert.equal(m.tap_resyncs_completed_total, 3);
    // Counters, not a balance: deliveries count redeliveries, acks count duplicate and unknown ids.
    assert.ok(m.tap_events_delivered_total! > backfillRecords + 3 + 3, 'records + identities + redeliveries');
  });
});

describe('Tap options', () => {
  let pds: PdsPeer;
  before(async () => {
    pds = await startPds();
  });
  after(async () => {
    await pds?.[Symbol.asyncDispose]();
  });

  it('TAP_ADMIN_PASSWORD: every endpoint, /health and /channel included, wants Basic admin:<password>', async () => {
    await using tap = await startTap({ relayUrl: pds.pdsUrl, plcUrl: pds.plcUrl, adminPassword: 's3cret' });
    const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
    for (const path of ['/health', '/stats/repo-count', `/info/${pds.accounts[0]!.did}`]) {
      for (const headers of [{}, basic('admin', 'wrong'), basic('root', 's3cret')]) {
        const res = await fetch(`${tap.url}${path}`, { headers });
        assert.equal(res.status, 401, `${path} ${JSON.stringify(headers)}`);
        assert.equal(res.headers.get('www-authenticate'), 'Basic realm="admin", charset="UTF-8"');
      }
    }
    assert.equal((await fetch(`${tap.url}/health`, { headers: tap.headers })).status, 200);
    const refused = await new Promise<number>((ok, fail) => {
      const ws = new WebSocket(tap.channelUrl);
      ws.once('unexpected-response', (_req, res) => ok(res.statusCode!));
      ws.once('open', () => fail(new Error('opened without credentials')));
    });
    assert.equal(refused, 401);
    const ch = await Channel.open(tap.channelUrl, tap.headers);
    await tap.addRepos([pds.accounts[0]!.did]); // sends tap.headers
    await ch.next((r) => r.evt.type === 'record', 20_000, 'a record with credentials');
    await ch.close();
  });

  it('TAP_DISABLE_ACKS: a socket write is the ack; nothing is redelivered and the outbox empties', async () => {
    await using tap = await startTap({ relayUrl: pds.pdsUrl, plcUrl: pds.plcUrl, disableAcks: true, retryTimeoutMs: 500 });
    const ch = await Channel.open(tap.channelUrl);
    const [acct] = pds.accounts as [PdsAccount];
    const count = (await repoRecords(pds, acct.did)).size;
    await tap.addRepos([acct.did]);
    for (let i = 0; i < count + 1; i++) await ch.next(() => true, 20_000, 'an event');
    await until('outbox_buffer 0 without any ack', 15_000, async () =>
      (await tap.stats()).outbox_buffer === 0 ? true : undefined,
    );
    assert.equal(ch.all.length, count + 1, 'each event once (identity + records)');
    assert.equal(new Set(ch.all.map((r) => r.evt.id)).size, ch.all.length);
    await ch.close();
  });
});

function ids(...maps: Map<string, Received>[]): Set<number> {
  const out = new Set<number>();
  for (const m of maps) for (const r of m.values()) out.add(r.evt.id);
  return out;
}
