import { CursorFileError, CursorFileInvalid, loadCursor, sameRelay, saveCursor } from '../../checkpoint/cursor-file.ts';
import { Watermark, type Ticket } from '../../checkpoint/watermark.ts';
import { createFrameDecoder, type FrameDecoder } from '../../decode/decoder.ts';
import type { DecodedEvent, DecodedFrame, OutputFormat, Skipped } from '../../decode/relay-frame.ts';
import { UNKNOWN_KEY } from '../../format/atkafka.ts';
import type { MessageSink } from '../../sink/kafka/types.ts';
import type { CollectionFilter } from '../../filter/collections.ts';
import { PipelineCore, type StageOptions } from '../../pipeline/core.ts';
import type { Logger } from '../../telemetry/logger.ts';
import * as metrics from '../../telemetry/metrics.ts';
import { redactUrl } from '../../telemetry/redact.ts';
import { FatalStreamError, subscribeUrl, WsSubscription } from '../common/ws-subscription.ts';

/** Frame bytes the decoder may have queued: plenty to keep it busy, and a bound on memory whatever the frame sizes. */
export const DECODE_BACKLOG_BYTES = 16 * 1024 * 1024;

/**
 * A seq this far ahead of the previous one, mid-connection, is not trusted as
 * a position until the next event confirms it: relays number events with
 * small gaps, and one corrupt or bogus seq must neither become the cursor nor
 * make every later event look like a replay. 100,000 is over a minute of the
 * whole network's events.
 */
export const MAX_SEQ_JUMP = 100_000;

export interface RelayPipelineOptions {
  relayHost: string;
  /** Where the confirmed position lives; undefined keeps it in memory only. */
  cursorFile: string | undefined;
  /** Start here when no cursor file exists (undefined: start live). */
  initialCursor: number | undefined;
  cursorSaveIntervalMs: number;
  /** Kafka messages awaiting confirmation (plus frames being decoded) before reading stops. */
  maxInFlight: number;
  /** Bytes of those messages before reading stops. */
  maxInFlightBytes: number;
  /** Threads that decode frames; 0 decodes on the main thread. */
  decodeThreads: number;
  /** Largest websocket message read from the relay. */
  maxFrameBytes: number;
  stallTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  userAgent: string;
  sink: MessageSink;
  /** Ops of other collections are dropped before they are decoded (the cursor still passes them). */
  collections?: CollectionFilter;
  /** The JSON shape of the messages (default at-kafka). */
  format?: OutputFormat;
  /** The stages after decoding (service filter, enrichment, envelope, routing); the defaults do none. */
  stages?: Partial<StageOptions<Ticket>>;
  logger: Logger;
  /** Called with each event's read-to-confirmed latency in ms (benchmarks). */
  onEventConfirmed?: (latencyMs: number) => void;
}

export interface RelayPipelineStatus extends Record<string, unknown> {
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
 *
 * Decoded pieces are pulled from the decoder only while Kafka has room (in
 * messages and in bytes), so what is in flight is bounded whatever the frames
 * fan out into; the decoder in turn stops decoding ahead, and reading stops.
 */
export class RelayPipeline {
  readonly #opts: RelayPipelineOptions;
  readonly #log: Logger;
  #watermark!: Watermark;
  #subscription!: WsSubscription;
  #decoder!: FrameDecoder;
  readonly #core: PipelineCore<Ticket>;
  /** Highest trusted seq handed to the sink (or skipped on purpose): where a reconnect resumes. */
  #lastSeq: number | undefined;
  /** #lastSeq when this connection opened: a seq at or below it is a replay of what this process has. */
  #connectedAt: number | undefined;
  /** A seq far ahead of #lastSeq that the next event has not confirmed yet. */
  #suspectSeq: number | undefined;
  #paused = false;
  #savedSeq: number | undefined;
  #saving: Promise<void> = Promise.resolve();
  #saveTimer: NodeJS.Timeout | undefined;
  #reconnected = true;
  /** The ticket of an event whose later pieces are still to come. */
  #continuing: Ticket | null = null;
  /** The event being handed to the sink; its remaining messages wait for room. */
  #current: { piece: DecodedEvent; ticket: Ticket | null; at: number } | undefined;
  /** Decoded messages wait for room in Kafka: reading stays paused, confirmations pump again. */
  #blocked = false;
  #pumping = false;
  #pumpScheduled = false;
  readonly #anomalyLogs = new Map<string, { at: number; suppressed: number }>();

