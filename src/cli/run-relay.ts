import type { RelayConfig } from '../config/relay-config.ts';
import { checkCursorFile, CursorFileError, CursorFileInvalid } from '../checkpoint/cursor-file.ts';
import { RelayPipeline } from '../pipeline/relay-pipeline.ts';
import { buildStages } from '../pipeline/stages.ts';
import { createKafkaSink, KafkaFatalError, KafkaSetupError } from '../sink/kafka/index.ts';
import { FatalStreamError } from '../sources/relay/subscription.ts';
import { startMetricsServer } from '../telemetry/http.ts';
import { createLogger, writePlain, type Logger } from '../telemetry/logger.ts';
import { redactUrl } from '../telemetry/redact.ts';
import { UsageError } from './flags.ts';

/** A drain that cannot finish (Kafka down for good) must not hang a shutdown forever. */
const SHUTDOWN_TIMEOUT_MS = 30_000;
const USER_AGENT = 'atkafka/0.1.0';

/** `atkafka firehose relay`. Returns the exit code. */
export async function runRelay(config: RelayConfig): Promise<number> {
  // Before any log line and before Kafka: a bad cursor file is the operator's to fix (exit 2, one line),
  // not something to find out after a minute of connection retries.
  if (config.cursorFile !== undefined) {
    try {
      await checkCursorFile(config.cursorFile, config.relayHost);
    } catch (err) {
      if (err instanceof CursorFileInvalid) throw new UsageError(err.message);
      throw err;
    }
  }
  const logger = createLogger({ debug: config.debug });
  logger.info(
    {
      relayHost: redactUrl(config.relayHost),
      bootstrapServers: config.kafka.bootstrapServers.map(redactUrl),
      topic: config.kafka.topic,
      cursorFile: config.cursorFile,
      compression: config.kafka.compression,
      maxInFlight: config.maxInFlight,
      decodeThreads: config.decodeThreads,
      enrich: config.stages.enrich,
      plcHost: redactUrl(config.stages.plcHost),
      apiHost: config.stages.apiHost === undefined ? undefined : redactUrl(config.stages.apiHost),
      collections: config.stages.collections,
      services: config.stages.services,
      osprey: config.stages.osprey !== undefined,
      topicTemplate: config.stages.topicTemplate,
    },
    'starting atkafka firehose relay',
  );
  if (config.cursorFile === undefined) {
    logger.warn('no --cursor-file: a restart starts live and loses every event since the last run');
  }

  let sink;
  try {
    sink = await createKafkaSink(config.kafka, logger.child({ component: "kafka" }), config.maxInFlight);
  } catch (err) {
    if (err instanceof KafkaSetupError) {
      logger.fatal({ err: err.message }, 'cannot set up Kafka');
      lastWords(logger, err.message);
      return 1;
    }
    throw err;
  }

  const stages = buildStages(config.stages, { source: 'relay', defaultTopic: config.kafka.topic, userAgent: USER_AGENT, logger });
  const pipeline = new RelayPipeline({
    relayHost: config.relayHost,
    cursorFile: config.cursorFile,
    initialCursor: config.initialCursor,
    cursorSaveIntervalMs: config.cursorSaveIntervalMs,
    maxInFlight: config.maxInFlight,
    maxInFlightBytes: config.maxInFlightBytes,
    decodeThreads: config.decodeThreads,
    maxFrameBytes: config.maxFrameBytes,
    stallTimeoutMs: config.stallTimeoutMs,
    backoffInitialMs: config.backoffInitialMs,
    backoffMaxMs: config.backoffMaxMs,
    userAgent: USER_AGENT,
    sink,
    collections: config.stages.collections,
    stages,
    logger,
  });

  let metricsServer;
  if (config.metricsListenAddress !== '') {
    try {
      metricsServer = await startMetricsServer(config.metricsListenAddress, () => {
        const s = pipeline.status();
        return { ok: s.connected, detail: s };
      });
      logger.info({ address: config.metricsListenAddress }, 'serving /metrics and /health');
    } catch (err) {
      logger.fatal({ err: (err as Error).message, address: config.metricsListenAddress }, 'cannot listen for metrics');
      await sink.close();
      lastWords(logger, `cannot listen on --metrics-listen-address ${config.metricsListenAddress}: ${(err as Error).message}`);
      return 1;
    }
  }

  const abort = new AbortController();
  // A producer that can no longer deliver stops the process; the cursor is still safe (docs/invariants.md, 2).
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
      logger.info({ signal }, 'stopping: no more reading, draining Kafka, saving the cursor');
      abort.abort();
      setTimeout(() => {
        logger.error('shutdown did not finish in time; exiting with the cursor at the last confirmed event');
        process.exit(1);
      }, SHUTDOWN_TIMEOUT_MS).unref();
    } else {
      logger.warn({ signal }, 'second signal, exiting now; the saved cursor is still safe, events after it will be read again');
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
