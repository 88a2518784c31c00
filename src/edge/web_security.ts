/**
 * The edge's internet security: URL rules (stored as policy objects of kind
 * "url_rule", compiled into one immutable UrlPolicy the proxy reads on every
 * request), the category lists (data files, editable), the web log (written
 * in batches: a transaction per WEB_LOG_BATCH requests or per quarter
 * second, not one per request), and the inline upload check that hands
 * bodies to the DLP engine and records incidents.
 *
 * Category lists: every `*.txt` in `fixtures/url_categories/` shipped with
 * the program, overridden file by file by `<dataDir>/url_categories/*.txt`
 * (an admin edits the copy in the data directory; a new file is a new
 * category). The edge reads them through a CategorySource, which notices an
 * edit within seconds; the compiled URL policy and Do-Not-Inspect list are
 * rebuilt when the lists change (src/edge/url_categories.ts).
 *
 * The web log is written on the edge's one thread, which also moves every
 * tunnel packet: a batch's write holds all of them. So a busy proxy writes
 * WEB_LOG_BATCH rows at a time, not a quarter second's worth.
 *
 * Edges of a fleet share the rules and settings but compile them each: a
 * change written by one edge says so on the store's change feed
 * (WEB_SECURITY_CHANNEL, sent when its transaction commits), and every edge
 * drops what it compiled and reads the store again on its next request. The
 * proxy reads the policy on every request, so asking the store for a
 * revision each time would cost a round trip per request on PostgreSQL; the
 * feed costs nothing until something changes. When the feed may have missed
 * messages (its connection came back) everything is read again too.
 */
import { fileURLToPath } from "node:url";
import { z } from "zod";
import type { Clock } from "../clock.ts";
import { InputError } from "../errors.ts";
import { logger } from "../log.ts";
import type { Store, WebLogFilter, WebLogRecord } from "../store/mod.ts";
import type { Notifier } from "../notify/mod.ts";
import {
  type CategoryLists,
  CategoryName,
  HostPattern,
  UrlPolicy,
  UrlRule,
} from "../proxy/url_policy.ts";
import type { UploadCheck, WebLogEntry } from "../proxy/engine.ts";
import { inspectUpload } from "../dlp/mod.ts";
import type { DlpService } from "./dlp.ts";
import type { InspectionCa } from "../proxy/inspection_ca.ts";
import { CategorySource } from "./url_categories.ts";

const log = logger("edge.web");

/** SSL inspection settings. */
export const InspectionSettings = z.object({
  /** Terminate TLS with the inspection CA (off: TLS is decided by name and passed through). */
  enabled: z.boolean().default(false),
  /** Names never inspected (passed through by SNI). */
  doNotInspect: z.array(HostPattern).max(1000).default([]),
  /** Categories never inspected (default: pinned apps and IdP sign-in hosts). */
  doNotInspectCategories: z.array(CategoryName).max(100).default(["do_not_inspect"]),
}).strict();
/** @see InspectionSettings */
export type InspectionSettings = z.infer<typeof InspectionSettings>;

const INSPECTION_KEY = "web_inspection";

/** The change-feed channel on which an edge says its URL rules or inspection settings changed. */
export const WEB_SECURITY_CHANNEL = "web_security";

/**
 * Queued web log rows written at once. Measured in bench:proxy's lab (1 KiB
 * through the inspector, wrk with 8 connections, ~3,000 req/s): a batch of
 * 500 held the thread 5.6–6.9 ms and the p99 latency was 8.7–11.5 ms over
 * seven rounds; batches of 100 gave 6.0–8.4 ms at the same throughput (a
 * commit in WAL mode costs no fsync, so more of them cost little).
 */
export const WEB_LOG_BATCH = 100;

/**
 * Rows written between prunes of the oldest beyond WEB_LOG_KEEP. Each prune
 * holds the thread as a batch's write does: from a full log in a SQLite
 * file, deleting 5,000 rows took 4.7–8.5 ms, 1,000 rows 1.0–1.4 ms. The
 * cost is per row, so pruning more often costs no more in all.
 */
export const WEB_LOG_PRUNE_EVERY = 1000;

/** Web log rows kept (oldest pruned beyond). */
export const WEB_LOG_KEEP = 200_000;

/** Where the shipped category lists are. */
export const SHIPPED_CATEGORIES = fileURLToPath(
  new URL("../../fixtures/url_categories", import.meta.url),
);