  constructor(opts: RelayPipelineOptions) {
    this.#opts = opts;
    this.#log = opts.logger;
    this.#core = new PipelineCore<Ticket>({
      source: 'relay',
      sink: opts.sink,
      maxInFlight: opts.maxInFlight,
      maxInFlightBytes: opts.maxInFlightBytes,
      stages: opts.stages ?? {},
      // The relay's policy: an ordered watermark of completed events, saved as the cursor.
      tracker: { seal: (t) => this.#watermark.seal(t), confirm: (t) => this.#watermark.confirm(t) },
      onProgress: () => this.#progress(),
      logger: opts.logger,
      onEventConfirmed: opts.onEventConfirmed,
    });
  }

  status(): RelayPipelineStatus {
    return {
      connected: this.#subscription?.connected ?? false,
      cursor: this.#watermark?.value,
      lastSeq: this.#lastSeq,
      inFlight: this.#core.inFlight,
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
      collections: opts.collections,
      format: opts.format,
      onReadable: () => this.#pump(),
      onFatal: (err) => {
        this.#log.fatal({ err }, 'a decode thread failed');
        this.#subscription.stop(new FatalStreamError(`internal error in a decode thread: ${err.message}`));
      },
    });
    const decoder = this.#decoder;
    metrics.decodeBacklogFrom(() => decoder.pending);
    this.#subscription = new WsSubscription({
      name: 'relay',
      messages: 'binary',
      url: async () => {
        // Frames of the old connection still being decoded come first: resume after the last of them.
        await this.#decoder.drained();
        this.#reconnected = true;
        this.#connectedAt = this.#lastSeq;
        this.#suspectSeq = undefined;
        return subscribeUrl(opts.relayHost, this.#lastSeq);
      },
      onConnection: (open) => metrics.relayConnection(open),
      onReconnect: (reason) => metrics.relayReconnect(reason),
      onOversize: () => metrics.relayOversizeFrame(),
      // An error frame may still be in the decoder when the relay closes after it: act on it first.
      settle: () => this.#decoder.drained(),
      onMessage: (frame) => this.#onFrame(frame),
      stallTimeoutMs: opts.stallTimeoutMs,
      backoffInitialMs: opts.backoffInitialMs,
      backoffMaxMs: opts.backoffMaxMs,
      maxPayloadBytes: opts.maxFrameBytes,
      userAgent: opts.userAgent,
      logger: this.#log.child({ component: 'relay' }),
    });

    const onAbort = () => this.#subscription.stop();
    signal.addEventListener('abort', onAbort, { once: true });
    // Without a cursor file too: the confirmed position is still a metric.
    this.#saveTimer = setInterval(() => void this.#saveCursor(), opts.cursorSaveIntervalMs);
    let failure: unknown;
    try {
      await this.#subscription.run();
    } catch (err) {
      failure = err;
    } finally {
      signal.removeEventListener('abort', onAbort);
      clearInterval(this.#saveTimer);
    }
    // Stopped reading: everything read is decoded, past the stages and confirmed by Kafka before the final save.
    await this.#decoder.drained();
    await this.#core.drain();
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
    if (!sameRelay(saved.relayHost, relayHost)) {
      throw new CursorFileInvalid(
        `cursor file ${cursorFile} holds seq ${saved.seq} of ${redactUrl(saved.relayHost)}, not of ${redactUrl(relayHost)}; seqs differ between relays: remove the file or point --cursor-file elsewhere`,
      );
    }
    this.#log.info({ cursorFile, cursor: saved.seq, savedAt: saved.savedAt }, 'resuming from saved cursor');
    return saved.seq;
  }

  #onFrame(frame: Uint8Array): void {
    this.#decoder.push(frame, performance.now());
    if (!this.#paused && this.#full()) this.#setPaused(true);
  }

  /** Kafka can take another message. */
  #room(): boolean {
    return this.#core.room();
  }

  /**
   * Reading pauses when the pipeline cannot hand decoded messages to Kafka,
   * when frames being decoded plus messages awaiting Kafka reach the caps, or
   * when the decoder falls behind (its backlog is copied frames: better left
   * in the kernel's socket buffer). It resumes at half.
   */
  #full(): boolean {
    const decoder = this.#decoder;
    return (
      this.#blocked ||
      decoder.pending + this.#core.inFlight >= this.#opts.maxInFlight ||
      decoder.pendingBytes + this.#core.inFlightBytes >= this.#opts.maxInFlightBytes ||
      decoder.pendingBytes >= DECODE_BACKLOG_BYTES
    );
  }

  #halfEmpty(): boolean {
    const decoder = this.#decoder;
    return (
      !this.#blocked &&
      decoder.pending + this.#core.inFlight <= this.#opts.maxInFlight / 2 &&
      decoder.pendingBytes + this.#core.inFlightBytes <= this.#opts.maxInFlightBytes / 2 &&
      decoder.pendingBytes <= DECODE_BACKLOG_BYTES / 2
    );
  }

  /** Hands decoded pieces to Kafka while it has room; called when pieces arrive and when room frees up. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      for (;;) {
        const current = this.#current;
        if (current !== undefined) {
          const { piece, ticket } = current;
          const messages = piece.messages;
          // A replay of what this process delivered: nothing to send.
          if (ticket === null) current.at = messages.length;
          while (current.at < messages.length) {
            if (!this.#room()) {
              this.#blocked = true;
              return;
            }
            const message = messages[current.at]!;
            messages[current.at++] = undefined!;
            this.#core.send(ticket, piece.did, piece.seq, piece.time, message);
          }
          this.#current = undefined;
          if (piece.last && ticket !== null) this.#core.seal(ticket);
        }
        if (!this.#room()) {
          this.#blocked = this.#decoder.pending > 0;
          return;
        }
        const next = this.#decoder.next();
        if (next === undefined) {
          this.#blocked = false;
          return;
        }
        this.#take(next);
      }
    } finally {
      this.#pumping = false;
      if (!this.#paused && this.#full()) this.#setPaused(true);
      else if (this.#paused && this.#halfEmpty()) this.#setPaused(false);
    }
  }

  /** Pump again soon, outside the caller's stack (the sink's confirmation loop). */
  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    queueMicrotask(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  #take(piece: DecodedFrame): void {
    const receivedAt = this.#decoder.receivedAt;
    switch (piece.kind) {
      case 'event': {
        let ticket: Ticket | null;
        if (piece.first) {
          const position = this.#accept(piece.seq, piece.time);
          ticket = position === undefined ? null : this.#watermark.track(position, receivedAt);
        } else {
          // A later piece of the event being sent.
          ticket = this.#continuing;
        }
        if (ticket !== null) {
          for (const skipped of piece.skipped) this.#skipInput(skipped, { seq: piece.seq, did: piece.did, path: skipped.path });
          if (piece.filtered > 0) metrics.eventsFiltered('collection', piece.filtered);
        }
        this.#continuing = piece.last ? null : ticket;
        this.#current = { piece, ticket, at: 0 };
        break;
      }
      case 'info': {
        if (piece.name === 'OutdatedCursor') {
          metrics.relayOutdatedCursor();
          this.#log.error(
            { cursor: this.#lastSeq, message: piece.message },
            'RELAY SAYS OutdatedCursor: our cursor is older than what it retains; events between our cursor and its oldest were LOST upstream',
          );
        } else {
          this.#log.warn({ name: piece.name, message: piece.message }, 'relay info');
        }
        // #info has no seq: it is delivered, but no position depends on it. The Jetstream shape has none.
        if (piece.value.length > 0) this.#core.send(null, UNKNOWN_KEY, undefined, new Date().toISOString(), { value: piece.value, action: 'info', collection: '' });
        break;
      }
      case 'error': {
        if (piece.error === 'FutureCursor') {
          this.#subscription.stop(
            new FatalStreamError(
              `relay says FutureCursor: cursor ${String(this.#lastSeq)} is ahead of its stream; is the cursor file from another relay? (${piece.message ?? ''})`,
            ),
          );
        } else if (piece.error === 'ConsumerTooSlow') {
          this.#log.warn({ message: piece.message }, 'relay dropped us as too slow, reconnecting from the last handled seq');
          this.#subscription.reconnect();
        } else {
          this.#log.error({ error: piece.error, message: piece.message }, 'relay sent an error frame');
        }
        break;
      }
      case 'unknown': {
        this.#log.debug({ type: piece.type, seq: piece.seq }, 'ignoring unknown message type');
        if (piece.seq !== undefined) {
          const position = this.#accept(piece.seq, undefined);
          if (position !== undefined) this.#core.seal(this.#watermark.track(position, receivedAt));
        }
        break;
      }
      case 'invalid': {
        this.#skipInput(piece.skipped, { bytes: piece.bytes, afterSeq: this.#lastSeq });
        break;
      }
      default: {
        const never: never = piece;
        throw new Error(`unhandled decoded frame ${JSON.stringify(never)}`);
      }
    }
  }

  /**
   * Seq bookkeeping: the position an event is tracked under, or undefined for
   * a replay of what this process already handed to Kafka. Nothing else is
   * dropped: a relay that misnumbers events still delivers them, loudly.
   */
  #accept(seq: number, time: string | undefined): number | undefined {
    const last = this.#lastSeq;
    const firstAfterConnect = this.#reconnected;
    this.#reconnected = false;
    metrics.relayPosition(seq, time);
    if (last === undefined) {
      this.#lastSeq = seq;
      return seq;
    }
    const floor = this.#connectedAt;
    if (floor !== undefined && seq <= floor) {
      // Asked to resume after `floor`, the relay sent older events: replays of what we have.
      metrics.relayDuplicate();
      if (firstAfterConnect) {
        this.#log.error({ seq, cursor: floor }, 'relay resumed BELOW our cursor; skipping the seqs we already delivered until it passes it');
      } else {
        this.#anomaly('duplicate', { seq, cursor: floor }, 'relay is still replaying seqs at or below our cursor; skipping them as already delivered');
      }
      return undefined;
    }
    const suspect = this.#suspectSeq;
    let jumpConfirmed = false;
    if (suspect !== undefined) {
      this.#suspectSeq = undefined;
      jumpConfirmed = seq > suspect;
      if (jumpConfirmed) {
        this.#log.warn({ from: last, to: suspect, next: seq }, 'the relay seq jump was real: the stream goes on after it');
      } else {
        metrics.relaySeqAnomaly('outlier');
        this.#log.error({ lastSeq: last, outlier: suspect, next: seq }, 'relay sent AN EVENT WITH A BOGUS SEQ far ahead of its stream; it was delivered, and the cursor never took its seq');
      }
    }
    if (seq > last + MAX_SEQ_JUMP && !firstAfterConnect && !jumpConfirmed) {
      // Delivered, but tracked at the last trusted position until the next event says which seq is real.
      this.#suspectSeq = seq;
      metrics.relaySeqAnomaly('jump');
      this.#log.error({ lastSeq: last, seq, jump: seq - last }, 'RELAY SEQ JUMPED far ahead mid-stream; delivering the event, holding the cursor until the next event confirms the jump');
      return last;
    }
    if (seq <= last) {
      // Never on an honest connection: deliver (a duplicate at worst), and follow the relay's order.
      metrics.relaySeqAnomaly('backwards');
      this.#anomaly('backwards', { seq, lastSeq: last }, 'RELAY SEQ WENT BACKWARDS mid-stream; delivering the event anyway');
    } else if (seq > last + 1) {
      this.#gap(last, seq, firstAfterConnect);
    }
    this.#lastSeq = seq;
    return seq;
  }

  /** Error-level log for a stream anomaly, at most one line per kind per 10 s, with a count of the rest. */
  #anomaly(kind: string, context: Record<string, unknown>, msg: string): void {
    this.#rateLimited(kind, 'error', context, 'sameSinceLastLog', msg);
  }

  #rateLimited(kind: string, level: 'error' | 'warn', context: Record<string, unknown>, countField: string, msg: string): void {
    const now = Date.now();
    const state = this.#anomalyLogs.get(kind);
    if (state !== undefined && now - state.at < 10_000) {
      state.suppressed++;
      return;
    }
    this.#log[level]({ ...context, [countField]: state?.suppressed ?? 0 }, msg);
    this.#anomalyLogs.set(kind, { at: now, suppressed: 0 });
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
    this.#rateLimited('gap', 'warn', { lastSeq: last, seq, missing }, 'gapsSinceLastLog', 'relay seq gap');
  }

  /** Confirmations came in (the core calls this outside the sink's loop). */
  #progress(): void {
    if (this.#blocked) {
      if (this.#room()) this.#schedulePump();
    } else if (this.#paused && this.#halfEmpty()) {
      this.#setPaused(false);
    }
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
      if (seq !== undefined) metrics.upstreamConfirmed('relay', seq);
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
