// A stand-in for a Jetstream server's legacy v1 websocket endpoint (/subscribe), for tests.
//   startJetstreamServer(): serves given events (replay by cursor, then live pushes) on a loopback port
//   loadCorpusEvents(): the 152 events a real Jetstream sent for the shared relay capture
//   loopEvents(): the corpus repeated to N events with fresh rev/rkey, for load tests
// Written from bluesky-social/jetstream at 1ddfc3a64c5f (internal/subscribe/) because that
// server cannot be built here; every behaviour and where it comes from: docs/jetstream-protocol.md.
// `node test/support/jetstream-server.ts --help` serves the fixture by hand.
import { readFileSync } from 'node:fs';
import { createServer, ServerResponse, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import zlib from 'node:zlib';
import { WebSocketServer, type WebSocket } from 'ws';

const CORPUS_FILE = new URL('../fixtures/jetstream/events.jsonl.zst', import.meta.url);
// A copy of ../shared/corpus/zstd-dictionaries/legacy_subscribe.zdict, so a fresh clone has it.
const DICTIONARY_FILE = new URL('../fixtures/jetstream/legacy_subscribe.zdict', import.meta.url);

/** The dictionary id inside legacy_subscribe.zdict; every compress=true frame names it. */
export const LEGACY_DICTIONARY_ID = 1612007021;
/** Caps of filter.go; the DID cap is only reachable through options_update (Go's 10,000-parameter query limit comes first). */
export const MAX_WANTED_COLLECTIONS = 100;
export const MAX_WANTED_DIDS = 10_000;
/** Client messages above this are refused with close 1009 (filter.go MaxSubscriberMessageBytes). */
export const MAX_SUBSCRIBER_MESSAGE_BYTES = 10_000_000;
/** cursor.go: below this a cursor is the server's own seq, from it on a unix-microsecond time_us. */
export const CURSOR_SEQ_MAX = 1_000_000_000_000_000;

export interface JetstreamCommit {
  rev: string;
  operation: 'create' | 'update' | 'delete' | (string & {});
  collection: string;
  rkey: string;
  /** the record as JSON (creates and updates; ignored on deletes, as the server drops it) */
  record?: unknown;
  cid?: string;
}

export interface JetstreamIdentity {
  $type?: string;
  did: string;
  handle?: string;
  seq: number;
  time: string;
}

export interface JetstreamAccount {
  $type?: string;
  active: boolean;
  did: string;
  seq: number;
  status?: string;
  time: string;
}

/**
 * One event as the v1 wire has it. `kind: 'sync'` is accepted and stored (it takes a seq)
 * but never sent: the v1 wire skips #sync (encoder.go Encode).
 */
export interface JetstreamEvent {
  did: string;
  /** unix microseconds; push() assigns one when absent */
  time_us?: number;
  /** this server version's own seq; the stand-in always renders its own (see keepCursor) */
  cursor?: number;
  kind: 'commit' | 'identity' | 'account' | 'sync' | (string & {});
  commit?: JetstreamCommit;
  identity?: JetstreamIdentity;
  account?: JetstreamAccount;
}

/** What push() stored: the seq (1-based, the real server's `cursor`) and the exact JSON served. */
export interface StoredEvent {
  seq: number;
  time_us: number;
  /** the uncompressed frame (UTF-8 JSON); empty for kinds the v1 wire skips */
  json: string;
}

export interface JetstreamServerOptions {
  /** stored before the first connection, in order: what a cursor can replay */
  events?: Iterable<JetstreamEvent>;
  /** default: a free loopback port */
  port?: number;
  host?: string;
  /**
   * Render the top-level `"cursor"` (the seq) that 1ddfc3a64c5f puts after `time_us`
   * (default false: the public v1 wire, as production Jetstream sends it, has none).
   */
  keepCursor?: boolean;
  /** the server's wall clock in microseconds: future-cursor check and assigned time_us (default Date.now()*1000) */
  nowUs?: () => number;
  /**
   * Negotiate RFC 7692 permessage-deflate (context takeover) when a client offers it and did not
   * ask for compress=true, as 1ddfc3a64c5f does (default true; production v1 never negotiates it).
   */
  perMessageDeflate?: boolean;
  /** 1ddfc3a64c5f pings every 30 s once events flow, and drops a connection whose pong takes 5 s */
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  /** a connection that cannot take a frame for this long is dropped without a close frame (5 s) */
  writeTimeoutMs?: number;
  /** bytes queued on a socket before its sender waits for 'drain' (default 4 MiB) */
  highWaterMark?: number;
  /**
   * Resolve time_us cursors the way 1ddfc3a64c5f does with segment files of this many events:
   * exact inside sealed segments, but a cursor newer than every sealed segment starts at the
   * first event of the active (unsealed) one, and with no sealed segment at all (Infinity:
   * a server whose archive fits one 256 MiB segment) every retained event is replayed.
   * Default: exact, the first event with time_us >= cursor (production v1's pebble scan).
   */
  segmentEvents?: number;
  /**
   * Keep the newest `retain` events, dropping the oldest in bulk once twice that piled up
   * (default: all). A cursor below them starts at the oldest kept; a reader left behind is dropped.
   */
  retain?: number;
  /** slowdetect.go: a client this many events behind for slowWindowMs, scanning under slowMinRate/s, is dropped */
  slowLagThreshold?: number;
  slowWindowMs?: number;
  slowMinRate?: number;
}

export interface Handshake {
  url: URL;
  headers: IncomingHttpHeaders;
  /** 101 for an accepted websocket, else the HTTP status answered */
  status: number;
  /** the body of a refusal (Go's http.Error text, with its newline) */
  body?: string;
}

export interface JetstreamServer extends AsyncDisposable {
  /** ws://HOST:PORT/subscribe */
  readonly url: string;
  /** http://HOST:PORT */
  readonly httpUrl: string;
  readonly port: number;
  /** every request to the server, in order, websocket or not, accepted or refused */
  readonly requests: URL[];
  readonly handshakes: Handshake[];
  /** websocket connections accepted so far */
  readonly connections: number;
  /** websocket connections open now */
  readonly openConnections: number;
  /** seq the next stored event gets (1 + events stored so far) */
  readonly nextSeq: number;
  /** oldest seq still stored (1 until `retain` drops some) */
  readonly firstSeq: number;
  /** time_us of the newest stored event (0 when none) */
  readonly lastTimeUs: number;
  /** the stored event with this seq, as served */
  stored(seq: number): StoredEvent | undefined;
  /** Store events and wake live subscribers; a missing time_us becomes max(now, last + 1). */
  push(...events: JetstreamEvent[]): StoredEvent[];
  /** Destroy every socket: no close frame, the client sees 1006. Returns how many. */
  dropConnections(): number;
  /** Close every open connection with this close frame (as the server does on errors and shutdown). */
  closeWith(code: number, reason?: string): Promise<void>;
  /** Send nothing (events, pings, pongs) until resume() or for ms; connections stay open. */
  stall(ms?: number): void;
  resume(): void;
  /** What a real shutdown does: close 1001 "server shutting down", then stop listening. */
  close(): Promise<void>;
}

const KIND_COMMIT = 0;
const KIND_OTHER = 1; // identity and account: no collection, pass the collection filter
const KIND_SKIPPED = 2; // sync: stored, never sent on v1

// ---- Go compatibility: the exact bytes a Go server answers with ----

const GO_STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  426: 'Upgrade Required',
};

