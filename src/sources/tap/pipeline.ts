import { InputError } from '../../atproto/errors.ts';
import { collectionMatcher, type CollectionFilter } from '../../filter/collections.ts';
import type { OutputFormat } from '../../decode/relay-frame.ts';
import { formatIdentityState, formatOperation } from '../../format/atkafka.ts';
import { jetstreamAccount, jetstreamCommit, jetstreamIdentity, MicrosClock, nowMicros } from '../../format/jetstream.ts';
import { PipelineCore, type CoreTicket, type StageOptions, type Tracker } from '../../pipeline/core.ts';
import type { MessageSink } from '../../sink/kafka/types.ts';
import type { Logger } from '../../telemetry/logger.ts';
import * as metrics from '../../telemetry/metrics.ts';
import { WsSubscription } from '../common/ws-subscription.ts';
import { parseTapEvent, recordTime, tapEventId } from './events.ts';
import { TapStats, tapApiUrl } from './stats.ts';

export interface TapPipelineOptions {
  /** ws(s):// or http(s):// base URL of Tap; events come from its /channel. */
  tapHost: string;
  /** HTTP Basic password of Tap's admin user (TAP_ADMIN_PASSWORD), if it has one. */
  adminPassword: string | undefined;
  /** Tap then counts a socket write as delivered: a crash loses what was in flight. */
  disableAcks: boolean;
  maxInFlight: number;
  maxInFlightBytes: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** How often backfill progress is read from Tap and logged; 0: never. */
  statsIntervalMs?: number;
  /** Tap's metrics listener (TAP_METRICS_LISTEN), for repos by backfill state. */
  tapMetricsUrl?: string;
  userAgent: string;
  sink: MessageSink;
  collections?: CollectionFilter;
  /** The JSON shape of the messages (default at-kafka). */
  format?: OutputFormat;
  stages?: Partial<StageOptions<TapTicket>>;
  logger: Logger;
  onEventConfirmed?: (latencyMs: number) => void;
}

export interface TapTicket extends CoreTicket {
  readonly id: number;
}

/**
 * Tap's /channel -> at-kafka JSON -> Kafka -> an ack per event.
 *
 * Tap's position is per event: an event is acknowledged once Kafka confirmed
 * all its messages, in whatever order that happens, so an ack never waits
 * behind an unrelated DID (Tap holds back a DID's next live event until the
 * previous one is acked; a head-of-line wait would stall the backfill).
 * What is not acked, Tap sends again after its retry timeout, also after a
 * reconnect or a restart of either side: at least once, never lost.
 */
export class TapPipeline {
  readonly #o: TapPipelineOptions;
  readonly #log: Logger;
  readonly #core: PipelineCore<TapTicket>;
  readonly #subscription: WsSubscription;
  readonly #keep: ((collection: string) => boolean) | undefined;
  /** Acks of confirmed events that found no open socket: sent when one opens (Tap's ids outlive a connection). */
  #unsent: number[] = [];
  #open = 0;
  #paused = false;
  #stopping = false;
  #produced = 0;
  readonly #clock = new MicrosClock();
  readonly #stats: TapStats | undefined;

