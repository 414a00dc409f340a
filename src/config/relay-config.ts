import { UsageError, type FlagValue } from '../cli/flags.ts';
import { queueMessagesFor } from '../sink/kafka/config.ts';
import { redactUrl } from '../telemetry/redact.ts';
import { LOG_LEVELS, checkBootstrapServer, checkCaFile, checkKafkaClientConfig, checkListenAddress, checkUpstreamUrl, parseKafkaOptions, streamTimings } from './checks.ts';
import type { KafkaSinkOptions } from '../sink/kafka/types.ts';
import { stagesConfig, type StagesConfig } from './stages-config.ts';

export interface CommonConfig {
  debug: boolean;
  logLevel: string;
  logFormat: 'json' | 'pretty';
  metricsListenAddress: string;
}

export interface RelayConfig extends CommonConfig {
  kafka: KafkaSinkOptions;
  maxInFlight: number;
  maxInFlightBytes: number;
  relayHost: string;
  maxFrameBytes: number;
  cursorFile: string | undefined;
  initialCursor: number | undefined;
  cursorSaveIntervalMs: number;
  stallTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  decodeThreads: number;
  stages: StagesConfig;
}

type Values = Map<string, FlagValue | undefined>;

const get = <T extends FlagValue | undefined>(v: Values, name: string) => v.get(name) as T;

export function commonConfig(v: Values): CommonConfig {
  const metricsListenAddress = get<string>(v, 'metrics-listen-address');
  checkListenAddress(metricsListenAddress);
  const debug = get<boolean>(v, 'debug');
  const level = (get<string | undefined>(v, 'log-level') ?? 'info').trim().toLowerCase();
  if (!LOG_LEVELS.includes(level)) throw new UsageError(`--log-level: "${level}" is not one of ${LOG_LEVELS.join(', ')}`);
  const format = (get<string | undefined>(v, 'log-format') ?? 'auto').trim().toLowerCase();
  if (format !== 'json' && format !== 'pretty' && format !== 'auto') throw new UsageError(`--log-format: "${format}" is not json, pretty or auto`);
  return {
    debug,
    logLevel: debug ? 'debug' : level,
    logFormat: format === 'auto' ? (process.stderr.isTTY ? 'pretty' : 'json') : format,
    metricsListenAddress,
  };
}

export function kafkaConfig(v: Values): ReturnType<typeof kafkaOptions> {
  const config = kafkaOptions(v);
  // Before anything connects: librdkafka would refuse these only when the client is created.
  checkKafkaClientConfig(config.kafka, queueMessagesFor(config.maxInFlight));
  return config;
}

