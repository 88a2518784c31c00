/**
 * Notifications: typed events → stored row → live stream. Every event is
 * written to the store first (so a console that connects later still sees
 * it) and then handed to each live subscriber: the admin console's SSE
 * stream, and the policy streams that wake connectors on a policy change.
 */
import type { Clock } from "../clock.ts";
import type { NotificationRecord, Store } from "../store/mod.ts";

/** The events the edge raises. */
export type NotifyEvent =
  | { kind: "device_enrolled"; deviceId: string; hostname: string; reenrolled: boolean }
  | {
    kind: "identity_conflict";
    hostname: string;
    presentedFingerprint: string;
    existingDeviceId: string;
    existingHostname: string;
  }
  | {
    kind: "fingerprint_mismatch";
    deviceId: string;
    hostname: string;
    presentedFingerprint: string;
  }
  | { kind: "device_disabled"; deviceId: string; hostname: string; by: string }
  | { kind: "device_enabled"; deviceId: string; hostname: string; by: string }
  | { kind: "device_deleted"; deviceId: string; hostname: string; by: string }
  | { kind: "policy_updated"; revision: number; objectKind: string; by: string }
  | { kind: "support_request"; requestId: string; deviceId: string; hostname: string }
  | {
    kind: "dlp_incident";
    incidentId: string;
    hostname: string;
    channel: string;
    action: string;
    rule: string;
    fileName: string;
    summary: string;
  }
  | { kind: "dlp_policy_updated"; revision: number; by: string }
  | {
    kind: "edge_health";
    edgeId: string;
    name: string;
    health: "healthy" | "unhealthy";
    /** ISO time of its last heartbeat. */
    lastHeartbeat: string;
  }
  | {
    kind: "saas_tenant_validated";
    tenantId: string;
    tenant: string;
    app: string;
    status: "successful" | "failed";
    missing: number;
    by: string;
  }
  | {
    kind: "saas_scan_finished";
    tenantId: string;
    tenant: string;
    state: "completed" | "failed";
    filesScanned: number;
    findings: number;
    error: string;
  }
  | {
    kind: "connector_update";
    deviceId: string;
    hostname: string;
    version: string;
    outcome: "installed" | "rolled_back" | "refused" | "failed";
    reason: string;
  }
  | {
    kind: "zdx_degraded";
    deviceId: string;
    hostname: string;
    probe: string;
    score: number;
    /** The hop whose time grew (src/zdx/score.ts ZdxHop), or "unknown". */
    hop: string;
    z: number;
  };

/** The kinds of event, for filters. */
export type NotifyKind = NotifyEvent["kind"];

