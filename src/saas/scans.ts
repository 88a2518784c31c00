/**
 * Runs data-at-rest scans in the background: one at a time per tenant,
 * state in the store (drive_scan.ts says what is kept and why), resumed
 * when the edge starts again, stopped between requests when it stops.
 *
 * A scan begins with a fresh validation, so the actions it may take are
 * those the tenant's tokens grant now, not when it was added; scanning
 * itself needs every row that lists it. Findings become DLP incidents
 * (channel `saas_at_rest`, the tenant's name where a device's would be),
 * written in the same transaction as the file's scan record; executed
 * remediations are audited with the admin who started the scan.
 */
import type { Clock } from "../clock.ts";
import { InputError } from "../errors.ts";
import { randomId } from "../identity/secrets.ts";
import { logger } from "../log.ts";
import type { Notifier } from "../notify/mod.ts";
import type { SaasScanRecord, SaasTenantRecord, Store } from "../store/mod.ts";
import { APIS, rowLabel, type SaasAction, SCANNABLE_APPS } from "./apps.ts";
import {
  type ContentInspector,
  type DriveRef,
  type Finding,
  listDrives,
  type RemediationEvent,
  scanDrive,
  type ScanState,
} from "./drive_scan.ts";
import type { FetchFn } from "./fetch_network.ts";
import { GraphClient } from "./graph_client.ts";
import { rowsEnabling } from "./permissions.ts";
import { credentialOf, type SaasService } from "./service.ts";
import type { TokenSource } from "./token_client.ts";
import type { SaasIncident, ScanView } from "./types.ts";
import { appOf, remediationOf } from "./views.ts";

const log = logger("saas.scan");

/** Who the audit log says started a scheduled scan. */
export const SCHEDULE_ACTOR = "saas-schedule";

/** Longest an edge stopping waits for a scan to reach a stopping point (ms). */
export const CLOSE_WAIT_MS = 10_000;

/** What the scanner needs besides the tenant service. */
export interface ScannerDeps {
  store: Store;
  clock: Clock;
  notifier: Notifier;
  tokens: TokenSource;
  tenants: SaasService;
  inspector: ContentInspector;
  /** Stores a finding as a DLP incident; returns its id. */
  recordIncident: (i: SaasIncident) => string;
  graphUrl: string;
  fetch?: FetchFn;
  /** Longest Retry-After honoured before a scan gives up (default 5 minutes). */
  maxThrottleWaitMs?: number;
}

/** A scan record's view. */
export function scanView(s: SaasScanRecord): ScanView {
  return {
    id: s.id,
    state: s.state,
    startedBy: s.startedBy,
    startedAt: s.startedAt,
    finishedAt: s.finishedAt,
    drives: s.drives,
    pages: s.pages,
    filesSeen: s.filesSeen,
    filesScanned: s.filesScanned,
    findings: s.findings,
    remediations: s.remediations,
    throttled: s.throttled,
    error: s.error,
  };
}

