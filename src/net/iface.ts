/**
 * Interface, route and policy-rule configuration through iproute2's `ip`,
 * run with argument arrays (never a shell).
 *
 * Every change is recorded with its inverse, so `undoAll()` removes exactly
 * what this instance added — nothing the administrator set up — and can be
 * called again safely. Policy rules matter because the tunnel's own UDP
 * packets carry an fwmark (SO_MARK) and `ip rule add fwmark X lookup main`
 * lets them bypass the routes that point into the tunnel.
 *
 * NetConfig is the seam; IpNetConfig is the real one, FakeNetConfig records
 * calls for tests of the code that decides what to configure.
 */
import { PortcullisError } from "../errors.ts";
import { ipFamily } from "./sockaddr.ts";
import { tiedCommand } from "./tied_command.ts";

/** Options for a route. */
export interface RouteOptions {
  /** Output interface. */
  dev?: string;
  /** Gateway address. */
  via?: string;
  /** Preferred source address. */
  src?: string;
  /** Routing table number or name ("main"). */
  table?: number | string;
  /** Route metric (priority). */
  metric?: number;
}

/** A policy routing rule. */
export interface RuleOptions {
  /** Match packets with this firewall mark. */
  fwmark?: number;
  /** Mask for fwmark. */
  mask?: number;
  /** Match a source prefix. */
  from?: string;
  /** Match a destination prefix. */
  to?: string;
  /** Table to look up ("main" or a number). */
  table: number | string;
  /** Rule priority (lower first). */
  priority?: number;
  /** Invert the match. */
  not?: boolean;
  /** Address family the rule applies to (default 4). */
  family?: 4 | 6;
  /** Ignore routes with prefix length <= N from the table (e.g. 0 to skip default routes). */
  suppressPrefixlength?: number;
}

/** Configures interfaces, routes and rules; remembers what it added. */
export interface NetConfig {
  /** Adds `cidr` ("10.0.0.1/24") to interface `dev`. */
  addAddress(dev: string, cidr: string): Promise<void>;
  /** Removes `cidr` from `dev`. */
  removeAddress(dev: string, cidr: string): Promise<void>;
  /** Sets the MTU and/or up/down state of `dev`. */
  setLink(dev: string, opts: { mtu?: number; up?: boolean }): Promise<void>;
  /** Adds a route to `dest` ("0.0.0.0/0", "10.1.0.0/16", "default"). */
  addRoute(dest: string, opts: RouteOptions): Promise<void>;
  /** Removes a route added with the same options. */
  removeRoute(dest: string, opts: RouteOptions): Promise<void>;
  /** Adds many routes in one go; returns descriptions of those that failed. */
  addRoutes(routes: { dest: string; opts: RouteOptions }[]): Promise<string[]>;
  /** Removes many routes in one go; returns descriptions of those that failed. */
  removeRoutes(routes: { dest: string; opts: RouteOptions }[]): Promise<string[]>;
  /** Adds a policy rule. */
  addRule(opts: RuleOptions): Promise<void>;
  /** Removes a policy rule added with the same options. */
  removeRule(opts: RuleOptions): Promise<void>;
  /** Removes everything added through this instance, newest first; idempotent. */
  undoAll(): Promise<void>;
}

/** A network configuration command failed. */
export class NetConfigError extends PortcullisError {
  /** The argument list given to `ip`. */
  readonly args: string[];
  constructor(message: string, args: string[]) {
    super("net_config_failed", message, 500);
    this.args = args;
  }
}

const DEV_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const TABLE_RE = /^(main|local|default|\d{1,10})$/;

function bad(what: string, value: unknown, why: string): never {
  throw new NetConfigError(`Cannot use ${what} "${value}": ${why}`, []);
}

/**
 * `ip -batch` joins arguments with spaces and commands with newlines, so a
 * space, newline or `%` (IPv6 zone, accepted by the address parser) inside
 * one argument would smuggle in another argument or command.
 */
const UNSAFE_RE = /[%\s]/;

function checkToken(what: string, value: string): void {
  if (UNSAFE_RE.test(value)) bad(what, value, "must not contain '%', spaces or line breaks");
}

function checkAddress(what: string, value: string): void {
  checkToken(what, value);
  if (!ipFamily(value)) bad(what, value, "not an IP address");
}

