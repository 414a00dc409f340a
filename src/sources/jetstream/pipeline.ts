import { zstdDecompressSync } from 'node:zlib';

import { Decompressor } from 'zstd-napi';
import zstdBinding from 'zstd-napi/binding.js';

import { CursorFileError } from '../../checkpoint/cursor-file.ts';
import { Watermark, type Ticket } from '../../checkpoint/watermark.ts';
import { InputError } from '../../atproto/errors.ts';
import type { OutputFormat } from '../../decode/relay-frame.ts';
import { collectionMatcher, type CollectionFilter } from '../../filter/collections.ts';
import { JETSTREAM_DICTIONARY } from '../../format/jetstream-compress.ts';
import { PipelineCore, type StageOptions } from '../../pipeline/core.ts';
import type { MessageSink } from '../../sink/kafka/types.ts';
import type { Logger } from '../../telemetry/logger.ts';
import * as metrics from '../../telemetry/metrics.ts';
import { redactUrl } from '../../telemetry/redact.ts';
import { WsSubscription } from '../common/ws-subscription.ts';
import { loadJetstreamCursor, saveJetstreamCursor, type JetstreamCursor } from './cursor.ts';
import { atkafkaValue, parseJetstreamEvent, parseJetstreamHead, parseJetstreamHeadFast, timeOf } from './events.ts';
import { SeenWindow } from './seen.ts';

/** Jetstream's limits on what a subscriber may ask for (docs/jetstream-protocol.md). */
export const MAX_WANTED_COLLECTIONS = 100;
export const MAX_WANTED_DIDS = 10_000;
/** Longer query strings go in an options_update message instead (requireHello). */
const MAX_QUERY_CHARS = 4000;
/** Consecutive connections to one host that bring no message before the next host is tried. */
const FAILOVER_AFTER = 2;
const SEEN_MAX_KEYS = 200_000;
/** Jetstream sends records whole (up to the PDS's 1 MB record limit); no maxMessageSizeBytes is asked for, it would drop events. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface JetstreamPipelineOptions {
  /** ws(s):// base URLs (path /subscribe added), tried in order, failing over to the next. */
  hosts: string[];
  /** Collection filter: sent upstream as wantedCollections when it can be (else applied here only). */
  collections: CollectionFilter | undefined;
  /** Only these DIDs (wantedDids). */
  dids: string[];
  /** Ask for zstd-compressed messages (compress=true). */
  compress: boolean;
  cursorFile: string | undefined;
  /** time_us to start from when there is no cursor file (undefined: live). */
  initialCursor: number | undefined;
  cursorSaveIntervalMs: number;
  /** How far back (us) to resume on a host other than the one the cursor came from. */
  rewindUs: number;
  stallTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  maxInFlight: number;
  maxInFlightBytes: number;
  format: OutputFormat;
  /** --jetstream-compress: Jetstream's zstd frames may go to Kafka as they came. */
  passCompressed: boolean;
  userAgent: string;
  sink: MessageSink;
  stages?: Partial<StageOptions<JTicket>>;
  logger: Logger;
  onEventConfirmed?: (latencyMs: number) => void;
}

interface JTicket extends Ticket {
  key: string;
  host: string;
}

/** What the query asks upstream, and what must be filtered here because it could not be asked. */
export interface UpstreamFilter {
  wantedCollections: string[];
  wantedDids: string[];
  /** Collections are filtered here too (ignored-collections, or more than Jetstream takes). */
  localCollections: boolean;
  localDids: boolean;
}

export function upstreamFilter(collections: CollectionFilter | undefined, dids: string[]): UpstreamFilter {
  let wantedCollections: string[] = [];
  let localCollections = collections !== undefined;
  if (collections !== undefined && collections.mode === 'watched' && collections.exact.length + collections.prefixes.length <= MAX_WANTED_COLLECTIONS) {
    // Jetstream's `app.bsky.*` is ours: the prefix `app.bsky.`.
    wantedCollections = [...collections.exact, ...collections.prefixes.map((p) => `${p}*`)];
    localCollections = false;
  }
  const localDids = dids.length > MAX_WANTED_DIDS;
  return { wantedCollections, wantedDids: localDids ? [] : dids, localCollections, localDids };
}