function kafkaOptions(v: Values): { kafka: KafkaSinkOptions; maxInFlight: number; maxInFlightBytes: number } {
  const bootstrapServers = get<string[]>(v, 'bootstrap-servers');
  if (bootstrapServers.length === 0) throw new UsageError('--bootstrap-servers is empty');
  for (const server of bootstrapServers) checkBootstrapServer(server);
  const topic = get<string>(v, 'output-topic');
  if (!/^[a-zA-Z0-9._-]{1,249}$/.test(topic) || topic === '.' || topic === '..') {
    throw new UsageError(`--output-topic: "${topic}" is not a valid Kafka topic name (1-249 of a-z A-Z 0-9 . _ -, not "." or "..")`);
  }
  const partitions = get<number>(v, 'topic-partitions');
  if (partitions < 1 || partitions > 2 ** 31 - 1) throw new UsageError('--topic-partitions must be between 1 and 2147483647');
  const replicationFactor = get<number>(v, 'replication-factor');
  // Kafka's protocol field is an INT16.
  if (replicationFactor < -1 || replicationFactor === 0 || replicationFactor > 32767) throw new UsageError('--replication-factor must be -1 or between 1 and 32767');
  const compression = get<string>(v, 'compression').toLowerCase();
  if (!['zstd', 'lz4', 'gzip', 'snappy', 'none'].includes(compression)) {
    throw new UsageError(`--compression: "${compression}" is not one of zstd, lz4, gzip, snappy, none`);
  }
  const compressionLevel = get<number>(v, 'compression-level');
  // librdkafka takes -1..12 whatever the codec (so zstd stops at 12); gzip's own scale ends at 9; snappy and none ignore it.
  const maxLevel = compression === 'gzip' ? 9 : 12;
  if (compressionLevel < -1 || compressionLevel > maxLevel) throw new UsageError(`--compression-level must be between -1 and ${maxLevel}${compression === 'gzip' ? ' with gzip' : ''}`);
  const maxInFlight = get<number>(v, 'max-in-flight');
  // librdkafka's queue is sized at twice this and holds at most 2^31-1 messages.
  if (maxInFlight < 1 || maxInFlight > 1_000_000_000) throw new UsageError('--max-in-flight must be between 1 and 1000000000');
  const maxInFlightBytes = get<number>(v, 'max-in-flight-bytes');
  if (maxInFlightBytes < 65_536 || maxInFlightBytes > 2 ** 31 - 1) throw new UsageError('--max-in-flight-bytes must be between 65536 and 2147483647');
  const batchBytes = get<number>(v, 'batch-size');
  if (batchBytes < 1 || batchBytes > 2 ** 31 - 1) throw new UsageError('--batch-size must be between 1 and 2147483647');
  const maxMessageBytes = get<number>(v, 'max-message-bytes');
  // The producer's message.max.bytes is this plus 64 KiB of headroom, and librdkafka stops at 10^9.
  if (maxMessageBytes < 1024 || maxMessageBytes > 1_000_000_000 - 65_536) throw new UsageError('--max-message-bytes must be between 1024 and 999934464');
  const lingerMs = get<number>(v, 'linger');
  if (lingerMs > 900_000) throw new UsageError("--linger must be at most 15m (librdkafka's limit)");

  const extra = parseKafkaOptions(get<string[] | undefined>(v, 'kafka-option') ?? []);

  let sasl: KafkaSinkOptions['sasl'];
  // Empty is "not set" here (an env file listing every variable, the optional ones blank).
  const mechanism = get<string | undefined>(v, 'sasl-mechanism') || undefined;
  const username = get<string | undefined>(v, 'sasl-username') || undefined;
  const password = get<string | undefined>(v, 'sasl-password') || undefined;
  if (mechanism !== undefined || username !== undefined || password !== undefined) {
    const m = (mechanism ?? 'PLAIN').toLowerCase();
    if (m !== 'plain' && m !== 'scram-sha-256' && m !== 'scram-sha-512') {
      throw new UsageError(`--sasl-mechanism: "${mechanism}" is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`);
    }
    if (username === undefined || password === undefined) throw new UsageError('SASL needs both --sasl-username and --sasl-password');
    sasl = { mechanism: m, username, password };
  }
  const caFile = get<string | undefined>(v, 'tls-ca-file') || undefined;
  if (caFile !== undefined) checkCaFile(caFile);
  const tls = get<boolean>(v, 'tls') || caFile !== undefined ? { enabled: true, caFile } : undefined;

  return {
    kafka: {
      bootstrapServers,
      topic,
      partitions,
      replicationFactor,
      compression: compression as KafkaSinkOptions['compression'],
      compressionLevel,
      lingerMs,
      batchBytes,
      maxMessageBytes,
      clientId: get<string>(v, 'client-id'),
      extra,
      sasl,
      tls,
    },
    maxInFlight,
    maxInFlightBytes,
  };
}

export function relayConfig(v: Values): RelayConfig {
  const relayHost = get<string>(v, 'relay-host');
  checkUpstreamUrl('--relay-host', relayHost, 'wss://bsky.network', 'wss://, ws://, https:// or http://');
  const cursorFile = get<string>(v, 'cursor-file');
  const initialCursor = get<number | undefined>(v, 'cursor');
  if (initialCursor !== undefined && initialCursor < 0) throw new UsageError('--cursor must not be negative');
  const timings = streamTimings(v);
  const maxFrameBytes = get<number>(v, 'max-frame-size');
  if (maxFrameBytes < 5_000_000 || maxFrameBytes > 1024 * 1024 * 1024) {
    throw new UsageError('--max-frame-size must be between 5000000 (the protocol limit) and 1073741824');
  }
  const decodeThreads = get<number>(v, 'decode-threads');
  if (decodeThreads < 0 || decodeThreads > 16) throw new UsageError('--decode-threads must be between 0 and 16');
  return {
    ...commonConfig(v),
    ...kafkaConfig(v),
    stages: stagesConfig(v),
    decodeThreads,
    relayHost,
    maxFrameBytes,
    cursorFile: cursorFile === '' ? undefined : cursorFile,
    initialCursor,
    ...timings,
  };
}
