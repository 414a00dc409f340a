import type { EventSourceMessage } from 'eventsource-parser';

import { CursorFileError, CursorFileInvalid, readCursorJson, writeAtomically } from '../../checkpoint/cursor-file.ts';
import { Watermark, type Ticket } from '../../checkpoint/watermark.ts';
import { PipelineCore, type StageOptions } from '../../pipeline/core.ts';
import type { MessageSink } from '../../sink/kafka/types.ts';
import type { Logger } from '../../telemetry/logger.ts';
import * as metrics from '../../telemetry/metrics.ts';
import { SseSubscription } from '../common/sse-subscription.ts';

export interface WikimediaPipelineOptions {
  /** Base URL of EventStreams (https://stream.wikimedia.org); streams go after /v2/stream/. */
  baseUrl: string;
  streams: string[];
  /** Kafka key: the event's wiki, or its page (wiki and title). */
  key: 'wiki' | 'page';
  cursorFile: string | undefined;
  /** Without a cursor file: start at this time (EventStreams' `since`); undefined: now. */
  since: string | undefined;
  cursorSaveIntervalMs: number;
  stallTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  maxInFlight: number;
  maxInFlightBytes: number;
  userAgent: string;
  sink: MessageSink;
  stages?: Partial<StageOptions<WTicket>>;
  logger: Logger;
  onEventConfirmed?: (latencyMs: number) => void;
}

interface WTicket extends Ticket {
  id: string;
}

/**
 * The Wikimedia cursor on disk: the SSE id (a JSON array of Wikimedia's own
 * Kafka positions, one per topic-partition) of the last event that, with
 * every event before it, Kafka confirmed. Sent back as Last-Event-ID.
 */
export interface WikimediaCursor {
  lastEventId: string;
  streams: string[];
  savedAt: string;
}

export async function loadWikimediaCursor(path: string, streams: string[]): Promise<WikimediaCursor | undefined> {
  const parsed = await readCursorJson(path);
  if (parsed === undefined) return undefined;
  const v = parsed as Partial<WikimediaCursor>;
  if (typeof v.lastEventId !== 'string' || v.lastEventId === '' || !Array.isArray(v.streams)) {
    throw new CursorFileInvalid(`cursor file ${path} has no "lastEventId" and "streams" (is it another mode's cursor?); fix or remove it`);
  }
  const saved = v.streams.map(String);
  if (saved.join(',') !== streams.join(',')) {
    throw new CursorFileInvalid(`cursor file ${path} holds a position in the streams ${saved.join(',')}, not ${streams.join(',')}: remove it or point --cursor-file elsewhere`);
  }
  return { lastEventId: v.lastEventId, streams: saved, savedAt: typeof v.savedAt === 'string' ? v.savedAt : '' };
}

/**
 * Where to resume, per topic-partition of Wikimedia's own Kafka, as a Last-Event-ID. EventStreams'
 * own ids hold the next Kafka *timestamp* per partition, and a resume by timestamp starts at the first
 * offset at or after it: events share a timestamp (whole seconds of meta.dt) and are not in timestamp
 * order, so that resume skips or repeats some (docs/wikimedia-protocol.md). Every event says its own
 * topic, partition and offset (meta): resuming at offset + 1 is exact. Partitions no event came from
 * yet keep what the server's id says for them.
 */
export class Assignments {
  readonly #entries = new Map<string, Record<string, unknown>>();
  readonly #exact = new Set<string>();

