// A stand-in for Wikimedia EventStreams (stream.wikimedia.org, /v2/stream/<streams>), for tests.
//   startWikimediaServer(): serves stored events as server-sent events (from Last-Event-ID or since), then live pushes
//   loadWikimediaFixture(): the 144 recentchange events of the shared 2025-05-03 capture
//   loopWikimediaEvents(): the fixture repeated to N events with fresh offsets, ids and times, for load tests
// Written from wikimedia/mediawiki-services-eventstreams at 7d6ac815a7eeb and the KafkaSSE it pins
// (wikimedia/KafkaSSE e4194f2), because the real service needs Kafka and its stream config; every
// behaviour and where it comes from: docs/wikimedia-protocol.md.
// `node test/support/wikimedia-server.ts --help` serves the fixture by hand.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

const FIXTURE_FILE = new URL('../fixtures/wikimedia/recentchange.ndjson', import.meta.url);

/** The topic of every fixture event, and of pushed events that name none. */
export const RECENTCHANGE_TOPIC = 'eqiad.mediawiki.recentchange';

const MEDIAWIKI_STREAMS = ['page-create', 'page-delete', 'page-move', 'page-undelete', 'page-properties-change', 'revision-create', 'recentchange'];

/**
 * Stream name -> Kafka topics, in the order routes/stream.js hands them to KafkaSSE. The streams
 * are the allowed_streams of the repository's config.prod.yaml, each under its canonical name and
 * its alias, with the two datacenter topics the id sample shows for recentchange.
 */
export const DEFAULT_STREAMS: Readonly<Record<string, readonly string[]>> = Object.fromEntries(
  MEDIAWIKI_STREAMS.flatMap((s) => {
    const topics = [`eqiad.mediawiki.${s}`, `codfw.mediawiki.${s}`];
    return [
      [`mediawiki.${s}`, topics],
      [s, topics],
    ];
  }),
);

export interface WikimediaMeta {
  topic?: string;
  partition?: number;
  offset?: number;
  /** event time; EventGate produces the Kafka message with it as the timestamp */
  dt?: string;
  id?: string;
  [key: string]: unknown;
}

/** One event as a stream's schema has it (recentchange: mediawiki/recentchange/1.0.0). */
export interface WikimediaEvent {
  meta?: WikimediaMeta;
  [key: string]: unknown;
}

/** What push() stored: the Kafka coordinates and the exact `data:` JSON every subscriber gets. */
export interface StoredWikimediaEvent {
  /** 0-based, in push order (the order subscribers get events of different partitions) */
  seq: number;
  topic: string;
  partition: number;
  offset: number;
  /** the Kafka message timestamp in ms: Date.parse(meta.dt), else the clock at push */
  timestamp: number;
  data: string;
}

export interface WikimediaServerOptions {
  /** stored before the first connection, in order (default: the fixture's 144 events) */
  events?: Iterable<WikimediaEvent>;
  /** default: a free loopback port */
  port?: number;
  host?: string;
  /** stream name -> topics (default DEFAULT_STREAMS) */
  streams?: Readonly<Record<string, readonly string[]>>;
  /**
   * What each `id` entry carries: 'timestamp' (message timestamp + 1, what EventStreams sets with
   * useTimestampForId) or 'offset' (offset + 1, KafkaSSE's own default). Default 'timestamp'.
   */
  idField?: 'timestamp' | 'offset';
  /**
   * The real server writes one `:ok` comment when a stream opens and nothing while it is idle.
   * Set this to write that comment again every N ms (a stand-in extension; default: never).
   */
  heartbeatMs?: number;
  /**
   * Send `retry: N` right after `:ok` (a stand-in extension: the real server never sends retry,
   * so EventSource clients wait their default, 3 s in `eventsource`, before reconnecting).
   */
  retryMs?: number;
  /** the topic of pushed events without meta.topic (default eqiad.mediawiki.recentchange) */
  defaultTopic?: string;
  /** routes/stream.js client_ip_connection_limit, keyed by X-Client-IP (default: no limit) */
  clientIpConnectionLimit?: number;
  /** the sockets' writable high-water mark: a write past it waits for 'drain' (default 64 KiB) */
  highWaterMark?: number;
  /** at most this many characters of frames go into one socket write (default 64 Ki) */
  batchChars?: number;
  /** the clock in ms, for the timestamp of events without meta.dt (default Date.now) */
  now?: () => number;
}

export interface WikimediaRequest {
  url: URL;
  method: string;
  headers: IncomingHttpHeaders;
  /** the status answered (0 until answered) */
  status: number;
  /** the body of a refusal, as sent */
  body?: string;
}

