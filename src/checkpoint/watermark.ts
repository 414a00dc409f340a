/**
 * The highest position below which every event is confirmed by Kafka
 * (docs/invariants.md, rule 1). Events are tracked in arrival order, which is
 * upstream order; each may fan out into many Kafka messages, and completes
 * when all of them are confirmed, in whatever order the confirmations come.
 */
export interface Ticket {
  readonly position: number;
  /** performance.now() when the event was read, for latency */
  readonly receivedAt: number;
  /** messages not yet confirmed */
  pending: number;
  /** no more messages will be added */
  sealed: boolean;
}

export class Watermark {
  #queue: Ticket[] = [];
  #head = 0;
  #value: number | undefined;
  #onAdvance: ((position: number) => void) | undefined;
  #onRelease: ((ticket: Ticket) => void) | undefined;

  /** `onRelease` sees each event as the watermark passes it, in order. */
  constructor(initial?: number, onAdvance?: (position: number) => void, onRelease?: (ticket: Ticket) => void) {
    this.#value = initial;
    this.#onAdvance = onAdvance;
    this.#onRelease = onRelease;
  }

  /** Highest position with everything up to it confirmed; undefined before the first. */
  get value(): number | undefined {
    return this.#value;
  }

  /** Events tracked and not yet released by the watermark. */
  get size(): number {
    return this.#queue.length - this.#head;
  }

  track(position: number, receivedAt = 0): Ticket {
    const ticket: Ticket = { position, receivedAt, pending: 0, sealed: false };
    this.#queue.push(ticket);
    return ticket;
  }

  /** Every message of the event has been handed out; it may complete now. */
  seal(ticket: Ticket): void {
    ticket.sealed = true;
    if (ticket.pending === 0) this.#advance();
  }

  /** One message of the event was confirmed. */
  confirm(ticket: Ticket): void {
    ticket.pending--;
    if (ticket.pending === 0 && ticket.sealed) this.#advance();
  }

  #advance(): void {
    const queue = this.#queue;
    let head = this.#head;
    let moved = false;
    while (head < queue.length) {
      const t = queue[head]!;
      if (!t.sealed || t.pending !== 0) break;
      this.#value = t.position;
      this.#onRelease?.(t);
      head++;
      moved = true;
    }
    // Compact now and then instead of shifting on every release.
    if (head > 4096 && head * 2 > queue.length) {
      this.#queue = queue.slice(head);
      head = 0;
    }
    this.#head = head;
    if (moved) this.#onAdvance?.(this.#value!);
  }
}
