/**
 * The two pieces of state a SAML service provider needs between messages:
 * which AuthnRequest IDs it issued (so only answers to its own, recent
 * requests are accepted, each once) and which assertion IDs it has accepted
 * (so a captured assertion cannot be posted again). The identity layer backs
 * both with the store; the in-memory versions here serve tests and a single
 * process.
 */
import type { Clock } from "../clock.ts";

/** Remembers accepted assertion IDs until they would have expired anyway. */
export interface SamlReplayCache {
  /**
   * True when `id` was recorded before and has not expired; otherwise
   * records it until `expiresAt` (epoch ms) and returns false. Must be atomic:
   * two concurrent calls with one ID may not both return false. The service
   * provider passes the IdP entity ID and the assertion ID joined by a space,
   * so one cache can serve several IdPs.
   */
  seen(id: string, expiresAt: number): boolean | Promise<boolean>;
}

/** Remembers the AuthnRequest IDs this service provider issued. */
export interface SamlRequestStore {
  /** Records a request ID that a response may answer until `expiresAt` (epoch ms). */
  issued(id: string, expiresAt: number): void | Promise<void>;
  /** True (once) when `id` was issued and has not expired; removes it either way. */
  consume(id: string): boolean | Promise<boolean>;
}

/** Entries kept at most, so a flood of sign-in attempts cannot grow memory without bound. */
export const MEMORY_STORE_LIMIT = 100_000;

/** An ID → expiry map that forgets expired entries and, past its limit, the oldest. */
class ExpiringSet {
  readonly #items = new Map<string, number>();
  constructor(readonly clock: Clock, readonly limit: number) {}

  /** True when `id` is present and unexpired. */
  has(id: string): boolean {
    const exp = this.#items.get(id);
    if (exp === undefined) return false;
    if (exp <= this.clock.now()) {
      this.#items.delete(id);
      return false;
    }
    return true;
  }

  /** Records `id` until `expiresAt`. */
  add(id: string, expiresAt: number): void {
    this.#items.delete(id);
    this.#items.set(id, expiresAt);
    if (this.#items.size > this.limit) this.#prune();
  }

  /** Removes `id`; true when it was present and unexpired. */
  take(id: string): boolean {
    const live = this.has(id);
    this.#items.delete(id);
    return live;
  }

  /** Number of entries held (expired ones included until pruned). */
  get size(): number {
    return this.#items.size;
  }

  #prune(): void {
    const now = this.clock.now();
    for (const [id, exp] of this.#items) if (exp <= now) this.#items.delete(id);
    // Still full of live entries: drop the oldest insertions (Map keeps order).
    for (const id of this.#items.keys()) {
      if (this.#items.size <= this.limit) break;
      this.#items.delete(id);
    }
  }
}

/** In-memory {@link SamlReplayCache} for tests and a single edge process. */
export class MemoryReplayCache implements SamlReplayCache {
  readonly #set: ExpiringSet;
  constructor(clock: Clock, limit = MEMORY_STORE_LIMIT) {
    this.#set = new ExpiringSet(clock, limit);
  }
  /** See {@link SamlReplayCache.seen}. */
  seen(id: string, expiresAt: number): boolean {
    if (this.#set.has(id)) return true;
    this.#set.add(id, expiresAt);
    return false;
  }
  /** Number of IDs held. */
  get size(): number {
    return this.#set.size;
  }
}

/** In-memory {@link SamlRequestStore} for tests and a single edge process. */
export class MemoryRequestStore implements SamlRequestStore {
  readonly #set: ExpiringSet;
  constructor(clock: Clock, limit = MEMORY_STORE_LIMIT) {
    this.#set = new ExpiringSet(clock, limit);
  }
  /** See {@link SamlRequestStore.issued}. */
  issued(id: string, expiresAt: number): void {
    this.#set.add(id, expiresAt);
  }
  /** See {@link SamlRequestStore.consume}. */
  consume(id: string): boolean {
    return this.#set.take(id);
  }
  /** Number of request IDs held. */
  get size(): number {
    return this.#set.size;
  }
}