/** The scanner's state over the store, for one scan of one tenant. */
class StoreScanState implements ScanState {
  constructor(
    private d: ScannerDeps,
    private t: SaasTenantRecord,
    private scan: SaasScanRecord,
  ) {}
  get #s() {
    return this.d.store;
  }
  cursor(driveId: string) {
    const r = this.#s.saasDrives.get(this.t.id, driveId);
    return r ? { link: r.cursor, kind: r.cursorKind } : null;
  }
  beginDrive(drive: DriveRef, firstLink: string): void {
    this.#s.saasDrives.saveCursor(
      this.t.id,
      { driveId: drive.id, owner: drive.owner, cursor: firstLink, cursorKind: "next" },
      this.d.clock.now(),
    );
  }
  pageDone(drive: DriveRef, link: string, kind: "next" | "delta"): void {
    this.#s.transaction(() => {
      this.#s.saasDrives.saveCursor(
        this.t.id,
        { driveId: drive.id, owner: drive.owner, cursor: link, cursorKind: kind },
        this.d.clock.now(),
      );
      this.#s.saasScans.add(this.scan.id, "pages");
    });
  }
  itemTag(driveId: string, itemId: string): string | null {
    return this.#s.saasItems.tag(this.t.id, driveId, itemId);
  }
  commitItem(
    drive: DriveRef,
    item: { id: string; tag: string; verdict: string },
    finding: Finding | null,
  ): void {
    this.#s.transaction(() => {
      if (finding) {
        this.d.recordIncident({
          tenantName: this.t.name,
          user: finding.owner,
          fileName: finding.name,
          fileSha256: finding.verdict.sha256,
          fileSize: finding.size,
          fileType: finding.verdict.fileType,
          rule: finding.verdict.rule,
          action: finding.verdict.action === "block" ? "block" : "notify",
          outcome: finding.outcome,
          matches: finding.verdict.matches,
        });
        this.#s.saasScans.add(this.scan.id, "findings");
      }
      this.#s.saasItems.put(this.t.id, drive.id, item, this.d.clock.now());
      this.#s.saasScans.add(this.scan.id, "files_scanned");
    });
    if (finding) {
      log.info("SaaS finding", {
        tenant: this.t.name,
        drive: drive.id,
        item: item.id,
        rule: finding.verdict.rule,
        outcome: finding.outcome,
        note: finding.note,
      });
    }
  }
  forgetItem(driveId: string, itemId: string): void {
    this.#s.saasItems.delete(this.t.id, driveId, itemId);
  }
  quarantineFolder(driveId: string): string | null {
    return this.#s.saasDrives.get(this.t.id, driveId)?.quarantineFolderId ?? null;
  }
  setQuarantineFolder(driveId: string, folderId: string): void {
    this.#s.saasDrives.setQuarantineFolder(this.t.id, driveId, folderId);
  }
  seen(n: number): void {
    if (n) this.#s.saasScans.add(this.scan.id, "files_seen", n);
  }
  remediated(e: RemediationEvent): void {
    this.#s.transaction(() => {
      this.#s.audit.insert({
        at: this.d.clock.now(),
        actor: this.scan.startedBy,
        action: e.action === "quarantine" ? "saas.file.quarantine" : "saas.file.unshare",
        target: `${e.driveId}/${e.itemId}`,
        detail: { tenant: this.t.name, scan: this.scan.id, file: e.name, ...e.detail },
      });
      this.#s.saasScans.add(this.scan.id, "remediations");
    });
  }
}

/** Background data-at-rest scans. */
export class SaasScanner {
  #runs = new Map<string, { abort: AbortController; done: Promise<void> }>();
  #closed = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** When a scheduled start last failed, per tenant: it is retried an interval later. */
  #failedAt = new Map<string, number>();

  constructor(private d: ScannerDeps) {}

  /** The newest scans of a tenant. */
  scans(tenantId: string, limit = 10): ScanView[] {
    this.d.tenants.record(tenantId);
    return this.d.store.saasScans.forTenant(tenantId, limit).map(scanView);
  }

  /** True while a scan of the tenant runs in this process. */
  running(tenantId: string): boolean {
    return this.#runs.has(tenantId);
  }

  /** Resolves when the tenant's running scan (if any) has stopped. */
  async idle(tenantId: string): Promise<void> {
    await this.#runs.get(tenantId)?.done;
  }