/** The /subscribe URL of `host`; the filter goes in `hello` instead when it is too long for a URL. */
export function subscribeUrl(host: string, f: UpstreamFilter, compress: boolean, cursor: number | undefined): { url: string; hello: string | undefined } {
  const url = new URL(host);
  if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.pathname === '' || url.pathname === '/') url.pathname = '/subscribe';
  for (const name of ['wantedCollections', 'wantedDids', 'cursor', 'compress', 'requireHello', 'maxMessageSizeBytes']) url.searchParams.delete(name);
  const filter = new URLSearchParams();
  for (const c of f.wantedCollections) filter.append('wantedCollections', c);
  for (const d of f.wantedDids) filter.append('wantedDids', d);
  let hello: string | undefined;
  if (filter.toString().length > MAX_QUERY_CHARS) {
    url.searchParams.set('requireHello', 'true');
    hello = JSON.stringify({ type: 'options_update', payload: { wantedCollections: f.wantedCollections, wantedDids: f.wantedDids, maxMessageSizeBytes: 0 } });
  } else {
    for (const [k, v] of filter) url.searchParams.append(k, v);
  }
  if (compress) url.searchParams.set('compress', 'true');
  if (cursor !== undefined) url.searchParams.set('cursor', String(cursor));
  return { url: url.toString(), hello };
}

/**
 * Jetstream -> (at-kafka JSON | the Jetstream shape as received) -> Kafka.
 *
 * The position is time_us, a watermark of confirmed events saved with the
 * host it came from. time_us is each host's own ingest clock, and a replay
 * from a cursor is inclusive: so a reconnect resumes at the last time_us
 * read, a switch to another host resumes `rewindUs` earlier, and whatever
 * comes again is recognised by a key that is the same on every host (the
 * repo's revision and the record path, or the relay seq) and dropped. Every
 * event the new host has from the rewind point on is read, so the switch
 * loses nothing, and the keys of what was already produced make it repeat
 * nothing.
 */
export class JetstreamPipeline {
  readonly #o: JetstreamPipelineOptions;
  readonly #log: Logger;
  readonly #core: PipelineCore<JTicket>;
  readonly #filter: UpstreamFilter;
  readonly #keepCollection: ((c: string) => boolean) | undefined;
  readonly #keepDid: Set<string> | undefined;
  readonly #seen: SeenWindow;
  readonly #decompressor: Decompressor | undefined;
  #subscription!: WsSubscription;
  #watermark!: Watermark;
  #host = 0;
  #saved: JetstreamCursor | undefined;
  /** The last event read (handed on or dropped as seen): where a reconnect to its host resumes. */
  #lastRead: { timeUs: number; host: string } | undefined;
  #messagesThisConnection = 0;
  #failures = 0;
  #connects = 0;
  #hello: string | undefined;
  /** The cursor this connection asked for: anything older was read before (a server may replay from further back). */
  #floor: number | undefined;
  /** The confirmed events at the watermark's time_us (see cursor.ts). */
  #seam: string[] = [];
  #seamAt = -1;
  #watermarkHost = '';
  #savedValue: number | undefined;
  #saveTimer: NodeJS.Timeout | undefined;
  #saving: Promise<void> = Promise.resolve();
  #paused = false;
  #skippedLogAt = 0;
  #skippedSinceLog = 0;

