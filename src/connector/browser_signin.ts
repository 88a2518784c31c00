/**
 * Signing the user in through the system browser: the connector's console
 * sends the browser to the edge's sign-in URL (the edge the enrolment key
 * names) with a return address on the console's own loopback listener and
 * a state only this process knows; the edge, once the IdP signed the user
 * in, sends the browser back with a one-time grant, which is redeemed here
 * for the sign-in token enrolment takes. The state is checked in constant
 * time and used once, so a page elsewhere cannot inject its own grant.
 *
 * An enrolled device whose user's sign-in ended (re-authentication every N
 * hours) signs in the same way, with the enrolment's edge instead of the
 * key's, and the new sign-in renews the enrolment instead of making one.
 */
import { timingSafeEqual } from "node:crypto";
import { InputError } from "../errors.ts";
import { randomToken } from "../identity/secrets.ts";
import type { EdgeApiFactory } from "./edge_api.ts";
import { parseEnrollmentKey } from "./enrollment_key.ts";

/** How long a started browser sign-in may take to come back. */
export const BROWSER_SIGNIN_TTL_MS = 10 * 60_000;

/** Signing in again on an enrolled device (the engine's re-authentication). */
export interface SignInRenewal {
  /** The enrolment's edge URL while the device waits for its user to sign in again, else null. */
  edge(): string | null;
  /** Redeems the grant with that edge and renews the sign-in. */
  withGrant(grant: string): Promise<{ username: string }>;
  /** A local user signs in again. */
  local(username: string, password: string, totp: string): Promise<{ username: string }>;
}

/** Browser sign-in for a connector that has a key and needs its user (or an enrolled one whose sign-in ended). */
export class BrowserSignIn {
  #pending = new Map<string, number>();

  constructor(
    private key: () => string | null | undefined,
    private edge: EdgeApiFactory,
    private enrol: (token: string) => Promise<{ ok: boolean; reason?: string }>,
    private now: () => number = Date.now,
    private renewal?: SignInRenewal,
  ) {}

  /** The edge to sign in with: the enrolment's when renewing, else the key's. */
  #edgeUrl(): string {
    const renewing = this.renewal?.edge();
    if (renewing) return renewing;
    const k = this.key();
    if (!k) throw new InputError("no_key", "Cannot sign in: this connector has no enrolment key");
    return parseEnrollmentKey(k).u;
  }

  /** The edge URL to send the browser to, or an InputError when there is no key. */
  start(email: string, returnTo: string): string {
    const base = this.#edgeUrl();
    const state = randomToken(24);
    const now = this.now();
    for (const [s, exp] of this.#pending) if (exp <= now) this.#pending.delete(s);
    this.#pending.set(state, now + BROWSER_SIGNIN_TTL_MS);
    const u = new URL("/api/v1/signin/start", base);
    u.searchParams.set("email", email);
    u.searchParams.set("return", returnTo);
    u.searchParams.set("state", state);
    return u.href;
  }

  /** A local user (no identity provider): password and one-time code, then enrol as them. */
  async local(username: string, password: string, totp: string): Promise<{ username: string }> {
    if (this.renewal?.edge()) return await this.renewal.local(username, password, totp);
    const k = this.key();
    if (!k) throw new InputError("no_key", "Cannot sign in: this connector has no enrolment key");
    const payload = parseEnrollmentKey(k);
    const client = this.edge.client(payload.u, await this.edge.fetchCa(payload));
    try {
      if (!client.signInLocal) {
        throw new InputError("signin_unsupported", "This edge does not offer sign-in");
      }
      const r = await client.signInLocal(username, password, totp);
      const out = await this.enrol(r.token);
      if (!out.ok) throw new InputError("enroll_failed", out.reason ?? "Cannot enrol", 409);
      return { username: r.user.username };
    } finally {
      client.close();
    }
  }

  /** At the return address: checks the state, redeems the grant and enrols as the user. */
  async finish(grant: string, state: string): Promise<{ username: string }> {
    let match: string | undefined;
    const now = this.now();
    const given = new TextEncoder().encode(state);
    for (const [s, exp] of this.#pending) {
      const mine = new TextEncoder().encode(s);
      if (exp > now && mine.length === given.length && timingSafeEqual(mine, given)) match = s;
    }
    if (!match) {
      throw new InputError(
        "signin_state_unknown",
        "This sign-in was not started here (unknown or expired state); start it again",
        400,
      );
    }
    this.#pending.delete(match);
    if (this.renewal?.edge()) return await this.renewal.withGrant(grant);
    const payload = parseEnrollmentKey(this.key()!);
    const client = this.edge.client(payload.u, await this.edge.fetchCa(payload));
    if (!client.redeemSignIn) {
      throw new InputError("signin_unsupported", "This edge does not offer sign-in");
    }
    const r = await client.redeemSignIn(grant);
    client.close();
    const out = await this.enrol(r.token);
    if (!out.ok) throw new InputError("enroll_failed", out.reason ?? "Cannot enrol", 409);
    return { username: r.user.username };
  }
}
