// A real PLC directory for tests: @did-plc/server with its in-memory database,
// on loopback, optionally serving DIDs it never saw being created.
//
//   node plc.ts [--port N] [--seed did_docs.json[.zst]] [--created-at ISO]
//               [--rotation-key HEX] [--exit-with-stdin]
//
// Prints {"url":"http://127.0.0.1:PORT"} on stdout when ready; stops on
// SIGTERM/SIGINT (exit 0). See README.md for what is served and how.

import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { zstdDecompressSync } from 'node:zlib';

import { LOOPBACK, die, listenOnLoopbackOnly, onStop, quietStdout, ready } from './common.ts';

quietStdout();
listenOnLoopbackOnly();

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    seed: { type: 'string' },
    'created-at': { type: 'string', default: '2023-05-01T12:00:00.000Z' },
    'rotation-key': { type: 'string' },
    'exit-with-stdin': { type: 'boolean', default: false },
    /**
     * Also answer GET /handle/<handle>/.well-known/atproto-did for the seeded
     * documents' handles: a stand-in for the handles' own web servers, which are
     * on the internet (for `npm run demo` on a machine without it; tests use a
     * server of their own so they can also make handles fail).
     */
    'serve-handles': { type: 'boolean', default: false },
  },
  strict: true,
});
const port = Number(args.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) die(`--port: not a port: ${args.port}`);
const defaultCreatedAt = isoDate(args['created-at']!, '--created-at');

const { PlcServer, MockDatabase } = await import('@did-plc/server');
const plc = await import('@did-plc/lib');
const { Secp256k1Keypair, formatDidKey, multibaseToBytes, parseDidKey } = await import('@atproto/crypto');

type DidDoc = {
  '@context'?: string[];
  id: string;
  alsoKnownAs?: string[];
  verificationMethod?: { id: string; type: string; controller: string; publicKeyMultibase: string }[];
  service?: { id: string; type: string; serviceEndpoint: string }[];
};
type Op = {
  type: 'plc_operation';
  verificationMethods: Record<string, string>;
  rotationKeys: string[];
  alsoKnownAs: string[];
  services: Record<string, { type: string; endpoint: string }>;
  prev: string | null;
  sig?: string;
};
/** How a seeded DID's document is written out (the seed's own style). */
type Style = 'multikey' | 'legacy';

function isoDate(s: string, what: string): Date {
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) die(`${what}: not a date: ${s}`);
  return d;
}

// ---------------------------------------------------------------------------
// documents <-> operations

/**
 * The document plc.directory serves today (did-method-plc's lib, document.ts,
 * since it moved to Multikey): absolute key ids, Multikey type, the did:key's
 * multibase value, a multikey context plus one per key type.
 * The published @did-plc/server 0.0.1 still writes the older style (below).
 */
function formatMultikeyDoc(did: string, op: Op): DidDoc {
  const context = ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1'];
  const verificationMethod = Object.entries(op.verificationMethods).map(([id, key]) => {
    const { jwtAlg } = parseDidKey(key);
    const suite =
      jwtAlg === 'ES256K'
        ? 'https://w3id.org/security/suites/secp256k1-2019/v1'
        : jwtAlg === 'ES256'
          ? 'https://w3id.org/security/suites/ecdsa-2019/v1'
          : die(`unsupported key type ${jwtAlg}`);
    if (!context.includes(suite)) context.push(suite);
    return { id: `${did}#${id}`, type: 'Multikey', controller: did, publicKeyMultibase: key.replace(/^did:key:/, '') };
  });
  const service = Object.entries(op.services).map(([id, s]) => ({ id: `#${id}`, type: s.type, serviceEndpoint: s.endpoint }));
  return { '@context': context, id: did, alsoKnownAs: op.alsoKnownAs, verificationMethod, service };
}

/** The style the server itself renders (@did-plc/lib's formatDidDoc, the same code the server bundles). */
function formatLegacyDoc(did: string, op: Op): DidDoc {
  return plc.formatDidDoc({ did, ...op } as never) as DidDoc;
}

