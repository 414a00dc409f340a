import { globalFlags, kafkaFlags } from '../config/flags.ts';
import { statsConfig, type StatsConfig } from '../config/stats-config.ts';
import { CounterFatalError, StatsCounter } from '../stats/counter.ts';
import type { Snapshot, StatsStore } from '../stats/store.ts';
import { renderTable } from '../stats/table.ts';
import { securityConfig } from '../sink/kafka/config.ts';
import type { KafkaSinkOptions } from '../sink/kafka/types.ts';
import { createLogger, writePlain, type Logger } from '../telemetry/logger.ts';
import { redactUrl } from '../telemetry/redact.ts';
import type { Command } from './command.ts';
import type { FlagSpec } from './flags.ts';

/** `atkafka stats` (issue 12): a counting consumer group, counts in Redis. */
export const statsFlags: FlagSpec[] = [
  { name: 'topic', kind: 'string', env: ['ATKAFKA_STATS_TOPIC'], required: true, help: 'Kafka topic to count: any topic atkafka writes (every source and --format), or the Wikimedia one' },
  {
    name: 'group',
    kind: 'string',
    env: ['ATKAFKA_STATS_GROUP'],
    default: 'atkafka-stats',
    help: 'Consumer group: instances in one group share the partitions and add into one set of counts (each group has its own)',
  },
  {
    name: 'redis-url',
    kind: 'string',
    env: ['ATKAFKA_STATS_REDIS_URL'],
    default: 'redis://127.0.0.1:6379',
    help: 'Redis holding the counts and, per partition, the last offset counted (redis:// or rediss://, user:password@ and /db optional)',
  },
  {
    name: 'from-beginning',
    kind: 'bool',
    env: ['ATKAFKA_STATS_FROM_BEGINNING'],
    default: 'true',
    help: 'Where a group with no committed offsets starts: the oldest message, or (false) only what arrives from now on; a group resumes from its commits',
  },
  {
    name: 'interval',
    kind: 'duration',
    env: ['ATKAFKA_STATS_INTERVAL'],
    default: '1s',
    help: 'How often the table is shown: rewritten in place on a terminal, else printed again; 0: only the final table',
  },
  {
    name: 'once',
    kind: 'bool',
    env: ['ATKAFKA_STATS_ONCE'],
    default: 'false',
    help: 'Count up to the end the topic has at start (whichever member of the group counts it), print the table and exit',
  },
  { name: 'top', kind: 'int', env: ['ATKAFKA_STATS_TOP'], default: '10', help: 'Rows per section of the table, the most frequent first (Redis keeps every value)' },
  {
    name: 'instance-id',
    kind: 'string',
    env: ['ATKAFKA_STATS_INSTANCE_ID'],
    help: 'Static group membership (group.instance.id), one per instance: restarted with the same id it gets its partitions back at once, but they wait for it (45 s session timeout) instead of moving to the others',
  },
  { name: 'batch-size', kind: 'int', env: ['ATKAFKA_STATS_BATCH_SIZE'], default: '1000', help: 'Messages read from Kafka at most per Redis write and offset commit' },
];

const KAFKA = ['bootstrap-servers', 'sasl-mechanism', 'sasl-username', 'sasl-password', 'tls', 'tls-ca-file'];

export const statsCommand: Command = {
  path: ['stats'],
  usage: 'atkafka stats --topic T [--group G] [flags]',
  description:
    'Counts the events of a topic by source, kind, collection and action (Wikimedia: type and wiki) into Redis\n' +
    'hashes, as a Kafka consumer group, and shows the counts as a table (the final one on Ctrl+C). Instances in\n' +
    "one group share the partitions. Each partition's batch is added in Redis together with its last offset, and\n" +
    'only then is the offset committed to Kafka: what Kafka hands out again after a crash or a rebalance is seen\n' +
    'as counted and skipped, so the counts are exact (at-least-once reading, idempotent counting).\n\n' +
    'Keys: atkafka:stats:<group>:<topic>:by-source, :by-kind, :by-collection, :by-action, :by-type, :by-wiki,\n' +
    ':totals (events, bytes) and :offsets (partition -> last offset counted).\n\n' +
    'Exit codes: 0 done (--once) or stopped, 1 runtime failure, 2 bad configuration, 130 a second SIGINT/SIGTERM.',
  groups: [
    { title: 'Stats', flags: statsFlags },
    { title: 'Kafka', flags: KAFKA.map((n) => kafkaFlags.find((f) => f.name === n)!) },
    { title: 'Global', flags: globalFlags.filter((f) => f.name !== 'metrics-listen-address') },
  ],
  run: (v) => runStats(statsConfig(v as never)),
};

