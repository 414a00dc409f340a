import { createHash } from 'node:crypto';

import { createClient, ErrorReply } from 'redis';

import type { Logger } from '../telemetry/logger.ts';
import { redactUrl } from '../telemetry/redact.ts';
import type { Labels } from './labels.ts';
import { DIMENSIONS, Tally, TOTALS, type Dimension } from './tally.ts';

/**
 * Applies one batch of one partition, atomically (a Lua script runs alone in
 * Redis, and is replicated and written to the AOF as one unit), if and only
 * if the partition's watermark (the last offset counted) is still the one the
 * increments were computed against: the increments are for the offsets above
 * it. Otherwise nothing is written and the current watermark comes back, so
 * the caller computes again for what is above that. A batch read twice
 * (a crash between this and the Kafka commit, a rebalance, two owners of one
 * partition for a moment) is therefore counted once.
 *
 * KEYS[1]: the offsets hash; KEYS[2..]: the count hashes.
 * ARGV[1]: the partition; ARGV[2]: the expected watermark ('' = none yet);
 * ARGV[3]: the new watermark; then, per count hash in KEYS order, the number
 * of its fields followed by field, increment pairs.
 * Returns {1, new watermark} or {0, current watermark ('' = none)}.
 */
export const APPLY_SCRIPT = `
local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if current ~= ARGV[2] then return {0, current} end
local a = 4
for k = 2, #KEYS do
  local n = tonumber(ARGV[a])
  a = a + 1
  for i = 1, n do
    redis.call('HINCRBY', KEYS[k], ARGV[a], ARGV[a + 1])
    a = a + 2
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return {1, ARGV[3]}
`;
const APPLY_SHA = createHash('sha1').update(APPLY_SCRIPT).digest('hex');

/** Redis refused for good (wrong credentials, keys of another type, a script error): retrying will not help. */
export class StatsStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StatsStoreError';
  }
}

/** The keys of one group's counts of one topic. Group and topic names hold no ':' (checked by the config). */
export function keyPrefix(group: string, topic: string): string {
  return `atkafka:stats:${group}:${topic}`;
}

/** One message to count: its offset (ascending within a batch), labels and size. */
export interface Counted {
  offset: number;
  labels: Labels;
  bytes: number;
}

export interface Snapshot {
  totals: { events: number; bytes: number };
  by: Record<Dimension, Map<string, number>>;
  /** partition -> last offset counted */
  offsets: Map<number, number>;
}

type Client = ReturnType<typeof createClient>;

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;
const LOG_EVERY_MS = 5_000;

/** Server replies that pass by themselves: a Redis loading its data, busy with a script, failing over. */
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|READONLY|CLUSTERDOWN)\b/;
const AUTH_REPLY = /^(WRONGPASS|NOAUTH|NOPERM|ERR AUTH|ERR invalid password|ERR Client sent AUTH)/;

/** The counts of one group and topic in Redis. */
export class StatsStore {
  readonly #client: Client;
  readonly #log: Logger;
  readonly #url: string;
  readonly #offsetsKey: string;
  readonly #totalsKey: string;
  readonly #keys: Record<Dimension, string>;
  #down = false;
  #lastLog = 0;

  private constructor(client: Client, url: string, prefix: string, log: Logger) {
    this.#client = client;
    this.#url = redactUrl(url);
    this.#log = log;
    this.#offsetsKey = `${prefix}:offsets`;
    this.#totalsKey = `${prefix}:totals`;
    this.#keys = Object.fromEntries(DIMENSIONS.map((d) => [d, `${prefix}:by-${d}`])) as Record<Dimension, string>;
  }

