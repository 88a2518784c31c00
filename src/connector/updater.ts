/**
 * The connector's updater: asks the edge it uses now which release it should
 * run (every `checkMs`, default 2 h, and on "Update policy"), verifies it,
 * installs it beside the running program, restarts into it and confirms it.
 *
 * Verification trusts nothing from the edge: the manifest must carry a valid
 * signature by the release key pinned at install (release_pin.ts), name the
 * version offered, and the downloaded program must have the manifest's size
 * and SHA-256. A version older than the running one is refused unless the
 * edge's rule says rollback and the offer carries a rollback authorisation
 * that verifies against the same pinned key, names the running version in
 * `from` and the offered one as `to`, and has not expired
 * (src/fleet/rollback_auth.ts). A refusal is told to the edge (its audit log
 * and notifications) and shown in the console, once per version.
 *
 * Health: before restarting, a pending record (<dataDir>/updates.json) says
 * from which version to which, and by when the new one must have reported
 * to the edge (`healthMs`). The new process reads it at start; once its
 * engine is enrolled and out of the error state it reports "installed" — an
 * answer from the edge is what "healthy" means. Past the deadline, or on a
 * fourth start of the new version (it keeps crashing under systemd), it puts
 * the previous program back, notes the version as bad (never retried
 * automatically) and restarts; the previous version then reports
 * "rolled_back" to the edge.
 */
import { logger } from "../log.ts";
import type { InputError } from "../errors.ts";
import { checkProgram, manifestOf, parseSignedManifest, verifyManifest } from "../fleet/release.ts";
import { rollbackRefusal } from "../fleet/rollback_auth.ts";
import type { UpdateOffer, UpdateReport } from "../control/mod.ts";
import { compareVersions, VERSION } from "../version.ts";
import type { EdgeApi } from "./edge_api.ts";
import type { NotificationHub } from "./notifications.ts";
import { installProgram, restorePrevious } from "./program_swap.ts";
import type { PinnedReleaseKey } from "./release_pin.ts";

const log = logger("connector.updater");

/** Where the updater stands, as the console shows it. */
export type UpdateStateKind =
  | "disabled"
  | "idle"
  | "checking"
  | "up_to_date"
  | "downloading"
  | "restarting"
  | "confirming"
  | "updated"
  | "refused"
  | "failed"
  | "rolled_back";

/** The updater's status (local API, console). */
export interface UpdateStatus {
  version: string;
  state: UpdateStateKind;
  message: string;
  /** The version the edge offered at the last check. */
  offered: string | null;
  lastCheckAt: number | null;
  /** The pinned release key's id (null: none pinned, updates off). */
  keyId: string | null;
  program: string | null;
}

/** An update in flight across a restart. */
export interface Pending {
  from: string;
  to: string;
  startedAt: number;
  deadline: number;
  boots: number;
  state: "trying" | "rolled_back";
  reason?: string;
}

/** What the updater keeps in <dataDir>/updates.json. */
export interface UpdatesFile {
  pending: Pending | null;
  /** Versions that did not come back healthy: not installed again automatically. */
  bad: string[];
  /** A report the edge has not acknowledged yet. */
  unreported: UpdateReport | null;
}

/** What the updater works with. */
export interface UpdaterDeps {
  dataDir: string;
  /** The installed program updates replace; null: updates are off (say why in `disabledReason`). */
  program: string | null;
  key: PinnedReleaseKey | null;
  /** The client of the edge the engine uses now (null before enrolment). */
  client: () => EdgeApi | null;
  hub: NotificationHub;
  /** Restarts the process (into whatever the program file is now). */
  restart: () => void;
  /** The engine is enrolled and not in error: a new version may report itself healthy. */
  healthy: () => boolean;
  checkMs: number;
  healthMs: number;
  /** Delay of the first check after start (default 60 s). */
  firstCheckMs?: number;
  now?: () => number;
  /** The running version (default VERSION). */
  version?: string;
  disabledReason?: string;
}

