/**
 * Enrolment with a key: read the key, fetch and pin the edge CA it names,
 * prove possession of this device's signing key (the edge hands an already
 * enrolled hardware's identity back only to that key's holder), enrol, and
 * keep the result — the enrolment, the sealed credential and the first
 * policy — in one store transaction. Also how failures are classed (an
 * unreachable edge is retried in the background with backoff, anything else
 * is final until the user acts) and the retry timer.
 */
import { systemTimers, type TimerId, type Timers } from "../../clock.ts";
import type { Clock } from "../../clock.ts";
import { type EnrollResponse, reenrollMessage } from "../../control/mod.ts";
import type { EnrollmentKeyPayload } from "../../control/enrollment_key.ts";
import { logger } from "../../log.ts";
import type { ConnectorState, StoredEnrollment } from "../../store/connector_state.ts";
import { type EdgeApi, isUnreachable } from "../edge_api.ts";
import { bootstrapBase, parseEnrollmentKey } from "../enrollment_key.ts";
import type { DeviceIdentity } from "../identity.ts";
import type { NotificationHub } from "../notifications.ts";

const log = logger("connector.engine");

/** Facts about this host sent at enrolment. */
export interface DeviceInfo {
  hostname: string;
  os: string;
  osVersion: string;
  connectorVersion: string;
}

/** What enrolment needs. */
export interface EnrolDeps {
  /** Fetches and checks the edge CA named by an enrolment key. */
  fetchCa: (p: EnrollmentKeyPayload) => Promise<string>;
  /** Makes an edge client for a base URL and pinned CA. */
  makeClient: (apiUrl: string, caPem: string) => EdgeApi;
  identity: Pick<
    DeviceIdentity,
    | "fingerprint"
    | "fingerprintHash"
    | "wgPublicKey"
    | "signingPublicKey"
    | "sign"
    | "setCredential"
    | "seal"
  >;
  device: DeviceInfo;
  store: Pick<ConnectorState, "putEnrollment">;
  clock: Clock;
  /**
   * Signs the user in with the edge the key names and returns the sign-in
   * token to enrol with; absent: enrol without a user (a machine key).
   */
  signIn?: (client: EdgeApi) => Promise<string>;
}

/** A successful enrolment: stored, with a client that carries the new credential. */
export interface Enrolled {
  payload: EnrollmentKeyPayload;
  /** The edge client for this enrolment, credentials set. */
  client: EdgeApi;
  enrollment: StoredEnrollment;
  response: EnrollResponse;
  /** When the policy was stored. */
  at: number;
}

/** The sentence when there is no key to enrol with. */
export const NO_KEY_REASON = "No enrolment key: start the connector with `portcullis connect KEY`";

/** Enrols with `keyText`; throws the edge client's errors (see edge_api.ts) or an InputError for a bad key. */
export async function enrol(keyText: string, d: EnrolDeps): Promise<Enrolled> {
  const payload = parseEnrollmentKey(keyText);
  const caPem = await d.fetchCa(payload);
  const client = d.makeClient(payload.u, caPem);
  const { identity, device } = d;
  // Signed with our signing key: if this hardware is enrolled already, the
  // edge hands its identity back only to the holder of that key.
  const proof = btoa(String.fromCharCode(
    ...await identity.sign(new TextEncoder().encode(
      reenrollMessage(identity.fingerprintHash, identity.wgPublicKey, identity.signingPublicKey),
    )),
  ));
  const signIn = d.signIn ? await d.signIn(client) : undefined;
  const res = await client.enroll({
    proof,
    ...(signIn ? { signIn } : {}),
    key: payload.s,
    hostname: device.hostname,
    os: device.os,
    osVersion: device.osVersion,
    connectorVersion: device.connectorVersion,
    fingerprint: identity.fingerprint,
    wgPublicKey: identity.wgPublicKey,
    signingPublicKey: identity.signingPublicKey,
  });
  identity.setCredential(res.credential);
  const enrollment: StoredEnrollment = {
    deviceId: res.deviceId,
    apiUrl: payload.u,
    bootstrapUrl: bootstrapBase(payload),
    caPem,
    address: res.address,
    network: res.network,
    edgeAddress: res.edgeAddress,
    edgePublicKey: res.edgePublicKey,
    endpoints: res.endpoints,
    user: res.user,
    group: res.group,
    enrolledAt: d.clock.now(),
  };
  const at = d.clock.now();
  d.store.putEnrollment(enrollment, await identity.seal(), {
    version: res.policy.version,
    etag: `"${res.policy.version}"`,
    bundle: res.policy,
    updatedAt: at,
  });
  client.setCredentials(res.credential, identity.fingerprintHash);
  return { payload, client, enrollment, response: res, at };
}

