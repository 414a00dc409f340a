import type { Logger } from '../../telemetry/logger.ts';

/**
 * Why a call to the moderator's PDS (or, through it, to Ozone) failed; also
 * the `kind` label of atkafka_ozone_poll_errors.
 *   auth          the PDS refused the login, or Ozone refused the account (not a moderator)
 *   rate-limited  429; `retryAtMs` from ratelimit-reset when it sent one
 *   ozone-down    the PDS could not reach Ozone (its proxy answered 502/503/504 or UpstreamFailure)
 *   pds-down      no HTTP answer: connection refused, reset, DNS, timeout
 *   server        another 5xx
 *   bad-response  an answer that is not what the lexicon says (not JSON, no events array, ...)
 *   request       another 4xx: a request this version builds wrong for that server
 */
export type OzoneErrorKind = 'auth' | 'rate-limited' | 'ozone-down' | 'pds-down' | 'server' | 'bad-response' | 'request';

export class OzoneCallError extends Error {
  readonly kind: OzoneErrorKind;
  readonly status: number | undefined;
  /** The XRPC error name (`ExpiredToken`, `AuthenticationRequired`, ...). */
  readonly xrpcError: string | undefined;
  /** When a 429 says the limit resets (unix ms). */
  readonly retryAtMs: number | undefined;

  constructor(kind: OzoneErrorKind, message: string, opts: { status?: number; xrpcError?: string; retryAtMs?: number; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = 'OzoneCallError';
    this.kind = kind;
    this.status = opts.status;
    this.xrpcError = opts.xrpcError;
    this.retryAtMs = opts.retryAtMs;
  }
}

export interface QueryEventsPage {
  /** Ozone's keyset cursor after the last event; absent on an empty page. */
  cursor: string | undefined;
  /** The event views as Ozone returned them. */
  events: unknown[];
}

export interface OzoneClientOptions {
  /** The moderator's PDS, http(s), no trailing slash. */
  pdsHost: string;
  identifier: string;
  /** Read on every login, so a rotated password file is picked up without a restart. */
  password: () => Promise<string>;
  /** The moderation service's DID: queryEvents goes through the PDS with atproto-proxy: <did>#atproto_labeler. */
  labelerDid: string;
  userAgent: string;
  requestTimeoutMs: number;
  logger: Logger;
  /** A login or refresh happened (metrics). */
  onSession?: (kind: 'create' | 'refresh', ok: boolean) => void;
}

interface Session {
  did: string;
  accessJwt: string;
  refreshJwt: string;
  /** When the access token expires (unix ms), from its `exp`; undefined when unreadable. */
  accessExpiresMs: number | undefined;
  /** When it was issued, from `iat` (else when we got it). */
  accessIssuedMs: number;
  /** When we got it, by our clock. */
  obtainedMs: number;
}

/** Refresh this long before the access token expires: at most 5 minutes, or a quarter of its lifetime when shorter. */
const REFRESH_AHEAD_MAX_MS = 5 * 60_000;
/**
 * No proactive refresh sooner than this after the last renewal: if a fresh token already looks due
 * (our clock far ahead of the PDS's), refreshing before every poll would only load the PDS; the
 * ExpiredToken answer still triggers a refresh when it is really needed.
 */
const MIN_PROACTIVE_REFRESH_GAP_MS = 15_000;

/**
 * The moderator's session on its PDS and the one call atkafka makes:
 * `tools.ozone.moderation.queryEvents`, proxied by the PDS to the labeler.
 *
 * The access token (about 2 hours) is refreshed before it expires and when
 * the PDS says ExpiredToken; a refresh the PDS refuses (revoked, expired)
 * falls back to a new login. Tokens and the password never reach a log line
 * or an error message.
 */
export class OzoneClient {
  readonly #o: OzoneClientOptions;
  #session: Session | undefined;
  /** One login or refresh at a time; callers share it. */
  #renewing: Promise<Session> | undefined;

  constructor(opts: OzoneClientOptions) {
    this.#o = opts;
  }

  get did(): string | undefined {
    return this.#session?.did;
  }

  /** One page of events after `cursor` (undefined: from the start), created at or before `createdBefore`, ascending. */
  async queryEvents(q: { cursor: string | undefined; createdBefore: string; limit: number }, signal?: AbortSignal): Promise<QueryEventsPage> {
    const params = new URLSearchParams({ sortDirection: 'asc', limit: String(q.limit), createdBefore: q.createdBefore });
    if (q.cursor !== undefined) params.set('cursor', q.cursor);
    const body = await this.#authed('GET', 'tools.ozone.moderation.queryEvents', params, signal);
    if (body === null || typeof body !== 'object') throw new OzoneCallError('bad-response', 'queryEvents answered something that is not a JSON object');
    const { cursor, events } = body as { cursor?: unknown; events?: unknown };
    if (!Array.isArray(events)) throw new OzoneCallError('bad-response', 'queryEvents answered without an "events" array');
    if (cursor !== undefined && typeof cursor !== 'string') throw new OzoneCallError('bad-response', 'queryEvents answered a "cursor" that is not a string');
    return { cursor, events };
  }

