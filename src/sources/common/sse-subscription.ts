import { setTimeout as sleep } from 'node:timers/promises';

import { createParser, type EventSourceMessage } from 'eventsource-parser';

import type { Logger } from '../../telemetry/logger.ts';
import { redactUrl } from '../../telemetry/redact.ts';
import { Backoff } from './backoff.ts';

export interface SseSubscriptionOptions {
  /** What the upstream is called in log lines. */
  name: string;
  url: string;
  /** Called before every connect: the Last-Event-ID to resume after (undefined: none). */
  lastEventId: () => string | undefined;
  /** Query parameters for a connection without a Last-Event-ID (a start time, say). */
  firstQuery?: () => Record<string, string>;
  /** Each event, synchronously, in order. */
  onEvent: (event: EventSourceMessage) => void;
  onConnection?: (open: boolean) => void;
  onReconnect?: (reason: string) => void;
  /** No byte (event or heartbeat) for this long while not paused: the stream is dead, reconnect. */
  stallTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** An event longer than this is a broken stream, not an event: reconnect. */
  maxEventBytes: number;
  userAgent: string;
  logger: Logger;
}

/**
 * A long-lived server-sent events subscription (WHATWG EventSource semantics,
 * parsed by eventsource-parser): reconnects with jittered backoff (at least
 * the server's `retry`), sends the last delivered id as `Last-Event-ID`, and
 * can pause: while paused the body is not read, so the server's TCP window,
 * not our memory, absorbs a slow Kafka. A connection that ends mid-event
 * drops that half event (the parser is reset), and the next resumes after the
 * last whole one.
 */
export class SseSubscription {
  readonly #o: SseSubscriptionOptions;
  readonly #backoff: Backoff;
  #paused = false;
  #resume: (() => void) | undefined;
  #stopped = false;
  #abort: AbortController | undefined;
  #connected = false;
  #retryMs = 0;
  #wake: (() => void) | undefined;
  #lastByteAt = 0;

  constructor(opts: SseSubscriptionOptions) {
    this.#o = opts;
    this.#backoff = new Backoff(opts.backoffInitialMs, opts.backoffMaxMs);
  }

  get connected(): boolean {
    return this.#connected;
  }

  async run(): Promise<void> {
    const o = this.#o;
    while (!this.#stopped) {
      const outcome = await this.#connectOnce();
      this.#setConnected(false);
      if (this.#stopped) break;
      if (outcome.gotEvents) this.#backoff.reset();
      const delay = Math.max(this.#retryMs, this.#backoff.next());
      o.onReconnect?.(outcome.reason);
      o.logger.warn({ reason: outcome.reason, detail: outcome.detail, retryInMs: delay }, `${o.name} stream lost, reconnecting`);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        sleep(delay, undefined, { ref: true }).then(resolve, resolve);
      });
      this.#wake = undefined;
    }
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#lastByteAt = performance.now();
    const r = this.#resume;
    this.#resume = undefined;
    r?.();
  }

  stop(): void {
    this.#stopped = true;
    this.#abort?.abort();
    this.#resume?.();
    this.#wake?.();
  }

  async #connectOnce(): Promise<{ reason: string; detail?: string; gotEvents: boolean }> {
    const o = this.#o;
    const url = new URL(o.url);
    const lastEventId = o.lastEventId();
    if (lastEventId === undefined) for (const [k, v] of Object.entries(o.firstQuery?.() ?? {})) url.searchParams.set(k, v);
    const headers: Record<string, string> = { accept: 'text/event-stream', 'user-agent': o.userAgent, 'cache-control': 'no-cache' };
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
    const abort = new AbortController();
    this.#abort = abort;
    let gotEvents = false;
    let stall: NodeJS.Timeout | undefined;
    let stalled = false;
    let tooLong = false;
    o.logger.info({ url: redactUrl(url.toString()), resuming: lastEventId !== undefined }, `connecting to ${o.name}`);
    try {
      const res = await fetch(url, { headers, signal: abort.signal });
      if (res.status !== 200) {
        const body = (await res.text().catch(() => '')).trim().slice(0, 300);
        return { reason: 'http-error', detail: `HTTP ${res.status}${body ? `: ${body}` : ''}`, gotEvents };
      }
      const type = res.headers.get('content-type') ?? '';
      if (!type.startsWith('text/event-stream')) {
        await res.body?.cancel();
        return { reason: 'http-error', detail: `content-type ${type}, not text/event-stream`, gotEvents };
      }
      this.#setConnected(true);
      o.logger.info(`${o.name} connected`);
      let pending = 0;
      const parser = createParser({
        onEvent: (event) => {
          pending = 0;
          gotEvents = true;
          o.onEvent(event);
        },
        // A heartbeat is a whole line too: what is pending starts again after it.
        onComment: () => {
          pending = 0;
        },
        onRetry: (ms) => {
          this.#retryMs = Math.min(ms, o.backoffMaxMs);
        },
      });
      this.#lastByteAt = performance.now();
      if (o.stallTimeoutMs > 0) {
        stall = setInterval(() => {
          if (this.#paused || performance.now() - this.#lastByteAt < o.stallTimeoutMs) return;
          stalled = true;
          abort.abort();
        }, Math.max(50, Math.min(1000, o.stallTimeoutMs / 4)));
      }
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        if (this.#paused) await new Promise<void>((resolve) => (this.#resume = resolve));
        if (this.#stopped) break;
        const { done, value } = await reader.read();
        if (done) break;
        this.#lastByteAt = performance.now();
        pending += value.byteLength;
        if (pending > o.maxEventBytes) {
          tooLong = true;
          abort.abort();
          break;
        }
        parser.feed(decoder.decode(value, { stream: true }));
      }
      // What came after the last blank line is half an event: never delivered (the next connection resumes before it).
      parser.reset({ consume: false });
      if (tooLong) return { reason: 'event-too-large', detail: `an event over ${o.maxEventBytes} bytes`, gotEvents };
      return { reason: this.#stopped ? 'stopped' : 'closed', detail: 'the server ended the stream', gotEvents };
    } catch (err) {
      if (this.#stopped) return { reason: 'stopped', gotEvents };
      if (stalled) return { reason: 'stalled', detail: `no byte for ${o.stallTimeoutMs} ms`, gotEvents };
      if (tooLong) return { reason: 'event-too-large', detail: `an event over ${o.maxEventBytes} bytes`, gotEvents };
      const e = err as Error & { cause?: { code?: string; message?: string } };
      return { reason: 'error', detail: e.cause?.code ?? e.cause?.message ?? e.message, gotEvents };
    } finally {
      clearInterval(stall);
      if (!abort.signal.aborted) abort.abort();
    }
  }

  #setConnected(open: boolean): void {
    if (this.#connected === open) return;
    this.#connected = open;
    this.#o.onConnection?.(open);
  }
}
