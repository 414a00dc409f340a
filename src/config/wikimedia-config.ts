import { UsageError, type FlagValue } from '../cli/flags.ts';
import type { KafkaSinkOptions } from '../sink/kafka/types.ts';
import { streamTimings } from './checks.ts';
import { commonConfig, kafkaConfig, type CommonConfig } from './relay-config.ts';
import { httpBase, passThroughStages, type StagesConfig } from './stages-config.ts';

export interface WikimediaConfig extends CommonConfig {
  kafka: KafkaSinkOptions;
  maxInFlight: number;
  maxInFlightBytes: number;
  stages: StagesConfig;
  baseUrl: string;
  streams: string[];
  key: 'wiki' | 'page';
  cursorFile: string | undefined;
  since: string | undefined;
  cursorSaveIntervalMs: number;
  stallTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
}

type Values = Map<string, FlagValue | undefined>;
const get = <T extends FlagValue | undefined>(v: Values, name: string) => v.get(name) as T;

const STREAM = /^[a-z0-9][a-z0-9._-]{0,127}$/;

export function wikimediaConfig(v: Values): WikimediaConfig {
  const baseUrl = httpBase('--url', get<string>(v, 'url').trim());
  const streams = (get<string[]>(v, 'stream') ?? []).map((s) => s.trim()).filter((s) => s !== '');
  if (streams.length === 0) throw new UsageError('--stream is empty');
  for (const s of streams) if (!STREAM.test(s)) throw new UsageError(`--stream: "${s.slice(0, 80)}" is not a stream name (like recentchange)`);
  const key = get<string>(v, 'key').trim().toLowerCase();
  if (key !== 'wiki' && key !== 'page') throw new UsageError(`--key: "${key}" is not wiki or page`);
  const sinceFlag = (get<string | undefined>(v, 'since') ?? '').trim();
  let since: string | undefined;
  if (sinceFlag !== '') {
    const ms = Date.parse(sinceFlag);
    if (!/^\d{4}-\d\d-\d\d/.test(sinceFlag) || Number.isNaN(ms)) throw new UsageError(`--since: "${sinceFlag.slice(0, 80)}" is not an RFC 3339 time (like 2026-12-01T12:00:00Z)`);
    if (ms > Date.now() + 60_000) throw new UsageError('--since is in the future');
    // EventStreams reads `since` as a number and treats 0 as "not given" (live): the epoch itself, or
    // anything before it, would start at the newest event instead of the oldest kept. 1 ms asks for
    // the oldest kept, which is what such a --since means.
    since = new Date(Math.max(ms, 1)).toISOString();
  }
  const cursorFile = get<string>(v, 'cursor-file');
  const timings = streamTimings(v);
  return {
    ...commonConfig(v),
    ...kafkaConfig(v),
    stages: passThroughStages(v),
    baseUrl,
    streams,
    key,
    cursorFile: cursorFile === '' ? undefined : cursorFile,
    since,
    ...timings,
  };
}