  /** The server's id: its entries for partitions not yet known exactly. */
  mergeServerId(id: string): void {
    let a: unknown;
    try {
      a = JSON.parse(id);
    } catch {
      return;
    }
    if (!Array.isArray(a)) return;
    for (const e of a) {
      if (typeof e !== 'object' || e === null || typeof (e as { topic?: unknown }).topic !== 'string') continue;
      const key = `${(e as { topic: string }).topic}\0${String((e as { partition?: unknown }).partition ?? 0)}`;
      if (!this.#exact.has(key)) this.#entries.set(key, e as Record<string, unknown>);
    }
  }

  /** Our own saved id: its offsets are exact. */
  seed(id: string): void {
    this.mergeServerId(id);
    for (const e of this.#entries.values()) {
      const { topic, partition, offset } = e as { topic: string; partition?: unknown; offset?: unknown };
      if (typeof partition === 'number' && typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0) this.#exact.add(`${topic}\0${partition}`);
    }
  }

  /** An event at this offset was read: resume after it. */
  advance(topic: string, partition: number, offset: number): void {
    const key = `${topic}\0${partition}`;
    this.#exact.add(key);
    this.#entries.set(key, { topic, partition, offset: offset + 1 });
  }

  get size(): number {
    return this.#entries.size;
  }

  toId(): string {
    return JSON.stringify([...this.#entries.values()]);
  }
}

/**
 * Wikimedia EventStreams (server-sent events) -> Kafka, one message per event,
 * the event's JSON as sent. Events complete in arrival order; the cursor is
 * the id of the last one that Kafka confirmed with all before it, and a
 * reconnect sends the id of the last one read (those after the cursor are
 * still in flight, not lost).
 */
export class WikimediaPipeline {
  readonly #o: WikimediaPipelineOptions;
  readonly #log: Logger;
  readonly #core: PipelineCore<WTicket>;
  #subscription!: SseSubscription;
  #watermark!: Watermark;
  #n = 0;
  #lastReadId: string | undefined;
  readonly #read = new Assignments();
  #confirmedId: string | undefined;
  #savedId: string | undefined;
  #paused = false;
  #saving: Promise<void> = Promise.resolve();
  #skippedLogAt = 0;
  #lastEventMs: number | undefined;

  constructor(opts: WikimediaPipelineOptions) {
    this.#o = opts;
    this.#log = opts.logger;
    this.#core = new PipelineCore<WTicket>({
      source: 'wikimedia',
      sink: opts.sink,
      maxInFlight: opts.maxInFlight,
      maxInFlightBytes: opts.maxInFlightBytes,
      stages: opts.stages ?? {},
      tracker: { seal: (t) => this.#watermark.seal(t), confirm: (t) => this.#watermark.confirm(t) },
      onProgress: () => this.#progress(),
      logger: opts.logger,
      positionHeader: 'offset',
      onEventConfirmed: opts.onEventConfirmed,
    });
  }

  status(): { connected: boolean; lastEventId: string | undefined; inFlight: number; paused: boolean } {
    return { connected: this.#subscription?.connected ?? false, lastEventId: this.#confirmedId, inFlight: this.#core.inFlight, paused: this.#paused };
  }

  async run(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    const saved = o.cursorFile === undefined ? undefined : await loadWikimediaCursor(o.cursorFile, o.streams);
    if (saved !== undefined) {
      this.#lastReadId = saved.lastEventId;
      this.#read.seed(saved.lastEventId);
      this.#confirmedId = saved.lastEventId;
      this.#savedId = saved.lastEventId;
      this.#log.info({ cursorFile: o.cursorFile, lastEventId: saved.lastEventId, savedAt: saved.savedAt }, 'resuming from saved cursor');
    } else {
      this.#log.info({ cursorFile: o.cursorFile, since: o.since }, o.since === undefined ? 'no saved cursor, starting live' : 'no saved cursor, starting at --since');
    }
    this.#watermark = new Watermark(undefined, undefined, (t) => {
      this.#confirmedId = (t as WTicket).id;
    });
    const url = `${o.baseUrl.replace(/\/+$/, '')}/v2/stream/${o.streams.join(',')}`;
    this.#subscription = new SseSubscription({
      name: 'Wikimedia EventStreams',
      url,
      lastEventId: () => this.#lastReadId,
      firstQuery: (): Record<string, string> => (o.since === undefined ? {} : { since: o.since }),
      onEvent: (e) => this.#onEvent(e),
      onConnection: (open) => metrics.wikimediaConnection(open),
      onReconnect: (reason) => metrics.wikimediaReconnect(reason),
      stallTimeoutMs: o.stallTimeoutMs,
      backoffInitialMs: o.backoffInitialMs,
      backoffMaxMs: o.backoffMaxMs,
      maxEventBytes: 4 * 1024 * 1024,
      userAgent: o.userAgent,
      logger: this.#log.child({ component: 'wikimedia' }),
    });
    const onAbort = () => this.#subscription.stop();
    signal.addEventListener('abort', onAbort, { once: true });
    const timer = setInterval(() => void this.#save(false), o.cursorSaveIntervalMs);
    try {
      await this.#subscription.run();
    } finally {
      signal.removeEventListener('abort', onAbort);
      clearInterval(timer);
    }
    await this.#core.drain();
    await this.#save(true);
    this.#log.info({ lastEventId: this.#confirmedId }, 'wikimedia pipeline stopped');
  }