export interface WikimediaServer extends AsyncDisposable {
  /** http://HOST:PORT/v2/stream/recentchange */
  readonly url: string;
  /** http://HOST:PORT */
  readonly httpUrl: string;
  readonly port: number;
  /** the URL of /v2/stream/<streams joined by ","> with these query parameters */
  streamUrl(streams: string | readonly string[], query?: Record<string, string | number>): string;
  /** every request, in order, answered or refused */
  readonly requests: WikimediaRequest[];
  /** streams opened (200 answered) so far */
  readonly connections: number;
  /** streams open now */
  readonly openConnections: number;
  /** bytes queued in the open streams' sockets now (what backpressure keeps bounded) */
  readonly bufferedBytes: number;
  /** events stored so far */
  readonly size: number;
  stored(seq: number): StoredWikimediaEvent | undefined;
  /** Store events (Kafka produce) and wake the streams. */
  push(...events: WikimediaEvent[]): StoredWikimediaEvent[];
  /** Destroy every stream's socket: no end chunk, the client sees the body cut. Returns how many. */
  dropConnections(): number;
  /**
   * Cut every stream inside an event: a chunk header for the next frame (the next event the stream
   * would get, else its last one again), half of that frame, then the socket destroyed.
   */
  dropMidEvent(): Promise<number>;
  /** True when every open stream has been written every stored event it is assigned, with nothing left in its socket buffer. */
  readonly caughtUp: boolean;
  /** End every open stream cleanly (the body's last chunk): the client reads what was sent, then sees the end. Returns how many. */
  endStreams(): number;
  /** Write nothing (events, heartbeats) until resume() or for ms; streams stay open. */
  stall(ms?: number): void;
  resume(): void;
  /** Destroy every socket and stop listening (what clients see when a worker is killed). */
  close(): Promise<void>;
}

// ---- the responses of the service template and of KafkaSSE ----

// app.js sets these on every response before routing (conf.cors '*', conf.csp default).
const CSP = "default-src 'self'; object-src 'none'; media-src *; img-src *; style-src *; frame-ancestors 'self'";
function setCommonHeaders(res: ServerResponse): void {
  res.setHeader('access-control-allow-origin', '*');
  res.setHeader('access-control-allow-headers', 'accept, x-requested-with, content-type');
  res.setHeader('access-control-expose-headers', 'etag');
  res.setHeader('x-xss-protection', '1; mode=block');
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('x-frame-options', 'SAMEORIGIN');
  res.setHeader('content-security-policy', CSP);
  res.setHeader('x-content-security-policy', CSP);
  res.setHeader('x-webkit-csp', CSP);
}

/** lib/util.js setErrorHandler: an HTTPError as Express res.status().json() sends it. */
export function httpErrorBody(status: number, type: string, title: string | undefined, detail: string, method: string, uri: string): string {
  return JSON.stringify({ status, type, title, detail, method, uri });
}

/** KafkaSSEError.toJSON after KafkaSSE._error deleted the stack (lib/error.js). */
export function kafkaSseErrorBody(name: string, message: string, originalName: string | undefined, extra: Record<string, unknown>): string {
  const obj: Record<string, unknown> = { message, origin: 'KafkaSSE', name };
  if (originalName !== undefined) obj.originalName = originalName;
  return JSON.stringify(Object.assign(obj, extra));
}

const ASSIGNMENT_ERROR = 'Must provide either an array topic names, or  an array of objects with topic, partition and offset|timestamp.';

interface Refusal {
  status: number;
  statusMessage?: string;
  body: string;
  /** Express res.json: content type and length; KafkaSSE's connectErrorHandler sets neither */
  json: boolean;
}

// lodash _.isPlainObject for JSON values
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** utils.js validateAssignments: topic names, or {topic, partition, offset|timestamp} with integers. */
export function validAssignments(a: unknown): a is (string | Record<string, unknown>)[] {
  if (!Array.isArray(a) || a.length === 0) return false;
  return a.every(
    (x) =>
      typeof x === 'string' ||
      (isObject(x) &&
        typeof x.topic === 'string' &&
        Number.isInteger(x.partition) &&
        (Number.isInteger(x.offset) || Number.isInteger(x.timestamp))),
  );
}

// node-rdkafka hands offsets to librdkafka as int64 (Nan::To<int64_t>): NaN and the like are 0.
function toInt64(v: unknown): number {
  const n = Number(v);
  if (Number.isNaN(n)) return 0;
  return Number.isFinite(n) ? Math.trunc(n) : n;
}

/**
 * node-rdkafka's TopicPartition (what assign() makes of an entry's offset): null or absent is
 * OFFSET_STORED (-1000), a few words name logical offsets, other strings and types throw.
 */
