import { CursorFileError, CursorFileInvalid } from '../checkpoint/cursor-file.ts';
import type { CommonConfig } from '../config/relay-config.ts';
import type { StagesConfig } from '../config/stages-config.ts';
import type { Stages } from '../pipeline/stages.ts';
import { buildStages } from '../pipeline/stages.ts';
import { createKafkaSink, KafkaFatalError, KafkaSetupError, type KafkaSinkOptions, type MessageSink } from '../sink/kafka/index.ts';
import { FatalStreamError } from '../sources/common/ws-subscription.ts';
import { startMetricsServer } from '../telemetry/http.ts';
import { createLogger, writePlain, type Logger } from '../telemetry/logger.ts';
import { redactUrl } from '../telemetry/redact.ts';

/** A drain that cannot finish (Kafka down for good) must not hang a shutdown forever. */
const SHUTDOWN_TIMEOUT_MS = 30_000;
export const USER_AGENT = 'atkafka/0.1.0';

/** What a source's command hands the shared runner. */
export interface SourceRun {
  run(signal: AbortSignal): Promise<void>;
  /** For /health and /readyz: connected upstream, and what else the source reports. */
  status(): { connected: boolean } & Record<string, unknown>;
}

export interface RunSourceOptions {
  /** `firehose relay`, `firehose tap`, ... */
  command: string;
  config: CommonConfig & { kafka: KafkaSinkOptions; maxInFlight: number; stages: StagesConfig };
  source: string;
  /** Logged at start, next to the Kafka and stage settings (URLs already redacted). */
  describe: Record<string, unknown>;
  /** What a clean stop saves, for the stop log line. */
  stopNote: string;
  build(parts: { sink: MessageSink; stages: Stages<never>; logger: Logger }): SourceRun;
  /** After the logger exists and before Kafka: warnings about the configuration. */
  warn?(logger: Logger): void;
}

/**
 * The life of every source command, the same for all: logger, Kafka sink,
 * the shared stages, metrics server, signals (first: stop reading and drain;
 * second: exit now), a fatal Kafka error, and one plain last line with the
 * reason for whoever ran the command. Returns the exit code.
 */
export async function runSource(o: RunSourceOptions): Promise<number> {
  const { config } = o;
  const logger = createLogger({ debug: config.debug, level: config.logLevel, format: config.logFormat });
  logger.info(
    {
      ...o.describe,
      bootstrapServers: config.kafka.bootstrapServers.map(redactUrl),
      topic: config.kafka.topic,
      compression: config.kafka.compression,
      maxInFlight: config.maxInFlight,
      enrich: config.stages.enrich,
      format: config.stages.format,
      jetstreamCompress: config.stages.jetstreamCompress || undefined,
      plcHost: redactUrl(config.stages.plcHost),
      apiHost: config.stages.apiHost === undefined ? undefined : redactUrl(config.stages.apiHost),
      collections: config.stages.collections,
      services: config.stages.services,
      osprey: config.stages.osprey !== undefined,
      topicTemplate: config.stages.topicTemplate,
    },
    `starting atkafka ${o.command}`,
  );
  o.warn?.(logger);

  let sink;
  try {
    sink = await createKafkaSink(config.kafka, logger.child({ component: 'kafka' }), config.maxInFlight);
  } catch (err) {
    if (err instanceof KafkaSetupError) {
      logger.fatal({ err: err.message }, 'cannot set up Kafka');
      lastWords(logger, err.message);
      return 1;
    }
    throw err;
  }

  const stages = buildStages(config.stages, { source: o.source, defaultTopic: config.kafka.topic, userAgent: USER_AGENT, logger });
  const pipeline = o.build({ sink, stages: stages as Stages<never>, logger });

  let metricsServer;
  if (config.metricsListenAddress !== '') {
    try {
      metricsServer = await startMetricsServer(config.metricsListenAddress, {
        status: () => pipeline.status(),
        kafkaReachable: () => sink.reachable !== false,
        info: { command: o.command, source: o.source, version: USER_AGENT.split('/')[1], topic: config.kafka.topic, bootstrapServers: config.kafka.bootstrapServers.map(redactUrl), ...o.describe },
      });
      logger.info({ address: config.metricsListenAddress }, 'serving /metrics, /healthz, /readyz, /health and the status page /status');
    } catch (err) {
      logger.fatal({ err: (err as Error).message, address: config.metricsListenAddress }, 'cannot listen for metrics');
      stages.close();
      await sink.close();
      lastWords(logger, `cannot listen on --metrics-listen-address ${config.metricsListenAddress}: ${(err as Error).message}`);
      return 1;
    }
  }

  const abort = new AbortController();
  // A producer that can no longer deliver stops the process; the upstream position is still safe (docs/invariants.md, 2).
  let kafkaFatal: KafkaFatalError | undefined;
  sink.onFatal((err) => {
    kafkaFatal = err;
    abort.abort();
    // The drain cannot finish without a working producer.
    setTimeout(() => {
      lastWords(logger, err.message, { sync: true });
      process.exit(1);
    }, 10_000).unref();
  });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      logger.info({ signal }, `stopping: no more reading, draining Kafka, ${o.stopNote}`);
      abort.abort();
      setTimeout(() => {
        logger.error('shutdown did not finish in time; exiting with the upstream position at the last confirmed event');
        process.exit(1);
      }, SHUTDOWN_TIMEOUT_MS).unref();
    } else {
      logger.warn({ signal }, 'second signal, exiting now; the saved position is still safe, events after it will be read again');
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let code = 0;
  let reason: string | undefined;
  try {
    await pipeline.run(abort.signal);
    if (kafkaFatal) throw kafkaFatal;
  } catch (err) {
    if (err instanceof FatalStreamError || err instanceof CursorFileError || err instanceof KafkaFatalError) {
      logger.fatal({ err: err.message }, 'stopped');
      reason = err.message;
      // A cursor file found unusable at load is a configuration error; one that fails to save while running is not.
      code = err instanceof CursorFileInvalid ? 2 : 1;
    } else {
      throw err;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    metricsServer?.close();
    stages.close();
    await sink.close();
  }
  if (reason !== undefined) lastWords(logger, reason);
  return code;
}

/** Besides the JSON log: the reason in one plain line, last on stderr, for whoever ran the command. */
function lastWords(logger: Logger, message: string, options: { sync?: boolean } = {}): void {
  writePlain(logger, `atkafka: ${message}`, options);
}
