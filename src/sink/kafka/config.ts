import Kafka from '@confluentinc/kafka-javascript';

import type { KafkaSinkOptions } from './types.ts';

/**
 * librdkafka producer properties for lossless delivery:
 * - idempotence (implies acks=all and in-order retries per partition, so
 *   per-DID order survives broker failovers);
 * - message.timeout.ms=0: never give up on a message; while Kafka is down the
 *   in-flight cap pauses the relay instead;
 * - murmur2_random: the Java client's and franz-go's key hashing, so each DID
 *   lands on the same partition as with the Go at-kafka.
 */
export function producerConfig(opts: KafkaSinkOptions, queueMessages: number): Record<string, string | number | boolean> {
  const conf: Record<string, string | number | boolean> = {
    'bootstrap.servers': opts.bootstrapServers.join(','),
    'client.id': opts.clientId,
    'enable.idempotence': true,
    acks: 'all',
    'message.timeout.ms': 0,
    partitioner: 'murmur2_random',
    'compression.codec': opts.compression,
    'compression.level': opts.compressionLevel,
    'linger.ms': opts.lingerMs,
    'batch.size': opts.batchBytes,
    'message.max.bytes': opts.maxMessageBytes + 64 * 1024,
    'queue.buffering.max.messages': queueMessages,
    'queue.buffering.max.kbytes': 2_097_151,
    'socket.keepalive.enable': true,
    // Confirmation is by flush epochs (producer.ts); only failures are reported, with the message.
    'delivery.report.only.error': true,
    dr_msg_cb: true,
    ...securityConfig(opts),
  };
  for (const [key, value] of Object.entries(opts.extra)) conf[key] = value;
  return conf;
}

export function securityConfig(opts: KafkaSinkOptions): Record<string, string> {
  const conf: Record<string, string> = {};
  const tls = opts.tls?.enabled === true;
  if (opts.sasl) {
    conf['security.protocol'] = tls ? 'sasl_ssl' : 'sasl_plaintext';
    conf['sasl.mechanisms'] = opts.sasl.mechanism.toUpperCase();
    conf['sasl.username'] = opts.sasl.username;
    conf['sasl.password'] = opts.sasl.password;
  } else if (tls) {
    conf['security.protocol'] = 'ssl';
  }
  if (tls && opts.tls?.caFile) conf['ssl.ca.location'] = opts.tls.caFile;
  return conf;
}

/** librdkafka's own queue must never be the limit: the pipeline's cap is. */
export function queueMessagesFor(maxInFlight: number): number {
  return Math.max(100_000, maxInFlight * 2);
}

/**
 * librdkafka's verdict on the producer configuration, or undefined if it
 * takes it. Building a client object sets and checks every property without
 * connecting (that happens in connect()); the object is then dropped.
 * Checks across properties (acks vs idempotence, a SASL mechanism it was not
 * built with) are librdkafka's at connect time and are not covered here.
 */
export function checkProducerConfig(opts: KafkaSinkOptions, queueMessages: number): string | undefined {
  try {
    new Kafka.Producer(producerConfig(opts, queueMessages));
    return undefined;
  } catch (err) {
    return (err instanceof Error ? err.message : String(err)).trim();
  }
}
