import { Counter, Gauge } from 'prom-client';

import { registry } from '../telemetry/metrics.ts';

/**
 * The Go at-kafka's identity metrics, same names and labels. Every lookup
 * (from cache or not) is counted, so a cache hit on the hot path must cost an
 * array increment, not a label lookup: counts live in a typed array and go
 * to prom-client when scraped, as atkafka_handled_events does.
 */

export const REQUEST_KINDS = ['did_doc', 'audit_log', 'did_web', 'handle', 'profile'] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];

/**
 * ok; not_found (404, NXDOMAIN, no handle record, profile gone); invalid (an
 * answer that is not a usable document/log/profile); too_large; timeout;
 * limited (still 429 after the retries); blocked (the SSRF guard refused the
 * host); mismatch (the handle points at another DID); skipped (not asked:
 * too many lookups were queued already); error (anything else).
 */
export const REQUEST_STATUSES = ['ok', 'not_found', 'error', 'timeout', 'invalid', 'too_large', 'limited', 'blocked', 'mismatch', 'skipped'] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

const counts = new Float64Array(REQUEST_KINDS.length * REQUEST_STATUSES.length * 2);
const published = new Float64Array(counts.length);

/** The slot of one label combination; compute once, then pass it to `count`. */
export function slot(kind: RequestKind, status: RequestStatus, cached: boolean): number {
  return (REQUEST_KINDS.indexOf(kind) * REQUEST_STATUSES.length + REQUEST_STATUSES.indexOf(status)) * 2 + (cached ? 1 : 0);
}

export function count(slotIndex: number): void {
  counts[slotIndex]!++;
}

export function requestDone(kind: RequestKind, status: RequestStatus, cached: boolean): void {
  counts[slot(kind, status, cached)]!++;
}

function publish(counter: Counter<'kind' | 'status' | 'cached'>, api: boolean): void {
  for (let i = 0; i < counts.length; i++) {
    const diff = counts[i]! - published[i]!;
    if (diff === 0) continue;
    const kind = REQUEST_KINDS[Math.floor(i / 2 / REQUEST_STATUSES.length)]!;
    if ((kind === 'profile') !== api) continue;
    const status = REQUEST_STATUSES[Math.floor(i / 2) % REQUEST_STATUSES.length]!;
    counter.labels(kind, status, i % 2 === 1 ? 'true' : 'false').inc(diff);
    published[i] = counts[i]!;
  }
}

new Counter({
  name: 'atkafka_plc_requests',
  help: 'Identity lookups by kind (did_doc, audit_log, did_web, handle), status, and whether the cache answered',
  labelNames: ['kind', 'status', 'cached'] as const,
  registers: [registry],
  collect() {
    publish(this, false);
  },
});

new Counter({
  name: 'atkafka_api_requests',
  help: 'AppView lookups (kind profile) by status, and whether the cache answered',
  labelNames: ['kind', 'status', 'cached'] as const,
  registers: [registry],
  collect() {
    publish(this, true);
  },
});

export interface CacheSizes {
  did_doc: number;
  audit_log: number;
  profile: number;
  handle: number;
}

const sources = new Set<() => CacheSizes>();

new Gauge({
  name: 'atkafka_cache_size',
  help: 'Entries in the identity caches (did_doc counts remembered failures too)',
  labelNames: ['kind'] as const,
  registers: [registry],
  collect() {
    const total: CacheSizes = { did_doc: 0, audit_log: 0, profile: 0, handle: 0 };
    for (const source of sources) {
      const s = source();
      total.did_doc += s.did_doc;
      total.audit_log += s.audit_log;
      total.profile += s.profile;
      total.handle += s.handle;
    }
    for (const [kind, n] of Object.entries(total)) this.labels(kind).set(n);
  },
});

/** Reports an enricher's cache sizes on every scrape until the returned function is called. */
export function cacheSizesFrom(source: () => CacheSizes): () => void {
  sources.add(source);
  return () => {
    sources.delete(source);
  };
}
