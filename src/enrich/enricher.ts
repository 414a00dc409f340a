import { Resolver } from 'node:dns/promises';

import type { Logger } from '../telemetry/logger.ts';
import { redactUrl } from '../telemetry/redact.ts';
import {
  HANDLE_INVALID,
  allowedTld,
  classifyDid,
  defaultDidWebUrl,
  defaultWellKnownUrl,
  isValidDid,
  parseAuditLog,
  parseDocument,
  parseRfc3339,
  type ParsedDocument,
} from './document.ts';
import { Fetcher, type Outcome } from './http.ts';
import { Gate, TokenBucket } from './limits.ts';
import { TtlLru } from './lru.ts';
import { cacheSizesFrom, count, requestDone, slot, type RequestKind, type RequestStatus } from './metrics.ts';

export interface EnricherOptions {
  plcHost: string;
  apiHost?: string;
  logger: Logger;
  userAgent?: string;
  requestTimeoutMs?: number;
  maxResponseBytes?: number;
  retries?: number;
  plcRateLimit?: number;
  apiRateLimit?: number;
  maxConcurrentLookups?: number;
  /**
   * DIDs waiting for a lookup slot, beyond which resolve() answers null at once
   * (default 10,000). At the network's rate, new DIDs arrive far faster than a
   * rate-limited PLC answers: without a bound the queue would grow for hours on
   * a cold start, holding memory for lookups whose events went out long ago.
   */
  maxQueuedLookups?: number;
  cacheEntries?: number;
  documentTtlMs?: number;
  auditTtlMs?: number;
  profileTtlMs?: number;
  negativeTtlMs?: number;
  allowPrivateAddresses?: boolean;
  resolveTxt?: (name: string) => Promise<string[][]>;
  wellKnownUrl?: (handle: string) => string;
  didWebUrl?: (host: string) => string;
  skipDnsSuffixes?: string[];
}

export interface EventMetadata {
  /** JSON text of the eventMetadata object up to and including `"accountAge":` */
  readonly head: string;
  /** ms since epoch of the first PLC audit-log entry's createdAt, or undefined (then accountAge is -1) */
  readonly createdAtMs: number | undefined;
  /** JSON text after the accountAge value, i.e. `,"profile":<json or null>}` */
  readonly tail: string;
  /** PDS endpoint URL from the document's #atproto_pds service ('' if none) */
  readonly pdsEndpoint: string;
  /** lowercased hostname of pdsEndpoint, '' if none or unparsable (the service filter matches this) */
  readonly pdsHostname: string;
}

/** accountAge as the Go version computes it: whole seconds since createdAt (truncated), -1 when unknown. */
export function metadataJson(meta: EventMetadata, nowMs: number): string {
  // `| 0` would wrap for ages past 68 years; Math.trunc of a negative fraction is -0, which prints as 0.
  const age = meta.createdAtMs === undefined ? -1 : Math.trunc((nowMs - meta.createdAtMs) / 1000);
  return meta.head + age + meta.tail;
}

/** The Go version's invalidHandleTTL: a handle that does not verify is tried again after this long. */
const INVALID_HANDLE_TTL_MS = 15 * 60_000;
/**
 * The Go version does not cache profiles of accounts with 10 or fewer followers or posts (new
 * accounts change fast and are what moderation looks at). Not caching at all would cost a
 * request per event of such an account, so they are cached briefly instead.
 */
const SMALL_ACCOUNT_PROFILE_TTL_MS = 60_000;
const WELL_KNOWN_MAX_BYTES = 2048;
const LOG_INTERVAL_MS = 10_000;

interface Part<V> {
  readonly value: V;
  readonly expiresAt: number;
}

type DocEntry = { readonly ok: true; readonly doc: ParsedDocument } | { readonly ok: false; readonly status: RequestStatus };

interface AuditEntry {
  /** undefined when the audit log could not be read */
  readonly createdAt: string | undefined;
  readonly status: RequestStatus;
}

