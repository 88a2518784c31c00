/**
 * "Restart service": the connector restarts its own process, so everything
 * is set up from nothing (a new pid, a fresh TUN, routes, DNS and state),
 * which is what a user means by it and what support asks for.
 *
 * Under systemd (INVOCATION_ID or NOTIFY_SOCKET in the environment) the
 * unit is restarted: `systemctl --no-block restart <unit>` queues the job
 * and returns, systemd stops us with SIGTERM (our normal cleanup) and starts
 * the unit again. Anywhere else the process re-executes itself: it stops
 * cleanly first, so the console port, the TUN name and resolv.conf are free,
 * then starts its successor with the same argv (read from /proc/self/cmdline,
 * runtime flags included), environment and working directory, detached, and
 * exits. The successor waits for the old pid to be gone before it starts,
 * so the two never hold the same resources at once.
 *
 * A one-time enrolment key is left out of the successor (the enrolment is
 * stored by then, and a key file may be gone): `--key-file`, a positional
 * `pc1.` key and PORTCULLIS_ENROLLMENT_KEY.
 */
import { logger } from "../log.ts";
import { tiedCommand } from "../net/tied_command.ts";
import { SERVICE_UNIT } from "./uninstall.ts";

const log = logger("connector.restart");

/** The environment variable that makes a successor wait for its predecessor's pid. */
export const RESTART_WAIT_ENV = "PORTCULLIS_RESTART_WAIT_PID";

/** How this process restarts. */
export type RestartPlan =
  | { kind: "systemd"; unit: string }
  | { kind: "reexec"; program: string; args: string[]; env: Record<string, string>; cwd: string };

/**
 * The systemd unit we run under, or null when not under systemd: from
 * /proc/self/cgroup ("0::/system.slice/portcullis-connector.service").
 */
export function systemdUnit(env: Record<string, string>, cgroup: string): string | null {
  if (!env.INVOCATION_ID && !env.NOTIFY_SOCKET) return null;
  for (const line of cgroup.split("\n")) {
    const path = line.split(":").slice(2).join(":");
    const m = path.match(/\/([A-Za-z0-9@._\\-]+\.service)(?:\/|$)/);
    if (m) return m[1];
  }
  return SERVICE_UNIT;
}

/** argv without a one-time enrolment key (see the module comment). */
export function withoutKey(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--key-file") {
      i++;
      continue;
    }
    if (a.startsWith("--key-file=") || a.startsWith("pc1.")) continue;
    out.push(a);
  }
  return out;
}

/**
 * Decides how to restart, from the environment and /proc. With `program`
 * (the installed program an update replaced) the successor is that file run
 * with our own arguments (Deno.args), so it is the new version whatever
 * started us; without, it is the same command line again.
 */
export function restartPlan(
  env: Record<string, string> = Deno.env.toObject(),
  read: (path: string) => string = (p) => Deno.readTextFileSync(p),
  program?: { path: string; args: string[] },
): RestartPlan {
  let cgroup = "";
  try {
    cgroup = read("/proc/self/cgroup");
  } catch {
    // Not Linux: no systemd either.
  }
  const unit = systemdUnit(env, cgroup);
  if (unit) return { kind: "systemd", unit };
  const argv = read("/proc/self/cmdline").split("\0").filter((x, i, a) =>
    x !== "" || i < a.length - 1
  );
  const successorEnv: Record<string, string> = { ...env, [RESTART_WAIT_ENV]: String(Deno.pid) };
  delete successorEnv.PORTCULLIS_ENROLLMENT_KEY;
  return {
    kind: "reexec",
    program: program?.path ?? Deno.execPath(),
    args: withoutKey(program?.args ?? argv.slice(1)),
    env: successorEnv,
    cwd: Deno.cwd(),
  };
}

/** Asks systemd to restart `unit` (returns at once; systemd then stops us). */
export async function restartUnit(unit: string): Promise<void> {
  const out = await tiedCommand("systemctl", {
    args: ["--no-block", "restart", unit],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new Error(
      `Cannot restart unit "${unit}": ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  log.info("Asked systemd to restart the unit", { unit });
}

/**
 * Starts the successor detached (not tied to us: it must outlive this
 * process) with our stdout/stderr, and returns it (unref'd: we need not wait).
 */
export function spawnSuccessor(plan: Extract<RestartPlan, { kind: "reexec" }>): Deno.ChildProcess {
  const child = new Deno.Command(plan.program, {
    args: plan.args,
    env: plan.env,
    clearEnv: true,
    cwd: plan.cwd,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  child.unref();
  log.info("Started the successor process", { pid: child.pid });
  return child;
}

/**
 * In a successor: waits (up to `ms`) until the predecessor named by
 * RESTART_WAIT_ENV has exited, and removes the variable so our own
 * children never see it.
 */
export async function awaitPredecessor(ms = 15_000): Promise<void> {
  const pid = Number(Deno.env.get(RESTART_WAIT_ENV) ?? "");
  Deno.env.delete(RESTART_WAIT_ENV);
  if (!Number.isInteger(pid) || pid <= 1) return;
  const gone = () => {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      return stat.slice(stat.lastIndexOf(")") + 2)[0] === "Z";
    } catch {
      return true;
    }
  };
  const until = Date.now() + ms;
  while (!gone() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  log.info("Restarted", { previousPid: pid, pid: Deno.pid });
}