  /** Logs in now (startup), so a bad password or PDS shows at once. */
  async login(signal?: AbortSignal): Promise<void> {
    await this.#renew('create', signal);
  }

  async #authed(method: 'GET', nsid: string, params: URLSearchParams, signal: AbortSignal | undefined): Promise<unknown> {
    let session = this.#session;
    if (session === undefined) session = await this.#renew('create', signal);
    else if (this.#dueForRefresh(session)) {
      this.#o.logger.info({ expiresAt: isoOrUndefined(session.accessExpiresMs) }, 'access token about to expire: refreshing the session');
      session = await this.#renew('refresh', signal);
    }
    const headers = { authorization: `Bearer ${session.accessJwt}`, 'atproto-proxy': `${this.#o.labelerDid}#atproto_labeler` };
    try {
      return await this.#call(method, nsid, params, headers, signal);
    } catch (err) {
      if (!(err instanceof OzoneCallError)) throw err;
      // ExpiredToken: refresh. InvalidToken: the PDS no longer knows the token (its secret changed, the account was reset): log in.
      const renewal = err.xrpcError === 'ExpiredToken' ? 'refresh' : err.xrpcError === 'InvalidToken' ? 'create' : undefined;
      if (renewal === undefined) throw err;
      this.#o.logger.info({ error: err.xrpcError }, renewal === 'refresh' ? 'access token expired: refreshing the session' : 'access token refused: logging in again');
      if (this.#session === session) this.#session = undefined;
      const fresh = await this.#renew(renewal, signal, session);
      return await this.#call(method, nsid, params, { ...headers, authorization: `Bearer ${fresh.accessJwt}` }, signal);
    }
  }

  #dueForRefresh(s: Session): boolean {
    if (s.accessExpiresMs === undefined || Date.now() - s.obtainedMs < MIN_PROACTIVE_REFRESH_GAP_MS) return false;
    const ahead = Math.min(REFRESH_AHEAD_MAX_MS, (s.accessExpiresMs - s.accessIssuedMs) / 4);
    return Date.now() >= s.accessExpiresMs - ahead;
  }

  /** A new session: refreshed when there is a refresh token (and `kind` allows), else a new login. */
  #renew(kind: 'create' | 'refresh', signal: AbortSignal | undefined, stale?: Session): Promise<Session> {
    if (this.#renewing !== undefined) return this.#renewing;
    const previous = stale ?? this.#session;
    const p = (async () => {
      if (kind === 'refresh' && previous !== undefined) {
        try {
          const s = await this.#refresh(previous, signal);
          this.#o.onSession?.('refresh', true);
          this.#o.logger.info({ did: s.did, expiresAt: isoOrUndefined(s.accessExpiresMs) }, 'Ozone session refreshed');
          return s;
        } catch (err) {
          if (!(err instanceof OzoneCallError)) throw err;
          this.#o.onSession?.('refresh', false);
          // The PDS is there but refuses the refresh token (revoked, expired): a new login can still work.
          if (err.kind !== 'auth' && err.kind !== 'request') throw err;
          this.#o.logger.warn({ error: err.xrpcError ?? err.message }, 'session refresh refused: logging in again');
        }
      }
      try {
        const s = await this.#createSession(signal);
        this.#o.onSession?.('create', true);
        this.#o.logger.info({ did: s.did, expiresAt: isoOrUndefined(s.accessExpiresMs) }, 'logged in to the moderator PDS');
        return s;
      } catch (err) {
        this.#o.onSession?.('create', false);
        throw err;
      }
    })();
    this.#renewing = p;
    return p.then(
      (s) => {
        this.#session = s;
        this.#renewing = undefined;
        return s;
      },
      (err: unknown) => {
        this.#session = undefined;
        this.#renewing = undefined;
        throw err;
      },
    );
  }