interface HandleEntry {
  readonly declared: string;
  readonly handle: string;
  readonly status: RequestStatus;
}

interface ProfileEntry {
  /** JSON text, `null` when there is no profile to show */
  readonly json: string;
  readonly status: RequestStatus;
}

interface Memo {
  readonly meta: EventMetadata;
  /** Metric slots a warm hit counts (one per part, cached="true"). */
  readonly hits: readonly number[];
}

/** What purges tell a lookup under way. */
interface FlightState {
  /** purgeIdentity ran while this lookup was under way: what it learnt may predate the change. */
  identityStale: boolean;
  /** dropProfile ran while this lookup was under way. */
  profileStale: boolean;
}

interface Flight {
  readonly state: FlightState;
  readonly promise: Promise<EventMetadata | null>;
}

type TxtAnswer = { ok: true; records: string[][] } | { ok: false; notFound: boolean; message: string };

export class Enricher {
  readonly #log: Logger;
  readonly #plcHost: string;
  readonly #apiHost: string | undefined;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #documentTtlMs: number;
  readonly #auditTtlMs: number;
  readonly #profileTtlMs: number;
  readonly #negativeTtlMs: number;
  readonly #skipDnsSuffixes: readonly string[];
  readonly #wellKnownUrl: (handle: string) => string;
  readonly #didWebUrl: (host: string) => string;
  readonly #resolveTxt: (name: string) => Promise<string[][]>;
  readonly #resolver: Resolver | undefined;

  readonly #abort = new AbortController();
  readonly #fetcher: Fetcher;
  readonly #plcLimiter: TokenBucket;
  readonly #apiLimiter: TokenBucket;
  readonly #gate: Gate;
  readonly #unregisterMetrics: () => void;

  readonly #docs: TtlLru<string, DocEntry>;
  readonly #audits: TtlLru<string, AuditEntry>;
  readonly #handles: TtlLru<string, HandleEntry>;
  readonly #profiles: TtlLru<string, ProfileEntry>;
  readonly #memos: TtlLru<string, Memo>;
  readonly #flights = new Map<string, Flight>();
  #pending = 0;
  readonly #maxPending: number;
  #closed = false;
  readonly #logState = new Map<string, { at: number; suppressed: number }>();

