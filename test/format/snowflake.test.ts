import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { DEFAULT_EPOCH_MS, MAX_SEQUENCE, Snowflake } from '../../src/format/snowflake.ts';

const INT64_MAX = (1n << 63n) - 1n;
const T0 = Date.parse('2026-12-01T17:35:00Z');

/** A clock the test moves; every read can also move it (`step` ms every `every` reads). */
function fakeClock(start: number, every = 0, step = 1): { now: () => number; set: (ms: number) => void; reads: () => number } {
  let t = start;
  let n = 0;
  return {
    now: () => {
      n++;
      if (every > 0 && n % every === 0) t += step;
      return t;
    },
    set: (ms) => {
      t = ms;
    },
    reads: () => n,
  };
}

function assertStrictlyIncreasing(ids: readonly string[]): void {
  let prev = -1n;
  for (let i = 0; i < ids.length; i++) {
    const v = BigInt(ids[i]!);
    if (v <= prev) assert.fail(`id ${i} (${ids[i]}) is not above the one before (${prev})`);
    prev = v;
  }
}

describe('Snowflake', () => {
  test('1,000,000 in a burst on the real clock: strictly increasing (so unique), decimal, int64', () => {
    const gen = new Snowflake({ workerId: 5 });
    const ids = new Array<string>(1_000_000);
    for (let i = 0; i < ids.length; i++) ids[i] = gen.nextString();
    assertStrictlyIncreasing(ids);
    for (const id of [ids[0]!, ids[ids.length - 1]!]) {
      assert.match(id, /^[1-9][0-9]*$/);
      assert.ok(BigInt(id) <= INT64_MAX);
      assert.equal(Snowflake.decode(id).workerId, 5);
    }
  });

  test('sequence overflow borrows the next logical ms and never repeats (a clock that does not move)', () => {
    const clock = fakeClock(T0);
    const gen = new Snowflake({ workerId: 9, now: clock.now });
    const ids: string[] = [];
    for (let i = 0; i < 3 * 4096 + 10; i++) ids.push(gen.nextString());
    assertStrictlyIncreasing(ids);
    // The construction ms is never used: ids start at T0 + 1 and fill 4,096 per ms.
    assert.deepEqual(Snowflake.decode(ids[0]!), { ms: T0 + 1, workerId: 9, seq: 0 });
    assert.deepEqual(Snowflake.decode(ids[MAX_SEQUENCE]!), { ms: T0 + 1, workerId: 9, seq: MAX_SEQUENCE });
    assert.deepEqual(Snowflake.decode(ids[4096]!), { ms: T0 + 2, workerId: 9, seq: 0 });
    assert.deepEqual(Snowflake.decode(ids.at(-1)!), { ms: T0 + 4, workerId: 9, seq: 9 });
    // Once the wall clock passes the borrowed ms, ids follow it again.
    clock.set(T0 + 100);
    assert.deepEqual(Snowflake.decode(gen.nextString()), { ms: T0 + 100, workerId: 9, seq: 0 });
  });

  test('two worker ids on the same clock: disjoint', () => {
    const clock = fakeClock(T0, 3000); // ~1,500 ids per ms each, some borrowing
    const a = new Snowflake({ workerId: 0, now: clock.now });
    const b = new Snowflake({ workerId: 1023, now: clock.now });
    const seen = new Set<string>();
    for (let i = 0; i < 200_000; i++) {
      seen.add(a.nextString());
      seen.add(b.nextString());
    }
    assert.equal(seen.size, 400_000);
  });

  test('the wall clock steps back 5 s mid-stream: still strictly increasing, the logical clock holds', () => {
    const clock = fakeClock(T0, 100); // 1 ms per 100 reads
    const gen = new Snowflake({ workerId: 42, now: clock.now });
    const ids: string[] = [];
    for (let i = 0; i < 50_000; i++) ids.push(gen.nextString());
    const before = Snowflake.decode(ids.at(-1)!).ms;
    clock.set(before - 5000);
    for (let i = 0; i < 600_000; i++) ids.push(gen.nextString()); // 6 s of this clock: it passes the old time again
    assertStrictlyIncreasing(ids);
    const msAfterStep = Snowflake.decode(ids[50_000]!).ms;
    assert.equal(msAfterStep, before, 'kept counting in the last ms instead of going back');
    const last = Snowflake.decode(ids.at(-1)!);
    assert.ok(last.ms >= before + 900 && last.ms <= before + 1100, `follows the clock again once it is past: ${last.ms - before}`);
  });

  test('a restart within the same ms: the new instance starts after the old one (simulated clock)', () => {
    const clock = fakeClock(T0, 50);
    const a = new Snowflake({ workerId: 7, now: clock.now });
    const aIds: string[] = [];
    for (let i = 0; i < 1000; i++) aIds.push(a.nextString());
    const aLast = Snowflake.decode(aIds.at(-1)!);
    // b is constructed while the clock still reads a's last ms.
    assert.equal(clock.now(), aLast.ms);
    const b = new Snowflake({ workerId: 7, now: clock.now });
    const bIds: string[] = [];
    for (let i = 0; i < 1000; i++) bIds.push(b.nextString());
    assert.ok(Snowflake.decode(bIds[0]!).ms > aLast.ms);
    assertStrictlyIncreasing([...aIds, ...bIds]);
  });

  test('two instances constructed in the same ms, one after the other: no overlap', () => {
    // A clock that moves 1 ms per 500 reads: a is constructed at T0 and its 100
    // ids take far fewer reads than that. Borrowing alone would put them at
    // T0 + 1 while the clock still reads T0, where b (constructed next, still
    // in T0) would start too. The constructor's wait prevents it: a's ids are
    // made only once the clock has left T0.
    const clock = fakeClock(T0, 500);
    const a = new Snowflake({ workerId: 3, now: clock.now });
    const aIds = Array.from({ length: 100 }, () => a.nextString());
    const b = new Snowflake({ workerId: 3, now: clock.now });
    const bIds = Array.from({ length: 100 }, () => b.nextString());
    assert.equal(Snowflake.decode(aIds[0]!).ms, T0 + 1);
    assert.ok(Snowflake.decode(bIds[0]!).ms > Snowflake.decode(aIds.at(-1)!).ms);
    assert.equal(new Set([...aIds, ...bIds]).size, 200);
    assertStrictlyIncreasing([...aIds, ...bIds]);
  });

  test('a clock stuck in one ms: the constructor gives up waiting after ~2 ms and borrows', () => {
    const started = performance.now();
    const gen = new Snowflake({ workerId: 1, now: () => T0 });
    assert.ok(performance.now() - started < 100);
    assert.equal(Snowflake.decode(gen.nextString()).ms, T0 + 1);
  });

  test('ids fit in int64 and decode back to (ms, worker, seq); next() and nextString() agree', () => {
    const clock = fakeClock(T0);
    const gen = new Snowflake({ workerId: 1023, now: clock.now });
    const first = gen.next();
    assert.equal(typeof first, 'bigint');
    assert.deepEqual(Snowflake.decode(first), { ms: T0 + 1, workerId: 1023, seq: 0 });
    assert.equal(gen.nextString(), String(first + 1n));
    assert.equal(gen.next(), first + 2n);
    const expected = (BigInt(T0 + 1 - DEFAULT_EPOCH_MS) << 22n) | (1023n << 12n) | 3n;
    assert.equal(gen.nextString(), expected.toString());

    // The last ms that fits: 2^41 - 1 after the epoch, worker 1023, seq 4095 = INT64_MAX.
    const edgeMs = 2 ** 41 - 2; // Unix epoch as the id epoch, a clock in 2039
    const edge = new Snowflake({ workerId: 1023, epochMs: 0, now: () => edgeMs });
    let id = '';
    for (let i = 0; i < 4096; i++) id = edge.nextString();
    assert.equal(BigInt(id), INT64_MAX);
    assert.deepEqual(Snowflake.decode(id, 0), { ms: edgeMs + 1, workerId: 1023, seq: 4095 });
    assert.throws(() => edge.nextString(), RangeError);

    // Decimal digits of every width near the 1e6 boundary of the two-Number split.
    const low = new Snowflake({ workerId: 0, epochMs: T0, now: fakeClock(T0, 1, 1).now });
    for (let i = 0; i < 5000; i++) {
      const s = low.nextString();
      assert.equal(BigInt(s).toString(), s);
    }
  });

  test('bad options: RangeError with a message naming the problem', () => {
    for (const workerId of [-1, 1024, 1.5, Number.NaN]) {
      assert.throws(() => new Snowflake({ workerId }), (e: unknown) => e instanceof RangeError && /worker id/.test(e.message));
    }
    assert.throws(
      () => new Snowflake({ workerId: 0, epochMs: Date.now() + 60_000 }),
      (e: unknown) => e instanceof RangeError && /in the future/.test(e.message),
    );
    assert.throws(() => new Snowflake({ workerId: 0, epochMs: -1 }), RangeError);
    assert.throws(() => new Snowflake({ workerId: 0, epochMs: 0.5 }), RangeError);
    assert.throws(() => new Snowflake({ workerId: 0, epochMs: 0, now: () => 2 ** 41 + 5 }), /2\^41/);
  });
});
