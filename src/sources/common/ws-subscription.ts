import { setTimeout as sleep } from 'node:timers/promises';

import { WebSocket, type RawData } from 'ws';

import type { Logger } from '../../telemetry/logger.ts';
import { redactUrl } from '../../telemetry/redact.ts';
import { Backoff } from './backoff.ts';

export interface WsSubscriptionOptions {
  /** What the upstream is called in log lines: `relay`, `Tap`. */
  name: string;
  /** Called before every connect: where to connect now (a relay puts its cursor in the URL). */
  url: () => string | Promise<string>;
  /** Extra request headers (e.g. Authorization); never logged. */
  headers?: Record<string, string>;
  /** `binary`: text messages are ignored with a warning; `text`: binary ones are; `any`: both are the caller's. */
  messages: 'binary' | 'text' | 'any';
  /** Gets each message synchronously, in order. */
  onMessage: (data: Buffer, isBinary: boolean) => void;
  /** The connection opened (e.g. to send what waited for it). */
  onOpen?: () => void;
  onConnection?: (open: boolean) => void;
  onReconnect?: (reason: string) => void;
  onOversize?: () => void;
  /**
   * Called after a connection ended, before deciding to reconnect: resolves
   * once every frame it delivered has been acted on, so an error frame that
   * came just before the close (FutureCursor) still decides what happens.
   */
  settle?: () => Promise<void>;
  /** No frame for this long while not paused: the socket is dead, reconnect. */
  stallTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** Largest websocket message the socket layer reads; decoding refuses 5 MB. */
  maxPayloadBytes: number;
  userAgent: string;
  logger: Logger;
}

export class FatalStreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FatalStreamError';
  }
}

/**
 * One long-lived websocket subscription (the relay's `subscribeRepos`, Tap's
 * `/channel`): connects, reconnects with jittered backoff to wherever the
 * caller says (its cursor), detects stalled sockets, and can stop reading
 * (pause) so the upstream's TCP window, not our memory, absorbs a slow Kafka.
 */
export class WsSubscription {
  readonly #opts: WsSubscriptionOptions;
  readonly #backoff: Backoff;
  #ws: WebSocket | undefined;
  #paused = false;
  #stopped = false;
  #fatal: Error | undefined;
  #stallTimer: NodeJS.Timeout | undefined;
  #lastFrameAt = 0;
  #wake: (() => void) | undefined;
  #connected = false;

