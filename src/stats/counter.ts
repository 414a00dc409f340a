import Kafka from '@confluentinc/kafka-javascript';
import type { KafkaConsumer, LibrdKafkaError, Message, Metadata } from '@confluentinc/kafka-javascript';

import type { Logger } from '../telemetry/logger.ts';
import { labelsOf } from './labels.ts';
import type { StatsStore } from './store.ts';

export interface CounterOptions {
  bootstrapServers: string[];
  /** security.protocol, sasl.*, ssl.ca.location */
  security: Record<string, string>;
  topic: string;
  group: string;
  instanceId: string | undefined;
  fromBeginning: boolean;
  batchSize: number;
}

/** The consumer cannot go on (fenced by another instance with the same --instance-id, a fatal librdkafka error). */
export class CounterFatalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CounterFatalError';
  }
}

/** In the binding (lib/kafka-consumer.js), not in its type definitions. */
interface CommitCb {
  commitCb(offsets: { topic: string; partition: number; offset: number }[], cb: (err: LibrdKafkaError | null) => void): void;
}

const ERR_ASSIGN = -175;
const ERR_REVOKE = -174;
const ERR_TIMED_OUT = -185;
const LOG_EVERY_MS = 5_000;
const CONNECT_RETRY_MAX_MS = 30_000;

/**
 * One member of the counting consumer group: reads batches of the topic,
 * counts each partition's share into Redis (StatsStore.apply: once per
 * offset, whoever reads it and however often), and only then commits the
 * Kafka offsets after them. Kafka's commit is thus never ahead of Redis: a
 * crash, a kill -9 or a rebalance at any point makes Kafka hand out again at
 * most what Redis already has, and the watermark skips it (at-least-once
 * delivery, exactly-once counts).
 *
 * The node-rdkafka API of @confluentinc/kafka-javascript, as the producer:
 * one loop of consume(n) -> count -> commit, so the order of those steps is
 * this code's, not a framework's.
 */
export class StatsCounter {
  readonly #o: CounterOptions;
  readonly #store: StatsStore;
  readonly #log: Logger;
  readonly #consumer: KafkaConsumer;
  readonly #assigned = new Set<number>();
  /** partition -> its watermark as this member last saw it (undefined: none yet); absent: read it from Redis first. */
  readonly #watermarks = new Map<number, number | undefined>();
  /** partition -> next offset, counted in Redis but not yet committed to Kafka. */
  readonly #toCommit = new Map<number, number>();
  readonly #gapWarned = new Set<number>();
  #fatal: CounterFatalError | undefined;
  #lastKafkaLog = 0;
  #lastCommitLog = 0;
  /** Messages this process counted, and read again but found counted already. */
  counted = 0;
  skipped = 0;

