/**
 * The keys of the events handed on in the last `windowMs` (at most
 * `maxKeys`, the oldest forgotten first): what a rewind after a reconnect,
 * failover or restart sends again is recognised and dropped. Forgetting early
 * can only let a duplicate through, never drop a new event.
 */
export class SeenWindow {
  readonly #keys = new Map<string, number>();
  readonly #windowMs: number;
  readonly #maxKeys: number;
  #adds = 0;

  constructor(windowMs: number, maxKeys: number) {
    this.#windowMs = windowMs;
    this.#maxKeys = maxKeys;
  }

  get size(): number {
    return this.#keys.size;
  }

  /** Remembers `key`; false when it was already there. */
  add(key: string, now: number): boolean {
    if (this.#keys.has(key)) return false;
    this.#keys.set(key, now);
    if (this.#keys.size > this.#maxKeys) this.#keys.delete(this.#keys.keys().next().value!);
    // Maps keep insertion order, which is time order: forget from the front, now and then.
    if ((++this.#adds & 1023) === 0) this.#prune(now);
    return true;
  }

  seed(keys: Iterable<string>, now: number): void {
    for (const k of keys) this.add(k, now);
  }

  /** The keys remembered since `since` (performance.now() time), oldest first. */
  keysSince(since: number): string[] {
    const out: string[] = [];
    for (const [k, at] of this.#keys) if (at >= since) out.push(k);
    return out;
  }

  #prune(now: number): void {
    const oldest = now - this.#windowMs;
    for (const [k, at] of this.#keys) {
      if (at >= oldest) break;
      this.#keys.delete(k);
    }
  }
}
