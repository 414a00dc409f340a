import { Decompressor } from 'zstd-napi';

import { JETSTREAM_DICTIONARY } from '../format/jetstream-compress.ts';

/**
 * What `atkafka stats` counts a message under: one field of each count hash.
 * Pure apart from the shared zstd decompressor (which holds no state between
 * calls): a message in, labels out.
 */
export interface Labels {
  /** relay, tap, jetstream, ozone, wikimedia; `unknown` when neither a header nor the shape says. */
  source: string;
  /** commit, identity, account, sync, info, moderation, Wikimedia's stream (mediawiki.recentchange); `unknown` (JSON of no known shape), `undecodable`, `empty` (null value). */
  kind: string;
  /** The record's NSID, for record operations. */
  collection?: string;
  /** create, update, delete for record operations; Ozone's event type. */
  action?: string;
  /** Wikimedia: the event's type (recentchange: edit, new, log, categorize). */
  type?: string;
  /** Wikimedia: the wiki (enwiki, commonswiki...). */
  wiki?: string;
}

/** Kafka headers as the consumer hands them over: one single-key object each, values as bytes. */
export type RawHeaders = readonly Record<string, string | Buffer>[] | undefined;

const ZSTD_MAGIC = 0xfd2fb528;

let decompressor: Decompressor | undefined;

function decompress(value: Buffer): Buffer | undefined {
  if (decompressor === undefined) {
    decompressor = new Decompressor();
    decompressor.loadDictionary(JETSTREAM_DICTIONARY);
  }
  try {
    return decompressor.decompress(value);
  } catch {
    return undefined;
  }
}

/**
 * The labels of one message. The headers atkafka writes (kind, collection,
 * action, source) are enough when present, so the value is not even parsed;
 * otherwise the value's shape says: the at-kafka JSON, the Osprey envelope
 * around it, Jetstream's JSON (plain, or one zstd frame with Jetstream's
 * dictionary: header content-encoding: zstd, or the zstd magic when atkafka
 * ran with --kafka-headers=false), Ozone's event view, a Wikimedia event.
 * A Wikimedia event's wiki is only in its value (its headers: kind = the
 * stream, action = the type).
 */
export function labelsOf(value: Buffer | null | undefined, rawHeaders: RawHeaders): Labels {
  const h = headerMap(rawHeaders);
  const kind = h.get('kind');
  const source = h.get('source');
  if (kind !== undefined && source !== undefined && source !== 'wikimedia') {
    const labels: Labels = { source, kind };
    const collection = h.get('collection');
    const action = h.get('action');
    if (collection !== undefined && collection !== '') labels.collection = collection;
    if (action !== undefined && action !== '') labels.action = action;
    return labels;
  }
  const labels = valueLabels(value, h.get('content-encoding'));
  if (source !== undefined) labels.source = source;
  if (kind !== undefined) labels.kind = kind;
  const action = h.get('action');
  if (source === 'wikimedia' && labels.type === undefined && action !== undefined && action !== kind) labels.type = action;
  return labels;
}

function headerMap(raw: RawHeaders): Map<string, string> {
  const out = new Map<string, string>();
  if (raw === undefined) return out;
  for (const entry of raw) {
    for (const key in entry) {
      const v = entry[key]!;
      // atkafka writes each name once; of a name repeated by another producer, the first counts.
      if (!out.has(key)) out.set(key, typeof v === 'string' ? v : v.toString('utf8'));
    }
  }
  return out;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function valueLabels(value: Buffer | null | undefined, encoding: string | undefined): Labels {
  if (value === null || value === undefined || value.length === 0) return { source: 'unknown', kind: 'empty' };
  let bytes: Buffer | undefined = value;
  if (encoding === 'zstd' || (value.length >= 4 && value.readUInt32LE(0) === ZSTD_MAGIC)) bytes = decompress(value);
  if (bytes === undefined) return { source: 'unknown', kind: 'undecodable' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { source: 'unknown', kind: 'undecodable' };
  }
  if (!isObject(parsed)) return { source: 'unknown', kind: 'unknown' };
  // The Osprey envelope: {data: {action_name, action_id, data: <event>, timestamp, ...}, send_time}.
  const envelope = parsed.data;
  if (isObject(envelope) && typeof envelope.action_name === 'string' && isObject(envelope.data)) return shapeLabels(envelope.data);
  return shapeLabels(parsed);
}

function shapeLabels(v: Json): Labels {
  // Jetstream: {did, time_us, kind, commit{operation, collection, ...} | identity | account}.
  if (typeof v.time_us === 'number' && typeof v.kind === 'string') {
    const labels: Labels = { source: 'unknown', kind: v.kind };
    if (isObject(v.commit)) {
      const collection = str(v.commit.collection);
      const action = str(v.commit.operation);
      if (collection !== undefined) labels.collection = collection;
      if (action !== undefined) labels.action = action;
    }
    return labels;
  }
  // at-kafka: {did, timestamp, eventMetadata, operation{action, collection, ...} | identity | account | sync | info}.
  if (isObject(v.operation)) {
    const labels: Labels = { source: 'unknown', kind: 'commit' };
    const collection = str(v.operation.collection);
    const action = str(v.operation.action);
    if (collection !== undefined) labels.collection = collection;
    if (action !== undefined) labels.action = action;
    return labels;
  }
  for (const kind of ['identity', 'account', 'sync', 'info'] as const) {
    if (isObject(v[kind]) && typeof v.did === 'string') return { source: 'unknown', kind };
  }
  // Ozone's modEventView: {id, event{$type, ...}, subject, createdBy, createdAt}; only Ozone sends it.
  if (isObject(v.event) && typeof v.event.$type === 'string' && isObject(v.subject) && typeof v.createdBy === 'string') {
    const labels: Labels = { source: 'ozone', kind: 'moderation', action: v.event.$type };
    const m = typeof v.subject.uri === 'string' ? /^at:\/\/[^/]+\/([^/]+)/.exec(v.subject.uri) : null;
    if (m !== null) labels.collection = m[1]!;
    return labels;
  }
  // Wikimedia EventStreams: {$schema: /mediawiki/recentchange/1.0.0, meta{stream, domain}, type, wiki, server_name, ...};
  // the other streams (page-create, revision-create) name the wiki `database`.
  const meta = isObject(v.meta) ? v.meta : undefined;
  const schema = typeof v.$schema === 'string' ? /^\/mediawiki\/([a-z_-]+)\//.exec(v.$schema) : null;
  const stream = typeof meta?.stream === 'string' && meta.stream.startsWith('mediawiki.') ? meta.stream : schema !== null ? `mediawiki.${schema[1]}` : undefined;
  if (stream !== undefined) {
    // The stream as atkafka wikimedia's kind header names it.
    const labels: Labels = { source: 'wikimedia', kind: stream };
    const type = str(v.type);
    const wiki = str(v.wiki) ?? str(v.database) ?? str(v.server_name) ?? str(meta?.domain);
    if (type !== undefined) labels.type = type;
    if (wiki !== undefined) labels.wiki = wiki;
    return labels;
  }
  return { source: 'unknown', kind: 'unknown' };
}
