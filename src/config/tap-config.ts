import { UsageError, type FlagValue } from '../cli/flags.ts';
import { redactUrl } from '../telemetry/redact.ts';
import { checkUpstreamUrl, reconnectBackoff } from './checks.ts';
import { commonConfig, kafkaConfig, type CommonConfig } from './relay-config.ts';
import { stagesConfig, type StagesConfig } from './stages-config.ts';
import type { KafkaSinkOptions } from '../sink/kafka/types.ts';

export interface TapConfig extends CommonConfig {
  kafka: KafkaSinkOptions;
  maxInFlight: number;
  maxInFlightBytes: number;
  stages: StagesConfig;
  tapHost: string;
  adminPassword: string | undefined;
  disableAcks: boolean;
  tapWorkers: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  statsIntervalMs: number;
  tapMetricsUrl: string | undefined;
}

type Values = Map<string, FlagValue | undefined>;
const get = <T extends FlagValue | undefined>(v: Values, name: string) => v.get(name) as T;

export function tapConfig(v: Values): TapConfig {
  const tapHost = get<string>(v, 'tap-host');
  const url = checkUpstreamUrl('--tap-host', tapHost, 'ws://localhost:2480', 'ws://, wss://, http:// or https://');
  if (url.username !== '' || url.password !== '') throw new UsageError('--tap-host: give the admin password with ATKAFKA_TAP_ADMIN_PASSWORD, not in the URL');
  const tapWorkers = get<number>(v, 'tap-workers');
  if (tapWorkers < 1 || tapWorkers > 10_000) throw new UsageError('--tap-workers must be between 1 and 10000');
  const { backoffInitialMs, backoffMaxMs } = reconnectBackoff(get<number>(v, 'reconnect-backoff'), get<number>(v, 'reconnect-backoff-max'));
  // Empty is "not set" (an env file listing every variable, the optional ones blank).
  const adminPassword = get<string | undefined>(v, 'tap-admin-password') || undefined;
  const statsIntervalMs = get<number>(v, 'tap-stats-interval');
  if (statsIntervalMs !== 0 && statsIntervalMs < 1000) throw new UsageError('--tap-stats-interval must be 0 (never) or at least 1s');
  const tapMetricsUrl = (get<string | undefined>(v, 'tap-metrics-url') ?? '').trim() || undefined;
  if (tapMetricsUrl !== undefined) {
    let m: URL;
    try {
      m = new URL(tapMetricsUrl);
    } catch {
      throw new UsageError(`--tap-metrics-url: "${redactUrl(tapMetricsUrl)}" is not a URL (like http://localhost:6010)`);
    }
    if (m.protocol !== 'http:' && m.protocol !== 'https:') throw new UsageError('--tap-metrics-url must be http or https');
  }
  return {
    ...commonConfig(v),
    ...kafkaConfig(v),
    stages: stagesConfig(v),
    tapHost,
    adminPassword,
    disableAcks: get<boolean>(v, 'disable-acks'),
    tapWorkers,
    backoffInitialMs,
    backoffMaxMs,
    statsIntervalMs,
    tapMetricsUrl,
  };
}