export function assignOffset(v: unknown): number | { error: string } {
  if (v === undefined || v === null) return -1000;
  if (typeof v === 'number') return toInt64(v);
  if (typeof v !== 'string') return { error: '"offset" must be a special string or number if it is set' };
  switch (v.toLowerCase()) {
    case 'earliest':
    case 'beginning':
      return -2;
    case 'latest':
    case 'end':
      return -1;
    case 'stored':
      return -1000;
    default:
      return { error: '"offset", if provided as a string, must be beginning, end, or stored.' };
  }
}

// ---- storage: one serialization per event, shared by every stream ----

interface Partition {
  index: number;
  topic: string;
  partition: number;
  offsets: number[];
  seqs: number[];
  /** running maximum of the timestamps: its first entry >= t is the first message with timestamp >= t */
  maxTs: number[];
}

function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

class Store {
  partitions: Partition[] = [];
  byKey = new Map<string, Partition>();
  byTopic = new Map<string, Partition[]>();
  tp: number[] = [];
  offset: number[] = [];
  timestamp: number[] = [];
  data: string[] = [];
  /** this event's entry of the id array, as JSON (`{"topic":…,"partition":…,"timestamp"|"offset":…}`) */
  entry: string[] = [];

  get size(): number {
    return this.tp.length;
  }

  partitionOf(topic: string, partition: number): Partition {
    const key = `${topic}/${partition}`;
    let p = this.byKey.get(key);
    if (!p) {
      p = { index: this.partitions.length, topic, partition, offsets: [], seqs: [], maxTs: [] };
      this.partitions.push(p);
      this.byKey.set(key, p);
      const list = this.byTopic.get(topic);
      if (list) list.push(p);
      else this.byTopic.set(topic, [p]);
    }
    return p;
  }

  /** the high watermark: the offset the next message gets */
  next(p: Partition): number {
    const last = p.offsets[p.offsets.length - 1];
    return last === undefined ? 0 : last + 1;
  }

  start(p: Partition): number {
    return p.offsets[0] ?? this.next(p);
  }

  /** offsetsForTimes: the first offset whose timestamp >= t, -1 when none; -1/-2 are ListOffsets' latest/earliest */
  offsetForTime(p: Partition, t: number): number {
    if (t === -1) return this.next(p);
    if (t === -2) return this.start(p);
    if (t < 0) return -1;
    const i = lowerBound(p.maxTs, t);
    return i < p.offsets.length ? p.offsets[i]! : -1;
  }

  /**
   * Where a consumer assigned at `offset` starts: -2 the log start, other negatives (-1 end,
   * -1000 stored, none committed) and offsets out of range the end (auto.offset.reset=largest).
   */
  position(p: Partition, offset: number): number {
    const next = this.next(p);
    if (offset === -2) return this.start(p);
    if (offset < 0) return next;
    if (offset < this.start(p) || offset > next) return next;
    return offset;
  }

  /** the seq of the first stored message of p at or after offset (size when none) */
  seqFrom(p: Partition, offset: number): number {
    const i = lowerBound(p.offsets, offset);
    return i < p.seqs.length ? p.seqs[i]! : this.size;
  }
}

// ---- streams ----

interface Conn {
  req: IncomingMessage;
  res: ServerResponse;
  socket: Socket;
  sse: boolean;
  /** next offset to deliver, by partition index; undefined: not assigned */
  pos: (number | undefined)[];
  /** the id array: latestOffsetsMap's values in insertion order, as JSON */
  entries: string[];
  entryAt: (number | undefined)[];
  /** next seq to look at */
  g: number;
  lastFrame?: string;
  scheduled: boolean;
  waitingDrain: boolean;
  closed: boolean;
  heartbeat?: NodeJS.Timeout;
}