/** Go's strconv.Quote of raw bytes (the %q in the cursor and URL-escape errors). */
export function goQuote(bytes: Uint8Array): string {
  let out = '"';
  for (let i = 0; i < bytes.length; ) {
    const [cp, size] = decodeRune(bytes, i);
    const b = bytes[i]!;
    if (cp === -1) {
      out += `\\x${hex2(b)}`;
    } else if (cp === 0x22 || cp === 0x5c) {
      out += `\\${String.fromCharCode(cp)}`;
    } else if (cp >= 0x20 && cp < 0x7f) {
      out += String.fromCharCode(cp);
    } else if (cp < 0x80) {
      const named: Record<number, string> = { 7: 'a', 8: 'b', 12: 'f', 10: 'n', 13: 'r', 9: 't', 11: 'v' };
      out += named[cp] ? `\\${named[cp]}` : `\\x${hex2(cp)}`;
    } else if (GO_PRINTABLE.test(String.fromCodePoint(cp))) {
      out += String.fromCodePoint(cp);
    } else if (cp < 0x10000) {
      out += `\\u${cp.toString(16).padStart(4, '0')}`;
    } else {
      out += `\\U${cp.toString(16).padStart(8, '0')}`;
    }
    i += size;
  }
  return `${out}"`;
}
// unicode.IsPrint beyond ASCII: letters, marks, numbers, punctuation, symbols (not spaces)
const GO_PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

// One UTF-8 sequence at i: [code point, length], or [-1, 1] for a byte that starts none (Go's RuneError).
function decodeRune(b: Uint8Array, i: number): [number, number] {
  const c = b[i]!;
  if (c < 0x80) return [c, 1];
  const need = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
  if (need === 0 || i + need >= b.length) return [-1, 1];
  let cp = c & (need === 1 ? 0x1f : need === 2 ? 0x0f : 0x07);
  for (let k = 1; k <= need; k++) {
    const cc = b[i + k]!;
    if ((cc & 0xc0) !== 0x80) return [-1, 1];
    cp = (cp << 6) | (cc & 0x3f);
  }
  const min = need === 1 ? 0x80 : need === 2 ? 0x800 : 0x10000;
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return [-1, 1];
  return [cp, need + 1];
}

// Query values stay byte strings (one char per byte, as Go keeps them): error texts echo them verbatim.
type Bytes = string;
const latin1 = (s: Bytes): Buffer => Buffer.from(s, 'latin1');

interface GoQuery {
  values: Map<Bytes, Bytes[]>;
  error?: Bytes;
}

/** Go's url.ParseQuery, with its 10,000-parameter limit (GODEBUG urlmaxqueryparams, Go >= 1.24 modules). */
export function goParseQuery(raw: string): GoQuery {
  const values = new Map<Bytes, Bytes[]>();
  // Clients percent-encode; anything past latin1 in the target is taken as its UTF-8 bytes.
  const query = /[^\x00-\xff]/.test(raw) ? Buffer.from(raw, 'utf8').toString('latin1') : raw;
  if (query.split('&').length > 10_000) return { values, error: 'number of URL query parameters exceeded limit' };
  let error: Bytes | undefined;
  for (const part of query.split('&')) {
    if (part.includes(';')) {
      error = 'invalid semicolon separator in query';
      continue;
    }
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = goUnescape(eq < 0 ? part : part.slice(0, eq));
    if (typeof k !== 'string') {
      error ??= k.error;
      continue;
    }
    const v = goUnescape(eq < 0 ? '' : part.slice(eq + 1));
    if (typeof v !== 'string') {
      error ??= v.error;
      continue;
    }
    const list = values.get(k);
    if (list) list.push(v);
    else values.set(k, [v]);
  }
  return error === undefined ? { values } : { values, error };
}

function goUnescape(s: Bytes): Bytes | { error: Bytes } {
  if (!s.includes('%') && !s.includes('+')) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '%') {
      if (i + 2 >= s.length || !isHex(s[i + 1]!) || !isHex(s[i + 2]!)) {
        return { error: `invalid URL escape ${goQuote(latin1(s.slice(i, i + 3)))}` };
      }
      out += String.fromCharCode(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out += c === '+' ? ' ' : c;
  }
  return out;
}

const isHex = (c: string): boolean => /^[0-9a-fA-F]$/.test(c);
const first = (q: GoQuery, key: string): Bytes => q.values.get(key)?.[0] ?? '';

// atmos.ParseNSID (v0.2.14 nsid.go), the collection check of filter.go.
export function isValidNsid(raw: string): boolean {
  if (raw.length === 0 || raw.length > 317) return false;
  const segs = raw.split('.');
  if (segs.length < 3) return false;
  const name = segs.pop()!;
  for (const [i, label] of segs.entries()) {
    if (label.length === 0 || label.length > 63) return false;
    if (!/^[a-zA-Z0-9]$/.test(label[0]!) || !/^[a-zA-Z0-9]$/.test(label[label.length - 1]!)) return false;
    if (!/^[a-zA-Z0-9-]*$/.test(label)) return false;
    if (i === 0 && !/^[a-zA-Z]/.test(label)) return false;
  }
  return /^[a-zA-Z][a-zA-Z0-9]{0,62}$/.test(name);
}

// atmos.ParseDID (v0.2.14 did.go), the wantedDids check of filter.go.
export function isValidDid(raw: string): boolean {
  if (raw.length === 0 || raw.length > 2048) return false;
  return /^did:[a-z]+:[a-zA-Z0-9._:%-]+$/.test(raw) && !/[:%]$/.test(raw);
}

// ---- the subscriber filter (filter.go) ----

