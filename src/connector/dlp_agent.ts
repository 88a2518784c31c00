/**
 * The connector's endpoint DLP: keeps this device's DLP bundle from the edge
 * (fetched with an ETag every `refreshSec`, kept in the connector's state so
 * it applies after a restart without the edge), runs the endpoint agent
 * (src/dlp/endpoint/agent.ts) with it, tells the user in the console, and
 * reports every incident to the edge signed with the device key. Reports
 * wait in an outbox in the connector's state until the edge has them, so an
 * unreachable edge delays them but loses none.
 */
import type { Clock } from "../clock.ts";
import { systemClock } from "../clock.ts";
import { logger } from "../log.ts";
import { decide, DlpBundle, DlpPolicy, inspectFile } from "../dlp/mod.ts";
import { type IncidentReport, incidentSigningMessage } from "../dlp/report.ts";
import {
  EndpointDlp,
  type EndpointIncident,
  type EndpointOptions,
  type EndpointStatus,
} from "../dlp/endpoint/agent.ts";
import { type PrintingCoverage, printingCoverage } from "../dlp/endpoint/printing.ts";
import type { ConnectorState } from "../store/connector_state.ts";
import type { EdgeApi, EdgeApiFactory } from "./edge_api.ts";
import { type DeviceIdentity, toBase64 } from "./identity.ts";
import type { NotificationHub } from "./notifications.ts";

const log = logger("connector.dlp");

const BUNDLE_META = "dlp_bundle";
const OUTBOX_META = "dlp_outbox";
/** Reports kept while the edge cannot take them (oldest dropped beyond). */
export const OUTBOX_MAX = 500;

/** Settings of the connector's DLP. */
export interface ConnectorDlpOptions {
  mode: "auto" | "report_only" | "off";
  refreshSec: number;
  dataDir: string;
  /** Passed to the endpoint agent (mount table and device fact sources, budgets). */
  endpoint?: Partial<EndpointOptions>;
  clock?: Clock;
}

/** What the console shows about DLP. */
export interface DlpStatus {
  mode: ConnectorDlpOptions["mode"];
  endpoint: EndpointStatus | null;
  policyVersion: string | null;
  rules: { name: string; channels: string[]; action: string }[];
  lastFetch: string | null;
  lastError: string | null;
  outbox: number;
  printing: PrintingCoverage;
}

type Outboxed = Omit<IncidentReport, "deviceId">;

/** Endpoint DLP of this connector. */
export class ConnectorDlp {
  #o: ConnectorDlpOptions;
  #store: ConnectorState;
  #identity: DeviceIdentity;
  #hub: NotificationHub;
  #edge: EdgeApiFactory;
  #currentEdge: () => { apiUrl: string; caPem: string } | null;
  #clock: Clock;
  #agent: EndpointDlp | null = null;
  #bundle: DlpBundle | null = null;
  #policy: DlpPolicy | null = null;
  #etag: string | null = null;
  #client: { key: string; api: EdgeApi } | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #lastFetch: number | null = null;
  #lastError: string | null = null;
  #stopped = false;
  #busy: Promise<void> | null = null;

  constructor(
    deps: {
      store: ConnectorState;
      identity: DeviceIdentity;
      hub: NotificationHub;
      edge: EdgeApiFactory;
      /** The edge the engine uses now (fleet edge selection); default the enrolment's. */
      currentEdge?: () => { apiUrl: string; caPem: string } | null;
    },
    opts: ConnectorDlpOptions,
  ) {
    this.#store = deps.store;
    this.#identity = deps.identity;
    this.#hub = deps.hub;
    this.#edge = deps.edge;
    this.#currentEdge = deps.currentEdge ?? (() => null);
    this.#o = opts;
    this.#clock = opts.clock ?? systemClock;
  }

  /** Starts the agent with the stored bundle, then follows the edge. */
  start(): void {
    if (this.#o.mode === "off") return;
    this.#agent = new EndpointDlp(
      {
        dataDir: this.#o.dataDir,
        mode: this.#o.mode === "report_only" ? "report_only" : "auto",
        ...this.#o.endpoint,
      },
      {
        incident: (i) => this.#incident(i),
        notice: (type, severity, message, data) => this.#hub.raise(type, severity, message, data),
      },
    );
    const stored = DlpBundle.safeParse(this.#store.getMeta(BUNDLE_META));
    if (stored.success) this.#apply(stored.data);
    this.#agent.start();
    this.#schedule(0);
  }

  /** Fetches the bundle and sends waiting reports now (the console's "update" and tests). */
  refresh(): Promise<void> {
    return this.#busy ??= this.#cycle().finally(() => (this.#busy = null));
  }

  /**
   * Inspects a print job for the CUPS backend: the printing channel's rules
   * decide; a job that breaks one is reported (and cancelled when it blocks).
   */
  async inspectPrint(
    job: Uint8Array,
    meta: { jobId: string; user: string; title: string },
  ): Promise<{ action: "allow" | "notify" | "block"; rule: string | null; reason: string }> {
    const policy = this.#policy;
    if (!policy || !this.#bundle || !policy.covers("printing", this.#bundle.subject)) {
      return { action: "allow", rule: null, reason: "No DLP rule covers printing" };
    }
    const name = `print job ${meta.jobId}: ${meta.title}`.slice(0, 200);
    const file = await inspectFile(policy, job, name);
    const d = decide(policy, this.#bundle.subject, "printing", file.matches);
    if (d.action !== "allow") {
      this.#incident({
        reportId: `print-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`,
        occurredAt: new Date().toISOString(),
        channel: "printing",
        fileName: name,
        fileSha256: file.sha256,
        fileSize: job.length,
        fileType: file.fileType.slice(0, 32),
        rule: d.rule,
        action: d.action,
        outcome: d.action === "block" ? "cancelled" : "reported",
        matches: d.matches,
        message: d.action === "block"
          ? `Print job "${meta.title}" was cancelled: ${d.reason}.`
          : `Print job "${meta.title}" was reported: ${d.reason}.`,
        mountPoint: "",
      });
    } else if (file.skipped.length) {
      log.info("Print job not inspected", { job: meta.jobId, why: file.skipped[0].reason });
    }
    return { action: d.action, rule: d.rule, reason: d.reason };
  }

