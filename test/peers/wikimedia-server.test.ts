// The Wikimedia EventStreams stand-in (test/support/wikimedia-server.ts) against a real SSE
// client, the `eventsource` package, and a plain HTTP reader where the client hides the bytes:
// the fixture in order with its ids, Last-Event-ID and since, cut connections, comments,
// refusals, headers, backpressure. What each check pins: docs/wikimedia-protocol.md.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import { after, describe, it } from 'node:test';
import { EventSource } from 'eventsource';

import {
  loadWikimediaFixture,
  loopWikimediaEvents,
  startWikimediaServer,
  type WikimediaEvent,
  type WikimediaServer,
} from '../support/wikimedia-server.ts';

const FIXTURE = loadWikimediaFixture();
const RC = 'eqiad.mediawiki.recentchange';
const RC_CODFW = 'codfw.mediawiki.recentchange';
/** the Kafka timestamp of a fixture event: its meta.dt, whole seconds */
const ts = (e: WikimediaEvent): number => Date.parse(e.meta!.dt!);
/** what the eventstreams deserializer makes of a stored message: the fixture already carries its meta.topic/partition/offset */
const wire = (e: WikimediaEvent): string => JSON.stringify(e);
const T0 = Date.parse('2026-01-01T00:00:00Z');

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const f of cleanups.reverse()) await f();
});

