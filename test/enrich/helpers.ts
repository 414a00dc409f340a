// Stand-ins for the enricher's upstreams on 127.0.0.1: a PLC directory, an AppView, a handle
// well-known host (and did:web host), plus a fake DNS. They answer in the real services' JSON
// shapes, with real DID documents, and record every request so tests can count them.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { zstdDecompressSync } from 'node:zlib';

import { pino, type Logger } from 'pino';

import { Enricher, type EnricherOptions } from '../../src/enrich/index.ts';

export type DidDocument = {
  '@context'?: string[];
  id: string;
  alsoKnownAs?: string[];
  verificationMethod?: { id: string; type: string; controller: string; publicKeyMultibase: string }[];
  service?: { id: string; type: string; serviceEndpoint: string }[];
};

/** The three documents of the local PDS run (test/fixtures/pds): `#atproto` ids, .test handles. */
export function pdsDocs(): Record<string, DidDocument> {
  return JSON.parse(readFileSync(fileURLToPath(new URL('../fixtures/pds/did_docs.json', import.meta.url)), 'utf8')) as Record<string, DidDocument>;
}

/** 148 documents from the live network (relay capture of 2026-07-04). */
export function networkDocs(): Record<string, DidDocument> {
  const file = '/work/shared/corpus/relay-2026-07-04/did_docs.json.zst';
  return JSON.parse(zstdDecompressSync(readFileSync(file)).toString('utf8')) as Record<string, DidDocument>;
}

