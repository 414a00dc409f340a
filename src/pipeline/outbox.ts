import type { Enricher, EventMetadata } from '../enrich/index.ts';
import { metadataJson } from '../enrich/index.ts';
import { UNKNOWN_KEY } from '../format/atkafka.ts';
import { withMetadata } from '../format/metadata.ts';
import { COMPRESSED_HEADERS, type JetstreamCompressor } from '../format/jetstream-compress.ts';
import { ospreyEnvelope } from '../format/osprey.ts';
import type { Snowflake } from '../format/snowflake.ts';
import type { MessageHeader, MessageSink } from '../sink/kafka/types.ts';
import type { Logger } from '../telemetry/logger.ts';
import * as metrics from '../telemetry/metrics.ts';

/** One Kafka message of an upstream event, as a source's decoder formatted it (at-kafka JSON). */
export interface OutMessage {
  value: string | Uint8Array;
  /** `operation#create|update|delete`, `identity`, `account`, `sync`, `info` (also the Osprey action name). */
  action: string;
  /** The record's NSID; '' for events that are not record ops. */
  collection: string;
  /**
   * The `kind` header and `{kind}` of topic templates, for sources whose events are not firehose events
   * (Ozone: `moderation`); then `action` and `collection` (when not '') are headers too. Default:
   * `commit` for record ops, else the action.
   */
  kind?: string;
  /** Already one zstd frame with Jetstream's dictionary (as Jetstream sent it): not compressed again. */
  compressed?: boolean;
}

export interface OutboxOptions<T> {
  sink: MessageSink<T>;
  /** `relay`, `tap`, ...: a header on every message and `{source}` in topic templates. */
  source: string;
  /** Resolves identities; needed for enrichment and for the service filter. */
  enricher: Enricher | undefined;
  /** Write eventMetadata into messages (with an enricher). */
  enrich: boolean;
  /** Produce events of accounts on this PDS hostname ('' = unknown)? Undefined: no service filter. */
  keepService: ((hostname: string) => boolean) | undefined;
  /** How long a message may wait for its identity before it goes without metadata. */
  deadlineMs: number;
  /** Wrap messages in Osprey's envelope, with ids from here. */
  osprey: Snowflake | undefined;
  /** Kafka headers (kind, collection, action, seq, source) on every message. */
  headers: boolean;
  /** Each message becomes one zstd frame with Jetstream's dictionary (`--jetstream-compress`), said in two headers. */
  compress?: JetstreamCompressor;
  /** The name of the header with the upstream position (`seq`; Ozone: `id`, its event id). */
  positionHeader?: string;
  /** The topic of each message; undefined: the sink's default topic. */
  topicFor: ((kind: string, collection: string) => string) | undefined;
  /** A message that will not be produced (a filter left it out): its token is done as if Kafka confirmed it. */
  onDropped: (token: T) => void;
  logger: Logger;
}

interface Parked<T> {
  seq: number | undefined;
  time: string;
  message: OutMessage;
  token: T;
}

/** The messages of one DID that wait for its identity, in arrival order. */
interface Queue<T> {
  did: string;
  items: Parked<T>[];
  deadline: number;
  done: boolean;
}

const OP_PREFIX = 'operation#';

/**
 * The shared stages between a source's decoder and Kafka: service filter,
 * enrichment, envelope, headers, topic. Source-agnostic: a source hands over
 * formatted messages with a token, and gets each token back through the sink's
 * confirmation (or `onDropped` when a filter leaves it out).
 *
 * A message whose identity is not cached waits here (parked) while the lookup
 * runs, but never longer than the deadline; then it goes without metadata.
 * Per-DID order holds end to end: once one message of a DID waits, every
 * later message of that DID queues behind it, whatever is cached by then.
 * Parked messages count toward the caller's in-flight bound (`parked`,
 * `parkedBytes`), so a slow PLC pauses reading like a slow Kafka does.
 */
export class Outbox<T> {
  readonly #o: OutboxOptions<T>;
  readonly #queues = new Map<string, Queue<T>>();
  /** Queues by deadline (= creation order, the deadline being the same for all). */
  #timeline: Queue<T>[] = [];
  #timelineHead = 0;
  #timer: NodeJS.Timeout | undefined;
  #parked = 0;
  #parkedBytes = 0;
  #idle: (() => void)[] = [];
  readonly #needsIdentity: boolean;
  #lastTimeoutLog = 0;
  #timeoutsSinceLog = 0;

  /** The position header; a literal key for the usual name keeps the hot path's objects fast. */
  readonly #position: (value: string) => MessageHeader;

  constructor(opts: OutboxOptions<T>) {
    this.#o = opts;
    const name = opts.positionHeader ?? 'seq';
    this.#position = name === 'seq' ? (value) => ({ seq: value }) : (value) => ({ [name]: value });
    this.#needsIdentity = opts.enricher !== undefined && (opts.enrich || opts.keepService !== undefined);
  }

  get parked(): number {
    return this.#parked;
  }

  get parkedBytes(): number {
    return this.#parkedBytes;
  }