/** Reads <dataDir>/updates.json (empty when absent or unreadable). */
export async function loadUpdates(dataDir: string): Promise<UpdatesFile> {
  try {
    const j = JSON.parse(await Deno.readTextFile(`${dataDir}/updates.json`));
    return { pending: j.pending ?? null, bad: j.bad ?? [], unreported: j.unreported ?? null };
  } catch {
    return { pending: null, bad: [], unreported: null };
  }
}

/** Writes <dataDir>/updates.json atomically (aside, then renamed). */
export async function saveUpdates(dataDir: string, f: UpdatesFile): Promise<void> {
  const path = `${dataDir}/updates.json`;
  await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(f), { mode: 0o600 });
  await Deno.rename(`${path}.tmp`, path);
}

/** Why a pending update is rolled back: its window, as recorded when it was installed. */
export function unhealthy(p: Pending): string {
  const ms = p.deadline - p.startedAt;
  return `it did not report to the edge within ${(ms / 1000).toFixed(ms % 1000 ? 1 : 0)} s`;
}

/** Largest program accepted (512 MiB). */
const MAX_PROGRAM = 512 * 1024 * 1024;

/** Checks, verifies, installs and confirms connector releases. */
export class Updater {
  #d: UpdaterDeps;
  #now: () => number;
  #version: string;
  #status: UpdateStatus;
  #busy: Promise<UpdateStatus> | null = null;
  #timers: ReturnType<typeof setTimeout>[] = [];
  #stopped = false;
  /** Versions already refused and told to the edge in this run. */
  #told = new Set<string>();