async function serve(opts: Parameters<typeof startWikimediaServer>[0] = {}): Promise<WikimediaServer> {
  const srv = await startWikimediaServer(opts);
  cleanups.push(() => srv.close());
  return srv;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until(what: string, ms: number, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

interface Got {
  type: string;
  data: string;
  lastEventId: string;
}

/** A real EventSource client, collecting what it dispatches. */
function client(url: string) {
  const es = new EventSource(url);
  const got: Got[] = [];
  const errors: { code: number | undefined; message: string | undefined }[] = [];
  let opens = 0;
  es.addEventListener('open', () => opens++);
  es.addEventListener('message', (ev: MessageEvent) => got.push({ type: ev.type, data: ev.data as string, lastEventId: ev.lastEventId }));
  es.addEventListener('error', (ev) => errors.push({ code: ev.code, message: ev.message }));
  cleanups.push(() => es.close());
  return {
    es,
    got,
    errors,
    get opens() {
      return opens;
    },
  };
}

interface Frame {
  event?: string;
  id?: string;
  retry?: string;
  data?: string;
}

/** The body as SSE blocks: comments, complete frames with data, and what follows the last blank line. */
function parseSse(text: string): { comments: string[]; frames: Frame[]; rest: string } {
  const blocks = text.split('\n\n');
  const rest = blocks.pop()!;
  const comments: string[] = [];
  const frames: Frame[] = [];
  for (const b of blocks) {
    const f: Frame = {};
    for (const line of b.split('\n')) {
      if (line.startsWith(':')) comments.push(line);
      else {
        const i = line.indexOf(': ');
        (f as Record<string, string>)[line.slice(0, i)] = line.slice(i + 2);
      }
    }
    // a block without data (retry: alone) dispatches nothing
    if (f.data !== undefined) frames.push(f);
  }
  return { comments, frames, rest };
}

/** A plain HTTP reader: every byte of the body, as decoded text. */
function reader(url: string, headers: Record<string, string> = {}) {
  const r = {
    status: 0,
    statusMessage: '',
    headers: {} as IncomingHttpHeaders,
    text: '',
    /** blank lines seen: one per frame or comment */
    blanks: 0,
    last: '',
    ended: false,
    closed: false,
    error: undefined as Error | undefined,
    res: undefined as http.IncomingMessage | undefined,
  };
  const req = http.get(url, { headers, agent: false }, (res) => {
    r.status = res.statusCode ?? 0;
    r.statusMessage = res.statusMessage ?? '';
    r.headers = res.headers;
    r.res = res;
    res.setEncoding('utf8');
    res.on('data', (d: string) => {
      // a blank line split across two chunks still counts once
      // (r.text.slice(-1) would flatten the growing string on every chunk)
      r.blanks += (r.last + d).split('\n\n').length - 1;
      r.last = d.slice(-1);
      r.text += d;
    });
    res.on('end', () => (r.ended = true));
    res.on('close', () => (r.closed = true));
    res.on('error', (e) => (r.error = e));
  });
  req.on('error', (e) => (r.error = e));
  cleanups.push(() => req.destroy());
  return Object.assign(r, { close: () => req.destroy(), sse: () => parseSse(r.text) });
}

/** The id of a fixture event on a timestamp-id stream that came in by `since` (codfw: offsetsForTimes' -1). */
const sinceId = (e: WikimediaEvent): string =>
  `[{"topic":"${RC}","partition":0,"timestamp":${ts(e) + 1}},{"offset":-1,"partition":0,"topic":"${RC_CODFW}"}]`;

describe('Wikimedia EventStreams stand-in against eventsource 5', () => {
  it('since before the capture: all 144 fixture events, in order, each with its id; then live ones', async () => {
    const srv = await serve();
    assert.equal(srv.size, 144);
    const c = client(srv.streamUrl('recentchange', { since: '2025-05-03T07:46:00Z' }));
    await until('144 events', 10_000, () => c.got.length >= 144);
    assert.deepEqual(
      c.got.map((g) => g.data),
      FIXTURE.map(wire),
    );
    assert.ok(c.got.every((g) => g.type === 'message'));
    assert.deepEqual(
      c.got.map((g) => g.lastEventId),
      FIXTURE.map(sinceId),
    );

    // Without since or Last-Event-ID a stream starts at the newest: only what is pushed later.
    // Its codfw entry is the assignment itself, shaped as the shared sample shows it.
    const live = client(srv.url);
    await until('open', 5_000, () => live.opens === 1 && srv.openConnections === 2);
    const [next] = [...loopWikimediaEvents(FIXTURE, 1, { startMs: T0 })];
    const [s] = srv.push(next!);
    assert.equal(s!.offset, FIXTURE.at(-1)!.meta!.offset! + 1);
    await until('the live event', 5_000, () => live.got.length === 1 && c.got.length === 145);
    assert.equal(live.got[0]!.data, JSON.stringify(next));
    assert.equal(live.got[0]!.lastEventId, `[{"topic":"${RC}","partition":0,"timestamp":${T0 + 1}},{"topic":"${RC_CODFW}","partition":0,"offset":-1}]`);
    const sample = readFileSync(new URL('../fixtures/wikimedia/sse-framing-sample.txt', import.meta.url), 'utf8');
    const sampleId = JSON.parse(/^id: (.*)$/m.exec(sample)![1]!) as Record<string, unknown>[];
    assert.deepEqual(
      (JSON.parse(live.got[0]!.lastEventId) as Record<string, unknown>[]).map(Object.keys),
      sampleId.map(Object.keys),
    );
  });

  it('Last-Event-ID with offsets (idField offset) resumes right after: no gap, no duplicate', async () => {
    const srv = await serve({ events: FIXTURE.slice(0, 72), idField: 'offset', retryMs: 50 });
    // since=0 is a timestamp (a truthy string): every stored message
    const c = client(srv.streamUrl('recentchange', { since: 0 }));
    await until('72 events', 5_000, () => c.got.length === 72);
    const resumeId = c.got[71]!.lastEventId;
    assert.equal(resumeId, `[{"topic":"${RC}","partition":0,"offset":${FIXTURE[71]!.meta!.offset! + 1}},{"offset":-1,"partition":0,"topic":"${RC_CODFW}"}]`);
    assert.equal(srv.dropConnections(), 1);
    srv.push(...FIXTURE.slice(72));
    await until('the rest', 5_000, () => c.got.length >= 144);
    await sleep(50);
    assert.deepEqual(
      c.got.map((g) => g.data),
      FIXTURE.map(wire),
    );
    assert.ok(c.errors.length >= 1, 'the cut is an error event');
    assert.equal(srv.connections, 2);
    const again = srv.requests.at(-1)!;
    assert.equal(again.headers['last-event-id'], resumeId);
    assert.equal(again.url.searchParams.get('since'), '0', 'since is still sent, and ignored for Last-Event-ID');
  });

  it('Last-Event-ID with timestamps (the default) resumes at the first message with timestamp >= last + 1', async () => {
    // Distinct, increasing timestamps: exact, like offsets.
    const events = [...loopWikimediaEvents(FIXTURE, 200, { startMs: T0 })];
    const srv = await serve({ events: events.slice(0, 100), retryMs: 50 });
    const c = client(srv.streamUrl('recentchange', { since: T0 }));
    await until('100 events', 5_000, () => c.got.length === 100);
    srv.dropConnections();
    srv.push(...events.slice(100));
    await until('200 events', 5_000, () => c.got.length >= 200);
    await sleep(50);
    assert.deepEqual(
      c.got.map((g) => g.data),
      events.map((e) => JSON.stringify(e)),
    );
    assert.equal(srv.requests.at(-1)!.headers['last-event-id'], `[{"topic":"${RC}","partition":0,"timestamp":${T0 + 99 + 1}},{"offset":-1,"partition":0,"topic":"${RC_CODFW}"}]`);

    // The capture's real timestamps are whole seconds and not in offset order: a resume after
    // event k starts at the first offset whose second is past k's, which skips or repeats some.
    const fx = await serve();
    const k = FIXTURE.findIndex((e, i) => FIXTURE.findIndex((f) => ts(f) >= ts(e) + 1) !== i + 1);
    const from = FIXTURE.findIndex((f) => ts(f) >= ts(FIXTURE[k]!) + 1);
    assert.ok(k >= 0 && from !== k + 1);
    const r = reader(fx.url, { 'Last-Event-ID': sinceId(FIXTURE[k]!), accept: 'text/event-stream' });
    await until('the resumed events', 5_000, () => r.sse().frames.length >= 144 - from);
    await sleep(50);
    const frames = r.sse().frames;
    assert.deepEqual(
      frames.map((f) => f.data),
      FIXTURE.slice(from).map(wire),
    );
    // offset entries first, then the offsetsForTimes results: the id's order turned round
    assert.equal(frames[0]!.id, `[{"offset":-1,"partition":0,"topic":"${RC_CODFW}"},{"topic":"${RC}","partition":0,"timestamp":${ts(FIXTURE[from]!) + 1}}]`);
  });

  it('since: an ISO time or ms starts at the first message at or after it; the future is live', async () => {
    const srv = await serve();
    const t = Date.parse('2025-05-03T07:47:00Z');
    const from = FIXTURE.findIndex((e) => ts(e) >= t);
    assert.ok(from > 0 && FIXTURE.slice(from).some((e) => ts(e) < t), 'later offsets may hold earlier times');
    const iso = reader(srv.streamUrl('recentchange', { since: '2025-05-03T07:47:00Z' }));
    const ms = reader(srv.streamUrl('recentchange', { since: t }));
    const future = client(srv.streamUrl('recentchange', { since: '2030-01-01T00:00:00Z' }));
    await until('both replays', 5_000, () => iso.sse().frames.length >= 144 - from && ms.sse().frames.length >= 144 - from);
    await until('future open', 5_000, () => future.opens === 1);
    for (const r of [iso, ms]) {
      assert.deepEqual(
        r.sse().frames.map((f) => f.data),
        FIXTURE.slice(from).map(wire),
      );
    }
    const [next] = srv.push({ ...FIXTURE[0]!, meta: { ...FIXTURE[0]!.meta, dt: '2031-01-01T00:00:00Z' } });
    await until('the live event', 5_000, () => future.got.length === 1);
    assert.equal(future.got[0]!.data, next!.data);
    // its eqiad entry is now the message's; codfw's is still offsetsForTimes' -1 for the future
    assert.equal(future.got[0]!.lastEventId, `[{"topic":"${RC}","partition":0,"timestamp":${Date.parse('2031-01-01T00:00:00Z') + 1}},{"offset":-1,"partition":0,"topic":"${RC_CODFW}"}]`);
  });

  it('a connection cut inside an event: the half is never dispatched, the reconnect brings it whole, once', async () => {
    const events = [...loopWikimediaEvents(FIXTURE, 11, { startMs: T0 })];
    const srv = await serve({ events: [], retryMs: 50 });
    const c = client(srv.url);
    const r = reader(srv.url, { accept: 'text/event-stream' });
    await until('both open', 5_000, () => srv.openConnections === 2);
    srv.push(...events.slice(0, 10));
    await until('10 events', 5_000, () => c.got.length === 10 && r.sse().frames.length === 10);
    srv.push(events[10]!);
    assert.equal(await srv.dropMidEvent(), 2);
    await until('the reader sees the cut', 5_000, () => r.closed);
    assert.equal(r.ended, false, 'no end chunk');
    const cut = r.sse().rest;
    assert.ok(cut.startsWith(`event: message\nid: [{"topic":"${RC}","partition":0,"timestamp":${T0 + 10 + 1}}`), cut.slice(0, 120));
    assert.ok(!cut.includes('\n\n') && cut.length < JSON.stringify(events[10]).length);

    await until('the event after the reconnect', 5_000, () => c.got.length >= 11);
    await sleep(100);
    assert.deepEqual(
      c.got.map((g) => g.data),
      events.map((e) => JSON.stringify(e)),
    );
    assert.ok(c.errors.length >= 1);
    assert.equal(c.opens, 2);
    assert.equal(srv.requests.at(-1)!.headers['last-event-id'], c.got[9]!.lastEventId);
  });

  it('comments: ":ok" when a stream opens and nothing while idle; heartbeatMs repeats it; clients dispatch none', async () => {
    const quiet = await serve({ events: [] });
    const q = reader(quiet.url, { accept: 'text/event-stream' });
    await until('the first bytes', 5_000, () => q.text.length > 0);
    await sleep(300);
    assert.equal(q.text, ':ok\n\n', 'the real server writes nothing more while idle');

    const srv = await serve({ events: [], heartbeatMs: 40 });
    const r = reader(srv.url, { accept: 'text/event-stream' });
    const c = client(srv.url);
    await sleep(300);
    assert.ok(r.text.startsWith(':ok\n\n:ok\n\n'), JSON.stringify(r.text.slice(0, 40)));
    assert.ok(r.sse().comments.length >= 4 && r.sse().comments.every((l) => l === ':ok'));
    assert.equal(r.sse().frames.length, 0);
    assert.equal(c.got.length, 0);
    assert.equal(c.errors.length, 0);
    assert.equal(c.es.readyState, EventSource.OPEN);

    // stall() holds comments and events alike
    srv.stall();
    await sleep(50);
    const held = r.text.length;
    srv.push(...loopWikimediaEvents(FIXTURE, 1, { startMs: T0 }));
    await sleep(150);
    assert.equal(r.text.length, held);
    srv.resume();
    await until('the held event', 5_000, () => c.got.length === 1 && r.sse().frames.length === 1);
  });

  it('Last-Event-ID edges: offset words, out of range, topic names with since, one partition only', async () => {
    const srv = await serve();
    const sse = { accept: 'text/event-stream' };
    // an entry with an offset keeps it (a timestamp beside it is ignored); only its partition is consumed
    const earliest = reader(srv.url, { ...sse, 'Last-Event-ID': `[{"topic":"${RC}","partition":0,"offset":"earliest","timestamp":0}]` });
    // topic names as a JSON string, split on commas, start where since says
    const names = reader(srv.streamUrl('recentchange', { since: 0 }), { ...sse, 'Last-Event-ID': `"${RC},${RC_CODFW}"` });
    // below the log start: librdkafka resets to the end
    const old = reader(srv.url, { ...sse, 'Last-Event-ID': `[{"topic":"${RC}","partition":0,"offset":5}]` });
    await until('replays', 5_000, () => earliest.sse().frames.length >= 144 && names.sse().frames.length >= 144 && old.text.length > 0);
    assert.deepEqual(
      earliest.sse().frames.map((f) => f.data),
      FIXTURE.map(wire),
    );
    assert.equal(earliest.sse().frames[0]!.id, `[{"topic":"${RC}","partition":0,"timestamp":${ts(FIXTURE[0]!) + 1}}]`);
    assert.equal(names.sse().frames[143]!.id, sinceId(FIXTURE[143]!));
    const [next] = srv.push(...loopWikimediaEvents(FIXTURE, 1, { startMs: T0 }));
    await until('the live event', 5_000, () => old.sse().frames.length === 1 && earliest.sse().frames.length === 145);
    assert.equal(old.sse().frames[0]!.data, next!.data);

    const bad = reader(srv.url, { 'Last-Event-ID': `[{"topic":"${RC}","partition":0,"offset":"nope","timestamp":1}]` });
    await until('the refusal', 5_000, () => bad.ended);
    assert.equal(bad.status, 500);
    assert.equal(bad.statusMessage, 'TypeError: "offset", if provided as a string, must be beginning, end, or stored.');
    assert.equal(bad.text, '{}\n');
  });

  it('refusals carry the real bodies; EventSource does not retry them', async () => {
    const srv = await serve();
    const unknown = await fetch(srv.streamUrl('recentchange,nope', { since: 'x' }));
    assert.equal(unknown.status, 400);
    assert.equal(unknown.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.deepEqual(await unknown.json(), {
      status: 400,
      type: 'not_found',
      title: 'Stream Not Found',
      detail: 'Invalid streams: nope',
      method: 'GET',
      uri: '/v2/stream/recentchange,nope?since=x',
    });
    const badSince = await fetch(srv.streamUrl('recentchange', { since: 'yesterday' }));
    assert.equal(badSince.status, 400);
    assert.equal(
      await badSince.text(),
      `{"status":400,"type":"invalid_timestamp","title":"Invalid timestamp","detail":"since timestamp is not a UTC milliseconds unix epoch and was not parseable: 'yesterday'","method":"GET","uri":"/v2/stream/recentchange?since=yesterday"}`,
    );

    // KafkaSSE's own refusals: the error as JSON and a newline, no content type, the error as the reason phrase
    let parseError = '';
    try {
      JSON.parse('xyz');
    } catch (e) {
      parseError = (e as Error).message;
    }
    const cases: [string, number, string][] = [
      ['xyz', 400, `{"message":${JSON.stringify(parseError)},"origin":"KafkaSSE","name":"InvalidAssignmentError","originalName":"SyntaxError","last_event_id":"xyz","statusCode":400}`],
      [
        '[{"topic":"x"}]',
        400,
        '{"message":"Must provide either an array topic names, or  an array of objects with topic, partition and offset|timestamp.","origin":"KafkaSSE","name":"InvalidAssignmentError","originalName":"Error","assignments":[{"topic":"x"}],"statusCode":400}',
      ],
      [
        '[{"topic":"eqiad.mediawiki.page-create","partition":0,"offset":1}]',
        404,
        `{"message":"Topics eqiad.mediawiki.page-create are not available for consumption.","origin":"KafkaSSE","name":"TopicNotAvailableError","availableTopics":["${RC}","${RC_CODFW}"],"statusCode":404}`,
      ],
    ];
    for (const [lastEventId, status, body] of cases) {
      const r = reader(srv.url, { 'Last-Event-ID': lastEventId });
      await until('the refusal', 5_000, () => r.ended);
      assert.equal(r.status, status, lastEventId);
      assert.equal(r.text, `${body}\n`);
      assert.equal(r.statusMessage, `${(JSON.parse(body) as { name: string; message: string }).name}: ${(JSON.parse(body) as { message: string }).message}`);
      assert.equal(r.headers['content-type'], undefined);
      assert.equal(r.headers['transfer-encoding'], 'chunked');
    }

    const notFound = await fetch(`${srv.httpUrl}/v2/stream/`);
    assert.equal(notFound.status, 404);
    assert.match(await notFound.text(), /<pre>Cannot GET \/v2\/stream\/<\/pre>/);

    // the client fails the connection on a non-200 and never comes back
    const before = srv.requests.length;
    const c = client(srv.streamUrl('nope'));
    await until('an error', 5_000, () => c.errors.length === 1);
    await sleep(300);
    assert.equal(c.errors[0]!.code, 400);
    assert.equal(c.es.readyState, EventSource.CLOSED);
    assert.equal(srv.requests.length, before + 1);
  });

  it('headers, several streams in one id, and the JSON-lines variant for Accept: application/json', async () => {
    const srv = await serve({ events: FIXTURE.slice(0, 3) });
    const plain = reader(srv.streamUrl('recentchange', { since: 0 }));
    const sse = reader(srv.streamUrl('recentchange', { since: 0 }), { accept: 'text/event-stream' });
    const json = reader(srv.streamUrl('recentchange', { since: 0 }), { accept: 'application/json' });
    await until('three streams', 5_000, () => [plain, sse, json].every((r) => r.text.split('\n').length > 3));
    assert.equal(plain.headers['content-type'], 'text/event-stream');
    assert.equal(sse.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(json.headers['content-type'], 'application/json; charset=utf-8');
    for (const r of [plain, sse, json]) {
      assert.equal(r.status, 200);
      assert.equal(r.headers['cache-control'], 'no-cache');
      assert.equal(r.headers.connection, 'keep-alive');
      assert.equal(r.headers['transfer-encoding'], 'chunked');
      assert.equal(r.headers['access-control-allow-origin'], '*');
      assert.equal(r.headers['content-length'], undefined);
    }
    await until('json lines', 5_000, () => json.text.split('\n').length >= 5);
    assert.equal(json.text, `\n${FIXTURE.slice(0, 3).map(wire).join('\n')}\n`);
    assert.deepEqual(plain.sse().frames.map((f) => Object.keys(f)), [0, 1, 2].map(() => ['event', 'id', 'data']));

    // Two streams: one id entry per topic partition, in stream then topic order; each message
    // replaces its own partition's entry in place.
    const c = client(srv.streamUrl(['recentchange', 'page-create']));
    await until('open', 5_000, () => c.opens === 1 && srv.openConnections === 4);
    const page = { $schema: '/mediawiki/revision/create/1.1.0', meta: { topic: 'eqiad.mediawiki.page-create', dt: '2026-01-01T00:00:00Z' }, page_title: 'X' };
    const rc = { ...FIXTURE[3]!, meta: { ...FIXTURE[3]!.meta, dt: '2026-01-01T00:00:01Z' } };
    const [p, q] = srv.push(page, rc);
    assert.equal(p!.offset, 0, 'a fresh topic starts at 0');
    await until('2 events', 5_000, () => c.got.length === 2);
    assert.equal(c.got[0]!.data, '{"$schema":"/mediawiki/revision/create/1.1.0","meta":{"topic":"eqiad.mediawiki.page-create","dt":"2026-01-01T00:00:00Z","partition":0,"offset":0},"page_title":"X"}');
    const untouched = (t: string): string => `{"topic":"${t}","partition":0,"offset":-1}`;
    assert.equal(
      c.got[0]!.lastEventId,
      `[${untouched(RC)},${untouched(RC_CODFW)},{"topic":"eqiad.mediawiki.page-create","partition":0,"timestamp":${T0 + 1}},${untouched('codfw.mediawiki.page-create')}]`,
    );
    assert.equal(
      c.got[1]!.lastEventId,
      `[{"topic":"${RC}","partition":0,"timestamp":${q!.timestamp + 1}},${untouched(RC_CODFW)},{"topic":"eqiad.mediawiki.page-create","partition":0,"timestamp":${T0 + 1}},${untouched('codfw.mediawiki.page-create')}]`,
    );
  });

  it('backpressure: a reader that stops reading holds the server near its high-water mark, then gets all 20,000 events', async () => {
    const srv = await serve({ events: [] });
    const r = reader(srv.url, { accept: 'text/event-stream' });
    await until('open', 5_000, () => r.res !== undefined);
    r.res!.pause();
    const events = [...loopWikimediaEvents(FIXTURE, 20_000, { startMs: T0 })];
    const bytes = events.reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e)), 0);
    srv.push(...events);
    await sleep(300);
    const buffered = srv.bufferedBytes;
    assert.ok(buffered < 1 << 20, `buffered ${buffered} of ${bytes}`);
    const start = Date.now();
    r.res!.resume();
    await until('20,000 events', 20_000, () => r.blanks >= 20_001);
    const frames = r.sse().frames;
    assert.equal(frames.length, 20_000);
    assert.equal(frames[19_999]!.data, JSON.stringify(events[19_999]));
    const offsets = frames.map((f) => (JSON.parse(f.data!) as { meta: { offset: number } }).meta.offset);
    assert.ok(offsets.every((o, i) => o === events[i]!.meta!.offset));
    // a real client reads them too
    const c = client(srv.streamUrl('recentchange', { since: T0 }));
    await until('the client', 20_000, () => c.got.length >= 20_000);
    process.stdout.write(`# 20,000 events (${bytes} bytes of data): ${buffered} bytes queued while paused; both readers done ${Date.now() - start} ms after resuming\n`);
  });
});
