import { readFileSync, statSync } from 'node:fs';

import { UsageError, type FlagValue } from '../cli/flags.ts';
import type { KafkaSinkOptions } from '../sink/kafka/types.ts';
import { redactUrl } from '../telemetry/redact.ts';
import { reconnectBackoff } from './checks.ts';
import { commonConfig, kafkaConfig, type CommonConfig } from './relay-config.ts';
import { httpBase, passThroughStages, type StagesConfig } from './stages-config.ts';

export interface OzoneConfig extends CommonConfig {
  kafka: KafkaSinkOptions;
  maxInFlight: number;
  maxInFlightBytes: number;
  stages: StagesConfig;
  /** Without a trailing slash. */
  pdsHost: string;
  identifier: string;
  /** Read at every login (the file's current content, or the flag's value). */
  password: () => Promise<string>;
  passwordFile: string | undefined;
  labelerDid: string;
  cursorFile: string | undefined;
  /** Without a cursor file: 'beginning', 'now', or a time (unix ms). */
  start: 'beginning' | 'now' | number;
  pollIntervalMs: number;
  pageSize: number;
  settleLagMs: number;
  requestTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
}

type Values = Map<string, FlagValue | undefined>;
const get = <T extends FlagValue | undefined>(v: Values, name: string) => v.get(name) as T;

const DID = /^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/;

export function ozoneConfig(v: Values): OzoneConfig {
  const pdsHost = httpBase('--pds-host', get<string>(v, 'pds-host').trim());
  if (new URL(pdsHost).username !== '' || new URL(pdsHost).password !== '') {
    throw new UsageError(`--pds-host: "${redactUrl(pdsHost)}" carries credentials; give the account with --identifier and --password-file`);
  }
  const identifier = get<string>(v, 'identifier').trim();
  if (identifier === '') throw new UsageError('--identifier is empty (a handle, DID or email of a moderator account)');
  const labelerDid = get<string>(v, 'labeler-did').trim();
  if (!DID.test(labelerDid) || labelerDid.length > 2048) throw new UsageError(`--labeler-did: "${labelerDid.slice(0, 80)}" is not a DID (like did:plc:ar7c4by46qjdydhdevvrndac)`);

  // Empty is "not set" (an env file listing every variable, the optional ones blank).
  const passwordFlag = get<string | undefined>(v, 'password') || undefined;
  const passwordFile = (get<string | undefined>(v, 'password-file') ?? '').trim() || undefined;
  if (passwordFlag !== undefined && passwordFile !== undefined) throw new UsageError('give --password or --password-file, not both');
  let password: () => Promise<string>;
  if (passwordFile !== undefined) {
    checkPasswordFile(passwordFile);
    password = async () => readPassword(passwordFile);
  } else if (passwordFlag !== undefined) {
    password = async () => passwordFlag;
  } else {
    throw new UsageError('missing the password: --password-file FILE, ATKAFKA_OZONE_PASSWORD_FILE, or ATKAFKA_OZONE_PASSWORD');
  }

  const cursorFile = get<string>(v, 'cursor-file');
  const startText = get<string>(v, 'start').trim();
  let start: OzoneConfig['start'];
  if (startText === 'beginning' || startText === 'now') start = startText;
  else {
    const ms = Date.parse(startText);
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/i.test(startText) || !Number.isFinite(ms)) {
      throw new UsageError(`--start: "${startText.slice(0, 60)}" is not beginning, now, or an RFC 3339 time (like 2026-12-01T00:00:00Z)`);
    }
    start = ms;
  }
  const pollIntervalMs = get<number>(v, 'poll-interval');
  if (pollIntervalMs < 100 || pollIntervalMs > 3_600_000) throw new UsageError('--poll-interval must be between 100ms and 1h');
  const pageSize = get<number>(v, 'page-size');
  if (pageSize < 1 || pageSize > 100) throw new UsageError("--page-size must be between 1 and 100 (queryEvents' limit)");
  const settleLagMs = get<number>(v, 'settle-lag');
  if (settleLagMs > 3_600_000) throw new UsageError('--settle-lag must be at most 1h');
  const requestTimeoutMs = get<number>(v, 'request-timeout');
  if (requestTimeoutMs < 1000 || requestTimeoutMs > 600_000) throw new UsageError('--request-timeout must be between 1s and 10m');
  const { backoffInitialMs, backoffMaxMs } = reconnectBackoff(get<number>(v, 'reconnect-backoff'), get<number>(v, 'reconnect-backoff-max'));

  const kafka = kafkaConfig(v);
  return {
    ...commonConfig(v),
    ...kafka,
    // The event view goes to Kafka as Ozone returned it: no filters, no identity lookups.
    stages: passThroughStages(v),
    pdsHost,
    identifier,
    password,
    passwordFile,
    labelerDid,
    cursorFile: cursorFile === '' ? undefined : cursorFile,
    start,
    pollIntervalMs,
    pageSize,
    settleLagMs,
    requestTimeoutMs,
    backoffInitialMs,
    backoffMaxMs,
  };
}

function checkPasswordFile(path: string): void {
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch (err) {
    throw new UsageError(`--password-file: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!isFile) throw new UsageError(`--password-file: ${path} is not a file`);
  let text: string;
  try {
    text = readPassword(path);
  } catch (err) {
    throw new UsageError(`--password-file: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (text === '') throw new UsageError(`--password-file: ${path} is empty`);
}

/** The file's content without the trailing newline editors and `echo` add. */
function readPassword(path: string): string {
  return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
}