/** How an enrolment failure is handled. */
export interface EnrolFailure {
  /** The edge is unreachable: retry in the background; otherwise the failure is final. */
  retry: boolean;
  /** Tell the user (the first failure of a retry series, or a final one); later retries only log. */
  tell: boolean;
  /** The notification text. */
  message: string;
}

/** Classes a failed enrolment, `failures` being the background retries that failed before it. */
export function enrolFailure(err: unknown, failures: number): EnrolFailure {
  const message = (err as Error).message;
  const retry = isUnreachable(err);
  return {
    retry,
    tell: failures === 0 || !retry,
    message: retry ? `${message}; retrying in the background` : message,
  };
}

/** Delay before background retry number `failures` (1, 2, …): doubling from min, capped at max. */
export function enrolRetryDelay(failures: number, b: { min: number; max: number }): number {
  return Math.min(b.max, b.min * 2 ** Math.min(failures - 1, 20));
}

/** The one pending background enrolment retry. */
export class EnrolRetry {
  readonly #timers: Timers;
  #id: TimerId | null = null;

  constructor(timers: Timers = systemTimers) {
    this.#timers = timers;
  }

  /** True while a retry is pending. */
  get pending(): boolean {
    return this.#id !== null;
  }

  /** Schedules `fn` after `ms`, replacing a pending retry. */
  schedule(ms: number, fn: () => void): void {
    this.cancel();
    this.#id = this.#timers.setTimeout(() => {
      this.#id = null;
      fn();
    }, ms);
  }

  /** Cancels the pending retry. */
  cancel(): void {
    if (this.#id !== null) this.#timers.clearTimeout(this.#id);
    this.#id = null;
  }
}

/** What the enrolment runner needs beyond `enrol` itself, and whom it tells. */
export interface EnrollerDeps extends EnrolDeps {
  timers: Timers;
  hub: Pick<NotificationHub, "raise">;
  /** Backoff of retries while the edge cannot be reached (default 1–30 s). */
  retryBackoff?: { min: number; max: number };
  /** The key to enrol with (command line, or given at run time), if any. */
  key: () => string | null | undefined;
  /** False once the engine stopped (no retry is scheduled then). */
  active: () => boolean;
  /** Enrolment succeeded and is stored: the engine takes it in. */
  onEnrolled: (done: Enrolled) => Promise<void>;
  /** The edge could not be reached; a background retry is scheduled. */
  onUnreachable: (reason: string) => void;
  /** Enrolment failed for good (a bad key, a refusal, no key). */
  onFailed: (reason: string) => void;
  /** A background retry is due. */
  onRetryDue: () => void;
}

/** Runs enrolment attempts for the engine: tells the first failure, retries quietly with backoff. */
export class Enroller {
  #d: EnrollerDeps;
  readonly #retry: EnrolRetry;
  #failures = 0;

  constructor(deps: EnrollerDeps) {
    this.#d = deps;
    this.#retry = new EnrolRetry(deps.timers);
  }

  /** Background attempts that failed in a row (their state flips are not news). */
  get failures(): number {
    return this.#failures;
  }

  /** Enrols the next attempts with this sign-in (a user signed in through the browser). */
  useSignIn(signIn: (client: EdgeApi) => Promise<string>): void {
    this.#d = { ...this.#d, signIn };
  }

  /** Starts afresh (a new key): no failures, no pending retry. */
  reset(): void {
    this.#failures = 0;
    this.#retry.cancel();
  }

  /** Cancels a pending retry. */
  cancel(): void {
    this.#retry.cancel();
  }

  /** One attempt with the current key. */
  async run(): Promise<void> {
    const d = this.#d;
    const keyText = d.key();
    if (!keyText) {
      d.onFailed(NO_KEY_REASON);
      return;
    }
    try {
      const done = await enrol(keyText, d);
      this.#failures = 0;
      await d.onEnrolled(done);
    } catch (err) {
      const f = enrolFailure(err, this.#failures);
      const e = err as Error;
      if (f.tell) {
        log.error("Cannot enrol with the edge", { error: e.message });
        d.hub.raise("enroll_failed", "error", f.message, {
          code: (err as { code?: string }).code ?? null,
        });
      } else {
        log.debug("Cannot enrol with the edge", { error: e.message });
      }
      if (f.retry) {
        this.#failures++;
        d.onUnreachable(e.message);
        this.#scheduleRetry();
      } else {
        this.#failures = 0;
        d.onFailed(e.message);
      }
    }
  }

  #scheduleRetry(): void {
    if (!this.#d.active() || !this.#d.key()) return;
    const ms = enrolRetryDelay(this.#failures, this.#d.retryBackoff ?? { min: 1000, max: 30_000 });
    this.#retry.schedule(ms, this.#d.onRetryDue);
  }
}
