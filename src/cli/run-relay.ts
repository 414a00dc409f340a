import type { RelayConfig } from '../config/relay-config.ts';
import { checkCursorFile, CursorFileInvalid } from '../checkpoint/cursor-file.ts';
import { RelayPipeline } from '../sources/relay/pipeline.ts';
import { redactUrl } from '../telemetry/redact.ts';
import { UsageError } from './flags.ts';
import { runSource, USER_AGENT } from './run-source.ts';

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
  return runSource({
    command: 'firehose relay',
    config,
    source: 'relay',
    describe: { relayHost: redactUrl(config.relayHost), cursorFile: config.cursorFile, decodeThreads: config.decodeThreads },
    stopNote: 'saving the cursor',
    warn: (logger) => {
      if (config.cursorFile === undefined) logger.warn('no --cursor-file: a restart starts live and loses every event since the last run');
    },
    build: ({ sink, stages, logger }) =>
      new RelayPipeline({
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
        format: config.stages.format,
        stages,
        logger,
      }),
  });
}
