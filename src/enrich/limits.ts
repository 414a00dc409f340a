/**
 * The pacing pieces of the enricher: a token bucket per upstream, a FIFO
 * gate on concurrent lookups, and the retry delays.
 */

export class ClosedError extends Error {
  constructor() {
    super('enricher closed');
    this.name = 'ClosedError';
  }
}

/** A queue with O(1) shift: under load thousands of lookups can wait, and Array#shift copies. */
export class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Removes every item, in order. */
  drain(): T[] {
    const rest = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    return rest;
  }
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Requests per second to one upstream, like golang.org/x/time/rate with
 * waiting callers served in arrival order. The burst is the Go version's
 * 100, but never more than one second's worth: with a low limit a burst of
 * 100 would let the first seconds run far over it.
 */
export class TokenBucket {
  readonly #perMs: number;
  readonly #burst: number;
  #tokens: number;
  /** Tokens are counted up to this time; it runs ahead of now while the upstream asked us to hold off. */
  #at: number;
  readonly #waiters = new Fifo<Waiter>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(perSecond: number, burst = 100) {
    if (!(perSecond > 0)) throw new RangeError(`rate limit must be positive, got ${perSecond}`);
    this.#perMs = perSecond / 1000;
    this.#burst = Math.max(1, Math.min(burst, Math.floor(perSecond)));
    this.#tokens = this.#burst;
    this.#at = performance.now();
  }

  /** Resolves when a request may go; rejects with ClosedError after close(). */
  take(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError());
    if (this.#waiters.length === 0) {
      this.#refill(performance.now());
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return Promise.resolve();
      }
    }
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#schedule();
    });
  }

  /** A 429 with Retry-After: nobody goes to this upstream before then. */
  holdFor(ms: number): void {
    const until = performance.now() + ms;
    if (until <= this.#at) return;
    this.#refill(performance.now());
    this.#tokens = Math.min(this.#tokens, 0);
    this.#at = until;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#schedule();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const w of this.#waiters.drain()) w.reject(new ClosedError());
  }

  #refill(now: number): void {
    if (now <= this.#at) return;
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#perMs);
    this.#at = now;
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#waiters.length === 0) return;
    const now = performance.now();
    const wait = Math.max(0, this.#at - now) + Math.max(0, (1 - this.#tokens) / this.#perMs);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#refill(performance.now());
      while (this.#tokens >= 1 && this.#waiters.length > 0) {
        this.#tokens -= 1;
        this.#waiters.shift()!.resolve();
      }
      this.#schedule();
    }, Math.ceil(wait));
  }
}

/** At most `limit` holders; the rest wait in arrival order. */
export class Gate {
  readonly #limit: number;
  #active = 0;
  readonly #waiters = new Fifo<Waiter>();

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`maxConcurrentLookups must be a positive integer, got ${limit}`);
    this.#limit = limit;
  }

  get active(): number {
    return this.#active;
  }

  enter(): Promise<void> {
    if (this.#active < this.#limit) {
      this.#active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Hands the slot straight to the next waiter, so a newcomer cannot overtake the queue. */
  leave(): void {
    const next = this.#waiters.shift();
    if (next !== undefined) next.resolve();
    else this.#active--;
  }

  close(): void {
    for (const w of this.#waiters.drain()) w.reject(new ClosedError());
  }
}

const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 1000;

/** Exponential with jitter (half to full of the ceiling) so retries of many lookups spread out. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Retry-After as delta-seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
export function retryAfterMs(value: string | string[] | undefined, nowMs: number): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (text === undefined || text === '') return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
