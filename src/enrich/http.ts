import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import { BlockedAddressError, guardedLookup, isDisallowedAddress } from './address.ts';
import { ClosedError, backoffMs, retryAfterMs, type TokenBucket } from './limits.ts';

/**
 * GETs for the enricher, on node:http rather than fetch: fetch cannot take a
 * custom DNS lookup without undici's Agent (a dependency), and the lookup
 * is what lets the SSRF guard check the address the socket really uses.
 */

export interface Response {
  readonly ok: true;
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  /** The body went past the cap and only its first bytes were kept (only with allowTruncate). */
  readonly truncated: boolean;
}

/** Why there is no response to look at. `http` is a 429 or 5xx still there after the retries. */
export type FailureReason = 'timeout' | 'network' | 'dns_not_found' | 'too_large' | 'blocked' | 'closed' | 'bad_url' | 'http';

export interface Failure {
  readonly ok: false;
  readonly reason: FailureReason;
  readonly status?: number;
  readonly message: string;
}

export type Outcome = Response | Failure;

export interface FetcherOptions {
  userAgent: string;
  timeoutMs: number;
  retries: number;
  allowPrivateAddresses: boolean;
  /** Aborted by close(): everything in flight ends as `closed`. */
  signal: AbortSignal;
}

export interface GetOptions {
  maxBytes: number;
  /** The host was chosen by a stranger (did:web, handle): apply the SSRF guard. */
  guard: boolean;
  limiter?: TokenBucket;
  /** Keep the first maxBytes of a longer body instead of failing (the audit log only needs its first entry). */
  allowTruncate?: boolean;
  /** The Accept header; JSON unless said otherwise (the handle well-known is plain text). */
  accept?: string;
}

const MAX_REDIRECTS = 3;
/** A Retry-After longer than this is not waited for: the lookup gives up instead of holding a slot. */
export const RETRY_AFTER_CAP_MS = 5000;

