// Tap mode against the real Tap (indigo cmd/tap, built by scripts/tap.sh) following a real PDS and PLC,
// the real CLI and a real broker: backfill and live writes land exactly as written, acks flow only after
// Kafka confirmed, and neither a SIGKILL of the bridge nor a broker outage loses a record.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { metricValue, startCommand, waitFor, type Bridge } from '../support/bridge.ts';
import { readTopic, type ReadMessage } from '../support/kafka-read.ts';
import { startTestBroker, type TestBroker } from '../support/kafka-broker.ts';
import { startPds, type PdsAccount, type PdsPeer } from '../support/peers.ts';
import { startTap, type TapPeer } from '../support/tap.ts';

type Op = { action: string; collection: string; rkey: string; uri: string; cid: string; path: string; record: unknown; rev: string; live: boolean };
type Msg = { did: string; timestamp: string; eventMetadata: unknown; operation?: Op; identity?: { seq: number; handle: string; active: boolean; status: string } };

async function xrpc(pds: PdsPeer, nsid: string, init: { query?: Record<string, string>; body?: unknown; jwt?: string; post?: boolean } = {}): Promise<any> {
  const qs = init.query ? `?${new URLSearchParams(init.query)}` : '';
  const res = await fetch(`${pds.pdsUrl}/xrpc/${nsid}${qs}`, {
    method: init.body === undefined && !init.post ? 'GET' : 'POST',
    headers: { ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...(init.jwt ? { authorization: `Bearer ${init.jwt}` } : {}) },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  const json = text === '' ? {} : JSON.parse(text);
  if (!res.ok) throw new Error(`${nsid}: ${res.status} ${text}`);
  return json;
}

const login = async (pds: PdsPeer, a: PdsAccount) =>
  ((await xrpc(pds, 'com.atproto.server.createSession', { body: { identifier: a.did, password: a.password } })) as { accessJwt: string }).accessJwt;

/** Every record of the account as the PDS lists it: "collection/rkey" -> { cid, value }. */
async function repoRecords(pds: PdsPeer, did: string): Promise<Map<string, { cid: string; value: unknown }>> {
  const out = new Map<string, { cid: string; value: unknown }>();
  const { collections } = await xrpc(pds, 'com.atproto.repo.describeRepo', { query: { repo: did } });
  for (const collection of collections as string[]) {
    let cursor: string | undefined;
    do {
      const page = await xrpc(pds, 'com.atproto.repo.listRecords', { query: { repo: did, collection, limit: '100', ...(cursor ? { cursor } : {}) } });
      for (const r of page.records as { uri: string; cid: string; value: unknown }[]) out.set(`${collection}/${r.uri.split('/').pop()}`, { cid: r.cid, value: r.value });
      cursor = page.cursor;
    } while (cursor);
  }
  return out;
}

/** A metric of a bridge that may not be listening yet (0 then). */
async function sample(bridge: Bridge, name: string, labels: Record<string, string> = {}): Promise<number> {
  try {
    return metricValue(await bridge.metrics(), name, labels);
  } catch {
    return 0;
  }
}

/** The topic so far; empty while the bridge has not created it yet. */
async function readSoFar(bootstrap: string, topic: string): Promise<ReadMessage[]> {
  try {
    return await readTopic(bootstrap, topic);
  } catch {
    return [];
  }
}

const ops = (msgs: ReadMessage[]) => msgs.map((m) => ({ key: m.key, headers: m.headers, msg: JSON.parse(m.value) as Msg }));

describe('Tap mode against the real Tap', () => {
  let broker: TestBroker;
  let pds: PdsPeer;
  let bulk: PdsAccount;
  before(async () => {
    broker = await startTestBroker();
    pds = await startPds();
    // A backfill long enough to interrupt: 1,200 more posts in one account before Tap learns of it.
    bulk = pds.accounts[0]!;
    const jwt = await login(pds, bulk);
    for (let batch = 0; batch < 6; batch++) {
      const writes = Array.from({ length: 200 }, (_, i) => ({
        $type: 'com.atproto.repo.applyWrites#create',
        collection: 'app.bsky.feed.post',
        value: { $type: 'app.bsky.feed.post', text: `bulk ${batch}-${i}`, createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, batch * 200 + i)).toISOString() },
      }));
      await xrpc(pds, 'com.atproto.repo.applyWrites', { jwt, body: { repo: bulk.did, writes } });
    }
  });
  after(async () => {
    await pds?.[Symbol.asyncDispose]();
    await broker?.stop();
  });

  const running: Bridge[] = [];
  afterEach(() => {
    // A failed assertion must not leave a bridge behind (the runner would wait for it).
    for (const b of running.splice(0)) if (b.child.exitCode === null) b.child.kill('SIGKILL');
  });

  async function bridgeFor(tap: TapPeer, topic: string, extra: string[] = []): Promise<Bridge> {
    return track(await startCommand(['firehose', 'tap'], ['--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--tap-host', tap.url, '--tap-stats-interval', '1s', '--tap-metrics-url', tap.metricsUrl, ...extra]));
  }
  const track = (b: Bridge) => (running.push(b), b);

  /** Every PDS record of every account is in the topic (at least once), byte-equal as JSON values, with its cid. */
  async function assertAllRecords(topic: string): Promise<ReturnType<typeof ops>> {
    const got = ops(await readTopic(broker.bootstrap, topic));
    for (const account of pds.accounts) {
      const want = await repoRecords(pds, account.did);
      const have = new Map<string, Msg>();
      for (const { key, msg } of got) if (msg.did === account.did && msg.operation && msg.operation.action !== 'delete') { assert.equal(key, account.did); have.set(msg.operation.path, msg); }
      for (const [path, r] of want) {
        const m = have.get(path);
        assert.ok(m, `${account.handle}: ${path} is in Kafka`);
        assert.equal(m.operation!.cid, r.cid, path);
        assert.deepEqual(m.operation!.record, r.value, path);
        assert.equal(m.operation!.uri, `at://${account.did}/${path}`);
      }
    }
    return got;
  }

  it('backfill, a SIGKILL mid-backfill, then live creates, updates, deletes and a deactivation: every record lands as written, acks flow', async () => {
    await using tap = await startTap({ relayUrl: pds.pdsUrl, plcUrl: pds.plcUrl, retryTimeoutMs: 3000 });
    const topic = 'tap-backfill';
    // A small in-flight window so the backfill takes long enough to be interrupted.
    let bridge = await bridgeFor(tap, topic, ['--max-in-flight', '50']);
    await tap.addRepos(pds.accounts.map((a) => a.did));
    await waitFor('part of the backfill acked', async () => (await sample(bridge, 'atkafka_acks_sent', { status: 'ok' })) >= 200, 60_000, 20);
    bridge.child.kill('SIGKILL');
    await bridge.exited;
    const beforeKill = ops(await readTopic(broker.bootstrap, topic)).length;
    const expectedTotal = (await Promise.all(pds.accounts.map((a) => repoRecords(pds, a.did)))).reduce((n, m) => n + m.size, 0);
    assert.ok(beforeKill < expectedTotal, `killed mid-backfill: ${beforeKill} of ${expectedTotal} records in Kafka`);

    // Restarted: Tap sends again what was not acked (after its retry timeout); nothing is lost.
    bridge = await bridgeFor(tap, topic);
    await waitFor('every repo backfilled and every event acked', async () => {
      const states = await Promise.all(pds.accounts.map(async (a) => (await tap.info(a.did)).state));
      return states.every((st) => st === 'active') && (await tap.stats()).outbox_buffer === 0;
    }, 90_000, 500);
    const backfilled = await assertAllRecords(topic);
    for (const { msg, headers } of backfilled) {
      const h = Object.fromEntries(headers);
      assert.equal(h.source, 'tap');
      if (msg.operation) {
        assert.equal(msg.operation.live, false, 'backfill events are live: false');
        assert.match(msg.operation.rev, /^[234567a-z]{13}$/);
        assert.equal(h.kind, 'commit');
        assert.equal(h.collection, msg.operation.collection);
      }
    }
    const bulkPost = backfilled.find((m) => m.msg.operation?.record && (m.msg.operation.record as { text?: string }).text === 'bulk 0-0')!;
    assert.equal(bulkPost.msg.timestamp, '2026-01-01T00:00:00.000Z', "the record's createdAt");
    const identities = backfilled.filter((m) => m.msg.identity);
    assert.ok(identities.length >= pds.accounts.length, 'each backfill opens with an identity event');
    for (const { msg } of identities) assert.equal(msg.identity!.active, true);

    // Live writes.
    const alice = pds.accounts[1]!;
    const jwt = await login(pds, alice);
    const created = await xrpc(pds, 'com.atproto.repo.createRecord', { jwt, body: { repo: alice.did, collection: 'app.bsky.feed.post', record: { $type: 'app.bsky.feed.post', text: 'live post', createdAt: new Date().toISOString() } } });
    const rkey = (created.uri as string).split('/').pop()!;
    const profile = await xrpc(pds, 'com.atproto.repo.getRecord', { query: { repo: alice.did, collection: 'app.bsky.actor.profile', rkey: 'self' } });
    const updated = await xrpc(pds, 'com.atproto.repo.putRecord', { jwt, body: { repo: alice.did, collection: 'app.bsky.actor.profile', rkey: 'self', record: { ...profile.value, description: 'updated live' } } });
    await xrpc(pds, 'com.atproto.repo.deleteRecord', { jwt, body: { repo: alice.did, collection: 'app.bsky.feed.post', rkey } });
    await xrpc(pds, 'com.atproto.server.deactivateAccount', { jwt, body: {} });

    const liveOf = (all: ReturnType<typeof ops>) => all.filter((m) => m.msg.did === alice.did && (m.msg.operation?.live || (m.msg.identity && !m.msg.identity.active)));
    const live = await waitFor('the live events', async () => {
      const l = liveOf(ops(await readTopic(broker.bootstrap, topic)));
      return l.length >= 4 && l;
    }, 60_000, 500);
    const kinds = live.map((m) => (m.msg.operation ? `${m.msg.operation.action} ${m.msg.operation.path}` : `identity ${m.msg.identity!.status}`));
    assert.deepEqual(kinds, [`create app.bsky.feed.post/${rkey}`, 'update app.bsky.actor.profile/self', `delete app.bsky.feed.post/${rkey}`, 'identity deactivated'], 'in the order they were written');
    assert.equal(live[0]!.msg.operation!.cid, created.cid);
    assert.equal(live[1]!.msg.operation!.cid, updated.cid);
    assert.equal((live[1]!.msg.operation!.record as { description: string }).description, 'updated live');
    assert.equal(live[2]!.msg.operation!.cid, '');
    assert.equal(live[2]!.msg.operation!.record, null);
    assert.equal(live[3]!.msg.identity!.active, false);

    // Acks flowed: Tap holds nothing outstanding (it deletes acked events every 10 s).
    await waitFor("Tap's outbox empty", async () => (await tap.stats()).outbox_buffer === 0, 40_000, 500);
    const metrics = await bridge.metrics();
    assert.equal(metricValue(metrics, 'atkafka_tap_event_buffer_size'), 0);
    assert.ok(metricValue(metrics, 'atkafka_tap_repos', { state: 'known' }) >= pds.accounts.length, 'progress read from Tap');
    assert.ok(bridge.logs().includes('Tap backfill progress'));
    bridge.child.kill('SIGTERM');
    assert.equal(await bridge.exited, 0, bridge.logs().slice(-2000));
    await xrpc(pds, 'com.atproto.server.activateAccount', { jwt: await login(pds, alice), post: true });
  });

  it('the broker down for 10 s mid-backfill: no ack for an undelivered event, everything lands after, nothing twice', async () => {
    // A fresh Tap: the same repos backfilled again from the start. The retry timeout (60 s) outlasts the outage,
    // so Tap sends nothing again: a duplicate in Kafka could only come from an ack sent too early.
    await using tap = await startTap({ relayUrl: pds.pdsUrl, plcUrl: pds.plcUrl, retryTimeoutMs: 60_000 });
    const topic = 'tap-outage';
    const bridge = await bridgeFor(tap, topic, ['--max-in-flight', '50']);
    await tap.addRepos(pds.accounts.map((a) => a.did));
    await waitFor('part of the backfill acked', async () => (await sample(bridge, 'atkafka_acks_sent', { status: 'ok' })) >= 100, 60_000, 20);
    await broker.halt('SIGKILL');
    // What Kafka confirmed before it went away may still be acked in the first moments; then nothing.
    await sleep(2000);
    const acksAtOutage = metricValue(await bridge.metrics(), 'atkafka_acks_sent', { status: 'ok' });
    await sleep(8000);
    assert.equal(metricValue(await bridge.metrics(), 'atkafka_acks_sent', { status: 'ok' }), acksAtOutage, 'no ack while Kafka is down');
    assert.ok(metricValue(await bridge.metrics(), 'atkafka_tap_event_buffer_size') > 0, 'events wait, unacked');
    await broker.resume();

    const expectedTotal = (await Promise.all(pds.accounts.map((a) => repoRecords(pds, a.did)))).reduce((n, m) => n + m.size, 0);
    await waitFor('every repo backfilled and every event acked', async () => {
      const states = await Promise.all(pds.accounts.map(async (a) => (await tap.info(a.did)).state));
      return states.every((st) => st === 'active') && (await tap.stats()).outbox_buffer === 0;
    }, 90_000, 500);
    const got = await assertAllRecords(topic);
    const paths = got.filter((m) => m.msg.operation).map((m) => `${m.msg.did}/${m.msg.operation!.path}`);
    assert.equal(paths.length, expectedTotal, 'every record once');
    assert.equal(new Set(paths).size, paths.length, 'no record twice');
    bridge.child.kill('SIGTERM');
    assert.equal(await bridge.exited, 0, bridge.logs().slice(-2000));
  });

  it('--format jetstream from Tap: every record in the Jetstream v1 shape (keys sorted), identity as identity and account events', async () => {
    await using tap = await startTap({ relayUrl: pds.pdsUrl, plcUrl: pds.plcUrl });
    const topic = 'tap-jetstream';
    const account = pds.accounts[2]!;
    const bridge = await bridgeFor(tap, topic, ['--format', 'jetstream']);
    await tap.addRepos([account.did]);
    const want = await repoRecords(pds, account.did);
    type JsMsg = { did: string; time_us: number; kind: string; commit?: { rev: string; operation: string; collection: string; rkey: string; record?: unknown; cid?: string }; identity?: { did: string; handle?: string; seq: number }; account?: { active: boolean; did: string; seq: number; status?: string } };
    const got = await waitFor('the backfill in Kafka', async () => {
      const msgs = (await readSoFar(broker.bootstrap, topic)).map((m) => ({ key: m.key, raw: m.value, msg: JSON.parse(m.value) as JsMsg }));
      return msgs.filter((m) => m.msg.commit).length >= want.size && msgs;
    }, 60_000, 500);
    bridge.child.kill('SIGTERM');
    assert.equal(await bridge.exited, 0, bridge.logs().slice(-2000));
    const sortedKeys = (v: unknown): boolean =>
      typeof v !== 'object' || v === null || (Array.isArray(v) ? v.every(sortedKeys) : Object.keys(v).every((k, i, a) => i === 0 || a[i - 1]! < k) && Object.values(v).every(sortedKeys));
    for (const [path, r] of want) {
      const m = got.find((g) => g.msg.commit && `${g.msg.commit.collection}/${g.msg.commit.rkey}` === path);
      assert.ok(m, `${path} is in Kafka`);
      assert.equal(m.key, account.did);
      assert.deepEqual(Object.keys(m.msg), ['did', 'time_us', 'kind', 'commit']);
      assert.deepEqual(Object.keys(m.msg.commit!), ['rev', 'operation', 'collection', 'rkey', 'record', 'cid']);
      assert.equal(m.msg.commit!.operation, 'create');
      assert.equal(m.msg.commit!.cid, r.cid);
      assert.deepEqual(m.msg.commit!.record, r.value);
      assert.ok(sortedKeys(m.msg.commit!.record), `${path}: record keys sorted as Jetstream writes them`);
      assert.match(m.msg.commit!.rev, /^[a-z2-7]{13}$/);
    }
    const times = got.map((g) => g.msg.time_us);
    assert.equal(new Set(times).size, times.length, 'time_us unique');
    const identity = got.find((g) => g.msg.kind === 'identity');
    const acct = got.find((g) => g.msg.kind === 'account');
    assert.ok(identity && acct, 'the backfill opens with an identity event: Jetstream identity and account');
    assert.equal(identity.msg.identity!.did, account.did);
    // As Tap verified it (handle.invalid here: the test PDS's handles do not resolve for Tap).
    assert.equal(typeof identity.msg.identity!.handle, 'string');
    assert.equal(acct.msg.account!.active, true);
  });

  it('--disable-acks against a Tap with TAP_DISABLE_ACKS: warned about at start, records land, no ack sent', async () => {
    await using tap = await startTap({ relayUrl: pds.pdsUrl, plcUrl: pds.plcUrl, disableAcks: true });
    const topic = 'tap-no-acks';
    const bridge = await bridgeFor(tap, topic, ['--disable-acks']);
    await tap.addRepos([pds.accounts[2]!.did]);
    const want = await repoRecords(pds, pds.accounts[2]!.did);
    await waitFor('the backfill in Kafka', async () => ops(await readSoFar(broker.bootstrap, topic)).filter((m) => m.msg.operation).length >= want.size, 60_000, 500);
    assert.equal(await sample(bridge, 'atkafka_acks_sent', { status: 'ok' }), 0);
    assert.match(bridge.logs(), /--disable-acks: Tap counts an event as delivered once written to the socket/);
    bridge.child.kill('SIGTERM');
    assert.equal(await bridge.exited, 0, bridge.logs().slice(-2000));
  });

  it('a Tap with an admin password: ATKAFKA_TAP_ADMIN_PASSWORD gets in (channel and stats), and the password never reaches the logs or metrics', async () => {
    const password = 'tap-s3cret-Pa55word';
    await using tap = await startTap({ relayUrl: pds.pdsUrl, plcUrl: pds.plcUrl, adminPassword: password });
    const topic = 'tap-auth';
    const bridge = track(
      await startCommand(['firehose', 'tap'], ['--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--tap-host', tap.url, '--tap-stats-interval', '1s'], { ATKAFKA_TAP_ADMIN_PASSWORD: password }),
    );
    await tap.addRepos([pds.accounts[2]!.did]);
    const want = await repoRecords(pds, pds.accounts[2]!.did);
    await waitFor('the backfill in Kafka', async () => ops(await readSoFar(broker.bootstrap, topic)).filter((m) => m.msg.operation).length >= want.size, 60_000, 500);
    await waitFor('progress read through the auth', async () => (await sample(bridge, 'atkafka_tap_repos', { state: 'known' })) >= 1, 20_000, 200);
    const metrics = await bridge.metrics();
    bridge.child.kill('SIGTERM');
    assert.equal(await bridge.exited, 0, bridge.logs().slice(-2000));
    for (const text of [bridge.logs(), metrics]) {
      assert.ok(!text.includes(password), 'the password itself');
      assert.ok(!text.includes(Buffer.from(`admin:${password}`).toString('base64')), 'nor its Basic header');
    }
  });
});
