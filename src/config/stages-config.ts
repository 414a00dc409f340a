import { UsageError, type FlagValue } from '../cli/flags.ts';
import { collectionFilter, FilterPatternError, serviceFilter, type CollectionFilter, type ServiceFilter } from '../filter/index.ts';
import { checkTopicTemplate, TopicTemplateError } from '../format/topic-template.ts';
import type { OutputFormat } from '../decode/relay-frame.ts';
import { redactUrl } from '../telemetry/redact.ts';

/** What the shared stages after decoding do: filters, enrichment, Osprey envelope, routing. */
export interface StagesConfig {
  collections: CollectionFilter | undefined;
  services: ServiceFilter | undefined;
  enrich: boolean;
  /** Without a trailing slash. */
  plcHost: string;
  apiHost: string | undefined;
  enrichTimeoutMs: number;
  enrichConcurrency: number;
  identityCacheEntries: number;
  plcRateLimit: number;
  allowPrivateIdentityHosts: boolean;
  dnsServers: string[];
  handleWellKnownUrl: string;
  didWebUrl: string;
  osprey: { workerId: number; epochMs: number } | undefined;
  topicTemplate: string | undefined;
  kafkaHeaders: boolean;
  /** The JSON shape of messages (`--format`). */
  format: OutputFormat;
  /** Each message one zstd frame with Jetstream's dictionary. */
  jetstreamCompress: boolean;
}

export const DEFAULT_PLC_HOST = 'https://plc.directory';

type Values = Map<string, FlagValue | undefined>;
const get = <T extends FlagValue | undefined>(v: Values, name: string) => v.get(name) as T;
const list = (v: Values, name: string) => (get<string[] | undefined>(v, name) ?? []).map((s) => s.trim()).filter((s) => s !== '');

export function stagesConfig(v: Values): StagesConfig {
  const watchedCollections = list(v, 'watched-collections');
  const ignoredCollections = list(v, 'ignored-collections');
  if (watchedCollections.length > 0 && ignoredCollections.length > 0) {
    throw new UsageError('give --watched-collections or --ignored-collections, not both');
  }
  const watchedServices = list(v, 'watched-services');
  const ignoredServices = list(v, 'ignored-services');
  if (watchedServices.length > 0 && ignoredServices.length > 0) throw new UsageError('give --watched-services or --ignored-services, not both');

  const plcFlag = (get<string | undefined>(v, 'plc-host') ?? '').trim();
  // As the Go version: the PDS host comes from DID documents, so a service filter names where they come from.
  if ((watchedServices.length > 0 || ignoredServices.length > 0) && plcFlag === '') {
    throw new UsageError('--watched-services and --ignored-services need --plc-host (where DID documents come from)');
  }
  const plcHost = plcFlag === '' ? DEFAULT_PLC_HOST : httpBase('--plc-host', plcFlag);
  const apiFlag = (get<string | undefined>(v, 'api-host') ?? '').trim();
  const apiHost = apiFlag === '' ? undefined : httpBase('--api-host', apiFlag);

  let collections: CollectionFilter | undefined;
  let services: ServiceFilter | undefined;
  try {
    if (watchedCollections.length > 0) collections = collectionFilter('watched', watchedCollections);
    if (ignoredCollections.length > 0) collections = collectionFilter('ignored', ignoredCollections);
  } catch (err) {
    if (err instanceof FilterPatternError) throw new UsageError(`--${watchedCollections.length > 0 ? 'watched' : 'ignored'}-collections: ${err.message}`);
    throw err;
  }
  try {
    if (watchedServices.length > 0) services = serviceFilter('watched', watchedServices);
    if (ignoredServices.length > 0) services = serviceFilter('ignored', ignoredServices);
  } catch (err) {
    if (err instanceof FilterPatternError) throw new UsageError(`--${watchedServices.length > 0 ? 'watched' : 'ignored'}-services: ${err.message}`);
    throw err;
  }

  const enrichTimeoutMs = get<number>(v, 'enrich-timeout');
  if (enrichTimeoutMs < 10 || enrichTimeoutMs > 60_000) throw new UsageError('--enrich-timeout must be between 10ms and 60s');
  const enrichConcurrency = get<number>(v, 'enrich-concurrency');
  if (enrichConcurrency < 1 || enrichConcurrency > 10_000) throw new UsageError('--enrich-concurrency must be between 1 and 10000');
  const identityCacheEntries = get<number>(v, 'identity-cache-entries');
  if (identityCacheEntries < 100 || identityCacheEntries > 10_000_000) throw new UsageError('--identity-cache-entries must be between 100 and 10000000');
  const plcRateLimit = get<number>(v, 'plc-rate-limit');
  if (plcRateLimit < 1 || plcRateLimit > 1_000_000) throw new UsageError('--plc-rate-limit must be between 1 and 1000000');
  const dnsServers = list(v, 'dns-servers');
  for (const s of dnsServers) {
    if (!/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\])(:\d{1,5})?$|^[0-9a-fA-F:]+$/.test(s)) {
      throw new UsageError(`--dns-servers: "${s}" is not an IP address (optionally :port)`);
    }
  }
  const handleWellKnownUrl = urlTemplate(v, 'handle-well-known-url', '{handle}');
  const didWebUrl = urlTemplate(v, 'did-web-url', '{host}');

  const osprey = ospreyConfig(v);
  const topicTemplate = topicTemplateConfig(v);
  const { format, jetstreamCompress } = formatConfig(v, osprey !== undefined);

  return {
    collections,
    services,
    enrich: get<boolean>(v, 'enrich'),
    plcHost,
    apiHost,
    enrichTimeoutMs,
    enrichConcurrency,
    identityCacheEntries,
    plcRateLimit,
    allowPrivateIdentityHosts: get<boolean>(v, 'allow-private-identity-hosts'),
    dnsServers,
    handleWellKnownUrl,
    didWebUrl,
    osprey,
    topicTemplate,
    kafkaHeaders: get<boolean>(v, 'kafka-headers'),
    format,
    jetstreamCompress,
  };
}

