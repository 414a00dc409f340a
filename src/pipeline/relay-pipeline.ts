import { commitOps } from '../atproto/commit-ops.ts';
import { InputError } from '../atproto/errors.ts';
import { decodeFrame, type FirehoseEvent } from '../atproto/frame.ts';
import { syncCommitCid } from '../atproto/sync-commit.ts';
import { CursorFileError, loadCursor, saveCursor } from '../checkpoint/cursor-file.ts';
import { Watermark, type Ticket } from '../checkpoint/watermark.ts';
import { formatAccount, formatIdentity, formatInfo, formatOperation, formatSync, UNKNOWN_KEY } from '../format/atkafka.ts';
import type { MessageSink } from '../sink/kafka/types.ts';
import type { Logger } from '../telemetry/logger.ts';
import * as metrics from '../telemetry/metrics.ts';
import { FatalStreamError, RelaySubscription } from '../sources/relay/subscription.ts';

export interface RelayPipelineOptions {
  relayHost: string;
  /** Where the confirmed position lives; undefined keeps it in memory only. */
  cursorFile: string | undefined;
  /** Start here when no cursor file exists (undefined: start live). */
  initialCursor: number | undefined;
  cursorSaveIntervalMs: number;
  /** Kafka messages awaiting confirmation before reading stops. */
  maxInFlight: number;
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
    this.#subscription = new RelaySubscription({
      relayHost: opts.relayHost,
      cursor: () => {
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
    // Stopped reading: everything handed to Kafka is confirmed before the final save.
    this.#log.info({ inFlight: opts.sink.inFlight }, 'draining Kafka');
    await opts.sink.flush();
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
    const receivedAt = performance.now();
    let evt: FirehoseEvent;
    try {
      evt = decodeFrame(frame);
    } catch (err) {
      this.#skipInput(err, { bytes: frame.length, afterSeq: this.#lastSeq });
      return;
    }
    switch (evt.kind) {
      case 'commit': {
        if (!this.#accept(evt.seq, evt.time)) return;
        const ticket = this.#watermark.track(evt.seq, receivedAt);
        for (const result of commitOps(evt)) {
          if (result.ok) {
            metrics.eventHandled(`operation#${result.op.action}`, result.op.collection);
            this.#send(ticket, evt.repo, formatOperation(evt.repo, evt.time, result.op));
          } else {
            this.#skipInput(result.error, { seq: evt.seq, did: evt.repo, path: result.path });
          }
        }
        this.#seal(ticket);
        return;
      }
      case 'identity':
      case 'account':
      case 'sync': {
        if (!this.#accept(evt.seq, evt.time)) return;
        const ticket = this.#watermark.track(evt.seq, receivedAt);
        let value: string | undefined;
        if (evt.kind === 'identity') value = formatIdentity(evt);
        else if (evt.kind === 'account') value = formatAccount(evt);
        else {
          try {
            value = formatSync(evt, syncCommitCid(evt));
          } catch (err) {
            this.#skipInput(err, { seq: evt.seq, did: evt.did });
          }
        }
        if (value !== undefined) {
          metrics.eventHandled(evt.kind, '');
          this.#send(ticket, evt.did, value);
        }
        this.#seal(ticket);
        return;
      }
      case 'info': {
        if (evt.name === 'OutdatedCursor') {
          metrics.relayOutdatedCursor();
          this.#log.error(
            { cursor: this.#lastSeq, message: evt.message },
            'RELAY SAYS OutdatedCursor: our cursor is older than what it retains; events between our cursor and its oldest were LOST upstream',
          );
        } else {
          this.#log.warn({ name: evt.name, message: evt.message }, 'relay info');
        }
        metrics.eventHandled('info', '');
        // #info has no seq: it is delivered, but no position depends on it.
        this.#opts.sink.send(UNKNOWN_KEY, formatInfo(evt, new Date()), null);
        return;
      }
      case 'error': {
        if (evt.error === 'FutureCursor') {
          this.#subscription.stop(
            new FatalStreamError(
              `relay says FutureCursor: cursor ${String(this.#lastSeq)} is ahead of its stream; is the cursor file from another relay? (${evt.message ?? ''})`,
            ),
          );
        } else if (evt.error === 'ConsumerTooSlow') {
          this.#log.warn({ message: evt.message }, 'relay dropped us as too slow, reconnecting from the last handled seq');
          this.#subscription.reconnect();
        } else {
          this.#log.error({ error: evt.error, message: evt.message }, 'relay sent an error frame');
        }
        return;
      }
      case 'unknown': {
        this.#log.debug({ type: evt.type, seq: evt.seq }, 'ignoring unknown message type');
        if (evt.seq !== undefined && this.#accept(evt.seq, undefined)) {
          this.#seal(this.#watermark.track(evt.seq, receivedAt));
        }
        return;
      }
      default: {
        const never: never = evt;
        throw new Error(`unhandled event ${JSON.stringify(never)}`);
      }
    }
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

  #send(ticket: Ticket, key: string, value: string): void {
    ticket.pending++;
    const sink = this.#opts.sink;
    sink.send(key, value, ticket);
    if (!this.#paused && sink.inFlight >= this.#opts.maxInFlight) this.#setPaused(true);
  }

  /** A message is in Kafka; `null` for messages no position depends on (#info). */
  #confirmed(ticket: Ticket | null): void {
    if (ticket !== null) {
      this.#watermark.confirm(ticket);
      if (ticket.pending === 0) this.#eventDone(ticket);
    }
    if (this.#paused && this.#opts.sink.inFlight <= this.#opts.maxInFlight / 2) this.#setPaused(false);
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

  #skipInput(err: unknown, context: Record<string, unknown>): void {
    if (!(err instanceof InputError)) throw err;
    metrics.inputSkipped('relay', err.reason);
    this.#log.warn({ ...context, reason: err.reason, err: err.message }, 'skipping invalid input');
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
