import type { Labels } from './labels.ts';

/** The count hashes, one per label: `<prefix>:by-<dimension>`, field = the label's value. */
export const DIMENSIONS = ['source', 'kind', 'collection', 'action', 'type', 'wiki'] as const;
export type Dimension = (typeof DIMENSIONS)[number];

/** `<prefix>:totals`: these two fields. */
export const TOTALS = ['events', 'bytes'] as const;

/** The increments of one batch of one partition, summed before they go to Redis. */
export class Tally {
  readonly counts = new Map<Dimension | 'totals', Map<string, number>>();

  add(labels: Labels, bytes: number): void {
    this.#bump('totals', 'events', 1);
    this.#bump('totals', 'bytes', bytes);
    for (const d of DIMENSIONS) {
      const v = labels[d];
      if (v !== undefined) this.#bump(d, v, 1);
    }
  }

  #bump(hash: Dimension | 'totals', field: string, n: number): void {
    let m = this.counts.get(hash);
    if (m === undefined) this.counts.set(hash, (m = new Map()));
    m.set(field, (m.get(field) ?? 0) + n);
  }
}