/** Last line of defence: no argument that reaches `ip` may split into two. */
function checkArgs(args: string[]): void {
  for (const a of args) checkToken("argument", a);
}

function checkDev(dev: string): void {
  if (!DEV_RE.test(dev)) bad("interface name", dev, "expected 1-15 letters, digits, '_', '-', '.'");
}

function checkCidr(cidr: string, allowDefault = false): void {
  if (allowDefault && cidr === "default") return;
  checkToken("prefix", cidr);
  const [addr, len, extra] = cidr.split("/");
  const fam = ipFamily(addr ?? "");
  const max = fam === 4 ? 32 : 128;
  const n = len === undefined ? max : Number(len);
  if (!fam || extra !== undefined || !/^\d{1,3}$/.test(len ?? String(max)) || n > max) {
    bad("prefix", cidr, "expected ADDRESS/LENGTH, e.g. 10.0.0.1/24");
  }
}

function checkUint(what: string, v: number | undefined, max = 0xffffffff): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > max)) {
    bad(what, v, `expected 0-${max}`);
  }
}

/** Builds the `ip route` arguments after the verb. */
export function routeArgs(dest: string, o: RouteOptions): string[] {
  checkCidr(dest, true);
  const a = [dest];
  if (o.via !== undefined) {
    checkAddress("gateway", o.via);
    a.push("via", o.via);
  }
  if (o.dev !== undefined) {
    checkDev(o.dev);
    a.push("dev", o.dev);
  }
  if (o.src !== undefined) {
    checkAddress("source address", o.src);
    a.push("src", o.src);
  }
  if (o.table !== undefined) {
    if (!TABLE_RE.test(String(o.table))) bad("routing table", o.table, "expected a number or main");
    a.push("table", String(o.table));
  }
  checkUint("metric", o.metric);
  if (o.metric !== undefined) a.push("metric", String(o.metric));
  return a;
}

/** Builds the `ip rule` arguments after the verb ("from … fwmark … lookup … priority …"). */
export function ruleArgs(o: RuleOptions): string[] {
  const a: string[] = [];
  if (o.not) a.push("not");
  if (o.from !== undefined) {
    checkCidr(o.from);
    a.push("from", o.from);
  }
  if (o.to !== undefined) {
    checkCidr(o.to);
    a.push("to", o.to);
  }
  checkUint("fwmark", o.fwmark);
  checkUint("fwmark mask", o.mask);
  if (o.fwmark !== undefined) {
    a.push(
      "fwmark",
      o.mask !== undefined
        ? `0x${o.fwmark.toString(16)}/0x${o.mask.toString(16)}`
        : `0x${o.fwmark.toString(16)}`,
    );
  }
  if (!TABLE_RE.test(String(o.table))) bad("routing table", o.table, "expected a number or main");
  a.push("lookup", String(o.table));
  checkUint("suppress_prefixlength", o.suppressPrefixlength, 128);
  if (o.suppressPrefixlength !== undefined) {
    a.push("suppress_prefixlength", String(o.suppressPrefixlength));
  }
  checkUint("rule priority", o.priority);
  if (o.priority !== undefined) a.push("priority", String(o.priority));
  return a;
}

interface Change {
  key: string;
  undo: string[];
  what: string;
}

/** Runs `ip` with argument arrays; shared bookkeeping for the real and the fake. */
abstract class RecordingNetConfig implements NetConfig {
  #changes: Change[] = [];

  /** Runs one `ip` invocation; resolves with stderr on failure, null on success. */
  protected abstract exec(args: string[]): Promise<string | null>;

  /**
   * Runs several invocations; resolves with one result per command (error
   * text or null). The real one uses a single `ip -force -batch -` process.
   */
  protected async execMany(list: string[][]): Promise<(string | null)[]> {
    const out: (string | null)[] = [];
    for (const args of list) out.push(await this.exec(args));
    return out;
  }

  /**
   * Adds many routes at once (one process, not one per route: a policy can
   * hold a hundred prefixes, and traffic is unprotected until they are in).
   * Routes that fail are skipped and described in the result; the others are
   * recorded for undoAll().
   */
  async addRoutes(routes: { dest: string; opts: RouteOptions }[]): Promise<string[]> {
    const argsList = routes.map((r) => ["route", "add", ...routeArgs(r.dest, r.opts)]);
    argsList.forEach(checkArgs);
    const results = await this.execMany(argsList);
    const failed: string[] = [];
    results.forEach((err, i) => {
      const a = argsList[i].slice(2);
      if (err === null) {
        this.#record(`route ${a.join(" ")}`, ["route", "del", ...a], `route ${a.join(" ")}`);
      } else failed.push(`${routes[i].dest}: ${err.trim() || "failed"}`);
    });
    return failed;
  }

