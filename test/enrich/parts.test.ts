// The enricher's building blocks on their own: the cache, the address guard, the pacing, the
// document rules. The enricher tests cover them again end to end, against HTTP servers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { isDisallowedAddress } from '../../src/enrich/address.ts';
import { allowedTld, classifyDid, declaredHandle, firstArrayElement, parseAuditLog, parseDocument, parseRfc3339 } from '../../src/enrich/document.ts';
import { Gate, TokenBucket, backoffMs, retryAfterMs } from '../../src/enrich/limits.ts';
import { TtlLru } from '../../src/enrich/lru.ts';

describe('TtlLru', () => {
  test('holds at most its size, evicting the least recently used', () => {
    const lru = new TtlLru<string, number>(3);
    for (const [i, k] of ['a', 'b', 'c'].entries()) lru.set(k, i, 1000, 0);
    assert.equal(lru.get('a', 1), 0); // a is now the most recent
    lru.set('d', 3, 1000, 2);
    assert.equal(lru.size, 3);
    assert.equal(lru.get('b', 3), undefined);
    assert.deepEqual(['a', 'c', 'd'].map((k) => lru.get(k, 3)), [0, 2, 3]);
    for (let i = 0; i < 1000; i++) lru.set(`k${i}`, i, 1000, 4);
    assert.equal(lru.size, 3);
  });

  test('entries expire, and a stale entry makes room before a fresh one is evicted', () => {
    const lru = new TtlLru<string, string>(3);
    lru.set('fresh1', 'x', 10_000, 0);
    lru.set('short', 'y', 10, 0);
    lru.set('fresh2', 'z', 10_000, 0);
    assert.equal(lru.get('short', 5), 'y');
    assert.equal(lru.expiresAt('fresh1', 5), 10_000);
    lru.set('new', 'n', 10_000, 20); // 'short' is stale by now
    assert.equal(lru.get('fresh1', 21), 'x');
    assert.equal(lru.get('fresh2', 21), 'z');
    assert.equal(lru.get('short', 21), undefined);
    assert.equal(lru.get('fresh1', 10_000), undefined);
  });

  test('a key read between every insert survives a stream of new keys', () => {
    const lru = new TtlLru<string, number>(4);
    lru.set('hot', 0, 1e9, 0);
    for (let i = 0; i < 1000; i++) {
      lru.set(`cold${i}`, i, 1e9, 0);
      assert.equal(lru.get('hot', 0), 0, `after ${i} inserts`);
    }
    assert.equal(lru.size, 4);
  });

  test('a hit returns the stored object itself; set on an existing key renews it', () => {
    const lru = new TtlLru<string, object>(2);
    const v = {};
    lru.set('k', v, 100, 0);
    assert.equal(lru.get('k', 50), v);
    lru.set('k', v, 100, 90);
    assert.equal(lru.get('k', 150), v);
    assert.equal(lru.delete('k'), true);
    assert.equal(lru.size, 0);
    assert.throws(() => new TtlLru(0), RangeError);
  });
});

describe('address guard', () => {
  test('refuses loopback, private, link-local, CGNAT and unspecified addresses, v4 and v6', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '10.0.0.1', '172.16.5.4', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '100.127.255.254', '0.0.0.0', '224.0.0.1', '255.255.255.255',
      '::1', '::', 'fc00::1', 'fd12:3456::1', 'fe80::1', 'fe80::1%eth0', '[::1]', '::ffff:127.0.0.1', '::ffff:a00:1', '64:ff9b::10.0.0.1', '2002:c0a8:101::1', 'ff02::1', 'not-an-ip']) {
      assert.equal(isDisallowedAddress(a), true, a);
    }
  });

  test('lets public addresses through', () => {
    for (const a of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '192.169.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::8.8.8.8', '2002:808:808::1']) {
      assert.equal(isDisallowedAddress(a), false, a);
    }
  });
});

