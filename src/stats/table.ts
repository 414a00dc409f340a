import type { Snapshot } from './store.ts';
import { DIMENSIONS, type Dimension } from './tally.ts';

export interface TableInput {
  topic: string;
  group: string;
  snapshot: Snapshot;
  /** Partitions of the topic (from the metadata at start). */
  partitions: number;
  /** This process's part, next to the group's counts. */
  instance: { assigned: number[]; counted: number; skipped: number; perSecond?: number; lag?: number };
  /** Rows per section. */
  top: number;
  final: boolean;
  now: Date;
}

const TITLES: Record<Dimension, string> = {
  source: 'SOURCE',
  kind: 'KIND',
  collection: 'COLLECTION',
  action: 'ACTION',
  type: 'WIKIMEDIA TYPE',
  wiki: 'WIKI',
};

const MAX_LABEL = 48;

/**
 * The table the command prints: the group's counts (everything in Redis, whichever member counted
 * it), a section per label with its most frequent values, and what this process did. Pure.
 */
export function renderTable(t: TableInput): string[] {
  const { snapshot: s } = t;
  const lines: string[] = [];
  const when = t.now.toISOString().slice(0, 19).replace('T', ' ');
  lines.push(`atkafka stats${t.final ? ' (final)' : ''}  topic ${t.topic}  group ${t.group}  ${when} UTC`);
  lines.push(`${s.totals.events} events, ${formatBytes(s.totals.bytes)}, from ${s.offsets.size} of ${t.partitions} partitions`);
  const i = t.instance;
  const parts = [
    `partitions ${i.assigned.length === 0 ? 'none' : ranges(i.assigned)}`,
    `counted ${i.counted}`,
    `read again and skipped ${i.skipped}`,
  ];
  if (i.perSecond !== undefined) parts.push(`${i.perSecond.toFixed(i.perSecond < 10 ? 1 : 0)}/s`);
  if (i.lag !== undefined) parts.push(`lag ${i.lag}`);
  lines.push(`this instance: ${parts.join(', ')}`);

  const sections = DIMENSIONS.filter((d) => s.by[d].size > 0);
  const width = Math.min(
    MAX_LABEL,
    Math.max(12, ...sections.flatMap((d) => [heading(d, s.by[d].size, t.top).length, ...top(s.by[d], t.top).map(([k]) => k.length)])),
  );
  for (const d of sections) {
    const rows = top(s.by[d], t.top);
    const sum = [...s.by[d].values()].reduce((a, b) => a + b, 0);
    lines.push('');
    lines.push(`${fit(heading(d, s.by[d].size, t.top), width)}  ${'COUNT'.padStart(10)}  ${'%'.padStart(6)}`);
    for (const [label, n] of rows) lines.push(`${fit(label, width)}  ${String(n).padStart(10)}  ${percent(n, sum).padStart(6)}`);
    const rest = s.by[d].size - rows.length;
    if (rest > 0) {
      const restSum = sum - rows.reduce((a, [, n]) => a + n, 0);
      lines.push(`${fit(`(${rest} more)`, width)}  ${String(restSum).padStart(10)}  ${percent(restSum, sum).padStart(6)}`);
    }
  }
  return lines;
}

function heading(d: Dimension, size: number, n: number): string {
  return size > n ? `${TITLES[d]} (top ${n} of ${size})` : TITLES[d];
}

/** The `n` largest counts, ties by label, so the table does not reshuffle between refreshes. */
function top(m: Map<string, number>, n: number): [string, number][] {
  return [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).slice(0, n);
}

function fit(s: string, width: number): string {
  return s.length > width ? `${s.slice(0, width - 1)}…` : s.padEnd(width);
}

function percent(n: number, sum: number): string {
  return sum === 0 ? '' : `${((100 * n) / sum).toFixed(1)}%`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

/** 0-3,5,7-9 */
export function ranges(sorted: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out.join(',');
}