  constructor(opts: JetstreamPipelineOptions) {
    this.#o = opts;
    this.#log = opts.logger;
    this.#filter = upstreamFilter(opts.collections, opts.dids);
    this.#keepCollection = this.#filter.localCollections && opts.collections !== undefined ? collectionMatcher(opts.collections) : undefined;
    this.#keepDid = this.#filter.localDids ? new Set(opts.dids) : undefined;
    // The rewind plus room for the hosts' clocks and lag to differ.
    this.#seen = new SeenWindow(opts.rewindUs / 1000 + 30_000, SEEN_MAX_KEYS);
    if (opts.compress) {
      this.#decompressor = new Decompressor();
      this.#decompressor.loadDictionary(JETSTREAM_DICTIONARY);
    }
    this.#core = new PipelineCore<JTicket>({
      source: 'jetstream',
      sink: opts.sink,
      maxInFlight: opts.maxInFlight,
      maxInFlightBytes: opts.maxInFlightBytes,
      stages: opts.stages ?? {},
      tracker: { seal: (t) => this.#watermark.seal(t), confirm: (t) => this.#watermark.confirm(t) },
      onProgress: () => this.#progress(),
      logger: opts.logger,
      positionHeader: 'time_us',
      onEventConfirmed: opts.onEventConfirmed,
    });
  }

  status(): { connected: boolean; host: string; cursor: number | undefined; lastTimeUs: number | undefined; inFlight: number; paused: boolean } {
    return {
      connected: this.#subscription?.connected ?? false,
      host: redactUrl(this.#o.hosts[this.#host]!),
      cursor: this.#watermark?.value,
      lastTimeUs: this.#lastRead?.timeUs,
      inFlight: this.#core.inFlight,
      paused: this.#paused,
    };
  }

  async run(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    if (o.cursorFile !== undefined) this.#saved = await loadJetstreamCursor(o.cursorFile);
    const saved = this.#saved;
    if (saved !== undefined) {
      const i = o.hosts.findIndex((h) => sameHost(h, saved.host));
      this.#host = i === -1 ? 0 : i;
      this.#seen.seed([...saved.recent, ...saved.seam], performance.now());
      this.#log.info(
        { cursorFile: o.cursorFile, cursor: saved.cursor, cursorTime: timeOf(saved.cursor), host: saved.host, savedAt: saved.savedAt, remembered: this.#seen.size },
        i === -1 ? 'resuming from a cursor of a host not in --jetstream-host: rewinding on the first of them' : 'resuming from saved cursor',
      );
      this.#watermarkHost = saved.host;
      this.#seam = saved.seam;
      this.#seamAt = saved.cursor;
      this.#savedValue = saved.cursor;
      metrics.upstreamConfirmed('jetstream', saved.cursor);
      metrics.jetstreamCursorSaved(saved.cursor);
    } else {
      this.#log.info({ cursorFile: o.cursorFile, initialCursor: o.initialCursor }, o.initialCursor === undefined ? 'no saved cursor, starting live' : 'no saved cursor, starting from --cursor');
    }
    if (this.#filter.localCollections) this.#log.warn({ collections: o.collections }, 'the collection filter is applied here, not by Jetstream (ignored collections, or more than Jetstream\'s 100): every commit is downloaded');
    if (this.#filter.localDids) this.#log.warn({ dids: o.dids.length }, `more than Jetstream's ${MAX_WANTED_DIDS} wanted DIDs: filtering DIDs here, every event is downloaded`);
    this.#watermark = new Watermark(saved?.cursor, undefined, (t) => this.#released(t as JTicket));
    metrics.jetstreamHosts(o.hosts.map(redactUrl), redactUrl(o.hosts[this.#host]!));

    this.#subscription = new WsSubscription({
      name: 'Jetstream',
      messages: 'any',
      url: () => this.#nextUrl(),
      onOpen: () => {
        this.#messagesThisConnection = 0;
        if (this.#hello !== undefined) this.#subscription.send(this.#hello);
      },
      onMessage: (data, isBinary) => this.#onMessage(data, isBinary),
      onConnection: (open) => metrics.jetstreamConnection(open),
      onReconnect: (reason) => metrics.jetstreamReconnect(reason),
      stallTimeoutMs: o.stallTimeoutMs,
      backoffInitialMs: o.backoffInitialMs,
      backoffMaxMs: o.backoffMaxMs,
      maxPayloadBytes: MAX_MESSAGE_BYTES,
      userAgent: o.userAgent,
      logger: this.#log.child({ component: 'jetstream' }),
    });
    const onAbort = () => this.#subscription.stop();
    signal.addEventListener('abort', onAbort, { once: true });
    this.#saveTimer = setInterval(() => void this.#save(false), o.cursorSaveIntervalMs);
    let failure: unknown;
    try {
      await this.#subscription.run();
    } catch (err) {
      failure = err;
    } finally {
      signal.removeEventListener('abort', onAbort);
      clearInterval(this.#saveTimer);
    }
    await this.#core.drain();
    await this.#save(true);
    this.#log.info({ cursor: this.#watermark.value, host: redactUrl(this.#watermarkHost) }, 'jetstream pipeline stopped');
    if (failure !== undefined) throw failure;
  }

  #nextUrl(): string {
    const o = this.#o;
    if (this.#connects++ > 0) {
      if (this.#messagesThisConnection === 0) this.#failures++;
      else this.#failures = 0;
      if (this.#failures >= FAILOVER_AFTER && o.hosts.length > 1) {
        const from = o.hosts[this.#host]!;
        this.#host = (this.#host + 1) % o.hosts.length;
        this.#failures = 0;
        metrics.jetstreamFailover();
        metrics.jetstreamHosts(o.hosts.map(redactUrl), redactUrl(o.hosts[this.#host]!));
        this.#log.warn({ from: redactUrl(from), to: redactUrl(o.hosts[this.#host]!), rewindMs: o.rewindUs / 1000 }, 'Jetstream host not answering: failing over to the next host');
      }
    }
    this.#messagesThisConnection = 0;
    const host = o.hosts[this.#host]!;
    const cursor = this.#resumeAt(host);
    this.#floor = cursor;
    const { url, hello } = subscribeUrl(host, this.#filter, o.compress, cursor);
    this.#hello = hello;
    return url;
  }

  /** Where to resume on `host`: a cursor of its own clock as is, one of another host's rewound. */
  #resumeAt(host: string): number | undefined {
    const from = this.#lastRead ?? (this.#saved === undefined ? undefined : { timeUs: this.#saved.cursor, host: this.#saved.host });
    if (from === undefined) return this.#o.initialCursor;
    return sameHost(from.host, host) ? from.timeUs : Math.max(1, from.timeUs - this.#o.rewindUs);
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    this.#messagesThisConnection++;
    let bytes: Buffer;
    try {
      bytes = isBinary ? this.#decompress(data) : data;
    } catch (err) {
      this.#skip(new InputError('invalid-frame', `undecodable zstd message: ${(err as Error).message}`), data.length);
      return;
    }
    // The Jetstream shape goes on as bytes: only the head (ASCII, in the first bytes) is read as text.
    let text = this.#o.format === 'jetstream' ? undefined : bytes.toString('utf8');
    let head;
    try {
      head = text === undefined ? (parseJetstreamHeadFast(bytes) ?? parseJetstreamHead((text = bytes.toString('utf8')))) : parseJetstreamHead(text);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      this.#skip(err, bytes.length);
      return;
    }
    if (this.#floor !== undefined && head.timeUs < this.#floor) {
      metrics.jetstreamDuplicate();
      return;
    }
    const host = this.#o.hosts[this.#host]!;
    this.#lastRead = { timeUs: head.timeUs, host };
    metrics.jetstreamRead(head.timeUs);
    const now = performance.now();
    if (!this.#seen.add(head.key, now)) {
      metrics.jetstreamDuplicate();
      return;
    }
    const ticket = this.#watermark.track(head.timeUs, now) as JTicket;
    ticket.key = head.key;
    ticket.host = host;
    // Filtered events complete at once, so the cursor moves past them too.
    if (this.#keepDid !== undefined && !this.#keepDid.has(head.did)) {
      this.#core.seal(ticket);
      return;
    }
    if (this.#keepCollection !== undefined && head.kind === 'commit' && !this.#keepCollection(head.collection)) {
      metrics.eventsFiltered('collection', 1);
      this.#core.seal(ticket);
      return;
    }
    let value: string | Uint8Array;
    let compressed = false;
    if (this.#o.format === 'jetstream') {
      // Jetstream's own bytes; with --jetstream-compress its own zstd frame (same dictionary), not compressed again.
      compressed = isBinary && this.#o.passCompressed;
      value = compressed ? data : bytes;
    } else {
      try {
        value = atkafkaValue(parseJetstreamEvent(text!));
      } catch (err) {
        // A record nested deep enough to exhaust the stack is bad input, not a bug.
        if (!(err instanceof InputError) && !(err instanceof RangeError)) throw err;
        this.#skip(err instanceof InputError ? err : new InputError('invalid-record', `unusable record: ${err.message}`), bytes.length);
        this.#core.seal(ticket);
        return;
      }
    }
    this.#core.send(ticket, head.did, head.timeUs, this.#timeOf(head.timeUs), { value, action: head.action, collection: head.collection, compressed });
    this.#core.seal(ticket);
    if (!this.#core.room() && !this.#paused) {
      this.#paused = true;
      metrics.backpressure(true);
      this.#subscription.pause();
    }
  }

  #decompress(data: Buffer): Buffer {
    if (this.#decompressor === undefined) throw new Error('a binary message, but compress=true was not asked for');
    // A frame says how large it decompresses to, and the decompressor allocates that much: a hostile
    // 20-byte frame could ask for gigabytes. Frames that do not say are decompressed with a cap.
    const size = zstdBinding.getFrameContentSize(data);
    if (size === null) return zstdDecompressSync(data, { dictionary: JETSTREAM_DICTIONARY, maxOutputLength: MAX_MESSAGE_BYTES });
    if (size > MAX_MESSAGE_BYTES) throw new Error(`the frame decompresses to ${size} bytes, over ${MAX_MESSAGE_BYTES}`);
    return this.#decompressor.decompress(data);
  }

  // Events come many to a millisecond: one ISO string per millisecond.
  #lastMs = -1;
  #lastIso = '';
  #timeOf(timeUs: number): string {
    const ms = Math.floor(timeUs / 1000);
    if (ms !== this.#lastMs) {
      this.#lastMs = ms;
      this.#lastIso = new Date(ms).toISOString();
    }
    return this.#lastIso;
  }

  #skip(err: InputError, bytes: number): void {
    metrics.inputSkipped('jetstream', err.reason);
    this.#skippedSinceLog++;
    const now = Date.now();
    if (now - this.#skippedLogAt < 10_000) return;
    this.#log.warn({ reason: err.reason, err: err.message, bytes, skippedSinceLastLog: this.#skippedSinceLog - 1 }, 'skipping a Jetstream message that cannot be read');
    this.#skippedLogAt = now;
    this.#skippedSinceLog = 0;
  }

  #released(t: JTicket): void {
    if (t.position !== this.#seamAt) {
      this.#seamAt = t.position;
      this.#seam = [];
    }
    this.#seam.push(t.key);
    this.#watermarkHost = t.host;
  }

  #progress(): void {
    if (this.#paused && this.#core.room()) {
      this.#paused = false;
      metrics.backpressure(false);
      this.#subscription.resume();
    }
  }

  #save(final: boolean): Promise<void> {
    this.#saving = this.#saving.then(async () => {
      const value = this.#watermark.value;
      if (value === undefined) return;
      metrics.upstreamConfirmed('jetstream', value);
      if (this.#o.cursorFile === undefined || (value === this.#savedValue && !final)) return;
      try {
        // After a drain everything read is confirmed: the keys of the window let a restart elsewhere repeat nothing.
        await saveJetstreamCursor(this.#o.cursorFile, { cursor: value, host: this.#watermarkHost, seam: this.#seam, recent: final ? this.#seen.keysSince(performance.now() - this.#o.rewindUs / 1000 - 5000) : [] });
        this.#savedValue = value;
        metrics.jetstreamCursorSaved(value);
      } catch (err) {
        this.#log.error({ err: (err as Error).message, cursorFile: this.#o.cursorFile }, 'cannot save the cursor file');
        if (final) throw new CursorFileError(`cannot save cursor file ${this.#o.cursorFile}: ${(err as Error).message}`);
      }
    });
    return this.#saving;
  }
}

/** Whether two host URLs name the same Jetstream (the same time_us clock): scheme aliases and paths aside. */
export function sameHost(a: string, b: string): boolean {
  const norm = (h: string) => {
    try {
      return new URL(h).host.toLowerCase();
    } catch {
      return h;
    }
  };
  return norm(a) === norm(b);
}
