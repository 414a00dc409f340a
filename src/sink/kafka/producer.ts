import Kafka from '@confluentinc/kafka-javascript';
import type { DeliveryReport, LibrdKafkaError, Producer } from '@confluentinc/kafka-javascript';

import type { Logger } from '../../telemetry/logger.ts';
import * as metrics from '../../telemetry/metrics.ts';
import { producerConfig } from './config.ts';
import { KafkaFatalError, KafkaSetupError } from './errors.ts';
import { ensureTopic } from './topic.ts';
import type { KafkaSinkOptions, MessageSink } from './types.ts';

/** Rides along with each message to its delivery report, so a failure can be produced again. */
interface Pending {
  key: string;
  value: Buffer;
  token: unknown;
}

const CONNECT_TIMEOUT_MS = 60_000;

/**
 * The Kafka sink on librdkafka. Delivery reports are polled on librdkafka's
 * own thread; a failed delivery is logged, counted and produced again, so
 * the only way a message leaves this sink is confirmed by the broker.
 */
export class KafkaSink implements MessageSink {
  #confirmed: (token: unknown) => void = () => {};
  readonly #producer: Producer;
  readonly #topic: string;
  readonly #log: Logger;
  #inFlight = 0;
  #drained: (() => void)[] = [];
  #lastErrorLog = 0;
  #fatal: ((err: KafkaFatalError) => void) | undefined;

  private constructor(producer: Producer, topic: string, log: Logger) {
    this.#producer = producer;
    this.#topic = topic;
    this.#log = log;
  }

  static async create(opts: KafkaSinkOptions, log: Logger, queueMessages: number): Promise<KafkaSink> {
    const producer = new Kafka.Producer(producerConfig(opts, queueMessages));
    await connect(producer, opts, log);
    const sink = new KafkaSink(producer, opts.topic, log);
    metrics.kafkaInFlightFrom(() => sink.inFlight);
    producer.on('delivery-report', (err, report) => sink.#onDelivery(err, report));
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

  /** Called once if the producer can no longer deliver; the process should stop. */
  onFatal(handler: (err: KafkaFatalError) => void): void {
    this.#fatal = handler;
  }

  onConfirmed(handler: (token: unknown) => void): void {
    this.#confirmed = handler;
  }

  send(key: string, value: string, token: unknown): void {
    this.#inFlight++;
    this.#produce({ key, value: Buffer.from(value), token });
  }

  #produce(pending: Pending): void {
    try {
      this.#producer.produce(this.#topic, null, pending.value, pending.key, null, pending);
    } catch (err) {
      // Local queue full or a transient local error: try again shortly, never drop.
      this.#logError(err as Error, 'produce refused locally, retrying');
      setTimeout(() => this.#produce(pending), 50);
    }
  }

  #onDelivery(err: LibrdKafkaError | null | undefined, report: DeliveryReport): void {
    const pending = report.opaque as Pending;
    if (err) {
      metrics.deliveryFailed();
      this.#logError(err, 'delivery failed, producing again');
      setTimeout(() => this.#produce(pending), 100);
      return;
    }
    this.#inFlight--;
    metrics.messagesDelivered(1);
    this.#confirmed(pending.token);
    if (this.#inFlight === 0) {
      const waiting = this.#drained;
      this.#drained = [];
      for (const resolve of waiting) resolve();
    }
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