  /**
   * Removes many routes at once (one process): withdrawing a hundred routes
   * one `ip` call at a time takes long enough for connections to notice.
   * Routes already gone are not errors; returns descriptions of real failures.
   */
  async removeRoutes(routes: { dest: string; opts: RouteOptions }[]): Promise<string[]> {
    const argsList = routes.map((r) => ["route", "del", ...routeArgs(r.dest, r.opts)]);
    argsList.forEach(checkArgs);
    const results = await this.execMany(argsList);
    const failed: string[] = [];
    results.forEach((err, i) => {
      this.#forget(`route ${argsList[i].slice(2).join(" ")}`);
      if (err !== null && !/No such process|not found|does not exist/i.test(err)) {
        failed.push(`${routes[i].dest}: ${err.trim() || "failed"}`);
      }
    });
    return failed;
  }

  async #run(args: string[], what: string): Promise<void> {
    checkArgs(args);
    const err = await this.exec(args);
    if (err !== null) {
      throw new NetConfigError(
        `Cannot ${what} (ip ${args.join(" ")}): ${err.trim() || "failed"}`,
        args,
      );
    }
  }

  #record(key: string, undo: string[], what: string): void {
    this.#changes.push({ key, undo, what });
  }

  #forget(key: string): void {
    const i = this.#changes.findLastIndex((c) => c.key === key);
    if (i >= 0) this.#changes.splice(i, 1);
  }

  /** What undoAll() would remove, oldest first (for diagnostics). */
  recorded(): string[] {
    return this.#changes.map((c) => c.what);
  }

  async addAddress(dev: string, cidr: string): Promise<void> {
    checkDev(dev);
    checkCidr(cidr);
    await this.#run(["addr", "add", cidr, "dev", dev], `add address ${cidr} to "${dev}"`);
    this.#record(
      `addr ${cidr} ${dev}`,
      ["addr", "del", cidr, "dev", dev],
      `address ${cidr} on ${dev}`,
    );
  }

  async removeAddress(dev: string, cidr: string): Promise<void> {
    checkDev(dev);
    checkCidr(cidr);
    await this.#run(["addr", "del", cidr, "dev", dev], `remove address ${cidr} from "${dev}"`);
    this.#forget(`addr ${cidr} ${dev}`);
  }

  async setLink(dev: string, opts: { mtu?: number; up?: boolean }): Promise<void> {
    checkDev(dev);
    checkUint("MTU", opts.mtu, 65535);
    if (opts.mtu !== undefined && opts.mtu < 68) bad("MTU", opts.mtu, "expected 68-65535");
    const args = ["link", "set", "dev", dev];
    if (opts.mtu !== undefined) args.push("mtu", String(opts.mtu));
    if (opts.up !== undefined) args.push(opts.up ? "up" : "down");
    const parts = [
      opts.mtu !== undefined ? `MTU ${opts.mtu}` : "",
      opts.up !== undefined ? (opts.up ? "up" : "down") : "",
    ]
      .filter(Boolean).join(" and ");
    await this.#run(args, `set ${parts || "nothing"} on "${dev}"`);
  }

  async addRoute(dest: string, opts: RouteOptions): Promise<void> {
    const a = routeArgs(dest, opts);
    const fam = dest === "default" ? (opts.via && ipFamily(opts.via) === 6 ? ["-6"] : []) : [];
    await this.#run([...fam, "route", "add", ...a], `add route ${dest}`);
    this.#record(`route ${a.join(" ")}`, [...fam, "route", "del", ...a], `route ${a.join(" ")}`);
  }

  async removeRoute(dest: string, opts: RouteOptions): Promise<void> {
    const a = routeArgs(dest, opts);
    const fam = dest === "default" ? (opts.via && ipFamily(opts.via) === 6 ? ["-6"] : []) : [];
    await this.#run([...fam, "route", "del", ...a], `remove route ${dest}`);
    this.#forget(`route ${a.join(" ")}`);
  }

  async addRule(opts: RuleOptions): Promise<void> {
    const m = ruleArgs(opts);
    const fam = opts.family === 6 ? "-6" : "-4";
    await this.#run([fam, "rule", "add", ...m], `add rule ${m.join(" ")}`);
    this.#record(
      `rule ${fam} ${m.join(" ")}`,
      [fam, "rule", "del", ...m],
      `rule ${fam} ${m.join(" ")}`,
    );
  }

  async removeRule(opts: RuleOptions): Promise<void> {
    const m = ruleArgs(opts);
    const fam = opts.family === 6 ? "-6" : "-4";
    await this.#run([fam, "rule", "del", ...m], `remove rule ${m.join(" ")}`);
    this.#forget(`rule ${fam} ${m.join(" ")}`);
  }

  /**
   * Undoes every recorded change, newest first. Changes already gone (the
   * interface was deleted, someone removed the route) are not errors; other
   * failures are collected and thrown together after trying everything.
   */
  async undoAll(): Promise<void> {
    const changes = this.#changes.reverse();
    this.#changes = [];
    const results = await this.execMany(changes.map((c) => c.undo));
    const errors: string[] = [];
    results.forEach((err, i) => {
      if (
        err !== null &&
        !/No such|Cannot find device|Cannot assign requested address|does not exist|not found/i
          .test(err)
      ) {
        errors.push(`${changes[i].what}: ${err.trim()}`);
      }
    });
    if (errors.length) {
      throw new NetConfigError(`Cannot undo every network change: ${errors.join("; ")}`, []);
    }
  }
}

