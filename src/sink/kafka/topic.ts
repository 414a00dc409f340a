import type { IAdminClient, LibrdKafkaError } from '@confluentinc/kafka-javascript';

import { KafkaSetupError } from './errors.ts';

const TOPIC_ALREADY_EXISTS = 36;

/** How the sink creates a topic: the default one at startup, and each routed one on first use. */
export interface TopicSpec {
  partitions: number;
  replicationFactor: number;
  maxMessageBytes: number;
}

/** Asks Kafka to create the topic: 'created', 'exists', or the error. */
export function requestTopic(admin: IAdminClient, topic: string, spec: TopicSpec): Promise<'created' | 'exists' | LibrdKafkaError> {
  return new Promise((resolve) => {
    admin.createTopic(
      {
        topic,
        num_partitions: spec.partitions,
        replication_factor: spec.replicationFactor,
        config: { 'max.message.bytes': String(spec.maxMessageBytes) },
      },
      15_000,
      (e) => resolve(!e ? 'created' : e.code === TOPIC_ALREADY_EXISTS ? 'exists' : e),
    );
  });
}

/** Creates the topic when missing (as the Go version does); an existing topic is left as it is. */
export async function ensureTopic(
  admin: IAdminClient,
  topic: string,
  partitions: number,
  replicationFactor: number,
  maxMessageBytes: number,
): Promise<'created' | 'exists'> {
  const result = await requestTopic(admin, topic, { partitions, replicationFactor, maxMessageBytes });
  if (typeof result === 'string') return result;
  throw new KafkaSetupError(`cannot create topic ${topic}: ${result.message}`, { cause: result });
}

/**
 * CreateTopics errors worth retrying: Kafka or the controller is unreachable, busy or
 * electing, or too few brokers are registered for the replication factor (a broker
 * restarting; the default topic was made with the same factor). Anything else (invalid
 * name, a name colliding with an existing one, policy, authorization, invalid config) will
 * not change by waiting.
 */
const RETRIABLE_CREATE_ERRORS = new Set([
  -195, // _TRANSPORT
  -193, // _RESOLVE
  -187, // _ALL_BROKERS_DOWN
  -185, // _TIMED_OUT
  -182, // _NODE_UPDATE
  5, // LEADER_NOT_AVAILABLE
  7, // REQUEST_TIMED_OUT
  8, // BROKER_NOT_AVAILABLE
  13, // NETWORK_EXCEPTION
  14, // COORDINATOR_LOAD_IN_PROGRESS
  15, // COORDINATOR_NOT_AVAILABLE
  19, // NOT_ENOUGH_REPLICAS
  38, // INVALID_REPLICATION_FACTOR ("only N brokers are registered")
  41, // NOT_CONTROLLER
  56, // KAFKA_STORAGE_ERROR
  89, // THROTTLING_QUOTA_EXCEEDED
]);

export function isRetriableCreateError(err: LibrdKafkaError): boolean {
  return RETRIABLE_CREATE_ERRORS.has(err.code);
}

const MAX_TOPIC_LENGTH = 249;
const VALID_TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;

/** Kafka's rule for a topic name: 1-249 of [a-zA-Z0-9._-], and not '.' or '..'. */
export function isValidTopic(name: string): boolean {
  return VALID_TOPIC.test(name) && name !== '.' && name !== '..';
}

/**
 * A valid topic name from any string (e.g. an expanded `atproto.{collection}`): every
 * character (code point) outside [a-zA-Z0-9._-] becomes '_', then the first 249 are kept;
 * '', '.' and '..' become '_', '_' and '__'. Distinct inputs may map to one name, and Kafka
 * refuses a name that differs from an existing topic's only by '.' versus '_'.
 */
export function sanitizeTopic(name: string): string {
  let out = name.replace(/[^a-zA-Z0-9._-]/gu, '_');
  if (out.length > MAX_TOPIC_LENGTH) out = out.slice(0, MAX_TOPIC_LENGTH);
  if (out === '' || out === '.' || out === '..') out = '_'.repeat(Math.max(1, out.length));
  return out;
}
