// The real peers of test/support/peers.ts do what the identity tests rely on.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { zstdDecompressSync } from 'node:zlib';

import { decodeFrame, type FirehoseEvent } from '../../src/atproto/frame.ts';
import { startPds, startPlc, type PdsPeer } from '../support/peers.ts';

const PEERS = fileURLToPath(new URL('../../tools/peers/', import.meta.url));
const CORPUS_DOCS = fileURLToPath(new URL('../fixtures/corpus/did_docs.json.zst', import.meta.url));
const PDS_DOCS = fileURLToPath(new URL('../fixtures/pds/did_docs.json', import.meta.url));
type Doc = { id: string; alsoKnownAs: string[]; service: { id: string; serviceEndpoint: string }[] };
const corpusDocs = JSON.parse(zstdDecompressSync(readFileSync(CORPUS_DOCS)).toString()) as Record<string, Doc>;

/** Runs an ES module snippet with tools/peers' packages (@did-plc/lib, @atproto/api...): JSON in, JSON out. */
function inPeers(code: string, input: unknown): any {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], {
    cwd: PEERS,
    input: JSON.stringify(input),
    encoding: 'utf8',
  });
  return JSON.parse(out);
}
const readStdin = `const input = JSON.parse((await import('node:fs')).readFileSync(0, 'utf8'));`;

const getJson = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as any };
};

describe('startPlc: a real @did-plc/server', () => {
  it('serves every seeded corpus DID: the same document, and an audit log from the given createdAt', async () => {
    await using plc = await startPlc({ seed: CORPUS_DOCS, createdAt: '2024-03-01T12:00:00.000Z' });
    assert.match(plc.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    for (const [did, doc] of Object.entries(corpusDocs)) {
      const got = await getJson(`${plc.url}/${did}`);
      assert.equal(got.status, 200);
      assert.match(got.type!, /^application\/did\+ld\+json/);
      assert.deepEqual(got.body, doc);
      const audit = await getJson(`${plc.url}/${did}/log/audit`);
      assert.equal(audit.status, 200);
      assert.equal(audit.body.length, 1);
      const [entry] = audit.body;
      assert.equal(entry.did, did);
      assert.equal(entry.createdAt, '2024-03-01T12:00:00.000Z');
      assert.equal(entry.nullified, false);
      assert.match(entry.cid, /^bafyrei/);
      assert.deepEqual(entry.operation.alsoKnownAs, doc.alsoKnownAs);
      assert.equal(entry.operation.services.atproto_pds.endpoint, doc.service[0]!.serviceEndpoint);
    }
    const missing = await getJson(`${plc.url}/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa`);
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.body, { message: 'DID not registered: did:plc:aaaaaaaaaaaaaaaaaaaaaaaa' });
  });

  it('takes per-DID createdAt from the seed file, and seeds in the server\'s own (older) document style', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'atkafka-peers-test-'));
    try {
      const docs = JSON.parse(readFileSync(PDS_DOCS, 'utf8')) as Record<string, Doc>;
      const [first, second] = Object.keys(docs);
      const seed = join(dir, 'seed.json');
      await writeFile(seed, JSON.stringify({ ...docs, createdAt: { [first!]: '2023-01-02T03:04:05.678Z' } }));
      await using plc = await startPlc({ seed });
      for (const [did, doc] of Object.entries(docs)) assert.deepEqual((await getJson(`${plc.url}/${did}`)).body, doc);
      assert.equal((await getJson(`${plc.url}/${first}/log/audit`)).body[0].createdAt, '2023-01-02T03:04:05.678Z');
      assert.equal((await getJson(`${plc.url}/${second}/log/audit`)).body[0].createdAt, '2023-05-01T12:00:00.000Z');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('lets a test change a seeded DID with a signed operation through the server\'s POST route', async () => {
    const key = inPeers(
      `const { Secp256k1Keypair } = await import('@atproto/crypto');
       const k = await Secp256k1Keypair.create({ exportable: true });
       console.log(JSON.stringify(Buffer.from(await k.export()).toString('hex')));`,
      null,
    ) as string;
    await using plc = await startPlc({ seed: CORPUS_DOCS, rotationKeyHex: key });
    const did = Object.keys(corpusDocs)[0]!;
    const status = inPeers(
      `${readStdin}
       const plc = await import('@did-plc/lib');
       const { Secp256k1Keypair } = await import('@atproto/crypto');
       const signer = await Secp256k1Keypair.import(input.key);
       await new plc.Client(input.url).updateHandle(input.did, signer, 'renamed.example.com');
       console.log(JSON.stringify('ok'));`,
      { key, url: plc.url, did },
    );
    assert.equal(status, 'ok');
    const doc = (await getJson(`${plc.url}/${did}`)).body;
    assert.deepEqual(doc.alsoKnownAs, ['at://renamed.example.com']);
    assert.deepEqual(doc.verificationMethod, (corpusDocs[did] as unknown as { verificationMethod: unknown }).verificationMethod);
    assert.equal((await getJson(`${plc.url}/${did}/log/audit`)).body.length, 2);
  });
});

