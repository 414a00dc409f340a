// A small real AT Protocol network for tests, in one process, on loopback:
// an in-memory PLC directory (@did-plc/server), a PDS (@atproto/pds), and the
// real AppView (@atproto/bsky with its bsync, on a throwaway PostgreSQL),
// plus a handle-verification proxy. It creates accounts and activity, waits
// until the AppView has indexed them, prints one line of JSON and keeps running.
//
//   node pds.ts [--postgres-url URL] [--exit-with-stdin]
//
// Ready line: {"pdsUrl","plcUrl","appviewUrl","wellKnownBase","lastSeq",
//              "accounts":[{did,handle,displayName,description,password,
//                           pdsEndpoint,previousHandles,counts}],
//              "remoteDids":[{did,handle,pdsEndpoint}],"versions":{...}}
// See README.md.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { crc32, deflateSync } from 'node:zlib';

import { LOOPBACK, die, freePort, listenOnLoopbackOnly, onStop, quietStdout, ready } from './common.ts';
import { startPostgres, type Postgres } from './postgres.ts';

quietStdout();
listenOnLoopbackOnly();

const { values: args } = parseArgs({
  options: {
    'postgres-url': { type: 'string' },
    'exit-with-stdin': { type: 'boolean', default: false },
  },
  strict: true,
});

const { PDS } = await import('@atproto/pds');
const { PlcServer, MockDatabase } = await import('@did-plc/server');
const plc = await import('@did-plc/lib');
const { Secp256k1Keypair } = await import('@atproto/crypto');
const { TestBsky, TestBsync } = await import('@atproto/dev-env');
const version = (pkg: string): string =>
  JSON.parse(readFileSync(join(import.meta.dirname, 'node_modules', pkg, 'package.json'), 'utf8')).version;

const ADMIN_PASSWORD = 'admin-pass';
const BSYNC_API_KEY = 'bsync-api-key';
const HANDLE_DOMAIN = '.test';

// Everything started so far, stopped in reverse order.
const stops: (() => Promise<unknown>)[] = [];
const stopAll = async () => {
  for (const stop of stops.splice(0).reverse()) {
    await stop().catch((err) => process.stderr.write(`pds: while stopping: ${err?.stack ?? err}\n`));
  }
};
onStop(stopAll, args['exit-with-stdin']!);
const fail = async (err: unknown) => {
  await stopAll();
  die(`startup failed: ${(err as Error)?.stack ?? err}`);
};
process.on('unhandledRejection', (err) => void fail(err));