const render = (did: string, op: Op, style: Style) => (style === 'multikey' ? formatMultikeyDoc(did, op) : formatLegacyDoc(did, op));

/** The key a verification method names, as a did:key (what PLC operations hold). */
function didKeyOf(vm: NonNullable<DidDoc['verificationMethod']>[number]): string {
  switch (vm.type) {
    case 'Multikey': {
      const key = `did:key:${vm.publicKeyMultibase}`;
      parseDidKey(key); // throws on a key type PLC does not take
      return key;
    }
    case 'EcdsaSecp256k1VerificationKey2019': // raw key bytes, base58btc
      return formatDidKey('ES256K', multibaseToBytes(vm.publicKeyMultibase));
    case 'EcdsaSecp256r1VerificationKey2019':
      return formatDidKey('ES256', multibaseToBytes(vm.publicKeyMultibase));
    default:
      throw new Error(`verification method type ${vm.type} is not one a PLC document has`);
  }
}

const fragment = (id: string) => {
  const i = id.indexOf('#');
  if (i < 0) throw new Error(`id without a fragment: ${id}`);
  return id.slice(i + 1);
};

/** The operation whose document is `doc` (unsigned; no rotation keys yet). */
function opFromDoc(did: string, doc: DidDoc): { op: Op; style: Style } {
  if (doc.id !== did) throw new Error(`document id ${doc.id} is not its key`);
  const vms = doc.verificationMethod ?? [];
  const op: Op = {
    type: 'plc_operation',
    verificationMethods: Object.fromEntries(vms.map((vm) => [fragment(vm.id), didKeyOf(vm)])),
    rotationKeys: [],
    alsoKnownAs: doc.alsoKnownAs ?? [],
    services: Object.fromEntries((doc.service ?? []).map((s) => [fragment(s.id), { type: s.type, endpoint: s.serviceEndpoint }])),
    prev: null,
  };
  const style: Style = vms.some((vm) => vm.type === 'Multikey') ? 'multikey' : 'legacy';
  return { op, style };
}

// ---------------------------------------------------------------------------
// the seed

type Seed = { docs: [string, DidDoc][]; createdAt: Record<string, string> };

function readSeed(file: string): Seed {
  let bytes: Buffer = readFileSync(file);
  if (file.endsWith('.zst')) bytes = zstdDecompressSync(bytes);
  const json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  const createdAt = (json.createdAt ?? {}) as Record<string, string>;
  const docs = Object.entries(json).filter(([k]) => k.startsWith('did:')) as [string, DidDoc][];
  for (const [k] of Object.entries(json)) {
    if (k !== 'createdAt' && !k.startsWith('did:')) throw new Error(`${file}: key ${k} is neither a DID nor "createdAt"`);
  }
  for (const [did] of docs) {
    if (!did.startsWith('did:plc:')) throw new Error(`${file}: ${did} is not a did:plc (a PLC directory serves only those)`);
  }
  return { docs, createdAt };
}

// ---------------------------------------------------------------------------
// the server

// One key is the rotation key of every seeded DID (so a test that passes
// --rotation-key can sign real update operations for them; see README).
const rotationKey = args['rotation-key']
  ? await Secp256k1Keypair.import(args['rotation-key'])
  : await Secp256k1Keypair.create();

const db = new MockDatabase();
const seeded = new Map<string, Style>();