  constructor(d: UpdaterDeps) {
    this.#d = d;
    this.#now = d.now ?? Date.now;
    this.#version = d.version ?? VERSION;
    const off = !d.key
      ? "No release key is pinned (--release-key): updates are off"
      : !d.program
      ? d.disabledReason ?? "No program file to update (--program): updates are off"
      : null;
    this.#status = {
      version: this.#version,
      state: off ? "disabled" : "idle",
      message: off ?? "No check yet",
      offered: null,
      lastCheckAt: null,
      keyId: d.key?.keyId ?? null,
      program: d.program,
    };
  }

  /** The current status (a copy). */
  status(): UpdateStatus {
    return { ...this.#status };
  }

  #load(): Promise<UpdatesFile> {
    return loadUpdates(this.#d.dataDir);
  }

  #save(f: UpdatesFile): Promise<void> {
    return saveUpdates(this.#d.dataDir, f);
  }

  #set(state: UpdateStateKind, message: string, extra: Partial<UpdateStatus> = {}): void {
    this.#status = { ...this.#status, ...extra, state, message };
  }

  /** Reads a pending update (confirm or report a rollback) and schedules the checks. */
  async start(): Promise<void> {
    const f = await this.#load();
    const p = f.pending;
    if (p && p.state === "trying" && p.to === this.#version) {
      p.boots++;
      await this.#save(f);
      if (p.boots > 3 || this.#now() > p.deadline) {
        await this.#rollBack(
          f,
          p.boots > 3
            ? `it stopped before reporting to the edge ${p.boots - 1} times`
            : unhealthy(p),
        );
        return;
      }
      this.#set("confirming", `Updated from ${p.from}; confirming with the edge`);
      this.#confirmLoop();
    } else if (p && p.state === "rolled_back") {
      f.pending = null;
      f.unreported = { version: p.to, outcome: "rolled_back", reason: p.reason ?? "" };
      await this.#save(f);
      this.#set("rolled_back", `Release ${p.to} was rolled back: ${p.reason ?? ""}`);
      this.#d.hub.raise(
        "update_rolled_back",
        "warn",
        `Rolled back from connector release ${p.to} to ${this.#version}: ${p.reason ?? ""}`,
        { version: p.to, running: this.#version },
      );
    } else if (p) {
      // The program at the path did not become the new version (the swap did not take).
      f.pending = null;
      f.unreported = {
        version: p.to,
        outcome: "failed",
        reason: `After the update the connector still runs ${this.#version}`,
      };
      await this.#save(f);
      this.#set("failed", `Release ${p.to} did not start; still running ${this.#version}`);
    }
    if (f.unreported) this.#reportLoop();
    if (this.#status.state === "disabled") return;
    const first = setTimeout(() => void this.check(), this.#d.firstCheckMs ?? 60_000);
    const every = setInterval(() => void this.check(), this.#d.checkMs);
    this.#timers.push(first, every);
  }

  /** Stops the timers. */
  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers.splice(0)) clearInterval(t);
  }

  /** Until the deadline: report "installed" once healthy; past it, roll back. */
  #confirmLoop(): void {
    const tick = async () => {
      if (this.#stopped) return;
      const f = await this.#load();
      const p = f.pending;
      if (!p || p.state !== "trying") return;
      if (this.#now() > p.deadline) {
        await this.#rollBack(f, unhealthy(p));
        return;
      }
      const c = this.#d.client();
      if (c?.reportUpdate && this.#d.healthy()) {
        try {
          await c.reportUpdate({
            version: this.#version,
            outcome: "installed",
            reason: `Updated from ${p.from}`,
          });
          f.pending = null;
          await this.#save(f);
          this.#set("updated", `Updated from ${p.from} to ${this.#version}`);
          log.info("Update confirmed by the edge", { from: p.from, to: this.#version });
          this.#d.hub.raise(
            "update_installed",
            "info",
            `Connector updated from ${p.from} to ${this.#version}`,
            { from: p.from, to: this.#version },
          );
          return;
        } catch (e) {
          log.debug("Cannot confirm the update yet", { error: (e as Error).message });
        }
      }
      this.#timers.push(setTimeout(tick, 1000));
    };
    void tick();
  }

  /** Sends the stored report until the edge takes it. */
  #reportLoop(): void {
    const tick = async () => {
      if (this.#stopped) return;
      const f = await this.#load();
      if (!f.unreported) return;
      const c = this.#d.client();
      if (c?.reportUpdate) {
        try {
          await c.reportUpdate(f.unreported);
          f.unreported = null;
          await this.#save(f);
          return;
        } catch (e) {
          log.debug("Cannot report the update yet", { error: (e as Error).message });
        }
      }
      this.#timers.push(setTimeout(tick, 2000));
    };
    void tick();
  }

  async #rollBack(f: UpdatesFile, reason: string): Promise<void> {
    const p = f.pending!;
    const program = this.#d.program;
    log.warn("The new connector version is not healthy; rolling back", { to: p.from, reason });
    if (!program || !(await restorePrevious(program))) {
      f.pending = null;
      f.unreported = { version: p.to, outcome: "failed", reason: `${reason}; no previous program` };
      await this.#save(f);
      this.#set(
        "failed",
        `Release ${p.to} is unhealthy (${reason}) and there is nothing to roll back to`,
      );
      this.#reportLoop();
      return;
    }
    f.pending = { ...p, state: "rolled_back", reason };
    f.bad = [...new Set([...f.bad, p.to])];
    await this.#save(f);
    this.#set("restarting", `Rolling back to ${p.from}: release ${p.to} ${reason}`);
    this.#d.restart();
  }

  /** Checks now (unless a check runs); resolves with the status after it. */
  check(): Promise<UpdateStatus> {
    if (this.#busy) return this.#busy;
    const s = this.#status.state;
    if (s === "disabled" || s === "confirming" || s === "restarting" || this.#stopped) {
      return Promise.resolve(this.status());
    }
    this.#busy = this.#check().catch((e) => {
      const msg = (e as Error).message;
      log.warn("Update check failed", { error: msg });
      this.#set("failed", `Cannot check for updates: ${msg}`);
      return this.status();
    }).finally(() => (this.#busy = null));
    return this.#busy;
  }

  async #check(): Promise<UpdateStatus> {
    const c = this.#d.client();
    if (!c) {
      this.#set("idle", "Not enrolled: no edge to ask");
      return this.status();
    }
    if (!c.checkUpdate || !c.downloadRelease) {
      this.#set("up_to_date", "The edge serves no updates");
      return this.status();
    }
    this.#set("checking", "Asking the edge", { lastCheckAt: this.#now() });
    const offer = await c.checkUpdate();
    if (!offer) {
      this.#set("up_to_date", `Running ${this.#version}; no release is offered`, { offered: null });
      return this.status();
    }
    this.#status.offered = offer.version;
    const cmp = compareVersions(offer.version, this.#version);
    if (cmp === 0) {
      this.#set("up_to_date", `Running ${this.#version}, the version offered`);
      return this.status();
    }
    if (cmp === null) return await this.#refuse(c, offer, `"${offer.version}" is not a version`);
    if (cmp < 0 && !offer.rollback) {
      return await this.#refuse(
        c,
        offer,
        `${offer.version} is older than ${this.#version} and rule "${offer.ruleName}" does not allow rollback`,
      );
    }
    if (cmp < 0) {
      // The rule's flag is the edge's word; the release key holder's signature decides.
      const why = await rollbackRefusal(offer.rollbackAuthorisation, {
        publicKey: this.#d.key!.publicKey,
        running: this.#version,
        offered: offer.version,
        now: this.#now(),
      });
      if (why) {
        return await this.#refuse(
          c,
          offer,
          `${offer.version} is older than ${this.#version} and ${why}`,
        );
      }
    }
    const f = await this.#load();
    if (f.bad.includes(offer.version)) {
      this.#set(
        "rolled_back",
        `Release ${offer.version} was rolled back before; not installed again`,
      );
      return this.status();
    }
    const signed = (() => {
      try {
        return parseSignedManifest(offer.signedManifest);
      } catch (e) {
        return e as InputError;
      }
    })();
    if (signed instanceof Error) return await this.#refuse(c, offer, signed.message);
    if (!(await verifyManifest(signed, this.#d.key!.publicKey))) {
      return await this.#refuse(
        c,
        offer,
        `bad signature: the manifest is not signed by the pinned release key ${this.#d.key!.keyId}`,
      );
    }
    let manifest;
    try {
      manifest = manifestOf(signed);
    } catch (e) {
      return await this.#refuse(c, offer, (e as Error).message);
    }
    if (manifest.version !== offer.version) {
      return await this.#refuse(
        c,
        offer,
        `the signed manifest names version ${manifest.version}, not ${offer.version}`,
      );
    }
    if (manifest.size > MAX_PROGRAM) {
      return await this.#refuse(c, offer, `the program is larger than ${MAX_PROGRAM} bytes`);
    }
    this.#set("downloading", `Downloading release ${offer.version}`);
    const bytes = await c.downloadRelease(offer.version, manifest.size);
    try {
      checkProgram(manifest, bytes);
    } catch (e) {
      return await this.#refuse(c, offer, (e as Error).message);
    }
    const program = this.#d.program!;
    await installProgram(program, bytes);
    const now = this.#now();
    await this.#save({
      ...f,
      pending: {
        from: this.#version,
        to: offer.version,
        startedAt: now,
        deadline: now + this.#d.healthMs,
        boots: 0,
        state: "trying",
      },
    });
    log.info("Installed a new connector release; restarting", {
      from: this.#version,
      to: offer.version,
      rule: offer.ruleName,
    });
    this.#d.hub.raise(
      "update_installing",
      "info",
      `Updating the connector from ${this.#version} to ${offer.version} (rule "${offer.ruleName}"); restarting`,
      { from: this.#version, to: offer.version, rule: offer.ruleName },
    );
    this.#set("restarting", `Restarting into ${offer.version}`);
    this.#d.restart();
    return this.status();
  }

  /** Refuses an offer: the console shows it, the edge hears it (once per version and run). */
  async #refuse(c: EdgeApi, offer: UpdateOffer, reason: string): Promise<UpdateStatus> {
    this.#set("refused", `Refused release ${offer.version}: ${reason}`);
    if (this.#told.has(offer.version)) return this.status();
    this.#told.add(offer.version);
    log.warn("Refused a connector release", { version: offer.version, reason });
    this.#d.hub.raise(
      "update_refused",
      "error",
      `Refused connector release ${offer.version}: ${reason}`,
      {
        version: offer.version,
        rule: offer.ruleName,
      },
    );
    try {
      await c.reportUpdate?.({ version: offer.version, outcome: "refused", reason });
    } catch (e) {
      log.warn("Cannot tell the edge about the refused release", { error: (e as Error).message });
    }
    return this.status();
  }
}
