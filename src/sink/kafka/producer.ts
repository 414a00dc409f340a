import Kafka from '@confluentinc/kafka-javascript';
import type { DeliveryReport, LibrdKafkaError, Producer } from '@confluentinc/kafka-javascript';

import type { Logger } from '../../telemetry/logger.ts';
import * as metrics from '../../telemetry/metrics.ts';
import { producerConfig } from './config.ts';
import { KafkaFatalError, KafkaSetupError } from './errors.ts';
import { ensureTopic } from './topic.ts';
import type { KafkaSinkOptions, MessageSink } from './types.ts';

/** A message the sink holds because it cannot be produced yet (a flush is running, or it failed). */
interface Held {
  key: string | Buffer;
  value: string | Uint8Array;
  token: unknown;
}

const CONNECT_TIMEOUT_MS = 60_000;
/** One flush call's bound; a flush that times out is simply called again. */
const FLUSH_TIMEOUT_MS = 5_000;
const ERR_TIMED_OUT = -185;
/** A re-produced message has no token of its own: the original's stays in its carried epoch. */
const NO_TOKEN = Symbol('re-produced');

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
 */
export class KafkaSink implements MessageSink {
  #confirmed: (token: unknown) => void = () => {};
  readonly #producer: Producer;
  readonly #topic: string;
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
  #closed = false;
  #drained: (() => void)[] = [];
  #lastErrorLog = 0;
  #fatal: ((err: KafkaFatalError) => void) | undefined;

  private constructor(producer: Producer, topic: string, lingerMs: number, log: Logger) {
    this.#producer = producer;
    this.#topic = topic;
    this.#lingerMs = lingerMs;
    this.#log = log;
  }

  static async create(opts: KafkaSinkOptions, log: Logger, queueMessages: number): Promise<KafkaSink> {
    const producer = new Kafka.Producer(producerConfig(opts, queueMessages));
    await connect(producer, opts, log);
    const sink = new KafkaSink(producer, opts.topic, opts.lingerMs, log);
    metrics.kafkaInFlightFrom(() => sink.inFlight);
    metrics.kafkaInFlightBytesFrom(() => sink.inFlightBytes);
    producer.on('delivery-report', (err, report) => sink.#onFailedDelivery(err, report));
    producer.on('event.error', (err) => sink.#onError(err));
    producer.setPollInBackground(true);

    const admin = Kafka.AdminClient.createFrom(producer);
    try {
      const result = await ensureTopic(admin, opts.topic, opts.partitions, opts.replicationFactor, opts.maxMessageBytes);
      log.info({ topic: opts.topic, partitions: opts.partitions, result }, result === 'created' ? 'created topic' : 'topic exists');
    } catch (err) {
      await sink.close();
      throw err;
    } finally {
      admin.disconnect();
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

  send(key: string, value: string | Uint8Array, token: unknown): void {
    this.#inFlight++;
    this.#inFlightBytes += value.length;
    if (this.#flushing) {
      this.#hold(key, value, token);
      return;
    }
    if (this.#produce(key, value, token) && this.#epoch.length === 1) this.#scheduleFlush(this.#lingerMs);
  }

  /** Produces into the current epoch; a message librdkafka refuses is held for the next one. */
  #produce(key: string | Buffer, value: string | Uint8Array, token: unknown): boolean {
    try {
      this.#producer.produce(this.#topic, null, typeof value === 'string' ? Buffer.from(value) : (value as Buffer), key, null);
    } catch (err) {
      // Local queue full or a transient local error: never dropped.
      this.#logError(err as Error, 'produce refused locally, retrying');
      this.#hold(key, value, token);
      this.#scheduleFlush(50);
      return false;
    }
    if (token !== NO_TOKEN) {
      this.#epoch.push(token);
      this.#epochBytes += value.length;
    }
    return true;
  }

  #hold(key: string | Buffer, value: string | Uint8Array, token: unknown): void {
    if (this.#held.length === 0) this.#heldSince = performance.now();
    this.#held.push({ key, value, token });
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
      for (const token of epoch) this.#confirmed(token);
    }
    // else the epoch stays open: its failed messages are among the held ones.
    this.#failuresInWindow = 0;
    this.#flushing = false;
    const held = this.#held;
    const since = this.#heldSince;
    this.#held = [];
    for (const m of held) this.#produce(m.key, m.value, m.token);
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
    this.#failuresInWindow++;
    metrics.deliveryFailed();
    this.#logError(err, 'delivery failed, producing again');
    // The token stays in its (now carried) epoch; the message goes again, tokenless.
    this.#hold(report.key ?? '', report.value ?? Buffer.alloc(0), NO_TOKEN);
    this.#scheduleFlush(100);
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

  #logError(err: { message: string }, msg: string): void {
    const now = Date.now();
    if (now - this.#lastErrorLog < 5_000) return;
    this.#lastErrorLog = now;
    this.#log.warn({ err: err.message, inFlight: this.#inFlight }, msg);
  }

  flush(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#flushTimer);
    return new Promise((resolve) => {
      if (!this.#producer.isConnected()) return resolve();
      this.#producer.disconnect(5_000, () => resolve());
    });
  }
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
