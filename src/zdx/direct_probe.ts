/**
 * The direct web probe, for comparison with the tunnelled one: the same URL
 * fetched outside the tunnel, over the physical interface that holds the
 * default route.
 *
 * Why curl: leaving the tunnel's routes needs the socket bound to that
 * interface (SO_BINDTODEVICE: the kernel's route lookup then only takes
 * routes out of it, so the tunnel's more specific ones are skipped), and
 * Deno's sockets cannot be bound to a device — an FFI socket could, but TLS
 * could not run over it. curl (Debian's `curl`) binds with `--interface` and
 * reports each phase from its own socket events (`-w '%{json}'`:
 * time_namelookup, time_connect, time_appconnect, time_starttransfer,
 * time_total, cumulative seconds), so the phases are measured, not guessed,
 * like the tunnelled probe's. The connector runs as root, which binding to
 * a device requires. Never throws.
 */
import { isIp, type WebProbeResult, type WebProbeTarget } from "./web_probe.ts";

/** One direct result: the web probe's, plus the interface it left by. */
export interface DirectProbeResult extends WebProbeResult {
  /** The physical interface used (null: none found, the probe did not run). */
  via: string | null;
}

/** Runs a command, returning its exit code and output (injected in tests). */
export type RunFn = (
  cmd: string,
  args: string[],
  timeoutMs: number,
) => Promise<{ code: number; stdout: string; stderr: string }>;

/** The real runner: Deno.Command, killed when the time is up. */
export const runCommand: RunFn = async (cmd, args, timeoutMs) => {
  const child = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutMs);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
};

/** Interface names as iproute2 accepts them (no option or path look-alikes). */
const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,14}$/;

/**
 * The interface of the main table's default route that is not ours (the
 * tunnel's) and is not loopback; null when there is none.
 */
export async function physicalInterface(
  ourInterface: string,
  run: RunFn = runCommand,
): Promise<string | null> {
  const out = await run("ip", ["-j", "route", "show", "default", "table", "main"], 3000)
    .catch(() => null);
  if (!out || out.code !== 0) return null;
  let routes: { dev?: string; metric?: number }[];
  try {
    routes = JSON.parse(out.stdout);
  } catch {
    return null;
  }
  const devs = routes
    .filter((r) => typeof r.dev === "string" && r.dev !== ourInterface && r.dev !== "lo")
    .sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0))
    .map((r) => r.dev!);
  return devs.find((d) => IFNAME.test(d)) ?? null;
}

const r1 = (s: number) => Math.round(s * 10000) / 10;

/** Fetches `t.url` bound to interface `via` and reads curl's own phase timings. */
export async function probeWebDirect(
  t: WebProbeTarget,
  via: string | null,
  o: { run?: RunFn; now?: () => number } = {},
): Promise<DirectProbeResult> {
  const at = (o.now ?? Date.now)();
  const fail = (error: string): DirectProbeResult => ({
    url: t.url,
    at,
    ok: false,
    status: null,
    bytes: 0,
    address: null,
    phases: null,
    error,
    via,
  });
  if (via === null) return fail("no physical interface with a default route");
  if (!IFNAME.test(via)) return fail(`not an interface name: ${JSON.stringify(via.slice(0, 32))}`);
  const timeoutMs = t.timeoutMs ?? 10_000;
  const args = [
    "--interface",
    via,
    "--silent",
    "--show-error",
    "--output",
    "/dev/null",
    "--max-time",
    String(Math.max(1, timeoutMs / 1000)),
    "--write-out",
    "%{json}",
    // One fresh connection, as the tunnelled probe does; a redirect is not followed.
    "--header",
    "Connection: close",
    "--",
    t.url,
  ];
  let out;
  try {
    out = await (o.run ?? runCommand)("curl", args, timeoutMs + 2000);
  } catch (e) {
    return fail(`cannot run curl: ${(e as Error).message}`);
  }
  let w: Record<string, unknown>;
  try {
    w = JSON.parse(out.stdout);
  } catch {
    return fail(out.stderr.trim().split("\n").at(-1) || `curl exited with ${out.code}`);
  }
  const num = (k: string) => (typeof w[k] === "number" ? w[k] as number : 0);
  const status = num("http_code") || null;
  const ip = typeof w.remote_ip === "string" && w.remote_ip ? w.remote_ip : null;
  const port = num("remote_port");
  const address = ip ? `${ip.includes(":") ? `[${ip}]` : ip}:${port}` : null;
  if (out.code !== 0 || status === null) {
    const why = typeof w.errormsg === "string" && w.errormsg
      ? w.errormsg
      : out.stderr.trim() || `curl exited with ${out.code}`;
    return { ...fail(why), address };
  }
  // An address needs no lookup: its DNS phase is 0, as the tunnelled probe
  // has it (curl still reports a few tenths of a millisecond of its own
  // setup as name lookup, and they belong to connecting).
  const literal = isIp(URL.parse(t.url)?.hostname ?? "");
  const [dns, connect, tls, first, total] = [
    literal ? 0 : num("time_namelookup"),
    num("time_connect"),
    num("time_appconnect"),
    num("time_starttransfer"),
    num("time_total"),
  ];
  const secured = tls > 0 ? tls : connect;
  return {
    url: t.url,
    at,
    ok: status < 400,
    status,
    bytes: num("size_download"),
    address,
    phases: {
      dns: r1(dns),
      connect: r1(Math.max(0, connect - dns)),
      tls: r1(Math.max(0, tls > 0 ? tls - connect : 0)),
      ttfb: r1(Math.max(0, first - secured)),
      total: r1(total),
    },
    error: null,
    via,
  };
}
