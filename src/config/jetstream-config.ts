import { UsageError, type FlagValue } from '../cli/flags.ts';
import { redactUrl } from '../telemetry/redact.ts';
import { checkUpstreamUrl, streamTimings } from './checks.ts';
import { commonConfig, kafkaConfig, type CommonConfig } from './relay-config.ts';
import { stagesConfig, type StagesConfig } from './stages-config.ts';
import type { KafkaSinkOptions } from '../sink/kafka/types.ts';

export interface JetstreamConfig extends CommonConfig {
  kafka: KafkaSinkOptions;
  maxInFlight: number;
  maxInFlightBytes: number;
  stages: StagesConfig;
  hosts: string[];
  dids: string[];
  upstreamCompress: boolean;
  cursorFile: string | undefined;
  initialCursor: number | undefined;
  rewindUs: number;
  cursorSaveIntervalMs: number;
  stallTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
}

type Values = Map<string, FlagValue | undefined>;
const get = <T extends FlagValue | undefined>(v: Values, name: string) => v.get(name) as T;
const list = (v: Values, name: string) => (get<string[] | undefined>(v, name) ?? []).map((s) => s.trim()).filter((s) => s !== '');

const DID = /^did:[a-z]+:[a-zA-Z0-9._:%-]{1,2048}$/;

export function jetstreamConfig(v: Values): JetstreamConfig {
  const hosts = list(v, 'jetstream-host');
  if (hosts.length === 0) throw new UsageError('--jetstream-host is empty');
  for (const h of hosts) checkUpstreamUrl('--jetstream-host', h, 'wss://jetstream1.us-east.bsky.network', 'wss://, ws://, https:// or http://');
  if (new Set(hosts.map((h) => new URL(h).host.toLowerCase())).size !== hosts.length) throw new UsageError('--jetstream-host names one host twice');
  const dids = list(v, 'watched-dids');
  for (const d of dids) if (!DID.test(d)) throw new UsageError(`--watched-dids: "${d.slice(0, 80)}" is not a DID (like did:plc:...)`);
  const cursorFile = get<string>(v, 'cursor-file');
  const initialCursor = get<number | undefined>(v, 'cursor');
  // A Jetstream cursor is unix microseconds; a relay seq or unix seconds here is a mistake worth a line.
  if (initialCursor !== undefined && (initialCursor < 1e15 || initialCursor > 1e17)) {
    throw new UsageError(`--cursor must be a time_us (unix microseconds, like ${Date.now() * 1000}), got ${initialCursor}`);
  }
  const rewindMs = get<number>(v, 'jetstream-rewind');
  if (rewindMs < 0 || rewindMs > 3_600_000) throw new UsageError('--jetstream-rewind must be between 0 and 1h');
  const timings = streamTimings(v);
  return {
    ...commonConfig(v),
    ...kafkaConfig(v),
    stages: stagesConfig(v),
    hosts,
    dids,
    upstreamCompress: get<boolean>(v, 'upstream-compress'),
    cursorFile: cursorFile === '' ? undefined : cursorFile,
    initialCursor,
    rewindUs: rewindMs * 1000,
    ...timings,
  };
}

export const describeHosts = (hosts: string[]) => hosts.map(redactUrl);