/** Runs the real `ip`, optionally inside a network namespace (`ip -n NS`). */
export class IpNetConfig extends RecordingNetConfig {
  readonly #prefix: string[];
  readonly #ip: string;

  /** `netns` runs every command in that namespace; `ipPath` defaults to "ip". */
  constructor(opts: { netns?: string; ipPath?: string } = {}) {
    super();
    this.#ip = opts.ipPath ?? "ip";
    this.#prefix = opts.netns ? ["-n", opts.netns] : [];
  }

  protected async exec(args: string[]): Promise<string | null> {
    const out = await tiedCommand(this.#ip, {
      args: [...this.#prefix, ...args],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    return out.code === 0 ? null : new TextDecoder().decode(out.stderr) || `exit code ${out.code}`;
  }

  protected override async execMany(list: string[][]): Promise<(string | null)[]> {
    // Global options (-4, -6) cannot appear inside a batch: run those alone,
    // batch each stretch of the others, keeping the order.
    const results: (string | null)[] = [];
    let i = 0;
    while (i < list.length) {
      if (list[i][0].startsWith("-")) {
        results.push(await this.exec(list[i++]));
        continue;
      }
      let j = i;
      while (j < list.length && !list[j][0].startsWith("-")) j++;
      results.push(...await this.#batch(list.slice(i, j)));
      i = j;
    }
    return results;
  }

  async #batch(list: string[][]): Promise<(string | null)[]> {
    if (list.length === 1) return [await this.exec(list[0])];
    // -force: keep going after a failed line; failures are reported as
    // "<message>\nCommand failed -:<line>" on stderr.
    const p = tiedCommand(this.#ip, {
      args: [...this.#prefix, "-force", "-batch", "-"],
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(list.map((a) => a.join(" ")).join("\n") + "\n"));
    await w.close();
    const out = await p.output();
    const results: (string | null)[] = list.map(() => null);
    let pending: string[] = [];
    for (const line of new TextDecoder().decode(out.stderr).split("\n")) {
      const m = line.match(/^Command failed -:(\d+)/);
      if (m) {
        const i = Number(m[1]) - 1;
        if (i >= 0 && i < results.length) results[i] = pending.join("\n") || "failed";
        pending = [];
      } else if (line.trim()) pending.push(line);
    }
    return results;
  }
}

/** Records `ip` argument lists instead of running them; `failWith` makes matching calls fail. */
export class FakeNetConfig extends RecordingNetConfig {
  /** Every argument list, in order (undo commands included). */
  readonly calls: string[][] = [];
  /** Returns an error text for calls that should fail, or null. */
  failWith: (args: string[]) => string | null = () => null;

  protected exec(args: string[]): Promise<string | null> {
    this.calls.push(args);
    return Promise.resolve(this.failWith(args));
  }
}
