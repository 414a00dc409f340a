// The Jetstream stand-in (test/support/jetstream-server.ts) against real Jetstream clients,
// @skyware/jetstream and @atcute/jetstream, and a plain `ws` client where neither reaches:
// the corpus in order, filters, cursor replay into live, requireHello, refusals, drops.
// What each check pins: docs/jetstream-protocol.md.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { JetstreamSubscription } from '@atcute/jetstream';
import { Jetstream } from '@skyware/jetstream';
import { WebSocket } from 'ws';

import {
  LEGACY_DICTIONARY_ID,
  decompressFrame,
  encodeEvent,
  goParseQuery,
  goQuote,
  loadCorpusEvents,
  loadCorpusLines,
  loopEvents,
  parseClientMessage,
  startJetstreamServer,
  type JetstreamEvent,
  type JetstreamServer,
} from '../support/jetstream-server.ts';

const CORPUS = loadCorpusEvents();
const LINES = loadCorpusLines();
/** What the public v1 wire carries for a corpus event: the same, without this server's "cursor". */
const PUBLIC = CORPUS.map(({ cursor: _c, ...rest }) => rest);
const LIKE = 'app.bsky.feed.like';

type Ev = Record<string, unknown> & { did: string; time_us: number; kind: string; commit?: { collection: string } };

// Clients reconnect forever (partysocket): every one is stopped even when its test fails.
const cleanups: (() => unknown)[] = [];
async function serve(opts: Parameters<typeof startJetstreamServer>[0] = {}): Promise<JetstreamServer> {
  const srv = await startJetstreamServer(opts);
  cleanups.push(() => srv.close());
  return srv;
}
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function until(what: string, ms: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (check()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 10);
    };
    tick();
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** @skyware/jetstream: every commit, identity and account event, in the order it emits them. */
function skyware(opts: ConstructorParameters<typeof Jetstream>[0]): { js: Jetstream; events: Ev[]; errors: unknown[] } {
  const js = new Jetstream(opts);
  const events: Ev[] = [];
  const errors: unknown[] = [];
  js.on('commit', (e) => events.push(e as unknown as Ev));
  js.on('identity', (e) => events.push(e as unknown as Ev));
  js.on('account', (e) => events.push(e as unknown as Ev));
  js.on('error', (e) => errors.push(e));
  js.start();
  cleanups.push(() => js.close());
  return { js, events, errors };
}

/** @atcute/jetstream: always requireHello=true and a cursor; its filter goes in the hello. */
function atcute(opts: Partial<ConstructorParameters<typeof JetstreamSubscription>[0]> & { url: string }) {
  const events: Ev[] = [];
  const closes: { code: number; wasClean: boolean }[] = [];
  const errors: string[] = [];
  const invalid: { message: string }[] = [];
  const sub = new JetstreamSubscription({
    ws: { minReconnectionDelay: 50, maxReconnectionDelay: 100, connectionTimeout: 2000 },
    onConnectionClose: (ev) => closes.push({ code: ev.code, wasClean: ev.wasClean }),
    onConnectionError: (ev) => errors.push(ev.message),
    onError: (err) => invalid.push(err as { message: string }),
    ...opts,
  });
  const it = sub[Symbol.asyncIterator]();
  let stopped = false;
  const loop = (async () => {
    for (;;) {
      const r = await it.next();
      if (r.done || stopped) break;
      events.push(r.value as unknown as Ev);
    }
  })();
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await it.return?.();
  };
  cleanups.push(stop);
  void loop;
  return { sub, events, closes, errors, invalid, stop };
}

/** A plain `ws` client: messages (decompressed when binary), pings, and how it closed. */
function raw(url: string, opts: ConstructorParameters<typeof WebSocket>[2] = {}) {
  const ws = new WebSocket(url, { perMessageDeflate: false, ...opts });
  const texts: string[] = [];
  const frames: { binary: boolean; bytes: Buffer }[] = [];
  let pings = 0;
  let closed: { code: number; reason: string } | undefined;
  let refused: { status: number; body: string } | undefined;
  ws.on('message', (d: Buffer, binary) => {
    frames.push({ binary, bytes: d });
    texts.push(binary ? decompressFrame(d) : d.toString('utf8'));
  });
  ws.on('ping', () => pings++);
  ws.on('close', (code, reason) => (closed = { code, reason: reason.toString() }));
  ws.on('error', () => {});
  ws.on('unexpected-response', (_req, res) => {
    let body = '';
    res.on('data', (c: Buffer) => (body += c.toString()));
    res.on('end', () => (refused = { status: res.statusCode ?? 0, body }));
  });
  cleanups.push(() => ws.terminate());
  const opened = new Promise<void>((resolve) => ws.once('open', () => resolve()));
  return {
    ws,
    texts,
    frames,
    opened,
    get pings() {
      return pings;
    },
    get closed() {
      return closed;
    },
    get refused() {
      return refused;
    },
    events: () => texts.map((t) => JSON.parse(t) as Ev),
  };
}

