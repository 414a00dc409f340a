/**
 * Snowflake ids for Osprey's `action_id`: a 64-bit integer
 * `(ms - epoch) << 22 | workerId << 12 | seq`, the layout Osprey reads back
 * (`osprey.worker.lib.utils.dates.snowflake_to_datetime`, `>> 22` plus
 * `OSPREY_EPOCH` = 1420070400000, the default here).
 *
 * Guarantees, for one worker id:
 * - Strictly increasing within an instance. The millisecond used is a logical
 *   clock, max(wall clock, last used): a wall clock stepping backwards does
 *   not make ids go back, the instance keeps counting in the last millisecond.
 * - A sequence overflow (more than 4,096 ids in one millisecond) borrows the
 *   next logical millisecond instead of waiting, so `next()` never blocks.
 * - A new instance never uses a millisecond at or before the one it was
 *   constructed in, and the constructor waits (< 1 ms, spinning) until the
 *   wall clock has left that millisecond. So an instance that ran before it,
 *   sequentially (a restart, even within one millisecond), used only
 *   milliseconds up to its logical clock at the time, while ids of this one
 *   start after it.
 *
 * Limits (no state survives a restart, so these cannot be ruled out):
 * - A wall clock that is behind, across a restart, the last millisecond the
 *   previous instance used: the previous instance was riding out a backwards
 *   step, or the clock was stepped back between the two processes. The new
 *   instance may then reuse ids of the old one, for as long as the
 *   difference.
 * - Borrowing runs ahead of the wall clock by (ids in a burst / 4,096) minus
 *   the burst's duration in ms. A restart faster than that lead may reuse the
 *   borrowed milliseconds. atkafka produces far fewer than 4,096 messages per
 *   millisecond (tens per millisecond at full speed) and restarts in far more
 *   than one, so this needs a burst no real stream makes.
 * - Two instances running at the same time with the same worker id collide:
 *   worker ids must be unique among everything minting ids for the same
 *   Osprey (its own `snowflake-id-worker` included).
 * - The constructor's wait gives up after 2 ms of real time (a clock that does
 *   not move, or moved back at that moment); the instance then starts right
 *   after its construction millisecond, by borrowing.
 * - Ids fit in a signed 64-bit integer until 2^41 ms after the epoch (year
 *   2084 with the default); past that `next()` throws a RangeError.
 */

/** Osprey's epoch (2015-01-01T00:00:00Z), as in its docker-compose `SNOWFLAKE_EPOCH`. */
export const DEFAULT_EPOCH_MS = 1_420_070_400_000;
export const MAX_WORKER_ID = 1023;
export const MAX_SEQUENCE = 4095;

const WORKER_SHIFT = 4096; // 2^12
const TIME_SHIFT = 4_194_304; // 2^22
/** Milliseconds after the epoch that still fit in 41 bits (sign bit clear). */
const TIME_LIMIT = 2 ** 41;
/** How long (real time) the constructor waits for the wall clock to leave its millisecond. */
const START_WAIT_MS = 2;
/** Zero padding of the low six decimal digits, by the length of the unpadded string. */
const PAD = ['', '00000', '0000', '000', '00', '0', ''];

export interface SnowflakeOptions {
  /** Unix ms of id time 0; default 1420070400000 (Osprey's). Not in the future. */
  epochMs?: number;
  /** 0..1023, unique among all generators feeding the same Osprey. */
  workerId: number;
  /** Wall clock in Unix ms; default Date.now. */
  now?: () => number;
}

export interface SnowflakeParts {
  /** Unix ms of the id. */
  ms: number;
  workerId: number;
  seq: number;
}

export class Snowflake {
  readonly epochMs: number;
  readonly workerId: number;
  readonly #now: () => number;
  /** Logical clock: Unix ms of the last id. */
  #last: number;
  #seq: number;
  // Decimal form of (#last - epoch) << 22 | workerId << 12 as hi * 1e6 + lo,
  // recomputed when #last moves: an id is then two Number additions and a
  // string concatenation, no BigInt.
  #hi = 0;
  #lo = 0;
  #hiStr = '';
  #hiStrNext = '';

