// The real relay capture, its real DID documents served by a real PLC server (@did-plc/server), the
// real CLI and a real broker: filters, enrichment, the Osprey envelope, headers and topic routing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { zstdDecompressSync } from 'node:zlib';

import { startReplayServer } from '../../src/replay/index.ts';
import { metricValue, readCursor, startBridge, waitFor } from '../support/bridge.ts';
import { corpusFrames, expectedMessages, lastSeq } from '../support/corpus.ts';
import { readTopic } from '../support/kafka-read.ts';
import { startTestBroker, type TestBroker } from '../support/kafka-broker.ts';
import { startPlc } from '../support/peers.ts';

const frames = corpusFrames();
const expected = expectedMessages(frames);
const LAST = lastSeq(frames);
const DOCS_FILE = fileURLToPath(new URL('../fixtures/corpus/did_docs.json.zst', import.meta.url));
type Doc = { id: string; alsoKnownAs?: string[]; verificationMethod?: { id: string; type: string; controller: string; publicKeyMultibase: string }[]; service?: { id: string; type: string; serviceEndpoint: string }[] };
const docs = JSON.parse(zstdDecompressSync(readFileSync(DOCS_FILE)).toString()) as Record<string, Doc>;
const CREATED_AT = '2024-03-01T12:00:00.000Z';

const pdsOf = (did: string) => docs[did]?.service?.find((s) => s.id === '#atproto_pds')?.serviceEndpoint ?? '';
const hostOf = (did: string) => (pdsOf(did) === '' ? '' : new URL(pdsOf(did)).hostname);
const handleOf = (did: string) => docs[did]?.alsoKnownAs?.find((a) => a.startsWith('at://'))?.slice(5);

type Msg = { did: string; eventMetadata: Record<string, unknown> | null; operation?: { collection: string; path: string }; identity?: unknown; account?: unknown };