export async function startWikimediaServer(opts: WikimediaServerOptions = {}): Promise<WikimediaServer> {
  const host = opts.host ?? '127.0.0.1';
  const streams = opts.streams ?? DEFAULT_STREAMS;
  const idField = opts.idField ?? 'timestamp';
  const defaultTopic = opts.defaultTopic ?? RECENTCHANGE_TOPIC;
  const now = opts.now ?? Date.now;
  const batchChars = opts.batchChars ?? 64 << 10;
  const store = new Store();
  const conns = new Set<Conn>();
  const requests: WikimediaRequest[] = [];
  const perIp = new Map<string, number>();
  let opened = 0;
  let stalled = false;
  let stallTimer: NodeJS.Timeout | undefined;
  let closed = false;

  // Every configured topic exists in the stand-in's Kafka with one partition, 0.
  for (const topics of Object.values(streams)) for (const t of topics) store.partitionOf(t, 0);

  const pushAll = (events: Iterable<WikimediaEvent>): StoredWikimediaEvent[] => {
    const out: StoredWikimediaEvent[] = [];
    for (const e of events) {
      if (!isObject(e)) throw new TypeError('a Wikimedia event is a JSON object');
      const meta = isObject(e.meta) ? e.meta : undefined;
      const topic = typeof meta?.topic === 'string' ? meta.topic : defaultTopic;
      const partition = Number.isInteger(meta?.partition) ? (meta!.partition as number) : 0;
      const p = store.partitionOf(topic, partition);
      const next = store.next(p);
      // The fixture keeps its real offsets; anything not past the last one gets the next.
      const given = meta?.offset;
      const offset = typeof given === 'number' && Number.isInteger(given) && given >= next ? given : next;
      const dt = typeof meta?.dt === 'string' ? Date.parse(meta.dt) : Number.NaN;
      const timestamp = Number.isNaN(dt) ? Math.floor(now()) : dt;
      // The eventstreams deserializer sets meta.topic/partition/offset, appending what is missing.
      const data = JSON.stringify({ ...e, meta: { ...meta, topic, partition, offset } });
      const seq = store.size;
      const last = p.maxTs[p.maxTs.length - 1];
      p.offsets.push(offset);
      p.seqs.push(seq);
      p.maxTs.push(last === undefined ? timestamp : Math.max(last, timestamp));
      store.tp.push(p.index);
      store.offset.push(offset);
      store.timestamp.push(timestamp);
      store.data.push(data);
      const at = idField === 'timestamp' ? `"timestamp":${timestamp + 1}` : `"offset":${offset + 1}`;
      store.entry.push(`{"topic":${JSON.stringify(topic)},"partition":${partition},${at}}`);
      out.push({ seq, topic, partition, offset, timestamp, data });
    }
    for (const c of conns) schedule(c);
    return out;
  };
  pushAll(opts.events ?? loadWikimediaFixture());

  function stored(seq: number): StoredWikimediaEvent | undefined {
    if (!Number.isInteger(seq) || seq < 0 || seq >= store.size) return undefined;
    const p = store.partitions[store.tp[seq]!]!;
    return { seq, topic: p.topic, partition: p.partition, offset: store.offset[seq]!, timestamp: store.timestamp[seq]!, data: store.data[seq]! };
  }

  // ---- sending ----

  function schedule(c: Conn): void {
    if (c.scheduled || c.closed || c.waitingDrain) return;
    c.scheduled = true;
    setImmediate(() => {
      c.scheduled = false;
      pump(c);
    });
  }

  function frame(c: Conn, seq: number, entries: string[]): string {
    return c.sse ? `event: message\nid: [${entries.join(',')}]\ndata: ${store.data[seq]}\n\n` : `${store.data[seq]}\n`;
  }

  function deliverable(c: Conn, seq: number): boolean {
    const pos = c.pos[store.tp[seq]!];
    return pos !== undefined && store.offset[seq]! >= pos;
  }

  function pump(c: Conn): void {
    if (c.closed || c.waitingDrain || stalled) return;
    let out = '';
    const end = store.size;
    while (c.g < end && out.length < batchChars) {
      const seq = c.g++;
      if (!deliverable(c, seq)) continue;
      const tp = store.tp[seq]!;
      c.pos[tp] = store.offset[seq]! + 1;
      // _updateLatestOffsetsMap: a fresh {topic, partition, timestamp|offset} in the same slot
      c.entries[c.entryAt[tp]!] = store.entry[seq]!;
      const f = frame(c, seq, c.entries);
      c.lastFrame = f;
      out += f;
    }
    if (out !== '' && !c.res.write(out)) waitDrain(c);
    else if (c.g < store.size) schedule(c);
  }

  function waitDrain(c: Conn): void {
    c.waitingDrain = true;
    c.res.once('drain', () => {
      c.waitingDrain = false;
      schedule(c);
    });
  }

  function heartbeat(c: Conn): void {
    if (c.closed || stalled || c.waitingDrain) return;
    c.res.write(c.sse ? ':ok\n\n' : '\n');
  }

  function end(c: Conn): void {
    if (c.closed) return;
    c.closed = true;
    clearInterval(c.heartbeat);
    conns.delete(c);
  }

  // ---- requests ----

  function refuse(res: ServerResponse, rec: WikimediaRequest, r: Refusal): void {
    rec.status = r.status;
    rec.body = r.body;
    res.statusCode = r.status;
    if (r.statusMessage !== undefined) res.statusMessage = r.statusMessage;
    if (r.json) {
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.setHeader('Content-Length', String(Buffer.byteLength(r.body)));
      res.end(r.body);
      return;
    }
    try {
      // KafkaSSE writes then ends, so the body goes chunked, with no content type.
      res.write(r.body);
      res.end();
    } catch {
      // A status message Node refuses to send: the real handler swallows the throw and leaves
      // the request unanswered; the stand-in closes it instead.
      res.destroy();
    }
  }

  // Express's finalhandler for a route nobody serves.
  function notFound(res: ServerResponse, rec: WikimediaRequest, method: string, pathname: string): void {
    const esc = (s: string): string =>
      s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
    const body = `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot ${esc(method)} ${esc(pathname)}</pre>\n</body>\n</html>\n`;
    rec.status = 404;
    rec.body = body;
    res.statusCode = 404;
    res.setHeader('Content-Security-Policy', "default-src 'none'");
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Content-Length', String(Buffer.byteLength(body)));
    res.end(body);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const rawUrl = req.url ?? '/';
    const method = req.method ?? 'GET';
    const url = new URL(rawUrl, `http://${host}:${port}`);
    const rec: WikimediaRequest = { url, method, headers: req.headers, status: 0 };
    requests.push(rec);
    setCommonHeaders(res);
    const qi = rawUrl.indexOf('?');
    const pathname = qi < 0 ? rawUrl : rawUrl.slice(0, qi);
    // Express: router mounted at /v2/, route /stream/:streams, case-insensitive, optional trailing slash
    const m = /^\/v2\/stream\/([^/]+?)\/?$/i.exec(pathname);
    if (!m || (method !== 'GET' && method !== 'HEAD')) return notFound(res, rec, method, pathname);
    const httpError = (status: number, type: string, title: string | undefined, detail: string): void =>
      refuse(res, rec, { status, body: httpErrorBody(status, type, title, detail, method, rawUrl), json: true });

    let param: string;
    try {
      param = decodeURIComponent(m[1]!);
    } catch {
      // Express's URIError reaches the template's handler as a plain Error: a 500
      return httpError(500, 'internal_error', 'URIError', `Failed to decode param '${m[1]}'`);
    }

    const clientIp = typeof req.headers['x-client-ip'] === 'string' ? req.headers['x-client-ip'] : undefined;
    const limit = opts.clientIpConnectionLimit;
    if (limit !== undefined) {
      if (clientIp === undefined) return httpError(400, 'bad_request', 'Missing Required X-Client-IP Header', 'X-Client-IP is a required request header');
      if ((perIp.get(clientIp) ?? 0) >= limit) {
        return httpError(429, 'too_many_requests', 'Too Many Concurrent Connections From Your Client IP', 'Your HTTP client is likely opening too many concurrent connections.');
      }
    }

    const requested = param.split(',');
    const invalid = requested.filter((s) => !Object.hasOwn(streams, s));
    if (invalid.length > 0) return httpError(400, 'not_found', 'Stream Not Found', `Invalid streams: ${invalid.join(',')}`);
    const topics = [...new Set([...new Set(requested)].flatMap((s) => streams[s]!))];

    // Express's query parser: a repeated key is an array, which stringifies with commas.
    const sinceAll = url.searchParams.getAll('since');
    const since: string | undefined = sinceAll.length === 0 ? undefined : sinceAll.join(',');
    const sinceIsArray = sinceAll.length > 1;
    let atTimestamp: string | number | undefined = since;
    if (atTimestamp && (sinceIsArray || Number.isNaN(Number(atTimestamp)))) atTimestamp = Date.parse(atTimestamp);
    if (atTimestamp !== undefined && Number.isNaN(Number(atTimestamp))) {
      return httpError(400, 'invalid_timestamp', 'Invalid timestamp', `since timestamp is not a UTC milliseconds unix epoch and was not parseable: '${since}'`);
    }

    // Counted from here on; 'close' and 'finish' both decrement (clamped at 0), as routes/stream.js does.
    if (clientIp !== undefined) {
      perIp.set(clientIp, (perIp.get(clientIp) ?? 0) + 1);
      const dec = (): void => void perIp.set(clientIp, Math.max((perIp.get(clientIp) ?? 0) - 1, 0));
      res.on('close', dec);
      res.on('finish', dec);
    }
    connect(req, res, rec, topics, atTimestamp);
  }

  // KafkaSSE connect: _init (assignments), then _start (headers, :ok, the consume loop).
  function connect(req: IncomingMessage, res: ServerResponse, rec: WikimediaRequest, topics: string[], atTimestamp: string | number | undefined): void {
    const fail = (status: number, name: string, message: string, originalName: string | undefined, extra: Record<string, unknown>): void =>
      refuse(res, rec, {
        status,
        statusMessage: `${name}: ${message}`,
        body: `${kafkaSseErrorBody(name, message, originalName, { ...extra, statusCode: status })}\n`,
        json: false,
      });

    let assignments: unknown = topics;
    if ('last-event-id' in req.headers) {
      const raw = String(req.headers['last-event-id']);
      try {
        assignments = JSON.parse(raw);
      } catch (e) {
        return fail(400, 'InvalidAssignmentError', (e as Error).message, 'SyntaxError', { last_event_id: raw });
      }
    }
    if (typeof assignments === 'string') assignments = assignments.split(',');
    if (!validAssignments(assignments)) {
      return fail(400, 'InvalidAssignmentError', ASSIGNMENT_ERROR, 'Error', { assignments });
    }
    const wanted = [...new Set(assignments.map((a) => (typeof a === 'string' ? a : (a.topic as string))))];
    const unavailable = wanted.filter((t) => !topics.includes(t) || !store.byTopic.has(t));
    if (unavailable.length > 0) {
      return fail(404, 'TopicNotAvailableError', `Topics ${unavailable.join(', ')} are not available for consumption.`, undefined, {
        availableTopics: topics.filter((t) => store.byTopic.has(t)),
      });
    }

    // buildAssignmentsAsync: topic names become every partition, from since (truthy) or latest
    const expanded: Record<string, unknown>[] = assignments.flatMap((a) =>
      typeof a === 'string'
        ? store.byTopic.get(a)!.map((p) => (atTimestamp ? { topic: a, partition: p.partition, timestamp: atTimestamp } : { topic: a, partition: p.partition, offset: -1 }))
        : [a],
    );
    // assignmentsForTimesAsync: timestamp-only entries become node-rdkafka offsetsForTimes results
    // ({offset, partition, topic}) after the offset entries; an entry with both is dropped then.
    const timed = expanded.filter((a) => 'timestamp' in a && !('offset' in a));
    let final: Record<string, unknown>[] = expanded;
    if (timed.length > 0) {
      final = [
        ...expanded.filter((a) => !('timestamp' in a) && 'offset' in a),
        ...timed.map((a) => {
          const p = store.byKey.get(`${a.topic as string}/${a.partition as number}`);
          return { offset: p ? store.offsetForTime(p, toInt64(a.timestamp)) : -1, partition: a.partition, topic: a.topic };
        }),
      ];
    }

    // assign(): a TypeError from node-rdkafka is no KafkaSSEError: a 500 whose JSON is {}
    const offsets = final.map((a) => assignOffset(a.offset));
    for (const o of offsets) {
      if (typeof o !== 'number') return refuse(res, rec, { status: 500, statusMessage: `TypeError: ${o.error}`, body: '{}\n', json: false });
    }

    const c: Conn = {
      req,
      res,
      socket: req.socket,
      sse: true,
      pos: [],
      entries: [],
      entryAt: [],
      g: store.size,
      scheduled: false,
      waitingDrain: false,
      closed: false,
    };
    const entryKey = new Map<string, number>();
    final.forEach((a, i) => {
      const key = `${a.topic as string}/${a.partition as number}`;
      const json = JSON.stringify(a);
      const at = entryKey.get(key);
      if (at === undefined) {
        entryKey.set(key, c.entries.length);
        c.entries.push(json);
      } else c.entries[at] = json;
      const p = store.byKey.get(key);
      // A partition Kafka does not have yields nothing (unmodelled: what librdkafka reports then).
      if (!p) return;
      c.entryAt[p.index] = entryKey.get(key);
      const pos = store.position(p, offsets[i] as number);
      c.pos[p.index] = pos;
      c.g = Math.min(c.g, store.seqFrom(p, pos));
    });

    // _start: Accept picks JSON lines or SSE; only a request with an Accept header gets the charset
    const headers: Record<string, string> = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' };
    const accept = req.headers.accept;
    if (accept !== undefined) {
      if (accept.startsWith('application/json')) {
        headers['content-type'] = 'application/json; charset=utf-8';
        c.sse = false;
      } else headers['content-type'] = 'text/event-stream; charset=utf-8';
    }
    rec.status = 200;
    res.writeHead(200, headers);
    res.write(c.sse ? ':ok\n\n' : '\n');
    if (c.sse && opts.retryMs !== undefined) res.write(`retry: ${opts.retryMs}\n\n`);
    opened++;
    conns.add(c);
    res.on('close', () => end(c));
    if (opts.heartbeatMs !== undefined && opts.heartbeatMs > 0) {
      c.heartbeat = setInterval(() => heartbeat(c), opts.heartbeatMs);
      c.heartbeat.unref();
    }
    schedule(c);
  }

  const server: Server = createServer({ highWaterMark: opts.highWaterMark ?? 64 << 10 }, handle);
  // app.js: no Nagle delay on stream sockets
  server.on('connection', (socket: Socket) => socket.setNoDelay(true));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const httpUrl = `http://${host}:${port}`;

  const self: WikimediaServer = {
    url: `${httpUrl}/v2/stream/recentchange`,
    httpUrl,
    port,
    streamUrl(names, query = {}) {
      const list = typeof names === 'string' ? names : names.join(',');
      const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString();
      return `${httpUrl}/v2/stream/${list}${qs ? `?${qs}` : ''}`;
    },
    requests,
    get connections() {
      return opened;
    },
    get openConnections() {
      return conns.size;
    },
    get bufferedBytes() {
      let n = 0;
      for (const c of conns) n += c.res.writableLength;
      return n;
    },
    get size() {
      return store.size;
    },
    stored,
    push: (...events) => pushAll(events),
    get caughtUp() {
      for (const c of conns) {
        if (c.res.writableLength > 0 || c.waitingDrain) return false;
        for (let s = c.g; s < store.size; s++) if (deliverable(c, s)) return false;
      }
      return true;
    },
    endStreams() {
      const list = [...conns];
      for (const c of list) {
        end(c);
        c.res.end();
      }
      return list.length;
    },
    dropConnections() {
      const list = [...conns];
      for (const c of list) {
        end(c);
        c.socket.destroy();
      }
      return list.length;
    },
    async dropMidEvent() {
      const list = [...conns];
      await Promise.all(
        list.map(async (c) => {
          let next = -1;
          for (let s = c.g; s < store.size; s++) {
            if (deliverable(c, s)) {
              next = s;
              break;
            }
          }
          let f: string;
          if (next >= 0) {
            const entries = [...c.entries];
            entries[c.entryAt[store.tp[next]!]!] = store.entry[next]!;
            f = frame(c, next, entries);
          } else f = c.lastFrame ?? (c.sse ? 'event: message\nid: []\ndata: {}\n\n' : '{}\n');
          end(c);
          const bytes = Buffer.from(f);
          const half = bytes.subarray(0, Math.max(1, bytes.length >> 1));
          await new Promise<void>((resolve) => {
            const done = (): void => {
              clearTimeout(timer);
              c.socket.destroy();
              resolve();
            };
            const timer = setTimeout(done, 1_000);
            // The HTTP chunk promises the whole frame and ends half way: both framings are cut.
            c.socket.write(`${bytes.length.toString(16)}\r\n`);
            c.socket.write(half, done);
          });
        }),
      );
      return list.length;
    },
    stall(ms) {
      stalled = true;
      clearTimeout(stallTimer);
      if (ms !== undefined) stallTimer = setTimeout(() => self.resume(), ms);
    },
    resume() {
      stalled = false;
      clearTimeout(stallTimer);
      for (const c of conns) schedule(c);
    },
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(stallTimer);
      for (const c of [...conns]) end(c);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
    [Symbol.asyncDispose]() {
      return self.close();
    },
  };
  return self;
}

