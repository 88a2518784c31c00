/**
 * Network-namespace harness for tests: creates namespaces and veth pairs with
 * names unique to this process, runs commands inside them, and removes
 * everything it made on dispose, even when a test fails.
 *
 * Usage:
 *   await using lab = new NetnsLab("wg");
 *   const a = await lab.ns("a"); ...
 */

/** Result of a finished command. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** True when the process can create namespaces (root on Linux). */
export const canUseNetns = Deno.build.os === "linux" && Deno.uid() === 0;

/** Runs a command and returns its output; throws when `check` and the exit code is not 0. */
export async function sh(
  cmd: string[],
  opts: { check?: boolean; stdin?: string } = {},
): Promise<RunResult> {
  const p = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
    stdin: opts.stdin === undefined ? "null" : "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await p.output();
  const res = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if ((opts.check ?? true) && res.code !== 0) {
    throw new Error(`Command "${cmd.join(" ")}" failed (${res.code}): ${res.stderr.trim()}`);
  }
  return res;
}

/**
 * Polls `fn` until it resolves true (a rejection counts as false) or `ms`
 * pass; resolves with the time it took, throws naming `what` on timeout.
 */
export async function waitUntil(
  what: string,
  fn: () => Promise<boolean>,
  ms: number,
  intervalMs = 200,
): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await fn().catch(() => false)) return Date.now() - start;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`Timed out after ${ms} ms: ${what}`);
}

let counter = 0;

/** A set of namespaces, links and processes owned by one test. */
export class NetnsLab implements AsyncDisposable {
  readonly prefix: string;
  #namespaces: string[] = [];
  #procs: Deno.ChildProcess[] = [];
  #cleanups: (() => Promise<void> | void)[] = [];

  /** `tag` is a short word (<= 4 chars) that makes names readable in `ip netns`. */
  constructor(tag: string) {
    this.prefix = `pc${tag.slice(0, 4)}${Deno.pid % 10000}${counter++}`;
  }

  /** Creates namespace `<prefix>-<name>` with loopback up and returns its full name. */
  async ns(name: string): Promise<string> {
    const full = `${this.prefix}-${name}`;
    await sh(["ip", "netns", "add", full]);
    this.#namespaces.push(full);
    await sh(["ip", "-n", full, "link", "set", "lo", "up"]);
    return full;
  }

  /** Joins two namespaces with a veth pair and gives each end an address (CIDR). */
  async link(a: string, aAddr: string, b: string, bAddr: string, name = "veth0"): Promise<void> {
    const tmpA = `v${counter++}a${Deno.pid % 10000}`.slice(0, 15);
    const tmpB = `v${counter}b${Deno.pid % 10000}`.slice(0, 15);
    await sh(["ip", "link", "add", tmpA, "type", "veth", "peer", "name", tmpB]);
    await sh(["ip", "link", "set", tmpA, "netns", a]);
    await sh(["ip", "link", "set", tmpB, "netns", b]);
    await sh(["ip", "-n", a, "link", "set", tmpA, "name", name]);
    await sh(["ip", "-n", b, "link", "set", tmpB, "name", name]);
    for (const [ns, addr] of [[a, aAddr], [b, bAddr]]) {
      await sh(["ip", "-n", ns, "addr", "add", addr, "dev", name]);
      await sh(["ip", "-n", ns, "link", "set", name, "up"]);
    }
  }

  /** Runs a command inside namespace `ns`. */
  exec(
    ns: string,
    cmd: string[],
    opts: { check?: boolean; stdin?: string } = {},
  ): Promise<RunResult> {
    return sh(["ip", "netns", "exec", ns, ...cmd], opts);
  }

  /** Starts a long-running process inside `ns`; it is killed on dispose. */
  spawn(
    ns: string,
    cmd: string[],
    opts: { env?: Record<string, string>; output?: "inherit" | "piped" | "null" } = {},
  ): Deno.ChildProcess {
    const p = new Deno.Command("ip", {
      args: ["netns", "exec", ns, ...cmd],
      env: opts.env,
      stdout: opts.output ?? "null",
      stderr: opts.output ?? "null",
      stdin: "null",
    }).spawn();
    this.#procs.push(p);
    return p;
  }

  /** Registers extra cleanup work, run before namespaces are deleted. */
  defer(fn: () => Promise<void> | void): void {
    this.#cleanups.push(fn);
  }

  /** Kills processes, runs deferred cleanups and deletes the namespaces. */
  async [Symbol.asyncDispose](): Promise<void> {
    for (const p of this.#procs.reverse()) {
      try {
        p.kill("SIGTERM");
      } catch { /* already gone */ }
    }
    await Promise.all(
      this.#procs.map((p) =>
        Promise.race([p.status, new Promise((r) => setTimeout(r, 3000))]).then(() => {
          try {
            p.kill("SIGKILL");
          } catch { /* already gone */ }
        })
      ),
    );
    for (const fn of this.#cleanups.reverse()) {
      try {
        await fn();
      } catch { /* best effort */ }
    }
    for (const ns of this.#namespaces.reverse()) {
      // Kill anything still running inside before removing it.
      await sh(["ip", "netns", "pids", ns], { check: false }).then(async (r) => {
        for (const pid of r.stdout.split(/\s+/).filter(Boolean)) {
          await sh(["kill", "-9", pid], { check: false });
        }
      });
      await sh(["ip", "netns", "del", ns], { check: false });
    }
  }
}