  async #createSession(signal: AbortSignal | undefined): Promise<Session> {
    const password = await this.#o.password();
    let body: unknown;
    try {
      body = await this.#call('POST', 'com.atproto.server.createSession', { identifier: this.#o.identifier, password }, {}, signal);
    } catch (err) {
      if (err instanceof OzoneCallError && err.status === 401) {
        throw new OzoneCallError('auth', `the PDS refused the login of ${this.#o.identifier}: ${err.message}`, { status: 401, xrpcError: err.xrpcError });
      }
      throw err;
    }
    return sessionOf(body, 'createSession');
  }

  async #refresh(s: Session, signal: AbortSignal | undefined): Promise<Session> {
    const body = await this.#call('POST', 'com.atproto.server.refreshSession', undefined, { authorization: `Bearer ${s.refreshJwt}` }, signal);
    return sessionOf(body, 'refreshSession');
  }

  /** One XRPC call; every failure becomes an OzoneCallError with a message fit for a log line. */
  async #call(method: 'GET' | 'POST', nsid: string, input: URLSearchParams | object | undefined, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<unknown> {
    const url = new URL(`${this.#o.pdsHost}/xrpc/${nsid}`);
    const init: RequestInit = { method, headers: { 'user-agent': this.#o.userAgent, accept: 'application/json', ...headers } };
    if (input instanceof URLSearchParams) url.search = input.toString();
    else if (input !== undefined) {
      init.body = JSON.stringify(input);
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
    }
    // One controller per request, let go of afterwards: AbortSignal.any/timeout on the run's long-lived
    // signal would pile up dependents for as long as the process polls.
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, this.#o.requestTimeoutMs);
    const onAbort = () => ac.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    init.signal = ac.signal;
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, init);
      text = await res.text();
    } catch (err) {
      if (signal?.aborted) throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = timedOut ? `no answer within ${this.#o.requestTimeoutMs} ms` : (cause?.code ?? cause?.message ?? (err as Error).message);
      throw new OzoneCallError('pds-down', `${nsid}: the PDS ${url.host} cannot be reached (${why})`, { cause: err });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    let body: unknown = undefined;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        if (res.ok) throw new OzoneCallError('bad-response', `${nsid}: HTTP ${res.status} with a body that is not JSON`, { status: res.status });
      }
    }
    if (res.ok) return body;
    const { error, message } = (body ?? {}) as { error?: unknown; message?: unknown };
    const xrpcError = typeof error === 'string' ? error.slice(0, 100) : undefined;
    const detail = `${nsid}: HTTP ${res.status}${xrpcError === undefined ? '' : ` ${xrpcError}`}${typeof message === 'string' ? `: ${message.slice(0, 300)}` : ''}`;
    const status = res.status;
    if (status === 429) return throwRateLimited(detail, res.headers);
    if (status === 502 || status === 503 || status === 504 || xrpcError === 'UpstreamFailure' || xrpcError === 'UpstreamTimeout') {
      throw new OzoneCallError('ozone-down', detail, { status, xrpcError });
    }
    if (status >= 500) throw new OzoneCallError('server', detail, { status, xrpcError });
    if (status === 401 || status === 403 || xrpcError === 'ExpiredToken' || xrpcError === 'InvalidToken') {
      throw new OzoneCallError('auth', detail, { status, xrpcError });
    }
    throw new OzoneCallError('request', detail, { status, xrpcError });
  }
}

function throwRateLimited(detail: string, headers: Headers): never {
  // ratelimit-reset is unix seconds in the atproto servers (xrpc-server), delta seconds in the IETF draft; read both.
  const reset = Number(headers.get('ratelimit-reset'));
  const retryAfter = Number(headers.get('retry-after'));
  let retryAtMs: number | undefined;
  if (Number.isFinite(reset) && reset > 0) retryAtMs = reset > 1e9 ? reset * 1000 : Date.now() + reset * 1000;
  else if (Number.isFinite(retryAfter) && retryAfter > 0) retryAtMs = Date.now() + retryAfter * 1000;
  throw new OzoneCallError('rate-limited', detail, { status: 429, retryAtMs });
}

function sessionOf(body: unknown, nsid: string): Session {
  const { did, accessJwt, refreshJwt } = (body ?? {}) as Record<string, unknown>;
  if (typeof did !== 'string' || typeof accessJwt !== 'string' || typeof refreshJwt !== 'string') {
    throw new OzoneCallError('bad-response', `${nsid} answered without did, accessJwt and refreshJwt`);
  }
  const claims = jwtClaims(accessJwt);
  return {
    did,
    accessJwt,
    refreshJwt,
    accessExpiresMs: claims.exp === undefined ? undefined : claims.exp * 1000,
    accessIssuedMs: claims.iat === undefined ? Date.now() : claims.iat * 1000,
    obtainedMs: Date.now(),
  };
}

/** `exp` and `iat` of a JWT, read without verifying it (the PDS verifies; we only plan the refresh). */
export function jwtClaims(jwt: string): { exp?: number; iat?: number } {
  try {
    const payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown; iat?: unknown };
    return {
      exp: typeof payload.exp === 'number' && Number.isFinite(payload.exp) ? payload.exp : undefined,
      iat: typeof payload.iat === 'number' && Number.isFinite(payload.iat) ? payload.iat : undefined,
    };
  } catch {
    return {};
  }
}

function isoOrUndefined(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}