  /** Hands one message on; `seq` is the upstream position when it has one (a header). */
  send(did: string, seq: number | undefined, time: string, message: OutMessage, token: T): void {
    if (!this.#needsIdentity || did === UNKNOWN_KEY) {
      this.#emit(did, seq, time, message, token, null);
      return;
    }
    const enricher = this.#o.enricher!;
    // What the event itself says changed is not served from the cache.
    if (message.action === 'identity' || message.action === 'account') {
      enricher.purgeIdentity(did);
      // The profile view holds the handle too.
      if (message.action === 'identity') enricher.dropProfile(did);
    }
    else if (message.collection === 'app.bsky.actor.profile') enricher.dropProfile(did);

    const waiting = this.#queues.get(did);
    if (waiting !== undefined) {
      this.#park(waiting, seq, time, message, token);
      return;
    }
    const meta = enricher.cached(did);
    if (meta !== undefined) {
      metrics.enriched(meta === null ? 'unresolved' : 'cached');
      this.#emit(did, seq, time, message, token, meta);
      return;
    }
    const queue: Queue<T> = { did, items: [], deadline: performance.now() + this.#o.deadlineMs, done: false };
    this.#queues.set(did, queue);
    this.#timeline.push(queue);
    this.#park(queue, seq, time, message, token);
    if (this.#timer === undefined) this.#arm();
    // Every queue of the DID awaits the same in-flight lookup (the enricher de-duplicates).
    void enricher.resolve(did).then((resolved) => {
      // The deadline may have sent these on already.
      if (queue.done) return;
      metrics.enriched(resolved === null ? 'unresolved' : 'waited', queue.items.length);
      this.#release(queue, resolved);
    });
  }

  /** Resolves once no message waits here (each waits at most the deadline). */
  idle(): Promise<void> {
    if (this.#parked === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #park(queue: Queue<T>, seq: number | undefined, time: string, message: OutMessage, token: T): void {
    queue.items.push({ seq, time, message, token });
    this.#parked++;
    this.#parkedBytes += message.value.length;
    metrics.enrichmentWaiting(this.#parked);
  }

  #release(queue: Queue<T>, meta: EventMetadata | null): void {
    queue.done = true;
    if (this.#queues.get(queue.did) === queue) this.#queues.delete(queue.did);
    const items = queue.items;
    queue.items = [];
    for (const item of items) {
      this.#parked--;
      this.#parkedBytes -= item.message.value.length;
      this.#emit(queue.did, item.seq, item.time, item.message, item.token, meta);
    }
    metrics.enrichmentWaiting(this.#parked);
    if (this.#parked === 0 && this.#idle.length > 0) {
      const idle = this.#idle;
      this.#idle = [];
      for (const resolve of idle) resolve();
    }
  }

  #arm(): void {
    while (this.#timelineHead < this.#timeline.length && this.#timeline[this.#timelineHead]!.done) this.#timelineHead++;
    if (this.#timelineHead > 1024 && this.#timelineHead * 2 > this.#timeline.length) {
      this.#timeline = this.#timeline.slice(this.#timelineHead);
      this.#timelineHead = 0;
    }
    const head = this.#timeline[this.#timelineHead];
    if (head === undefined) {
      this.#timer = undefined;
      return;
    }
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, head.deadline - performance.now()) + 1);
  }

  #expire(): void {
    const now = performance.now();
    while (this.#timelineHead < this.#timeline.length) {
      const queue = this.#timeline[this.#timelineHead]!;
      if (!queue.done) {
        if (queue.deadline > now) break;
        metrics.enriched('timeout', queue.items.length);
        this.#timedOut(queue);
        this.#release(queue, null);
      }
      this.#timelineHead++;
    }
    this.#arm();
  }

  #timedOut(queue: Queue<T>): void {
    this.#timeoutsSinceLog++;
    const now = Date.now();
    if (now - this.#lastTimeoutLog < 10_000) return;
    this.#o.logger.warn(
      { did: queue.did, messages: queue.items.length, deadlineMs: this.#o.deadlineMs, timeoutsSinceLastLog: this.#timeoutsSinceLog - 1 },
      'identity lookup too slow: producing without eventMetadata',
    );
    this.#lastTimeoutLog = now;
    this.#timeoutsSinceLog = 0;
  }

  #emit(did: string, seq: number | undefined, time: string, message: OutMessage, token: T, meta: EventMetadata | null): void {
    const o = this.#o;
    if (o.keepService !== undefined && meta !== null && !o.keepService(meta.pdsHostname)) {
      metrics.eventsFiltered('service', 1);
      o.onDropped(token);
      return;
    }
    const { action, collection } = message;
    metrics.eventHandled(action, collection);
    let value: string | Uint8Array = message.value;
    if (o.enrich && meta !== null) value = withMetadata(value, metadataJson(meta, Date.now()));
    if (o.osprey !== undefined) value = ospreyEnvelope(value, action, o.osprey.nextString(), time, new Date());
    if (o.compress !== undefined && message.compressed !== true) value = o.compress.compress(value);
    const isOp = action.startsWith(OP_PREFIX);
    const kind = isOp ? 'commit' : (message.kind ?? action);
    const topic = o.topicFor?.(kind, collection);
    if (!o.headers) {
      o.sink.send(did, value, token, topic === undefined ? undefined : { topic });
      return;
    }
    let headers: MessageHeader[];
    if (isOp) headers = [{ kind }, { collection }, { action: action.slice(OP_PREFIX.length) }, this.#position(String(seq)), { source: o.source }];
    else if (message.kind !== undefined) {
      headers = collection === '' ? [{ kind }, { action }] : [{ kind }, { collection }, { action }];
      if (seq !== undefined) headers.push(this.#position(String(seq)));
      headers.push({ source: o.source });
    } else headers = seq === undefined ? [{ kind }, { source: o.source }] : [{ kind }, this.#position(String(seq)), { source: o.source }];
    if (o.compress !== undefined) headers.push(...COMPRESSED_HEADERS);
    o.sink.send(did, value, token, { topic, headers });
  }
}