function describe(ev: NotifyEvent): { severity: NotificationRecord["severity"]; message: string } {
  switch (ev.kind) {
    case "device_enrolled":
      return {
        severity: "info",
        message: `Device "${ev.hostname}" ${ev.reenrolled ? "re-enrolled" : "enrolled"}.`,
      };
    case "identity_conflict":
      return {
        severity: "critical",
        message:
          `Refused an enrolment from "${ev.hostname}": its keys belong to device "${ev.existingHostname}" (${ev.existingDeviceId}) but the hardware fingerprint differs, which looks like a cloned disk image.`,
      };
    case "fingerprint_mismatch":
      return {
        severity: "critical",
        message:
          `Refused a request with the credential of device "${ev.hostname}" (${ev.deviceId}) presented from different hardware.`,
      };
    case "device_disabled":
      return { severity: "warning", message: `Device "${ev.hostname}" disabled by ${ev.by}.` };
    case "device_enabled":
      return { severity: "info", message: `Device "${ev.hostname}" enabled by ${ev.by}.` };
    case "device_deleted":
      return { severity: "warning", message: `Device "${ev.hostname}" deleted by ${ev.by}.` };
    case "policy_updated":
      return {
        severity: "info",
        message: `Policy updated (${ev.objectKind}) by ${ev.by}; revision ${ev.revision}.`,
      };
    case "support_request":
      return {
        severity: "warning",
        message: `Support request from device "${ev.hostname}".`,
      };
    case "dlp_incident":
      return {
        severity: ev.action === "block" ? "warning" : "info",
        message: `DLP ${ev.action === "block" ? "blocked" : "reported"} "${ev.fileName}" on ${
          ev.channel.replace(/_/g, " ")
        } from "${ev.hostname}": rule "${ev.rule}" found ${ev.summary}.`,
      };
    case "edge_health":
      return ev.health === "unhealthy"
        ? {
          severity: "warning",
          message:
            `Edge "${ev.name}" stopped heartbeating (last at ${ev.lastHeartbeat}); its devices move to other edges.`,
        }
        : { severity: "info", message: `Edge "${ev.name}" is healthy again.` };
    case "dlp_policy_updated":
      return {
        severity: "info",
        message: `DLP policy updated by ${ev.by}; revision ${ev.revision}.`,
      };
    case "saas_tenant_validated":
      return ev.status === "successful"
        ? { severity: "info", message: `SaaS tenant "${ev.tenant}": validation successful.` }
        : {
          severity: "warning",
          message: `SaaS tenant "${ev.tenant}": validation failed, ${ev.missing} permission${
            ev.missing === 1 ? "" : "s"
          } missing.`,
        };
    case "zdx_degraded":
      return {
        severity: "warning",
        message: `Digital experience of "${ev.probe}" on "${ev.hostname}" dropped to ${ev.score} ` +
          `(${ev.z} spreads below its baseline): the ${ev.hop.replace(/_/g, " ")} hop grew.`,
      };
    case "connector_update":
      return ev.outcome === "installed"
        ? {
          severity: "info",
          message: `Device "${ev.hostname}" updated its connector to ${ev.version}.`,
        }
        : {
          severity: ev.outcome === "refused" ? "critical" : "warning",
          message: `Device "${ev.hostname}" ${
            ev.outcome === "refused"
              ? "refused"
              : ev.outcome === "rolled_back"
              ? "rolled back"
              : "could not install"
          } connector release ${ev.version}: ${ev.reason}`,
        };
    case "saas_scan_finished":
      return ev.state === "completed"
        ? {
          severity: ev.findings ? "warning" : "info",
          message:
            `SaaS tenant "${ev.tenant}": scan finished, ${ev.filesScanned} files scanned, ${ev.findings} with findings.`,
        }
        : {
          severity: "warning",
          message: `SaaS tenant "${ev.tenant}": scan failed: ${ev.error}`,
        };
  }
}

class Subscription implements AsyncIterableIterator<NotificationRecord> {
  #queue: NotificationRecord[] = [];
  #waiter: ((r: IteratorResult<NotificationRecord>) => void) | undefined;
  #closed = false;
  constructor(
    private onClose: (s: Subscription) => void,
    private kinds: ReadonlySet<string> | undefined,
    private capacity: number,
  ) {}