export interface Hit {
  readonly path: string;
  readonly at: number;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export class StandIn {
  readonly hits: Hit[] = [];
  /** Requests being answered right now, and the most there ever were at once. */
  active = 0;
  peakActive = 0;
  /** Takes a request before the default handler does; return true when it answered (or will). */
  override: ((req: IncomingMessage, res: ServerResponse, url: URL) => boolean) | undefined;
  readonly #server: Server;
  readonly url: string;

  private constructor(server: Server, url: string) {
    this.#server = server;
    this.url = url;
  }

  static async start(handler: Handler): Promise<StandIn> {
    let self: StandIn | undefined;
    const server = createServer((req, res) => {
      const s = self!;
      const url = new URL(req.url ?? '/', 'http://stand-in');
      s.hits.push({ path: url.pathname + url.search, at: performance.now() });
      s.active++;
      s.peakActive = Math.max(s.peakActive, s.active);
      res.on('close', () => s.active--);
      if (s.override?.(req, res, url)) return;
      void Promise.resolve(handler(req, res, url)).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    self = new StandIn(server, `http://127.0.0.1:${port}`);
    return self;
  }

  count(predicate: (path: string) => boolean = () => true): number {
    return this.hits.filter((h) => predicate(h.path)).length;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

export function json(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** An audit log as plc.directory serves it, one plc_operation, created at `createdAt`. */
export function auditLog(doc: DidDocument, createdAt: string): unknown[] {
  const pds = doc.service?.find((s) => s.id.endsWith('#atproto_pds'));
  return [
    {
      did: doc.id,
      operation: {
        sig: 'vRBVuuJSBBYJNhOFK6Xv1ssTMMhw0vcQzGTu6pXLH0Yj7RbSKyQv1fr6tWkmhqYEL2dA8NByhySA6cyBG6lq9Q',
        prev: null,
        type: 'plc_operation',
        services: pds ? { atproto_pds: { type: pds.type, endpoint: pds.serviceEndpoint } } : {},
        alsoKnownAs: doc.alsoKnownAs ?? [],
        rotationKeys: ['did:key:zQ3shhCGUqDKjStzuDxPkTxN6ujddP4RkEKJJouJGRRkaLGbg'],
        verificationMethods: { atproto: 'did:key:zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF' },
      },
      cid: 'bafyreid5hn4cbwkwkyzpqvrwxj6qybgqe6q2bkzcf3vpgdvalvyibyeq4a',
      nullified: false,
      createdAt,
    },
  ];
}

export interface PlcState {
  docs: Map<string, unknown>;
  createdAt: Map<string, string>;
}

/** GET /{did} and GET /{did}/log/audit, 404 with PLC's message for unknown DIDs. */
export async function startPlc(docs: Record<string, DidDocument>, createdAt: (did: string) => string = () => '2024-11-21T10:00:00.000Z'): Promise<StandIn & { state: PlcState }> {
  const state: PlcState = { docs: new Map(Object.entries(docs)), createdAt: new Map() };
  const plc = await StandIn.start((_req, res, url) => {
    const m = /^\/(did:[^/]+)(\/log\/audit)?$/.exec(decodeURIComponent(url.pathname));
    const did = m?.[1];
    const doc = did === undefined ? undefined : state.docs.get(did);
    if (did === undefined || doc === undefined) return json(res, 404, { message: `DID not registered: ${did ?? ''}` });
    if (m![2] === undefined) return json(res, 200, doc, 'application/did+ld+json; charset=utf-8');
    return json(res, 200, auditLog(doc as DidDocument, state.createdAt.get(did) ?? createdAt(did)));
  });
  return Object.assign(plc, { state });
}

/** An app.bsky.actor.defs#profileViewDetailed as the AppView returns it. */
export function profileView(did: string, handle: string, counts = { followers: 120, follows: 80, posts: 340 }): Record<string, unknown> {
  return {
    did,
    handle,
    displayName: 'Alice <& Co>',
    description: 'first line\nsecond line 🦋',
    avatar: `https://cdn.bsky.app/img/avatar/plain/${did}/bafkreiabc@jpeg`,
    associated: { lists: 0, feedgens: 0, starterPacks: 0, labeler: false, activitySubscription: { allowSubscriptions: 'followers' } },
    labels: [],
    createdAt: '2024-11-21T10:00:05.000Z',
    indexedAt: '2024-11-21T10:00:05.000Z',
    followersCount: counts.followers,
    followsCount: counts.follows,
    postsCount: counts.posts,
  };
}

/** getProfile; `profiles` maps a DID to its view, or to an XRPC error to answer with 400. */
export async function startAppView(profiles: Map<string, Record<string, unknown> | { error: string; message: string; status?: number }>): Promise<StandIn> {
  return StandIn.start((_req, res, url) => {
    if (url.pathname !== '/xrpc/app.bsky.actor.getProfile') return json(res, 404, { error: 'MethodNotImplemented' });
    const actor = url.searchParams.get('actor') ?? '';
    const p = profiles.get(actor);
    if (p === undefined) return json(res, 400, { error: 'InvalidRequest', message: 'Profile not found' });
    if ('error' in p) return json(res, typeof p.status === 'number' ? p.status : 400, { error: p.error, message: p.message });
    json(res, 200, p);
  });
}

/** Serves /{name}/... from `files` (a handle's atproto-did, a did:web did.json); 404 otherwise. */
export async function startWeb(files: Map<string, string>): Promise<StandIn> {
  return StandIn.start((_req, res, url) => {
    const body = files.get(url.pathname);
    if (body === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': url.pathname.endsWith('.json') ? 'application/json' : 'text/plain' }).end(body);
  });
}

/** A DNS stand-in: name -> TXT records (chunked as DNS can), or an error code to throw. */
export class FakeDns {
  readonly records = new Map<string, string[][] | string>();
  readonly queries: string[] = [];
  resolveTxt = async (name: string): Promise<string[][]> => {
    this.queries.push(name);
    const r = this.records.get(name);
    if (r === undefined) throw Object.assign(new Error(`queryTxt ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    if (typeof r === 'string') throw Object.assign(new Error(`queryTxt ${r} ${name}`), { code: r });
    return r;
  };
}

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export function memoryLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug', base: undefined }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { logger, lines };
}

/** An enricher with test-sized timeouts; closed by the returned disposer. */
export function enricher(opts: Partial<EnricherOptions> & Pick<EnricherOptions, 'plcHost'>): Enricher & Disposable {
  const e = new Enricher({
    logger: opts.logger ?? pino({ level: 'silent' }),
    requestTimeoutMs: 1000,
    ...opts,
  });
  return Object.assign(e, { [Symbol.dispose]: () => e.close() });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
