import { existsSync } from 'node:fs';

import { UsageError, type FlagValue } from '../cli/flags.ts';
import type { KafkaSinkOptions } from '../sink/kafka/types.ts';

export interface CommonConfig {
  debug: boolean;
  metricsListenAddress: string;
}

export interface RelayConfig extends CommonConfig {
  kafka: KafkaSinkOptions;
  maxInFlight: number;
  relayHost: string;
  cursorFile: string | undefined;
  initialCursor: number | undefined;
  cursorSaveIntervalMs: number;
  stallTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  decodeThreads: number;
}

type Values = Map<string, FlagValue | undefined>;

const get = <T extends FlagValue | undefined>(v: Values, name: string) => v.get(name) as T;

export function commonConfig(v: Values): CommonConfig {
  return { debug: get<boolean>(v, 'debug'), metricsListenAddress: get<string>(v, 'metrics-listen-address') };
}

export function kafkaConfig(v: Values): { kafka: KafkaSinkOptions; maxInFlight: number } {
  const bootstrapServers = get<string[]>(v, 'bootstrap-servers');
  if (bootstrapServers.length === 0) throw new UsageError('--bootstrap-servers is empty');
  for (const server of bootstrapServers) {
    if (!/^[^\s:]+:\d+$/.test(server) && !/^\[[0-9a-fA-F:]+\]:\d+$/.test(server)) {
      throw new UsageError(`--bootstrap-servers: "${server}" is not host:port`);
    }
  }
  const topic = get<string>(v, 'output-topic');
  if (!/^[a-zA-Z0-9._-]{1,249}$/.test(topic)) throw new UsageError(`--output-topic: "${topic}" is not a valid Kafka topic name`);
  const partitions = get<number>(v, 'topic-partitions');
  if (partitions < 1) throw new UsageError('--topic-partitions must be at least 1');
  const replicationFactor = get<number>(v, 'replication-factor');
  if (replicationFactor < -1 || replicationFactor === 0) throw new UsageError('--replication-factor must be -1 or at least 1');
  const compression = get<string>(v, 'compression').toLowerCase();
  if (!['zstd', 'lz4', 'gzip', 'snappy', 'none'].includes(compression)) {
    throw new UsageError(`--compression: "${compression}" is not one of zstd, lz4, gzip, snappy, none`);
  }
  const compressionLevel = get<number>(v, 'compression-level');
  if (compressionLevel < -1 || compressionLevel > 22) throw new UsageError('--compression-level must be between -1 and 22');
  const maxInFlight = get<number>(v, 'max-in-flight');
  if (maxInFlight < 1) throw new UsageError('--max-in-flight must be at least 1');
  const batchBytes = get<number>(v, 'batch-size');
  if (batchBytes < 1) throw new UsageError('--batch-size must be at least 1');
  const maxMessageBytes = get<number>(v, 'max-message-bytes');
  if (maxMessageBytes < 1024) throw new UsageError('--max-message-bytes must be at least 1024');

  const extra: Record<string, string> = {};
  for (const kv of get<string[] | undefined>(v, 'kafka-option') ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--kafka-option: "${kv}" is not key=value`);
    extra[kv.slice(0, eq).trim()] = kv.slice(eq + 1).trim();
  }

  let sasl: KafkaSinkOptions['sasl'];
  const mechanism = get<string | undefined>(v, 'sasl-mechanism');
  const username = get<string | undefined>(v, 'sasl-username');
  const password = get<string | undefined>(v, 'sasl-password');
  if (mechanism !== undefined || username !== undefined || password !== undefined) {
    const m = (mechanism ?? 'PLAIN').toLowerCase();
    if (m !== 'plain' && m !== 'scram-sha-256' && m !== 'scram-sha-512') {
      throw new UsageError(`--sasl-mechanism: "${mechanism}" is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`);
    }
    if (username === undefined || password === undefined) throw new UsageError('SASL needs both --sasl-username and --sasl-password');
    sasl = { mechanism: m, username, password };
  }
  const caFile = get<string | undefined>(v, 'tls-ca-file');
  if (caFile !== undefined && !existsSync(caFile)) throw new UsageError(`--tls-ca-file: ${caFile} does not exist`);
  const tls = get<boolean>(v, 'tls') || caFile !== undefined ? { enabled: true, caFile } : undefined;

  return {
    kafka: {
      bootstrapServers,
      topic,
      partitions,
      replicationFactor,
      compression: compression as KafkaSinkOptions['compression'],
      compressionLevel,
      lingerMs: get<number>(v, 'linger'),
      batchBytes,
      maxMessageBytes,
      clientId: get<string>(v, 'client-id'),
      extra,
      sasl,
      tls,
    },
    maxInFlight,
  };
}

export function relayConfig(v: Values): RelayConfig {
  const relayHost = get<string>(v, 'relay-host');
  let url: URL;
  try {
    url = new URL(relayHost);
  } catch {
    throw new UsageError(`--relay-host: "${relayHost}" is not a URL (like wss://bsky.network)`);
  }
  if (!['ws:', 'wss:', 'http:', 'https:'].includes(url.protocol)) {
    throw new UsageError(`--relay-host: "${relayHost}" must start with wss://, ws://, https:// or http://`);
  }
  const cursorFile = get<string>(v, 'cursor-file');
  const initialCursor = get<number | undefined>(v, 'cursor');
  if (initialCursor !== undefined && initialCursor < 0) throw new UsageError('--cursor must not be negative');
  const cursorSaveIntervalMs = get<number>(v, 'cursor-save-interval');
  if (cursorSaveIntervalMs < 10) throw new UsageError('--cursor-save-interval must be at least 10ms');
  const backoffInitialMs = get<number>(v, 'reconnect-backoff');
  const backoffMaxMs = get<number>(v, 'reconnect-backoff-max');
  if (backoffInitialMs < 1 || backoffMaxMs < backoffInitialMs) throw new UsageError('--reconnect-backoff must be >= 1ms and <= --reconnect-backoff-max');
  const decodeThreads = get<number>(v, 'decode-threads');
  if (decodeThreads < 0 || decodeThreads > 16) throw new UsageError('--decode-threads must be between 0 and 16');
  return {
    ...commonConfig(v),
    ...kafkaConfig(v),
    decodeThreads,
    relayHost,
    cursorFile: cursorFile === '' ? undefined : cursorFile,
    initialCursor,
    cursorSaveIntervalMs,
    stallTimeoutMs: get<number>(v, 'stall-timeout'),
    backoffInitialMs,
    backoffMaxMs,
  };
}