/**
 * Reads category lists once: shipped ones, then the data directory's copies
 * over them (the same reading as the edge's live CategorySource, for callers
 * that want fixed lists).
 */
export function loadCategories(dirs: string[]): Promise<Map<string, string[]>> {
  const lists = CategorySource.load(dirs, { monotonic: () => 0 }).current();
  return Promise.resolve(new Map([...lists].map(([name, hosts]) => [name, [...hosts]])));
}

/** URL rules, categories, the web log and inline upload inspection. */
export class WebSecurityService {
  #policy: UrlPolicy | null = null;
  /** The lists #policy and #inspection were compiled with (recompiled when they change). */
  #compiledWith: CategoryLists | null = null;
  #inspection: { settings: InspectionSettings; bypass: UrlPolicy } | null = null;
  #queue: WebLogEntry[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  #sincePrune = 0;
  readonly #unlisten: (() => void)[];

  constructor(
    private store: Store,
    private clock: Clock,
    private notifier: Notifier,
    private dlp: DlpService,
    /** Fixed lists, or files that may change (the edge's). */
    private lists: CategoryLists | CategorySource,
    /** The SSL inspection CA (null where none was loaded: API-only tests). */
    readonly ca: InspectionCa | null = null,
  ) {
    // Another edge (or this one) changed what is stored: compile it again.
    const forget = () => {
      this.#policy = null;
      this.#inspection = null;
    };
    this.#unlisten = [
      store.feed.listen(WEB_SECURITY_CHANNEL, forget),
      store.feed.onReconnect(forget),
    ];
  }

  /** The category lists in force; a change drops what was compiled with the old ones. */
  get categories(): CategoryLists {
    const lists = this.lists instanceof CategorySource ? this.lists.current() : this.lists;
    if (lists !== this.#compiledWith) {
      this.#compiledWith = lists;
      this.#policy = null;
      this.#inspection = null;
    }
    return lists;
  }

  /** The SSL inspection settings. */
  inspection(): InspectionSettings {
    return this.#compiledInspection().settings;
  }

  /** True when a TLS connection to `host` is to be inspected now. */
  inspects(host: string): boolean {
    const c = this.#compiledInspection();
    if (!c.settings.enabled) return false;
    return c.bypass.evaluate({ host, path: null, method: null, subject: null }).rule === null;
  }

  /** Replaces the SSL inspection settings (validated, audited). */
  setInspection(body: unknown, actor: string): InspectionSettings {
    const settings = InspectionSettings.parse(body);
    const bypass = this.#bypassPolicy(settings);
    const now = this.clock.now();
    this.store.transaction(() => {
      this.store.settings.set(INSPECTION_KEY, JSON.stringify(settings));
      this.store.feed.publish(WEB_SECURITY_CHANNEL, "inspection");
      this.store.audit.insert({
        at: now,
        actor,
        action: "web.inspection.set",
        target: "web_inspection",
        detail: {
          enabled: settings.enabled,
          doNotInspect: settings.doNotInspect.length,
          doNotInspectCategories: settings.doNotInspectCategories,
        },
      });
    });
    this.#inspection = { settings, bypass };
    return settings;
  }

  #bypassPolicy(s: InspectionSettings): UrlPolicy {
    const hostsOrCats = s.doNotInspect.length + s.doNotInspectCategories.length;
    return new UrlPolicy(
      hostsOrCats
        ? [UrlRule.parse({
          name: "do-not-inspect",
          hosts: s.doNotInspect,
          categories: s.doNotInspectCategories,
          action: "allow",
        })]
        : [],
      this.categories,
    );
  }

  #compiledInspection(): { settings: InspectionSettings; bypass: UrlPolicy } {
    const categories = this.categories;
    if (this.#inspection) return this.#inspection;
    const raw = this.store.settings.get(INSPECTION_KEY);
    let settings = InspectionSettings.parse({});
    if (raw) {
      try {
        settings = InspectionSettings.parse(JSON.parse(raw));
      } catch (e) {
        log.warn("Stored SSL inspection settings are not valid; inspection is off", {
          error: (e as Error).message,
        });
        settings = { ...settings, enabled: false };
      }
    }
    if (!settings.doNotInspectCategories.every((c) => categories.has(c))) {
      settings = {
        ...settings,
        doNotInspectCategories: settings.doNotInspectCategories.filter((c) => categories.has(c)),
      };
    }
    this.#inspection = { settings, bypass: this.#bypassPolicy(settings) };
    return this.#inspection;
  }

  /** The URL rules in order. */
  rules(): UrlRule[] {
    return this.store.policy.list("url_rule").map((b) => UrlRule.parse(b));
  }

  /** The compiled policy (rebuilt after a change). */
  policy(): UrlPolicy {
    const categories = this.categories;
    return this.#policy ??= new UrlPolicy(this.rules(), categories);
  }

  /** Replaces every URL rule (validated, compiled, audited) in one transaction. */
  replaceRules(body: unknown, actor: string): UrlRule[] {
    const rules = z.array(UrlRule).max(1000).parse(body);
    const seen = new Set<string>();
    rules.forEach((r, i) => {
      if (seen.has(r.name.toLowerCase())) {
        throw new InputError(
          "invalid_request",
          `Invalid request: items[${i}].name: duplicate name "${r.name}"`,
        );
      }
      seen.add(r.name.toLowerCase());
    });
    const compiled = new UrlPolicy(rules, this.categories);
    const now = this.clock.now();
    this.store.transaction(() => {
      this.store.policy.replace("url_rule", rules.map((r) => ({ name: r.name, body: r })), now);
      this.store.feed.publish(WEB_SECURITY_CHANNEL, "url_rules");
      this.store.audit.insert({
        at: now,
        actor,
        action: "web.url_rules.replace",
        target: "url_rules",
        detail: { count: rules.length },
      });
    });
    this.#policy = compiled;
    return rules;
  }

  /** Category names with their domain counts. */
  categoryList(): { name: string; domains: number }[] {
    return [...this.categories.entries()].map(([name, ds]) => ({ name, domains: ds.length }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Queues a web log entry (written within 250 ms, or now when WEB_LOG_BATCH are queued). */
  record(e: WebLogEntry): void {
    this.#queue.push(e);
    if (this.#queue.length >= WEB_LOG_BATCH) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), 250);
  }

  /** Writes queued entries now. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const batch = this.#queue;
    if (!batch.length) return;
    this.#queue = [];
    try {
      this.store.transaction(() => this.store.webLog.append(batch));
      this.#sincePrune += batch.length;
      if (this.#sincePrune >= WEB_LOG_PRUNE_EVERY) {
        this.#sincePrune = 0;
        this.store.webLog.prune(WEB_LOG_KEEP);
      }
    } catch (err) {
      log.warn("Cannot write the web log", {
        error: (err as Error).message,
        dropped: batch.length,
      });
    }
  }

  /** Web log entries, newest first (queued ones written first). */
  webLog(f: WebLogFilter): WebLogRecord[] {
    this.flush();
    return this.store.webLog.list(f);
  }

  /** The inline DLP check on upload bodies: block per DLP policy, record incidents. */
  readonly uploadCheck: UploadCheck = async (body, meta) => {
    const policy = this.dlp.policy();
    const subject = { user: meta.subject.user, groups: meta.subject.groups.map((g) => g.name) };
    const v = await inspectUpload(policy, body, {
      subject,
      channel: "web_upload",
      contentType: meta.contentType,
      fileName: meta.fileName,
    });
    if (v.action === "allow" || v.rule === null) {
      return { block: false, rule: null, reason: v.reason };
    }
    const file = v.files.find((f) => f.matches.length) ?? v.files[0];
    this.dlp.recordIncident({
      source: "inline",
      hostname: meta.subject.deviceName,
      deviceId: meta.subject.deviceId,
      user: meta.subject.user,
      channel: "web_upload",
      fileName: file?.name ?? meta.fileName,
      fileSha256: file?.sha256 ?? "",
      fileSize: file?.size ?? body.length,
      fileType: file?.fileType ?? "unknown",
      rule: v.rule,
      action: v.action === "block" ? "block" : "notify",
      outcome: v.action === "block"
        ? `upload to ${meta.host} blocked at the edge`
        : `upload to ${meta.host} allowed, user notified`,
      matches: v.matches,
    });
    return { block: v.action === "block", rule: v.rule, reason: v.reason };
  };

  /** Writes what is queued and stops following changes (at shutdown). */
  close(): void {
    for (const off of this.#unlisten.splice(0)) off();
    this.flush();
    void this.notifier;
  }
}
