import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';

import { UsageError } from '../cli/flags.ts';
import { checkProducerConfig } from '../sink/kafka/config.ts';
import type { KafkaSinkOptions } from '../sink/kafka/types.ts';
import { redactUrl } from '../telemetry/redact.ts';

/**
 * Checks of configuration values that would otherwise fail only once the
 * process runs (a listen call, librdkafka's client, a TLS handshake), where a
 * typo looks like an outage: exit 1 after a minute of retries instead of
 * exit 2 with the flag named. Each throws a UsageError.
 */

/** `host:port` of a Kafka broker: a hostname or IPv4 address, or an IPv6 address in brackets; port 1..65535. */
export function checkBootstrapServer(server: string): void {
  // The raw text may carry credentials someone pasted by mistake (user:pw@host:9092).
  const shown = redactUrl(server);
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(server);
  const host = m?.[1] ?? m?.[2];
  if (m === null || host === undefined || host === '') throw new UsageError(`--bootstrap-servers: "${shown}" is not host:port`);
  if (m[1] !== undefined ? isIP(host) !== 6 : !isHostname(host)) throw new UsageError(`--bootstrap-servers: "${shown}" is not host:port (bad host "${redactUrl(host)}")`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new UsageError(`--bootstrap-servers: "${shown}": port ${port} is not between 1 and 65535`);
}

/**
 * `--metrics-listen-address`: `host:port`, `:port` (all interfaces) or a bare
 * port, IPv6 in brackets, port 0..65535 (0: any free port); empty disables.
 */
export function checkListenAddress(address: string): void {
  if (address === '') return;
  const fail = (why: string) => new UsageError(`--metrics-listen-address: "${address}" ${why} (like 0.0.0.0:6009, [::]:6009 or :6009; empty disables)`);
  const m = /^(?:(?:\[([^\]]*)\]|([^:[\]]*)):)?(\d{1,5})$/.exec(address);
  if (m === null) throw fail('is not host:port');
  const [, v6, name] = m;
  if (v6 !== undefined && isIP(v6) !== 6) throw fail(`has a bad IPv6 address "${v6}"`);
  if (name !== undefined && name !== '' && !isHostname(name)) throw fail(`has a bad host "${name}"`);
  if (Number(m[3]) > 65535) throw fail(`has port ${m[3]}, not 0..65535`);
}

/** A DNS name or dotted IPv4 address (what librdkafka and listen() can resolve). */
function isHostname(host: string): boolean {
  if (isIP(host) === 4) return true;
  if (host.length > 253) return false;
  return host
    .replace(/\.$/, '')
    .split('.')
    .every((label) => /^[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?$/.test(label));
}

/**
 * `--tls-ca-file`: a readable file holding a PEM certificate. librdkafka also
 * takes a directory, but only finds its certificates by OpenSSL hash names,
 * and it reports a bad file only when connecting, as a broker error.
 */
export function checkCaFile(path: string): void {
  let text: string;
  try {
    if (!statSync(path).isFile()) throw new UsageError(`--tls-ca-file: ${path} is not a file (it must be a PEM file of CA certificates)`);
    text = readFileSync(path, 'latin1');
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`--tls-ca-file: cannot read ${path}: ${code === 'ENOENT' ? 'it does not exist' : (err as Error).message}`);
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`--tls-ca-file: ${path} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`);
}

/**
 * Producer properties atkafka's no-loss guarantee rests on
 * (docs/invariants.md); a `--kafka-option` overriding one would silently turn
 * it off, or make librdkafka refuse the client only when it connects.
 */
const RESERVED: Record<string, string> = {
  'enable.idempotence': 'per-DID order across retries needs the idempotent producer',
  acks: 'confirmation needs acks=all',
  'request.required.acks': 'confirmation needs acks=all',
  'message.timeout.ms': 'a message must never expire in the client (message.timeout.ms=0)',
  'delivery.timeout.ms': 'a message must never expire in the client (message.timeout.ms=0)',
  partitioner: 'DIDs must land on the partitions the Go version puts them on (murmur2_random)',
  'delivery.report.only.error': 'the sink confirms by flushes and expects reports of failures only',
  dr_cb: 'the sink sets its own delivery reports',
  dr_msg_cb: 'the sink sets its own delivery reports',
  'queue.buffering.max.messages': 'the client queue is sized from --max-in-flight',
  'bootstrap.servers': 'use --bootstrap-servers',
  'metadata.broker.list': 'use --bootstrap-servers',
};

/** Numeric properties the idempotent producer constrains: librdkafka refuses other values only at connect time. */
const BOUNDED: Record<string, [number, number]> = {
  'max.in.flight.requests.per.connection': [1, 5],
  'max.in.flight': [1, 5],
  retries: [1, 2147483647],
  'message.send.max.retries': [1, 2147483647],
};

/** Property names whose values are not repeated in a message. */
const SECRET_PROPERTY = /pass|secret|key|token|cred|jaas|oauthbearer/i;

