import { CursorFileInvalid } from '../checkpoint/cursor-file.ts';
import type { OzoneConfig } from '../config/ozone-config.ts';
import { OzoneClient } from '../sources/ozone/client.ts';
import { checkOzoneCursor, positionAt, type LoadedOzoneCursor, type OzonePosition } from '../sources/ozone/cursor.ts';
import { OzonePipeline } from '../sources/ozone/pipeline.ts';
import * as metrics from '../telemetry/metrics.ts';
import { redactUrl } from '../telemetry/redact.ts';
import { UsageError } from './flags.ts';
import { runSource, USER_AGENT } from './run-source.ts';

/** `atkafka ozone-events`. Returns the exit code. */
export async function runOzone(config: OzoneConfig): Promise<number> {
  // Before any log line and before Kafka: a bad cursor file is the operator's to fix (exit 2, one line).
  let loaded: LoadedOzoneCursor | undefined;
  if (config.cursorFile !== undefined) {
    try {
      loaded = await checkOzoneCursor(config.cursorFile, config.labelerDid);
    } catch (err) {
      if (err instanceof CursorFileInvalid) throw new UsageError(err.message);
      throw err;
    }
  }
  const start: OzonePosition | undefined =
    loaded?.position ?? (config.start === 'beginning' ? undefined : positionAt(config.start === 'now' ? Date.now() : config.start));
  return runSource({
    command: 'ozone-events',
    config,
    source: 'ozone',
    describe: {
      pdsHost: redactUrl(config.pdsHost),
      identifier: config.identifier,
      labelerDid: config.labelerDid,
      passwordFile: config.passwordFile,
      cursorFile: config.cursorFile,
      settleLagMs: config.settleLagMs,
      pageSize: config.pageSize,
    },
    stopNote: 'saving the cursor',
    warn: (logger) => {
      if (config.cursorFile === undefined) logger.warn('no --cursor-file: a restart starts again from --start and repeats or loses events');
      if (config.settleLagMs === 0) logger.warn('--settle-lag 0: an event whose transaction commits after a later one is visible can be missed');
      if (loaded?.from === 'go-cursor') {
        logger.info({ goCursorFile: loaded.path, from: new Date(loaded.position.timeMs).toISOString() }, "resuming where the Go version stopped (its ozone-cursor.txt); atkafka's own cursor file takes over from the first page");
      } else if (loaded !== undefined) {
        logger.info({ cursorFile: loaded.path, cursor: loaded.position.cursor, savedAt: loaded.savedAt }, 'resuming from saved cursor');
      } else {
        logger.info({ start: start === undefined ? 'beginning' : new Date(start.timeMs).toISOString() }, 'no saved cursor: starting from --start');
      }
    },
    build: ({ sink, stages, logger }) => {
      const client = new OzoneClient({
        pdsHost: config.pdsHost,
        identifier: config.identifier,
        password: config.password,
        labelerDid: config.labelerDid,
        userAgent: USER_AGENT,
        requestTimeoutMs: config.requestTimeoutMs,
        logger: logger.child({ component: 'ozone' }),
        onSession: (kind, ok) => metrics.ozoneSession(kind, ok),
      });
      const pipeline = new OzonePipeline({
        client,
        labelerDid: config.labelerDid,
        pdsHost: config.pdsHost,
        cursorFile: config.cursorFile,
        start,
        pageSize: config.pageSize,
        pollIntervalMs: config.pollIntervalMs,
        settleLagMs: config.settleLagMs,
        backoffInitialMs: config.backoffInitialMs,
        backoffMaxMs: config.backoffMaxMs,
        maxInFlight: config.maxInFlight,
        maxInFlightBytes: config.maxInFlightBytes,
        sink,
        stages,
        logger,
      });
      return { run: (signal) => pipeline.run(signal), status: () => pipeline.status() };
    },
  });
}
