/**
 * Endpoint DLP on removable media and network shares. The agent follows the
 * mount table (/proc/self/mountinfo, woken by its POLLPRI change signal and
 * re-read every few seconds as a fallback), classifies each mount
 * (classify.ts), and for the channels its policy covers inspects every file
 * written there.
 *
 * Block means quarantine, not a refused write, and that is a choice forced
 * by the kernel: fanotify's permission events come before an open (when the
 * file is still empty) or before a read, never with the bytes being written.
 * Refusing at open would mean refusing every copy to the medium, which is
 * device control, not DLP. So: on FAN_CLOSE_WRITE the agent reads what was
 * written (through the event's descriptor), and when a rule blocks it the
 * file is moved to the connector's quarantine and removed from the medium,
 * and the user is told in the connector console. While a file is being
 * inspected, FAN_OPEN_PERM holds every other process that opens it (a
 * reader, a second copy) until the verdict, and denies it if the file is
 * blocked — so the sensitive copy is never readable from the medium.
 *
 * Without fanotify (no CAP_SYS_ADMIN, a kernel without permission events)
 * the agent says so and falls back to report-only: it notices writes with
 * inotify (Deno.watchFs), inspects them, and reports what it would have
 * blocked, but the files stay.
 */
import { basename } from "node:path";
import { O_CLOEXEC } from "../../../ffi/libc.ts";
import { POLLPRI } from "../../../ffi/fanotify.ts";
import { libc } from "../../net/errno.ts";
import { Poller, POLLERR } from "../../net/poller.ts";
import { logger } from "../../log.ts";
import { sha256Hex } from "../../identity/secrets.ts";
import { decide, describeMatches, type DlpPolicy } from "../policy.ts";
import type { DlpSubject, MatchSummary } from "../types.ts";
import { inspectFile } from "../upload.ts";
import { DEFAULT_BUDGET } from "../inspect.ts";
import { classifyMount, type FactSources, readDeviceFacts, type WatchedMount } from "./classify.ts";
import { type ClosedFile, FanotifyGuard } from "./fanotify.ts";
import { parseMountinfo } from "./mountinfo.ts";
import { Quarantine } from "./quarantine.ts";
import type { z } from "zod";

const log = logger("dlp.endpoint");

/** What happened to one file. */
export interface EndpointIncident {
  reportId: string;
  occurredAt: string;
  channel: "removable_media" | "network_share" | "printing";
  fileName: string;
  fileSha256: string;
  fileSize: number;
  fileType: string;
  rule: string | null;
  action: "notify" | "block";
  outcome: "quarantined" | "reported" | "report_only" | "cancelled";
  matches: z.infer<typeof MatchSummary>[];
  /** A sentence for the user. */
  message: string;
  /** Where the medium or share is mounted (for the user; not sent to the edge). */
  mountPoint: string;
}

/** What the agent tells its owner. */
export interface EndpointEvents {
  incident(i: EndpointIncident): void;
  /** A notice for the console (mounts appearing, mode changes, errors). */
  notice(
    type: string,
    severity: "info" | "warn" | "error",
    message: string,
    data?: Record<string, unknown>,
  ): void;
}

/** Settings of the agent. */
export interface EndpointOptions {
  /** The connector's data directory: the quarantine lives under it, and its mount is never marked. */
  dataDir: string;
  /** "report_only" forces the fallback (a setting, and for tests); default "auto". */
  mode?: "auto" | "report_only";
  sources?: FactSources;
  mountinfoPath?: string;
  /** Largest file inspected (default 64 MiB). */
  maxFileBytes?: number;
  /** Mount table re-read interval besides the change signal (default 5 s). */
  rescanMs?: number;
  /** Report-only: how long a file must be quiet before it is inspected (default 1 s). */
  settleMs?: number;
}

/** The agent's state for the console. */
export interface EndpointStatus {
  mode: "enforcing" | "report_only" | "stopped";
  /** Why report-only (fanotify unavailable: the error), or null. */
  reason: string | null;
  mounts: {
    mountPoint: string;
    source: string;
    fsType: string;
    channel: string;
    reason: string;
    covered: boolean;
  }[];
  quarantined: number;
  inspected: number;
}

