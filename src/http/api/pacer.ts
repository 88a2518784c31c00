/**
 * Spreads a burst of work over event-loop turns. A policy change wakes every
 * connected device's policy stream at once, and each rebuilds its bundle
 * synchronously (on PostgreSQL, blocking round trips to the store): done in
 * one go, 1,000 devices held the edge's only event loop — the tunnel pump,
 * every other request, the admin's own answer — for over a second. Each
 * waiter here gets through `perTurn` at a time, one batch per macrotask, so
 * the loop runs in between. The order of arrival is kept.
 */
export class Pacer {
  readonly #perTurn: number;
  #queue: (() => void)[] = [];
  #scheduled = false;

  constructor(perTurn = 25) {
    if (!Number.isInteger(perTurn) || perTurn < 1) {
      throw new RangeError(`Pacer: perTurn must be a positive integer, got ${perTurn}`);
    }
    this.#perTurn = perTurn;
  }

  /** Resolves on a later turn of the event loop, with at most `perTurn` others. */
  turn(): Promise<void> {
    return new Promise((resolve) => {
      this.#queue.push(resolve);
      this.#schedule();
    });
  }

  /** Waiters not let through yet (for tests and metrics). */
  get waiting(): number {
    return this.#queue.length;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setTimeout(() => {
      for (const r of this.#queue.splice(0, this.#perTurn)) r();
      // The next batch's timer only after this batch's continuations ran,
      // so timers they set (a pump wake-up, a response) come first.
      queueMicrotask(() => {
        this.#scheduled = false;
        if (this.#queue.length) this.#schedule();
      });
    }, 0);
  }
}