export class Fetcher {
  readonly #o: FetcherOptions;
  // Separate pools: a socket opened for an operator-chosen host is never reused for a guarded request, nor the reverse.
  readonly #agents = {
    plain: { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) },
    guarded: { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) },
  };

  constructor(opts: FetcherOptions) {
    this.#o = opts;
  }

  close(): void {
    for (const pool of [this.#agents.plain, this.#agents.guarded]) {
      pool.http.destroy();
      pool.https.destroy();
    }
  }

  /** Never rejects. Retries timeouts, network errors, 429 and 5xx; answers any other status as is. */
  async get(url: string, opts: GetOptions): Promise<Outcome> {
    let last: Outcome | undefined;
    for (let attempt = 0; attempt <= this.#o.retries; attempt++) {
      if (attempt > 0) {
        const wait = last?.ok === true ? (retryAfterMs(last.headers['retry-after'], Date.now()) ?? backoffMs(attempt - 1)) : backoffMs(attempt - 1);
        try {
          await sleep(wait, undefined, { signal: this.#o.signal });
        } catch {
          return closed();
        }
      }
      if (opts.limiter !== undefined) {
        try {
          await opts.limiter.take();
        } catch {
          return closed();
        }
      }
      last = await this.#follow(url, opts);
      if (!retryable(last)) return last;
      if (last.ok) {
        const after = retryAfterMs(last.headers['retry-after'], Date.now());
        if (after !== undefined) {
          if (last.status === 429) opts.limiter?.holdFor(Math.min(after, RETRY_AFTER_CAP_MS));
          // Retrying before the upstream said it is ready only earns another refusal.
          if (after > RETRY_AFTER_CAP_MS) break;
        }
      }
    }
    if (last === undefined) return closed();
    if (last.ok && (last.status === 429 || last.status >= 500)) {
      return { ok: false, reason: 'http', status: last.status, message: `HTTP ${last.status}` };
    }
    return last;
  }

  async #follow(url: string, opts: GetOptions): Promise<Outcome> {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return { ok: false, reason: 'bad_url', message: 'unparsable URL' };
    }
    for (let hop = 0; ; hop++) {
      const out = await this.#once(target, opts);
      if (!out.ok || hop >= MAX_REDIRECTS || ![301, 302, 303, 307, 308].includes(out.status)) return out;
      const location = out.headers.location;
      if (location === undefined) return out;
      try {
        target = new URL(location, target);
      } catch {
        return { ok: false, reason: 'bad_url', message: 'unparsable redirect location' };
      }
    }
  }

  #once(url: URL, opts: GetOptions): Promise<Outcome> {
    if (this.#o.signal.aborted) return Promise.resolve(closed());
    const secure = url.protocol === 'https:';
    if (!secure && url.protocol !== 'http:') return Promise.resolve({ ok: false, reason: 'bad_url', message: `unsupported scheme ${url.protocol}` });
    const guard = opts.guard && !this.#o.allowPrivateAddresses;
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    // A literal IP never reaches the lookup, so it is checked here.
    if (guard && isIP(host) !== 0 && isDisallowedAddress(host)) {
      return Promise.resolve({ ok: false, reason: 'blocked', message: new BlockedAddressError(host, host).message });
    }
    const pool = opts.guard ? this.#agents.guarded : this.#agents.plain;
    const timeout = AbortSignal.timeout(this.#o.timeoutMs);
    const signal = AbortSignal.any([this.#o.signal, timeout]);
    const headers: Record<string, string> = { 'user-agent': this.#o.userAgent, accept: opts.accept ?? 'application/json' };

    return new Promise<Outcome>((settle) => {
      let done = false;
      const finish = (out: Outcome): void => {
        if (done) return;
        done = true;
        settle(out);
      };
      const failed = (err: unknown): void => {
        if (this.#o.signal.aborted) finish(closed());
        else if (timeout.aborted) finish({ ok: false, reason: 'timeout', message: `no answer within ${this.#o.timeoutMs} ms` });
        else finish(networkFailure(err));
      };
      let req: http.ClientRequest;
      try {
        req = (secure ? https : http).request(url, {
          method: 'GET',
          agent: secure ? pool.https : pool.http,
          headers,
          signal,
          ...(guard ? { lookup: guardedLookup } : {}),
        });
      } catch (err) {
        failed(err);
        return;
      }
      req.on('error', failed);
      req.on('response', (res) => {
        const declared = Number(res.headers['content-length']);
        if (!opts.allowTruncate && Number.isFinite(declared) && declared > opts.maxBytes) {
          finish(tooLarge(opts.maxBytes));
          req.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (done) return;
          if (size + chunk.length > opts.maxBytes) {
            if (opts.allowTruncate) {
              chunks.push(chunk.subarray(0, opts.maxBytes - size));
              finish({ ok: true, status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), truncated: true });
            } else {
              finish(tooLarge(opts.maxBytes));
            }
            // Stop reading: the rest could be endless.
            req.destroy();
            return;
          }
          size += chunk.length;
          chunks.push(chunk);
        });
        res.on('end', () => finish({ ok: true, status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks, size), truncated: false }));
        res.on('error', failed);
        res.on('aborted', () => failed(new Error('response aborted')));
      });
      req.end();
    });
  }
}

function retryable(out: Outcome): boolean {
  if (out.ok) return out.status === 429 || out.status >= 500;
  return out.reason === 'timeout' || out.reason === 'network';
}

function closed(): Failure {
  return { ok: false, reason: 'closed', message: new ClosedError().message };
}

function tooLarge(max: number): Failure {
  return { ok: false, reason: 'too_large', message: `response body larger than ${max} bytes` };
}

function networkFailure(err: unknown): Failure {
  if (err instanceof BlockedAddressError) return { ok: false, reason: 'blocked', message: err.message };
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  // NXDOMAIN is an answer, not a hiccup: retrying it would only repeat it.
  if (code === 'ENOTFOUND') return { ok: false, reason: 'dns_not_found', message };
  return { ok: false, reason: 'network', message: typeof code === 'string' ? `${code}: ${message}` : message };
}