  constructor(o: CounterOptions, store: StatsStore, log: Logger) {
    this.#o = o;
    this.#store = store;
    this.#log = log;
    const conf: Record<string, string | number | boolean> = {
      'bootstrap.servers': o.bootstrapServers.join(','),
      'group.id': o.group,
      'client.id': 'atkafka-stats',
      'enable.auto.commit': false,
      'enable.auto.offset.store': false,
      // Joining or leaving moves only the partitions that must move; the others keep being counted.
      'partition.assignment.strategy': 'cooperative-sticky',
      'socket.keepalive.enable': true,
      rebalance_cb: true,
      ...o.security,
    };
    if (o.instanceId !== undefined) conf['group.instance.id'] = o.instanceId;
    // Only for a group with no committed offset on a partition: afterwards it resumes from the commit.
    this.#consumer = new Kafka.KafkaConsumer(conf, { 'auto.offset.reset': o.fromBeginning ? 'earliest' : 'latest' });
    this.#consumer.setDefaultConsumeTimeout(500);
    // Else consume(n) waits up to the timeout for each of the n messages: a slow topic's batch would take minutes to fill.
    (this.#consumer as unknown as { setDefaultIsTimeoutOnlyForFirstMessage(on: boolean): void }).setDefaultIsTimeoutOnlyForFirstMessage(true);
    this.#consumer.on('event.error', (err) => this.#onKafkaError(err));
    this.#consumer.on('rebalance', (err, assignment) => this.#onRebalance(err, assignment));
  }

  get assigned(): number[] {
    return [...this.#assigned.keys()].sort((a, b) => a - b);
  }

  /** Messages of the assigned partitions not counted yet, from librdkafka's last fetch; undefined before one. */
  get lag(): number | undefined {
    let lag = 0;
    let known = false;
    for (const p of this.#assigned) {
      if (!this.#watermarks.has(p)) continue;
      const w = this.#watermarks.get(p);
      try {
        const { highOffset, lowOffset } = this.#consumer.getWatermarkOffsets(this.#o.topic, p);
        if (highOffset < 0) continue;
        lag += Math.max(0, highOffset - Math.max(lowOffset, w === undefined ? 0 : w + 1));
        known = true;
      } catch {
        // Nothing fetched from this partition yet.
      }
    }
    return known ? lag : undefined;
  }

  /** Connects (retrying while Kafka cannot be reached) and returns the topic's partitions; [] when the topic does not exist. */
  async connect(signal: AbortSignal): Promise<number[]> {
    let wait = 1_000;
    // The first answer quickly, so a wrong address shows up in seconds; then room for a slow cluster.
    for (let timeout = 5_000; ; timeout = 10_000) {
      signal.throwIfAborted();
      try {
        const metadata = await new Promise<Metadata>((resolve, reject) =>
          this.#consumer.connect({ topic: this.#o.topic, timeout }, (err, data) => (err ? reject(err) : resolve(data))),
        );
        const topic = metadata.topics.find((t) => t.name === this.#o.topic);
        return (topic?.partitions ?? []).map((p) => p.id).sort((a, b) => a - b);
      } catch (err) {
        this.#log.warn({ err: (err as Error).message, bootstrapServers: this.#o.bootstrapServers, retryInMs: wait }, 'Kafka not reachable yet, retrying');
        await sleep(wait, signal);
        wait = Math.min(CONNECT_RETRY_MAX_MS, wait * 2);
      }
    }
  }

  /** Each partition's [low, high) offsets now: what --once counts up to. */
  async endOffsets(partitions: number[]): Promise<Map<number, { low: number; high: number }>> {
    const out = new Map<number, { low: number; high: number }>();
    await Promise.all(
      partitions.map(
        (p) =>
          new Promise<void>((resolve, reject) =>
            this.#consumer.queryWatermarkOffsets(this.#o.topic, p, 10_000, (err, w) => {
              if (err) return reject(new Error(`cannot read the end offset of ${this.#o.topic} partition ${p}: ${err.message}`));
              out.set(p, { low: w.lowOffset, high: w.highOffset });
              resolve();
            }),
          ),
      ),
    );
    return out;
  }

  /**
   * Counts until `signal` aborts or `done()` says so (asked a few times a second). The batch in hand is
   * finished first: counted and committed, or, when Redis is away at the stop, left to be read again.
   */
  async run(signal: AbortSignal, done?: () => Promise<boolean>): Promise<void> {
    this.#consumer.subscribe([this.#o.topic]);
    let lastCheck = 0;
    let lastConsumeLog = 0;
    while (!signal.aborted) {
      if (this.#fatal !== undefined) throw this.#fatal;
      let messages: Message[];
      try {
        messages = await this.#consume();
      } catch (err) {
        const e = err as LibrdKafkaError;
        if (e.code !== ERR_TIMED_OUT && Date.now() - lastConsumeLog >= LOG_EVERY_MS) {
          lastConsumeLog = Date.now();
          this.#log.warn({ err: e.message, code: e.code, topic: this.#o.topic }, 'cannot read from Kafka; retrying');
        }
        await sleep(500, signal);
        continue;
      }
      if (messages.length > 0) {
        try {
          await this.#handle(messages, signal);
        } catch (err) {
          if (signal.aborted) break;
          throw err;
        }
      }
      if (done !== undefined && Date.now() - lastCheck >= 200) {
        lastCheck = Date.now();
        if (await done()) break;
      }
    }
    if (this.#fatal !== undefined) throw this.#fatal;
  }

  #consume(): Promise<Message[]> {
    return new Promise((resolve, reject) => this.#consumer.consume(this.#o.batchSize, (err, messages) => (err ? reject(err) : resolve(messages))));
  }

  async #handle(messages: Message[], signal: AbortSignal): Promise<void> {
    const byPartition = new Map<number, Message[]>();
    for (const m of messages) {
      let list = byPartition.get(m.partition);
      if (list === undefined) byPartition.set(m.partition, (list = []));
      list.push(m);
    }
    for (const [partition, batch] of byPartition) await this.#count(partition, batch, signal);
    await this.#commit();
  }

  /** One partition's messages (in offset order) into Redis, each offset once. */
  async #count(partition: number, batch: Message[], signal: AbortSignal): Promise<void> {
    const known = this.#watermarks.has(partition) ? { watermark: this.#watermarks.get(partition) } : undefined;
    const entries = batch.map((m) => ({
      offset: m.offset,
      labels: labelsOf(m.value, m.headers as Record<string, Buffer>[] | undefined),
      bytes: m.value?.length ?? 0,
    }));
    const { before, watermark, counted } = await this.#store.count(partition, entries, known, signal);
    // Kafka's commit is never ahead of Redis, so a first offset past the watermark means messages nobody counted.
    if (before !== undefined && batch[0]!.offset > before + 1 && !this.#gapWarned.has(partition)) {
      this.#gapWarned.add(partition);
      this.#log.warn(
        { partition, countedUpTo: before, nextOffset: batch[0]!.offset },
        'offsets after the last counted one are gone from the topic (retention deleted them, the group was moved forward, or Redis lost its latest writes): the counts miss them',
      );
    }
    this.counted += counted;
    this.skipped += batch.length - counted;
    this.#watermarks.set(partition, watermark);
    // Revoked meanwhile: its new owner commits, and this member's older offset must not overwrite that one.
    if (this.#assigned.has(partition)) this.#toCommit.set(partition, batch[batch.length - 1]!.offset + 1);
  }

  /** Commits what Redis holds. A failed commit only means Kafka hands those messages out again (skipped then). */
  async #commit(): Promise<void> {
    if (this.#toCommit.size === 0) return;
    const offsets = [...this.#toCommit].map(([partition, offset]) => ({ topic: this.#o.topic, partition, offset }));
    try {
      await new Promise<void>((resolve, reject) => (this.#consumer as unknown as CommitCb).commitCb(offsets, (err) => (err ? reject(err) : resolve())));
      for (const { partition, offset } of offsets) if (this.#toCommit.get(partition) === offset) this.#toCommit.delete(partition);
    } catch (err) {
      if (Date.now() - this.#lastCommitLog >= LOG_EVERY_MS) {
        this.#lastCommitLog = Date.now();
        this.#log.warn({ err: (err as Error).message }, 'offset commit failed; retried with the next batch (what Kafka hands out again is skipped, not counted twice)');
      }
    }
  }

  #onRebalance(err: LibrdKafkaError, assignment: { partition: number }[]): void {
    const partitions = assignment.map((a) => a.partition).sort((a, b) => a - b);
    if (err.code === ERR_ASSIGN) {
      for (const p of partitions) this.#assigned.add(p);
      this.#log.info({ assigned: partitions, now: this.assigned }, 'partitions assigned');
    } else if (err.code === ERR_REVOKE) {
      for (const p of partitions) {
        this.#assigned.delete(p);
        this.#toCommit.delete(p);
      }
      this.#log.info({ revoked: partitions, now: this.assigned }, 'partitions revoked');
    } else {
      this.#log.warn({ err: err.message, code: err.code }, 'rebalance error');
    }
    // A partition coming back may have been counted by another member meanwhile.
    for (const p of partitions) this.#watermarks.delete(p);
  }

  #onKafkaError(err: LibrdKafkaError): void {
    if (err.isFatal) {
      const fenced = /fenced/i.test(err.message) && this.#o.instanceId !== undefined;
      this.#fatal = new CounterFatalError(
        fenced ? `another instance joined group ${this.#o.group} with --instance-id ${this.#o.instanceId}: ${err.message}` : `Kafka consumer fatal error: ${err.message}`,
        { cause: err },
      );
      this.#log.fatal({ err: err.message, code: err.code }, 'Kafka consumer cannot go on');
      return;
    }
    // Broker down, connection refused...: librdkafka retries by itself.
    if (Date.now() - this.#lastKafkaLog < LOG_EVERY_MS) return;
    this.#lastKafkaLog = Date.now();
    this.#log.warn({ err: err.message, code: err.code }, 'Kafka client error (retrying)');
  }

  /** Commits what is left, then leaves the group (its partitions go to the others at once, unless --instance-id). */
  async close(): Promise<void> {
    if (this.#consumer.isConnected()) {
      await this.#commit();
      await new Promise<void>((resolve) => this.#consumer.disconnect(() => resolve()));
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