  #onEvent(e: EventSourceMessage): void {
    // Only `message` events carry data (EventStreams sends no others); an event without an id cannot be resumed after.
    if (e.event !== undefined && e.event !== 'message') return;
    const id = e.id;
    const ticket = this.#watermark.track(++this.#n, performance.now()) as WTicket;
    if (id !== undefined) this.#read.mergeServerId(id);
    let event: { wiki?: unknown; title?: unknown; type?: unknown; meta?: { dt?: unknown; stream?: unknown; topic?: unknown; partition?: unknown; offset?: unknown }; timestamp?: unknown };
    try {
      event = JSON.parse(e.data) as typeof event;
      if (typeof event !== 'object' || event === null || Array.isArray(event)) throw new Error('not a JSON object');
    } catch (err) {
      if (this.#read.size > 0) this.#lastReadId = this.#read.toId();
      ticket.id = this.#lastReadId ?? '';
      metrics.inputSkipped('wikimedia', 'invalid-event');
      const now = Date.now();
      if (now - this.#skippedLogAt > 10_000) {
        this.#log.warn({ id, err: (err as Error).message, bytes: e.data.length }, 'skipping a Wikimedia event that is not a JSON object');
        this.#skippedLogAt = now;
      }
      this.#core.seal(ticket);
      return;
    }
    const meta = event.meta;
    if (typeof meta?.topic === 'string' && typeof meta.partition === 'number' && typeof meta.offset === 'number' && Number.isSafeInteger(meta.offset) && meta.offset >= 0) {
      this.#read.advance(meta.topic, meta.partition, meta.offset);
    }
    if (this.#read.size > 0) this.#lastReadId = this.#read.toId();
    ticket.id = this.#lastReadId ?? '';
    const wiki = typeof event.wiki === 'string' ? event.wiki : '';
    const key = this.#o.key === 'page' && typeof event.title === 'string' ? `${wiki}/${event.title}` : wiki || '<unknown>';
    const stream = typeof event.meta?.stream === 'string' ? event.meta.stream : 'wikimedia';
    const type = typeof event.type === 'string' ? event.type : stream;
    const dt = typeof event.meta?.dt === 'string' ? event.meta.dt : typeof event.timestamp === 'number' ? new Date(event.timestamp * 1000).toISOString() : new Date().toISOString();
    const ms = Date.parse(dt);
    if (Number.isFinite(ms)) {
      this.#lastEventMs = ms;
      metrics.wikimediaRead(ms);
    }
    // The event's offset in Wikimedia's own Kafka topic (the SSE id may hold timestamps instead).
    const offset = typeof event.meta?.offset === 'number' && Number.isSafeInteger(event.meta.offset) ? event.meta.offset : undefined;
    this.#core.send(ticket, key, offset, dt, { value: e.data, action: type, collection: '', kind: stream });
    this.#core.seal(ticket);
    if (!this.#core.room() && !this.#paused) {
      this.#paused = true;
      metrics.backpressure(true);
      this.#subscription.pause();
    }
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
      const id = this.#confirmedId;
      if (id === undefined || this.#o.cursorFile === undefined || (id === this.#savedId && !final)) return;
      try {
        await writeAtomically(this.#o.cursorFile, `${JSON.stringify({ lastEventId: id, streams: this.#o.streams, savedAt: new Date().toISOString() })}\n`);
        this.#savedId = id;
        metrics.wikimediaCursorSaved(this.#lastEventMs);
      } catch (err) {
        this.#log.error({ err: (err as Error).message, cursorFile: this.#o.cursorFile }, 'cannot save the cursor file');
        if (final) throw new CursorFileError(`cannot save cursor file ${this.#o.cursorFile}: ${(err as Error).message}`);
      }
    });
    return this.#saving;
  }
}