/** A stop that cannot finish (Kafka or Redis gone for good) must not hang forever. */
const SHUTDOWN_TIMEOUT_MS = 30_000;
const FINAL_TABLE_TIMEOUT_MS = 10_000;

/** `atkafka stats`. Returns the exit code. */
export async function runStats(c: StatsConfig): Promise<number> {
  const logger = createLogger({ debug: c.debug, level: c.logLevel, format: c.logFormat });
  logger.info(
    {
      topic: c.topic,
      group: c.group,
      instanceId: c.instanceId,
      redis: redactUrl(c.redisUrl),
      bootstrapServers: c.bootstrapServers.map(redactUrl),
      fromBeginning: c.fromBeginning,
      once: c.once || undefined,
    },
    'starting atkafka stats',
  );
  // Loaded here: the Redis client costs every other command ~0.1 s at startup.
  const { StatsStore: Store, StatsStoreError, keyPrefix } = await import('../stats/store.ts');

  const abort = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      logger.info({ signal }, 'stopping: finishing the batch in hand, committing, then the final table');
      abort.abort(new Error('stopped'));
      setTimeout(() => {
        lastWords(logger, 'the stop did not finish in time; what was not committed is read again (and skipped) next time', true);
        process.exit(1);
      }, SHUTDOWN_TIMEOUT_MS).unref();
    } else {
      logger.warn({ signal }, 'second signal, exiting now; the counts in Redis are exact, uncommitted messages are read again and skipped');
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let store: StatsStore | undefined;
  let counter: StatsCounter | undefined;
  let timer: NodeJS.Timeout | undefined;
  let code = 0;
  let reason: string | undefined;
  const screen = new Screen(process.stdout);
  try {
    store = await Store.connect(c.redisUrl, keyPrefix(c.group, c.topic), logger.child({ component: 'redis' }), abort.signal);
    const counterOptions = {
      bootstrapServers: c.bootstrapServers,
      security: securityConfig({ sasl: c.sasl, tls: c.tls } as KafkaSinkOptions),
      topic: c.topic,
      group: c.group,
      instanceId: c.instanceId,
      fromBeginning: c.fromBeginning,
      batchSize: c.batchSize,
    };
    counter = new StatsCounter(counterOptions, store, logger.child({ component: 'kafka' }));
    const partitions = await counter.connect(abort.signal);
    if (partitions.length === 0) {
      if (c.once) throw new CounterFatalError(`topic ${c.topic} does not exist`);
      logger.warn({ topic: c.topic }, 'topic does not exist (yet); waiting for it');
    }

    let done: (() => Promise<boolean>) | undefined;
    if (c.once) {
      const ends = await counter.endOffsets(partitions);
      const s = store;
      logger.info({ partitions: partitions.length, messages: [...ends.values()].reduce((a, e) => a + e.high - e.low, 0) }, 'counting up to the end of the topic as of now');
      done = async () => {
        try {
          const w = await s.watermarks(abort.signal);
          return [...ends].every(([p, e]) => e.high <= e.low || (w.get(p) ?? -1) >= e.high - 1);
        } catch (err) {
          if (abort.signal.aborted) return true;
          throw err;
        }
      };
    }

    const live = c.intervalMs > 0 && (!c.once || screen.tty);
    if (live) {
      const show = tableShower(c, store, counter, partitions.length, screen, abort.signal);
      timer = setInterval(show, c.intervalMs);
      timer.unref();
    }
    await counter.run(abort.signal, done);
  } catch (err) {
    if (err instanceof CounterFatalError || err instanceof StatsStoreError) {
      logger.fatal({ err: err.message }, 'stopped');
      reason = err.message;
      code = 1;
    } else if (!abort.signal.aborted) {
      throw err;
    }
  } finally {
    clearInterval(timer);
  }
  // Leaving the group gives the partitions up: the final table shows what this instance had.
  const assigned = counter?.assigned ?? [];
  await counter?.close();

  if (store !== undefined && code === 0 && counter !== undefined) {
    try {
      const snapshot = await store.snapshot(AbortSignal.timeout(FINAL_TABLE_TIMEOUT_MS));
      screen.show(renderTable({ topic: c.topic, group: c.group, snapshot, partitions: snapshot.offsets.size, instance: { ...instanceOf(counter), assigned }, top: c.top, final: true, now: new Date() }), true);
    } catch (err) {
      reason = `no final table: Redis did not answer within ${FINAL_TABLE_TIMEOUT_MS / 1000} s (${(err as Error).message}); the counts in it are exact`;
      code = 1;
    }
    logger.info({ counted: counter.counted, skipped: counter.skipped }, c.once && !abort.signal.aborted ? 'counted to the end of the topic' : 'stopped');
  } else if (code === 0) {
    logger.info('stopped before Redis could be reached');
  }
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  await store?.close();
  if (reason !== undefined) lastWords(logger, reason);
  return code;
}

