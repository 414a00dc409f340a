// Upstreams that misbehave: a PLC that hangs, fails, throttles, talks garbage, sends too much or
// the wrong document. The enricher must resolve null (or degrade the part that failed), never
// throw, remember the failure for negativeTtlMs and not ask again before.
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';

import { metadataJson, type EnricherOptions } from '../../src/enrich/index.ts';
import { FakeDns, enricher, memoryLogger, pdsDocs, profileView, sleep, startAppView, startPlc, type StandIn } from './helpers.ts';

const TIMEOUT = 300;
const RETRIES = 2;
const NEGATIVE_TTL = 700;

// 24 base32 characters each, so they are well-formed did:plc.
const did = (name: string): string => `did:plc:${(name + 'aaaaaaaaaaaaaaaaaaaaaaaa').slice(0, 24)}`;

describe('enricher failures', () => {
  const docs = pdsDocs();
  const [ALICE] = Object.keys(docs) as [string];
  let plc: Awaited<ReturnType<typeof startPlc>>;
  let appview: StandIn;
  const dns = new FakeDns();
  const profiles = new Map<string, Record<string, unknown> | { error: string; message: string; status?: number }>();
  /** path -> how to answer it instead of the stand-in's normal answer */
  const behaviour = new Map<string, (res: ServerResponse, attempt: number) => void>();
  const attempts = new Map<string, number>();
  const open = new Set<ServerResponse>();

  before(async () => {
    plc = await startPlc(docs);
    plc.override = (_req, res, url) => {
      const answer = behaviour.get(decodeURIComponent(url.pathname));
      if (answer === undefined) return false;
      const n = (attempts.get(url.pathname) ?? 0) + 1;
      attempts.set(url.pathname, n);
      open.add(res);
      res.on('close', () => open.delete(res));
      answer(res, n);
      return true;
    };
    appview = await startAppView(profiles);
  });
  after(async () => {
    for (const res of open) res.destroy();
    await Promise.all([plc.close(), appview.close()]);
  });

  const make = (extra: Partial<EnricherOptions> = {}) =>
    enricher({ plcHost: plc.url, requestTimeoutMs: TIMEOUT, retries: RETRIES, negativeTtlMs: NEGATIVE_TTL, resolveTxt: dns.resolveTxt, ...extra });
  const docHits = (d: string) => plc.count((p) => p === `/${d}`);

  /** Resolves null, is then negatively cached (sync null, no new request), and is asked again after the TTL. */
  async function failsAndIsRemembered(d: string, expectedRequests: number, maxMs: number): Promise<void> {
    using e = make();
    const start = performance.now();
    assert.equal(await e.resolve(d), null);
    const elapsed = performance.now() - start;
    assert.ok(elapsed < maxMs, `took ${elapsed} ms`);
    assert.equal(docHits(d), expectedRequests);
    assert.equal(e.cached(d), null);
    assert.equal(await e.resolve(d), null);
    assert.equal(docHits(d), expectedRequests, 'no request inside negativeTtlMs');
    await sleep(NEGATIVE_TTL + 50);
    assert.equal(e.cached(d), undefined);
    assert.equal(await e.resolve(d), null);
    assert.ok(docHits(d) > expectedRequests, 'asked again after negativeTtlMs');
  }

  test('a PLC that never answers: null within about timeout x (retries + 1)', async () => {
    const d = did('hang');
    behaviour.set(`/${d}`, () => {});
    // The retries' backoff (50-100 ms, then 100-200 ms) comes on top.
    await failsAndIsRemembered(d, RETRIES + 1, TIMEOUT * (RETRIES + 1) + 700);
  });

  test('500 on every attempt: retried, then null', async () => {
    const d = did('fivehundred');
    behaviour.set(`/${d}`, (res) => res.writeHead(500).end('oops'));
    await failsAndIsRemembered(d, RETRIES + 1, 2000);
  });

  test('429 with Retry-After: the retries wait as told, then null', async () => {
    const d = did('throttled');
    behaviour.set(`/${d}`, (res) => res.writeHead(429, { 'retry-after': '1' }).end());
    const before = plc.hits.length;
    using e = make();
    const start = performance.now();
    assert.equal(await e.resolve(d), null);
    assert.ok(performance.now() - start >= 1900);
    const times = plc.hits.slice(before).filter((h) => h.path === `/${d}`).map((h) => h.at);
    assert.equal(times.length, RETRIES + 1);
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= 950, `attempt ${i} came after ${times[i]! - times[i - 1]!} ms`);
    assert.equal(e.cached(d), null);
  });

  test('a Retry-After past the cap is not waited for', async () => {
    const d = did('throttledlong');
    behaviour.set(`/${d}`, (res) => res.writeHead(429, { 'retry-after': '3600' }).end());
    using e = make();
    const start = performance.now();
    assert.equal(await e.resolve(d), null);
    assert.ok(performance.now() - start < 1000);
    assert.equal(docHits(d), 1);
  });

  test('a transient 500 or 429 is retried and then succeeds', async () => {
    const d500 = did('flakyfive');
    const d429 = did('flakylimited');
    for (const d of [d500, d429]) plc.state.docs.set(d, { id: d, alsoKnownAs: [] });
    behaviour.set(`/${d500}`, (res, n) => (n === 1 ? res.writeHead(503).end() : res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: d500 }))));
    behaviour.set(`/${d429}`, (res, n) => (n === 1 ? res.writeHead(429, { 'retry-after': '1' }).end() : res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: d429 }))));
    using e = make();
    const start = performance.now();
    const [a, b] = await Promise.all([e.resolve(d500), e.resolve(d429)]);
    assert.ok(a && b);
    assert.ok(performance.now() - start >= 950);
    assert.equal(docHits(d500), 2);
    assert.equal(docHits(d429), 2);
  });

  test('garbage, a wrong id, a 404: no retry, null', async () => {
    const garbage = did('garbage');
    behaviour.set(`/${garbage}`, (res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>Bad gateway</html>'));
    await failsAndIsRemembered(garbage, 1, 1000);
    const wrong = did('wrongid');
    behaviour.set(`/${wrong}`, (res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...docs[ALICE], id: ALICE })));
    await failsAndIsRemembered(wrong, 1, 1000);
    const wrongTypes = did('wrongtypes');
    behaviour.set(`/${wrongTypes}`, (res) => res.writeHead(200).end(JSON.stringify({ id: wrongTypes, service: [{ id: '#atproto_pds', type: 'x', serviceEndpoint: { uri: 'https://x' } }] })));
    await failsAndIsRemembered(wrongTypes, 1, 1000);
    await failsAndIsRemembered(did('notregistered'), 1, 1000);
  });

  test('an oversized body, declared or endless: the read stops at the cap, null', async () => {
    const declared = did('bigdeclared');
    behaviour.set(`/${declared}`, (res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(4 << 20) });
      res.write(`{"id":"${declared}","alsoKnownAs":["`);
    });
    await failsAndIsRemembered(declared, 1, 1000);
    const endless = did('endless');
    let written = 0;
    behaviour.set(`/${endless}`, (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`{"id":"${endless}","alsoKnownAs":["`);
      const chunk = 'x'.repeat(64 * 1024);
      const pump = (): void => {
        while (!res.destroyed && written < 64 << 20 && res.write(chunk)) written += chunk.length;
        if (!res.destroyed && written < 64 << 20) res.once('drain', pump);
      };
      pump();
    });
    const { logger, lines } = memoryLogger();
    using e = make({ logger, maxResponseBytes: 256 * 1024 });
    const start = performance.now();
    assert.equal(await e.resolve(endless), null);
    assert.ok(performance.now() - start < TIMEOUT, 'stopped at the cap, not at the timeout');
    await sleep(50);
    assert.ok(written < 16 << 20, `the server wrote ${written} bytes before the client hung up`);
    assert.equal(lines.find((l) => l.msg === 'DID document lookup failed')?.status, 'too_large');
  });

  test('the audit log failing alone: metadata without didCreatedAt, accountAge -1, audit retried after negativeTtlMs', async () => {
    dns.records.set('_atproto.alice-renamed.test', [[`did=${ALICE}`]]);
    behaviour.set(`/${ALICE}/log/audit`, (res, n) => (n <= RETRIES + 1 ? res.writeHead(502).end() : res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify([{ did: ALICE, createdAt: '2024-11-21T10:00:00.000Z' }]))));
    using e = make();
    const meta = await e.resolve(ALICE);
    assert.ok(meta);
    assert.equal(meta.createdAtMs, undefined);
    assert.match(metadataJson(meta, Date.now()), /"handle":"alice-renamed.test","accountAge":-1,"profile":null}$/);
    assert.equal(e.cached(ALICE), meta); // kept, but only for negativeTtlMs
    const docsBefore = docHits(ALICE);
    await sleep(NEGATIVE_TTL + 50);
    assert.equal(e.cached(ALICE), undefined);
    const again = await e.resolve(ALICE);
    assert.equal(again!.createdAtMs, Date.parse('2024-11-21T10:00:00.000Z'));
    assert.match(again!.head, /"didCreatedAt":"2024-11-21T10:00:00.000Z","accountAge":$/);
    assert.equal(docHits(ALICE), docsBefore, 'only the audit log was fetched again');
    behaviour.delete(`/${ALICE}/log/audit`);
  });

  test('a profile the AppView refuses (400 AccountTakedown) or fails on: profile null, not asked again for negativeTtlMs', async () => {
    const [, BOB, CAROL] = Object.keys(docs) as [string, string, string];
    profiles.set(BOB, { error: 'AccountTakedown', message: 'Account has been suspended' });
    profiles.set(CAROL, { error: 'InternalServerError', message: 'boom', status: 500 });
    using e = make({ apiHost: appview.url + '/' });
    const [bob, carol] = await Promise.all([e.resolve(BOB), e.resolve(CAROL)]);
    assert.ok(bob && carol);
    assert.equal(bob.tail, ',"profile":null}');
    assert.equal(carol.tail, ',"profile":null}');
    const actor = (d: string) => appview.count((p) => p.includes(encodeURIComponent(d)));
    assert.equal(actor(BOB), 1);
    assert.equal(actor(CAROL), RETRIES + 1);
    await Promise.all([e.resolve(BOB), e.resolve(CAROL)]);
    assert.equal(actor(BOB) + actor(CAROL), 1 + RETRIES + 1);
    // Small accounts' profiles are cached too (the Go version does not cache them at all), just not long.
    profiles.set(ALICE, profileView(ALICE, 'alice-renamed.test', { followers: 2, follows: 1, posts: 0 }));
    const alice = await e.resolve(ALICE);
    assert.match(alice!.tail, /"followersCount":2/);
    assert.equal(e.cached(ALICE), alice);
  });

  test('close(): lookups in flight resolve null at once, later ones too, nothing is left pending', async () => {
    const d = did('hangclose');
    behaviour.set(`/${d}`, () => {});
    const e = make({ requestTimeoutMs: 10_000, maxConcurrentLookups: 1 });
    const inFlight = [e.resolve(d), e.resolve(did('queuedclose'))];
    await sleep(50);
    assert.equal(e.pending, 2);
    const start = performance.now();
    e.close();
    assert.deepEqual(await Promise.all(inFlight), [null, null]);
    assert.ok(performance.now() - start < 200);
    assert.equal(e.pending, 0);
    assert.equal(await e.resolve(ALICE), null);
    e.close(); // twice is fine
  });

  test('hostile callbacks and resolvers do not make resolve() throw', async () => {
    using e = make({
      resolveTxt: () => {
        throw new Error('resolver exploded');
      },
      wellKnownUrl: () => 'not a url',
      didWebUrl: () => {
        throw new Error('bad mapping');
      },
    });
    const meta = await e.resolve(ALICE);
    assert.match(meta!.head, /"handle":"handle.invalid"/);
    assert.equal(await e.resolve('did:web:example.com'), null);
    assert.equal(await e.resolve(''), null);
    assert.equal(await e.resolve('did:plc:'), null);
  });
});