if (args.seed) {
  let seed: Seed;
  try {
    seed = readSeed(args.seed);
  } catch (err) {
    die(`--seed ${args.seed}: ${(err as Error).message}`);
  }
  for (const [did, doc] of seed.docs) {
    let op: Op, style: Style;
    try {
      ({ op, style } = opFromDoc(did, doc));
    } catch (err) {
      die(`--seed: ${did}: ${(err as Error).message}`);
    }
    op.rotationKeys = [rotationKey.did()];
    const signed = (await plc.addSignature(op as never, rotationKey as never)) as Op;
    // Rendering the stored operation must give back the seeded document, or the
    // directory would serve something else than the test expects.
    try {
      assert.deepStrictEqual(render(did, signed, style), doc);
    } catch {
      die(`--seed: ${did}: its document cannot be rebuilt from a PLC operation:\n${JSON.stringify(doc)}\n${JSON.stringify(render(did, signed, style))}`);
    }
    const { cid } = await plc.getLastOpWithCid([signed as never]);
    const when = seed.createdAt[did] ? isoDate(seed.createdAt[did], `createdAt of ${did}`) : defaultCreatedAt;
    // The in-memory database's own storage (MockDatabase.contents): the server's
    // /log, /log/audit, /log/last and POST /:did read and extend it as usual.
    db.contents[did] = [{ did, operation: signed as never, cid, nullified: false, createdAt: when }];
    seeded.set(did, style);
  }
}

const server = PlcServer.create({ db, port, version: 'atkafka-peers' });

/**
 * GET /:did and /:did/data re-verify the whole log on every read, starting
 * with "the DID is the hash of its signed genesis operation" — which no
 * operation for a seeded DID can pass. For seeded DIDs only, these two read the
 * same stored log and skip that check (the signatures were checked when each
 * operation was stored); everything else is the server's own routes.
 */
async function seededRead(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const m = /^\/(did:plc:[a-z2-7]+)(\/data)?\/?(?:\?.*)?$/.exec(req.url ?? '');
  const style = m && seeded.get(decodeURIComponent(m[1]));
  if (!m || !style) return false;
  const did = m[1];
  const ops = (await db.opsForDid(did)) as unknown as (Op | { type: 'plc_tombstone' })[];
  const last = ops.at(-1)!;
  const send = (status: number, type: string, body: unknown) => {
    res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'access-control-allow-origin': '*' });
    res.end(req.method === 'HEAD' ? undefined : JSON.stringify(body));
  };
  if (last.type === 'plc_tombstone') {
    send(404, 'application/json', { message: `DID not available: ${did}` });
  } else if (m[2]) {
    send(200, 'application/json', plc.opToData(did, last as never));
  } else {
    send(200, 'application/did+ld+json', render(did, last, style));
  }
  return true;
}

const didByHandle = new Map<string, string>();
if (args['serve-handles']) {
  for (const [did] of seeded) {
    const doc = db.contents[did]![0]!.operation as unknown as { alsoKnownAs?: string[] };
    const aka = doc.alsoKnownAs?.find((a) => a.startsWith('at://'));
    if (aka !== undefined) didByHandle.set(aka.slice(5).toLowerCase(), did);
  }
}

const http = createServer((req, res) => {
  const handle = /^\/handle\/([^/]+)\/\.well-known\/atproto-did$/.exec(req.url ?? '');
  if (handle && args['serve-handles']) {
    const did = didByHandle.get(decodeURIComponent(handle[1]!).toLowerCase());
    if (did === undefined) res.writeHead(404, { 'content-type': 'text/plain' }).end('no such handle');
    else res.writeHead(200, { 'content-type': 'text/plain' }).end(did);
    return;
  }
  seededRead(req, res).then(
    (done) => {
      if (!done) server.app(req as never, res as never);
    },
    (err) => {
      process.stderr.write(`plc: ${req.url}: ${err?.stack ?? err}\n`);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: 'Internal Server Error' }));
    },
  );
});
http.keepAliveTimeout = 1000;
await new Promise<void>((ok, fail) => {
  http.once('error', (err) => fail(err));
  http.listen(port, LOOPBACK, () => ok());
}).catch((err) => die(`cannot listen on ${LOOPBACK}:${port}: ${err.message}`));

onStop(async () => {
  http.closeAllConnections();
  await new Promise<void>((ok) => http.close(() => ok()));
  await db.close();
}, args['exit-with-stdin']!);

ready({ url: `http://${LOOPBACK}:${(http.address() as AddressInfo).port}` });