  constructor(opts: TapPipelineOptions) {
    this.#o = opts;
    this.#log = opts.logger;
    this.#keep = opts.collections === undefined ? undefined : collectionMatcher(opts.collections);
    const tracker: Tracker<TapTicket> = {
      seal: (t) => {
        t.sealed = true;
        if (t.pending === 0) this.#ack(t.id);
      },
      confirm: (t) => {
        t.pending--;
        if (t.pending === 0 && t.sealed) this.#ack(t.id);
      },
    };
    this.#core = new PipelineCore<TapTicket>({
      source: 'tap',
      sink: opts.sink,
      maxInFlight: opts.maxInFlight,
      maxInFlightBytes: opts.maxInFlightBytes,
      stages: opts.stages ?? {},
      tracker,
      onProgress: () => this.#progress(),
      logger: opts.logger,
      onEventConfirmed: opts.onEventConfirmed,
    });
    const headers: Record<string, string> = {};
    if (opts.adminPassword !== undefined) headers.authorization = `Basic ${Buffer.from(`admin:${opts.adminPassword}`).toString('base64')}`;
    this.#subscription = new WsSubscription({
      name: 'Tap',
      messages: 'text',
      url: () => channelUrl(opts.tapHost),
      headers,
      onMessage: (data) => this.#onMessage(data),
      onOpen: () => this.#flushAcks(),
      onConnection: (open) => metrics.tapConnection(open),
      onReconnect: (reason) => metrics.tapReconnect(reason),
      // Tap is quiet when nothing happens: silence is not a dead socket.
      stallTimeoutMs: 0,
      backoffInitialMs: opts.backoffInitialMs,
      backoffMaxMs: opts.backoffMaxMs,
      maxPayloadBytes: 16 * 1024 * 1024,
      userAgent: opts.userAgent,
      logger: opts.logger.child({ component: 'tap' }),
    });
    if ((opts.statsIntervalMs ?? 10_000) > 0) {
      this.#stats = new TapStats({
        apiUrl: tapApiUrl(opts.tapHost),
        metricsUrl: opts.tapMetricsUrl,
        headers,
        intervalMs: opts.statsIntervalMs ?? 10_000,
        produced: () => this.#produced,
        logger: opts.logger.child({ component: 'tap' }),
      });
    }
    metrics.tapBuffersFrom(
      () => this.#open,
      () => this.#unsent.length,
    );
  }

  get connected(): boolean {
    return this.#subscription.connected;
  }

  /** Runs until the signal aborts: then stops reading, lets Kafka confirm what is in flight, sends those acks, closes. */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#o.disableAcks) {
      this.#log.warn('--disable-acks: Tap counts an event as delivered once written to the socket, so a crash or a Kafka outage LOSES the events in flight');
    }
    const onAbort = () => void this.#stop();
    signal.addEventListener('abort', onAbort, { once: true });
    this.#stats?.start();
    try {
      await this.#subscription.run();
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.#stats?.stop();
    }
    await this.#core.drain();
    this.#log.info({ unsentAcks: this.#unsent.length }, 'Tap pipeline stopped');
  }

  async #stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    // Keep the socket open while draining: the acks of what Kafka confirms now still reach Tap.
    this.#subscription.pause();
    await this.#core.drain();
    this.#subscription.stop();
  }

  #onMessage(data: Buffer): void {
    const receivedAt = performance.now();
    const text = data.toString('utf8');
    let evt;
    try {
      evt = parseTapEvent(text);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      const id = tapEventId(text);
      metrics.inputSkipped('tap', err.reason);
      this.#log.warn({ id, reason: err.reason, err: err.message, bytes: data.length }, 'skipping invalid input');
      // Acknowledged all the same: Tap would send it again and again, and hold back the DID's live events behind it.
      if (id !== undefined) this.#done(id, receivedAt);
      return;
    }
    const ticket: TapTicket = { id: evt.id, receivedAt, pending: 0, sealed: false };
    this.#open++;
    switch (evt.type) {
      case 'record': {
        if (this.#keep !== undefined && !this.#keep(evt.collection)) {
          metrics.eventsFiltered('collection', 1);
          break;
        }
        const path = `${evt.collection}/${evt.rkey}`;
        const value = this.#o.format === 'jetstream'
          ? jetstreamCommit(evt.did, this.#clock.next(nowMicros()), { rev: evt.rev, operation: evt.action, collection: evt.collection, rkey: evt.rkey, record: evt.record, cid: evt.cid })
          : formatOperation(
          evt.did,
          recordTime(evt.record, evt.rkey, new Date()),
          { action: evt.action, collection: evt.collection, rkey: evt.rkey, path, cid: evt.cid, record: evt.record },
          { rev: evt.rev, live: evt.live },
        );
        this.#core.send(ticket, evt.did, evt.id, new Date().toISOString(), { value, action: `operation#${evt.action}`, collection: evt.collection });
        this.#produced++;
        break;
      }
      case 'identity': {
        const time = new Date().toISOString();
        if (this.#o.format === 'jetstream') {
          // Jetstream says handle and account state in two events; Tap in one (its id stands in for the relay seq).
          const identity = jetstreamIdentity(evt.did, this.#clock.next(nowMicros()), { did: evt.did, handle: evt.handle, seq: evt.id, time });
          const account = jetstreamAccount(evt.did, this.#clock.next(nowMicros()), { did: evt.did, active: evt.isActive, seq: evt.id, status: evt.status, time });
          this.#core.send(ticket, evt.did, evt.id, time, { value: identity, action: 'identity', collection: '' });
          this.#core.send(ticket, evt.did, evt.id, time, { value: account, action: 'account', collection: '' });
          break;
        }
        const value = formatIdentityState(evt.did, time, evt.id, evt.handle, evt.isActive, evt.status);
        this.#core.send(ticket, evt.did, evt.id, time, { value, action: 'identity', collection: '' });
        break;
      }
      case 'other':
        this.#log.debug({ id: evt.id, type: evt.name }, 'acknowledging a Tap event of a type this version does not produce');
        break;
    }
    this.#core.seal(ticket);
    if (!this.#paused && !this.#core.room()) this.#setPaused(true);
  }

  /** An event acknowledged without going through the core (invalid input). */
  #done(id: number, receivedAt: number): void {
    this.#open++;
    this.#core.seal({ id, receivedAt, pending: 0, sealed: false });
  }

  /** The event is done: it leaves the open count, and its ack goes out now or on the next connection. */
  #ack(id: number): void {
    this.#open--;
    if (!this.#o.disableAcks) this.#sendAck(id);
  }

  #sendAck(id: number): void {
    if (this.#subscription.send(`{"type":"ack","id":${id}}`)) {
      metrics.tapAckSent('ok');
      metrics.tapAckPosition(id);
    }
    else this.#unsent.push(id);
  }

  #flushAcks(): void {
    const unsent = this.#unsent;
    this.#unsent = [];
    for (const id of unsent) this.#sendAck(id);
  }

  #progress(): void {
    if (this.#paused && !this.#stopping && this.#core.inFlight <= this.#o.maxInFlight / 2 && this.#core.inFlightBytes <= this.#o.maxInFlightBytes / 2) {
      this.#setPaused(false);
    }
  }

  #setPaused(paused: boolean): void {
    this.#paused = paused;
    metrics.backpressure(paused);
    if (paused) this.#subscription.pause();
    else this.#subscription.resume();
  }
}

export function channelUrl(tapHost: string): string {
  const url = new URL(tapHost);
  if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol === 'http:') url.protocol = 'ws:';
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/channel`;
  return url.toString();
}
