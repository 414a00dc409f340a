import type { TapConfig } from '../config/tap-config.ts';
import { TapPipeline } from '../sources/tap/pipeline.ts';
import { redactUrl } from '../telemetry/redact.ts';
import { runSource, USER_AGENT } from './run-source.ts';

/** `atkafka firehose tap`. Returns the exit code. */
export function runTap(config: TapConfig): Promise<number> {
  return runSource({
    command: 'firehose tap',
    config,
    source: 'tap',
    describe: { tapHost: redactUrl(config.tapHost), acks: !config.disableAcks, adminPassword: config.adminPassword !== undefined },
    stopNote: 'sending the acks of what Kafka confirmed',
    build: ({ sink, stages, logger }) => {
      const pipeline = new TapPipeline({
        tapHost: config.tapHost,
        adminPassword: config.adminPassword,
        disableAcks: config.disableAcks,
        maxInFlight: config.maxInFlight,
        maxInFlightBytes: config.maxInFlightBytes,
        backoffInitialMs: config.backoffInitialMs,
        backoffMaxMs: config.backoffMaxMs,
        statsIntervalMs: config.statsIntervalMs,
        tapMetricsUrl: config.tapMetricsUrl,
        userAgent: USER_AGENT,
        sink,
        collections: config.stages.collections,
        format: config.stages.format,
        stages,
        logger,
      });
      return { run: (signal) => pipeline.run(signal), status: () => ({ connected: pipeline.connected }) };
    },
  });
}
