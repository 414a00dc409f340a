import { setTimeout as sleep } from 'node:timers/promises';

import { CursorFileError } from '../../checkpoint/cursor-file.ts';
import { InputError } from '../../atproto/errors.ts';
import { UNKNOWN_KEY } from '../../format/atkafka.ts';
import { PipelineCore, type CoreTicket, type StageOptions, type Tracker } from '../../pipeline/core.ts';
import type { MessageSink } from '../../sink/kafka/types.ts';
import type { Logger } from '../../telemetry/logger.ts';
import * as metrics from '../../telemetry/metrics.ts';
import { Backoff } from '../common/backoff.ts';
import { OzoneCallError, type OzoneClient, type QueryEventsPage } from './client.ts';
import { comparePositions, parsePosition, saveOzoneCursor, type OzonePosition } from './cursor.ts';
import { ozoneEventId, parseOzoneEvent, type OzoneEvent } from './events.ts';

export interface OzonePipelineOptions {
  client: OzoneClient;
  labelerDid: string;
  pdsHost: string;
  /** Where the position is saved; undefined: nowhere (a restart starts again from `start`). */
  cursorFile: string | undefined;
  /** Where to start: the saved cursor, or what --start gave; undefined: the beginning of the log. */
  start: OzonePosition | undefined;
  pageSize: number;
  pollIntervalMs: number;
  /** Only events created at least this long ago are read (the late-commit race; README). */
  settleLagMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  maxInFlight: number;
  maxInFlightBytes: number;
  sink: MessageSink;
  stages?: Partial<StageOptions<PageTicket>>;
  logger: Logger;
  /** How often a progress line is logged (when anything moved). */
  progressIntervalMs?: number;
}

/** One queryEvents page: complete once Kafka confirmed every event on it. */
interface PageTicket extends CoreTicket {
  /** The page's end (Ozone's cursor after its last event); the read position when it is empty. */
  readonly end: OzonePosition | undefined;
  /** Every event created up to here is on this page or an earlier one (the poll's upper bound when the page reached the end). */
  readonly throughMs: number;
  readonly events: number;
  done: boolean;
}

/** Longest wait a 429's ratelimit-reset may impose before the next try. */
const MAX_RATE_LIMIT_WAIT_MS = 15 * 60_000;

/**
 * Ozone's moderation event log -> Kafka, page by page.
 *
 * Pages are read in Ozone's ascending (createdAt, id) order with Ozone's own
 * keyset cursor, which neither skips events that share a millisecond nor
 * repeats one. Several pages may be in flight; the cursor saved is the end of
 * the last page that Kafka confirmed entirely, with every page before it, so
 * a crash repeats at most the pages in flight and loses nothing. Only events
 * at least `settleLagMs` old are read: Ozone stamps createdAt before its
 * transaction commits, so an event can become visible after a later one; the
 * lag gives such a commit that long to land before the cursor passes its time.
 */
export class OzonePipeline {
  readonly #o: OzonePipelineOptions;
  readonly #log: Logger;
  readonly #core: PipelineCore<PageTicket>;
  /** Pages in read order, until they and every page before them are confirmed. */
  readonly #pages: PageTicket[] = [];
  /** Where the next page starts. */
  #read: OzonePosition | undefined;
  /** Every event up to here is in Kafka. */
  #confirmed: OzonePosition | undefined;
  #saved: OzonePosition | undefined;
  #saving: Promise<void> | undefined;
  #saveAgain = false;
  #saveError: unknown;
  #roomWaiter: (() => void) | undefined;
  #connected = false;
  #produced = 0;
  #confirmedEvents = 0;
  #skipped = 0;

