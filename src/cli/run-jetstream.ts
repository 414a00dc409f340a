import { checkWritable, CursorFileInvalid } from '../checkpoint/cursor-file.ts';
import type { JetstreamConfig } from '../config/jetstream-config.ts';
import { describeHosts } from '../config/jetstream-config.ts';
import { loadJetstreamCursor } from '../sources/jetstream/cursor.ts';
import { JetstreamPipeline } from '../sources/jetstream/pipeline.ts';
import { UsageError } from './flags.ts';
import { runSource, USER_AGENT } from './run-source.ts';

/** `atkafka firehose jetstream`. Returns the exit code. */
export async function runJetstream(config: JetstreamConfig): Promise<number> {
  // Before any log line and before Kafka: a bad cursor file is the operator's to fix (exit 2, one line).
  if (config.cursorFile !== undefined) {
    try {
      await loadJetstreamCursor(config.cursorFile);
      await checkWritable(config.cursorFile);
    } catch (err) {
      if (err instanceof CursorFileInvalid) throw new UsageError(err.message);
      throw err;
    }
  }
  return runSource({
    command: 'firehose jetstream',
    config,
    source: 'jetstream',
    describe: {
      jetstreamHosts: describeHosts(config.hosts),
      cursorFile: config.cursorFile,
      watchedDids: config.dids.length > 0 ? config.dids.length : undefined,
      upstreamCompress: config.upstreamCompress,
    },
    stopNote: 'saving the cursor',
    warn: (logger) => {
      if (config.cursorFile === undefined) logger.warn('no --cursor-file: a restart starts live and loses every event since the last run');
    },
    build: ({ sink, stages, logger }) =>
      new JetstreamPipeline({
        hosts: config.hosts,
        collections: config.stages.collections,
        dids: config.dids,
        compress: config.upstreamCompress,
        cursorFile: config.cursorFile,
        initialCursor: config.initialCursor,
        cursorSaveIntervalMs: config.cursorSaveIntervalMs,
        rewindUs: config.rewindUs,
        stallTimeoutMs: config.stallTimeoutMs,
        backoffInitialMs: config.backoffInitialMs,
        backoffMaxMs: config.backoffMaxMs,
        maxInFlight: config.maxInFlight,
        maxInFlightBytes: config.maxInFlightBytes,
        format: config.stages.format,
        passCompressed: config.stages.jetstreamCompress,
        userAgent: USER_AGENT,
        sink,
        stages,
        logger,
      }),
  });
}
