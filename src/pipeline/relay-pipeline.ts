import { CursorFileError, loadCursor, saveCursor } from '../checkpoint/cursor-file.ts';
import { Watermark, type Ticket } from '../checkpoint/watermark.ts';
import { createFrameDecoder, type FrameDecoder } from '../decode/decoder.ts';
import type { DecodedFrame, Skipped } from '../decode/relay-frame.ts';
import { UNKNOWN_KEY } from '../format/atkafka.ts';
import type { MessageSink } from '../sink/kafka/types.ts';
import type { Logger } from '../telemetry/logger.ts';
import * as metrics from '../telemetry/metrics.ts';
import { FatalStreamError, RelaySubscription } from '../sources/relay/subscription.ts';

/** Frame bytes the decode threads may have queued: plenty to keep them busy, and a bound on memory whatever the frame sizes. */
const DECODE_BACKLOG_BYTES = 32 * 1024 * 1024;

export interface RelayPipelineOptions {
  relayHost: string;
  /** Where the confirmed position lives; undefined keeps it in memory only. */
  cursorFile: string | undefined;
  /** Start here when no cursor file exists (undefined: start live). */
  initialCursor: number | undefined;
  cursorSaveIntervalMs: number;
  /** Kafka messages awaiting confirmation (plus frames being decoded) before reading stops. */
  maxInFlight: number;
  /** Threads that decode frames; 0 decodes on the main thread. */
  decodeThreads: number;
  stallTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  userAgent: string;
  sink: MessageSink;
  logger: Logger;
  /** Called with each event's read-to-confirmed latency in ms (benchmarks). */
  onEventConfirmed?: (latencyMs: number) => void;
}

export interface RelayPipelineStatus {
  connected: boolean;
  cursor: number | undefined;
  lastSeq: number | undefined;
  inFlight: number;
  paused: boolean;
}

/**
 * Relay firehose -> decode -> at-kafka JSON -> Kafka -> cursor.
 *
 * The cursor saved to disk is the watermark of Kafka confirmations, so a
 * crash replays at most what was in flight (docs/invariants.md). Within one
 * process, a reconnect resumes after the last seq handed to the sink instead:
 * the sink retries until confirmed, so re-reading those would only duplicate.
 */
export class RelayPipeline {
  readonly #opts: RelayPipelineOptions;
  readonly #log: Logger;
  #watermark!: Watermark;
  #subscription!: RelaySubscription;
  #decoder!: FrameDecoder;
  /** Highest seq handed to the sink (or skipped on purpose). */
  #lastSeq: number | undefined;
  #paused = false;
  #savedSeq: number | undefined;
  #saving: Promise<void> = Promise.resolve();
  #saveTimer: NodeJS.Timeout | undefined;
  #reconnected = true;
  #lastGapLog = 0;
  #gapsSinceLog = 0;