  constructor(opts: WsSubscriptionOptions) {
    this.#opts = opts;
    this.#backoff = new Backoff(opts.backoffInitialMs, opts.backoffMaxMs);
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** Runs until stop(); rejects on an error that reconnecting cannot fix. */
  async run(): Promise<void> {
    const { logger } = this.#opts;
    const name = this.#opts.name;
    while (!this.#stopped) {
      const url = await this.#opts.url();
      if (this.#stopped) break;
      logger.info({ url: redactUrl(url) }, `connecting to ${name}`);
      const outcome = await this.#connectOnce(url);
      this.#setConnected(false);
      await this.#opts.settle?.();
      if (this.#fatal || this.#stopped) break;
      if (outcome.reason === 'frame-too-large') {
        this.#opts.onOversize?.();
        logger.error(
          { url: redactUrl(url), maxFrameBytes: this.#opts.maxPayloadBytes, detail: outcome.detail },
          `${name.toUpperCase()} SENT A FRAME LARGER THAN --max-frame-size: it cannot be read, so the stream is stuck right after this cursor; ` +
            'retrying with backoff. Raise --max-frame-size to read it (it is then skipped as invalid if above the 5 MB protocol limit)',
        );
      } else if (outcome.gotFrames) {
        this.#backoff.reset();
      }
      const delay = this.#backoff.next();
      this.#opts.onReconnect?.(outcome.reason);
      logger.warn({ reason: outcome.reason, detail: outcome.detail, retryInMs: delay }, `${name} connection lost, reconnecting`);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        sleep(delay, undefined, { ref: true }).then(resolve, resolve);
      });
      this.#wake = undefined;
    }
    // Also when the stop came while settling or waiting: a fatal error must not end as a clean stop.
    if (this.#fatal) throw this.#fatal;
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#clearStall();
    this.#ws?.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#armStall();
    this.#ws?.resume();
  }

  /** Close on purpose; a server error frame handler calls this with a fatal error. */
  stop(fatal?: Error): void {
    this.#stopped = true;
    if (fatal) this.#fatal ??= fatal;
    this.#ws?.close(1000);
    // A closing handshake can hang on a dead peer.
    const ws = this.#ws;
    if (ws) setTimeout(() => ws.terminate(), 2000).unref();
    this.#wake?.();
  }

  /** Drop the connection and reconnect (e.g. the server said ConsumerTooSlow). */
  reconnect(): void {
    this.#ws?.terminate();
  }

  /** Sends a text message on the open connection; false when there is none (the caller keeps it for the next). */
  send(text: string): boolean {
    const ws = this.#ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(text);
    return true;
  }

  #connectOnce(url: string): Promise<{ reason: string; detail?: string; gotFrames: boolean }> {
    return new Promise((resolve) => {
      let gotFrames = false;
      let reason = 'closed';
      let detail: string | undefined;
      const ws = new WebSocket(url, {
        headers: { 'user-agent': this.#opts.userAgent, ...this.#opts.headers },
        maxPayload: this.#opts.maxPayloadBytes,
        perMessageDeflate: false,
        handshakeTimeout: 30_000,
      });
      this.#ws = ws;
      ws.binaryType = 'nodebuffer';
      ws.on('open', () => {
        this.#setConnected(true);
        this.#opts.logger.info(`${this.#opts.name} connected`);
        if (this.#paused) ws.pause();
        else this.#armStall();
        this.#opts.onOpen?.();
      });
      ws.on('message', (data: RawData, isBinary: boolean) => {
        gotFrames = true;
        this.#lastFrameAt = performance.now();
        if (this.#opts.messages !== 'any' && isBinary !== (this.#opts.messages === 'binary')) {
          this.#opts.logger.warn(`ignoring ${isBinary ? 'binary' : 'text'} message from ${this.#opts.name}`);
          return;
        }
        this.#opts.onMessage(data as Buffer, isBinary);
      });
      // A server's pings say the socket is alive, also when a narrow filter leaves nothing to send.
      ws.on('ping', () => {
        this.#lastFrameAt = performance.now();
      });
      ws.on('unexpected-response', (_req, res) => {
        reason = 'http-error';
        detail = `HTTP ${res.statusCode}`;
        // The body says why (a bad parameter, say); a little of it is worth the log line.
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < 300) body += chunk;
        });
        res.on('end', () => {
          if (body.trim() !== '') detail = `HTTP ${res.statusCode}: ${body.trim().slice(0, 300)}`;
          ws.terminate();
        });
        res.on('error', () => ws.terminate());
        setTimeout(() => ws.terminate(), 2000).unref();
      });
      ws.on('error', (err) => {
        // ws refuses a message above maxPayload with this code (and closes with 1009).
        reason = (err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'frame-too-large' : 'error';
        detail = err.message;
      });
      ws.on('close', (code, buf) => {
        this.#clearStall();
        if (this.#ws === ws) this.#ws = undefined;
        if (reason === 'closed') detail = `code ${code}${buf.length ? ` ${buf.toString()}` : ''}`;
        resolve({ reason, detail, gotFrames });
      });
      this.#stallReason = () => {
        reason = 'stalled';
        detail = `no message for ${this.#opts.stallTimeoutMs} ms`;
      };
    });
  }

  #stallReason: () => void = () => {};

  // A timestamp per frame and a coarse timer, not a timer reset per frame.
  #armStall(): void {
    this.#clearStall();
    const timeout = this.#opts.stallTimeoutMs;
    if (timeout <= 0) return;
    this.#lastFrameAt = performance.now();
    this.#stallTimer = setInterval(() => {
      if (performance.now() - this.#lastFrameAt < timeout) return;
      this.#clearStall();
      this.#stallReason();
      this.#ws?.terminate();
    }, Math.max(50, Math.min(1000, timeout / 4)));
  }

  #clearStall(): void {
    if (this.#stallTimer) clearInterval(this.#stallTimer);
    this.#stallTimer = undefined;
  }

  #setConnected(open: boolean): void {
    this.#connected = open;
    this.#opts.onConnection?.(open);
  }
}

export function subscribeUrl(relayHost: string, cursor: number | undefined): string {
  const url = new URL(relayHost);
  if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol === 'http:') url.protocol = 'ws:';
  url.pathname = '/xrpc/com.atproto.sync.subscribeRepos';
  // Other parameters of --relay-host (an access token, say) are kept; only the cursor is ours.
  url.searchParams.delete('cursor');
  if (cursor !== undefined) url.searchParams.set('cursor', String(cursor));
  return url.toString();
}