describe('relay stages: filters, enrichment, Osprey, routing (real PLC, real broker)', () => {
  let broker: TestBroker;
  let plc: Awaited<ReturnType<typeof startPlc>>;
  let dir: string;
  let wellKnown: Server;
  let wellKnownUrl: string;
  let deadDns: string;
  const dids = Object.keys(docs).sort();
  // Handle checks: most answer their own DID, one answers another DID, one has no record.
  const lying = handleOf(dids[0]!)!;
  const missing = handleOf(dids[1]!)!;
  const requested = new Set<string>();

  before(async () => {
    broker = await startTestBroker();
    dir = await mkdtemp(join(tmpdir(), 'atkafka-stages-'));
    plc = await startPlc({ seed: DOCS_FILE, createdAt: CREATED_AT });
    const didByHandle = new Map(dids.map((d) => [handleOf(d), d]));
    wellKnown = createServer((req, res) => {
      const handle = decodeURIComponent(req.url!.slice(1).split('/')[0]!);
      requested.add(handle);
      if (handle === missing || !didByHandle.has(handle)) return void res.writeHead(404).end('not found');
      res.writeHead(200, { 'content-type': 'text/plain' }).end(handle === lying ? dids[2] : didByHandle.get(handle));
    });
    await new Promise<void>((r) => wellKnown.listen(0, '127.0.0.1', r));
    wellKnownUrl = `http://127.0.0.1:${(wellKnown.address() as { port: number }).port}/{handle}/.well-known/atproto-did`;
    // A DNS server that never answers: every TXT lookup times out or is refused, so handles fall back to HTTPS.
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    deadDns = `127.0.0.1:${sock.address().port}`;
    sock.close();
  });
  after(async () => {
    await plc?.[Symbol.asyncDispose]();
    wellKnown?.close();
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const identityFlags = () => ['--plc-host', `${plc.url}/`, '--dns-servers', deadDns, '--handle-well-known-url', wellKnownUrl, '--allow-private-identity-hosts'];

  async function run(topic: string, extra: string[]): Promise<{ metrics: string; logs: string }> {
    await using relay = await startReplayServer({ frames });
    const cursorFile = join(dir, `${topic}.json`);
    const bridge = await startBridge(['--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--relay-host', relay.url, '--cursor-file', cursorFile, '--cursor-save-interval', '50ms', ...extra]);
    await waitFor('cursor at the last corpus seq', async () => (await readCursor(cursorFile)) === LAST || (bridge.child.exitCode !== null && 'exited'), 60_000);
    assert.equal(bridge.child.exitCode, null, bridge.logs());
    const metrics = await bridge.metrics();
    bridge.child.kill('SIGTERM');
    assert.equal(await bridge.exited, 0, bridge.logs());
    return { metrics, logs: bridge.logs() };
  }

  it('enrichment: every event carries its DID document, PDS, verified handle and creation time, as the Go version shapes them', async () => {
    const { metrics } = await run('enriched', identityFlags());
    const got = (await readTopic(broker.bootstrap, 'enriched')).map((m) => JSON.parse(m.value) as Msg);
    assert.equal(got.length, expected.length);
    // Without the metadata, every message is exactly the plain one.
    const plain = got.map((m) => JSON.stringify({ ...m, eventMetadata: null })).sort();
    assert.deepEqual(plain, expected.map((m) => JSON.stringify(JSON.parse(m.value))).sort());
    const now = Date.now() / 1000;
    for (const m of got) {
      const doc = docs[m.did];
      if (doc === undefined) {
        // The #identity and #account DIDs of the window are not in the capture's documents: the PLC answers 404.
        assert.equal(m.eventMetadata, null, m.did);
        continue;
      }
      const meta = m.eventMetadata!;
      assert.deepEqual(Object.keys(meta), ['didDocument', 'pdsHost', 'handle', 'didCreatedAt', 'accountAge', 'profile'], m.did);
      assert.deepEqual(meta.didDocument, {
        id: doc.id,
        alsoKnownAs: doc.alsoKnownAs,
        verificationMethod: doc.verificationMethod!.map((v) => ({ id: v.id, type: v.type, controller: v.controller, publicKeyMultibase: v.publicKeyMultibase })),
        service: doc.service!.map((s) => ({ id: s.id, type: s.type, serviceEndpoint: s.serviceEndpoint })),
      });
      assert.equal(meta.pdsHost, pdsOf(m.did));
      const handle = handleOf(m.did)!;
      assert.equal(meta.handle, handle === lying || handle === missing ? 'handle.invalid' : handle, m.did);
      assert.equal(meta.didCreatedAt, CREATED_AT);
      const age = meta.accountAge as number;
      assert.ok(Math.abs(age - (now - Date.parse(CREATED_AT) / 1000)) < 120, `accountAge ${age}`);
      assert.equal(meta.profile, null);
    }
    assert.ok(requested.has(lying) && requested.has(missing));
    assert.equal(metricValue(metrics, 'atkafka_enrichment', { outcome: 'timeout' }), 0);
    // One document request per DID however many events it has (in-flight de-duplication and the cache).
    const distinct = new Set(got.map((m) => m.did)).size;
    assert.equal(metricValue(metrics, 'atkafka_plc_requests', { kind: 'did_doc', cached: 'false' }), distinct);
  });

  it('watched and ignored services select exactly the events of accounts on those PDS hosts', async () => {
    const hosts = [...new Set(dids.map(hostOf))].sort();
    const someHost = hosts.find((h) => h.endsWith('.host.bsky.network'))!;
    const region = someHost.split('.').slice(1).join('.'); // e.g. us-east.host.bsky.network
    const inRegion = (did: string) => hostOf(did) === region || hostOf(did).endsWith(`.${region}`);
    const keys = (xs: { key: string; value: string }[]) => xs.map((m) => `${m.key} ${JSON.stringify({ ...JSON.parse(m.value), eventMetadata: null })}`).sort();
    // Unknown DIDs (no document) pass both filters: dropping an event for want of its identity could lose it.
    const unknown = (did: string) => docs[did] === undefined;

    const watched = await run('watched-services', [...identityFlags(), '--watched-services', `*.${region}`]);
    const gotWatched = await readTopic(broker.bootstrap, 'watched-services');
    const wantWatched = expected.filter((m) => inRegion(m.key) || unknown(m.key));
    assert.ok(wantWatched.length > 0 && wantWatched.length < expected.length, 'the filter splits the capture');
    assert.deepEqual(keys(gotWatched), keys(wantWatched));
    assert.equal(metricValue(watched.metrics, 'atkafka_filtered_events', { reason: 'service' }), expected.length - wantWatched.length);

    await run('ignored-services', [...identityFlags(), '--enrich=false', '--ignored-services', `*.${region}`]);
    const gotIgnored = await readTopic(broker.bootstrap, 'ignored-services');
    assert.deepEqual(keys(gotIgnored), keys(expected.filter((m) => !inRegion(m.key) || unknown(m.key))));
    for (const m of gotIgnored) assert.equal((JSON.parse(m.value) as Msg).eventMetadata, null, 'with --enrich=false the filter still works, without metadata');
  });

  it('watched and ignored collections select exactly the right ops; #identity and #account always pass; the cursor passes everything', async () => {
    const collectionOf = (v: string) => (JSON.parse(v) as Msg).operation?.collection;
    const watched = await run('watched-collections', ['--watched-collections', 'app.bsky.feed.post']);
    const got = (await readTopic(broker.bootstrap, 'watched-collections')).map((m) => m.value).sort();
    const want = expected.filter((m) => [undefined, 'app.bsky.feed.post'].includes(collectionOf(m.value))).map((m) => m.value).sort();
    assert.ok(want.length > 2 && want.length < expected.length);
    assert.deepEqual(got, want);
    assert.equal(metricValue(watched.metrics, 'atkafka_filtered_events', { reason: 'collection' }), expected.length - want.length);

    await run('ignored-collections', ['--ignored-collections', 'app.bsky.*', '--decode-threads', '0']);
    const got2 = (await readTopic(broker.bootstrap, 'ignored-collections')).map((m) => m.value).sort();
    const want2 = expected.filter((m) => !(collectionOf(m.value) ?? '').startsWith('app.bsky.')).map((m) => m.value).sort();
    assert.deepEqual(got2, want2);
  });

  it('--osprey-compatible and --topic-template: the envelope around each event, headers on each message, one topic per collection', async () => {
    await run('routed-default', ['--osprey-compatible', '--osprey-worker-id', '3', '--topic-template', 'atproto.{collection}']);
    const topics = new Set(expected.map((m) => `atproto.${(JSON.parse(m.value) as Msg).operation?.collection ?? (JSON.parse(m.value).identity ? 'identity' : 'account')}`));
    const all: { topic: string; key: string; env: Record<string, unknown>; raw: string; headers: [string, string][] }[] = [];
    for (const topic of topics) {
      for (const m of await readTopic(broker.bootstrap, topic)) all.push({ topic, key: m.key, env: JSON.parse(m.value) as Record<string, unknown>, raw: m.value, headers: m.headers });
    }
    assert.equal(all.length, expected.length, 'every message, each in its topic');
    const ids = new Set<string>();
    for (const m of all) {
      const data = m.env.data as { action_name: string; action_id: number; data: Msg; timestamp: string; secret_data: unknown; encoding: string };
      assert.deepEqual(Object.keys(m.env), ['data', 'send_time']);
      assert.deepEqual(Object.keys(data), ['action_name', 'action_id', 'data', 'timestamp', 'secret_data', 'encoding']);
      assert.deepEqual(data.secret_data, {});
      assert.equal(data.encoding, 'UTF8');
      assert.match(m.env.send_time as string, /Z$|[+-]\d\d:\d\d$/);
      // The id as written (a JSON integer beyond 2^53 must not be read back through a double).
      const id = /"action_id":(\d+)/.exec(m.raw)![1]!;
      ids.add(id);
      assert.equal((BigInt(id) >> 12n) & 1023n, 3n, 'worker id 3');
      const op = data.data.operation as { collection: string; action?: string } | undefined;
      const kind = op ? 'commit' : data.data.identity ? 'identity' : 'account';
      assert.equal(m.topic, `atproto.${op?.collection ?? kind}`);
      const h = Object.fromEntries(m.headers);
      assert.equal(h.kind, kind);
      assert.equal(h.source, 'relay');
      assert.match(h.seq!, /^\d+$/);
      if (op) {
        assert.equal(h.collection, op.collection);
        assert.equal(data.action_name, `operation#${h.action}`);
      } else {
        assert.equal(data.action_name, kind);
      }
      assert.equal(m.key, data.data.did);
    }
    assert.equal(ids.size, all.length, 'unique action ids');
    const unwrapped = all.map((m) => JSON.stringify((m.env.data as { data: unknown }).data)).sort();
    assert.deepEqual(unwrapped, expected.map((m) => JSON.stringify(JSON.parse(m.value))).sort(), 'data is the plain event');
  });
});