try {
  // ---------------------------------------------------------------- PLC
  const plcPort = await freePort();
  const plcServer = PlcServer.create({ db: new MockDatabase(), port: plcPort });
  await plcServer.start();
  stops.push(() => plcServer.destroy());
  const plcUrl = `http://${LOOPBACK}:${plcPort}`;
  // The PDS's resolvers refuse IP-literal hosts (safeFetch allowIpHost: false)
  // even with SSRF protection off: the servers get a host name.
  const plcByName = `http://localhost:${plcPort}`;

  // ---------------------------------------------------------------- AppView
  let pg: Postgres | undefined;
  let dbUrl = args['postgres-url'];
  let schema = 'peers';
  if (dbUrl) {
    // A shared server: schemas of letters only, unique to this run.
    schema = 'peers_' + Array.from({ length: 10 }, () => String.fromCharCode(97 + Math.floor(Math.random() * 26))).join('');
  } else {
    pg = await startPostgres();
    stops.push(() => pg!.stop());
    dbUrl = pg.url;
  }
  const pdsPort = await freePort();
  const bsync = await TestBsync.create({ apiKeys: [BSYNC_API_KEY], dbUrl, dbSchema: `bsync_${schema}` });
  stops.push(() => bsync.close());
  const bsky = await TestBsky.create({
    plcUrl: plcByName,
    pdsPort,
    bsyncApiKey: BSYNC_API_KEY,
    bsyncUrl: bsync.url,
    repoProvider: `ws://${LOOPBACK}:${pdsPort}`,
    dbPostgresUrl: dbUrl,
    dbPostgresSchema: `appview_${schema}`,
  } as never);
  stops.push(() => bsky.close());
  bsync.ctx.dataplaneClients = [bsky.ctx.dataplane];
  const appviewUrl = `http://${LOOPBACK}:${bsky.port}`;

  // ---------------------------------------------------------------- PDS
  const dataDir = mkdtempSync(join(tmpdir(), 'atkafka-peers-pds-'));
  stops.push(async () => rmSync(dataDir, { recursive: true, force: true }));
  const plcRotationKey = await Secp256k1Keypair.create({ exportable: true });
  const pds = await PDS.fromEnv({
    devMode: true,
    port: pdsPort,
    hostname: 'localhost', // publicUrl http://localhost:<port>: the #atproto_pds endpoint in the DID documents
    dataDirectory: dataDir,
    blobstoreDiskLocation: join(dataDir, 'blobs'),
    didPlcUrl: plcByName,
    recoveryDidKey: (await Secp256k1Keypair.create()).did(),
    plcRotationKeyK256PrivateKeyHex: Buffer.from(await plcRotationKey.export()).toString('hex'),
    adminPassword: ADMIN_PASSWORD,
    jwtSecret: 'jwt-secret',
    serviceHandleDomains: [HANDLE_DOMAIN],
    inviteRequired: false,
    disableSsrfProtection: true,
    bskyAppViewUrl: bsky.url,
    bskyAppViewDid: bsky.ctx.cfg.serverDid,
    modServiceUrl: 'https://moderator.invalid',
    modServiceDid: 'did:example:invalid',
    crawlers: [],
  } as never);
  await pds.start();
  stops.push(() => pds.destroy());
  const pdsUrl = `http://${LOOPBACK}:${pdsPort}`;
  const pdsEndpoint = pds.ctx.cfg.service.publicUrl as string;

  // ---------------------------------------------------------------- handle proxy
  // The PDS answers /.well-known/atproto-did for the handle in the Host header
  // (express req.hostname; X-Forwarded-Host from loopback too), so a bare URL on
  // 127.0.0.1 cannot ask it about alice.test. This proxy can:
  //   GET {wellKnownBase}/handle/<handle>/.well-known/atproto-did
  //   -> GET {pds}/.well-known/atproto-did with Host: <handle>, answer passed through.
  const proxy: Server = createServer((req, res) => {
    const m = /^\/handle\/([^/?]+)\/\.well-known\/atproto-did(?:\?.*)?$/.exec(req.url ?? '');
    if (req.method !== 'GET' || !m) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found');
      return;
    }
    const up = request(
      { host: LOOPBACK, port: pdsPort, path: '/.well-known/atproto-did', headers: { host: decodeURIComponent(m[1]!) } },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, { 'content-type': upRes.headers['content-type'] ?? 'text/plain' });
        upRes.pipe(res);
      },
    );
    up.on('error', (err) => res.writeHead(502, { 'content-type': 'text/plain' }).end(`PDS unreachable: ${err.message}`));
    up.end();
  });
  await new Promise<void>((ok) => proxy.listen(0, LOOPBACK, () => ok()));
  stops.push(() => new Promise<void>((ok) => (proxy.closeAllConnections(), proxy.close(() => ok()))));
  const wellKnownBase = `http://${LOOPBACK}:${(proxy.address() as AddressInfo).port}`;

  // The AppView verifies handles both ways too; .test handles have no DNS, so
  // its resolvers ask the proxy (as dev-env's mockNetworkUtilities does, by Host header).
  for (const idResolver of [bsky.ctx.idResolver, bsky.dataplane.idResolver]) {
    const orig = idResolver.handle.resolve.bind(idResolver.handle);
    idResolver.handle.resolve = async (handle: string) => {
      if (!handle.endsWith(HANDLE_DOMAIN)) return orig(handle);
      const res = await fetch(`${wellKnownBase}/handle/${encodeURIComponent(handle)}/.well-known/atproto-did`).catch(() => null);
      const text = res?.ok ? (await res.text()).trim() : '';
      return text.startsWith('did:') ? text : undefined;
    };
  }

  // ---------------------------------------------------------------- activity
  const xrpc = async (nsid: string, opts: { auth?: string; body?: unknown; raw?: Uint8Array; mime?: string; params?: Record<string, string> } = {}) => {
    const url = new URL(`/xrpc/${nsid}`, pdsUrl);
    for (const [k, v] of Object.entries(opts.params ?? {})) url.searchParams.set(k, v);
    const headers: Record<string, string> = {};
    if (opts.auth) headers.authorization = opts.auth;
    let body: BodyInit | undefined;
    if (opts.raw) {
      headers['content-type'] = opts.mime ?? 'application/octet-stream';
      body = opts.raw;
    } else if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    const res = await fetch(url, { method: body === undefined ? 'GET' : 'POST', headers, body });
    const text = await res.text();
    if (!res.ok) throw new Error(`${nsid} -> HTTP ${res.status}: ${text}`);
    return text ? JSON.parse(text) : null;
  };

  interface Account {
    did: string;
    handle: string;
    displayName: string;
    description: string;
    password: string;
    pdsEndpoint: string;
    previousHandles: string[];
    counts: { posts: number; follows: number; followers: number };
    auth: string;
  }
  const accounts: Account[] = [];
  const time = (i: number) => new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString();
  let clock = 0;

  const createAccount = async (name: string, displayName: string, description: string, avatar?: Uint8Array) => {
    const handle = `${name}${HANDLE_DOMAIN}`;
    const password = `${name}-password`;
    const r = await xrpc('com.atproto.server.createAccount', { body: { handle, email: `${name}@example.com`, password } });
    const a: Account = {
      did: r.did,
      handle,
      displayName,
      description,
      password,
      pdsEndpoint,
      previousHandles: [],
      counts: { posts: 0, follows: 0, followers: 0 },
      auth: `Bearer ${r.accessJwt}`,
    };
    const record: Record<string, unknown> = { $type: 'app.bsky.actor.profile', displayName, description, createdAt: time(clock++) };
    if (avatar) record.avatar = (await xrpc('com.atproto.repo.uploadBlob', { auth: a.auth, raw: avatar, mime: 'image/png' })).blob;
    await xrpc('com.atproto.repo.createRecord', { auth: a.auth, body: { repo: a.did, collection: 'app.bsky.actor.profile', rkey: 'self', record } });
    accounts.push(a);
    return a;
  };
  const create = async (a: Account, collection: string, record: Record<string, unknown>) =>
    (await xrpc('com.atproto.repo.createRecord', { auth: a.auth, body: { repo: a.did, collection, record: { $type: collection, ...record, createdAt: time(clock++) } } })) as { uri: string; cid: string };
  const post = async (a: Account, text: string, reply?: { uri: string; cid: string }) => {
    a.counts.posts++;
    return create(a, 'app.bsky.feed.post', reply ? { text, langs: ['en'], reply: { root: reply, parent: reply } } : { text, langs: ['en'] });
  };
  const follow = async (a: Account, b: Account) => {
    a.counts.follows++;
    b.counts.followers++;
    return create(a, 'app.bsky.graph.follow', { subject: b.did });
  };
  const like = async (a: Account, p: { uri: string; cid: string }) => create(a, 'app.bsky.feed.like', { subject: p });

  const alice = await createAccount('alice', 'Alice', 'first test account (has an avatar)', png(16, 16, [0xf0, 0x82, 0x8d]));
  const bob = await createAccount('bob', 'Bob', 'second test account; renamed to robert.test');
  const carol = await createAccount('carol', 'Carol', 'third test account; her DID document names http://127.0.0.1:<port>');
  const a1 = await post(alice, 'hello from alice');
  const a2 = await post(alice, 'a second post by alice');
  await post(alice, 'and a third one');
  const b1 = await post(bob, 'hi alice!', a1);
  await post(bob, 'bob again');
  await post(carol, 'carol was here');
  await follow(alice, bob);
  await follow(bob, alice);
  await follow(bob, carol);
  await follow(carol, alice);
  await like(bob, a1);
  await like(alice, b1);
  await like(carol, a2);

  // One handle change, through the PDS (it updates the PLC document and emits #identity).
  await xrpc('com.atproto.identity.updateHandle', { auth: bob.auth, body: { handle: `robert${HANDLE_DOMAIN}` } });
  bob.previousHandles.push(bob.handle);
  bob.handle = `robert${HANDLE_DOMAIN}`;

  // A second PDS hostname: carol's #atproto_pds now names http://127.0.0.1:<port>
  // (this same PDS under another host name). A PLC update signed with the PDS's
  // rotation key, then #identity, as the PDS does after submitPlcOperation (which
  // itself refuses an endpoint other than its own).
  const plcClient = new plc.Client(plcUrl);
  carol.pdsEndpoint = pdsUrl;
  await plcClient.updatePds(carol.did, plcRotationKey as never, carol.pdsEndpoint);
  await pds.ctx.sequencer.sequenceIdentity(carol.did);
  await pds.ctx.idResolver.did.resolve(carol.did, true);
  await post(carol, 'posted after my DID document moved to 127.0.0.1');

  // A DID in the same PLC whose repo lives elsewhere: no account here, no events.
  const danaKey = await Secp256k1Keypair.create();
  const remote = { handle: 'dana.elsewhere.test', pdsEndpoint: 'https://pds.elsewhere.test' };
  const danaDid: string = await plcClient.createDid({
    signingKey: danaKey.did(),
    rotationKeys: [danaKey.did()],
    handle: remote.handle,
    pds: remote.pdsEndpoint,
    signer: danaKey as never,
  });

  const lastSeq = (await pds.ctx.sequencer.curr()) ?? 0;

  // ---------------------------------------------------------------- wait for the AppView
  // Ready means the AppView answers every account's profile with its final
  // handle and counts (it indexes the PDS firehose asynchronously).
  const deadline = Date.now() + 60_000;
  for (const a of accounts) {
    let last = '';
    for (;;) {
      const res = await fetch(`${appviewUrl}/xrpc/app.bsky.actor.getProfile?actor=${a.did}`);
      const p = await res.json().catch(() => ({}));
      last = `${res.status} ${JSON.stringify(p)}`;
      if (
        res.ok &&
        p.handle === a.handle &&
        p.displayName === a.displayName &&
        p.postsCount === a.counts.posts &&
        p.followsCount === a.counts.follows &&
        p.followersCount === a.counts.followers
      ) {
        break;
      }
      if (Date.now() > deadline) throw new Error(`the AppView has not indexed ${a.handle} after 60 s; last answer: ${last}`);
      await new Promise((ok) => setTimeout(ok, 100));
    }
  }

  ready({
    pdsUrl,
    plcUrl,
    appviewUrl,
    wellKnownBase,
    lastSeq,
    accounts: accounts.map(({ auth: _auth, ...a }) => a),
    remoteDids: [{ did: danaDid, ...remote }],
    versions: {
      '@atproto/pds': version('@atproto/pds'),
      '@atproto/bsky': version('@atproto/bsky'),
      '@did-plc/server': version('@did-plc/server'),
    },
  });
} catch (err) {
  await fail(err);
}

/** A valid w x h RGB PNG (the PDS sniffs blob types, and the AppView wants an image for an avatar). */
function png(w: number, h: number, rgb: [number, number, number]): Uint8Array {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolor
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: w }, () => rgb).flat())]);
  const raw = Buffer.concat(Array.from({ length: h }, () => row));
  return new Uint8Array(
    Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', ihdr),
      chunk('IDAT', deflateSync(raw, { level: 9 })),
      chunk('IEND', Buffer.alloc(0)),
    ]),
  );
}