const stripCursor = (e: JetstreamEvent): Omit<JetstreamEvent, 'cursor'> => {
  const { cursor: _c, ...rest } = e;
  return rest;
};

describe('the stand-in', () => {
  it('renders every corpus event byte for byte as the real server sent it', () => {
    for (const [i, e] of CORPUS.entries()) {
      assert.equal(encodeEvent(e, e.cursor!, e.time_us!, true), LINES[i], `corpus line ${i + 1}`);
      assert.equal(encodeEvent(e, e.cursor!, e.time_us!, false), LINES[i]!.replace(/,"cursor":\d+,/, ','));
    }
    // Go's map order and HTML escaping for records that did not come from a server
    const e: JetstreamEvent = {
      did: 'did:plc:x',
      kind: 'commit',
      commit: { rev: 'r', operation: 'create', collection: 'a.b.c', rkey: 'k', cid: 'c', record: { z: 1, b: { y: '<&>', a: [2] }, $type: 'a.b.c' } },
    };
    assert.equal(
      encodeEvent(e, 7, 5, false),
      '{"did":"did:plc:x","time_us":5,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"a.b.c","rkey":"k","record":{"$type":"a.b.c","b":{"a":[2],"y":"\\u003c\\u0026\\u003e"},"z":1},"cid":"c"}}',
    );
  });

  it("parses queries, quotes and client messages as the Go server does", () => {
    assert.equal(goParseQuery('a=%zz').error, 'invalid URL escape "%zz"');
    assert.equal(goParseQuery('c=%z&a=1;b').error, 'invalid semicolon separator in query');
    assert.equal(goParseQuery('x=%4').error, 'invalid URL escape "%4"');
    assert.equal(goParseQuery(`${'&'.repeat(10_000)}a=1`).error, 'number of URL query parameters exceeded limit');
    assert.equal(goParseQuery(`${'&'.repeat(9_999)}a=1`).error, undefined);
    assert.deepEqual(goParseQuery('a=b+c&a=%41').values.get('a'), ['b c', 'A']);
    assert.equal(goQuote(Buffer.from('é\u00a0\u00ad\x00\x7f\t"\\')), '"é\\u00a0\\u00ad\\x00\\x7f\\t\\"\\\\"');
    assert.equal(goQuote(Buffer.from([0xff])), '"\\xff"');
    // each answer checked against encoding/json with the server's structs (go1.26)
    const cases: [string, string][] = [
      ['null', 'ignored'],
      ['[]', '1007 bad SubscriberSourcedMessage envelope'],
      ['{"type":5}', '1007 bad SubscriberSourcedMessage envelope'],
      ['{"type":"other","payload":"junk"}', 'ignored'],
      ['{"type":"options_update"}', '1007 bad options_update payload'],
      ['{"type":"options_update","payload":"x"}', '1007 bad options_update payload'],
      ['{"type":"options_update","payload":{"maxMessageSizeBytes":1.0}}', '1007 bad options_update payload'],
      ['{"type":"options_update","payload":{"maxMessageSizeBytes":1e3}}', '1007 bad options_update payload'],
      ['{"type":"options_update","payload":{"wantedDids":"x"}}', '1007 bad options_update payload'],
      ['{"type":"options_update","payload":{"wantedDids":[null]}}', '1008 subscribe: invalid options: invalid DID: '],
      ['{"type":"options_update","payload":{"wantedCollections":["app.bsky.fo*"]}}', '1008 subscribe: invalid options: invalid collection: app.bsky.fo*'],
      ['{"type":"options_update","payload":null}', 'filter 0'],
      ['{"TYPE":"options_update","PAYLOAD":{"WANTEDDIDS":["did:plc:a"],"maxMessageSizeBytes":-7}}', 'filter 0'],
      ['{"type":"options_update","payload":{"maxMessageSizeBytes":4294967297}}', 'filter 1'],
    ];
    for (const [msg, want] of cases) {
      const r = parseClientMessage(msg);
      const got = r.close ? `${r.close.code} ${r.close.reason}` : r.ignored ? 'ignored' : `filter ${r.filter!.maxBytes}`;
      assert.equal(got, want, msg);
    }
    const long = parseClientMessage(JSON.stringify({ type: 'options_update', payload: { wantedDids: [`did:plc:${'é'.repeat(80)}`] } }));
    assert.equal(Buffer.byteLength(long.close!.reason), 122);
    assert.ok(long.close!.reason.endsWith('é...'));
  });

  it('serves well over 100,000 events/s to one client, memory bounded by the socket', async () => {
    const srv = await serve();
    for (const e of loopEvents(CORPUS, 200_000)) srv.push(e);
    const c = raw(`${srv.url}?cursor=0`);
    let n = 0;
    c.ws.removeAllListeners('message');
    const start = Date.now();
    await new Promise<void>((resolve) => c.ws.on('message', () => ++n === 200_000 && resolve()));
    const rate = 200_000 / ((Date.now() - start) / 1000);
    c.ws.close();
    assert.ok(rate >= 100_000, `${Math.round(rate)} events/s`);
  });
});