  /**
   * Starts a scan (`full`: forget every cursor and scanned file first).
   * Refused: an application that is not scanned, a scan already running,
   * credentials the issuer now rejects, missing scanning permissions.
   */
  async start(tenantId: string, actor: string, opts: { full?: boolean } = {}): Promise<ScanView> {
    const t = this.d.tenants.record(tenantId);
    const app = appOf(t);
    if (!SCANNABLE_APPS.includes(app)) {
      throw new InputError(
        "not_scannable",
        `Cannot scan SaaS tenant "${t.name}": data-at-rest scanning covers OneDrive and SharePoint, not ${app}`,
        409,
      );
    }
    if (
      this.#runs.has(tenantId) ||
      this.d.store.saasScans.running().some((s) => s.tenantRef === tenantId)
    ) {
      throw new InputError(
        "scan_running",
        `Cannot scan SaaS tenant "${t.name}": a scan is running`,
        409,
      );
    }
    const view = await this.d.tenants.reauthorize(tenantId, actor);
    if (!view.enabledActions.includes("scanning")) {
      throw new InputError(
        "scanning_disabled",
        `Cannot scan SaaS tenant "${t.name}": ${this.#missing(t, "scanning")}`,
        409,
      );
    }
    const id = randomId("scan");
    const now = this.d.clock.now();
    this.d.store.transaction(() => {
      if (opts.full) {
        this.d.store.saasDrives.reset(tenantId);
        this.d.store.saasItems.reset(tenantId);
      }
      this.d.store.saasScans.insert({ id, tenantRef: tenantId, startedBy: actor, startedAt: now });
      this.d.store.audit.insert({
        at: now,
        actor,
        action: "saas.scan.start",
        target: tenantId,
        detail: { tenant: t.name, scan: id, full: opts.full === true },
      });
    });
    this.#launch(this.d.store.saasScans.get(id)!, new Set(view.enabledActions));
    return scanView(this.d.store.saasScans.get(id)!);
  }

  /**
   * Starts the scheduled scans that are due: a scannable tenant with an
   * interval, no scan running, its last scan (or failed start) an interval
   * ago or never. Returns how many started.
   */
  async tick(): Promise<number> {
    if (this.#closed) return 0;
    const { store, clock } = this.d;
    let started = 0;
    for (const t of store.saasTenants.list()) {
      if (!t.scanIntervalMin || !SCANNABLE_APPS.includes(appOf(t)) || this.#runs.has(t.id)) {
        continue;
      }
      const now = clock.now();
      const every = t.scanIntervalMin * 60_000;
      const last = store.saasScans.forTenant(t.id, 1)[0];
      if (last?.state === "running") continue;
      if (last && last.startedAt + every > now) continue;
      const failed = this.#failedAt.get(t.id);
      if (failed !== undefined && failed + every > now) continue;
      try {
        await this.start(t.id, SCHEDULE_ACTOR);
        this.#failedAt.delete(t.id);
        started++;
      } catch (e) {
        this.#failedAt.set(t.id, now);
        log.warn("A scheduled SaaS scan did not start", {
          tenant: t.name,
          error: (e as Error).message.slice(0, 300),
        });
      }
    }
    return started;
  }

  /** Checks the schedule every `everyMs` until closed (the running edge calls this). */
  schedule(everyMs = 60_000): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setInterval(() => this.tick().catch(() => {}), everyMs);
  }

  /** Resumes scans an edge that stopped left running. */
  resume(): number {
    let n = 0;
    for (const s of this.d.store.saasScans.running()) {
      if (this.#runs.has(s.tenantRef)) continue;
      n++;
      this.#launch(s, null);
    }
    return n;
  }

  #missing(t: SaasTenantRecord, action: SaasAction): string {
    const v = this.d.tenants.validationOf(t.id);
    const missing = rowsEnabling(appOf(t), action).filter((r) =>
      v.evaluation.missing.some((m) => m.api === r.api && m.permission === r.permission)
    );
    return missing.length
      ? `missing ${missing.map(rowLabel).join(", ")}`
      : "the permissions it needs are not granted";
  }