  constructor(opts: SnowflakeOptions) {
    const epochMs = opts.epochMs ?? DEFAULT_EPOCH_MS;
    const workerId = opts.workerId;
    if (!Number.isInteger(workerId) || workerId < 0 || workerId > MAX_WORKER_ID) {
      throw new RangeError(`snowflake worker id must be an integer 0..${MAX_WORKER_ID}, got ${String(workerId)}`);
    }
    if (!Number.isSafeInteger(epochMs) || epochMs < 0) {
      throw new RangeError(`snowflake epoch must be a non-negative integer of Unix ms, got ${String(epochMs)}`);
    }
    this.#now = opts.now ?? Date.now;
    const start = Math.floor(this.#now());
    if (!Number.isSafeInteger(start)) throw new RangeError(`snowflake clock returned ${String(start)}, not Unix ms`);
    if (epochMs > start) {
      throw new RangeError(`snowflake epoch ${epochMs} (${new Date(epochMs).toISOString()}) is in the future (now ${start})`);
    }
    if (start - epochMs >= TIME_LIMIT) {
      throw new RangeError(`snowflake epoch ${epochMs} is more than 2^41 ms ago: ids would not fit in 64 bits`);
    }
    this.epochMs = epochMs;
    this.workerId = workerId;
    // The construction millisecond counts as used up (by whoever ran before us).
    this.#last = start;
    this.#seq = MAX_SEQUENCE;
    this.#rebase();
    // Leave it for real before the first id, so a predecessor that was itself
    // constructed in this millisecond (and borrowed its successor) is behind us.
    const deadline = performance.now() + START_WAIT_MS;
    while (Math.floor(this.#now()) <= start && performance.now() < deadline) {
      // spin: at most START_WAIT_MS, once per instance
    }
  }

  /** The next id as a decimal string (no sign, no leading zeros): what the Osprey envelope writes. */
  nextString(): string {
    this.#tick();
    let lo = this.#lo + this.#seq;
    if (lo < 1_000_000) {
      if (this.#hiStr === '') return String(lo);
      const s = String(lo);
      return this.#hiStr + PAD[s.length]! + s;
    }
    lo -= 1_000_000;
    if (this.#hiStrNext === '') this.#hiStrNext = String(this.#hi + 1);
    const s = String(lo);
    return this.#hiStrNext + PAD[s.length]! + s;
  }

  /** The next id as a BigInt. */
  next(): bigint {
    this.#tick();
    return (BigInt(this.#last - this.epochMs) << 22n) | BigInt(this.workerId * WORKER_SHIFT + this.#seq);
  }

  /** The parts of an id minted with `epochMs`. */
  static decode(id: bigint | string, epochMs: number = DEFAULT_EPOCH_MS): SnowflakeParts {
    const v = BigInt(id);
    if (v < 0n || v >= 1n << 63n) throw new RangeError(`not a 64-bit snowflake: ${String(id)}`);
    return {
      ms: Number(v >> 22n) + epochMs,
      workerId: Number((v >> 12n) & 1023n),
      seq: Number(v & 4095n),
    };
  }

  #tick(): void {
    const now = Math.floor(this.#now());
    if (now > this.#last) {
      this.#last = now;
      this.#seq = 0;
    } else if (this.#seq < MAX_SEQUENCE) {
      // Same millisecond, or the wall clock is behind the logical one.
      this.#seq++;
      return;
    } else {
      this.#last++; // borrow the next millisecond
      this.#seq = 0;
    }
    if (this.#last - this.epochMs >= TIME_LIMIT) {
      throw new RangeError(`snowflake time ${this.#last} is 2^41 ms or more after the epoch: ids no longer fit in 64 bits`);
    }
    this.#rebase();
  }

  #rebase(): void {
    // t * 2^22 can reach 2^63: split t so each product stays below 2^53.
    const t = this.#last - this.epochMs;
    const tHi = Math.floor(t / 1_000_000);
    const low = (t - tHi * 1_000_000) * TIME_SHIFT + this.workerId * WORKER_SHIFT; // < 4.2e12
    const carry = Math.floor(low / 1_000_000);
    this.#hi = tHi * TIME_SHIFT + carry; // < 1.9e13
    this.#lo = low - carry * 1_000_000;
    this.#hiStr = this.#hi === 0 ? '' : String(this.#hi);
    this.#hiStrNext = '';
  }
}
