/**
 * Token bucket for events per second. Tokens accrue from elapsed monotonic
 * time rather than per timer tick, so timer jitter and batching do not skew the
 * long-run rate. The bucket starts with one token (no initial burst) and holds at
 * most ~50 ms worth, so a stall (e.g. a slow reader) is not followed by a flood.
 */
export interface Pacer {
  /** Whole events that may be sent now. */
  available(): number;
  /** Records that `count` events were sent. */
  consume(count: number): void;
  /** Milliseconds until at least one more event may be sent. */
  msUntilNext(): number;
}

export const BURST_SECONDS = 0.05;

export function createPacer(eventsPerSecond: number, now: () => number = () => performance.now()): Pacer {
  if (!(eventsPerSecond > 0) || !Number.isFinite(eventsPerSecond)) {
    throw new RangeError(`rate must be a positive finite number, got ${eventsPerSecond}`);
  }
  const perMs = eventsPerSecond / 1000;
  const capacity = Math.max(1, eventsPerSecond * BURST_SECONDS);
  let tokens = 1;
  let last = now();

  function refill(): void {
    const t = now();
    tokens = Math.min(capacity, tokens + (t - last) * perMs);
    last = t;
  }

  return {
    available() {
      refill();
      return Math.floor(tokens);
    },
    consume(count) {
      tokens -= count;
    },
    msUntilNext() {
      refill();
      return tokens >= 1 ? 0 : (1 - tokens) / perMs;
    },
  };
}
