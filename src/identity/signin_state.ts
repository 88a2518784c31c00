/**
 * Sign-in state kept in the edge store, so an edge restart neither breaks
 * a sign-in in progress (the user is at the IdP's login form while the
 * edge restarts: the state, nonce and PKCE verifier are still there when
 * the callback arrives) nor re-opens a replay window (a SAML assertion
 * accepted before the restart is still refused after it). Rows lapse and
 * are bounded per kind; their bodies are sealed by the store (secret_box).
 */
import type { Clock } from "../clock.ts";
import type { SignInStateKind, Store } from "../store/mod.ts";
import type { SamlReplayCache, SamlRequestStore } from "./saml_stores.ts";

/** Rows of one kind kept at most (the oldest go first). */
export const STORED_STATE_LIMIT = 100_000;

/** How often (at most) lapsed rows are purged while sign-ins come in. */
const PURGE_EVERY_MS = 60_000;

/** Shared by the stored maps: purges lapsed rows now and then. */
class Purger {
  #last = 0;
  constructor(private store: Store, private clock: Clock) {}
  /** Purges when the last purge is older than a minute. */
  tick(): void {
    const now = this.clock.now();
    if (now - this.#last < PURGE_EVERY_MS) return;
    this.#last = now;
    this.store.signInState.purge(now);
  }
}

/** A lapsing map of JSON values in the store (the stored twin of lapsing.ts). */
export class StoredLapsing<V extends { expiresAt: number }> {
  readonly #purger: Purger;
  constructor(
    private store: Store,
    private clock: Clock,
    private kind: SignInStateKind,
    private max: number,
  ) {
    this.#purger = new Purger(store, clock);
  }
  /** Stores `v` under `k` until its `expiresAt`. */
  set(k: string, v: V): void {
    this.#purger.tick();
    this.store.signInState.put(
      this.kind,
      k,
      JSON.stringify(v),
      v.expiresAt,
      this.clock.now(),
      this.max,
    );
  }
  /** The entry, if present and live. */
  get(k: string): V | undefined {
    const b = this.store.signInState.get(this.kind, k, this.clock.now());
    return b === undefined ? undefined : JSON.parse(b) as V;
  }
  /** Removes and returns a live entry (one use). */
  take(k: string): V | undefined {
    const b = this.store.signInState.take(this.kind, k, this.clock.now());
    return b === undefined ? undefined : JSON.parse(b) as V;
  }
}

/** {@link SamlReplayCache} in the store: an accepted assertion ID stays refused across restarts. */
export class StoredReplayCache implements SamlReplayCache {
  readonly #purger: Purger;
  constructor(private store: Store, private clock: Clock, private max = STORED_STATE_LIMIT) {
    this.#purger = new Purger(store, clock);
  }
  /** See {@link SamlReplayCache.seen}. */
  seen(id: string, expiresAt: number): boolean {
    this.#purger.tick();
    return !this.store.signInState.putOnce(
      "saml_assertion",
      id,
      expiresAt,
      this.clock.now(),
      this.max,
    );
  }
}

/** {@link SamlRequestStore} in the store: a response to a request issued before a restart is still accepted, once. */
export class StoredRequestStore implements SamlRequestStore {
  constructor(private store: Store, private clock: Clock, private max = STORED_STATE_LIMIT) {}
  /** See {@link SamlRequestStore.issued}. */
  issued(id: string, expiresAt: number): void {
    this.store.signInState.put("saml_request", id, "", expiresAt, this.clock.now(), this.max);
  }
  /** See {@link SamlRequestStore.consume}. */
  consume(id: string): boolean {
    return this.store.signInState.take("saml_request", id, this.clock.now()) !== undefined;
  }
}
