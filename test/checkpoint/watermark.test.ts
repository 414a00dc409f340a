import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { Watermark, type Ticket } from '../../src/checkpoint/watermark.ts';
import { prng } from '../support/prng.ts';

/** How the pipeline hands out a message of an event: one more pending confirmation. */
function send(t: Ticket): Ticket {
  t.pending++;
  return t;
}

function recorder(): { values: number[]; wm: (initial?: number) => Watermark } {
  const values: number[] = [];
  return { values, wm: (initial) => new Watermark(initial, (p) => values.push(p)) };
}

describe('Watermark', () => {
  test('starts at the initial position (or undefined) and holds until the first event completes', () => {
    assert.equal(new Watermark().value, undefined);
    const wm = new Watermark(41);
    assert.equal(wm.value, 41);
    const t = send(wm.track(42));
    wm.seal(t);
    assert.equal(wm.value, 41);
    assert.equal(wm.size, 1);
    wm.confirm(t);
    assert.equal(wm.value, 42);
    assert.equal(wm.size, 0);
  });

  test('in-order confirmations advance one event at a time', () => {
    const { values, wm: make } = recorder();
    const wm = make();
    const tickets = [10, 11, 13].map((p) => {
      const t = send(wm.track(p));
      wm.seal(t);
      return t;
    });
    assert.equal(wm.value, undefined);
    wm.confirm(tickets[0]!);
    assert.equal(wm.value, 10);
    wm.confirm(tickets[1]!);
    assert.equal(wm.value, 11);
    wm.confirm(tickets[2]!);
    assert.equal(wm.value, 13);
    assert.deepEqual(values, [10, 11, 13]);
  });

  test('out-of-order confirmations: a later event waits for every earlier one, then the mark jumps', () => {
    const { values, wm: make } = recorder();
    const wm = make(99);
    const [a, b, c, d] = [100, 101, 102, 103].map((p) => {
      const t = send(send(wm.track(p)));
      wm.seal(t);
      return t;
    }) as [Ticket, Ticket, Ticket, Ticket];
    wm.confirm(d);
    wm.confirm(d);
    wm.confirm(c);
    wm.confirm(b);
    wm.confirm(b);
    wm.confirm(a);
    assert.equal(wm.value, 99, 'a still has one message out');
    assert.equal(wm.size, 4);
    assert.deepEqual(values, []);
    wm.confirm(a);
    assert.equal(wm.value, 101, 'c is still one short');
    wm.confirm(c);
    assert.equal(wm.value, 103);
    assert.equal(wm.size, 0);
    assert.deepEqual(values, [101, 103], 'one call per advance, not per released event');
  });

  test('events with zero messages complete when sealed, but never pass an earlier pending event', () => {
    const { values, wm: make } = recorder();
    const wm = make();
    wm.seal(wm.track(1));
    assert.equal(wm.value, 1);
    const pending = send(wm.track(2));
    wm.seal(pending);
    wm.seal(wm.track(3));
    wm.seal(wm.track(4));
    assert.equal(wm.value, 1);
    assert.equal(wm.size, 3);
    wm.confirm(pending);
    assert.equal(wm.value, 4);
    assert.deepEqual(values, [1, 4]);
  });

  test('an unsealed event does not complete even with nothing pending; sealing after its confirmations does', () => {
    const { values, wm: make } = recorder();
    const wm = make();
    const t = send(send(wm.track(5)));
    wm.confirm(t);
    wm.confirm(t);
    assert.equal(t.pending, 0);
    assert.equal(wm.value, undefined, 'more messages may still be added');
    // Another message after the first two were confirmed, still before the seal.
    send(t);
    wm.confirm(t);
    assert.equal(wm.value, undefined);
    const later = wm.track(6);
    wm.seal(later);
    assert.equal(wm.value, undefined, 'event 6 waits for unsealed 5');
    wm.seal(t);
    assert.equal(wm.value, 6);
    assert.deepEqual(values, [6]);
  });

  test('an unsealed zero-message event blocks everything after it', () => {
    const wm = new Watermark();
    const open = wm.track(1);
    for (let p = 2; p < 50; p++) {
      const t = send(wm.track(p));
      wm.seal(t);
      wm.confirm(t);
    }
    assert.equal(wm.value, undefined);
    assert.equal(wm.size, 49);
    wm.seal(open);
    assert.equal(wm.value, 49);
    assert.equal(wm.size, 0);
  });

  test('a long blocked run releases at once, and events still queued behind it survive the queue compaction', () => {
    const { values, wm: make } = recorder();
    const wm = make();
    const tickets: Ticket[] = [];
    for (let p = 1; p <= 6000; p++) {
      const t = send(wm.track(p));
      wm.seal(t);
      tickets.push(t);
    }
    // Everything but events 1 and 5001 confirmed.
    for (let i = 1; i < 6000; i++) if (i !== 5000) wm.confirm(tickets[i]!);
    assert.equal(wm.value, undefined);
    wm.confirm(tickets[0]!);
    assert.equal(wm.value, 5000);
    assert.equal(wm.size, 1000);
    // Events tracked after the compaction queue up behind the pending one.
    const late = send(wm.track(6001));
    wm.seal(late);
    wm.confirm(late);
    assert.equal(wm.value, 5000);
    wm.confirm(tickets[5000]!);
    assert.equal(wm.value, 6001);
    assert.equal(wm.size, 0);
    assert.deepEqual(values, [5000, 6001]);
  });

  test('keeps receivedAt on the ticket for latency', () => {
    const wm = new Watermark();
    assert.equal(wm.track(1, 1234.5).receivedAt, 1234.5);
    assert.equal(wm.track(2).receivedAt, 0);
  });

  test('randomized: thousands of events, 0-5 messages each, random interleaving, equals a reference model at every step', () => {
    for (const seed of [1, 2, 3, 0xbeef]) runRandom(seed, 12_000);
  });
});


