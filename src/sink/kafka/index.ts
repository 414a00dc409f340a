export { KafkaSink } from './producer.ts';
export { KafkaSetupError, KafkaFatalError } from './errors.ts';
export type { KafkaSinkOptions, MessageSink } from './types.ts';

import type { Logger } from '../../telemetry/logger.ts';
import { KafkaSink } from './producer.ts';
import type { KafkaSinkOptions } from './types.ts';

export function createKafkaSink(opts: KafkaSinkOptions, log: Logger, maxInFlight: number): Promise<KafkaSink> {
  // librdkafka's own queue must never be the limit: the pipeline's cap is.
  return KafkaSink.create(opts, log, Math.max(100_000, maxInFlight * 2));
}