// ---- the fixture ----

/**
 * The 144 recentchange events of the shared capture (stream.wikimedia.org, 2025-05-03 07:46 UTC),
 * in stream order, each with its real meta.topic (eqiad.mediawiki.recentchange), partition 0 and offset.
 */
export function loadWikimediaFixture(): WikimediaEvent[] {
  return readFileSync(FIXTURE_FILE, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as WikimediaEvent);
}

export interface LoopOptions {
  /** meta.offset of the first event (default: one past base's highest) */
  startOffset?: number;
  /** meta.dt of the first event, in ms (default Date.now()) */
  startMs?: number;
  /** ms between events' meta.dt (default 1, so every Kafka timestamp differs) */
  stepMs?: number;
}

/**
 * n events cycling through base, every one fresh: meta.offset counting up from startOffset,
 * a new meta.id, the top-level rc `id` counting up past base's, meta.dt stepping by stepMs (with
 * milliseconds, unlike real recentchange's whole seconds) and `timestamp` its seconds.
 */
export function* loopWikimediaEvents(base: readonly WikimediaEvent[], n: number, o: LoopOptions = {}): Generator<WikimediaEvent> {
  if (base.length === 0) return;
  let maxOffset = -1;
  let maxId = 0;
  for (const e of base) {
    if (typeof e.meta?.offset === 'number') maxOffset = Math.max(maxOffset, e.meta.offset);
    if (typeof e.id === 'number') maxId = Math.max(maxId, e.id);
  }
  const startOffset = o.startOffset ?? maxOffset + 1;
  const startMs = o.startMs ?? Date.now();
  const stepMs = o.stepMs ?? 1;
  // a v4-shaped uuid per event: a random prefix for this run, then the counter
  const prefix = Array.from({ length: 8 }, () => Math.floor(Math.random() * 16).toString(16)).join('');
  for (let i = 0; i < n; i++) {
    const src = base[i % base.length]!;
    const ms = startMs + i * stepMs;
    const hex = i.toString(16).padStart(12, '0').slice(-12);
    const meta = { ...src.meta, id: `${prefix}-0000-4000-8000-${hex}`, dt: new Date(ms).toISOString(), offset: startOffset + i };
    const e: WikimediaEvent = { ...src, meta };
    if (typeof src.id === 'number') e.id = maxId + 1 + i;
    if (typeof src.timestamp === 'number') e.timestamp = Math.floor(ms / 1000);
    yield e;
  }
}

