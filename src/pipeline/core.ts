import type { MessageSink } from '../sink/kafka/types.ts';
import type { Logger } from '../telemetry/logger.ts';
import * as metrics from '../telemetry/metrics.ts';
import { Outbox, type OutboxOptions, type OutMessage } from './outbox.ts';

/**
 * One upstream event on its way to Kafka: open while any of its messages is
 * unconfirmed or more may come. What completing it means is the source's
 * (its Tracker's): a watermark that moves a cursor, an ack to Tap, a page.
 */
export interface CoreTicket {
  /** performance.now() when the event was read, for latency */
  readonly receivedAt: number;
  /** messages not yet confirmed */
  pending: number;
  /** no more messages will be added */
  sealed: boolean;
}

/** A source's completion policy: told when an event is sealed and when each of its messages is confirmed. */
export interface Tracker<K extends CoreTicket> {
  /** Every message of the event has been handed on. Complete when `pending` is 0. */
  seal(ticket: K): void;
  /** One message was confirmed by Kafka (or left out by a filter): `pending` goes down by one. */
  confirm(ticket: K): void;
}

export type StageOptions<K> = Pick<OutboxOptions<K | null>, 'enricher' | 'enrich' | 'keepService' | 'deadlineMs' | 'osprey' | 'topicFor' | 'headers' | 'compress'>;

export interface PipelineCoreOptions<K extends CoreTicket> {
  /** `relay`, `tap`, ...: a header on every message and `{source}` in topic templates. */
  source: string;
  sink: MessageSink;
  /** Messages handed on and not confirmed (waiting for an identity or for Kafka) before the source must stop. */
  maxInFlight: number;
  maxInFlightBytes: number;
  stages: Partial<StageOptions<K>>;
  tracker: Tracker<K>;
  /** Confirmations came in: there may be room again (the source pumps or resumes). Called outside the sink's loop. */
  onProgress: () => void;
  logger: Logger;
  /** The name of the header with the upstream position (default `seq`). */
  positionHeader?: string;
  /** Called with each event's read-to-confirmed latency in ms (benchmarks). */
  onEventConfirmed?: (latencyMs: number) => void;
}

/**
 * What every source shares between its decoder and Kafka (docs/invariants.md):
 * the in-flight bound (messages and bytes, counting those that wait for an
 * identity), one ticket per upstream event that its source's Tracker
 * completes when all the event's messages are confirmed, the shared stages
 * (filters, enrichment, envelope, headers, topics; see outbox.ts), and the
 * drain on stop. A source reads, decides when to stop reading (`room()`), and
 * says what a completed event means; nothing else.
 *
 * Messages no position depends on (`#info`) travel with a `null` ticket.
 */
export class PipelineCore<K extends CoreTicket> {
  readonly #o: PipelineCoreOptions<K>;
  readonly #outbox: Outbox<K | null>;
  #progressScheduled = false;

  constructor(opts: PipelineCoreOptions<K>) {
    this.#o = opts;
    opts.sink.onConfirmed((ticket) => this.#confirmed(ticket as K | null));
    const stages = opts.stages;
    this.#outbox = new Outbox<K | null>({
      sink: opts.sink as MessageSink<K | null>,
      source: opts.source,
      enricher: stages.enricher,
      enrich: stages.enrich ?? false,
      keepService: stages.keepService,
      deadlineMs: stages.deadlineMs ?? 1000,
      osprey: stages.osprey,
      topicFor: stages.topicFor,
      headers: stages.headers ?? true,
      compress: stages.compress,
      positionHeader: opts.positionHeader,
      onDropped: (ticket) => this.#confirmed(ticket),
      logger: opts.logger.child({ component: 'enrich' }),
    });
  }

  /** Messages handed on and not confirmed: waiting for an identity or for Kafka. */
  get inFlight(): number {
    return this.#o.sink.inFlight + this.#outbox.parked;
  }

  get inFlightBytes(): number {
    return this.#o.sink.inFlightBytes + this.#outbox.parkedBytes;
  }

  /** Another message may be handed on. */
  room(): boolean {
    return this.inFlight < this.#o.maxInFlight && this.inFlightBytes < this.#o.maxInFlightBytes;
  }

  /** One message of the event of `ticket` (null: no position depends on it); `seq` is its upstream position, for headers. */
  send(ticket: K | null, did: string, seq: number | undefined, time: string, message: OutMessage): void {
    if (ticket !== null) ticket.pending++;
    this.#outbox.send(did, seq, time, message, ticket);
  }

  /** The event of `ticket` has no more messages. */
  seal(ticket: K): void {
    this.#o.tracker.seal(ticket);
    if (ticket.pending === 0) this.#eventDone(ticket);
  }

  /** Stopped reading: resolves once every message handed on is past the stages and confirmed by Kafka. */
  async drain(): Promise<void> {
    await this.#outbox.idle();
    this.#outbox.close();
    this.#o.logger.info({ inFlight: this.#o.sink.inFlight }, 'draining Kafka');
    await this.#o.sink.flush();
  }

  #confirmed(ticket: K | null): void {
    if (ticket !== null) {
      this.#o.tracker.confirm(ticket);
      if (ticket.pending === 0 && ticket.sealed) this.#eventDone(ticket);
    }
    // Outside the sink's confirmation loop (and the outbox's send, for dropped messages).
    if (this.#progressScheduled) return;
    this.#progressScheduled = true;
    queueMicrotask(() => {
      this.#progressScheduled = false;
      this.#o.onProgress();
    });
  }

  #eventDone(ticket: K): void {
    const ms = performance.now() - ticket.receivedAt;
    metrics.eventConfirmed(ms / 1000);
    this.#o.onEventConfirmed?.(ms);
  }
}