interface Filter {
  dids: Set<string> | null;
  fullPaths: Set<string> | null;
  prefixes: string[];
  maxBytes: number;
}

const INVALID_OPTIONS = 'subscribe: invalid options';

function parseCollections(values: readonly string[] | undefined): { fullPaths: Set<string>; prefixes: string[] } | null | string {
  if (!values || values.length === 0) return null;
  if (values.length > MAX_WANTED_COLLECTIONS * 100) {
    return `${INVALID_OPTIONS}: too many wanted collections: ${values.length}`;
  }
  const fullPaths = new Set<string>();
  const prefixes: string[] = [];
  const tooMany = `${INVALID_OPTIONS}: too many wanted collections: > ${MAX_WANTED_COLLECTIONS}`;
  for (const raw of values) {
    if (raw.endsWith('.*')) {
      // Only the trailing "*" goes: "app.bsky.*" matches "app.bsky.feed.post". The head is not checked.
      const head = raw.slice(0, -1);
      if (prefixes.includes(head)) continue;
      prefixes.push(head);
      if (fullPaths.size + prefixes.length > MAX_WANTED_COLLECTIONS) return tooMany;
      continue;
    }
    if (!isValidNsid(raw)) return `${INVALID_OPTIONS}: invalid collection: ${raw}`;
    fullPaths.add(raw);
    if (fullPaths.size + prefixes.length > MAX_WANTED_COLLECTIONS) return tooMany;
  }
  return { fullPaths, prefixes };
}

function parseDids(values: readonly string[] | undefined): Set<string> | null | string {
  if (!values || values.length === 0) return null;
  if (values.length > MAX_WANTED_DIDS * 100) return `${INVALID_OPTIONS}: too many wanted DIDs: ${values.length}`;
  const out = new Set<string>();
  for (const raw of values) {
    if (!isValidDid(raw)) return `${INVALID_OPTIONS}: invalid DID: ${raw}`;
    out.add(raw);
  }
  if (out.size > MAX_WANTED_DIDS) return `${INVALID_OPTIONS}: too many wanted DIDs: ${out.size} > ${MAX_WANTED_DIDS}`;
  return out;
}

function buildFilter(
  collections: readonly string[] | undefined,
  dids: readonly string[] | undefined,
  maxBytes: number,
  fromQuery: boolean,
): Filter | string {
  const c = parseCollections(collections);
  if (typeof c === 'string') return c;
  const d = parseDids(dids);
  if (typeof d === 'string') return d;
  // Query prefixes are bytes; collections on events are JS strings.
  const prefixes = c ? c.prefixes.map((p) => (fromQuery ? latin1(p).toString('utf8') : p)) : [];
  return { dids: d, fullPaths: c ? c.fullPaths : null, prefixes, maxBytes };
}

// strconv.Atoi, then v1's "empty, malformed, negative or too big means no cap".
function parseMaxBytesQuery(s: string): number {
  if (!/^[+-]?[0-9]+$/.test(s)) return 0;
  const n = BigInt(s);
  if (n < 0n || n > 0xffffffffn) return 0;
  return Number(n);
}

interface OptionsUpdateResult {
  /** the close the server sends, or undefined when the filter is valid */
  close?: { code: number; reason: string };
  filter?: Filter;
  /** an unknown type: logged and ignored by the server */
  ignored?: boolean;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

// Go's encoding/json field lookup: the name matched case-insensitively, the last one written wins.
function goField(obj: Record<string, unknown>, name: string): { present: boolean; value: unknown; key?: string } {
  let hit: { present: boolean; value: unknown; key?: string } = { present: false, value: undefined };
  for (const key of Object.keys(obj)) {
    if (key.toLowerCase() === name.toLowerCase()) hit = { present: true, value: obj[key], key };
  }
  return hit;
}

// A []string field: null or absent is nil, a null element is "" (Go leaves the zero value).
function goStrings(v: unknown): string[] | undefined | false {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) return false;
  const out: string[] = [];
  for (const el of v) {
    if (el === null) out.push('');
    else if (typeof el === 'string') out.push(el);
    else return false;
  }
  return out;
}

/** handler.go runReader: what one text message from the client does. */
export function parseClientMessage(text: string): OptionsUpdateResult {
  const BAD_ENVELOPE = { code: 1007, reason: 'bad SubscriberSourcedMessage envelope' };
  const BAD_PAYLOAD = { code: 1007, reason: 'bad options_update payload' };
  // Integer literals as written: Go's int refuses 1.0 and 1e3, JSON.parse would not.
  const literals = new WeakMap<object, Map<string, string>>();
  let msg: unknown;
  try {
    msg = JSON.parse(text, function (this: unknown, key, value, ctx?: { source?: string }) {
      if (typeof value === 'number' && ctx?.source !== undefined && isObject(this)) {
        let m = literals.get(this);
        if (!m) literals.set(this, (m = new Map()));
        m.set(key, ctx.source);
      }
      return value;
    });
  } catch {
    return { close: BAD_ENVELOPE };
  }
  if (msg === null) return { ignored: true };
  if (!isObject(msg)) return { close: BAD_ENVELOPE };
  const type = goField(msg, 'type');
  if (type.present && type.value !== null && typeof type.value !== 'string') return { close: BAD_ENVELOPE };
  if (type.value !== 'options_update') return { ignored: true };
  const payload = goField(msg, 'payload');
  if (!payload.present) return { close: BAD_PAYLOAD };
  if (payload.value === null) return validated(undefined, undefined, 0);
  if (!isObject(payload.value)) return { close: BAD_PAYLOAD };
  const p = payload.value;
  const collections = goStrings(goField(p, 'wantedCollections').value);
  const dids = goStrings(goField(p, 'wantedDids').value);
  if (collections === false || dids === false) return { close: BAD_PAYLOAD };
  let maxBytes = 0;
  const mm = goField(p, 'maxMessageSizeBytes');
  if (mm.present && mm.value !== null) {
    if (typeof mm.value !== 'number') return { close: BAD_PAYLOAD };
    const src = literals.get(p)?.get(mm.key!) ?? String(mm.value);
    if (!/^-?(0|[1-9][0-9]*)$/.test(src)) return { close: BAD_PAYLOAD };
    const n = BigInt(src);
    if (n > 0x7fffffffffffffffn || n < -0x8000000000000000n) return { close: BAD_PAYLOAD };
    // clampMaxMsgSize: negative is no cap, anything else is uint32(n) (it wraps)
    maxBytes = n < 0n ? 0 : Number(BigInt.asUintN(32, n));
  }
  return validated(collections, dids, maxBytes);

  function validated(c: string[] | undefined, d: string[] | undefined, max: number): OptionsUpdateResult {
    const f = buildFilter(c, d, max, false);
    if (typeof f === 'string') return { close: { code: 1008, reason: truncateCloseReason(f) } };
    return { filter: f };
  }
}