  /**
   * Connects, retrying while Redis cannot be reached (a line every few
   * seconds); refused credentials end it. The client then reconnects by
   * itself and holds commands until it is back.
   */
  static async connect(url: string, prefix: string, log: Logger, signal: AbortSignal): Promise<StatsStore> {
    const client: Client = createClient({
      url,
      socket: {
        connectTimeout: 5_000,
        reconnectStrategy: (retries, cause) => (AUTH_REPLY.test(cause?.message ?? '') ? false : Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(retries, 10))),
      },
    });
    const store = new StatsStore(client, url, prefix, log);
    client.on('error', (err: Error) => store.#onError(err));
    client.on('ready', () => {
      if (store.#down) log.info({ redis: store.#url }, 'Redis reachable again');
      store.#down = false;
    });
    const onAbort = () => client.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await client.connect();
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw new StatsStoreError(`Redis at ${store.#url} refuses the connection: ${describe(err)}`, { cause: err });
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    return store;
  }

  #onError(err: Error): void {
    this.#down = true;
    const now = Date.now();
    if (now - this.#lastLog < LOG_EVERY_MS) return;
    this.#lastLog = now;
    this.#log.warn({ err: describe(err), redis: this.#url }, 'Redis not reachable; retrying (counting and offset commits wait for it)');
  }

  /** The last offset counted of each partition. */
  async watermarks(signal?: AbortSignal): Promise<Map<number, number>> {
    const raw = (await this.#retrying(() => this.#client.hGetAll(this.#offsetsKey), signal)) as unknown as Record<string, string>;
    return new Map(Object.entries(raw).map(([p, o]) => [Number(p), Number(o)]));
  }

  async watermark(partition: number, signal?: AbortSignal): Promise<number | undefined> {
    const raw = await this.#retrying(() => this.#client.hGet(this.#offsetsKey, String(partition)), signal);
    return raw === null || raw === undefined ? undefined : Number(raw);
  }

  /**
   * Adds `tally` (the offsets after `expected` up to `last` of `partition`) if
   * the watermark is still `expected`; else returns the current one. Retries
   * while Redis is away: a reply lost with the connection may mean it was
   * applied, which the next try sees as a watermark already at `last`.
   */
  async apply(partition: number, expected: number | undefined, last: number, tally: Tally, signal?: AbortSignal): Promise<{ applied: boolean; watermark: number | undefined }> {
    const keys = [this.#offsetsKey];
    const args = [String(partition), expected === undefined ? '' : String(expected), String(last)];
    for (const [hash, fields] of tally.counts) {
      keys.push(hash === 'totals' ? this.#totalsKey : this.#keys[hash]);
      args.push(String(fields.size));
      for (const [field, n] of fields) args.push(field, String(n));
    }
    const tail = [String(keys.length), ...keys, ...args];
    const reply = (await this.#retrying(async () => {
      try {
        return await this.#client.sendCommand(['EVALSHA', APPLY_SHA, ...tail]);
      } catch (err) {
        // First use on this Redis (or after SCRIPT FLUSH / a restart): EVAL loads it.
        if (!(err instanceof ErrorReply && err.message.startsWith('NOSCRIPT'))) throw err;
        return await this.#client.sendCommand(['EVAL', APPLY_SCRIPT, ...tail]);
      }
    }, signal)) as [number, string];
    const watermark = reply[1] === '' ? undefined : Number(reply[1]);
    return { applied: reply[0] === 1, watermark };
  }

  /**
   * Counts one partition's messages (in offset order) once each: those above
   * the watermark `known` (as this member last saw it; absent: read it first)
   * go in; when another member or an earlier try moved the watermark
   * meanwhile, again for what is above the new one. Returns the watermark
   * it started from and the one after it, and how many of `entries` were
   * counted now (the rest had been).
   */
  async count(
    partition: number,
    entries: readonly Counted[],
    known: { watermark: number | undefined } | undefined,
    signal?: AbortSignal,
  ): Promise<{ before: number | undefined; watermark: number | undefined; counted: number }> {
    const before = known === undefined ? await this.watermark(partition, signal) : known.watermark;
    let watermark = before;
    if (entries.length === 0) return { before, watermark, counted: 0 };
    const last = entries[entries.length - 1]!.offset;
    for (;;) {
      const from = watermark === undefined ? 0 : entries.findIndex((e) => e.offset > watermark!);
      if (from === -1) return { before, watermark, counted: 0 };
      const tally = new Tally();
      for (let i = from; i < entries.length; i++) tally.add(entries[i]!.labels, entries[i]!.bytes);
      const r = await this.apply(partition, watermark, last, tally, signal);
      if (r.applied) return { before, watermark: last, counted: entries.length - from };
      this.#log.debug({ partition, expected: watermark, found: r.watermark, last }, 'watermark moved meanwhile; counting again from it');
      watermark = r.watermark;
    }
  }

  /** Every count and watermark as of one moment (one MULTI), so the table adds up. */
  async snapshot(signal?: AbortSignal): Promise<Snapshot> {
    const replies = (await this.#retrying(() => {
      const m = this.#client.multi().hGetAll(this.#totalsKey).hGetAll(this.#offsetsKey);
      for (const d of DIMENSIONS) m.hGetAll(this.#keys[d]);
      return m.exec();
    }, signal)) as unknown as Record<string, string>[];
    const [totals, offsets, ...dims] = replies;
    const numbers = (r: Record<string, string> | undefined) => new Map(Object.entries(r ?? {}).map(([k, v]) => [k, Number(v)]));
    const t = numbers(totals);
    return {
      totals: { events: t.get(TOTALS[0]) ?? 0, bytes: t.get(TOTALS[1]) ?? 0 },
      by: Object.fromEntries(DIMENSIONS.map((d, i) => [d, numbers(dims[i])])) as Record<Dimension, Map<string, number>>,
      offsets: new Map([...numbers(offsets)].map(([p, o]) => [Number(p), o])),
    };
  }

  /**
   * Runs `fn` until it succeeds: connection trouble (the client logs it) and
   * transient replies are waited out; any other reply from Redis is final.
   * An aborted `signal` stops the waiting with its reason.
   */
  async #retrying<T>(fn: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted();
      try {
        return await abortable(fn(), signal);
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        // A bug here, not Redis: retrying would hide it.
        if (err instanceof TypeError || err instanceof RangeError) throw err;
        if (err instanceof ErrorReply) {
          if (!TRANSIENT_REPLY.test(err.message)) throw new StatsStoreError(`Redis at ${this.#url} refused: ${err.message}`, { cause: err });
          const now = Date.now();
          if (now - this.#lastLog >= LOG_EVERY_MS) {
            this.#lastLog = now;
            this.#log.warn({ err: err.message, redis: this.#url }, 'Redis is not ready; retrying');
          }
        }
        await sleep(Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(attempt, 10)), signal);
      }
    }
  }

  async close(): Promise<void> {
    // close() waits for the commands still queued to be answered: with Redis away they never are, its promise
    // never settles, and Node exits with 13 ("unsettled top-level await") instead of the command's exit code.
    // Without a connection, or when the answers do not come within 5 s, drop them (the counts in Redis are exact
    // either way; what was not committed is read again and skipped).
    if (this.#client.isReady) {
      let timer: NodeJS.Timeout | undefined;
      const closed = await Promise.race([
        this.#client.close().then(() => true, () => false),
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 5_000))),
      ]);
      clearTimeout(timer);
      if (closed) return;
    }
    this.#client.destroy();
  }
}

/** A connection error's text: Node gives an AggregateError with no message when every address of a name refused. */
export function describe(err: unknown): string {
  if (err instanceof AggregateError && err.message === '') return err.errors.map(describe).join('; ');
  if (err instanceof Error) return err.message || (err as NodeJS.ErrnoException).code || err.name;
  return String(err);
}

function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