/** `--kafka-option key=value` list -> properties, refusing reserved keys and anything librdkafka does not accept. */
export function parseKafkaOptions(options: string[]): Record<string, string> {
  const extra: Record<string, string> = {};
  // The list is split at commas, but librdkafka's own lists have them too (debug=broker,topic):
  // a piece without "=" after a key=value piece belongs to it.
  const joined: string[] = [];
  for (const kv of options) {
    if (!kv.includes('=') && joined.length > 0 && kv.trim() !== '') joined[joined.length - 1] += `,${kv}`;
    else joined.push(kv);
  }
  for (const kv of joined) {
    const eq = kv.indexOf('=');
    const key = eq === -1 ? '' : kv.slice(0, eq).trim();
    if (key === '') throw new UsageError(`--kafka-option: "${eq === -1 && SECRET_PROPERTY.test(kv) ? '***' : kv}" is not key=value`);
    const value = kv.slice(eq + 1).trim();
    const reserved = RESERVED[key];
    if (reserved !== undefined) throw new UsageError(`--kafka-option: ${key} is set by atkafka and cannot be overridden: ${reserved}`);
    const bounds = BOUNDED[key];
    if (bounds !== undefined) {
      const n = Number(value);
      if (!/^\d+$/.test(value) || n < bounds[0] || n > bounds[1]) {
        throw new UsageError(`--kafka-option: ${key}=${value} must be between ${bounds[0]} and ${bounds[1]} with the idempotent producer`);
      }
    }
    extra[key] = value;
  }
  return extra;
}

/**
 * librdkafka checks each property when the client object is built (no
 * connection is made), so building one here turns an unknown property or a
 * bad value into a usage error naming it. Each extra option is tried on its
 * own first, so the message names the option the operator wrote rather than
 * librdkafka's alias for it (linger.ms is queue.buffering.max.ms).
 */
export function checkKafkaClientConfig(opts: KafkaSinkOptions, queueMessages: number): void {
  const base = checkProducerConfig({ ...opts, extra: {} }, queueMessages);
  if (base !== undefined) throw new UsageError(`the Kafka settings are refused by librdkafka: ${base}`);
  for (const [key, value] of Object.entries(opts.extra)) {
    const problem = checkProducerConfig({ ...opts, extra: { [key]: value } }, queueMessages);
    if (problem !== undefined) {
      const shown = SECRET_PROPERTY.test(key) ? `${key}=***` : `${key}=${value}`;
      const why = SECRET_PROPERTY.test(key) ? 'librdkafka refuses the value' : problem;
      throw new UsageError(`--kafka-option ${shown}: ${why}`);
    }
  }
  const all = checkProducerConfig(opts, queueMessages);
  if (all !== undefined) throw new UsageError(`the --kafka-option settings are refused by librdkafka together: ${all}`);
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** LOG_LEVEL is read by the logger, which throws on a level it does not know. */
export function checkLogLevel(env: NodeJS.ProcessEnv): void {
  const level = env.LOG_LEVEL;
  if (level !== undefined && !LOG_LEVELS.includes(level.toLowerCase())) {
    throw new UsageError(`LOG_LEVEL: "${level}" is not one of ${LOG_LEVELS.join(', ')}`);
  }
}

/** A websocket upstream (--relay-host, --tap-host): ws(s) or http(s), a real port. `schemes` is how the message lists them. */
export function checkUpstreamUrl(flag: string, value: string, example: string, schemes: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${flag}: "${redactUrl(value)}" is not a URL (like ${example})`);
  }
  if (!['ws:', 'wss:', 'http:', 'https:'].includes(url.protocol)) throw new UsageError(`${flag}: "${redactUrl(value)}" must start with ${schemes}`);
  if (url.port === '0') throw new UsageError(`${flag}: "${redactUrl(value)}" has port 0`);
  return url;
}

/** --cursor-save-interval, --stall-timeout and the reconnect backoff: what every streaming source with a cursor file takes. */
export function streamTimings(v: Map<string, unknown>): { cursorSaveIntervalMs: number; stallTimeoutMs: number; backoffInitialMs: number; backoffMaxMs: number } {
  const cursorSaveIntervalMs = v.get('cursor-save-interval') as number;
  if (cursorSaveIntervalMs < 10) throw new UsageError('--cursor-save-interval must be at least 10ms');
  const stallTimeoutMs = v.get('stall-timeout') as number;
  // Shorter than the gap between two messages of a healthy upstream, it would drop the connection over and over.
  if (stallTimeoutMs !== 0 && stallTimeoutMs < 100) throw new UsageError('--stall-timeout must be 0 (off) or at least 100ms');
  return { cursorSaveIntervalMs, stallTimeoutMs, ...reconnectBackoff(v.get('reconnect-backoff') as number, v.get('reconnect-backoff-max') as number) };
}

/** --reconnect-backoff and --reconnect-backoff-max, for every websocket source. */
export function reconnectBackoff(initialMs: number, maxMs: number): { backoffInitialMs: number; backoffMaxMs: number } {
  if (initialMs < 1 || maxMs < initialMs) throw new UsageError('--reconnect-backoff must be >= 1ms and <= --reconnect-backoff-max');
  return { backoffInitialMs: initialMs, backoffMaxMs: maxMs };
}
