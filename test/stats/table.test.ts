import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Snapshot } from '../../src/stats/store.ts';
import { formatBytes, ranges, renderTable } from '../../src/stats/table.ts';

const snapshot = (by: Partial<Record<keyof Snapshot['by'], Record<string, number>>>, events: number): Snapshot => ({
  totals: { events, bytes: 101_325 },
  by: {
    source: new Map(Object.entries(by.source ?? {})),
    kind: new Map(Object.entries(by.kind ?? {})),
    collection: new Map(Object.entries(by.collection ?? {})),
    action: new Map(Object.entries(by.action ?? {})),
    type: new Map(Object.entries(by.type ?? {})),
    wiki: new Map(Object.entries(by.wiki ?? {})),
  },
  offsets: new Map([
    [0, 40],
    [1, 33],
    [3, 29],
  ]),
});

describe('renderTable', () => {
  test('the header, a section per label that has values, the most frequent first, the rest summed', () => {
    const lines = renderTable({
      topic: 'atproto-events',
      group: 'atkafka-stats',
      snapshot: snapshot({ source: { relay: 152 }, kind: { commit: 150, identity: 1, account: 1 }, collection: { 'app.bsky.feed.like': 105, 'app.bsky.feed.post': 18, 'app.bsky.feed.repost': 15, 'app.bsky.graph.follow': 12 } }, 152),
      partitions: 4,
      instance: { assigned: [0, 1, 3], counted: 100, skipped: 52, perSecond: 12.34, lag: 7 },
      top: 2,
      final: true,
      now: new Date('2026-12-01T12:30:01.500Z'),
    });
    assert.deepEqual(lines, [
      'atkafka stats (final)  topic atproto-events  group atkafka-stats  2026-12-01 12:30:01 UTC',
      '152 events, 99.0 KiB, from 3 of 4 partitions',
      'this instance: partitions 0-1,3, counted 100, read again and skipped 52, 12/s, lag 7',
      '',
      'SOURCE                        COUNT       %',
      'relay                           152  100.0%',
      '',
      'KIND (top 2 of 3)             COUNT       %',
      'commit                          150   98.7%',
      // Ties in label order, so rows keep their place between refreshes.
      'account                           1    0.7%',
      '(1 more)                          1    0.7%',
      '',
      'COLLECTION (top 2 of 4)       COUNT       %',
      'app.bsky.feed.like              105   70.0%',
      'app.bsky.feed.post               18   12.0%',
      '(2 more)                         27   18.0%',
    ]);
  });

  test('Wikimedia sections; a label too long for the column is cut', () => {
    const long = `x.${'a'.repeat(80)}`;
    const lines = renderTable({
      topic: 'wikimedia.recentchange',
      group: 'g',
      snapshot: snapshot({ source: { wikimedia: 144 }, type: { categorize: 68, edit: 66, log: 7, new: 3 }, wiki: { commonswiki: 69, [long]: 1 } }, 144),
      partitions: 1,
      instance: { assigned: [], counted: 0, skipped: 0 },
      top: 10,
      final: false,
      now: new Date(0),
    });
    assert.equal(lines[2], 'this instance: partitions none, counted 0, read again and skipped 0');
    assert.ok(lines.includes(`WIKIMEDIA TYPE${' '.repeat(34)}       COUNT       %`), lines.join('\n'));
    assert.ok(lines.includes(`categorize${' '.repeat(38)}          68   47.2%`), lines.join('\n'));
    const cut = lines.find((l) => l.startsWith('x.'))!;
    assert.equal(cut.indexOf('…'), 47);
  });
});

test('ranges and sizes', () => {
  assert.equal(ranges([0, 1, 2, 3, 5, 7, 8, 9]), '0-3,5,7-9');
  assert.equal(ranges([4]), '4');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(101_325), '99.0 KiB');
  assert.equal(formatBytes(5 * 1024 * 1024), '5.00 MiB');
});