describe('pacing', () => {
  test('token bucket: the burst goes at once (at most a second of the rate), the rest at the rate, in order', async () => {
    const bucket = new TokenBucket(20, 100);
    const start = performance.now();
    const order: number[] = [];
    await Promise.all(Array.from({ length: 40 }, (_, i) => bucket.take().then(() => order.push(i))));
    const elapsed = performance.now() - start;
    // 20 at once, then 20 more at 20/s.
    assert.ok(elapsed >= 900 && elapsed < 2000, `${elapsed} ms`);
    assert.deepEqual(order, [...order].sort((a, b) => a - b));
    bucket.close();
  });

  test('token bucket: holdFor stops everyone until then; close rejects the waiters', async () => {
    const bucket = new TokenBucket(1000, 100);
    bucket.holdFor(300);
    const start = performance.now();
    await bucket.take();
    assert.ok(performance.now() - start >= 290);
    bucket.holdFor(10_000);
    const waiting = bucket.take();
    bucket.close();
    await assert.rejects(waiting, /closed/);
    await assert.rejects(bucket.take(), /closed/);
  });

  test('gate: at most the limit inside, first come first served', async () => {
    const gate = new Gate(2);
    const order: number[] = [];
    await gate.enter();
    await gate.enter();
    const waiting = [0, 1, 2].map((i) => gate.enter().then(() => order.push(i)));
    assert.equal(gate.active, 2);
    gate.leave();
    gate.leave();
    gate.leave();
    await Promise.all(waiting);
    assert.deepEqual(order, [0, 1, 2]);
    assert.equal(gate.active, 2);
    const rejected = gate.enter();
    gate.close();
    await assert.rejects(rejected, /closed/);
  });

  test('backoff grows with jitter; Retry-After reads seconds and dates', () => {
    assert.equal(backoffMs(0, () => 0), 50);
    assert.equal(backoffMs(0, () => 1), 100);
    assert.equal(backoffMs(3, () => 1), 800);
    assert.equal(backoffMs(20, () => 1), 1000);
    assert.equal(retryAfterMs('2', 0), 2000);
    assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4000), 6000);
    assert.equal(retryAfterMs(undefined, 0), undefined);
    assert.equal(retryAfterMs('soon', 0), undefined);
  });
});

