/**
 * The old process guarding a new version, when the connector re-executes
 * itself (not under systemd): a program that exits at once, or hangs before
 * its own code can judge itself, would otherwise leave the host with no
 * connector at all.
 *
 * After an update the old process has released everything (console port,
 * TUN, resolv.conf) and starts the new program; instead of exiting it waits
 * while the pending update is "trying". The new version ends the watch
 * itself — by confirming (the pending record goes) or by rolling itself back
 * (its state becomes "rolled_back"). If instead it exits, or is still trying
 * past its deadline plus a grace, the guard stops it, puts the previous
 * program back, marks the release bad and starts the previous version,
 * which then reports the rollback to the edge (updater.ts).
 */
import { logger } from "../log.ts";
import { restorePrevious } from "./program_swap.ts";
import { RESTART_WAIT_ENV, type RestartPlan, spawnSuccessor } from "./restart.ts";
import { loadUpdates, saveUpdates, unhealthy } from "./updater.ts";

const log = logger("connector.update_guard");

/** What the guard needs. */
export interface GuardOptions {
  dataDir: string;
  program: string;
  plan: Extract<RestartPlan, { kind: "reexec" }>;
  /** Beyond the deadline before a hung new version is stopped (default 10 s). */
  graceMs?: number;
  pollMs?: number;
  now?: () => number;
  spawn?: (plan: Extract<RestartPlan, { kind: "reexec" }>) => Deno.ChildProcess;
}

/** True when an update waits for its new version to report (the guard has work). */
export async function updatePending(dataDir: string): Promise<boolean> {
  return (await loadUpdates(dataDir)).pending?.state === "trying";
}

/** Starts the new version and watches it; resolves once it is confirmed, or replaced by the old one. */
export async function superviseUpdate(o: GuardOptions): Promise<"confirmed" | "rolled_back"> {
  const now = o.now ?? Date.now;
  const spawn = o.spawn ?? spawnSuccessor;
  // Everything is released already: the new version need not wait for this (lingering) pid.
  const env = { ...o.plan.env };
  delete env[RESTART_WAIT_ENV];
  const child = spawn({ ...o.plan, env });
  let exit: Deno.CommandStatus | null = null;
  child.status.then((s) => (exit = s)).catch(() => {});
  for (;;) {
    const f = await loadUpdates(o.dataDir);
    const p = f.pending;
    if (!p || p.state !== "trying") return "confirmed";
    let reason: string | null = null;
    if (exit) {
      const e: Deno.CommandStatus = exit;
      reason = `the new version exited (${
        e.signal ? `signal ${e.signal}` : `code ${e.code}`
      }) before reporting to the edge`;
    } else if (now() > p.deadline + (o.graceMs ?? 10_000)) {
      reason = unhealthy(p);
      try {
        child.kill("SIGTERM");
      } catch { /* gone meanwhile */ }
      const end = now() + 5000;
      while (!exit && now() < end) await new Promise((r) => setTimeout(r, 100));
      if (!exit) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone meanwhile */ }
        await child.status.catch(() => {});
      }
    }
    if (reason) {
      // It may have rolled itself back while stopping.
      const again = await loadUpdates(o.dataDir);
      if (again.pending?.state !== "trying") return "confirmed";
      log.warn("The new connector version is not healthy; putting the previous one back", {
        to: p.from,
        reason,
      });
      if (!(await restorePrevious(o.program))) {
        // Nothing to go back to: say so; starting the same program again would not help.
        await saveUpdates(o.dataDir, {
          ...again,
          pending: null,
          unreported: {
            version: p.to,
            outcome: "failed",
            reason: `${reason}; no previous program`,
          },
        });
        log.error("Cannot roll back: no previous program", { program: o.program });
        return "rolled_back";
      }
      await saveUpdates(o.dataDir, {
        ...again,
        pending: { ...p, state: "rolled_back", reason },
        bad: [...new Set([...again.bad, p.to])],
      });
      spawn({ ...o.plan, env });
      return "rolled_back";
    }
    await new Promise((r) => setTimeout(r, o.pollMs ?? 500));
  }
}