// ---- by hand: node test/support/wikimedia-server.ts --port 8092 ----

if (import.meta.main) {
  const args = process.argv.slice(2);
  const flag = (name: string): string | undefined => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  if (args.includes('--help')) {
    process.stdout.write(
      [
        'node test/support/wikimedia-server.ts [--port N] [--live RATE] [--id timestamp|offset] [--heartbeat MS] [--retry MS]',
        '  serves the recentchange fixture (144 events) on http://127.0.0.1:PORT/v2/stream/recentchange',
        '  (8092 by default, EventStreams\' own port); like the real service a stream starts at the',
        '  newest event: add ?since=2025-05-03T07:46:00Z (or Last-Event-ID) to get the stored ones',
        '  --live RATE     push RATE fresh events per second (the fixture looped) until stopped',
        '  SIGINT/SIGTERM  stop pushing, finish sending, end the streams cleanly and print how many events were served',
        '  --id offset     put offsets in the SSE id instead of timestamps (KafkaSSE\'s default)',
        '  --heartbeat MS  repeat the ":ok" comment every MS (the real service never does)',
        '  --retry MS      send "retry: MS" when a stream opens (the real service never does)',
        '',
      ].join('\n'),
    );
    process.exit(0);
  }
  const num = (name: string): number | undefined => (flag(name) === undefined ? undefined : Number(flag(name)));
  const base = loadWikimediaFixture();
  const srv = await startWikimediaServer({
    port: num('port') ?? 8092,
    idField: flag('id') === 'offset' ? 'offset' : 'timestamp',
    ...(num('heartbeat') !== undefined ? { heartbeatMs: num('heartbeat')! } : {}),
    ...(num('retry') !== undefined ? { retryMs: num('retry')! } : {}),
  });
  process.stdout.write(`wikimedia stand-in: ${srv.url} (${srv.size} events, offsets ${srv.stored(0)!.offset}..${srv.stored(srv.size - 1)!.offset})\n`);
  process.stdout.write(`  try: curl -sN '${srv.url}?since=2025-05-03T07:46:00Z' | head\n`);
  const rate = num('live') ?? 0;
  let live: NodeJS.Timeout | undefined;
  if (rate > 0) {
    // meta.dt steps at the push rate, so it stays near the wall clock
    const gen = loopWikimediaEvents(base, Number.MAX_SAFE_INTEGER, {
      startOffset: srv.stored(srv.size - 1)!.offset + 1,
      stepMs: Math.max(1, Math.round(1000 / rate)),
    });
    const t0 = Date.now();
    let sent = 0;
    live = setInterval(() => {
      const due = Math.floor(((Date.now() - t0) * rate) / 1000) - sent;
      const batch: WikimediaEvent[] = [];
      for (let i = 0; i < due; i++) batch.push(gen.next().value as WikimediaEvent);
      sent += due;
      if (batch.length > 0) srv.push(...batch);
    }, 50);
  }
  // A stop ends the live events first, lets the open streams send what they hold (up to 10 s), then ends them
  // cleanly and says how many events were served: the number a lossless reader has (docs/learn-kafka.md).
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearInterval(live);
    const deadline = Date.now() + 10_000;
    while (!srv.caughtUp && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const all = srv.caughtUp ? '' : '; not every open stream was sent all of them';
    process.stdout.write(`wikimedia stand-in: stopped after serving ${srv.size} events (offsets ${srv.stored(0)!.offset}..${srv.stored(srv.size - 1)!.offset})${all}\n`);
    srv.endStreams();
    await srv.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}