  /** What the console shows. */
  status(): DlpStatus {
    return {
      mode: this.#o.mode,
      endpoint: this.#agent?.status() ?? null,
      policyVersion: this.#bundle?.version ?? null,
      rules: (this.#bundle?.rules ?? []).map((r) => ({
        name: r.name,
        channels: r.channels,
        action: r.action,
      })),
      lastFetch: this.#lastFetch ? new Date(this.#lastFetch).toISOString() : null,
      lastError: this.#lastError,
      outbox: this.#outbox().length,
      printing: printingCoverage(this.#bundle),
    };
  }

  /** Stops fetching and the agent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#busy?.catch(() => {});
    await this.#agent?.stop();
    this.#client?.api.close();
    this.#client = null;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.refresh().finally(() => this.#schedule(this.#o.refreshSec * 1000));
    }, ms);
  }

  #api(): EdgeApi | null {
    const e = this.#store.getEnrollment();
    const credential = this.#identity.credential;
    if (!e || !credential) return null;
    const t = this.#currentEdge() ?? e;
    const key = `${t.apiUrl}\n${e.deviceId}`;
    if (this.#client?.key !== key) {
      this.#client?.api.close();
      this.#client = { key, api: this.#edge.client(t.apiUrl, t.caPem) };
      this.#etag = null;
    }
    this.#client.api.setCredentials(credential, this.#identity.fingerprintHash);
    return this.#client.api;
  }

  async #cycle(): Promise<void> {
    const api = this.#api();
    if (!api?.fetchDlpPolicy) return;
    try {
      const r = await api.fetchDlpPolicy(this.#etag);
      this.#lastFetch = this.#clock.now();
      this.#lastError = null;
      if (r.status === "updated") {
        this.#etag = r.etag;
        if (r.bundle.version !== this.#bundle?.version) {
          this.#apply(r.bundle);
          this.#store.setMeta(BUNDLE_META, r.bundle);
        }
      }
    } catch (err) {
      this.#lastError = `Cannot fetch the DLP policy: ${(err as Error).message}`;
      log.warn("DLP policy fetch failed", { error: (err as Error).message });
    }
    await this.#flush(api);
  }

  #apply(bundle: DlpBundle): void {
    try {
      const policy = new DlpPolicy(bundle.rules, bundle.dictionaries, bundle.version);
      this.#bundle = bundle;
      this.#policy = policy;
      this.#agent?.setPolicy(policy, bundle.subject);
      log.info("DLP policy in force", { version: bundle.version, rules: bundle.rules.length });
    } catch (err) {
      this.#lastError = `Cannot use the DLP policy ${bundle.version}: ${(err as Error).message}`;
      this.#hub.raise("dlp_error", "error", this.#lastError);
    }
  }

  #incident(i: EndpointIncident): void {
    const blocked = i.outcome === "quarantined" || i.outcome === "cancelled";
    const type = blocked
      ? "dlp_blocked"
      : i.outcome === "report_only"
      ? "dlp_report_only_hit"
      : "dlp_reported";
    this.#hub.raise(type, blocked ? "warn" : "info", i.message, {
      file: i.fileName,
      name: i.fileName.split("/").pop() ?? i.fileName,
      mount: i.mountPoint,
      channel: i.channel,
      rule: i.rule ?? "",
      outcome: i.outcome,
      count: i.matches.reduce((n, m) => n + m.count, 0),
      matches: i.matches.map((m) => ({
        dictionary: m.dictionary,
        count: m.count,
        samples: m.samples,
      })),
    });
    // The user's sentence and the mount point stay on the device.
    const { message: _m, mountPoint: _p, ...report } = i;
    const box = [...this.#outbox(), report].slice(-OUTBOX_MAX);
    this.#store.setMeta(OUTBOX_META, box);
    void this.refresh();
  }

  #outbox(): Outboxed[] {
    return (this.#store.getMeta<Outboxed[]>(OUTBOX_META) ?? []).slice();
  }

  async #flush(api: EdgeApi): Promise<void> {
    const e = this.#store.getEnrollment();
    if (!e || !api.reportDlpIncident) return;
    for (const rep of this.#outbox()) {
      const payload = JSON.stringify({ ...rep, deviceId: e.deviceId });
      const signature = toBase64(await this.#identity.sign(incidentSigningMessage(payload)));
      try {
        await api.reportDlpIncident(payload, signature);
      } catch (err) {
        const status = (err as { status?: number }).status ?? 0;
        // A 4xx refusal will not change on retry: drop it (and say so); keep the rest for later.
        if (status >= 400 && status < 500) {
          log.error("The edge refused a DLP incident report", { error: (err as Error).message });
        } else {
          this.#lastError = `Cannot report a DLP incident: ${(err as Error).message}`;
          return;
        }
      }
      this.#store.setMeta(OUTBOX_META, this.#outbox().filter((x) => x.reportId !== rep.reportId));
    }
  }
}