  constructor(opts: OzonePipelineOptions) {
    this.#o = opts;
    this.#log = opts.logger;
    this.#read = opts.start;
    this.#confirmed = opts.start;
    this.#saved = opts.start;
    const tracker: Tracker<PageTicket> = {
      seal: (t) => {
        t.sealed = true;
        if (t.pending === 0) this.#pageDone(t);
      },
      confirm: (t) => {
        t.pending--;
        if (t.pending === 0 && t.sealed) this.#pageDone(t);
      },
    };
    this.#core = new PipelineCore<PageTicket>({
      source: 'ozone',
      sink: opts.sink,
      maxInFlight: opts.maxInFlight,
      maxInFlightBytes: opts.maxInFlightBytes,
      stages: opts.stages ?? {},
      tracker,
      positionHeader: 'id',
      onProgress: () => {
        if (this.#roomWaiter !== undefined && this.#core.room()) this.#roomWaiter();
      },
      logger: opts.logger,
    });
  }

  get connected(): boolean {
    return this.#connected;
  }

  status(): { connected: boolean; cursor: string | undefined; cursorTime: string | undefined; inFlight: number } {
    return {
      connected: this.#connected,
      cursor: this.#confirmed?.cursor,
      cursorTime: this.#confirmed === undefined ? undefined : new Date(this.#confirmed.timeMs).toISOString(),
      inFlight: this.#core.inFlight,
    };
  }

  /** Polls until the signal aborts; then lets Kafka confirm what is in flight and saves the cursor. */
  async run(signal: AbortSignal): Promise<void> {
    const progress = setInterval(() => this.#logProgress(), this.#o.progressIntervalMs ?? 30_000);
    progress.unref();
    try {
      await this.#poll(signal);
    } finally {
      clearInterval(progress);
    }
    await this.#core.drain();
    await this.#save();
    if (this.#saveError !== undefined) {
      throw new CursorFileError(`cannot save the Ozone cursor to ${this.#o.cursorFile}: ${(this.#saveError as Error).message}`, { cause: this.#saveError });
    }
    this.#log.info({ cursor: this.#confirmed?.cursor, produced: this.#produced, skipped: this.#skipped }, 'Ozone pipeline stopped');
  }

  async #poll(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    const backoff = new Backoff(o.backoffInitialMs, o.backoffMaxMs);
    let failures = 0;
    let firstFailure = 0;
    let lastFailureLog = 0;
    while (!signal.aborted) {
      if (!this.#core.room()) {
        metrics.backpressure(true);
        await this.#waitForRoom(signal);
        metrics.backpressure(false);
        continue;
      }
      const createdBeforeMs = Date.now() - o.settleLagMs;
      let page: QueryEventsPage;
      try {
        page = await o.client.queryEvents({ cursor: this.#read?.cursor, createdBefore: new Date(createdBeforeMs).toISOString(), limit: o.pageSize }, signal);
        this.#accept(page, createdBeforeMs);
      } catch (err) {
        if (signal.aborted) break;
        if (!(err instanceof OzoneCallError)) throw err;
        this.#connected = false;
        metrics.ozonePollError(err.kind);
        if (failures === 0) firstFailure = Date.now();
        failures++;
        let waitMs = backoff.next();
        if (err.kind === 'rate-limited' && err.retryAtMs !== undefined) waitMs = Math.min(MAX_RATE_LIMIT_WAIT_MS, Math.max(waitMs, err.retryAtMs - Date.now() + 250));
        // The first failure of a streak, then one line a minute: an outage of hours is not a log flood.
        if (failures === 1 || Date.now() - lastFailureLog >= 60_000) {
          lastFailureLog = Date.now();
          const fields = { kind: err.kind, err: err.message, failures, retryInMs: waitMs, cursor: this.#read?.cursor };
          if (err.kind === 'auth') this.#log.error(fields, 'Ozone refuses this account: check --identifier, the password, and that the account is a moderator of --labeler-did; retrying');
          else this.#log.warn(fields, err.kind === 'rate-limited' ? 'rate limited by the PDS; waiting for its reset' : 'cannot read Ozone events; retrying, the cursor stays where it is');
        }
        await sleep(waitMs, undefined, { signal }).catch(() => undefined);
        continue;
      }
      if (failures > 0) {
        this.#log.info({ failures, downForMs: Date.now() - firstFailure, cursor: this.#read?.cursor }, 'reading Ozone events again');
        failures = 0;
      }
      backoff.reset();
      this.#connected = true;
      if (page.events.length < o.pageSize) await sleep(o.pollIntervalMs, undefined, { signal }).catch(() => undefined);
    }
  }

  /** Hands one page to the core; throws OzoneCallError (bad-response) for a page that cannot be placed in the log. */
  #accept(page: QueryEventsPage, createdBeforeMs: number): void {
    const events: OzoneEvent[] = [];
    for (const raw of page.events) {
      try {
        events.push(parseOzoneEvent(raw));
      } catch (err) {
        if (!(err instanceof InputError)) throw err;
        this.#skipped++;
        metrics.inputSkipped('ozone', err.reason);
        this.#log.warn({ id: ozoneEventId(raw), reason: err.reason, err: err.message }, 'skipping an invalid Ozone event');
      }
    }
    let end = this.#read;
    if (page.events.length > 0) {
      const last = events.at(-1)?.position;
      const fromOzone = page.cursor === undefined ? undefined : parsePosition(page.cursor);
      end = fromOzone ?? last;
      if (end === undefined) throw new OzoneCallError('bad-response', 'queryEvents answered a page with no usable cursor and no valid event: cannot move past it');
      if (this.#read !== undefined && comparePositions(end, this.#read) <= 0) {
        throw new OzoneCallError('bad-response', `queryEvents answered a page ending at ${end.cursor}, not after the cursor ${this.#read.cursor}: refusing to go backwards`);
      }
    }
    metrics.ozonePoll(events.length);
    const full = page.events.length >= this.#o.pageSize;
    const ticket: PageTicket = {
      receivedAt: performance.now(),
      pending: 0,
      sealed: false,
      end,
      throughMs: full && end !== undefined ? end.timeMs : Math.max(createdBeforeMs, end?.timeMs ?? 0),
      events: events.length,
      done: false,
    };
    this.#pages.push(ticket);
    this.#read = end;
    for (const e of events) {
      metrics.ozoneEventRead(e.position.timeMs);
      this.#core.send(ticket, e.subjectDid === '' ? UNKNOWN_KEY : e.subjectDid, e.id, e.createdAt, { value: e.json, action: e.type, collection: e.collection, kind: 'moderation' });
    }
    this.#produced += events.length;
    this.#core.seal(ticket);
    if (events.length > 0) this.#log.debug({ events: events.length, cursor: end?.cursor }, 'Ozone page handed to Kafka');
  }

  #pageDone(t: PageTicket): void {
    t.done = true;
    let moved = false;
    while (this.#pages.length > 0 && this.#pages[0]!.done) {
      const head = this.#pages.shift()!;
      this.#confirmedEvents += head.events;
      metrics.ozonePosition(head.throughMs);
      if (head.end !== undefined && (this.#confirmed === undefined || comparePositions(head.end, this.#confirmed) > 0)) {
        this.#confirmed = head.end;
        moved = true;
      }
    }
    if (moved) void this.#save();
  }

  /** Saves the confirmed position; one write at a time, the newest position last. */
  #save(): Promise<void> {
    if (this.#o.cursorFile === undefined) return Promise.resolve();
    if (this.#saving !== undefined) {
      this.#saveAgain = true;
      return this.#saving;
    }
    const run = async () => {
      do {
        this.#saveAgain = false;
        const position = this.#confirmed;
        if (position === undefined || (this.#saved !== undefined && comparePositions(position, this.#saved) <= 0)) continue;
        try {
          await saveOzoneCursor(this.#o.cursorFile!, position, this.#o.labelerDid, this.#o.pdsHost);
          this.#saved = position;
          this.#saveError = undefined;
          metrics.ozoneCursorSaved(position.id);
        } catch (err) {
          if (this.#saveError === undefined) this.#log.error({ err: (err as Error).message, cursorFile: this.#o.cursorFile }, 'cannot save the Ozone cursor; retrying with the next page');
          this.#saveError = err;
        }
      } while (this.#saveAgain);
    };
    this.#saving = run().finally(() => (this.#saving = undefined));
    return this.#saving;
  }

  #waitForRoom(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.#roomWaiter = undefined;
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#roomWaiter = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }

  #lastProgress = { produced: 0, cursor: undefined as string | undefined };
  #logProgress(): void {
    const cursor = this.#confirmed?.cursor;
    if (this.#produced === this.#lastProgress.produced && cursor === this.#lastProgress.cursor) return;
    this.#log.info(
      { produced: this.#produced - this.#lastProgress.produced, confirmed: this.#confirmedEvents, cursor, cursorTime: this.#confirmed === undefined ? undefined : new Date(this.#confirmed.timeMs).toISOString() },
      'Ozone events produced',
    );
    this.#lastProgress = { produced: this.#produced, cursor };
  }
}
