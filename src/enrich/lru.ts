/**
 * A bounded LRU whose entries also expire. A Map keeps insertion order, so
 * re-inserting on a hit makes the first key the least recently used one.
 *
 * The enricher's hot path goes through `get` once per event, mostly for the
 * same busy DIDs. Re-inserting on every hit would churn the Map (each delete
 * leaves a hole the table later rehashes away), so an entry moves to the end
 * only once it has drifted into the older half: a hit on a recent entry is a
 * plain Map lookup. Eviction order stays within half a cache of true LRU.
 */
interface Node<V> {
  value: V;
  expiresAt: number;
  /** #tick when the entry was last put at the end of the Map. */
  tick: number;
}

export class TtlLru<K, V> {
  readonly #max: number;
  readonly #map = new Map<K, Node<V>>();
  #tick = 0;

  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError(`cache size must be a positive integer, got ${maxEntries}`);
    this.#max = maxEntries;
  }

  get size(): number {
    return this.#map.size;
  }

  /** The value while fresh; a stale entry is dropped on the way. */
  get(key: K, now: number): V | undefined {
    const node = this.#map.get(key);
    if (node === undefined) return undefined;
    if (node.expiresAt <= now) {
      this.#map.delete(key);
      return undefined;
    }
    if (this.#tick - node.tick >= this.#max >>> 1) {
      this.#map.delete(key);
      this.#map.set(key, node);
      node.tick = ++this.#tick;
    }
    return node.value;
  }

  /** When the fresh entry of `key` expires, without touching its recency; undefined if none. */
  expiresAt(key: K, now: number): number | undefined {
    const node = this.#map.get(key);
    return node !== undefined && node.expiresAt > now ? node.expiresAt : undefined;
  }

  set(key: K, value: V, ttlMs: number, now: number): void {
    const existing = this.#map.get(key);
    if (existing !== undefined) {
      this.#map.delete(key);
      existing.value = value;
      existing.expiresAt = now + ttlMs;
      existing.tick = ++this.#tick;
      this.#map.set(key, existing);
      return;
    }
    if (this.#map.size >= this.#max) this.#evict(now);
    this.#map.set(key, { value, expiresAt: now + ttlMs, tick: ++this.#tick });
  }

  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  clear(): void {
    this.#map.clear();
  }

  /**
   * Makes room for one entry. A stale entry is freed first if the oldest few
   * hold one (short-lived negative entries would otherwise push out fresh
   * documents); the scan is bounded so a full cache never costs O(n) per set.
   */
  #evict(now: number): void {
    let scanned = 0;
    for (const [key, node] of this.#map) {
      if (node.expiresAt <= now) {
        this.#map.delete(key);
        return;
      }
      if (++scanned >= 8) break;
    }
    const oldest = this.#map.keys().next();
    if (!oldest.done) this.#map.delete(oldest.value);
  }
}
