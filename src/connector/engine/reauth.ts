/**
 * Signing the user in again when the edge says their sign-in on this device
 * ended (state `signin_required`): the device keeps its enrolment — id,
 * keys, credential, address — and hands the new sign-in over to the edge
 * (POST /api/v1/reauth), which puts the same device back in the tunnel.
 *
 * Two ways in: the console's browser sign-in (the grant is redeemed with the
 * enrolment's own edge client), or, on a headless box started with a
 * sign-in e-mail, the device flow run here by itself as soon as the state is
 * entered, again every `retryMs` while the user has not finished it.
 */
import type { TimerId, Timers } from "../../clock.ts";
import type { SignInResult } from "../../control/mod.ts";
import { InputError } from "../../errors.ts";
import { logger } from "../../log.ts";
import type { EdgeApi } from "../edge_api.ts";
import type { NotificationHub } from "../notifications.ts";

const log = logger("connector.engine");

/** What re-authentication needs from the engine. */
export interface ReauthDeps {
  /** The enrolment's edge client (credentials set), or null when not enrolled. */
  client: () => EdgeApi | null;
  /** True while the engine is in `signin_required`. */
  required: () => boolean;
  /** Tells the state machine the user is signed in again. */
  signedIn: () => Promise<void>;
  /** The device flow (connector started with a sign-in e-mail); absent: the user signs in in the console. */
  deviceFlow?: (client: EdgeApi) => Promise<string>;
  hub: Pick<NotificationHub, "raise">;
  timers: Timers;
  /** Wait before the device flow starts again after it failed (default 60 s). */
  retryMs?: number;
}

/** Re-authentication of an enrolled device whose sign-in ended. */
export class Reauth {
  #running = false;
  #timer: TimerId | null = null;

  constructor(private d: ReauthDeps) {}

  #client(): EdgeApi {
    const c = this.d.client();
    if (!c || !this.d.required()) {
      throw new InputError(
        "signin_not_required",
        "Cannot renew the sign-in: this device is not waiting for its user to sign in",
        409,
      );
    }
    return c;
  }

  /** Hands sign-in token `token` over to the edge; the engine goes back to refreshing. */
  async renew(token: string): Promise<void> {
    const c = this.#client();
    if (!c.reauth) {
      throw new InputError("signin_unsupported", "This edge cannot renew a sign-in", 409);
    }
    const r = await c.reauth(token);
    log.info("Signed in again", { user: r.user, until: r.signInEndsAt });
    this.d.hub.raise("signed_in", "info", `Signed in again as ${r.user}`, {
      user: r.user,
      until: r.signInEndsAt,
    });
    await this.d.signedIn();
  }

  /** Redeems a browser sign-in's grant with the enrolment's edge, then renews. */
  async withGrant(grant: string): Promise<{ username: string }> {
    const c = this.#client();
    if (!c.redeemSignIn) {
      throw new InputError("signin_unsupported", "This edge does not offer sign-in");
    }
    return await this.#renewWith(await c.redeemSignIn(grant));
  }

  /** A local user (password + one-time code) signs in again. */
  async local(username: string, password: string, totp: string): Promise<{ username: string }> {
    const c = this.#client();
    if (!c.signInLocal) {
      throw new InputError("signin_unsupported", "This edge does not offer sign-in");
    }
    return await this.#renewWith(await c.signInLocal(username, password, totp));
  }

  async #renewWith(r: SignInResult): Promise<{ username: string }> {
    await this.renew(r.token);
    return { username: r.user.username };
  }

  /** The state was entered: on a headless box, start the device flow. */
  entered(): void {
    if (!this.d.deviceFlow || this.#running) return;
    this.#running = true;
    void this.#deviceFlow();
  }

  async #deviceFlow(): Promise<void> {
    try {
      const c = this.#client();
      await this.renew(await this.d.deviceFlow!(c));
    } catch (e) {
      const message = (e as Error).message;
      log.warn("Cannot sign in again", { error: message });
      this.d.hub.raise("signin_failed", "warn", `Cannot sign in again: ${message}`, {});
      if (this.d.required()) {
        this.#timer = this.d.timers.setTimeout(() => {
          this.#timer = null;
          if (this.d.required()) void this.#deviceFlow();
          else this.#running = false;
        }, this.d.retryMs ?? 60_000);
        return;
      }
    }
    this.#running = false;
  }

  /** Stops a pending retry (engine stop). */
  stop(): void {
    if (this.#timer !== null) this.d.timers.clearTimeout(this.#timer);
    this.#timer = null;
  }
}
