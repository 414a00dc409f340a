import Kafka from '@confluentinc/kafka-javascript';
import type { DeliveryReport, IAdminClient, LibrdKafkaError, Metadata, Producer } from '@confluentinc/kafka-javascript';

import type { Logger } from '../../telemetry/logger.ts';
import * as metrics from '../../telemetry/metrics.ts';
import { producerConfig } from './config.ts';
import { KafkaFatalError, KafkaSetupError } from './errors.ts';
import { ensureTopic, isRetriableCreateError, isValidTopic, requestTopic, type TopicSpec } from './topic.ts';
import type { KafkaSinkOptions, MessageHeader, MessageSink, SendExtra } from './types.ts';

/** A message the sink holds because it cannot be produced yet (a flush is running, it failed, or its topic is being created). */
interface Held {
  topic: string;
  key: string | Buffer;
  value: string | Uint8Array;
  token: unknown;
  headers: MessageHeader[] | undefined;
}

/** A routed topic being created: its messages wait here, in send order (counted in flight). */
interface Creating {
  waiting: Held[];
  attempts: number;
  since: number;
  timer: NodeJS.Timeout | undefined;
}
const READY = 1;

/**
 * The messages produced in one window (from its first produce to the end of its flush
 * handling), 4 slots each: topic, key, value, headers. A failure report carries the topic,
 * key and value but not the headers; this is where they are found again.
 */
interface Journal {
  entries: unknown[];
  /** False for the window in which headers first came: its earlier messages are not here (they had none). */
  complete: boolean;
  /** topic + NUL + key -> positions in entries, built on the first failure. */
  index: Map<string, { at: number[]; head: number }> | undefined;
  indexed: number;
}
const MATCHED = Symbol('matched');
const MISSING = Symbol('missing');

const CONNECT_TIMEOUT_MS = 60_000;
const PROBE_INTERVAL_MS = 5_000;
const PROBE_TIMEOUT_MS = 4_000;
const UNREACHABLE_AFTER_MS = 12_000;
const STUCK_FLUSH_MS = 10_000;
/** How long a topic's partitions may take to take writes (topicReady) before messages go anyway. */
const TOPIC_READY_TIMEOUT_MS = 30_000;

/** One flush call's bound; a flush that times out is simply called again. */
const FLUSH_TIMEOUT_MS = 5_000;
const ERR_TIMED_OUT = -185;
/** A re-produced message has no token of its own: the original's stays in its carried epoch. */
const NO_TOKEN = Symbol('re-produced');
/** Distinct routed topics at most (a bound on the map, and on a template gone wild). */
const MAX_TOPICS = 10_000;
const CREATE_BACKOFF_MIN_MS = 200;
const CREATE_BACKOFF_MAX_MS = 10_000;

/**
 * The Kafka sink on librdkafka, confirming by *flush epochs* instead of a
 * delivery report per message.
 *
 * A per-message report costs the JS thread ~4 us (the binding builds an
 * object, copies the key into a new Buffer and holds the opaque in a
 * persistent handle), a fifth of the budget at 50k messages/s. Instead,
 * messages are produced in epochs: an epoch's messages are produced, then
 * `flush()` waits (on libuv's thread pool) until librdkafka holds no
 * message at all, i.e. until the broker acknowledged every one, and then the
 * whole epoch is confirmed. Messages arriving during a flush wait in `#held`
 * and form the next epoch (producing them would keep the flush from ever
 * ending). An epoch starts its flush `lingerMs` after its first message, so
 * batches stay as large as with librdkafka's own linger.
 *
 * Failures: librdkafka retries by itself forever (`message.timeout.ms=0`);
 * it reports only permanent failures (`delivery.report.only.error`), with the
 * message, which is then produced again in the next epoch. An epoch during
 * whose window any failure arrived is not confirmed but carried into the
 * next, so no token is ever confirmed for a message Kafka does not hold
 * (docs/invariants.md, rule 2, explains why a failure always arrives inside
 * the window of its epoch or a later one).
 *
 * Headers and routing (`send(..., extra)`): a message without `extra` takes the same path as
 * before. A routed topic not seen before is created (like the default one) while its messages
 * wait, in order, then they go as if just sent. Once any message had headers, every produced
 * message is also written to the window's journal, so that a failed one is produced again
 * with its headers (the failure report does not carry them); journals live until no report
 * for their messages can still come. A journal holds references to the values, so while
 * Kafka does not answer the JS heap keeps up to the in-flight bytes a second time (librdkafka
 * holds its own copy). Headers cost the JS thread ~0.8 us each in the binding's produce()
 * (bench/micro/sink-headers.ts), whatever their form.
 */
