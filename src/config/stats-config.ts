import { UsageError, type FlagValue } from '../cli/flags.ts';
import type { KafkaSinkOptions } from '../sink/kafka/types.ts';
import { redactUrl } from '../telemetry/redact.ts';
import { checkBootstrapServer, checkCaFile } from './checks.ts';
import { commonConfig, type CommonConfig } from './relay-config.ts';

export interface StatsConfig extends Omit<CommonConfig, 'metricsListenAddress'> {
  bootstrapServers: string[];
  sasl: KafkaSinkOptions['sasl'];
  tls: KafkaSinkOptions['tls'];
  topic: string;
  group: string;
  instanceId: string | undefined;
  redisUrl: string;
  fromBeginning: boolean;
  intervalMs: number;
  once: boolean;
  top: number;
  batchSize: number;
}

type Values = Map<string, FlagValue | undefined>;
const get = <T extends FlagValue | undefined>(v: Values, name: string) => v.get(name) as T;

/** Kafka's topic names; group names here too, as both are parts of the Redis keys (atkafka:stats:<group>:<topic>:...). */
const NAME = /^[a-zA-Z0-9._-]{1,249}$/;

export function statsConfig(v: Values): StatsConfig {
  // The log flags are every command's; stats serves no metrics (several instances run side by side on one host).
  const { metricsListenAddress, ...common } = commonConfig(new Map([...v, ['metrics-listen-address', '']]));
  void metricsListenAddress;

  const topic = get<string>(v, 'topic');
  if (!NAME.test(topic) || topic === '.' || topic === '..') {
    throw new UsageError(`--topic: "${topic}" is not a valid Kafka topic name (1-249 of a-z A-Z 0-9 . _ -, not "." or "..")`);
  }
  const group = get<string>(v, 'group');
  if (!NAME.test(group)) throw new UsageError(`--group: "${group}" must be 1-249 of a-z A-Z 0-9 . _ - (it is part of the Redis key names)`);
  const instanceId = get<string | undefined>(v, 'instance-id')?.trim() || undefined;
  if (instanceId !== undefined && instanceId.length > 249) throw new UsageError('--instance-id is longer than 249 characters');

  const redisUrl = get<string>(v, 'redis-url');
  checkRedisUrl(redisUrl);

  const intervalMs = get<number>(v, 'interval');
  if (intervalMs !== 0 && intervalMs < 100) throw new UsageError('--interval must be 0 (only the final table) or at least 100ms');
  const top = get<number>(v, 'top');
  if (top < 1 || top > 1000) throw new UsageError('--top must be between 1 and 1000');
  const batchSize = get<number>(v, 'batch-size');
  if (batchSize < 1 || batchSize > 100_000) throw new UsageError('--batch-size must be between 1 and 100000');
  const once = get<boolean>(v, 'once');
  const fromBeginning = get<boolean>(v, 'from-beginning');
  // A new group would start at the end, where --once already is: it would count nothing and say nothing about why.
  if (once && !fromBeginning) throw new UsageError('--once counts up to the end of the topic; with --from-beginning=false a new group starts there and counts nothing');

  const bootstrapServers = get<string[]>(v, 'bootstrap-servers');
  if (bootstrapServers.length === 0) throw new UsageError('--bootstrap-servers is empty');
  for (const server of bootstrapServers) checkBootstrapServer(server);
  // Empty is "not set" here, as for the producer (an env file listing every variable, the optional ones blank).
  const mechanism = get<string | undefined>(v, 'sasl-mechanism') || undefined;
  const username = get<string | undefined>(v, 'sasl-username') || undefined;
  const password = get<string | undefined>(v, 'sasl-password') || undefined;
  let sasl: StatsConfig['sasl'];
  if (mechanism !== undefined || username !== undefined || password !== undefined) {
    const m = (mechanism ?? 'PLAIN').toLowerCase();
    if (m !== 'plain' && m !== 'scram-sha-256' && m !== 'scram-sha-512') throw new UsageError(`--sasl-mechanism: "${mechanism}" is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`);
    if (username === undefined || password === undefined) throw new UsageError('SASL needs both --sasl-username and --sasl-password');
    sasl = { mechanism: m, username, password };
  }
  const caFile = get<string | undefined>(v, 'tls-ca-file') || undefined;
  if (caFile !== undefined) checkCaFile(caFile);
  const tls = get<boolean>(v, 'tls') || caFile !== undefined ? { enabled: true, caFile } : undefined;

  return { ...common, bootstrapServers, sasl, tls, topic, group, instanceId, redisUrl, fromBeginning, intervalMs, once, top, batchSize };
}

/** redis:// or rediss://, a host, a real port, an optional /<db number>: what node-redis would otherwise refuse only when connecting. */
function checkRedisUrl(value: string): void {
  const shown = redactUrl(value);
  const example = 'like redis://127.0.0.1:6379 or rediss://user:password@host:6380/0';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--redis-url: "${shown}" is not a URL (${example})`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new UsageError(`--redis-url: "${shown}" must start with redis:// or rediss:// (${example})`);
  if (url.hostname === '') throw new UsageError(`--redis-url: "${shown}" has no host (${example})`);
  if (url.port === '0') throw new UsageError(`--redis-url: "${shown}" has port 0`);
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d{1,5}$/.test(url.pathname)) {
    throw new UsageError(`--redis-url: "${shown}": the path must be a database number (/0, /1, ...), got "${url.pathname}"`);
  }
}