describe('real clients', () => {
  it('@skyware/jetstream gets every corpus event in order (cursor = the first time_us, inclusive)', async () => {
    const srv = await serve({ events: CORPUS });
    const { js, events, errors } = skyware({ endpoint: srv.url, cursor: CORPUS[0]!.time_us! });
    await until('152 events', 10_000, () => events.length >= 152);
    js.close();
    assert.deepEqual(events, PUBLIC);
    assert.deepEqual(errors, []);
    assert.equal(srv.requests[0]!.searchParams.get('cursor'), String(CORPUS[0]!.time_us));
  });

  it('@atcute/jetstream gets every corpus event in order (requireHello, then its hello), but drops the identity without a handle', async () => {
    const srv = await serve({ events: CORPUS });
    const c = atcute({ url: `ws://127.0.0.1:${srv.port}`, cursor: CORPUS[0]!.time_us! });
    await until('151 events and one rejection', 10_000, () => c.events.length + c.invalid.length >= 152);
    await sleep(100);
    await c.stop();
    // Its schema (2.0.0) wants identity.handle; the relay's #identity had none, so neither has the wire.
    assert.deepEqual(c.events, PUBLIC.filter((e) => e.kind !== 'identity'));
    assert.equal(c.invalid.length, 1);
    assert.match(c.invalid[0]!.message, /handle/);
    const q = srv.requests[0]!.searchParams;
    assert.equal(q.get('requireHello'), 'true');
    assert.equal(q.get('cursor'), String(CORPUS[0]!.time_us));
  });

  it('compress=true: one binary zstd frame per event, with the legacy dictionary (neither client has zstd: plain ws)', async () => {
    const srv = await serve({ events: CORPUS });
    const c = raw(`${srv.url}?cursor=0&compress=true`);
    await until('152 frames', 5_000, () => c.frames.length >= 152);
    c.ws.close();
    assert.ok(c.frames.every((f) => f.binary));
    for (const f of c.frames) {
      assert.equal(f.bytes.readUInt32LE(0), 0xfd2fb528, 'zstd magic');
      assert.equal(f.bytes[4]! & 3, 3, '4-byte dictionary id');
    }
    const fhd = c.frames[0]!.bytes[4]!;
    const idAt = 5 + ((fhd & 0x20) === 0 ? 1 : 0);
    assert.equal(c.frames[0]!.bytes.readUInt32LE(idAt), LEGACY_DICTIONARY_ID);
    assert.deepEqual(c.events(), PUBLIC);
    // The same through the header opt-in; and a client that also offers permessage-deflate
    // (ws does by default) is refused before the upgrade.
    const h = raw(`${srv.url}?cursor=0`, { headers: { 'Socket-Encoding': 'zstd' } });
    await until('frames', 5_000, () => h.frames.length >= 152);
    h.ws.close();
    assert.ok(h.frames.every((f) => f.binary));
    const both = raw(`${srv.url}?compress=true`, { perMessageDeflate: true });
    await until('refusal', 5_000, () => both.refused !== undefined);
    assert.deepEqual(both.refused, {
      status: 400,
      body: 'choose one compression scheme: custom zstd (compress=true / Socket-Encoding: zstd) or RFC 7692 permessage-deflate, not both\n',
    });
  });

  it('filters by collection (full and prefix) and DID; identity and account pass the collection filter', async () => {
    const srv = await serve({ events: CORPUS });
    const idDid = CORPUS.find((e) => e.kind === 'identity')!.did;
    const sky = skyware({ endpoint: srv.url, cursor: CORPUS[0]!.time_us!, wantedCollections: [LIKE, 'app.bsky.graph.*'] });
    const wantCol = PUBLIC.filter((e) => e.kind !== 'commit' || e.commit!.collection === LIKE || e.commit!.collection.startsWith('app.bsky.graph.'));
    await until('filtered events', 10_000, () => sky.events.length >= wantCol.length);
    await sleep(100);
    sky.js.close();
    assert.deepEqual(sky.events, wantCol);
    assert.ok(wantCol.some((e) => e.kind === 'identity') && wantCol.some((e) => e.kind === 'account'));

    const dids = [CORPUS[3]!.did, idDid];
    const at = atcute({ url: `ws://127.0.0.1:${srv.port}`, cursor: CORPUS[0]!.time_us!, wantedDids: dids as `did:${string}:${string}`[] });
    const wantDid = PUBLIC.filter((e) => dids.includes(e.did));
    await until('DID-filtered events', 10_000, () => at.events.length + at.invalid.length >= wantDid.length);
    await sleep(100);
    await at.stop();
    assert.deepEqual(at.events, wantDid.filter((e) => e.kind !== 'identity')); // its handle rule again
    assert.ok(wantDid.some((e) => e.kind === 'identity') && wantDid.some((e) => e.kind === 'account'));

    // wantedDids also gates identity/account; both filters together intersect
    const both = raw(`${srv.url}?cursor=0&wantedCollections=${LIKE}&wantedDids=${CORPUS[3]!.did}`);
    await both.opened;
    await sleep(300);
    both.ws.close();
    assert.deepEqual(
      both.events(),
      PUBLIC.filter((e) => e.did === CORPUS[3]!.did && (e.kind !== 'commit' || e.commit!.collection === LIKE)),
    );
  });

  it('replays from a cursor, then goes live with no gap and no duplicate at the seam', async () => {
    const srv = await serve({ events: CORPUS.slice(0, 100) });
    const from = CORPUS[49]!;
    const sky = skyware({ endpoint: srv.url, cursor: from.time_us! });
    // live events arrive while the replay is still being read
    const pushing = (async () => {
      for (const e of CORPUS.slice(100)) {
        srv.push(e);
        await sleep(1);
      }
    })();
    await pushing;
    await until('events 50..152', 10_000, () => sky.events.length >= 103);
    await sleep(100);
    sky.js.close();
    assert.deepEqual(sky.events, PUBLIC.slice(49));

    // The same by seq (keepCursor shows it): cursor=N starts at seq N.
    const seqSrv = await serve({ events: CORPUS.slice(0, 100), keepCursor: true });
    const c = raw(`${seqSrv.url}?cursor=50`);
    await c.opened;
    for (const e of CORPUS.slice(100)) seqSrv.push(e);
    await until('seq events', 5_000, () => c.texts.length >= 103);
    c.ws.close();
    assert.deepEqual(c.texts, LINES.slice(49));
  });

  it('cursor edge cases: 0 replays all, older than all replays all, future and none are live', async () => {
    const srv = await serve({ events: CORPUS.slice(0, 10) });
    const zero = raw(`${srv.url}?cursor=0`);
    const old = raw(`${srv.url}?cursor=${CORPUS[0]!.time_us! - 10_000_000}`);
    const future = raw(`${srv.url}?cursor=${Date.now() * 1000 + 60_000_000}`);
    const none = raw(srv.url);
    const between = raw(`${srv.url}?cursor=${CORPUS[4]!.time_us! + 1}`);
    await Promise.all([zero.opened, old.opened, future.opened, none.opened, between.opened]);
    srv.push(CORPUS[10]!);
    await until('live event', 5_000, () => none.texts.length === 1 && future.texts.length === 1 && zero.texts.length === 11);
    for (const c of [zero, old, future, none, between]) c.ws.close();
    assert.deepEqual(zero.events(), PUBLIC.slice(0, 11));
    assert.deepEqual(old.events(), PUBLIC.slice(0, 11));
    assert.deepEqual(between.events(), PUBLIC.slice(5, 11), 'first event with time_us >= cursor');
    assert.deepEqual(none.events(), [PUBLIC[10]]);
    assert.deepEqual(future.events(), [PUBLIC[10]]);

    // retention: a cursor older than what is kept starts at the oldest kept
    const kept = await serve({ events: CORPUS.slice(0, 30), retain: 10 });
    assert.equal(kept.firstSeq, 21);
    const r = raw(`${kept.url}?cursor=0`);
    await until('kept events', 5_000, () => r.texts.length >= 10);
    await sleep(50);
    r.ws.close();
    assert.deepEqual(r.events(), PUBLIC.slice(20, 30));
  });

  it('segmentEvents models 1ddfc3a64c5f: a time cursor past the sealed segments replays the whole active one', async () => {
    const fresh = await serve({ events: CORPUS.slice(0, 20), segmentEvents: Number.POSITIVE_INFINITY });
    const a = raw(`${fresh.url}?cursor=${CORPUS[15]!.time_us}`);
    const sealed = await serve({ events: CORPUS.slice(0, 20), segmentEvents: 8 });
    const inSealed = raw(`${sealed.url}?cursor=${CORPUS[5]!.time_us}`);
    const pastSealed = raw(`${sealed.url}?cursor=${CORPUS[18]!.time_us}`);
    await until('replays', 5_000, () => a.texts.length >= 20 && inSealed.texts.length >= 15 && pastSealed.texts.length >= 4);
    await sleep(100);
    for (const c of [a, inSealed, pastSealed]) c.ws.close();
    assert.deepEqual(a.events(), PUBLIC.slice(0, 20), 'no sealed segment: everything retained');
    assert.deepEqual(inSealed.events(), PUBLIC.slice(5, 20), 'inside a sealed segment: exact');
    assert.deepEqual(pastSealed.events(), PUBLIC.slice(16, 20), 'the active segment starts at seq 17');
  });

  it('requireHello: nothing until the first valid options_update, which sets the filter', async () => {
    const srv = await serve({ events: CORPUS });
    const c = raw(`${srv.url}?cursor=0&requireHello=true&wantedCollections=app.bsky.feed.post`);
    await c.opened;
    await sleep(300);
    assert.equal(c.texts.length, 0);
    c.ws.send(JSON.stringify({ type: 'something_else', payload: {} })); // ignored, still waiting
    await sleep(100);
    assert.equal(c.texts.length, 0);
    c.ws.send(JSON.stringify({ type: 'options_update', payload: { wantedCollections: [LIKE] } }));
    const want = PUBLIC.filter((e) => e.kind !== 'commit' || e.commit!.collection === LIKE);
    await until('events after hello', 5_000, () => c.texts.length >= want.length);
    await sleep(100);
    assert.deepEqual(c.events(), want);
    // later updates swap the filter for what follows, maxMessageSizeBytes included
    const small = CORPUS.filter((e) => e.kind === 'commit' && Buffer.byteLength(encodeEvent(e, 0, e.time_us!, false)) <= 450);
    c.ws.send(JSON.stringify({ type: 'options_update', payload: { maxMessageSizeBytes: 450 } }));
    await sleep(100);
    const before = c.texts.length;
    srv.push(...CORPUS.filter((e) => e.kind === 'commit').map(stripCursor).map((e) => ({ ...e, time_us: undefined })));
    await until('small events', 5_000, () => c.texts.length >= before + small.length);
    await sleep(100);
    c.ws.close();
    assert.equal(c.texts.length, before + small.length);
    assert.ok(c.texts.slice(before).every((t) => Buffer.byteLength(t) <= 450));

    // live (no cursor): what was pushed before the hello is not sent
    const live = raw(`${srv.url}?requireHello=true`);
    await live.opened;
    srv.push({ ...stripCursor(CORPUS[0]!), time_us: undefined });
    await sleep(100);
    live.ws.send(JSON.stringify({ type: 'options_update', payload: {} }));
    await sleep(100);
    srv.push({ ...stripCursor(CORPUS[1]!), time_us: undefined });
    await until('one live event', 5_000, () => live.texts.length >= 1);
    await sleep(100);
    live.ws.close();
    assert.deepEqual(live.events().map((e) => e.did), [CORPUS[1]!.did]);

    // @skyware/jetstream's updateOptions mid-stream
    const sky = skyware({ endpoint: srv.url });
    await until('open', 5_000, () => srv.openConnections >= 1);
    await sleep(100);
    sky.js.updateOptions({ wantedCollections: ['app.bsky.feed.repost'] });
    await sleep(100);
    srv.push(...CORPUS.map(stripCursor).map((e) => ({ ...e, time_us: undefined })));
    const reposts = PUBLIC.filter((e) => e.kind !== 'commit' || e.commit!.collection === 'app.bsky.feed.repost');
    await until('reposts', 5_000, () => sky.events.length >= reposts.length);
    await sleep(100);
    sky.js.close();
    assert.deepEqual(sky.events.map((e) => [e.did, e.kind]), reposts.map((e) => [e.did, e.kind]));
  });

  it('refuses invalid parameters before the upgrade with the real server text', async () => {
    const srv = await serve({ events: CORPUS });
    const cases: [string, number, string][] = [
      ['wantedCollections=app.bsky.fo*', 400, 'subscribe: invalid options: invalid collection: app.bsky.fo*'],
      ['wantedCollections=', 400, 'subscribe: invalid options: invalid collection: '],
      ['wantedDids=did:plc:', 400, 'subscribe: invalid options: invalid DID: did:plc:'],
      [Array.from({ length: 101 }, (_, i) => `wantedCollections=a.b.c${i}`).join('&'), 400, 'subscribe: invalid options: too many wanted collections: > 100'],
      [Array.from({ length: 10_001 }, (_, i) => `wantedDids=did:web:h${i}.example`).join('&'), 400, 'subscribe: invalid options: number of URL query parameters exceeded limit'],
      ['cursor=abc', 400, 'subscribe: invalid cursor: "abc"'],
      ['cursor=-5', 400, 'subscribe: invalid cursor: negative value -5'],
      ['cursor=99999999999999999999', 400, 'subscribe: invalid cursor: "99999999999999999999"'],
      ['cursor=1;2', 400, 'subscribe: invalid options: invalid semicolon separator in query'],
      ['wantedDids=%zz', 400, 'subscribe: invalid options: invalid URL escape "%zz"'],
      // all valid: the handshake itself is what fails for a plain GET
      ['wantedCollections=app.bsky.*&maxMessageSizeBytes=junk&requireHello=yes', 426, 'WebSocket protocol violation: Connection header "keep-alive" does not contain Upgrade'],
    ];
    for (const [query, status, body] of cases) {
      const res = await fetch(`${srv.httpUrl}/subscribe?${query}`);
      assert.equal(res.status, status, query.slice(0, 80));
      assert.equal(await res.text(), `${body}\n`, query.slice(0, 80));
      assert.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8');
    }
    // what the clients see: skyware reports an error and keeps reconnecting
    const sky = skyware({ endpoint: srv.url, wantedCollections: ['app.bsky.fo*'] });
    await until('an error', 5_000, () => sky.errors.length > 0);
    sky.js.close();
    assert.equal(srv.handshakes.at(-1)!.status, 400);
    assert.equal(sky.events.length, 0);
  });

  it('options_update errors close the socket with the real codes', async () => {
    const srv = await serve({ events: CORPUS });
    const cases: [unknown, number, string][] = [
      ['not json', 1007, 'bad SubscriberSourcedMessage envelope'],
      [{ type: 'options_update', payload: 'x' }, 1007, 'bad options_update payload'],
      [{ type: 'options_update', payload: { wantedCollections: ['app.bsky.fo*'] } }, 1008, 'subscribe: invalid options: invalid collection: app.bsky.fo*'],
      [{ type: 'options_update', payload: { wantedDids: Array.from({ length: 10_001 }, (_, i) => `did:web:h${i}`) } }, 1008, 'subscribe: invalid options: too many wanted DIDs: 10001 > 10000'],
      [' '.repeat(10_000_001), 1009, 'read limited at 10000001 bytes'],
    ];
    for (const [msg, code, reason] of cases) {
      const c = raw(`${srv.url}?requireHello=true`);
      await c.opened;
      c.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
      await until(`close ${code}`, 5_000, () => c.closed !== undefined);
      assert.deepEqual(c.closed, { code, reason });
    }
  });

  it('dropConnections is an abnormal close (1006); @atcute/jetstream reconnects from its last time_us, inclusive', async () => {
    const srv = await serve({ events: CORPUS.slice(0, 50) });
    // Node's own WebSocket (undici, under both clients) and ws see 1006, not clean
    const native = new globalThis.WebSocket(srv.url);
    cleanups.push(() => native.close());
    const nativeClose = new Promise<{ code: number; wasClean: boolean }>((resolve) => {
      native.onclose = (ev) => resolve({ code: ev.code, wasClean: ev.wasClean });
    });
    const c = raw(srv.url);
    await c.opened;
    await until('both open', 5_000, () => srv.openConnections === 2);
    assert.equal(srv.dropConnections(), 2);
    assert.deepEqual(await nativeClose, { code: 1006, wasClean: false });
    await until('close', 5_000, () => c.closed !== undefined);
    assert.equal(c.closed!.code, 1006);

    const at = atcute({ url: `ws://127.0.0.1:${srv.port}`, cursor: CORPUS[0]!.time_us! });
    await until('50 events', 10_000, () => at.events.length >= 50);
    const before = srv.connections;
    srv.dropConnections();
    // partysocket turns undici's error + 1006 into an error and a synthetic clean 1000
    await until('a close', 5_000, () => at.closes.length >= 1);
    assert.ok(at.errors.length >= 1);
    assert.deepEqual(at.closes[0], { code: 1000, wasClean: true });
    await until('the reconnect', 5_000, () => srv.connections > before && srv.openConnections === 1);
    srv.push(...CORPUS.slice(50, 60));
    await until('the rest', 5_000, () => at.events.length >= 61);
    await sleep(100);
    await at.stop();
    assert.equal(srv.requests.at(-1)!.searchParams.get('cursor'), String(CORPUS[49]!.time_us));
    // the cursor is inclusive: the last event before the drop comes again
    assert.deepEqual(at.events, [...PUBLIC.slice(0, 50), PUBLIC[49], ...PUBLIC.slice(50, 60)]);
  });

  it('closeWith and close send close frames; shutdown is 1001 "server shutting down"', async () => {
    const srv = await serve({ events: CORPUS });
    const a = raw(srv.url);
    await a.opened;
    await srv.closeWith(1008, 'policy');
    assert.deepEqual(a.closed, { code: 1008, reason: 'policy' });
    const b = raw(srv.url);
    await b.opened;
    await srv.close();
    await until('close', 2_000, () => b.closed !== undefined);
    assert.deepEqual(b.closed, { code: 1001, reason: 'server shutting down' });
  });

  it('pings once events may flow, stall() holds everything, a reader that stops reading is dropped', async () => {
    const srv = await serve({ events: CORPUS, pingIntervalMs: 100, writeTimeoutMs: 500, highWaterMark: 64 << 10 });
    const hello = raw(`${srv.url}?requireHello=true`);
    const plain = raw(srv.url);
    await Promise.all([hello.opened, plain.opened]);
    await until('pings', 2_000, () => plain.pings >= 2);
    assert.equal(hello.pings, 0, 'no ping before the hello');
    hello.ws.close();

    srv.stall();
    const pingsAtStall = plain.pings;
    srv.push(CORPUS[0]!);
    await sleep(300);
    assert.equal(plain.texts.length, 0);
    assert.equal(plain.pings, pingsAtStall);
    srv.resume();
    await until('the held event', 2_000, () => plain.texts.length === 1);
    plain.ws.close();

    // stop reading: the server's queue stays at its high-water mark, then the socket goes
    // (no pings here: an unanswered one would end it first, after pongTimeoutMs)
    const quiet = await serve({ writeTimeoutMs: 500, highWaterMark: 64 << 10 });
    const stuck = raw(quiet.url);
    await stuck.opened;
    (stuck.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const start = Date.now();
    for (const e of loopEvents(CORPUS, 20_000)) quiet.push({ ...e, time_us: undefined });
    await until('the drop', 5_000, () => quiet.openConnections === 0);
    assert.ok(Date.now() - start < 3_000, 'dropped by the write timeout');
    (stuck.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await until('client close', 5_000, () => stuck.closed !== undefined);
    assert.equal(stuck.closed!.code, 1006);
    assert.ok(stuck.texts.length < 20_000);
  });
});
