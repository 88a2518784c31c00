/**
 * Network change monitor: notices address, route, link and DNS changes and
 * emits one debounced "network changed" event, so the engine re-evaluates the
 * trusted network, captive portal and routes within seconds of a move.
 *
 * Mechanism: `ip -o monitor label address route link` as a child process
 * (rtnetlink under the hood; the issue allows "or equivalent", and a child
 * keeps the unsafe FFI surface small), plus a watch on resolv.conf
 * (Deno.watchFs on its directory, because resolvers replace the file by
 * rename; polling every 2 s when watching is not possible).
 *
 * resolv.conf changes are changes of what it says, not of file events: an
 * event (or a poll) only schedules a read once events have stopped for a
 * moment, and new parsed settings (name servers, search domains, options)
 * count only when a second read shortly after agrees. A missing or empty
 * file is taken as a writer in the middle of its work (truncate, then
 * write; unlink, then rename) and is reported only if it stays so for a
 * grace period. So rewriting the same contents, a new comment, or a burst of
 * events for one edit report nothing or one change, never a phantom one.
 *
 * Debounce: a burst of kernel messages (DHCP renew, a Wi-Fi roam) becomes one
 * event after 300 ms of quiet, but never later than 1.5 s after the first
 * message, so a chatty network still re-evaluates well within 2 s.
 *
 * Changes on our own interfaces (the tunnel) are ignored: installing our
 * routes must not trigger a re-evaluation that installs them again.
 *
 * Events that happen in the first ~100 ms after start, before `ip monitor`
 * has subscribed, can be missed; the engine evaluates once at start anyway.
 */
import type { Clock } from "../../clock.ts";
import { systemClock } from "../../clock.ts";
import { logger } from "../../log.ts";
import { parseResolvConf } from "../../net/resolv_conf.ts";
import { tiedCommand } from "../../net/tied_command.ts";

const log = logger("network.monitor");

/** What kind of change was seen. */
export type ChangeKind = "address" | "route" | "link" | "dns";

/** One debounced "network changed" event. */
export interface NetworkChange {
  /** Kinds seen in the burst, in first-seen order. */
  kinds: ChangeKind[];
  /** Raw messages in the burst. */
  count: number;
  /** Up to 5 raw lines, for the debug log. */
  samples: string[];
  /** Monotonic ms when the event was emitted. */
  at: number;
}

/** A source of network change events (the system, or a fake). */
export interface NetworkMonitor {
  /** Registers a listener; returns a function that removes it. */
  subscribe(fn: (change: NetworkChange) => void): () => void;
  /** Stops watching and releases the child process and watchers. */
  close(): Promise<void>;
}

/**
 * Burst coalescing, pure over the times it is given: fire after `quietMs`
 * without news, or `maxMs` after the first message, whichever comes first.
 */
export class Debouncer {
  #first: number | null = null;
  #last = 0;
  constructor(readonly quietMs = 300, readonly maxMs = 1500) {}