/** Endpoint DLP over the mounts of this host. */
export class EndpointDlp {
  #o: Required<Omit<EndpointOptions, "sources">> & { sources: FactSources };
  #ev: EndpointEvents;
  #policy: DlpPolicy | null = null;
  #subject: DlpSubject = { user: null, groups: [] };
  #guard: FanotifyGuard | null = null;
  #reason: string | null = null;
  #poller: Poller | null = null;
  #mountFd = -1;
  #mounts = new Map<string, WatchedMount>();
  #pending = new Map<string, Promise<boolean>>();
  #watchers = new Map<string, Deno.FsWatcher>();
  #settle = new Map<string, ReturnType<typeof setTimeout>>();
  #quarantine: Quarantine;
  #running = false;
  #loop: Promise<void> | null = null;
  #inspected = 0;
  #seq = 0;

  constructor(opts: EndpointOptions, events: EndpointEvents) {
    this.#o = {
      mode: "auto",
      mountinfoPath: "/proc/self/mountinfo",
      maxFileBytes: DEFAULT_BUDGET.maxFileBytes,
      rescanMs: 5000,
      settleMs: 1000,
      sources: {},
      ...opts,
    };
    this.#ev = events;
    this.#quarantine = new Quarantine(`${opts.dataDir}/dlp-quarantine`);
  }

  /** Swaps in a new policy and the subject it is decided for (null: no DLP policy). */
  setPolicy(policy: DlpPolicy | null, subject: DlpSubject): void {
    this.#policy = policy;
    this.#subject = subject;
    if (this.#running) this.#refreshMounts();
  }

  /** Opens fanotify (or falls back to report-only) and starts following the mounts. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    if (this.#o.mode === "report_only") {
      this.#reason = "report-only mode is configured";
    } else {
      try {
        this.#guard = FanotifyGuard.open(this.#o.maxFileBytes);
      } catch (err) {
        this.#reason = `fanotify is not available: ${(err as Error).message}`;
      }
    }
    if (!this.#guard) {
      log.warn("Endpoint DLP runs report-only", { reason: this.#reason });
      this.#ev.notice(
        "dlp_report_only",
        "warn",
        `Endpoint DLP is report-only: ${this.#reason}. Files copied to removable media and network shares are inspected and reported, but not blocked.`,
      );
    }
    this.#poller = new Poller();
    const fd = libc().open(new TextEncoder().encode(this.#o.mountinfoPath + "\0"), O_CLOEXEC, 0);
    if (fd >= 0) {
      this.#mountFd = fd;
      this.#poller.add(fd, POLLPRI | POLLERR);
    }
    this.#guard?.watchWith(this.#poller);
    this.#refreshMounts();
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    const poller = this.#poller!;
    let lastScan = Date.now();
    while (this.#running) {
      await poller.wait(this.#o.rescanMs);
      if (!this.#running) break;
      const mountsChanged = this.#mountFd >= 0 &&
        (poller.revents(this.#mountFd) & (POLLPRI | POLLERR)) !== 0;
      if (this.#guard && poller.revents(this.#guard.fd)) {
        this.#guard.drain({ closed: (f) => this.#closed(f), mayOpen: (p) => this.#mayOpen(p) });
      }
      if (mountsChanged || Date.now() - lastScan >= this.#o.rescanMs) {
        this.#refreshMounts();
        lastScan = Date.now();
      }
    }
  }

  /** What the console shows. */
  status(): EndpointStatus {
    return {
      mode: !this.#running ? "stopped" : this.#guard ? "enforcing" : "report_only",
      reason: this.#reason,
      mounts: [...this.#mounts.values()].map((w) => ({
        mountPoint: w.mount.mountPoint,
        source: w.mount.source,
        fsType: w.mount.fsType,
        channel: w.channel,
        reason: w.reason,
        covered: this.#covers(w),
      })),
      quarantined: this.#quarantine.list().length,
      inspected: this.#inspected,
    };
  }

  /** Stops watching; pending permission requests are answered by the kernel on close. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#poller?.wake();
    await this.#loop?.catch(() => {});
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
    for (const t of this.#settle.values()) clearTimeout(t);
    this.#settle.clear();
    this.#guard?.close();
    this.#guard = null;
    this.#poller?.close();
    this.#poller = null;
    if (this.#mountFd >= 0) libc().close(this.#mountFd);
    this.#mountFd = -1;
  }

  #covers(w: WatchedMount): boolean {
    return this.#policy?.covers(w.channel, this.#subject) ?? false;
  }

  #refreshMounts(): void {
    let text = "";
    try {
      text = Deno.readTextFileSync(this.#o.mountinfoPath);
    } catch (err) {
      log.warn("Cannot read the mount table", { error: (err as Error).message });
      return;
    }
    const seen = new Set<string>();
    for (const m of parseMountinfo(text)) {
      // Never the mount of our own data directory: this process must never wait on itself.
      if (m.mountPoint === "/" || this.#o.dataDir.startsWith(m.mountPoint + "/")) continue;
      const w = classifyMount(m, readDeviceFacts(m.device, this.#o.sources));
      if (!w) continue;
      seen.add(m.mountPoint);
      const known = this.#mounts.get(m.mountPoint);
      this.#mounts.set(m.mountPoint, w);
      if (this.#covers(w)) this.#watch(w, !known);
      else this.#unwatch(m.mountPoint);
    }
    for (const mp of [...this.#mounts.keys()]) {
      if (seen.has(mp)) continue;
      this.#mounts.delete(mp);
      this.#unwatch(mp);
      log.info("Mount gone", { mountPoint: mp });
    }
  }

  #watch(w: WatchedMount, fresh: boolean): void {
    const mp = w.mount.mountPoint;
    if (this.#guard) {
      if (this.#guard.marked.includes(mp)) return;
      try {
        this.#guard.mark(mp);
      } catch (err) {
        this.#ev.notice("dlp_error", "error", `Cannot watch ${mp}: ${(err as Error).message}`);
        return;
      }
    } else {
      if (this.#watchers.has(mp)) return;
      try {
        const watcher = Deno.watchFs(mp, { recursive: true });
        this.#watchers.set(mp, watcher);
        this.#follow(watcher);
      } catch (err) {
        this.#ev.notice("dlp_error", "error", `Cannot watch ${mp}: ${(err as Error).message}`);
        return;
      }
    }
    const what = w.channel === "removable_media" ? "Removable medium" : "Network share";
    log.info("Watching mount", { mountPoint: mp, channel: w.channel, reason: w.reason });
    if (fresh) {
      this.#ev.notice(
        "dlp_mount",
        "info",
        `${what} ${w.mount.source} at ${mp}: files copied there are inspected${
          this.#guard ? "" : " (report-only)"
        }.`,
        { mountPoint: mp, channel: w.channel },
      );
    }
  }

  #unwatch(mp: string): void {
    this.#guard?.forget(mp);
    const w = this.#watchers.get(mp);
    if (w) {
      w.close();
      this.#watchers.delete(mp);
    }
  }

  #mountOf(path: string): WatchedMount | null {
    let best: WatchedMount | null = null;
    for (const w of this.#mounts.values()) {
      const mp = w.mount.mountPoint;
      if (
        (path === mp || path.startsWith(mp.endsWith("/") ? mp : mp + "/")) &&
        (!best || mp.length > best.mount.mountPoint.length)
      ) best = w;
    }
    return best && this.#covers(best) ? best : null;
  }

  #mayOpen(path: string): boolean | Promise<boolean> {
    return this.#pending.get(path) ?? true;
  }

  #closed(f: ClosedFile): void {
    const w = this.#mountOf(f.path);
    if (!w) return;
    if (f.bytes === null) {
      this.#ev.notice(
        "dlp_not_inspected",
        "warn",
        `${
          basename(f.path)
        } on ${w.mount.mountPoint} was not inspected: it is larger than ${this.#o.maxFileBytes} bytes.`,
        { path: f.path },
      );
      return;
    }
    const verdict = this.#inspect(w, f.path, f.bytes, { dev: f.dev, ino: f.ino });
    const allow = verdict.then((o) => o !== "quarantined", () => true);
    this.#pending.set(f.path, allow);
    allow.finally(() => {
      if (this.#pending.get(f.path) === allow) this.#pending.delete(f.path);
    });
  }

  #follow(watcher: Deno.FsWatcher): void {
    (async () => {
      for await (const ev of watcher) {
        if (ev.kind !== "create" && ev.kind !== "modify") continue;
        for (const p of ev.paths) {
          clearTimeout(this.#settle.get(p));
          this.#settle.set(
            p,
            setTimeout(() => {
              this.#settle.delete(p);
              this.#settled(p);
            }, this.#o.settleMs),
          );
        }
      }
    })().catch(() => {});
  }

  #settled(path: string): void {
    const w = this.#mountOf(path);
    if (!w) return;
    let bytes: Uint8Array;
    try {
      const st = Deno.statSync(path);
      if (!st.isFile) return;
      if (st.size > this.#o.maxFileBytes) return;
      bytes = Deno.readFileSync(path);
    } catch {
      return;
    }
    this.#inspect(w, path, bytes, null).catch(() => {});
  }

  /** Inspects, decides and acts; resolves with the outcome ("none" when nothing fired). */
  async #inspect(
    w: WatchedMount,
    path: string,
    bytes: Uint8Array,
    identity: { dev: number; ino: number } | null,
  ): Promise<EndpointIncident["outcome"] | "none"> {
    const policy = this.#policy;
    if (!policy) return "none";
    this.#inspected++;
    const file = await inspectFile(policy, bytes, basename(path));
    const d = decide(policy, this.#subject, w.channel, file.matches);
    if (d.action === "allow") return "none";
    const reportId = `${Date.now().toString(36)}-${(this.#seq++).toString(36)}-${
      crypto.randomUUID().slice(0, 8)
    }`;
    let outcome: EndpointIncident["outcome"] = d.action === "notify" ? "reported" : "report_only";
    if (d.action === "block" && identity) {
      outcome = this.#takeAway(path, bytes, identity, reportId, d.rule)
        ? "quarantined"
        : "reported";
    }
    const where = w.channel === "removable_media" ? "removable medium" : "network share";
    const found = describeMatches(d.matches);
    const message = outcome === "quarantined"
      ? `Blocked copying ${
        basename(path)
      } to the ${where} at ${w.mount.mountPoint}: rule "${d.rule}" found ${found}. The file was moved to quarantine.`
      : outcome === "report_only"
      ? `${
        basename(path)
      } on the ${where} at ${w.mount.mountPoint} breaks rule "${d.rule}" (${found}); it was reported but not blocked (report-only).`
      : `${
        basename(path)
      } copied to the ${where} at ${w.mount.mountPoint} was reported: rule "${d.rule}" found ${found}.`;
    const incident: EndpointIncident = {
      reportId,
      occurredAt: new Date().toISOString(),
      channel: w.channel,
      fileName: path,
      fileSha256: file.sha256,
      fileSize: bytes.length,
      fileType: file.fileType.slice(0, 32),
      rule: d.rule,
      action: d.action,
      outcome,
      matches: d.matches.map((m) => ({ ...m, samples: m.samples.slice(0, 3) })),
      message,
      mountPoint: w.mount.mountPoint,
    };
    log.info("DLP incident on the endpoint", {
      channel: w.channel,
      rule: d.rule,
      action: d.action,
      outcome,
      file: basename(path),
    });
    this.#ev.incident(incident);
    return outcome;
  }

  /** Moves a blocked file to quarantine and unlinks it from the medium, if it is still that file. */
  #takeAway(
    path: string,
    bytes: Uint8Array,
    id: { dev: number; ino: number },
    reportId: string,
    rule: string | null,
  ): boolean {
    try {
      const now = Deno.lstatSync(path);
      if (now.dev !== id.dev || (now.ino ?? 0) !== id.ino) {
        log.warn("A blocked file was replaced before it could be quarantined", {
          file: basename(path),
        });
        return false;
      }
      this.#quarantine.put({
        id: reportId,
        originalPath: path,
        sha256: sha256Hex(bytes),
        size: bytes.length,
        rule,
        at: new Date().toISOString(),
      }, bytes);
      Deno.removeSync(path);
      return true;
    } catch (err) {
      this.#ev.notice(
        "dlp_error",
        "error",
        `Cannot quarantine ${basename(path)}: ${(err as Error).message}`,
      );
      return false;
    }
  }
}