/** handler.go truncateCloseReason: at most 123 bytes, cut on a rune boundary, "..." appended. */
export function truncateCloseReason(s: string): string {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= 123) return s;
  let cut = 120;
  while (cut > 0 && (b[cut]! & 0xc0) === 0x80) cut--;
  return `${b.subarray(0, cut).toString('utf8')}...`;
}

function wants(f: Filter, kind: number, did: string, collection: string): boolean {
  if (f.dids && !f.dids.has(did)) return false;
  if (!f.fullPaths) return true;
  // identity and account carry no collection and always pass; so does a commit without one
  if (kind !== KIND_COMMIT || collection === '') return true;
  if (f.fullPaths.has(collection)) return true;
  for (const p of f.prefixes) if (collection.startsWith(p)) return true;
  return false;
}

// ---- the v1 JSON encoding (encoder.go + atmos streaming.JetstreamEvent) ----

// encoding/json's HTML-safe escaping, which the server's output has throughout (\u0026 etc.).
const GO_ESCAPES: Record<string, string> = { '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029' };
const goEscape = (json: string): string => json.replace(/[<>&\u2028\u2029]/g, (c) => GO_ESCAPES[c]!);

// Records go through a Go map: keys sorted by their UTF-8 bytes, at every depth. Records that
// already are (the corpus, anything that came from a server) take the native stringify.
function recordJson(v: unknown): string {
  return sortedDeep(v) ? (JSON.stringify(v) ?? 'null') : sortedJson(v);
}

function sortedDeep(v: unknown): boolean {
  if (Array.isArray(v)) return v.every(sortedDeep);
  if (!isObject(v)) return v !== undefined;
  let prev: string | undefined;
  for (const k in v) {
    const x = v[k];
    if (x === undefined || (prev !== undefined && byUtf8(prev, k) >= 0) || !sortedDeep(x)) return false;
    prev = k;
  }
  return true;
}

function sortedJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(sortedJson).join(',')}]`;
  if (isObject(v)) {
    const keys = Object.keys(v).filter((k) => v[k] !== undefined);
    keys.sort(byUtf8);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${sortedJson(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

const SURROGATE_OR_ABOVE = /[\ud800-\uffff]/;
function byUtf8(a: string, b: string): number {
  // UTF-16 order is byte order except around surrogates; compare bytes only when they are involved
  if (SURROGATE_OR_ABOVE.test(a) || SURROGATE_OR_ABOVE.test(b)) return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return a < b ? -1 : a > b ? 1 : 0;
}

const q = (s: unknown): string => JSON.stringify(typeof s === 'string' ? s : String(s ?? ''));

/** The exact frame the server sends for e (seq only rendered with keepCursor), or '' for a skipped kind. */
export function encodeEvent(e: JetstreamEvent, seq: number, timeUs: number, keepCursor: boolean): string {
  const head = `{"did":${q(e.did)},"time_us":${timeUs}${keepCursor ? `,"cursor":${seq}` : ''},"kind":`;
  if (e.kind === 'commit') {
    const c = e.commit!;
    let body = `{"rev":${q(c.rev)},"operation":${q(c.operation)},"collection":${q(c.collection)},"rkey":${q(c.rkey)}`;
    if (c.operation !== 'delete') body += `,"record":${recordJson(c.record ?? null)},"cid":${q(c.cid)}`;
    return goEscape(`${head}"commit","commit":${body}}}`);
  }
  if (e.kind === 'account') {
    const a = e.account!;
    const type = a.$type ? `"$type":${q(a.$type)},` : '';
    const status = a.status !== undefined && a.status !== null ? `,"status":${q(a.status)}` : '';
    return goEscape(`${head}"account","account":{${type}"active":${a.active === true},"did":${q(a.did)},"seq":${Math.trunc(a.seq)}${status},"time":${q(a.time)}}}`);
  }
  if (e.kind === 'identity') {
    const i = e.identity!;
    const type = i.$type ? `"$type":${q(i.$type)},` : '';
    const handle = i.handle !== undefined && i.handle !== null ? `,"handle":${q(i.handle)}` : '';
    return goEscape(`${head}"identity","identity":{${type}"did":${q(i.did)}${handle},"seq":${Math.trunc(i.seq)},"time":${q(i.time)}}}`);
  }
  return '';
}

function checkEvent(e: JetstreamEvent): void {
  if (typeof e?.did !== 'string') throw new TypeError('event needs a did');
  const need = e.kind === 'commit' ? e.commit : e.kind === 'account' ? e.account : e.kind === 'identity' ? e.identity : true;
  if (e.kind !== 'sync' && !need) throw new TypeError(`event of kind ${String(e.kind)} needs its ${String(e.kind)} object`);
}

// ---- compress=true: one zstd frame per event, legacy dictionary, content checksum on ----

let dictionary: Buffer | undefined;
function legacyDictionary(): Buffer {
  dictionary ??= readFileSync(DICTIONARY_FILE);
  return dictionary;
}

// zstdCompressSync digests the 112 KiB dictionary on every call (~0.2 ms); one reused
// context ending a frame per event costs ~6 µs. The handle is Node's internal: fall back if it moves.
let zstdContext: { write: (b: Buffer) => Buffer } | null | undefined;
export function compressFrame(json: Buffer): Buffer {
  if (zstdContext === undefined) zstdContext = makeZstdContext();
  if (zstdContext) return zstdContext.write(json);
  return zlib.zstdCompressSync(json, zstdOptions());
}

function zstdOptions(): zlib.ZstdOptions {
  return { dictionary: legacyDictionary(), params: { [zlib.constants.ZSTD_c_checksumFlag]: 1 } };
}

function makeZstdContext(): { write: (b: Buffer) => Buffer } | null {
  const engine = zlib.createZstdCompress(zstdOptions()) as unknown as {
    _handle?: { writeSync(flush: number, inp: Buffer, inOff: number, inLen: number, out: Buffer, outOff: number, outLen: number): void };
    _writeState?: Uint32Array;
  };
  const handle = engine._handle;
  const state = engine._writeState;
  if (!handle || !state || typeof handle.writeSync !== 'function') return null;
  let out = Buffer.allocUnsafe(1 << 16);
  const ctx = {
    write(b: Buffer): Buffer {
      const bound = b.length + (b.length >> 7) + 512;
      if (out.length < bound) out = Buffer.allocUnsafe(bound * 2);
      handle.writeSync(zlib.constants.ZSTD_e_end, b, 0, b.length, out, 0, out.length);
      if (state[1] !== 0 || state[0] === 0) throw new Error('zstd frame did not fit its buffer');
      return Buffer.from(out.subarray(0, out.length - state[0]!));
    },
  };
  // Prove the shortcut round-trips before trusting it.
  const probe = Buffer.from('{"did":"did:plc:probe","time_us":1,"kind":"commit"}');
  try {
    const back = zlib.zstdDecompressSync(ctx.write(probe), { dictionary: legacyDictionary() });
    return back.equals(probe) ? ctx : null;
  } catch {
    return null;
  }
}

/** Decompress one compress=true frame (what a client does with the same dictionary). */
export function decompressFrame(frame: Uint8Array): string {
  return zlib.zstdDecompressSync(frame, { dictionary: legacyDictionary() }).toString('utf8');
}

// ---- storage: one serialization per event, shared by every subscriber ----

class Store {
  base = 1; // seq of index 0
  json: Buffer[] = [];
  zstd: (Buffer | undefined)[] = [];
  timeUs: number[] = [];
  did: string[] = [];
  collection: string[] = [];
  kind: number[] = [];
  monotonic = true;

  get nextSeq(): number {
    return this.base + this.json.length;
  }

  add(body: string, e: JetstreamEvent, timeUs: number): void {
    const last = this.timeUs[this.timeUs.length - 1];
    if (last !== undefined && timeUs < last) this.monotonic = false;
    this.json.push(Buffer.from(body, 'utf8'));
    this.zstd.push(undefined);
    this.timeUs.push(timeUs);
    this.did.push(e.did);
    this.collection.push(e.kind === 'commit' ? (e.commit?.collection ?? '') : '');
    this.kind.push(e.kind === 'commit' ? KIND_COMMIT : e.kind === 'sync' ? KIND_SKIPPED : KIND_OTHER);
  }

  trim(retain: number): void {
    // Amortized: drop in bulk once twice the window has piled up.
    if (this.json.length <= retain * 2) return;
    const drop = this.json.length - retain;
    for (const col of [this.json, this.zstd, this.timeUs, this.did, this.collection, this.kind] as unknown[][]) col.splice(0, drop);
    this.base += drop;
  }

  compressed(i: number): Buffer {
    let z = this.zstd[i];
    if (!z) {
      z = compressFrame(this.json[i]!);
      this.zstd[i] = z;
    }
    return z;
  }

  /** First seq whose time_us >= t (nextSeq when none). */
  seqAtTime(t: number, from = 0, to = this.timeUs.length): number {
    if (this.monotonic) {
      let lo = from;
      let hi = to;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.timeUs[mid]! >= t) hi = mid;
        else lo = mid + 1;
      }
      return this.base + lo;
    }
    for (let i = from; i < to; i++) if (this.timeUs[i]! >= t) return this.base + i;
    return this.base + to;
  }
}

// ---- the cursor (cursor.go ResolveCursor) ----

type CursorPlan = { live: true } | { live: false; startSeq: number };

function resolveCursor(raw: Bytes, store: Store, nowUs: number, segmentEvents: number | undefined): CursorPlan | string {
  if (raw === '') return { live: true };
  if (!/^[+-]?[0-9]+$/.test(raw) || BigInt(raw) > 0x7fffffffffffffffn || BigInt(raw) < -0x8000000000000000n) {
    return `subscribe: invalid cursor: ${goQuote(latin1(raw))}`;
  }
  const n = BigInt(raw);
  if (n < 0n) return `subscribe: invalid cursor: negative value ${n}`;
  if (n < BigInt(CURSOR_SEQ_MAX)) {
    // A seq: at or past the next one to be written is live; 0 means "from the first".
    const seq = Number(n);
    if (seq >= store.nextSeq) return { live: true };
    return { live: false, startSeq: Math.max(seq, 1, store.base) };
  }
  if (n > BigInt(Math.floor(nowUs))) return { live: true };
  const t = Number(n);
  let start: number;
  if (segmentEvents === undefined) {
    start = store.seqAtTime(t);
  } else {
    const count = store.timeUs.length;
    const sealed = Number.isFinite(segmentEvents) ? Math.floor(count / segmentEvents) : 0;
    if (sealed === 0) {
      start = store.base; // no sealed segment: the replay starts at the first retained event
    } else {
      let seg = -1;
      for (let s = 0; s < sealed; s++) {
        let maxT = -Infinity;
        for (let i = s * segmentEvents; i < (s + 1) * segmentEvents; i++) maxT = Math.max(maxT, store.timeUs[i]!);
        if (maxT >= t) {
          seg = s;
          break;
        }
      }
      if (seg < 0) start = store.base + sealed * segmentEvents; // newer than every sealed segment: the active one's start
      else if (t <= store.timeUs[0]!) start = store.base;
      else start = store.seqAtTime(t, seg * segmentEvents, (seg + 1) * segmentEvents);
    }
  }
  return { live: false, startSeq: Math.max(start, 1, store.base) };
}

// ---- connections ----

interface Conn {
  ws: WebSocket;
  socket: Socket;
  filter: Filter;
  compress: boolean;
  deflate: boolean;
  started: boolean;
  plan: CursorPlan;
  pos: number;
  closing: boolean;
  scheduled: boolean;
  waitingDrain: boolean;
  drainTimer?: NodeJS.Timeout;
  pingTimer?: NodeJS.Timeout;
  pongTimer?: NodeJS.Timeout;
  pingPayload?: string;
  pingCounter: number;
  slow: { inStreak: boolean; start: number; startPos: number };
}

export async function startJetstreamServer(opts: JetstreamServerOptions = {}): Promise<JetstreamServer> {
  const host = opts.host ?? '127.0.0.1';
  const keepCursor = opts.keepCursor ?? false;
  const nowUs = opts.nowUs ?? (() => Date.now() * 1000);
  const pingIntervalMs = opts.pingIntervalMs ?? 30_000;
  const pongTimeoutMs = opts.pongTimeoutMs ?? 5_000;
  const writeTimeoutMs = opts.writeTimeoutMs ?? 5_000;
  const highWaterMark = opts.highWaterMark ?? 4 << 20;
  const slowLag = opts.slowLagThreshold ?? 100_000;
  const slowWindowMs = opts.slowWindowMs ?? 60_000;
  const slowMinRate = opts.slowMinRate ?? 5;
  const readBatch = 1024; // config.go DefaultReadBatch
  const store = new Store();
  const conns = new Set<Conn>();
  const requests: URL[] = [];
  const handshakes: Handshake[] = [];
  let accepted = 0;
  let stalled = false;
  let stallTimer: NodeJS.Timeout | undefined;
  let closed = false;

  const wsOptions = { noServer: true, maxPayload: 64 << 20, skipUTF8Validation: true, autoPong: false } as const;
  const plainWss = new WebSocketServer({ ...wsOptions, perMessageDeflate: false });
  // coder/websocket CompressionContextTakeover: context kept both ways, messages under 128 bytes sent plain
  const deflateWss = new WebSocketServer({
    ...wsOptions,
    perMessageDeflate: { threshold: 128, serverNoContextTakeover: false, clientNoContextTakeover: false },
  });

  const pushAll = (events: Iterable<JetstreamEvent>): StoredEvent[] => {
    const out: StoredEvent[] = [];
    for (const e of events) {
      checkEvent(e);
      const last = store.timeUs[store.timeUs.length - 1] ?? 0;
      const timeUs = e.time_us ?? Math.max(Math.floor(nowUs()), last + 1);
      const seq = store.nextSeq;
      const body = encodeEvent(e, seq, timeUs, keepCursor);
      store.add(body, e, timeUs);
      out.push({ seq, time_us: timeUs, json: body });
    }
    if (opts.retain !== undefined) store.trim(opts.retain);
    for (const c of conns) schedule(c);
    return out;
  };

  const push = (...events: JetstreamEvent[]): StoredEvent[] => pushAll(events);
  if (opts.events) pushAll(opts.events);

  function schedule(c: Conn): void {
    if (c.scheduled || !c.started || c.closing || c.waitingDrain) return;
    c.scheduled = true;
    setImmediate(() => {
      c.scheduled = false;
      pump(c);
    });
  }

  function drop(c: Conn): void {
    c.closing = true;
    c.ws.terminate();
  }

  function pump(c: Conn): void {
    if (!c.started || c.closing || c.waitingDrain || stalled || c.pingPayload !== undefined) return;
    if (c.pos < store.base) {
      // Retention dropped events this reader had not read: end it rather than skip them silently.
      drop(c);
      return;
    }
    const end = store.nextSeq;
    if (c.pos >= end) return; // at the tip: push() wakes it
    let n = 0;
    c.socket.cork();
    try {
      while (c.pos < end && n < readBatch) {
        if (c.ws.bufferedAmount >= highWaterMark) {
          waitDrain(c);
          break;
        }
        const i = c.pos - store.base;
        c.pos++;
        n++;
        const kind = store.kind[i]!;
        if (kind === KIND_SKIPPED) continue;
        if (!wants(c.filter, kind, store.did[i]!, store.collection[i]!)) continue;
        const json = store.json[i]!;
        // The cap is on the uncompressed JSON, for compress=true clients too.
        if (c.filter.maxBytes > 0 && json.length > c.filter.maxBytes) continue;
        if (c.compress) c.ws.send(store.compressed(i), { binary: true, compress: false });
        else c.ws.send(json, { binary: false, compress: c.deflate });
      }
    } finally {
      c.socket.uncork();
    }
    if (observeSlow(c, end)) {
      drop(c);
      return;
    }
    if (c.pos < store.nextSeq && !c.waitingDrain) schedule(c);
  }

  function observeSlow(c: Conn, tip: number): boolean {
    const lag = tip - c.pos;
    const now = Date.now();
    if (lag <= slowLag) {
      c.slow.inStreak = false;
      return false;
    }
    if (!c.slow.inStreak) {
      c.slow = { inStreak: true, start: now, startPos: c.pos };
      return false;
    }
    const elapsed = (now - c.slow.start) / 1000;
    if (elapsed < slowWindowMs / 1000) return false;
    if ((c.pos - c.slow.startPos) / elapsed >= slowMinRate) {
      c.slow = { inStreak: true, start: now, startPos: c.pos };
      return false;
    }
    return true;
  }

  function waitDrain(c: Conn): void {
    c.waitingDrain = true;
    const onDrain = (): void => {
      clearTimeout(c.drainTimer);
      c.waitingDrain = false;
      schedule(c);
    };
    c.socket.once('drain', onDrain);
    // A frame that cannot be written within frameWriteTimeout ends the handler: no close frame.
    c.drainTimer = setTimeout(() => {
      c.socket.off('drain', onDrain);
      if (!stalled) drop(c);
      else c.waitingDrain = false;
    }, writeTimeoutMs);
  }

  function startStreaming(c: Conn): void {
    if (c.started) return;
    c.started = true;
    c.pos = c.plan.live ? store.nextSeq : c.plan.startSeq;
    c.pingTimer = setInterval(() => ping(c), pingIntervalMs);
    c.pingTimer.unref();
    schedule(c);
  }

  function ping(c: Conn): void {
    if (c.closing || stalled || c.pingPayload !== undefined) return;
    // coder/websocket pings with a counter and waits for that pong; the event loop waits with it.
    c.pingCounter++;
    c.pingPayload = String(c.pingCounter);
    c.ws.ping(c.pingPayload);
    c.pongTimer = setTimeout(() => drop(c), pongTimeoutMs);
  }

  function onConnection(ws: WebSocket, plan: CursorPlan, filter: Filter, compress: boolean, requireHello: boolean): void {
    accepted++;
    const c: Conn = {
      ws,
      socket: (ws as unknown as { _socket: Socket })._socket,
      filter,
      compress,
      deflate: ws.extensions !== '',
      started: false,
      plan,
      pos: 0,
      closing: false,
      scheduled: false,
      waitingDrain: false,
      pingCounter: 0,
      slow: { inStreak: false, start: 0, startPos: 0 },
    };
    conns.add(c);
    ws.on('ping', (data) => {
      if (!stalled && !c.closing) ws.pong(data);
    });
    ws.on('pong', (data) => {
      if (c.pingPayload !== undefined && data.toString('latin1') === c.pingPayload) {
        clearTimeout(c.pongTimer);
        c.pingPayload = undefined;
        schedule(c);
      }
    });
    ws.on('message', (data, isBinary) => {
      if (c.closing) return;
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (buf.length > MAX_SUBSCRIBER_MESSAGE_BYTES) {
        close(c, 1009, `read limited at ${MAX_SUBSCRIBER_MESSAGE_BYTES + 1} bytes`);
        return;
      }
      if (isBinary) return;
      const res = parseClientMessage(buf.toString('utf8'));
      if (res.close) {
        close(c, res.close.code, res.close.reason);
        return;
      }
      if (res.filter) {
        c.filter = res.filter;
        startStreaming(c);
      }
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      c.closing = true;
      clearInterval(c.pingTimer);
      clearTimeout(c.pongTimer);
      clearTimeout(c.drainTimer);
      conns.delete(c);
    });
    if (!requireHello) startStreaming(c);
  }

  function close(c: Conn, code: number, reason: string): void {
    c.closing = true;
    c.ws.close(code, reason);
  }

  // Go's http.Error: text/plain, nosniff, the message and a newline.
  function refuse(to: Duplex | ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
    const bytes = latin1(`${body}\n`);
    const headers: Record<string, string> = {
      ...extra,
      'Content-Type': 'text/plain; charset=utf-8',
      'X-Content-Type-Options': 'nosniff',
      Date: new Date().toUTCString(),
      'Content-Length': String(bytes.length),
    };
    if (to instanceof ServerResponse) {
      to.writeHead(status, GO_STATUS_TEXT[status] ?? '', headers);
      to.end(bytes);
      return;
    }
    const head = [`HTTP/1.1 ${status} ${GO_STATUS_TEXT[status] ?? ''}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    to.end(Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`), bytes]));
  }

  // handler.go serve, then coder/websocket Accept, in their order.
  function handle(req: IncomingMessage, to: Duplex | ServerResponse, head: Buffer | undefined): void {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? `${host}:${port}`}`);
    requests.push(url);
    const shake: Handshake = { url, headers: req.headers, status: 0 };
    handshakes.push(shake);
    const answer = (status: number, body: string, extra?: Record<string, string>): void => {
      shake.status = status;
      shake.body = `${latin1(body).toString('utf8')}\n`;
      refuse(to, status, body, extra);
    };
    const rawTarget = req.url ?? '/';
    const qi = rawTarget.indexOf('?');
    const path = qi < 0 ? rawTarget : rawTarget.slice(0, qi);
    if (path !== '/subscribe') return answer(404, '404 page not found');
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(405, 'Method Not Allowed', { Allow: 'GET, HEAD' });

    const query = goParseQuery(qi < 0 ? '' : rawTarget.slice(qi + 1));
    if (query.error !== undefined) return answer(400, `${INVALID_OPTIONS}: ${query.error}`);
    const socketEncoding = String(req.headers['socket-encoding'] ?? '');
    const extensions = String(req.headers['sec-websocket-extensions'] ?? '');
    const compress = first(query, 'compress') === 'true' || socketEncoding.includes('zstd');
    if (compress && extensions.includes('permessage-deflate')) {
      return answer(
        400,
        'choose one compression scheme: custom zstd (compress=true / Socket-Encoding: zstd) or RFC 7692 permessage-deflate, not both',
      );
    }
    const filter = buildFilter(
      query.values.get('wantedCollections'),
      query.values.get('wantedDids'),
      parseMaxBytesQuery(first(query, 'maxMessageSizeBytes')),
      true,
    );
    if (typeof filter === 'string') return answer(400, filter);
    const requireHello = first(query, 'requireHello') === 'true';
    const plan = resolveCursor(first(query, 'cursor'), store, nowUs(), opts.segmentEvents);
    if (typeof plan === 'string') return answer(400, plan);

    // coder/websocket verifyClientRequest
    const tokens = (name: string): string[] =>
      String(req.headers[name] ?? '')
        .split(',')
        .map((t) => t.trim().toLowerCase());
    if (req.httpVersionMajor < 1 || (req.httpVersionMajor === 1 && req.httpVersionMinor < 1)) {
      return answer(426, `WebSocket protocol violation: handshake request must be at least HTTP/1.1: "HTTP/${req.httpVersion}"`);
    }
    const upgradeHeaders = { Connection: 'Upgrade', Upgrade: 'websocket' };
    if (!tokens('connection').includes('upgrade')) {
      return answer(426, `WebSocket protocol violation: Connection header ${goQuote(Buffer.from(String(req.headers.connection ?? '')))} does not contain Upgrade`, upgradeHeaders);
    }
    if (!tokens('upgrade').includes('websocket')) {
      return answer(426, `WebSocket protocol violation: Upgrade header ${goQuote(Buffer.from(String(req.headers.upgrade ?? '')))} does not contain websocket`, upgradeHeaders);
    }
    if (req.method !== 'GET') return answer(405, `WebSocket protocol violation: handshake request method is not GET but "${req.method}"`);
    const version = String(req.headers['sec-websocket-version'] ?? '');
    if (version !== '13') {
      return answer(400, `unsupported WebSocket protocol version (only 13 is supported): ${goQuote(Buffer.from(version))}`, { 'Sec-WebSocket-Version': '13' });
    }
    if (!req.headers['sec-websocket-key']) return answer(400, 'WebSocket protocol violation: missing Sec-WebSocket-Key');
    const deflate = !compress && (opts.perMessageDeflate ?? true);
    if (deflate) {
      const offer = tokens('sec-websocket-extensions').find((t) => t.split(';')[0]!.trim() === 'permessage-deflate');
      for (const p of offer?.split(';').slice(1).map((s) => s.trim()) ?? []) {
        if (p === 'client_no_context_takeover' || p === 'server_no_context_takeover' || p.startsWith('client_max_window_bits')) continue;
        return answer(400, `unsupported permessage-deflate parameter: ${goQuote(Buffer.from(p))}`);
      }
    }
    if (!head || to instanceof ServerResponse) {
      // A plain GET that passed every check above still is not a websocket.
      return answer(426, 'WebSocket protocol violation: Connection header "" does not contain Upgrade', upgradeHeaders);
    }
    const wss = deflate ? deflateWss : plainWss;
    wss.handleUpgrade(req, to, head, (ws) => {
      shake.status = 101;
      if (closed) {
        ws.close(1001, 'server shutting down');
        return;
      }
      onConnection(ws, plan, filter, compress, requireHello);
    });
  }

  // A request without Upgrade meets the same checks; Accept then refuses it for the missing header.
  // Go reads up to DefaultMaxHeaderBytes (1 MiB) plus 4 KiB of request head: 10,000 DIDs fit.
  const server: Server = createServer({ maxHeaderSize: (1 << 20) + 4096 }, (req, res) => handle(req, res, undefined));
  server.on('upgrade', (req, socket, head) => handle(req, socket, head));
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // net/http's answers to a request it cannot parse
    const what = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${what}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${what}`);
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const httpUrl = `http://${host}:${port}`;

  const self: JetstreamServer = {
    url: `ws://${host}:${port}/subscribe`,
    httpUrl,
    port,
    requests,
    handshakes,
    get connections() {
      return accepted;
    },
    get openConnections() {
      return conns.size;
    },
    get nextSeq() {
      return store.nextSeq;
    },
    get firstSeq() {
      return store.base;
    },
    get lastTimeUs() {
      return store.timeUs[store.timeUs.length - 1] ?? 0;
    },
    stored(seq) {
      const i = seq - store.base;
      if (i < 0 || i >= store.json.length) return undefined;
      return { seq, time_us: store.timeUs[i]!, json: store.json[i]!.toString('utf8') };
    },
    push,
    dropConnections() {
      let n = 0;
      for (const c of [...conns]) {
        n++;
        drop(c);
      }
      return n;
    },
    async closeWith(code, reason = '') {
      const open = [...conns];
      for (const c of open) close(c, code, reason);
      await waitClosed(open, 2_000);
    },
    stall(ms) {
      stalled = true;
      clearTimeout(stallTimer);
      if (ms !== undefined) stallTimer = setTimeout(() => self.resume(), ms);
    },
    resume() {
      stalled = false;
      clearTimeout(stallTimer);
      for (const c of conns) {
        if (c.pingPayload !== undefined) {
          // the pong window restarts with sending
          clearTimeout(c.pongTimer);
          c.pongTimer = setTimeout(() => drop(c), pongTimeoutMs);
        }
        schedule(c);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(stallTimer);
      stalled = false;
      const open = [...conns];
      for (const c of open) close(c, 1001, 'server shutting down');
      await waitClosed(open, 1_000);
      for (const c of [...conns]) c.ws.terminate();
      plainWss.close();
      deflateWss.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
    [Symbol.asyncDispose]() {
      return self.close();
    },
  };

  async function waitClosed(list: Conn[], ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (list.some((c) => conns.has(c)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const c of list) if (conns.has(c)) c.ws.terminate();
  }

  return self;
}

// ---- the corpus ----

/**
 * The 152 events a real Jetstream (1ddfc3a64c5f) sent to `/subscribe?cursor=0` for the shared
 * relay capture, in the order it sent them, each with that server's `cursor` (1..152).
 */
export function loadCorpusEvents(): JetstreamEvent[] {
  const text = zlib.zstdDecompressSync(readFileSync(CORPUS_FILE)).toString('utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as JetstreamEvent);
}

/** The raw corpus lines (what the real server sent, byte for byte). */
export function loadCorpusLines(): string[] {
  return zlib
    .zstdDecompressSync(readFileSync(CORPUS_FILE))
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '');
}

const TID_ALPHABET = '234567abcdefghijklmnopqrstuvwxyz';

/** An atproto TID (13 base32-sortable characters) for a microsecond timestamp and clock id. */
export function tid(timeUs: number, clockId = 0): string {
  // 53 timestamp bits in the first 11 characters, the 10-bit clock id in the last 2
  let t = Math.floor(timeUs);
  let out = '';
  for (let i = 0; i < 11; i++) {
    out = TID_ALPHABET[t % 32]! + out;
    t = Math.floor(t / 32);
  }
  return out + TID_ALPHABET[(clockId >> 5) & 31]! + TID_ALPHABET[clockId & 31]!;
}

/**
 * n events cycling through base: the first round as given, later rounds with a fresh commit
 * rev and rkey (TIDs from a counter, so every commit key is new) and no time_us, so push()
 * stamps them like a server would. Identity/account copies get fresh relay seqs.
 */
export function* loopEvents(base: readonly JetstreamEvent[], n: number, startUs = Date.now() * 1000): Generator<JetstreamEvent> {
  let k = 0;
  for (let i = 0; i < n; i++) {
    const src = base[i % base.length]!;
    const round = Math.floor(i / base.length);
    if (round === 0) {
      yield src;
      continue;
    }
    k++;
    const { time_us: _t, cursor: _c, ...rest } = src;
    if (rest.commit) yield { ...rest, commit: { ...rest.commit, rev: tid(startUs + k, 1), rkey: tid(startUs + k, 2) } };
    else if (rest.identity) yield { ...rest, identity: { ...rest.identity, seq: rest.identity.seq + round * 1_000_000_000 } };
    else if (rest.account) yield { ...rest, account: { ...rest.account, seq: rest.account.seq + round * 1_000_000_000 } };
    else yield rest;
  }
}

// ---- by hand: node test/support/jetstream-server.ts --port 6008 ----

if (import.meta.main) {
  const args = process.argv.slice(2);
  const flag = (name: string): string | undefined => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  if (args.includes('--help')) {
    process.stdout.write(
      [
        'node test/support/jetstream-server.ts [--port N] [--events N] [--live RATE] [--keep-cursor] [--segment-events N]',
        '  serves the Jetstream fixture (152 events) on ws://127.0.0.1:PORT/subscribe',
        '  --events N      store N events (the fixture repeated, fresh rev/rkey and time_us)',
        '  --live RATE     then push RATE more events per second, forever',
        '  --keep-cursor   render the top-level "cursor" 1ddfc3a64c5f adds',
        '',
      ].join('\n'),
    );
    process.exit(0);
  }
  const base = loadCorpusEvents();
  const total = Number(flag('events') ?? base.length);
  const segments = flag('segment-events');
  const srv = await startJetstreamServer({
    port: Number(flag('port') ?? 6008),
    keepCursor: args.includes('--keep-cursor'),
    ...(segments !== undefined ? { segmentEvents: Number(segments) } : {}),
  });
  // One generator for the stored and the live events: every commit key stays new.
  const gen = loopEvents(base, Number.MAX_SAFE_INTEGER);
  for (let i = 0; i < total; i++) srv.push(gen.next().value as JetstreamEvent);
  process.stdout.write(`jetstream stand-in: ${srv.url} (${srv.nextSeq - 1} events, last time_us ${srv.lastTimeUs})\n`);
  const rate = Number(flag('live') ?? 0);
  if (rate > 0) {
    setInterval(() => {
      for (let i = 0; i < Math.max(1, Math.round(rate / 10)); i++) srv.push(gen.next().value as JetstreamEvent);
    }, 100);
  }
  const stop = (): void => void srv.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