  /** Records a message at `now`. */
  note(now: number): void {
    if (this.#first === null) this.#first = now;
    this.#last = now;
  }

  /** True while messages wait to be emitted. */
  get pending(): boolean {
    return this.#first !== null;
  }

  /** When to fire, or null when nothing is pending. */
  deadline(): number | null {
    if (this.#first === null) return null;
    return Math.min(this.#last + this.quietMs, this.#first + this.maxMs);
  }

  /** True (and resets) when the deadline has passed at `now`. */
  take(now: number): boolean {
    const d = this.deadline();
    if (d === null || now < d) return false;
    this.#first = null;
    return true;
  }
}

/** What a read of resolv.conf means for the monitor. */
export type ResolvVerdict = "changed" | "same" | "settling";

/**
 * Tells a change of resolv.conf's settings from a rewrite, pure over the
 * texts and times it is given. `text` is the file's contents, or null when
 * it cannot be read (missing). New settings count once two reads in a row
 * agree ("settling" asks the caller to read again a little later), so a
 * state the file only passes through is not a change. A missing or empty
 * file must stay so for `graceMs`: writers truncate then write, or unlink
 * then rename.
 */
export class ResolvConfTracker {
  #last: string | null;
  #candidate: string | null | undefined = undefined;
  #since = 0;
  constructor(initial: string | null, readonly graceMs = 1000) {
    this.#last = ResolvConfTracker.meaning(initial);
  }

  /** The settings that matter, as a comparable string; null for a missing file. */
  static meaning(text: string | null): string | null {
    if (text === null) return null;
    const { nameservers, search, options } = parseResolvConf(text);
    return JSON.stringify([nameservers, search, options]);
  }

  /** Judges one read of the file at monotonic time `now`. */
  observe(text: string | null, now: number): ResolvVerdict {
    const meaning = ResolvConfTracker.meaning(text);
    if (meaning === this.#last) {
      this.#candidate = undefined;
      return "same";
    }
    if (meaning !== this.#candidate) {
      this.#candidate = meaning;
      this.#since = now;
      return "settling";
    }
    const transient = meaning === null || meaning === EMPTY_MEANING;
    if (transient && now - this.#since < this.graceMs) return "settling";
    this.#last = meaning;
    this.#candidate = undefined;
    return "changed";
  }
}

const EMPTY_MEANING = ResolvConfTracker.meaning("");

/** Classifies one `ip -o monitor label` line and names the interface it concerns. */
export function parseMonitorLine(line: string): { kind: ChangeKind; dev?: string } | null {
  const m = line.match(/^\[(LINK|ADDR|ROUTE)\](.*)$/);
  if (!m) return null;
  const rest = m[2].replace(/^Deleted\s+/, "");
  if (m[1] === "ROUTE") {
    return { kind: "route", dev: rest.match(/\bdev\s+(\S+)/)?.[1] };
  }
  const dev = rest.match(/^\d+:\s+([^\s:@]+)/)?.[1];
  return { kind: m[1] === "LINK" ? "link" : "address", dev };
}

/** Options of the system monitor. */
export interface SystemMonitorOptions {
  /** Watch this network namespace instead of ours (tests, the lab). */
  netns?: string;
  /** resolv.conf to watch (default /etc/resolv.conf); null disables the DNS watch. */
  resolvConfPath?: string | null;
  /** Interfaces whose changes are ignored (our tunnel). */
  ignoreInterfaces?: readonly string[];
  quietMs?: number;
  maxMs?: number;
  /** resolv.conf polling interval when watching is not possible (default 2000 ms). */
  pollMs?: number;
  /** Use polling even when Deno.watchFs works (tests of the fallback). */
  forcePolling?: boolean;
  /** Quiet time after a resolv.conf event before the file is read (default 100 ms). */
  resolvSettleMs?: number;
  /** How long a missing or empty resolv.conf counts as a rewrite in progress (default 1000 ms). */
  resolvGraceMs?: number;
  clock?: Clock;
}

/** Watches the real system through `ip monitor` and resolv.conf. */
export class SystemNetworkMonitor implements NetworkMonitor {
  readonly #opts: SystemMonitorOptions;
  readonly #clock: Clock;
  readonly #debouncer: Debouncer;
  readonly #listeners = new Set<(c: NetworkChange) => void>();
  readonly #ignore: Set<string>;
  #child: Deno.ChildProcess | null = null;
  #childDone: Promise<void> = Promise.resolve();
  #watcher: Deno.FsWatcher | null = null;
  #watchDone: Promise<void> = Promise.resolve();
  #pollTimer: ReturnType<typeof setTimeout> | undefined;
  #fireTimer: ReturnType<typeof setTimeout> | undefined;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #kinds: ChangeKind[] = [];
  #count = 0;
  #samples: string[] = [];
  #resolv: ResolvConfTracker | null = null;
  #resolvTimer: ReturnType<typeof setTimeout> | undefined;
  #resolvChain: Promise<void> = Promise.resolve();
  #resolvReads = 0;
  #resolvInFlight = 0;

  private constructor(opts: SystemMonitorOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#debouncer = new Debouncer(opts.quietMs ?? 300, opts.maxMs ?? 1500);
    this.#ignore = new Set(opts.ignoreInterfaces ?? []);
  }

  /** Starts the child process and the resolv.conf watch. */
  static async start(opts: SystemMonitorOptions = {}): Promise<SystemNetworkMonitor> {
    const m = new SystemNetworkMonitor(opts);
    m.#spawn();
    await m.#startDnsWatch();
    return m;
  }

  /** Registers a listener; returns a function that removes it. */
  subscribe(fn: (change: NetworkChange) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Process id of the `ip monitor` child (for tests and diagnostics). */
  get childPid(): number | null {
    return this.#child?.pid ?? null;
  }

  /**
   * The resolv.conf watch, for tests and diagnostics: how many reads were
   * judged, and whether one is still due (after an event, or while settling).
   * Once `due` is false and no event is `pending`, every edit so far is
   * accounted for.
   */
  get resolvWatch(): { reads: number; due: boolean; pending: boolean } {
    return {
      reads: this.#resolvReads,
      due: this.#resolvTimer !== undefined || this.#resolvInFlight > 0,
      pending: this.#debouncer.pending,
    };
  }

  #spawn(): void {
    const args = [...(this.#opts.netns ? ["-n", this.#opts.netns] : [])];
    args.push("-o", "monitor", "label", "address", "route", "link");
    let child: Deno.ChildProcess;
    try {
      child = tiedCommand("ip", { args, stdout: "piped", stderr: "null", stdin: "null" })
        .spawn();
    } catch (e) {
      throw new Error(`Cannot start "ip ${args.join(" ")}": ${(e as Error).message}`);
    }
    this.#child = child;
    this.#childDone = this.#readLines(child).then(async () => {
      const status = await child.status;
      if (this.#closed) return;
      // The monitor died: say so, assume we missed something, and restart.
      log.warn("Network monitor child exited; restarting", { code: status.code });
      this.#note("link", "[monitor restarted]");
      this.#restartTimer = setTimeout(() => {
        if (!this.#closed) this.#spawn();
      }, 1000);
    });
  }

  async #readLines(child: Deno.ChildProcess): Promise<void> {
    let buf = "";
    try {
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf("\n")) !== -1) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const p = parseMonitorLine(line);
          if (p && !(p.dev && this.#ignore.has(p.dev))) this.#note(p.kind, line);
        }
      }
    } catch {
      // Stream torn down on close.
    }
  }

  async #startDnsWatch(): Promise<void> {
    const path = this.#opts.resolvConfPath === undefined
      ? "/etc/resolv.conf"
      : this.#opts.resolvConfPath;
    if (path === null) return;
    this.#resolv = new ResolvConfTracker(
      await Deno.readTextFile(path).catch(() => null),
      this.#opts.resolvGraceMs ?? 1000,
    );
    const slash = path.lastIndexOf("/");
    const dir = slash > 0 ? path.slice(0, slash) : slash === 0 ? "/" : ".";
    const base = path.slice(slash + 1);
    if (!this.#opts.forcePolling) {
      try {
        this.#watcher = Deno.watchFs(dir, { recursive: false });
        const watcher = this.#watcher;
        this.#watchDone = (async () => {
          try {
            for await (const ev of watcher) {
              if (ev.paths.some((p) => p === path || p.endsWith(`/${base}`))) {
                this.#readResolvSoon(path);
              }
            }
          } catch {
            // Closed.
          }
        })();
        return;
      } catch (e) {
        log.info("Cannot watch resolv.conf; polling instead", {
          path,
          error: (e as Error).message,
        });
      }
    }
    const poll = async () => {
      if (this.#closed) return;
      await this.#readResolv(path);
      if (!this.#closed) this.#pollTimer = setTimeout(poll, this.#opts.pollMs ?? 2000);
    };
    this.#pollTimer = setTimeout(poll, this.#opts.pollMs ?? 2000);
  }

  /** (Re)starts the settle timer: the file is read once events stop for a moment. */
  #readResolvSoon(path: string): void {
    if (this.#closed) return;
    clearTimeout(this.#resolvTimer);
    this.#resolvTimer = setTimeout(() => {
      this.#resolvTimer = undefined;
      void this.#readResolv(path);
    }, this.#opts.resolvSettleMs ?? 100);
  }

  /** Reads and judges the file; reads run one after another, so verdicts follow the file's order. */
  #readResolv(path: string): Promise<void> {
    this.#resolvInFlight++;
    this.#resolvChain = this.#resolvChain.then(async () => {
      if (this.#closed || !this.#resolv) return;
      const text = await Deno.readTextFile(path).catch(() => null);
      if (this.#closed) return;
      const verdict = this.#resolv.observe(text, this.#clock.monotonic());
      this.#resolvReads++;
      if (verdict === "changed") this.#note("dns", `[DNS]${path} changed`);
      // New settings, or none: look again shortly to see whether they hold.
      else if (verdict === "settling") this.#readResolvSoon(path);
    }).catch((e) => log.warn("Cannot check resolv.conf", { error: (e as Error).message }))
      .finally(() => this.#resolvInFlight--);
    return this.#resolvChain;
  }

  #note(kind: ChangeKind, line: string): void {
    if (this.#closed) return;
    this.#debouncer.note(this.#clock.monotonic());
    if (!this.#kinds.includes(kind)) this.#kinds.push(kind);
    this.#count++;
    if (this.#samples.length < 5) this.#samples.push(line);
    this.#schedule();
  }

  #schedule(): void {
    clearTimeout(this.#fireTimer);
    const d = this.#debouncer.deadline();
    if (d === null) return;
    this.#fireTimer = setTimeout(() => this.#fire(), Math.max(0, d - this.#clock.monotonic()));
  }

  #fire(): void {
    if (this.#closed) return;
    if (!this.#debouncer.take(this.#clock.monotonic())) {
      this.#schedule();
      return;
    }
    const change: NetworkChange = {
      kinds: this.#kinds,
      count: this.#count,
      samples: this.#samples,
      at: this.#clock.monotonic(),
    };
    this.#kinds = [];
    this.#count = 0;
    this.#samples = [];
    log.debug("Network changed", { kinds: change.kinds, count: change.count });
    for (const fn of [...this.#listeners]) {
      try {
        fn(change);
      } catch (e) {
        log.error("Network change listener failed", { error: (e as Error).message });
      }
    }
  }

  /** Stops the child, the watcher and every timer; waits until they are gone. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#fireTimer);
    clearTimeout(this.#pollTimer);
    clearTimeout(this.#restartTimer);
    clearTimeout(this.#resolvTimer);
    this.#resolvTimer = undefined;
    this.#watcher?.close();
    const child = this.#child;
    if (child) {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await child.status;
    }
    await Promise.all([this.#childDone, this.#watchDone, this.#resolvChain]);
    this.#listeners.clear();
  }
}

/** A fake monitor for tests: `emit` delivers a change to the listeners at once. */
export class FakeNetworkMonitor implements NetworkMonitor {
  readonly #listeners = new Set<(c: NetworkChange) => void>();
  /** True after close(). */
  closed = false;

  /** Registers a listener; returns a function that removes it. */
  subscribe(fn: (change: NetworkChange) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Delivers a change of the given kinds to every listener. */
  emit(kinds: ChangeKind[] = ["address"], at = 0): void {
    const change: NetworkChange = { kinds, count: kinds.length, samples: [], at };
    for (const fn of [...this.#listeners]) fn(change);
  }

  /** Marks the fake closed and drops its listeners. */
  close(): Promise<void> {
    this.closed = true;
    this.#listeners.clear();
    return Promise.resolve();
  }
}