describe('identity syntax and documents', () => {
  const did = 'did:plc:wcwznsmiysskhxht6zp2ew7u';

  test('DIDs: plc needs 24 base32 characters; web a bare hostname, a %3A port allowed; other methods unsupported', () => {
    assert.deepEqual(classifyDid(did), { method: 'plc' });
    assert.equal(classifyDid('did:plc:WCWZNSMIYSSKHXHT6ZP2EW7U').method, 'unsupported');
    assert.equal(classifyDid('did:plc:../../admin').method, 'unsupported');
    assert.deepEqual(classifyDid('did:web:example.com'), { method: 'web', host: 'example.com' });
    assert.deepEqual(classifyDid('did:web:localhost%3A8080'), { method: 'web', host: 'localhost%3A8080' });
    assert.deepEqual(classifyDid('did:web:pds.example.org%3a443'), { method: 'web', host: 'pds.example.org%3a443' });
    assert.equal(classifyDid('did:web:example.com:user:alice').method, 'unsupported');
    assert.equal(classifyDid('did:web:localhost').method, 'unsupported');
    assert.equal(classifyDid('did:web:host.local').method, 'unsupported');
    assert.equal(classifyDid('did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme').method, 'unsupported');
    assert.equal(classifyDid('not a did').method, 'unsupported');
  });

  test('reserved TLDs are refused, .test is allowed (as indigo AllowedTLD)', () => {
    for (const h of ['a.alt', 'a.arpa', 'a.example', 'a.internal', 'handle.invalid', 'a.local', 'a.localhost', 'a.onion', 'A.ONION']) assert.equal(allowedTld(h), false, h);
    for (const h of ['alice.test', 'bsky.social', 'example.com']) assert.equal(allowedTld(h), true, h);
  });

  test('declared handle: the first at:// entry that is a valid handle, lowercased', () => {
    assert.equal(declaredHandle(['https://x.example', 'at://', 'at://not_valid', 'at://Alice.Example.COM', 'at://second.com']), 'alice.example.com');
    assert.equal(declaredHandle(['at://did:plc:abc']), undefined);
    assert.equal(declaredHandle([]), undefined);
  });

  test('keeps keys the DID controls, the first per fragment; rebuilds ids as Go does', () => {
    const parsed = parseDocument(did, JSON.stringify({
      '@context': ['https://www.w3.org/ns/did/v1'],
      id: did,
      alsoKnownAs: ['at://alice.test'],
      verificationMethod: [
        { id: '#atproto', type: 'Multikey', controller: did, publicKeyMultibase: 'zFirst' },
        { id: `${did}#atproto`, type: 'Multikey', controller: did, publicKeyMultibase: 'zDuplicate' },
        { id: '#other', type: 'Multikey', controller: 'did:plc:someoneelse00000000000000', publicKeyMultibase: 'zForeign' },
        { id: 'nofragment', type: 'Multikey', controller: did, publicKeyMultibase: 'zNoFragment' },
        { id: 'x#label', type: 'Multikey', controller: did, publicKeyMultibase: 'zLabel', extra: 1 },
      ],
      service: [
        { id: `${did}#atproto_pds`, type: 'AtprotoPersonalDataServer', serviceEndpoint: 'https://PDS.Example.com:8443/base' },
        { id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: 'https://second.example' },
        null,
      ],
    }));
    assert.ok(parsed.ok);
    assert.equal(
      parsed.value.json,
      `{"id":"${did}","alsoKnownAs":["at://alice.test"],"verificationMethod":[{"id":"${did}#atproto","type":"Multikey","controller":"${did}","publicKeyMultibase":"zFirst"},{"id":"${did}#label","type":"Multikey","controller":"${did}","publicKeyMultibase":"zLabel"}],"service":[{"id":"#atproto_pds","type":"AtprotoPersonalDataServer","serviceEndpoint":"https://PDS.Example.com:8443/base"}]}`,
    );
    assert.equal(parsed.value.pdsEndpoint, 'https://PDS.Example.com:8443/base');
    assert.equal(parsed.value.pdsHostname, 'pds.example.com');
    assert.equal(parsed.value.declaredHandle, 'alice.test');
  });

  test('omits empty arrays; no PDS service gives an empty endpoint', () => {
    const parsed = parseDocument(did, JSON.stringify({ id: did, alsoKnownAs: [], verificationMethod: null }));
    assert.ok(parsed.ok);
    assert.equal(parsed.value.json, `{"id":"${did}"}`);
    assert.equal(parsed.value.pdsEndpoint, '');
    assert.equal(parsed.value.pdsHostname, '');
    assert.equal(parsed.value.declaredHandle, undefined);
    const badUrl = parseDocument(did, JSON.stringify({ id: did, service: [{ id: '#atproto_pds', type: 'x', serviceEndpoint: 'http://host:port/%zz' }] }));
    assert.ok(badUrl.ok);
    assert.equal(badUrl.value.pdsEndpoint, '');
  });

  test('refuses what Go cannot decode or indigo refuses', () => {
    for (const [text, why] of [
      ['not json', /not JSON/],
      ['[]', /not a JSON object/],
      ['null', /not a JSON object/],
      [JSON.stringify({ id: 'did:plc:other' }), /does not match/],
      [JSON.stringify({ id: 5 }), /not a string/],
      [JSON.stringify({ id: did, alsoKnownAs: 'at://x.com' }), /alsoKnownAs/],
      [JSON.stringify({ id: did, alsoKnownAs: [1] }), /alsoKnownAs/],
      [JSON.stringify({ id: did, verificationMethod: ['#atproto'] }), /verificationMethod/],
      [JSON.stringify({ id: did, verificationMethod: [{ id: '#atproto', publicKeyMultibase: 7 }] }), /verificationMethod/],
      [JSON.stringify({ id: did, service: [{ id: '#atproto_pds', type: 'x', serviceEndpoint: { uri: 'https://pds.example' } }] }), /service/],
      [JSON.stringify({ id: did, service: {} }), /service/],
    ] as const) {
      const parsed = parseDocument(did, text);
      assert.equal(parsed.ok, false, text);
      if (!parsed.ok) assert.match(parsed.message, why, text);
    }
  });

  test('audit log: the first entry\'s createdAt, even from a log cut at the size cap', () => {
    const entry = { did, operation: { type: 'plc_operation', sig: 'x', prev: null, services: {}, alsoKnownAs: ['at://a"]}.test'] }, cid: 'bafy', nullified: false, createdAt: '2024-03-01T10:20:30.456Z' };
    const text = JSON.stringify([entry, { ...entry, createdAt: '2025-01-01T00:00:00.000Z' }]);
    assert.deepEqual(parseAuditLog(text, false), { ok: true, value: '2024-03-01T10:20:30.456Z' });
    assert.deepEqual(parseAuditLog(text.slice(0, text.length - 30), true), { ok: true, value: '2024-03-01T10:20:30.456Z' });
    assert.equal(firstArrayElement(' [ {"a":"}"} , {'), '{"a":"}"}');
    assert.equal(firstArrayElement('[{"a":"'), undefined);
    assert.equal(parseAuditLog('[]', false).ok, false);
    assert.equal(parseAuditLog('{}', false).ok, false);
    assert.equal(parseAuditLog('[{"createdAt":5}]', false).ok, false);
    assert.deepEqual(parseAuditLog('[{}]', false), { ok: true, value: '' });
  });

  test('RFC 3339 as Go parses it', () => {
    assert.equal(parseRfc3339('2024-03-01T10:20:30.456Z'), Date.UTC(2024, 2, 1, 10, 20, 30, 456));
    assert.equal(parseRfc3339('2024-03-01T10:20:30.029999999Z'), Date.UTC(2024, 2, 1, 10, 20, 30, 29));
    assert.equal(parseRfc3339('2024-03-01T10:20:30+02:00'), Date.UTC(2024, 2, 1, 8, 20, 30));
    assert.equal(parseRfc3339('0050-01-01T00:00:00Z'), -60589296000000);
    for (const bad of ['2024-03-01', '2024-03-01 10:20:30Z', '2024-02-30T00:00:00Z', '2024-03-01T24:00:00Z', '2024-03-01T10:20:30', 'yesterday']) assert.equal(parseRfc3339(bad), undefined, bad);
  });
});