/** `--format` and `--jetstream-compress`. */
export function formatConfig(v: Values, osprey: boolean): { format: OutputFormat; jetstreamCompress: boolean } {
  const format = (get<string | undefined>(v, 'format') ?? 'atkafka').trim().toLowerCase();
  if (format !== 'atkafka' && format !== 'jetstream') throw new UsageError(`--format: "${format}" is not atkafka or jetstream`);
  const jetstreamCompress = get<boolean | undefined>(v, 'jetstream-compress') ?? false;
  if (jetstreamCompress && format !== 'jetstream') throw new UsageError('--jetstream-compress needs --format jetstream (it is what Jetstream clients decode)');
  if (jetstreamCompress && osprey) throw new UsageError('--jetstream-compress and --osprey-compatible exclude each other: Osprey reads JSON, not zstd frames');
  return { format, jetstreamCompress };
}

/** `--osprey-compatible` and its snowflake settings. */
export function ospreyConfig(v: Values): StagesConfig['osprey'] {
  if (!get<boolean>(v, 'osprey-compatible')) return undefined;
  const workerId = get<number>(v, 'osprey-worker-id');
  if (workerId < 0 || workerId > 1023) throw new UsageError('--osprey-worker-id must be between 0 and 1023');
  const epochMs = get<number>(v, 'osprey-epoch');
  if (epochMs < 0 || epochMs > Date.now()) throw new UsageError('--osprey-epoch must be a unix time in ms, not in the future');
  return { workerId, epochMs };
}

export function topicTemplateConfig(v: Values): string | undefined {
  const template = (get<string | undefined>(v, 'topic-template') ?? '').trim();
  if (template === '') return undefined;
  try {
    checkTopicTemplate(template);
  } catch (err) {
    if (err instanceof TopicTemplateError) throw new UsageError(`--topic-template: ${err.message}`);
    throw err;
  }
  return template;
}

/** An http(s) base URL, checked as the Go version checks --plc-host (a request URI with a host), without a trailing slash. */
export function httpBase(flag: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${flag}: "${redactUrl(value)}" is not a URL (like https://plc.directory)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${flag} must be http or https, got "${url.protocol.slice(0, -1)}"`);
  if (url.hostname === '') throw new UsageError(`${flag}: "${redactUrl(value)}" has no host`);
  if (url.search !== '' || url.hash !== '') throw new UsageError(`${flag}: "${redactUrl(value)}" must not have a query or fragment`);
  return value.replace(/\/+$/, '');
}

function urlTemplate(v: Values, flag: string, placeholder: string): string {
  const value = get<string>(v, flag).trim();
  if (!value.includes(placeholder)) throw new UsageError(`--${flag}: "${redactUrl(value)}" must contain ${placeholder}`);
  let url: URL;
  try {
    url = new URL(value.replace(placeholder, 'example.com'));
  } catch {
    throw new UsageError(`--${flag}: "${redactUrl(value)}" is not a URL template (like https://${placeholder}/...)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--${flag} must be http or https`);
  return value;
}

/** The stages of a source whose events go to Kafka as they came (Ozone, Wikimedia): no filters, no identity lookups. */
export function passThroughStages(v: Values): StagesConfig {
  return {
    collections: undefined,
    services: undefined,
    enrich: false,
    plcHost: DEFAULT_PLC_HOST,
    apiHost: undefined,
    enrichTimeoutMs: 1000,
    enrichConcurrency: 1,
    identityCacheEntries: 100,
    plcRateLimit: 1,
    allowPrivateIdentityHosts: false,
    dnsServers: [],
    handleWellKnownUrl: '',
    didWebUrl: '',
    osprey: ospreyConfig(v),
    topicTemplate: topicTemplateConfig(v),
    format: 'atkafka',
    jetstreamCompress: false,
    kafkaHeaders: get<boolean>(v, 'kafka-headers'),
  };
}
