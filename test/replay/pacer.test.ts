import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPacer } from '../../src/replay/pacer.ts';

test('tokens follow elapsed time, not the number of polls', () => {
  let now = 0;
  const pacer = createPacer(1000, () => now);
  assert.equal(pacer.available(), 1);
  pacer.consume(1);
  assert.equal(pacer.available(), 0);
  assert.equal(pacer.msUntilNext(), 1);
  let sent = 0;
  // Irregular polling (as timers give) must still average out to the rate.
  for (const step of [0.3, 7, 2.2, 0.1, 13, 4, 0.9, 22.5]) {
    now += step;
    const n = pacer.available();
    pacer.consume(n);
    sent += n;
  }
  assert.ok(Math.abs(sent - now) <= 1, `sent ${sent} in ${now} ms`);
});

test('a long stall earns only a short burst', () => {
  let now = 0;
  const pacer = createPacer(1000, () => now);
  pacer.consume(pacer.available());
  now += 10_000;
  assert.equal(pacer.available(), 50);
});

test('slow rates wait the right time between events', () => {
  let now = 0;
  const pacer = createPacer(4, () => now);
  pacer.consume(pacer.available());
  assert.equal(pacer.msUntilNext(), 250);
  now += 100;
  assert.equal(pacer.msUntilNext(), 150);
  assert.throws(() => createPacer(0), RangeError);
});