export class KafkaSink implements MessageSink {
  #confirmed: (token: unknown) => void = () => {};
  readonly #producer: Producer;
  readonly #admin: IAdminClient;
  readonly #spec: TopicSpec;
  readonly #topic: string;
  /** Routed topics (never the default one): ready, or being created. */
  readonly #topics = new Map<string, Creating | typeof READY>();
  /** Undefined until the first message with headers. */
  #journal: Journal | undefined;
  /** Journals of ended windows with failures, oldest first: reports past the binding's 100 per pass may still come. */
  #retired: Journal[] = [];
  /** Failure reports received, ever. */
  #reports = 0;
  #drainMark = -1;
  #watchingDrain = false;
  #lastCreateLog = 0;
  #dead = false;
  readonly #lingerMs: number;
  readonly #log: Logger;
  #inFlight = 0;
  #inFlightBytes = 0;
  /** Tokens of the messages produced in the current epoch (and carried ones). */
  #epoch: unknown[] = [];
  /** Their value bytes. */
  #epochBytes = 0;
  /** Arrived while a flush ran, or failed and must be produced again. */
  #held: Held[] = [];
  #heldSince = 0;
  #flushing = false;
  #flushTimer: NodeJS.Timeout | undefined;
  #failuresInWindow = 0;
  #flushStartedAt = 0;
  #epochStartedAt = 0;
  /** When a broker last answered: a confirmed epoch or a metadata probe (readiness). */
  #brokerAnsweredAt = Date.now();
  #probeTimer: NodeJS.Timeout | undefined;
  #probing = false;
  #closed = false;
  #drained: (() => void)[] = [];
  #lastErrorLog = 0;
  #fatal: ((err: KafkaFatalError) => void) | undefined;

  private constructor(producer: Producer, admin: IAdminClient, opts: KafkaSinkOptions, log: Logger) {
    this.#producer = producer;
    this.#admin = admin;
    this.#spec = { partitions: opts.partitions, replicationFactor: opts.replicationFactor, maxMessageBytes: opts.maxMessageBytes };
    this.#topic = opts.topic;
    this.#lingerMs = opts.lingerMs;
    this.#log = log;
  }

