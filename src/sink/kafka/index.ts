export { KafkaSink } from './producer.ts';
export { KafkaSetupError, KafkaFatalError } from './errors.ts';
export { sanitizeTopic } from './topic.ts';
export type { KafkaSinkOptions, MessageHeader, MessageSink, SendExtra } from './types.ts';

import type { Logger } from '../../telemetry/logger.ts';
import { queueMessagesFor } from './config.ts';
import { KafkaSink } from './producer.ts';
import type { KafkaSinkOptions } from './types.ts';

export function createKafkaSink(opts: KafkaSinkOptions, log: Logger, maxInFlight: number): Promise<KafkaSink> {
  return KafkaSink.create(opts, log, queueMessagesFor(maxInFlight));
}
