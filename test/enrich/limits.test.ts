// What the enricher holds back: the rate per upstream, the number of DIDs looked up at once, and
// requests to loopback/private hosts named by strangers (did:web, handle well-known).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { FakeDns, enricher, json, memoryLogger, profileView, sleep, startAppView, startPlc, startWeb, type DidDocument, type StandIn } from './helpers.ts';

const plcDid = (i: number): string => `did:plc:${String(i).padStart(4, 'a').replace(/\d/g, (c) => 'abcdefghij'[Number(c)]!)}${'x'.repeat(20)}`;

describe('enricher limits', () => {
  const many: Record<string, DidDocument> = {};
  for (let i = 0; i < 80; i++) many[plcDid(i)] = { id: plcDid(i), alsoKnownAs: [] };
  let plc: Awaited<ReturnType<typeof startPlc>>;
  let appview: StandIn;
  let web: StandIn;
  const files = new Map<string, string>();
  const dns = new FakeDns();

  before(async () => {
    plc = await startPlc(many);
    appview = await startAppView(new Map(Object.keys(many).map((d) => [d, profileView(d, 'x.test')])));
    web = await startWeb(files);
  });
  after(async () => {
    await Promise.all([plc.close(), appview.close(), web.close()]);
  });

  test('the PLC rate limit holds: 30 DIDs (60 requests) at 20/s take about 2 s', async () => {
    using e = enricher({ plcHost: plc.url, plcRateLimit: 20, resolveTxt: dns.resolveTxt });
    const dids = Object.keys(many).slice(0, 30);
    const start = performance.now();
    const first = plc.hits.length;
    const metas = await Promise.all(dids.map((d) => e.resolve(d)));
    const elapsed = performance.now() - start;
    assert.ok(metas.every((m) => m !== null));
    // A burst of 20 (one second's worth), then 40 more at 20/s.
    assert.ok(elapsed >= 1900 && elapsed < 6000, `${elapsed} ms`);
    const times = plc.hits.slice(first).map((h) => h.at - start);
    assert.equal(times.length, 60);
    assert.ok(times.filter((t) => t < 500).length <= 31, 'no more than the burst and half a second of the rate in the first half second');
  });

  test('the API rate limit is separate and holds too', async () => {
    using e = enricher({ plcHost: plc.url, apiHost: appview.url, apiRateLimit: 10, resolveTxt: dns.resolveTxt });
    const dids = Object.keys(many).slice(30, 50);
    const start = performance.now();
    await Promise.all(dids.map((d) => e.resolve(d)));
    const elapsed = performance.now() - start;
    // 20 profiles at 10/s with a burst of 10; the 40 PLC requests fit in the PLC burst.
    assert.ok(elapsed >= 950 && elapsed < 3000, `${elapsed} ms`);
  });

  test('at most maxConcurrentLookups DIDs at once; the others wait their turn, in order', async () => {
    let active = 0;
    let peak = 0;
    const order: string[] = [];
    plc.override = (_req, res, url) => {
      const d = decodeURIComponent(url.pathname.slice(1));
      if (!d.startsWith('did:plc:') || d.includes('/')) return false;
      order.push(d);
      active++;
      peak = Math.max(peak, active);
      setTimeout(() => {
        active--;
        json(res, 200, many[d]);
      }, 100);
      return true;
    };
    try {
      using e = enricher({ plcHost: plc.url, maxConcurrentLookups: 3, resolveTxt: dns.resolveTxt });
      const dids = Object.keys(many).slice(50, 62);
      const start = performance.now();
      const calls = dids.map((d) => e.resolve(d));
      assert.equal(e.pending, 12);
      await sleep(50);
      assert.equal(e.pending, 12);
      await Promise.all(calls);
      assert.equal(e.pending, 0);
      assert.equal(peak, 3);
      assert.deepEqual(order, dids);
      assert.ok(performance.now() - start >= 400, '4 rounds of 100 ms');
    } finally {
      plc.override = undefined;
    }
  });

  describe('SSRF guard', () => {
    const did = 'did:web:pds.example.com';
    const doc = JSON.stringify({ id: did, alsoKnownAs: ['at://alice.example.com'] });
    before(() => {
      files.set('/pds.example.com/did.json', doc);
      files.set('/alice.example.com/.well-known/atproto-did', did);
    });
    const opts = () => ({ plcHost: plc.url, resolveTxt: dns.resolveTxt, wellKnownUrl: (h: string) => `${web.url}/${h}/.well-known/atproto-did` });

    test('a did:web whose host is a loopback address is refused, and allowed with allowPrivateAddresses', async () => {
      const viaIp = (host: string) => `${web.url}/${host}/did.json`;
      const viaName = (host: string) => `${web.url.replace('127.0.0.1', 'localhost')}/${host}/did.json`;
      for (const didWebUrl of [viaIp, viaName]) {
        const before = web.hits.length;
        {
          const { logger, lines } = memoryLogger();
          using e = enricher({ ...opts(), didWebUrl, logger });
          assert.equal(await e.resolve(did), null);
          assert.equal(lines.find((l) => l.msg === 'DID document lookup failed')?.status, 'blocked');
          assert.equal(e.cached(did), null);
          assert.equal(web.hits.length, before, 'no request reached the host');
        }
        using e = enricher({ ...opts(), didWebUrl, allowPrivateAddresses: true });
        const meta = await e.resolve(did);
        assert.ok(meta, didWebUrl(did));
        assert.match(meta.head, /"handle":"alice.example.com"/);
        assert.ok(web.hits.length > before);
      }
    });

    test('a handle well-known on a loopback address is refused: handle.invalid, no request', async () => {
      using e = enricher({ ...opts(), didWebUrl: (host) => `${web.url}/${host}/did.json`, allowPrivateAddresses: false });
      // The did:web host is refused too, so serve the same identity from PLC instead.
      const plcId = plcDid(70);
      plc.state.docs.set(plcId, { id: plcId, alsoKnownAs: ['at://bob.example.com'] });
      files.set('/bob.example.com/.well-known/atproto-did', plcId);
      const before = web.hits.length;
      const meta = await e.resolve(plcId);
      assert.match(meta!.head, /"handle":"handle.invalid"/);
      assert.equal(web.hits.length, before);
      using allowed = enricher({ ...opts(), allowPrivateAddresses: true });
      assert.match((await allowed.resolve(plcId))!.head, /"handle":"bob.example.com"/);
    });

    test('the operator\'s own PLC and API hosts are not subject to the guard', async () => {
      using e = enricher({ plcHost: plc.url, apiHost: appview.url, resolveTxt: dns.resolveTxt });
      const meta = await e.resolve(plcDid(71));
      assert.ok(meta);
      assert.match(meta.tail, /"handle":"x.test"/);
    });
  });
});