  push(n: NotificationRecord): void {
    if (this.#closed || (this.kinds && !this.kinds.has(n.kind))) return;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w({ value: n, done: false });
      return;
    }
    this.#queue.push(n);
    // A slow consumer loses the oldest events rather than growing memory.
    if (this.#queue.length > this.capacity) this.#queue.shift();
  }

  next(): Promise<IteratorResult<NotificationRecord>> {
    const n = this.#queue.shift();
    if (n) return Promise.resolve({ value: n, done: false });
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  return(): Promise<IteratorResult<NotificationRecord>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.onClose(this);
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<NotificationRecord> {
    return this;
  }
}

/** Options for `Notifier.subscribe`. */
export interface SubscribeOptions {
  /** Only these kinds are delivered. */
  kinds?: NotifyKind[];
  /** Ends the iteration when aborted. */
  signal?: AbortSignal;
  /** Events kept for a slow consumer before the oldest are dropped. */
  capacity?: number;
}

/** The feed channel on which notifiers tell each other "notification N was stored". */
export const NOTIFY_CHANNEL = "notify";

/**
 * How far below the highest id delivered a catch-up looks again: ids come
 * from one sequence but commit in any order across edges, so a notification
 * may become visible after one with a higher id.
 */
const CATCH_UP_SLACK = 256;
/** Ids remembered as delivered (above the slack, so a catch-up repeats none). */
const SEEN_KEPT = 4096;
/** Most notifications one catch-up hands out (a subscriber keeps 1,000 by default). */
const CATCH_UP_MAX = 1000;

/**
 * Stores events and fans them out to live subscribers — this process's, and
 * through the store's change feed those of every other edge on the same
 * database (each re-reads the notification by id), so a policy change made
 * on one edge wakes the policy streams of devices on all of them. When the
 * feed may have missed messages (its connection dropped), the notifications
 * stored meanwhile are read back from the store and delivered late rather
 * than never: a device's stream still learns of the policy change or of its
 * revocation, enforcement still re-decides.
 */
export class Notifier {
  #subs = new Set<Subscription>();
  readonly #origin = crypto.randomUUID();
  /** Notifications up to this id existed before this notifier: never delivered. */
  readonly #floor: number;
  /** The highest id delivered. */
  #high: number;
  #seen = new Set<number>();
  constructor(private store: Store, private clock: Clock) {
    this.#floor = this.#high = store.notifications.list({ limit: 1 })[0]?.id ?? 0;
    store.feed.listen(NOTIFY_CHANNEL, (p) => this.#remote(p));
    store.feed.onReconnect(() => this.catchUp());
  }

  /** Stores an event as a notification and delivers it to subscribers. */
  publish(ev: NotifyEvent): NotificationRecord {
    const { severity, message } = describe(ev);
    const { kind, ...data } = ev;
    const createdAt = this.clock.now();
    const id = this.store.notifications.insert({ kind, severity, message, data, createdAt });
    const rec: NotificationRecord = { id, kind, severity, message, data, createdAt, readAt: null };
    this.#deliver(rec);
    try {
      this.store.feed.publish(NOTIFY_CHANNEL, JSON.stringify({ o: this.#origin, id }));
    } catch { /* the other edges see it when they next catch up; this one already has */ }
    return rec;
  }

  /**
   * Delivers the notifications stored since the last one delivered that no
   * feed message announced (the feed calls this after a reconnect); returns
   * how many.
   */
  catchUp(): number {
    const after = Math.max(this.#floor, this.#high - CATCH_UP_SLACK);
    let n = 0;
    for (const rec of this.store.notifications.list({ afterId: after, limit: CATCH_UP_MAX })) {
      if (this.#deliver(rec)) n++;
    }
    return n;
  }

  /** Hands `rec` to subscribers unless it was already; returns whether it was new. */
  #deliver(rec: NotificationRecord): boolean {
    if (rec.id <= this.#floor || this.#seen.has(rec.id)) return false;
    this.#seen.add(rec.id);
    if (this.#seen.size > SEEN_KEPT) {
      // The oldest remembered id (a Set iterates in insertion order).
      this.#seen.delete(this.#seen.values().next().value!);
    }
    if (rec.id > this.#high) this.#high = rec.id;
    for (const s of this.#subs) s.push(rec);
    return true;
  }

  /** Another notifier stored a notification: hand it to our subscribers as it is stored. */
  #remote(payload: string): void {
    let msg: { o?: unknown; id?: unknown };
    try {
      msg = JSON.parse(payload);
    } catch {
      return;
    }
    if (msg.o === this.#origin || typeof msg.id !== "number") return;
    const rec = this.store.notifications.byId(msg.id);
    if (rec) this.#deliver(rec);
  }

  /** An async iterator over events published from now on. */
  subscribe(opts: SubscribeOptions = {}): AsyncIterableIterator<NotificationRecord> & {
    close(): void;
  } {
    const sub = new Subscription(
      (s) => this.#subs.delete(s),
      opts.kinds ? new Set(opts.kinds) : undefined,
      opts.capacity ?? 1000,
    );
    this.#subs.add(sub);
    if (opts.signal) {
      if (opts.signal.aborted) sub.close();
      else opts.signal.addEventListener("abort", () => sub.close(), { once: true });
    }
    return sub;
  }

  /** Number of live subscribers (for metrics and tests). */
  get subscriberCount(): number {
    return this.#subs.size;
  }
}