  constructor(opts: EnricherOptions) {
    this.#log = opts.logger;
    this.#plcHost = opts.plcHost.replace(/\/+$/, '');
    const api = opts.apiHost?.replace(/\/+$/, '');
    this.#apiHost = api === '' ? undefined : api;
    this.#timeoutMs = positive('requestTimeoutMs', opts.requestTimeoutMs ?? 3000);
    this.#maxBytes = positive('maxResponseBytes', opts.maxResponseBytes ?? 1 << 20);
    const retries = opts.retries ?? 2;
    if (!Number.isInteger(retries) || retries < 0) throw new RangeError(`retries must be a non-negative integer, got ${retries}`);
    this.#documentTtlMs = positive('documentTtlMs', opts.documentTtlMs ?? 48 * 3600_000);
    this.#auditTtlMs = positive('auditTtlMs', opts.auditTtlMs ?? 3600_000);
    this.#profileTtlMs = positive('profileTtlMs', opts.profileTtlMs ?? 10 * 60_000);
    this.#negativeTtlMs = positive('negativeTtlMs', opts.negativeTtlMs ?? 30_000);
    this.#skipDnsSuffixes = opts.skipDnsSuffixes ?? ['.bsky.social', '.staging.bsky.dev'];
    this.#wellKnownUrl = opts.wellKnownUrl ?? defaultWellKnownUrl;
    this.#didWebUrl = opts.didWebUrl ?? defaultDidWebUrl;
    if (opts.resolveTxt !== undefined) {
      this.#resolveTxt = opts.resolveTxt;
    } else {
      const resolver = new Resolver({ timeout: this.#timeoutMs, tries: 1 });
      this.#resolver = resolver;
      this.#resolveTxt = (name) => resolver.resolveTxt(name);
    }

    this.#fetcher = new Fetcher({
      userAgent: opts.userAgent ?? 'atkafka',
      timeoutMs: this.#timeoutMs,
      retries,
      allowPrivateAddresses: opts.allowPrivateAddresses ?? false,
      signal: this.#abort.signal,
    });
    this.#plcLimiter = new TokenBucket(opts.plcRateLimit ?? 200);
    this.#apiLimiter = new TokenBucket(opts.apiRateLimit ?? 200);
    this.#gate = new Gate(opts.maxConcurrentLookups ?? 64);
    this.#maxPending = (opts.maxConcurrentLookups ?? 64) + (opts.maxQueuedLookups ?? 10_000);

    const entries = opts.cacheEntries ?? 100_000;
    this.#docs = new TtlLru(entries);
    this.#audits = new TtlLru(entries);
    this.#handles = new TtlLru(entries);
    this.#profiles = new TtlLru(entries);
    this.#memos = new TtlLru(entries);
    this.#unregisterMetrics = cacheSizesFrom(() => ({
      did_doc: this.#docs.size,
      audit_log: this.#audits.size,
      profile: this.#profiles.size,
      handle: this.#handles.size,
    }));
  }

  get pending(): number {
    return this.#pending;
  }

  cached(did: string): EventMetadata | null | undefined {
    const now = Date.now();
    const memo = this.#memos.get(did, now);
    if (memo !== undefined) {
      const hits = memo.hits;
      for (let i = 0; i < hits.length; i++) count(hits[i]!);
      return memo.meta;
    }
    const doc = this.#docs.get(did, now);
    if (doc !== undefined && !doc.ok) {
      count(slot(docKind(did), doc.status, true));
      return null;
    }
    return undefined;
  }

  resolve(did: string): Promise<EventMetadata | null> {
    if (this.#closed) return Promise.resolve(null);
    const known = this.cached(did);
    if (known !== undefined) return Promise.resolve(known);
    const existing = this.#flights.get(did);
    if (existing !== undefined) return existing.promise;
    if (this.#pending >= this.#maxPending) {
      // Not cached as a failure: the DID is fine, we are just behind.
      requestDone('did_doc', 'skipped', false);
      return Promise.resolve(null);
    }

    this.#pending++;
    const state: FlightState = { identityStale: false, profileStale: false };
    const promise = this.#run(did, state).then((meta) => {
      this.#pending--;
      if (this.#flights.get(did) === flight) this.#flights.delete(did);
      return meta;
    });
    const flight: Flight = { state, promise };
    this.#flights.set(did, flight);
    return promise;
  }

  purgeIdentity(did: string): void {
    this.#docs.delete(did);
    this.#handles.delete(did);
    this.#audits.delete(did);
    this.#memos.delete(did);
    const flight = this.#flights.get(did);
    if (flight !== undefined) {
      flight.state.identityStale = true;
      // The next resolve() starts afresh instead of joining a lookup that may have read the old identity.
      this.#flights.delete(did);
    }
  }

  dropProfile(did: string): void {
    this.#profiles.delete(did);
    this.#memos.delete(did);
    // A lookup under way keeps its callers (the AppView lags behind the op anyway) but its profile is not kept.
    const flight = this.#flights.get(did);
    if (flight !== undefined) flight.state.profileStale = true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    this.#gate.close();
    this.#plcLimiter.close();
    this.#apiLimiter.close();
    this.#fetcher.close();
    this.#resolver?.cancel();
    this.#unregisterMetrics();
    for (const cache of [this.#docs, this.#audits, this.#handles, this.#profiles, this.#memos]) cache.clear();
  }

  async #run(did: string, flight: FlightState): Promise<EventMetadata | null> {
    try {
      await this.#gate.enter();
    } catch {
      return null;
    }
    try {
      return await this.#lookup(did, flight);
    } catch (err) {
      this.#rateLimited('internal', 'error', { did, err: String(err) }, 'identity lookup failed unexpectedly');
      return null;
    } finally {
      this.#gate.leave();
    }
  }

  async #lookup(did: string, flight: FlightState): Promise<EventMetadata | null> {
    if (this.#closed) return null;
    const kind = classifyDid(did);
    if (kind.method === 'unsupported') {
      requestDone('did_doc', 'invalid', false);
      this.#keep(flight, () => this.#docs.set(did, { ok: false, status: 'invalid' }, this.#negativeTtlMs, Date.now()));
      this.#rateLimited('did_doc:unsupported', 'warn', { did, reason: kind.reason }, 'DID cannot be resolved');
      return null;
    }
    const plc = kind.method === 'plc';
    const docP = this.#document(did, plc ? this.#plcHost + '/' + did : this.#didWebUrl(kind.host), plc, flight);
    const auditP = plc ? this.#auditLog(did, flight) : undefined;
    const profileP = this.#apiHost !== undefined ? this.#profile(did, this.#apiHost, flight) : undefined;
    const handleP = docP.then((d) => (d.value.ok ? this.#handle(did, d.value.doc.declaredHandle, flight) : undefined));
    // One Promise.all over every part, so none is left without a handler if another one throws.
    const [doc, audit, profile, handle] = await Promise.all([docP, auditP, profileP, handleP]);
    if (!doc.value.ok || handle === undefined || this.#closed) return null;

    const hits = [slot(plc ? 'did_doc' : 'did_web', 'ok', true)];
    let expiresAt = Math.min(doc.expiresAt, handle.expiresAt);
    if (handle.value !== undefined) hits.push(slot('handle', handle.value.status, true));
    if (audit !== undefined) {
      hits.push(slot('audit_log', audit.value.status, true));
      expiresAt = Math.min(expiresAt, audit.expiresAt);
    }
    if (profile !== undefined) {
      hits.push(slot('profile', profile.value.status, true));
      expiresAt = Math.min(expiresAt, profile.expiresAt);
    }
    const meta = buildMetadata(doc.value.doc, handle.value?.handle ?? HANDLE_INVALID, audit?.value.createdAt, profile?.value.json ?? 'null');
    if (!flight.identityStale && !flight.profileStale) {
      const now = Date.now();
      if (expiresAt > now) this.#memos.set(did, { meta, hits }, expiresAt - now, now);
    }
    return meta;
  }

  /** Writes to a cache only what a lookup learnt that no purge or close has overtaken. */
  #keep(flight: FlightState, write: () => void, what: 'identity' | 'profile' = 'identity'): void {
    if (this.#closed || flight.identityStale || (what === 'profile' && flight.profileStale)) return;
    write();
  }

  async #document(did: string, url: string, plc: boolean, flight: FlightState): Promise<Part<DocEntry>> {
    const kind: RequestKind = plc ? 'did_doc' : 'did_web';
    const hit = this.#fromCache(this.#docs, did, (e) => slot(kind, e.ok ? 'ok' : e.status, true));
    if (hit !== undefined) return hit;

    const out = await this.#fetcher.get(url, { maxBytes: this.#maxBytes, guard: !plc, ...(plc ? { limiter: this.#plcLimiter } : {}) });
    let entry: DocEntry;
    let detail: string | undefined;
    if (out.ok && out.status === 200) {
      const parsed = parseDocument(did, out.body.toString('utf8'));
      entry = parsed.ok ? { ok: true, doc: parsed.value } : { ok: false, status: 'invalid' };
      if (!parsed.ok) detail = parsed.message;
    } else {
      const failure = failureOf(out);
      entry = { ok: false, status: failure.status };
      detail = failure.detail;
    }
    return this.#settle(flight, kind, this.#docs, did, entry, entry.ok ? this.#documentTtlMs : this.#negativeTtlMs, out, url, detail, 'DID document lookup failed');
  }

  async #auditLog(did: string, flight: FlightState): Promise<Part<AuditEntry>> {
    const hit = this.#fromCache(this.#audits, did, (e) => slot('audit_log', e.status, true));
    if (hit !== undefined) return hit;

    const url = `${this.#plcHost}/${did}/log/audit`;
    const out = await this.#fetcher.get(url, { maxBytes: this.#maxBytes, guard: false, limiter: this.#plcLimiter, allowTruncate: true });
    let entry: AuditEntry;
    let detail: string | undefined;
    if (out.ok && out.status === 200) {
      const parsed = parseAuditLog(out.body.toString('utf8'), out.truncated);
      entry = parsed.ok ? { createdAt: parsed.value, status: 'ok' } : { createdAt: undefined, status: 'invalid' };
      if (!parsed.ok) detail = parsed.message;
    } else {
      const failure = failureOf(out);
      entry = { createdAt: undefined, status: failure.status };
      detail = failure.detail;
    }
    return this.#settle(flight, 'audit_log', this.#audits, did, entry, entry.status === 'ok' ? this.#auditTtlMs : this.#negativeTtlMs, out, url, detail, 'PLC audit log lookup failed (accountAge -1)');
  }

  async #profile(did: string, apiHost: string, flight: FlightState): Promise<Part<ProfileEntry>> {
    const hit = this.#fromCache(this.#profiles, did, (e) => slot('profile', e.status, true));
    if (hit !== undefined) return hit;

    const url = `${apiHost}/xrpc/app.bsky.actor.getProfile?actor=${encodeURIComponent(did)}`;
    const out = await this.#fetcher.get(url, { maxBytes: this.#maxBytes, guard: false, limiter: this.#apiLimiter });
    let entry: ProfileEntry = { json: 'null', status: 'error' };
    let ttl = this.#negativeTtlMs;
    let detail: string | undefined;
    if (out.ok && out.status === 200) {
      let view: unknown;
      try {
        view = JSON.parse(out.body.toString('utf8'));
      } catch {
        view = undefined;
      }
      if (typeof view === 'object' && view !== null && !Array.isArray(view)) {
        entry = { json: JSON.stringify(view), status: 'ok' };
        const { followersCount, postsCount } = view as { followersCount?: unknown; postsCount?: unknown };
        const established = typeof followersCount === 'number' && followersCount > 10 && typeof postsCount === 'number' && postsCount > 10;
        ttl = established ? this.#profileTtlMs : Math.min(this.#profileTtlMs, SMALL_ACCOUNT_PROFILE_TTL_MS);
      } else {
        entry = { json: 'null', status: 'invalid' };
        detail = 'profile is not a JSON object';
      }
    } else if (out.ok && (out.status === 400 || out.status === 404)) {
      // AccountTakedown, AccountDeactivated, "Profile not found": the profile is null, which is an answer.
      entry = { json: 'null', status: 'not_found' };
    } else {
      const failure = failureOf(out);
      entry = { json: 'null', status: failure.status };
      detail = failure.detail;
    }
    return this.#settle(flight, 'profile', this.#profiles, did, entry, ttl, out, url, detail, 'profile lookup failed (profile null)', 'profile');
  }

  #fromCache<V>(cache: TtlLru<string, V>, did: string, hitSlot: (v: V) => number): Part<V> | undefined {
    const now = Date.now();
    const value = cache.get(did, now);
    if (value === undefined) return undefined;
    count(hitSlot(value));
    return { value, expiresAt: cache.expiresAt(did, now)! };
  }

  /** Counts, caches and (when it failed) logs one fetched part. */
  #settle<V extends { status: RequestStatus } | { ok: boolean }>(
    flight: FlightState,
    kind: RequestKind,
    cache: TtlLru<string, V>,
    did: string,
    entry: V,
    ttlMs: number,
    out: Outcome,
    url: string,
    detail: string | undefined,
    msg: string,
    what: 'identity' | 'profile' = 'identity',
  ): Part<V> {
    const status: RequestStatus = 'status' in entry ? entry.status : 'ok';
    const closed = !out.ok && out.reason === 'closed';
    if (!closed) {
      requestDone(kind, status, false);
      this.#keep(flight, () => cache.set(did, entry, ttlMs, Date.now()), what);
      if (detail !== undefined) this.#rateLimited(`${kind}:${status}`, 'warn', { did, url: redactUrl(url), status, detail }, msg);
    }
    return { value: entry, expiresAt: Date.now() + ttlMs };
  }

  async #handle(did: string, declared: string | undefined, flight: FlightState): Promise<Part<HandleEntry | undefined>> {
    // Nothing declared: nothing to verify, and nothing to cache beyond the document itself.
    if (declared === undefined) return { value: undefined, expiresAt: Infinity };
    const now = Date.now();
    const cached = this.#handles.get(did, now);
    if (cached !== undefined && cached.declared === declared) {
      count(slot('handle', cached.status, true));
      return { value: cached, expiresAt: this.#handles.expiresAt(did, now)! };
    }
    const { status, ttlMs } = await this.#verifyHandle(did, declared);
    const entry: HandleEntry = { declared, handle: status === 'ok' ? declared : HANDLE_INVALID, status };
    if (!this.#closed) {
      requestDone('handle', status, false);
      this.#keep(flight, () => this.#handles.set(did, entry, ttlMs, Date.now()));
    }
    return { value: entry, expiresAt: Date.now() + ttlMs };
  }

  /**
   * Bidirectional verification as indigo's ResolveHandle: a DNS TXT record
   * that names a DID settles it; otherwise the HTTPS well-known answers.
   * Mismatches and "no such handle" are kept for the Go version's 15 min;
   * a timeout or server error only for negativeTtlMs, so it is retried soon.
   */
  async #verifyHandle(did: string, handle: string): Promise<{ status: RequestStatus; ttlMs: number }> {
    const definitive = Math.min(INVALID_HANDLE_TTL_MS, this.#documentTtlMs);
    const answer = (found: string): { status: RequestStatus; ttlMs: number } =>
      found === did ? { status: 'ok', ttlMs: this.#documentTtlMs } : { status: 'mismatch', ttlMs: definitive };
    if (handle === HANDLE_INVALID || !allowedTld(handle)) return { status: 'invalid', ttlMs: definitive };

    let transient: RequestStatus | undefined;
    if (!this.#skipDnsSuffixes.some((suffix) => handle.endsWith(suffix))) {
      const txt = await this.#txt(`_atproto.${handle}`);
      if (txt.ok) {
        const value = didFromTxt(txt.records);
        if (value !== undefined && isValidDid(value)) return answer(value);
      } else if (!txt.notFound) {
        transient = txt.message === 'timeout' ? 'timeout' : 'error';
      }
    }
    if (this.#closed) return { status: 'error', ttlMs: 0 };

    const url = this.#wellKnownUrl(handle);
    const out = await this.#fetcher.get(url, { maxBytes: WELL_KNOWN_MAX_BYTES, guard: true, accept: 'text/plain, */*' });
    let status: RequestStatus;
    let settled: boolean;
    if (out.ok && out.status === 200) {
      const line = out.body.toString('utf8').trim();
      if (isValidDid(line)) return answer(line);
      status = 'invalid';
      settled = true;
    } else {
      const failure = failureOf(out);
      status = failure.status;
      // A 4xx (but 429), a refused host or an oversized answer will say the same next time; a timeout or 5xx may not.
      settled = status === 'not_found' || status === 'blocked' || status === 'too_large' || (out.ok && out.status < 500 && out.status !== 429);
      this.#log.debug({ did, handle, url: redactUrl(url), detail: failure.detail }, 'handle well-known lookup failed');
    }
    if (transient !== undefined) return { status: transient, ttlMs: this.#negativeTtlMs };
    return { status, ttlMs: settled ? definitive : this.#negativeTtlMs };
  }

  /** DNS TXT with the request timeout even when the injected resolver has none, and an end at close(). */
  #txt(name: string): Promise<TxtAnswer> {
    return new Promise<TxtAnswer>((settle) => {
      const signal = this.#abort.signal;
      let done = false;
      const finish = (a: TxtAnswer): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        settle(a);
      };
      const onAbort = (): void => finish({ ok: false, notFound: false, message: 'closed' });
      const timer = setTimeout(() => finish({ ok: false, notFound: false, message: 'timeout' }), this.#timeoutMs);
      signal.addEventListener('abort', onAbort);
      let pending: Promise<string[][]>;
      try {
        pending = this.#resolveTxt(name);
      } catch (err) {
        pending = Promise.reject(err);
      }
      pending.then(
        (records) => finish({ ok: true, records }),
        (err: unknown) => {
          const code = (err as { code?: unknown } | null)?.code;
          // NXDOMAIN or no TXT records: the handle is not set up by DNS, the well-known may still be.
          finish({ ok: false, notFound: code === 'ENOTFOUND' || code === 'ENODATA', message: err instanceof Error ? err.message : String(err) });
        },
      );
    });
  }

  /** At most one line per kind per 10 s, with how many were held back since the last one. */
  #rateLimited(kind: string, level: 'warn' | 'error', context: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const state = this.#logState.get(kind);
    if (state !== undefined && now - state.at < LOG_INTERVAL_MS) {
      state.suppressed++;
      return;
    }
    this.#log[level]({ ...context, sameSinceLastLog: state?.suppressed ?? 0 }, msg);
    this.#logState.set(kind, { at: now, suppressed: 0 });
  }
}

function positive(name: string, v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`${name} must be a positive number, got ${v}`);
  return v;
}