describe('startPds: a real PDS, its PLC and the real AppView', () => {
  let net: PdsPeer;
  before(async () => {
    net = await startPds();
  });
  after(async () => {
    await net?.[Symbol.asyncDispose]();
  });

  it('prints the accounts, their PDS endpoints and a DID hosted elsewhere', () => {
    assert.match(net.pdsUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(net.accounts.length >= 2);
    for (const a of net.accounts) {
      assert.match(a.did, /^did:plc:[a-z2-7]{24}$/);
      assert.match(a.handle, /\.test$/);
      assert.ok(a.displayName);
    }
    const hosts = new Set(net.accounts.map((a) => new URL(a.pdsEndpoint).host));
    assert.ok(hosts.size >= 2, `PDS hosts: ${[...hosts]}`);
    assert.ok(net.accounts.some((a) => a.previousHandles.length === 1), 'one account changed its handle');
    assert.ok(net.remoteDids.length >= 1);
  });

  it('DID documents in the PLC name each account\'s handle and PDS endpoint', async () => {
    for (const a of [...net.accounts, ...net.remoteDids]) {
      const { status, body } = await getJson(`${net.plcUrl}/${a.did}`);
      assert.equal(status, 200);
      assert.deepEqual(body.alsoKnownAs, [`at://${a.handle}`]);
      assert.equal(body.service.find((s: { id: string }) => s.id === '#atproto_pds').serviceEndpoint, a.pdsEndpoint);
      assert.equal((await getJson(`${net.plcUrl}/${a.did}/log/audit`)).status, 200);
    }
  });

  it('handles verify both ways through wellKnownUrl; old and unknown handles do not', async () => {
    for (const a of net.accounts) {
      const res = await fetch(net.wellKnownUrl(a.handle));
      assert.equal(res.status, 200);
      assert.equal((await res.text()).trim(), a.did);
      assert.equal(net.wellKnownTemplate.replace('{handle}', a.handle), net.wellKnownUrl(a.handle));
      for (const old of a.previousHandles) assert.equal((await fetch(net.wellKnownUrl(old))).status, 404);
    }
    assert.equal((await fetch(net.wellKnownUrl('nobody.test'))).status, 404);
  });

  it('the AppView answers app.bsky.actor.getProfile with a valid profileViewDetailed, by DID and by handle', async () => {
    const views: unknown[] = [];
    for (const a of net.accounts) {
      for (const actor of [a.did, a.handle]) {
        const { status, body } = await getJson(`${net.appviewUrl}/xrpc/app.bsky.actor.getProfile?actor=${encodeURIComponent(actor)}`);
        assert.equal(status, 200, JSON.stringify(body));
        assert.equal(body.did, a.did);
        assert.equal(body.handle, a.handle);
        assert.equal(body.displayName, a.displayName);
        assert.equal(body.description, a.description);
        assert.equal(body.postsCount, a.counts.posts);
        assert.equal(body.followsCount, a.counts.follows);
        assert.equal(body.followersCount, a.counts.followers);
        assert.deepEqual(body.labels, []);
        assert.ok(!Number.isNaN(Date.parse(body.indexedAt)) && !Number.isNaN(Date.parse(body.createdAt)));
        views.push(body);
      }
    }
    assert.ok(net.accounts.some((a) => (views as { did: string; avatar?: string }[]).some((v) => v.did === a.did && v.avatar)), 'one profile has an avatar');
    // The lexicon's own validator (@atproto/api), not a hand-written shape.
    const problems = inPeers(
      `${readStdin}
       const { lexicons } = await import('@atproto/api');
       const problems = [];
       for (const v of input) {
         try { lexicons.assertValidXrpcOutput('app.bsky.actor.getProfile', v); } catch (e) { problems.push(v.handle + ': ' + e.message); }
       }
       console.log(JSON.stringify(problems));`,
      views,
    );
    assert.deepEqual(problems, []);
  });

  it('the AppView says "Profile not found" for unknown actors, old handles and DIDs it never indexed', async () => {
    const unknown = ['nobody.test', ...net.accounts.flatMap((a) => a.previousHandles), net.remoteDids[0]!.did];
    for (const actor of unknown) {
      const { status, body } = await getJson(`${net.appviewUrl}/xrpc/app.bsky.actor.getProfile?actor=${encodeURIComponent(actor)}`);
      assert.equal(status, 400, actor);
      assert.deepEqual(body, { error: 'InvalidRequest', message: 'Profile not found' });
    }
  });

  it('the firehose from cursor 0 has every account\'s creation, records and identity changes', async () => {
    const events: FirehoseEvent[] = [];
    const ws = new WebSocket(`${net.pdsUrl.replace('http', 'ws')}/xrpc/com.atproto.sync.subscribeRepos?cursor=0`);
    ws.binaryType = 'arraybuffer';
    await new Promise<void>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`only ${events.length} events after 20 s`)), 20_000);
      ws.onmessage = (m) => {
        const e = decodeFrame(new Uint8Array(m.data as ArrayBuffer));
        events.push(e);
        if ('seq' in e && e.seq === net.lastSeq) {
          clearTimeout(timer);
          ok();
        }
      };
      ws.onerror = () => fail(new Error('websocket error'));
    });
    ws.close();
    const seqs = events.map((e) => ('seq' in e ? e.seq : -1));
    assert.deepEqual(seqs, Array.from({ length: net.lastSeq }, (_, i) => i + 1));
    for (const a of net.accounts) {
      const mine = events.filter((e) => ('repo' in e ? e.repo : 'did' in e ? e.did : '') === a.did);
      const kinds = new Set(mine.map((e) => e.kind));
      assert.deepEqual([...kinds].sort(), ['account', 'commit', 'identity', 'sync']);
      const collections = new Set(mine.flatMap((e) => (e.kind === 'commit' ? e.ops.map((o) => o.path.split('/')[0]) : [])));
      for (const c of ['app.bsky.actor.profile', 'app.bsky.feed.post', 'app.bsky.graph.follow', 'app.bsky.feed.like']) {
        assert.ok(collections.has(c), `${a.handle}: no ${c} in ${[...collections]}`);
      }
      const posts = mine.flatMap((e) => (e.kind === 'commit' ? e.ops.filter((o) => o.path.startsWith('app.bsky.feed.post/')) : []));
      assert.equal(posts.length, a.counts.posts);
      const identities = mine.filter((e) => e.kind === 'identity');
      // creation, plus one per handle change, plus one for a moved PDS endpoint (the PDS itself is at localhost)
      const changes = a.previousHandles.length + (new URL(a.pdsEndpoint).hostname === 'localhost' ? 0 : 1);
      assert.equal(identities.length, 1 + changes, `${a.handle}: ${JSON.stringify(identities)}`);
      if (a.previousHandles.length) assert.equal(identities.at(-1)!.kind === 'identity' && identities.at(-1)!.handle, a.handle);
    }
  });
});
