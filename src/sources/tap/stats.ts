import type { Logger } from '../../telemetry/logger.ts';
import * as metrics from '../../telemetry/metrics.ts';
import { redactUrl } from '../../telemetry/redact.ts';

export interface TapStatsOptions {
  /** http(s) base URL of Tap's API (the --tap-host, as http). */
  apiUrl: string;
  /** Tap's Prometheus listener (TAP_METRICS_LISTEN), for backfill progress by state; optional. */
  metricsUrl: string | undefined;
  headers: Record<string, string>;
  intervalMs: number;
  /** Records produced so far (for records/s through atkafka). */
  produced: () => number;
  logger: Logger;
}

export interface TapProgress {
  repos: number | undefined;
  recordsIndexed: number | undefined;
  /** Events in Tap's outbox: not yet sent, in flight, or acked and not yet deleted (deletes run every 10 s). */
  outboxBuffer: number | undefined;
  resyncBuffer: number | undefined;
  backfilling: number | undefined;
  backfilled: number | undefined;
  failed: number | undefined;
}

/**
 * Backfill progress a person can follow, from Tap's own stats endpoints
 * (docs/tap-protocol.md: `/stats/*`, and `tap_resyncs_*_total` on its metrics
 * listener when given), in the log every interval and as metrics.
 */
export class TapStats {
  readonly #o: TapStatsOptions;
  #timer: NodeJS.Timeout | undefined;
  #lastProduced = 0;
  #lastAt = 0;
  #failures = 0;

  constructor(opts: TapStatsOptions) {
    this.#o = opts;
  }

  start(): void {
    this.#lastProduced = this.#o.produced();
    this.#lastAt = performance.now();
    this.#timer = setInterval(() => void this.poll(), this.#o.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async poll(): Promise<TapProgress> {
    const [repos, records, outbox, resync, resyncs] = await Promise.all([
      this.#get('/stats/repo-count', 'repo_count'),
      this.#get('/stats/record-count', 'record_count'),
      this.#get('/stats/outbox-buffer', 'outbox_buffer'),
      this.#get('/stats/resync-buffer', 'resync_buffer'),
      this.#resyncs(),
    ]);
    const progress: TapProgress = {
      repos,
      recordsIndexed: records,
      outboxBuffer: outbox,
      resyncBuffer: resync,
      backfilling: resyncs === undefined ? undefined : Math.max(0, resyncs.started - resyncs.completed - resyncs.failed),
      backfilled: resyncs?.completed,
      failed: resyncs?.failed,
    };
    metrics.tapProgress(progress);
    const now = performance.now();
    const produced = this.#o.produced();
    const perSecond = this.#lastAt === 0 ? 0 : ((produced - this.#lastProduced) * 1000) / Math.max(1, now - this.#lastAt);
    this.#lastProduced = produced;
    this.#lastAt = now;
    this.#o.logger.info({ ...progress, producedPerSecond: Math.round(perSecond) }, 'Tap backfill progress');
    return progress;
  }

  async #get(path: string, field: string): Promise<number | undefined> {
    const url = `${this.#o.apiUrl}${path}`;
    try {
      const res = await fetch(url, { headers: this.#o.headers, signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = (await res.json()) as Record<string, unknown>;
      const v = body[field];
      return typeof v === 'number' ? v : undefined;
    } catch (err) {
      // Progress is for people; a Tap too busy to answer must not stop anything.
      if (this.#failures++ % 30 === 0) this.#o.logger.warn({ url: redactUrl(url), err: (err as Error).message }, 'cannot read Tap stats');
      return undefined;
    }
  }

  async #resyncs(): Promise<{ started: number; completed: number; failed: number } | undefined> {
    if (this.#o.metricsUrl === undefined) return undefined;
    try {
      const res = await fetch(`${this.#o.metricsUrl.replace(/\/+$/, '')}/metrics`, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const text = await res.text();
      const sample = (name: string) => {
        const m = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)$`, 'm').exec(text);
        return m === null ? 0 : Number(m[1]);
      };
      return { started: sample('tap_resyncs_started_total'), completed: sample('tap_resyncs_completed_total'), failed: sample('tap_resyncs_failed_total') };
    } catch (err) {
      if (this.#failures++ % 30 === 0) this.#o.logger.warn({ url: redactUrl(this.#o.metricsUrl), err: (err as Error).message }, "cannot read Tap's metrics");
      return undefined;
    }
  }
}

/** Tap's API base URL from --tap-host (its websocket scheme as http). */
export function tapApiUrl(tapHost: string): string {
  const url = new URL(tapHost);
  if (url.protocol === 'wss:') url.protocol = 'https:';
  if (url.protocol === 'ws:') url.protocol = 'http:';
  return url.toString().replace(/\/+$/, '');
}