function instanceOf(counter: StatsCounter, perSecond?: number) {
  return { assigned: counter.assigned, counted: counter.counted, skipped: counter.skipped, perSecond, lag: counter.lag };
}

/** The live table: one Redis snapshot per tick, never two at once (a slow Redis skips ticks). */
function tableShower(c: StatsConfig, store: { snapshot(signal?: AbortSignal): Promise<Snapshot> }, counter: StatsCounter, partitions: number, screen: Screen, signal: AbortSignal) {
  let busy = false;
  let last = { at: performance.now(), counted: 0 };
  return () => {
    if (busy) return;
    busy = true;
    store
      .snapshot(signal)
      .then((snapshot) => {
        if (signal.aborted) return;
        const now = performance.now();
        const perSecond = ((counter.counted - last.counted) * 1000) / Math.max(1, now - last.at);
        last = { at: now, counted: counter.counted };
        screen.show(renderTable({ topic: c.topic, group: c.group, snapshot, partitions, instance: instanceOf(counter, perSecond), top: c.top, final: false, now: new Date() }), false);
      })
      // Redis away: the store logs it; the table waits.
      .catch(() => {})
      .finally(() => (busy = false));
  };
}

/**
 * Where tables go: on a terminal the new one replaces the last (cursor up, clear
 * below), cut to the window's height so the cursor can get back up; else each is
 * printed after the last, with a blank line between.
 */
class Screen {
  readonly tty: boolean;
  readonly #out: NodeJS.WriteStream;
  #shown = 0;

  constructor(out: NodeJS.WriteStream) {
    this.#out = out;
    this.tty = out.isTTY === true;
  }

  show(lines: string[], final: boolean): void {
    if (!this.tty) {
      this.#out.write(`${lines.join('\n')}\n\n`);
      return;
    }
    const fit = final ? lines : lines.slice(0, Math.max(3, (this.#out.rows ?? 40) - 1));
    // Each line cleared after it is written, then what is left below: a clear from the top corner would push the
    // old table into some terminals' scrollback (tmux) every time.
    const up = this.#shown > 0 ? `\x1b[${this.#shown}A\r` : '';
    this.#out.write(`${up}${fit.map((l) => `${l}\x1b[K\n`).join('')}\x1b[J`);
    this.#shown = final ? 0 : fit.length;
  }
}

function lastWords(logger: Logger, message: string, sync = false): void {
  writePlain(logger, `atkafka: ${message}`, { sync });
}
