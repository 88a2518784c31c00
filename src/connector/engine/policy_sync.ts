/**
 * Keeping the policy current: the bundle in force (restored from the store at
 * start), conditional fetches (If-None-Match) that store a new one, and the
 * two ways the edge tells of changes — its event stream, followed with
 * reconnects, and a poll every `policyRefreshSec` as a safety net.
 * Concurrent update requests (stream, poll, the console's button) share one
 * fetch.
 */
import type { Clock } from "../../clock.ts";
import { logger } from "../../log.ts";
import { PolicyBundle } from "../../policy/types.ts";
import type { ConnectorState, StoredPolicy } from "../../store/connector_state.ts";
import { type EdgeApi, EdgeApiError, EdgeUnreachableError } from "../edge_api.ts";
import type { NotificationHub } from "../notifications.ts";

const log = logger("connector.engine");

/** Outcome of a policy update request. */
export type PolicyUpdateOutcome = { status: "updated"; version: string } | {
  status: "unchanged";
  version: string | null;
};

/** What PolicySync works with and whom it tells. */
export interface PolicySyncDeps {
  store: Pick<ConnectorState, "putPolicy">;
  clock: Clock;
  hub: Pick<NotificationHub, "raise">;
  /** The client of the current enrolment, or null when not enrolled. */
  client: () => EdgeApi | null;
  /** A bundle was put in force; `refreshChanged` when its refresh period differs from the last one's. */
  onSet?: (policy: PolicyBundle, refreshChanged: boolean) => void;
  /** A fetch stored a bundle (runs before `onNewVersion`). */
  onStored?: (policy: PolicyBundle) => void;
  /** The stored bundle has a new version. */
  onNewVersion?: (version: string) => void;
}

/** The policy in force and its updates. */
export class PolicySync {
  readonly #d: PolicySyncDeps;
  #policy: PolicyBundle | null = null;
  #etag: string | null = null;
  #updatedAt: number | null = null;
  #updating: Promise<PolicyUpdateOutcome> | null = null;

  constructor(deps: PolicySyncDeps) {
    this.#d = deps;
  }

  /** The bundle in force, or null before the first one. */
  get policy(): PolicyBundle | null {
    return this.#policy;
  }

  /** The ETag of the bundle in force. */
  get etag(): string | null {
    return this.#etag;
  }

  /** When the bundle in force was received (ms). */
  get updatedAt(): number | null {
    return this.#updatedAt;
  }

  /** Puts a stored bundle back in force at start; one that no longer parses is ignored. */
  restore(stored: StoredPolicy | null): boolean {
    if (!stored) return false;
    const r = PolicyBundle.safeParse(stored.bundle);
    if (!r.success) return false;
    this.#policy = r.data;
    this.#etag = stored.etag;
    this.#updatedAt = stored.updatedAt;
    return true;
  }

  /** Puts `p` in force. */
  set(p: PolicyBundle, etag: string | null, at: number): void {
    const oldRefresh = this.#policy?.appProfile.policyRefreshSec;
    this.#policy = p;
    this.#etag = etag;
    this.#updatedAt = at;
    this.#d.onSet?.(p, oldRefresh !== p.appProfile.policyRefreshSec);
  }

  /** Forgets the policy (logout). */
  clear(): void {
    this.#policy = null;
    this.#etag = null;
    this.#updatedAt = null;
  }

  /** Fetches now, sharing a fetch already under way. */
  update(): Promise<PolicyUpdateOutcome> {
    // Coalesce: the stream, the poll and the console may ask at once.
    this.#updating ??= this.fetchNow().finally(() => (this.#updating = null));
    return this.#updating;
  }

  /** Fetches now (If-None-Match), stores and puts in force a new bundle. */
  async fetchNow(): Promise<PolicyUpdateOutcome> {
    const client = this.#d.client();
    if (!client) throw new EdgeUnreachableError("Cannot fetch policy: not enrolled");
    const r = await client.fetchPolicy(this.#policy ? this.#etag : null);
    if (r.status === "unchanged") {
      return { status: "unchanged", version: this.#policy?.version ?? null };
    }
    const now = this.#d.clock.now();
    const old = this.#policy?.version ?? null;
    this.#d.store.putPolicy({
      version: r.policy.version,
      etag: r.etag,
      bundle: r.policy,
      updatedAt: now,
    });
    this.set(r.policy, r.etag, now);
    this.#d.onStored?.(r.policy);
    if (old !== r.policy.version) {
      log.info("Policy updated", { from: old, to: r.policy.version });
      this.#d.hub.raise("policy_updated", "info", `Policy updated to version ${r.policy.version}`, {
        from: old,
        to: r.policy.version,
      });
      this.#d.onNewVersion?.(r.policy.version);
    }
    return { status: "updated", version: r.policy.version };
  }
}

/** What following the policy stream reports back. */
export interface StreamHooks {
  /** The version in force (an announced one that differs triggers an update). */
  currentVersion: () => string | null;
  /** Updates the policy (coalesced). */
  update: () => Promise<unknown>;
  /** A fetch or the stream itself failed in a way the engine must handle. */
  onEdgeError: (err: unknown, action: string) => void;
  /** The edge says this device is disabled. */
  onDeviceDisabled: (message: string) => void;
  backoff?: { min: number; max: number };
}

/**
 * Follows the edge's policy stream until `signal` aborts: each announced new
 * version is fetched; a revocation is checked with a fetch (a deleted device
 * then gets 401 and forgets its enrolment); a refused credential ends it.
 */
export function followPolicyStream(client: EdgeApi, signal: AbortSignal, h: StreamHooks): void {
  const fetchPolicy = () => void h.update().catch((e) => h.onEdgeError(e, "fetch policy"));
  void client.followPolicy({
    signal,
    onVersion: (v) => {
      if (v !== h.currentVersion()) fetchPolicy();
    },
    onError: (e) => {
      log.debug("Policy stream interrupted", { error: e.message });
      if (e instanceof EdgeApiError && e.code === "device_disabled") h.onDeviceDisabled(e.message);
    },
    onRevoked: (reason) => {
      log.warn("The edge revoked this device", { reason });
      if (reason === "device_disabled") {
        h.onDeviceDisabled("The administrator disabled this device");
      }
      // A deleted device: the next fetch gets 401 and forgets the enrolment.
      fetchPolicy();
    },
    minBackoffMs: h.backoff?.min,
    maxBackoffMs: h.backoff?.max,
  }).catch((e) => {
    if (!signal.aborted) h.onEdgeError(e, "follow policy changes");
  });
}

/**
 * One poll: updates the policy; of its failures only a refusal (401, 403)
 * matters to the engine — an unreachable edge is the heartbeat's to notice.
 */
export function pollPolicy(
  update: () => Promise<unknown>,
  onEdgeError: (err: unknown, action: string) => void,
): Promise<void> {
  return update().then(() => {}, (e) => {
    if (e instanceof EdgeApiError && (e.status === 401 || e.status === 403)) {
      onEdgeError(e, "fetch policy");
    }
  });
}