  #launch(scan: SaasScanRecord, enabled: Set<SaasAction> | null): void {
    const abort = new AbortController();
    const done = this.#run(scan, enabled, abort.signal).finally(() => {
      this.#runs.delete(scan.tenantRef);
    });
    this.#runs.set(scan.tenantRef, { abort, done });
  }

  async #run(scan: SaasScanRecord, given: Set<SaasAction> | null, signal: AbortSignal) {
    const { store, clock } = this.d;
    let t: SaasTenantRecord | undefined;
    try {
      t = store.saasTenants.get(scan.tenantRef);
      if (!t) return;
      // A resumed scan asks the issuer again: grants may have changed while the edge was down.
      const enabled = given ??
        new Set((await this.d.tenants.reauthorize(t.id, scan.startedBy)).enabledActions);
      t = store.saasTenants.get(scan.tenantRef)!;
      if (!enabled.has("scanning")) {
        throw new InputError(
          "scanning_disabled",
          `Cannot scan: ${this.#missing(t, "scanning")}`,
          409,
        );
      }
      const tenant = t;
      const credential = credentialOf(tenant);
      const graph = new GraphClient({
        baseUrl: this.d.graphUrl,
        fetch: this.d.fetch,
        signal,
        maxWaitMs: this.d.maxThrottleWaitMs,
        token: async () =>
          (await this.d.tokens.acquire({
            tenantId: tenant.tenantId,
            clientId: tenant.clientId,
            credential,
            scope: APIS.graph.scope,
          })).accessToken,
        onThrottle: () => store.saasScans.add(scan.id, "throttled"),
      });
      const state = new StoreScanState(this.d, tenant, scan);
      const job = {
        app: appOf(tenant),
        graph,
        inspector: this.d.inspector,
        state,
        remediation: remediationOf(tenant),
        enabled,
        missingFor: (a: SaasAction) => this.#missing(tenant, a),
        signal,
      };
      const drives = await listDrives(graph, job.app);
      store.saasScans.set(scan.id, "drives", drives.length);
      for (const d of drives) await scanDrive(job, d);
      this.#finish(scan, tenant, "completed", null);
    } catch (e) {
      if (signal.aborted || this.#closed) {
        log.info("SaaS scan paused; it resumes when the edge starts", { scan: scan.id });
        return;
      }
      const message = (e as Error).message?.slice(0, 400) ?? String(e);
      log.warn("SaaS scan failed", { scan: scan.id, tenant: t?.name, error: message });
      if (t) this.#finish(scan, t, "failed", message);
      else store.saasScans.finish(scan.id, "failed", clock.now(), message);
    }
  }

  #finish(
    scan: SaasScanRecord,
    t: SaasTenantRecord,
    state: "completed" | "failed",
    error: string | null,
  ) {
    const { store, clock } = this.d;
    store.transaction(() => {
      store.saasScans.finish(scan.id, state, clock.now(), error);
      const s = store.saasScans.get(scan.id)!;
      store.audit.insert({
        at: clock.now(),
        actor: scan.startedBy,
        action: "saas.scan.finish",
        target: t.id,
        detail: {
          tenant: t.name,
          scan: scan.id,
          state,
          filesScanned: s.filesScanned,
          findings: s.findings,
          remediations: s.remediations,
          throttled: s.throttled,
          error,
        },
      });
    });
    const s = store.saasScans.get(scan.id)!;
    this.d.notifier.publish({
      kind: "saas_scan_finished",
      tenantId: t.id,
      tenant: t.name,
      state,
      filesScanned: s.filesScanned,
      findings: s.findings,
      error: error ?? "",
    });
  }

  /** Stops a tenant's running scan (before the tenant is deleted); it is not resumed. */
  async stop(tenantId: string): Promise<void> {
    const r = this.#runs.get(tenantId);
    if (!r) return;
    r.abort.abort(new DOMException("The tenant is being deleted", "AbortError"));
    await r.done.catch(() => {});
  }

  /**
   * Stops every scan between two requests; they stay "running" and resume
   * at the next start. A scan waiting on the issuer (MSAL takes no abort
   * signal) is given CLOSE_WAIT_MS; whatever it does after that finds the
   * scanner closed and stops without writing.
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    const runs = [...this.#runs.values()];
    for (const r of runs) r.abort.abort(new DOMException("The edge is stopping", "AbortError"));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled(runs.map((r) => r.done)),
      new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS))),
    ]);
    clearTimeout(timer);
  }
}
