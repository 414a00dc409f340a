// The enricher against stand-ins for PLC, the AppView, handle hosts and DNS: the metadata it builds
// from real documents (the exact JSON the Go at-kafka emits), handle verification, did:web,
// the cache and its invalidation, in-flight de-duplication, metrics.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { metadataJson, type EventMetadata } from '../../src/enrich/index.ts';
import { registry } from '../../src/telemetry/metrics.ts';
import { FakeDns, enricher, memoryLogger, networkDocs, pdsDocs, profileView, startAppView, startPlc, startWeb, type DidDocument, type StandIn } from './helpers.ts';

const ALICE = 'did:plc:wcwznsmiysskhxht6zp2ew7u';
const BOB = 'did:plc:emencac5cx2gec3wbtxfgjhm';
const CAROL = 'did:plc:ivekgqxcrmy5wfq4zrisvyxr';
const NET = 'did:plc:2a7ygipkrbh544aqhcav53oy'; // at://t045t.zmb.cm on elfcup.us-east.host.bsky.network
const CREATED = '2024-11-21T10:00:00.000Z';
const isDoc = (did: string) => (p: string) => p === `/${did}`;
const isAudit = (did: string) => (p: string) => p === `/${did}/log/audit`;

describe('enricher', () => {
  const docs: Record<string, DidDocument> = { ...pdsDocs(), ...networkDocs() };
  let plc: Awaited<ReturnType<typeof startPlc>>;
  let appview: StandIn;
  let web: StandIn;
  const files = new Map<string, string>();
  const dns = new FakeDns();
  const profiles = new Map<string, Record<string, unknown> | { error: string; message: string }>();

  before(async () => {
    plc = await startPlc(docs);
    appview = await startAppView(profiles);
    web = await startWeb(files);
    dns.records.set('_atproto.alice-renamed.test', [['did=', ALICE]]); // DNS may split a record in chunks
    profiles.set(ALICE, profileView(ALICE, 'alice-renamed.test'));
  });
  after(async () => {
    await Promise.all([plc.close(), appview.close(), web.close()]);
  });

  const base = () => ({ plcHost: plc.url, resolveTxt: dns.resolveTxt, wellKnownUrl: (h: string) => `${web.url}/${h}/.well-known/atproto-did`, allowPrivateAddresses: true });

  test('a real PLC document gives the JSON the Go version emits, field for field', async () => {
    using e = enricher({ ...base(), apiHost: appview.url });
    assert.equal(e.cached(ALICE), undefined);
    const meta = await e.resolve(ALICE);
    assert.ok(meta);
    const now = Date.parse(CREATED) + 86_400_999;
    assert.equal(
      metadataJson(meta, now),
      '{"didDocument":{"id":"did:plc:wcwznsmiysskhxht6zp2ew7u","alsoKnownAs":["at://alice-renamed.test"],' +
        '"verificationMethod":[{"id":"did:plc:wcwznsmiysskhxht6zp2ew7u#atproto","type":"EcdsaSecp256k1VerificationKey2019",' +
        '"controller":"did:plc:wcwznsmiysskhxht6zp2ew7u","publicKeyMultibase":"zRYCvkc1BQzewSFXPpYfVDopxUjJKTsGjQ4APDtVhM9nP2SuKDZRJ9gZwrgpSVkdQnoBSn4fGAuY8QxejXfRkdnsX"}],' +
        '"service":[{"id":"#atproto_pds","type":"AtprotoPersonalDataServer","serviceEndpoint":"http://localhost:2583"}]},' +
        '"pdsHost":"http://localhost:2583","handle":"alice-renamed.test","didCreatedAt":"2024-11-21T10:00:00.000Z","accountAge":86400,' +
        '"profile":{"did":"did:plc:wcwznsmiysskhxht6zp2ew7u","handle":"alice-renamed.test","displayName":"Alice <& Co>","description":"first line\\nsecond line 🦋",' +
        '"avatar":"https://cdn.bsky.app/img/avatar/plain/did:plc:wcwznsmiysskhxht6zp2ew7u/bafkreiabc@jpeg",' +
        '"associated":{"lists":0,"feedgens":0,"starterPacks":0,"labeler":false,"activitySubscription":{"allowSubscriptions":"followers"}},' +
        '"labels":[],"createdAt":"2024-11-21T10:00:05.000Z","indexedAt":"2024-11-21T10:00:05.000Z","followersCount":120,"followsCount":80,"postsCount":340}}',
    );
    assert.equal(meta.pdsEndpoint, 'http://localhost:2583');
    assert.equal(meta.pdsHostname, 'localhost');
    assert.equal(meta.createdAtMs, Date.parse(CREATED));
    // accountAge truncates toward zero, as Go's int64(seconds).
    assert.match(metadataJson(meta, Date.parse(CREATED) + 999), /"accountAge":0,/);
    assert.match(metadataJson(meta, Date.parse(CREATED) - 1500), /"accountAge":-1,/);
    assert.doesNotMatch(metadataJson(meta, Date.parse(CREATED) - 500), /-0/);
  });

  test('a warm hit is synchronous and returns the same object, with no request', async () => {
    using e = enricher({ ...base(), apiHost: appview.url });
    const first = await e.resolve(ALICE);
    const hits = plc.hits.length + appview.hits.length + dns.queries.length;
    const warm = e.cached(ALICE);
    assert.ok(warm);
    assert.equal(warm, first);
    assert.equal(e.cached(ALICE), warm);
    assert.equal(await e.resolve(ALICE), warm);
    assert.equal(plc.hits.length + appview.hits.length + dns.queries.length, hits);
    assert.ok(Object.isFrozen(warm));
  });

  test('a live-network document; the handle verified over the HTTPS well-known when DNS has none; no API host, no profile', async () => {
    files.set('/t045t.zmb.cm/.well-known/atproto-did', `${NET}\n`);
    using e = enricher(base());
    const before = appview.hits.length;
    const meta = await e.resolve(NET);
    assert.ok(meta);
    assert.equal(
      metadataJson(meta, Date.parse(CREATED) + 10_000),
      '{"didDocument":{"id":"did:plc:2a7ygipkrbh544aqhcav53oy","alsoKnownAs":["at://t045t.zmb.cm"],' +
        '"verificationMethod":[{"id":"did:plc:2a7ygipkrbh544aqhcav53oy#atproto","type":"Multikey","controller":"did:plc:2a7ygipkrbh544aqhcav53oy","publicKeyMultibase":"zQ3shrc8v5X6ZiANcZxA6JerfT2T4SskeCGxpmtDfMuHF9KRj"}],' +
        '"service":[{"id":"#atproto_pds","type":"AtprotoPersonalDataServer","serviceEndpoint":"https://elfcup.us-east.host.bsky.network"}]},' +
        '"pdsHost":"https://elfcup.us-east.host.bsky.network","handle":"t045t.zmb.cm","didCreatedAt":"2024-11-21T10:00:00.000Z","accountAge":10,"profile":null}',
    );
    assert.equal(meta.pdsHostname, 'elfcup.us-east.host.bsky.network');
    assert.ok(dns.queries.includes('_atproto.t045t.zmb.cm'));
    assert.equal(web.count((p) => p === '/t045t.zmb.cm/.well-known/atproto-did'), 1);
    assert.equal(appview.hits.length, before);
  });

  test('every one of the 148 network documents resolves, keeps its PDS and re-serialises as indigo would', async () => {
    const net = networkDocs();
    using e = enricher({ ...base(), resolveTxt: async () => [] });
    const metas = await Promise.all(Object.keys(net).map((did) => e.resolve(did)));
    for (const [i, [did, doc]] of Object.entries(net).entries()) {
      const meta = metas[i];
      assert.ok(meta, did);
      const parsed = JSON.parse(metadataJson(meta, Date.now())) as { didDocument: DidDocument; pdsHost: string; handle: string };
      const { '@context': _context, ...rest } = doc;
      // These documents already use full key ids and '#' service ids, so indigo's rebuild is the identity.
      assert.deepEqual(parsed.didDocument, rest, did);
      assert.equal(parsed.pdsHost, doc.service![0]!.serviceEndpoint);
      // No TXT records here, and a well-known only for the one an earlier test served.
      assert.equal(parsed.handle, did === NET ? 't045t.zmb.cm' : 'handle.invalid', did);
    }
  });

  test('handle mismatch over DNS or the well-known, and no declared handle, give handle.invalid', async () => {
    const handleOf = (m: EventMetadata | null) => (JSON.parse(metadataJson(m!, 0)) as { handle: string }).handle;
    dns.records.set('_atproto.bob.test', [['did=did:plc:someoneelse2345234523452']]);
    files.set('/bob.test/.well-known/atproto-did', BOB); // never asked: a DNS answer settles it, as in indigo
    files.set('/carol.test/.well-known/atproto-did', 'did:plc:notcarol23452345234523452');
    plc.state.docs.set('did:plc:nohandle2345234523452345', { id: 'did:plc:nohandle2345234523452345', alsoKnownAs: ['https://example.com', 'at://did:plc:x'] });
    using e = enricher(base());
    const dnsBefore = dns.queries.length;
    const [bob, carol, none] = await Promise.all([e.resolve(BOB), e.resolve(CAROL), e.resolve('did:plc:nohandle2345234523452345')]);
    assert.equal(handleOf(bob), 'handle.invalid');
    assert.equal(web.count((p) => p.startsWith('/bob.test/')), 0);
    assert.equal(handleOf(carol), 'handle.invalid');
    assert.equal(web.count((p) => p.startsWith('/carol.test/')), 1);
    assert.equal(handleOf(none), 'handle.invalid');
    assert.equal(dns.queries.length - dnsBefore, 2); // bob and carol; nothing to verify for the third
    assert.equal(
      metadataJson(none!, 0),
      '{"didDocument":{"id":"did:plc:nohandle2345234523452345","alsoKnownAs":["https://example.com","at://did:plc:x"]},"handle":"handle.invalid","didCreatedAt":"2024-11-21T10:00:00.000Z","accountAge":-1732183200,"profile":null}',
    );
  });

  test('reserved TLDs fail without a lookup; skipDnsSuffixes go straight to the well-known; a DNS error still tries it', async () => {
    const mk = (id: string, handle: string): DidDocument => ({ id, alsoKnownAs: [`at://${handle}`] });
    plc.state.docs.set('did:plc:reserved234523452345234a', mk('did:plc:reserved234523452345234a', 'alice.local'));
    plc.state.docs.set('did:plc:skipdns2345234523452345a', mk('did:plc:skipdns2345234523452345a', 'Someone.BSKY.social'));
    plc.state.docs.set('did:plc:servfail2345234523452345', mk('did:plc:servfail2345234523452345', 'flaky.example.org'));
    files.set('/someone.bsky.social/.well-known/atproto-did', 'did:plc:skipdns2345234523452345a');
    files.set('/flaky.example.org/.well-known/atproto-did', 'did:plc:servfail2345234523452345');
    dns.records.set('_atproto.flaky.example.org', 'ESERVFAIL');
    dns.records.set('_atproto.someone.bsky.social', [['did=did:plc:wrong']]);
    using e = enricher(base());
    const q = dns.queries.length;
    const metas = await Promise.all(['did:plc:reserved234523452345234a', 'did:plc:skipdns2345234523452345a', 'did:plc:servfail2345234523452345'].map((d) => e.resolve(d)));
    const handles = metas.map((m) => (JSON.parse(metadataJson(m!, 0)) as { handle: string }).handle);
    assert.deepEqual(handles, ['handle.invalid', 'someone.bsky.social', 'flaky.example.org']);
    assert.deepEqual(dns.queries.slice(q), ['_atproto.flaky.example.org']);
    assert.equal(web.count((p) => p.startsWith('/alice.local/')), 0);
  });

  test('did:web: the document from its host, no audit log (no didCreatedAt, accountAge -1)', async () => {
    const did = 'did:web:pds.example.com';
    const doc = {
      '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1'],
      id: did,
      alsoKnownAs: ['at://pds.example.com'],
      verificationMethod: [{ id: `${did}#atproto`, type: 'Multikey', controller: did, publicKeyMultibase: 'zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF' }],
      service: [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: 'https://pds.example.com' }],
    };
    files.set('/pds.example.com/did.json', JSON.stringify(doc));
    dns.records.set('_atproto.pds.example.com', [[`did=${did}`]]);
    using e = enricher({ ...base(), didWebUrl: (host) => `${web.url}/${host}/did.json` });
    const plcBefore = plc.hits.length;
    const meta = await e.resolve(did);
    assert.ok(meta);
    assert.equal(
      metadataJson(meta, Date.now()),
      '{"didDocument":{"id":"did:web:pds.example.com","alsoKnownAs":["at://pds.example.com"],"verificationMethod":[{"id":"did:web:pds.example.com#atproto","type":"Multikey","controller":"did:web:pds.example.com","publicKeyMultibase":"zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"}],' +
        '"service":[{"id":"#atproto_pds","type":"AtprotoPersonalDataServer","serviceEndpoint":"https://pds.example.com"}]},"pdsHost":"https://pds.example.com","handle":"pds.example.com","accountAge":-1,"profile":null}',
    );
    assert.equal(plc.hits.length, plcBefore);
    assert.equal(e.cached(did), meta);
    // Unsupported methods and malformed DIDs: no document, no request.
    assert.equal(await e.resolve('did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme'), null);
    assert.equal(await e.resolve('did:web:example.com:users:alice'), null);
    assert.equal(await e.resolve('did:plc:../../../etc/passwd'), null);
    assert.equal(plc.hits.length, plcBefore);
  });

  test('100 concurrent resolve() of one DID make one request of each kind and share one result', async () => {
    using e = enricher({ ...base(), apiHost: appview.url });
    const plcBefore = plc.hits.length;
    const apiBefore = appview.hits.length;
    const dnsBefore = dns.queries.length;
    const calls = Array.from({ length: 100 }, () => e.resolve(ALICE));
    assert.equal(e.pending, 1);
    const results = await Promise.all(calls);
    assert.ok(results.every((r) => r !== null && r === results[0]));
    assert.equal(plc.hits.slice(plcBefore).filter((h) => isDoc(ALICE)(h.path)).length, 1);
    assert.equal(plc.hits.slice(plcBefore).filter((h) => isAudit(ALICE)(h.path)).length, 1);
    assert.equal(appview.hits.length - apiBefore, 1);
    assert.equal(dns.queries.length - dnsBefore, 1);
    assert.equal(e.pending, 0);
  });

  test('purgeIdentity refetches document, audit log and handle (not the profile); dropProfile only the profile', async () => {
    using e = enricher({ ...base(), apiHost: appview.url });
    const first = await e.resolve(ALICE);
    const counts = () => ({ doc: plc.count(isDoc(ALICE)), audit: plc.count(isAudit(ALICE)), profile: appview.count(), dns: dns.queries.filter((q) => q === '_atproto.alice-renamed.test').length });
    const c0 = counts();

    e.dropProfile(ALICE);
    assert.equal(e.cached(ALICE), undefined);
    profiles.set(ALICE, { ...profileView(ALICE, 'alice-renamed.test'), displayName: 'Alice, renamed' });
    const second = await e.resolve(ALICE);
    assert.notEqual(second, first);
    assert.match(second!.tail, /"displayName":"Alice, renamed"/);
    assert.deepEqual(counts(), { ...c0, profile: c0.profile + 1 });

    // The identity changes: a new handle, verified again.
    const doc = structuredClone(docs[ALICE]!);
    doc.alsoKnownAs = ['at://alice-again.test'];
    plc.state.docs.set(ALICE, doc);
    dns.records.set('_atproto.alice-again.test', [[`did=${ALICE}`]]);
    assert.equal(e.cached(ALICE), second); // nothing refetched until told
    e.purgeIdentity(ALICE);
    assert.equal(e.cached(ALICE), undefined);
    const third = await e.resolve(ALICE);
    assert.match(third!.head, /"handle":"alice-again.test"/);
    const c2 = counts();
    assert.deepEqual({ doc: c2.doc, audit: c2.audit, profile: c2.profile }, { doc: c0.doc + 1, audit: c0.audit + 1, profile: c0.profile + 1 });
    assert.ok(dns.queries.includes('_atproto.alice-again.test'));
    plc.state.docs.set(ALICE, docs[ALICE]!);
    profiles.set(ALICE, profileView(ALICE, 'alice-renamed.test'));
  });

  test('a purge during a lookup keeps that lookup\'s (possibly old) answer out of the cache', async () => {
    using e = enricher(base());
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    plc.override = (_req, res, url) => {
      if (url.pathname !== `/${BOB}`) return false;
      void held.then(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(docs[BOB])));
      return true;
    };
    try {
      const old = e.resolve(BOB);
      await new Promise((r) => setTimeout(r, 50));
      e.purgeIdentity(BOB);
      const fresh = e.resolve(BOB); // a new lookup, not the purged one
      assert.notEqual(fresh, old);
      assert.equal(e.pending, 2);
      release();
      assert.ok(await old);
      assert.ok(await fresh);
      assert.equal(plc.count(isDoc(BOB)) >= 2, true);
    } finally {
      plc.override = undefined;
    }
  });

  test('the LRU bound holds: at most cacheEntries per cache, the oldest DIDs go first', async () => {
    const net = Object.keys(networkDocs()).slice(0, 12);
    using e = enricher({ ...base(), cacheEntries: 5, resolveTxt: async () => [] });
    for (const did of net) assert.ok(await e.resolve(did));
    for (const did of net.slice(0, 7)) assert.equal(e.cached(did), undefined, did);
    for (const did of net.slice(7)) assert.ok(e.cached(did), did);
    const sizes = await cacheSizes();
    // Other enrichers of this file are closed; this one holds 5 per cache (no profile, and no handle verified).
    assert.equal(sizes.did_doc, 5);
    assert.equal(sizes.audit_log, 5);
    assert.equal(sizes.profile, 0);
    assert.ok((sizes.handle ?? 0) <= 5);
  });

  test('metrics: Go names and labels, cache hits counted without a DID anywhere', async () => {
    using e = enricher({ ...base(), apiHost: appview.url });
    await e.resolve(ALICE);
    const before = await scrape();
    for (let i = 0; i < 10; i++) e.cached(ALICE);
    const afterText = await scrape();
    const delta = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
    for (const series of [
      'atkafka_plc_requests{kind="did_doc",status="ok",cached="true"}',
      'atkafka_plc_requests{kind="audit_log",status="ok",cached="true"}',
      'atkafka_plc_requests{kind="handle",status="ok",cached="true"}',
      'atkafka_api_requests{kind="profile",status="ok",cached="true"}',
    ]) {
      assert.equal(delta(afterText, series) - delta(before, series), 10, series);
    }
    assert.ok(delta(afterText, 'atkafka_plc_requests{kind="did_doc",status="ok",cached="false"}') >= 1);
    assert.match(afterText, /^atkafka_cache_size\{kind="did_doc"\} \d+$/m);
    assert.doesNotMatch(afterText, /did:plc:/);
  });

  test('log lines for failures are rate limited per kind and never show URL secrets', async () => {
    const { logger, lines } = memoryLogger();
    using e = enricher({ ...base(), plcHost: plc.url.replace('http://', 'http://operator:s3cret@') + '/', logger, retries: 0 });
    // Unknown DIDs: PLC says 404 for each.
    const unknown = Array.from({ length: 5 }, (_, i) => `did:plc:unknown2345672345672345${i}`);
    assert.deepEqual(await Promise.all(unknown.map((d) => e.resolve(d))), [null, null, null, null, null]);
    const docLines = lines.filter((l) => l.msg === 'DID document lookup failed');
    assert.equal(docLines.length, 1);
    assert.equal(docLines[0]!.status, 'not_found');
    const text = JSON.stringify(lines);
    assert.doesNotMatch(text, /s3cret/);
    assert.match(String(docLines[0]!.url), /^http:\/\/\*\*\*:\*\*\*@127\.0\.0\.1:\d+\/did:plc:unknown/);
  });
});

async function scrape(): Promise<string> {
  return registry.metrics();
}

async function cacheSizes(): Promise<Record<string, number>> {
  const text = await scrape();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^atkafka_cache_size\{kind="(\w+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}