function docKind(did: string): RequestKind {
  return did.startsWith('did:web:') ? 'did_web' : 'did_doc';
}

/** Go's LookupTXT joins the strings of one record; the first record that starts with did= counts. */
function didFromTxt(records: string[][]): string | undefined {
  for (const chunks of records) {
    const record = chunks.join('');
    if (record.startsWith('did=')) return record.slice(4);
  }
  return undefined;
}

function failureOf(out: Outcome): { status: RequestStatus; detail: string } {
  if (out.ok) {
    // 410: PLC's answer for a tombstoned DID.
    if (out.status === 404 || out.status === 410) return { status: 'not_found', detail: `HTTP ${out.status}` };
    if (out.status === 429) return { status: 'limited', detail: 'HTTP 429' };
    return { status: 'error', detail: `HTTP ${out.status}` };
  }
  switch (out.reason) {
    case 'timeout':
      return { status: 'timeout', detail: out.message };
    case 'dns_not_found':
      return { status: 'not_found', detail: out.message };
    case 'too_large':
      return { status: 'too_large', detail: out.message };
    case 'blocked':
      return { status: 'blocked', detail: out.message };
    case 'http':
      return { status: out.status === 429 ? 'limited' : 'error', detail: out.message };
    default:
      return { status: 'error', detail: out.message };
  }
}

function buildMetadata(doc: ParsedDocument, handle: string, createdAt: string | undefined, profileJson: string): EventMetadata {
  // Go's omitempty: pdsHost and didCreatedAt vanish when empty; accountAge and profile never do.
  let head = `{"didDocument":${doc.json}`;
  if (doc.pdsEndpoint !== '') head += `,"pdsHost":${JSON.stringify(doc.pdsEndpoint)}`;
  head += `,"handle":${JSON.stringify(handle)}`;
  if (createdAt !== undefined && createdAt !== '') head += `,"didCreatedAt":${JSON.stringify(createdAt)}`;
  head += ',"accountAge":';
  return Object.freeze({
    head,
    createdAtMs: createdAt === undefined || createdAt === '' ? undefined : parseRfc3339(createdAt),
    tail: `,"profile":${profileJson}}`,
    pdsEndpoint: doc.pdsEndpoint,
    pdsHostname: doc.pdsHostname,
  });
}