  constructor(opts: RelayPipelineOptions) {
    this.#opts = opts;
    this.#log = opts.logger;
    opts.sink.onConfirmed((ticket) => this.#confirmed(ticket as Ticket | null));
  }

  status(): RelayPipelineStatus {
    return {
      connected: this.#subscription?.connected ?? false,
      cursor: this.#watermark?.value,
      lastSeq: this.#lastSeq,
      inFlight: this.#opts.sink.inFlight,
      paused: this.#paused,
    };
  }

  /** Runs until the signal aborts (then drains and saves) or a fatal error. */
  async run(signal: AbortSignal): Promise<void> {
    const opts = this.#opts;
    const start = await this.#startCursor();
    this.#lastSeq = start;
    this.#savedSeq = start;
    if (start !== undefined) metrics.relayCursorSaved(start);
    this.#watermark = new Watermark(start);
    this.#decoder = createFrameDecoder({
      threads: opts.decodeThreads,
      onDecoded: (frame, receivedAt) => this.#onDecoded(frame, receivedAt),
      onFatal: (err) => {
        this.#log.fatal({ err }, 'a decode thread failed');
        this.#subscription.stop(new FatalStreamError(`internal error in a decode thread: ${err.message}`));
      },
    });
    const decoder = this.#decoder;
    metrics.decodeBacklogFrom(() => decoder.pending);
    this.#subscription = new RelaySubscription({
      relayHost: opts.relayHost,
      cursor: async () => {
        // Frames of the old connection still being decoded come first: resume after the last of them.
        await this.#decoder.drained();
        this.#reconnected = true;
        return this.#lastSeq;
      },
      onFrame: (frame) => this.#onFrame(frame),
      stallTimeoutMs: opts.stallTimeoutMs,
      backoffInitialMs: opts.backoffInitialMs,
      backoffMaxMs: opts.backoffMaxMs,
      maxPayloadBytes: 64 * 1024 * 1024,
      userAgent: opts.userAgent,
      logger: this.#log.child({ component: 'relay' }),
    });

    const onAbort = () => this.#subscription.stop();
    signal.addEventListener('abort', onAbort, { once: true });
    if (opts.cursorFile !== undefined) {
      this.#saveTimer = setInterval(() => void this.#saveCursor(), opts.cursorSaveIntervalMs);
    }
    let failure: unknown;
    try {
      await this.#subscription.run();
    } catch (err) {
      failure = err;
    } finally {
      signal.removeEventListener('abort', onAbort);
      clearInterval(this.#saveTimer);
    }
    // Stopped reading: everything read is decoded and confirmed by Kafka before the final save.
    await this.#decoder.drained();
    this.#log.info({ inFlight: opts.sink.inFlight }, 'draining Kafka');
    await opts.sink.flush();
    await this.#decoder.close();
    await this.#saveCursor();
    this.#log.info({ cursor: this.#watermark.value }, 'relay pipeline stopped');
    if (failure !== undefined) throw failure;
  }

  async #startCursor(): Promise<number | undefined> {
    const { cursorFile, relayHost, initialCursor } = this.#opts;
    if (cursorFile === undefined) return initialCursor;
    const saved = await loadCursor(cursorFile);
    if (saved === undefined) {
      this.#log.info({ cursorFile, initialCursor }, initialCursor === undefined ? 'no saved cursor, starting live' : 'no saved cursor, starting from --cursor');
      return initialCursor;
    }
    if (normalizeHost(saved.relayHost) !== normalizeHost(relayHost)) {
      throw new CursorFileError(
        `cursor file ${cursorFile} holds seq ${saved.seq} of ${saved.relayHost}, not of ${relayHost}; seqs differ between relays: remove the file or point --cursor-file elsewhere`,
      );
    }
    this.#log.info({ cursorFile, cursor: saved.seq, savedAt: saved.savedAt }, 'resuming from saved cursor');
    return saved.seq;
  }

  #onFrame(frame: Uint8Array): void {
    this.#decoder.push(frame, performance.now());
    if (!this.#paused && this.#full()) this.#setPaused(true);
  }

  /**
   * Reading pauses when frames being decoded plus messages awaiting Kafka reach
   * the cap, or when the decode threads fall behind (their backlog is copied
   * frames: better left in the kernel's socket buffer). It resumes at half.
   */
  #full(): boolean {
    const decoder = this.#decoder;
    return decoder.pending + this.#opts.sink.inFlight >= this.#opts.maxInFlight || decoder.pendingBytes >= DECODE_BACKLOG_BYTES;
  }

  #halfEmpty(): boolean {
    const decoder = this.#decoder;
    return decoder.pending + this.#opts.sink.inFlight <= this.#opts.maxInFlight / 2 && decoder.pendingBytes <= DECODE_BACKLOG_BYTES / 2;
  }

  #onDecoded(frame: DecodedFrame, receivedAt: number): void {
    switch (frame.kind) {
      case 'event': {
        if (this.#accept(frame.seq, frame.time)) {
          const ticket = this.#watermark.track(frame.seq, receivedAt);
          for (const skipped of frame.skipped) this.#skipInput(skipped, { seq: frame.seq, did: frame.did, path: skipped.path });
          for (const message of frame.messages) {
            metrics.eventHandled(message.action, message.collection);
            this.#send(ticket, frame.did, message.value);
          }
          this.#seal(ticket);
        }
        break;
      }
      case 'info': {
        if (frame.name === 'OutdatedCursor') {
          metrics.relayOutdatedCursor();
          this.#log.error(
            { cursor: this.#lastSeq, message: frame.message },
            'RELAY SAYS OutdatedCursor: our cursor is older than what it retains; events between our cursor and its oldest were LOST upstream',
          );
        } else {
          this.#log.warn({ name: frame.name, message: frame.message }, 'relay info');
        }
        metrics.eventHandled('info', '');
        // #info has no seq: it is delivered, but no position depends on it.
        this.#opts.sink.send(UNKNOWN_KEY, frame.value, null);
        break;
      }
      case 'error': {
        if (frame.error === 'FutureCursor') {
          this.#subscription.stop(
            new FatalStreamError(
              `relay says FutureCursor: cursor ${String(this.#lastSeq)} is ahead of its stream; is the cursor file from another relay? (${frame.message ?? ''})`,
            ),
          );
        } else if (frame.error === 'ConsumerTooSlow') {
          this.#log.warn({ message: frame.message }, 'relay dropped us as too slow, reconnecting from the last handled seq');
          this.#subscription.reconnect();
        } else {
          this.#log.error({ error: frame.error, message: frame.message }, 'relay sent an error frame');
        }
        break;
      }
      case 'unknown': {
        this.#log.debug({ type: frame.type, seq: frame.seq }, 'ignoring unknown message type');
        if (frame.seq !== undefined && this.#accept(frame.seq, undefined)) {
          this.#seal(this.#watermark.track(frame.seq, receivedAt));
        }
        break;
      }
      case 'invalid': {
        this.#skipInput(frame.skipped, { bytes: frame.bytes, afterSeq: this.#lastSeq });
        break;
      }
      default: {
        const never: never = frame;
        throw new Error(`unhandled decoded frame ${JSON.stringify(never)}`);
      }
    }
    // Frames that yield no message (empty commits, bad input) never see a confirmation.
    if (this.#paused && this.#halfEmpty()) this.#setPaused(false);
  }

  /** Seq bookkeeping: drop replays of what this process already took, report gaps. */
  #accept(seq: number, time: string | undefined): boolean {
    const last = this.#lastSeq;
    const firstAfterConnect = this.#reconnected;
    this.#reconnected = false;
    if (last !== undefined) {
      if (seq <= last) {
        metrics.relayDuplicate();
        if (firstAfterConnect) {
          // A relay honouring ?cursor= never does this: it was reset, or it is another relay.
          this.#log.error({ seq, cursor: last }, 'relay resumed BELOW our cursor; skipping seqs we already have until it passes it');
        } else {
          this.#log.debug({ seq, last }, 'skipping already handled seq');
        }
        return false;
      }
      if (seq > last + 1) this.#gap(last, seq, firstAfterConnect);
    }
    this.#lastSeq = seq;
    metrics.relayPosition(seq, time);
    return true;
  }

  #gap(last: number, seq: number, firstAfterConnect: boolean): void {
    const missing = seq - last - 1;
    metrics.relaySeqGap(missing);
    // Relays number events with gaps, so a jump mid-stream is usually harmless; a
    // jump right after (re)connecting means the relay no longer had our cursor.
    if (firstAfterConnect) {
      this.#log.error({ cursor: last, firstSeq: seq, missing }, 'SEQ GAP ON RESUME: the relay resumed after our cursor; up to this many events may be LOST upstream');
      return;
    }
    this.#gapsSinceLog++;
    const now = Date.now();
    if (now - this.#lastGapLog >= 10_000) {
      this.#log.warn({ lastSeq: last, seq, missing, gapsSinceLastLog: this.#gapsSinceLog }, 'relay seq gap');
      this.#lastGapLog = now;
      this.#gapsSinceLog = 0;
    }
  }

  #send(ticket: Ticket, key: string, value: string | Uint8Array): void {
    ticket.pending++;
    const sink = this.#opts.sink;
    sink.send(key, value, ticket);
    if (!this.#paused && this.#full()) this.#setPaused(true);
  }

  /** A message is in Kafka; `null` for messages no position depends on (#info). */
  #confirmed(ticket: Ticket | null): void {
    if (ticket !== null) {
      this.#watermark.confirm(ticket);
      if (ticket.pending === 0) this.#eventDone(ticket);
    }
    if (this.#paused && this.#halfEmpty()) this.#setPaused(false);
  }

  #seal(ticket: Ticket): void {
    this.#watermark.seal(ticket);
    if (ticket.pending === 0) this.#eventDone(ticket);
  }

  #eventDone(ticket: Ticket): void {
    const ms = performance.now() - ticket.receivedAt;
    metrics.eventConfirmed(ms / 1000);
    this.#opts.onEventConfirmed?.(ms);
  }

  #setPaused(paused: boolean): void {
    this.#paused = paused;
    metrics.backpressure(paused);
    if (paused) this.#subscription.pause();
    else this.#subscription.resume();
  }

  #skipInput(skipped: Skipped, context: Record<string, unknown>): void {
    metrics.inputSkipped('relay', skipped.reason);
    this.#log.warn({ ...context, reason: skipped.reason, err: skipped.message }, 'skipping invalid input');
  }

  #saveCursor(): Promise<void> {
    const { cursorFile, relayHost } = this.#opts;
    // Chained so two saves never race on the temp file.
    this.#saving = this.#saving.then(async () => {
      const seq = this.#watermark.value;
      if (cursorFile === undefined || seq === undefined || seq === this.#savedSeq) return;
      try {
        await saveCursor(cursorFile, { seq, relayHost });
        this.#savedSeq = seq;
        metrics.relayCursorSaved(seq);
      } catch (err) {
        // Unable to checkpoint is broken internal state: stop rather than run on unprotected.
        this.#log.fatal({ err, cursorFile }, 'cannot write cursor file, stopping');
        this.#subscription.stop(new CursorFileError(`cannot write cursor file ${cursorFile}: ${(err as Error).message}`));
      }
    });
    return this.#saving;
  }
}

function normalizeHost(host: string): string {
  try {
    const u = new URL(host);
    const proto = u.protocol === 'https:' ? 'wss:' : u.protocol === 'http:' ? 'ws:' : u.protocol;
    return `${proto}//${u.host}`;
  } catch {
    return host;
  }
}
