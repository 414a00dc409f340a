import { checkWritable, CursorFileInvalid } from '../checkpoint/cursor-file.ts';
import type { WikimediaConfig } from '../config/wikimedia-config.ts';
import { loadWikimediaCursor, WikimediaPipeline } from '../sources/wikimedia/pipeline.ts';
import { redactUrl } from '../telemetry/redact.ts';
import { UsageError } from './flags.ts';
import { runSource, USER_AGENT } from './run-source.ts';

/** `atkafka wikimedia`. Returns the exit code. */
export async function runWikimedia(config: WikimediaConfig): Promise<number> {
  if (config.cursorFile !== undefined) {
    try {
      await loadWikimediaCursor(config.cursorFile, config.streams);
      await checkWritable(config.cursorFile);
    } catch (err) {
      if (err instanceof CursorFileInvalid) throw new UsageError(err.message);
      throw err;
    }
  }
  return runSource({
    command: 'wikimedia',
    config,
    source: 'wikimedia',
    describe: { wikimediaUrl: redactUrl(config.baseUrl), streams: config.streams, key: config.key, cursorFile: config.cursorFile, since: config.since },
    stopNote: 'saving the cursor',
    warn: (logger) => {
      if (config.cursorFile === undefined) logger.warn('no --cursor-file: a restart starts live and loses every event since the last run');
    },
    build: ({ sink, stages, logger }) =>
      new WikimediaPipeline({
        baseUrl: config.baseUrl,
        streams: config.streams,
        key: config.key,
        cursorFile: config.cursorFile,
        since: config.since,
        cursorSaveIntervalMs: config.cursorSaveIntervalMs,
        stallTimeoutMs: config.stallTimeoutMs,
        backoffInitialMs: config.backoffInitialMs,
        backoffMaxMs: config.backoffMaxMs,
        maxInFlight: config.maxInFlight,
        maxInFlightBytes: config.maxInFlightBytes,
        userAgent: USER_AGENT,
        sink,
        stages,
        logger,
      }),
  });
}