  static async create(opts: KafkaSinkOptions, log: Logger, queueMessages: number): Promise<KafkaSink> {
    const producer = new Kafka.Producer(producerConfig(opts, queueMessages));
    await connect(producer, opts, log);
    // Shares the producer's handle (no connection of its own); kept for topics routed later.
    const admin = Kafka.AdminClient.createFrom(producer);
    const sink = new KafkaSink(producer, admin, opts, log);
    metrics.kafkaInFlightFrom(() => sink.inFlight);
    metrics.kafkaInFlightBytesFrom(() => sink.inFlightBytes);
    producer.on('delivery-report', (err, report) => sink.#onFailedDelivery(err, report));
    producer.on('event.error', (err) => sink.#onError(err));
    // --kafka-option debug=...: librdkafka's own log lines, which it would otherwise keep to itself.
    if (opts.extra.debug !== undefined) {
      const rdLog = log.child({ component: 'librdkafka' });
      producer.on('event.log', (e: { fac: string; message: string; severity: number }) => rdLog.info({ fac: e.fac, severity: e.severity }, e.message));
    }
    producer.setPollInBackground(true);
    sink.#probeTimer = setInterval(() => sink.#probe(), PROBE_INTERVAL_MS);
    sink.#probeTimer.unref();

    try {
      const result = await ensureTopic(admin, opts.topic, opts.partitions, opts.replicationFactor, opts.maxMessageBytes);
      const leaders = await topicReady(producer, opts.topic, TOPIC_READY_TIMEOUT_MS, result === 'created');
      log.info({ topic: opts.topic, partitions: opts.partitions, result, ready: leaders }, result === 'created' ? 'created topic' : 'topic exists');
    } catch (err) {
      await sink.close();
      throw err;
    }
    return sink;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get inFlightBytes(): number {
    return this.#inFlightBytes;
  }

  /** Called once if the producer can no longer deliver; the process should stop. */
  onFatal(handler: (err: KafkaFatalError) => void): void {
    this.#fatal = handler;
  }

  onConfirmed(handler: (token: unknown) => void): void {
    this.#confirmed = handler;
  }

  send(key: string, value: string | Uint8Array, token: unknown, extra?: SendExtra): void {
    if (extra !== undefined) {
      this.#sendExtra(key, value, token, extra);
      return;
    }
    this.#inFlight++;
    this.#inFlightBytes += value.length;
    if (this.#flushing) {
      this.#hold(this.#topic, key, value, token, undefined);
      return;
    }
    if (this.#produce(this.#topic, key, value, token, undefined) && this.#epoch.length === 1) this.#scheduleFlush(this.#lingerMs);
  }

  #sendExtra(key: string, value: string | Uint8Array, token: unknown, extra: SendExtra): void {
    const topic = extra.topic ?? this.#topic;
    const headers = extra.headers !== undefined && extra.headers.length > 0 ? extra.headers : undefined;
    if (headers !== undefined && this.#journal === undefined) this.#journal = newJournal(false);
    if (topic !== this.#topic) {
      const state = this.#topics.get(topic) ?? this.#newTopic(topic);
      if (state !== READY) {
        this.#inFlight++;
        this.#inFlightBytes += value.length;
        // Undefined: refused (too many topics), the process is stopping; in flight, never confirmed.
        state?.waiting.push({ topic, key, value, token, headers });
        return;
      }
    }
    this.#inFlight++;
    this.#inFlightBytes += value.length;
    if (this.#flushing) {
      this.#hold(topic, key, value, token, headers);
      return;
    }
    if (this.#produce(topic, key, value, token, headers) && this.#epoch.length === 1) this.#scheduleFlush(this.#lingerMs);
  }

  /** Produces into the current epoch; a message librdkafka refuses is held for the next one. */
  #produce(topic: string, key: string | Buffer, value: string | Uint8Array, token: unknown, headers: MessageHeader[] | undefined): boolean {
    try {
      const bytes = typeof value === 'string' ? Buffer.from(value) : (value as Buffer);
      // No opaque: the binding would keep a persistent handle that, with reports only for errors, is never freed.
      if (headers === undefined) this.#producer.produce(topic, null, bytes, key, null);
      else this.#producer.produce(topic, null, bytes, key, null, undefined, headers);
    } catch (err) {
      // Local queue full or a transient local error: never dropped.
      this.#logError(err as Error, 'produce refused locally, retrying');
      this.#hold(topic, key, value, token, headers);
      this.#scheduleFlush(50);
      return false;
    }
    this.#journal?.entries.push(topic, key, value, headers);
    if (token !== NO_TOKEN) {
      if (this.#epoch.length === 0) this.#epochStartedAt = performance.now();
      this.#epoch.push(token);
      this.#epochBytes += value.length;
    }
    return true;
  }

  #hold(topic: string, key: string | Buffer, value: string | Uint8Array, token: unknown, headers: MessageHeader[] | undefined): void {
    if (this.#held.length === 0) this.#heldSince = performance.now();
    this.#held.push({ topic, key, value, token, headers });
  }

  /** The first message for a routed topic: check the name, then create the topic while its messages wait. */
  #newTopic(topic: string): Creating | undefined {
    if (!isValidTopic(topic)) {
      // A bug in the caller (sanitizeTopic makes any string valid), not bad input.
      throw new Error(`KafkaSink.send: invalid topic name ${JSON.stringify(topic)}: 1-249 of [a-zA-Z0-9._-], not '.' or '..' (see sanitizeTopic)`);
    }
    if (this.#topics.size >= MAX_TOPICS) {
      this.#die(
        new KafkaFatalError(
          `refusing to route to more than ${MAX_TOPICS} distinct topics (the latest being "${topic}"): the topic template fans out too much`,
        ),
      );
      return undefined;
    }
    const state: Creating = { waiting: [], attempts: 0, since: Date.now(), timer: undefined };
    this.#topics.set(topic, state);
    this.#createTopic(topic, state);
    return state;
  }

  #createTopic(topic: string, state: Creating): void {
    if (this.#closed) return;
    requestTopic(this.#admin, topic, this.#spec).then(
      (result) => this.#topicCreated(topic, state, result),
      (err: Error) => this.#topicCreated(topic, state, { code: -196, message: err.message } as LibrdKafkaError),
    );
  }

  #topicCreated(topic: string, state: Creating, result: 'created' | 'exists' | LibrdKafkaError): void {
    if (this.#closed) return;
    if (typeof result === 'string') {
      void topicReady(this.#producer, topic, TOPIC_READY_TIMEOUT_MS, result === 'created').then((leaders) => {
        if (this.#closed) return;
        this.#topics.set(topic, READY);
        this.#log.info(
          { topic, partitions: this.#spec.partitions, result, ready: leaders, waited: state.waiting.length, ms: Date.now() - state.since },
          result === 'created' ? 'created topic' : 'topic exists',
        );
        this.#release(state.waiting);
      });
      return;
    }
    if (isRetriableCreateError(result)) {
      state.attempts++;
      const now = Date.now();
      if (now - this.#lastCreateLog >= 10_000) {
        this.#lastCreateLog = now;
        this.#log.warn(
          { topic, err: result.message, code: result.code, attempts: state.attempts, waiting: state.waiting.length, inFlight: this.#inFlight },
          'cannot create topic yet, retrying (its messages wait)',
        );
      }
      const delay = Math.min(CREATE_BACKOFF_MAX_MS, CREATE_BACKOFF_MIN_MS * 2 ** (state.attempts - 1));
      state.timer = setTimeout(() => {
        state.timer = undefined;
        this.#createTopic(topic, state);
      }, delay);
      return;
    }
    // Its messages stay waiting, in flight: the cursor never passes them.
    this.#die(
      new KafkaFatalError(`cannot create topic "${topic}" (routed, created on first use): ${result.message} (Kafka error ${result.code}, not retriable)`, {
        cause: result,
      }),
    );
  }

  /** A routed topic exists now: its messages go, in order, as if just sent. */
  #release(waiting: Held[]): void {
    let i = 0;
    if (!this.#flushing) {
      for (; i < waiting.length; i++) {
        const m = waiting[i]!;
        // Refused locally (and held): the rest waits behind it.
        if (!this.#produce(m.topic, m.key, m.value, m.token, m.headers)) {
          i++;
          break;
        }
      }
      // They have waited already.
      if (this.#epoch.length > 0) this.#scheduleFlush(0);
    }
    for (; i < waiting.length; i++) {
      const m = waiting[i]!;
      this.#hold(m.topic, m.key, m.value, m.token, m.headers);
    }
  }

  #scheduleFlush(ms: number): void {
    if (this.#flushTimer !== undefined || this.#flushing || this.#closed) return;
    this.#flushTimer = setTimeout(() => this.#startFlush(), ms);
  }

  #startFlush(): void {
    this.#flushTimer = undefined;
    if (this.#flushing) return;
    this.#flushing = true;
    this.#flushStartedAt = Date.now();
    this.#callFlush();
  }

  #callFlush(): void {
    try {
      this.#producer.flush(FLUSH_TIMEOUT_MS, (err) => {
        if (err && err.code === ERR_TIMED_OUT) {
          // Kafka is slow or down: keep waiting (the pipeline pauses at its cap meanwhile).
          this.#logError({ message: `no confirmation for ${Math.round((Date.now() - this.#flushStartedAt) / 1000)} s` }, 'waiting for Kafka');
          this.#callFlush();
          return;
        }
        if (err) {
          // Only a disconnected producer fails a flush: nothing is confirmed.
          this.#log.warn({ err: err.message }, 'flush failed');
          return;
        }
        // Failure reports queued before the flush ended are dispatched in this same
        // pass of the event loop; setImmediate runs after all of them.
        setImmediate(() => this.#endEpoch());
      });
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'flush failed');
    }
  }

  #endEpoch(): void {
    const failed = this.#failuresInWindow > 0;
    if (!failed) {
      const epoch = this.#epoch;
      this.#epoch = [];
      // Counted down first: the handlers look at inFlight to resume reading.
      this.#inFlight -= epoch.length;
      this.#inFlightBytes -= this.#epochBytes;
      this.#epochBytes = 0;
      metrics.messagesDelivered(epoch.length);
      if (epoch.length > 0) metrics.kafkaEpochConfirmed(performance.now() - this.#epochStartedAt);
      this.#brokerAnsweredAt = Date.now();
      for (const token of epoch) this.#confirmed(token);
    }
    // else the epoch stays open: its failed messages are among the held ones.
    this.#failuresInWindow = 0;
    this.#flushing = false;
    const journal = this.#journal;
    if (journal !== undefined) {
      // A window without failures has no report to come: all of them would have come by now.
      if (failed) this.#retire(journal);
      this.#journal = newJournal(true);
    }
    const held = this.#held;
    const since = this.#heldSince;
    this.#held = [];
    for (const m of held) this.#produce(m.topic, m.key, m.value, m.token, m.headers);
    if (this.#epoch.length > 0 || failed) {
      // Held messages have lingered already; a failure is retried after a pause, not in a hot loop.
      this.#scheduleFlush(failed ? 100 : Math.max(0, this.#lingerMs - (performance.now() - since)));
    }
    if (this.#inFlight === 0) {
      const drained = this.#drained;
      this.#drained = [];
      for (const resolve of drained) resolve();
    }
  }

  /** With delivery.report.only.error, librdkafka reports only messages it gave up on. */
  #onFailedDelivery(err: LibrdKafkaError | null | undefined, report: DeliveryReport): void {
    if (!err) return;
    this.#reports++;
    this.#failuresInWindow++;
    metrics.deliveryFailed();
    this.#logError(err, 'delivery failed, producing again');
    const key = report.key ?? '';
    const value = report.value ?? Buffer.alloc(0);
    let headers: MessageHeader[] | undefined;
    if (this.#journal !== undefined) {
      const found = this.#headersOf(report.topic, key, value);
      if (found === MISSING) {
        // Producing it without its headers would be wrong; stopping loses nothing (its epoch is carried).
        this.#die(new KafkaFatalError(`internal error: a failed message to ${report.topic} cannot be produced again, its headers are lost`));
        return;
      }
      headers = found;
    }
    // The token stays in its (now carried) epoch; the message goes again, tokenless.
    this.#hold(report.topic, key, value, NO_TOKEN, headers);
    this.#scheduleFlush(100);
  }

  /**
   * The headers a failed message was produced with. The binding queues reports first in,
   * first out, and all reports of a window's messages are queued before its flush returns,
   * so they come before any report of a later window: journals are searched oldest first,
   * and a match in one retires every older one. Within a window, librdkafka reports a
   * partition's failures in produce order: the first unmatched equal message is the one.
   */
  #headersOf(topic: string, key: string | Buffer, value: Buffer | string): MessageHeader[] | undefined | typeof MISSING {
    const id = `${topic}\0${typeof key === 'string' ? key : key.toString()}`;
    const bytes = typeof value === 'string' ? Buffer.from(value) : value;
    const journals = this.#retired.length === 0 ? [this.#journal!] : [...this.#retired, this.#journal!];
    for (let g = 0; g < journals.length; g++) {
      const journal = journals[g]!;
      const candidates = indexed(journal).get(id);
      if (candidates === undefined) continue;
      const entries = journal.entries;
      while (candidates.head < candidates.at.length && entries[candidates.at[candidates.head]! + 2] === MATCHED) candidates.head++;
      for (let c = candidates.head; c < candidates.at.length; c++) {
        const at = candidates.at[c]!;
        const v = entries[at + 2] as string | Uint8Array | typeof MATCHED;
        if (v === MATCHED || !sameBytes(v, bytes)) continue;
        entries[at + 2] = MATCHED;
        if (g > 0) this.#retired.splice(0, Math.min(g, this.#retired.length));
        return entries[at + 3] as MessageHeader[] | undefined;
      }
    }
    // Not journaled: produced before the first message with headers, so it had none.
    if (journals.some((j) => !j.complete)) return undefined;
    return MISSING;
  }

  #retire(journal: Journal): void {
    this.#retired.push(journal);
    this.#drainMark = -1;
    if (!this.#watchingDrain) {
      this.#watchingDrain = true;
      setImmediate(() => this.#checkDrained());
    }
  }

  /**
   * Retired journals go once a whole event-loop pass brought no report: the binding hands
   * out 100 reports per pass and asks for another pass while it has more, so a quiet pass
   * means every report queued before (all those of retired windows) has been handled.
   */
  #checkDrained(): void {
    if (this.#retired.length === 0 || this.#closed) {
      this.#watchingDrain = false;
      return;
    }
    if (this.#drainMark === this.#reports) {
      this.#retired = [];
      this.#watchingDrain = false;
      return;
    }
    this.#drainMark = this.#reports;
    setImmediate(() => this.#checkDrained());
  }

  #onError(err: LibrdKafkaError): void {
    if (err.isFatal) {
      this.#log.fatal({ err: err.message, code: err.code }, 'Kafka producer hit a fatal error');
      this.#fatal?.(new KafkaFatalError(`Kafka producer fatal error: ${err.message}`, { cause: err }));
      this.#fatal = undefined;
      return;
    }
    // Broker down, connection refused...: librdkafka retries by itself.
    this.#logError(err, 'Kafka client error (retrying)');
  }

  /** The sink cannot go on: logged and told once (the process stops; the cursor is safe). */
  #die(err: KafkaFatalError): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#log.fatal({ err: err.message }, 'Kafka sink cannot go on');
    const fatal = this.#fatal;
    this.#fatal = undefined;
    fatal?.(err);
  }

  #logError(err: { message: string }, msg: string): void {
    const now = Date.now();
    if (now - this.#lastErrorLog < 5_000) return;
    this.#lastErrorLog = now;
    this.#log.warn({ err: err.message, inFlight: this.#inFlight }, msg);
  }

  /**
   * Whether the brokers answer: one did in the last 12 s (a confirmed epoch, or the metadata
   * request sent every 5 s), and no flush has waited 10 s for its confirmations.
   */
  get reachable(): boolean {
    if (this.#dead) return false;
    if (this.#flushing && Date.now() - this.#flushStartedAt > STUCK_FLUSH_MS) return false;
    return Date.now() - this.#brokerAnsweredAt < UNREACHABLE_AFTER_MS;
  }

  #probe(): void {
    if (this.#probing || this.#closed) return;
    this.#probing = true;
    try {
      this.#producer.getMetadata({ topic: this.#topic, timeout: PROBE_TIMEOUT_MS }, (err) => {
        this.#probing = false;
        if (!err) this.#brokerAnsweredAt = Date.now();
      });
    } catch {
      this.#probing = false;
    }
  }

  flush(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#flushTimer);
    clearInterval(this.#probeTimer);
    for (const state of this.#topics.values()) if (state !== READY) clearTimeout(state.timer);
    return new Promise((resolve) => {
      if (!this.#producer.isConnected()) return resolve();
      this.#producer.disconnect(5_000, () => resolve());
    });
  }
}

/**
 * Waits until every partition of the topic takes writes, and returns how many do (the topic is
 * used either way once `timeoutMs` has passed).
 *
 * Why, before the first message: right after a topic is created, its metadata already names a
 * leader while that broker still answers NOT_LEADER_OR_FOLLOWER for a while (seconds on a loaded
 * host). librdkafka 2.15's idempotent producer retries those batches, and in that retry it can
 * take a partition's first message as delivered though Kafka never wrote it: seen here as a
 * partition whose log starts at sequence 1, with no error reported and the flush returning clean
 * (docs/invariants.md, rule 2). A partition answers ListOffsets only once its leader is really
 * leading, so one answer from each says the first batches will not meet that window.
 */
export async function topicReady(producer: Producer, topic: string, timeoutMs: number, created: boolean): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const pause = () => new Promise((r) => setTimeout(r, 100));
  let partitions: number[] = [];
  while (partitions.length === 0 && Date.now() < deadline) {
    const md = await new Promise<Metadata | undefined>((resolve) => {
      try {
        producer.getMetadata({ topic, timeout: 5_000 }, (err, data) => resolve(err ? undefined : data));
      } catch {
        resolve(undefined);
      }
    });
    const found = md?.topics.find((t) => t.name === topic)?.partitions ?? [];
    if (found.length > 0 && found.every((p) => p.leader >= 0)) partitions = found.map((p) => p.id);
    else await pause();
  }
  // A topic found existing has long had its leaders (a round trip per partition would slow every
  // start against a distant cluster): its metadata is enough.
  if (!created) return partitions.length;
  let ready = 0;
  const queue = [...partitions];
  // A few at a time: each query holds a libuv thread until its broker answers.
  const worker = async () => {
    for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
      for (;;) {
        const ok = await new Promise<boolean>((resolve) => {
          try {
            producer.queryWatermarkOffsets(topic, p, 5_000, (err) => resolve(!err));
          } catch {
            resolve(false);
          }
        });
        if (ok) {
          ready++;
          break;
        }
        if (Date.now() >= deadline) return;
        await pause();
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return ready;
}

function connect(producer: Producer, opts: KafkaSinkOptions, log: Logger): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const attempt = () => {
      producer.connect({ timeout: 10_000 }, (err) => {
        if (!err) return resolve();
        if (Date.now() - started > CONNECT_TIMEOUT_MS) {
          reject(new KafkaSetupError(`cannot reach Kafka at ${opts.bootstrapServers.join(',')}: ${err.message}`, { cause: err }));
          return;
        }
        log.warn({ err: err.message, bootstrapServers: opts.bootstrapServers }, 'Kafka not reachable yet, retrying');
        setTimeout(attempt, 2_000);
      });
    };
    attempt();
  });
}

function newJournal(complete: boolean): Journal {
  return { entries: [], complete, index: undefined, indexed: 0 };
}

/** The journal's index, brought up to date (the current window's journal keeps growing). */
function indexed(journal: Journal): Map<string, { at: number[]; head: number }> {
  const index = (journal.index ??= new Map());
  const entries = journal.entries;
  for (let at = journal.indexed; at < entries.length; at += 4) {
    const key = entries[at + 1] as string | Buffer;
    // As the report will carry it: UTF-8 bytes, decoded.
    const id = `${entries[at] as string}\0${typeof key === 'string' ? Buffer.from(key).toString() : key.toString()}`;
    let candidates = index.get(id);
    if (candidates === undefined) index.set(id, (candidates = { at: [], head: 0 }));
    candidates.at.push(at);
  }
  journal.indexed = entries.length;
  return index;
}

function sameBytes(value: string | Uint8Array, bytes: Buffer): boolean {
  if (typeof value === 'string') return Buffer.byteLength(value) === bytes.length && bytes.equals(Buffer.from(value));
  return value.byteLength === bytes.length && bytes.equals(value);
}