interface ModelEvent {
  position: number;
  ticket: Ticket;
  toSend: number;
  sent: number;
  confirmed: number;
  sealed: boolean;
}

function runRandom(seed: number, eventCount: number): void {
  const rand = prng(seed);
  const int = (n: number): number => Math.floor(rand() * n);
  const initial = 1_000_000 + int(1000);
  const advances: number[] = [];
  const wm = new Watermark(initial, (p) => {
    // Called after the value moved, with the new value.
    assert.equal(p, wm.value);
    advances.push(p);
  });

  // The reference model: the watermark is the last event of the longest prefix of
  // tracked events that are sealed with every sent message confirmed.
  const model: ModelEvent[] = [];
  let released = 0;
  let expected: number | undefined = initial;
  const open: ModelEvent[] = []; // tracked, not sealed
  const inFlight: ModelEvent[] = []; // one entry per unconfirmed message
  let nextPosition = initial + 1;
  let tracked = 0;
  let steps = 0;
  let maxSize = 0;

  const check = (): void => {
    while (released < model.length) {
      const e = model[released]!;
      if (!e.sealed || e.confirmed !== e.sent) break;
      expected = e.position;
      released++;
    }
    assert.equal(wm.value, expected, `seed ${seed}, step ${steps}`);
    assert.equal(wm.size, model.length - released, `seed ${seed}, step ${steps}: size`);
    maxSize = Math.max(maxSize, wm.size);
  };

  while (tracked < eventCount || open.length > 0 || inFlight.length > 0) {
    steps++;
    const r = rand();
    if (r < 0.3 && tracked < eventCount && open.length < 4) {
      // Seqs increase with gaps.
      const position = nextPosition;
      nextPosition += 1 + (rand() < 0.2 ? int(50) : 0);
      const e: ModelEvent = { position, ticket: wm.track(position), toSend: int(6), sent: 0, confirmed: 0, sealed: false };
      model.push(e);
      open.push(e);
      tracked++;
    } else if (r < 0.55 && open.length > 0) {
      const e = open[int(open.length)]!;
      if (e.sent < e.toSend) {
        send(e.ticket);
        e.sent++;
        inFlight.push(e);
      } else {
        wm.seal(e.ticket);
        e.sealed = true;
        open.splice(open.indexOf(e), 1);
      }
    } else if (inFlight.length > 0) {
      // Confirmations come back in any order, also before their event is sealed.
      const i = int(inFlight.length);
      const e = inFlight[i]!;
      inFlight[i] = inFlight[inFlight.length - 1]!;
      inFlight.pop();
      wm.confirm(e.ticket);
      e.confirmed++;
    } else {
      continue;
    }
    check();
  }

  assert.equal(released, eventCount);
  assert.equal(wm.value, model.at(-1)!.position);
  assert.equal(wm.size, 0);
  for (let i = 1; i < advances.length; i++) assert.ok(advances[i]! > advances[i - 1]!, `advance ${i}: ${advances[i - 1]} -> ${advances[i]}`);
  assert.ok(advances[0]! > initial);
  assert.equal(advances.at(-1), wm.value);
  // The run really reordered: many events were waiting at some point.
  assert.ok(maxSize >= 10, `max tracked-unreleased ${maxSize}`);
  assert.ok(advances.length > eventCount / 20);
}
