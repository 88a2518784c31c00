/**
 * Helpers for tunnel tests in network namespaces: two hosts on a veth link,
 * Portcullis `wg up` and wireguard-go peers, and an integrity-checked TCP
 * transfer between them. Everything is owned by a NetnsLab, so it is torn
 * down even when a test fails.
 */
import { type NetnsLab, sh } from "./netns.ts";
import { encodeKey, generatePrivateKey, publicKeyOf } from "../../src/wireguard/mod.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const TOOLS = new URL("./tools/", import.meta.url).pathname;

let ifCounter = 0;

/** A fresh interface name unique to this process (UAPI sockets are global, not per namespace). */
export function ifName(tag: string): string {
  return `pc${tag}${Deno.pid % 1000}${ifCounter++}`.slice(0, 15);
}

/** A key pair as wg(8) prints it. */
export interface KeyPair {
  priv: string;
  pub: string;
}

/** Makes a WireGuard key pair. */
export function keyPair(): KeyPair {
  const k = generatePrivateKey();
  return { priv: encodeKey(k), pub: encodeKey(publicKeyOf(k)) };
}

/** Polls `cond` every 100 ms until it is truthy or `timeoutMs` passes. */
export async function waitFor<T>(
  what: string,
  cond: () => Promise<T> | T,
  timeoutMs = 10_000,
): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ""}`);
}

/** Two namespaces joined by a veth link: a = 192.0.2.1, b = 192.0.2.2. */
export async function twoHosts(lab: NetnsLab): Promise<{ a: string; b: string }> {
  const a = await lab.ns("a");
  const b = await lab.ns("b");
  await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
  return { a, b };
}

/** A running Portcullis `wg up`. */
export interface PortcullisPeer {
  name: string;
  proc: Deno.ChildProcess;
  /** Everything it logged so far. */
  log(): string;
  /** How many times it logged a completed handshake. */
  handshakes(): number;
}

/** Writes `conf` to a temp file and runs `portcullis wg up` on it inside `ns`. */
export async function startPortcullis(
  lab: NetnsLab,
  ns: string,
  name: string,
  conf: string,
  env: Record<string, string> = {},
): Promise<PortcullisPeer> {
  const dir = await Deno.makeTempDir({ prefix: "pcwg" });
  lab.defer(() => Deno.remove(dir, { recursive: true }));
  const file = `${dir}/${name}.conf`;
  await Deno.writeTextFile(file, conf, { mode: 0o600 });
  const proc = new Deno.Command("ip", {
    args: ["netns", "exec", ns, Deno.execPath(), "run", "-A", MAIN, "wg", "up", file],
    env: { PORTCULLIS_LOG_LEVEL: "debug", ...env },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  lab.defer(async () => {
    try {
      proc.kill("SIGTERM");
    } catch { /* gone */ }
    await Promise.race([proc.status, new Promise((r) => setTimeout(r, 5000))]);
    try {
      proc.kill("SIGKILL");
    } catch { /* gone */ }
  });
  let text = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const d = new TextDecoder();
    for await (const c of s) text += d.decode(c, { stream: true });
  };
  pump(proc.stdout).catch(() => {});
  pump(proc.stderr).catch(() => {});
  const peer: PortcullisPeer = {
    name,
    proc,
    log: () => text,
    handshakes: () => (text.match(/Peer handshake complete/g) ?? []).length,
  };
  await waitFor(`${name} to come up`, () => {
    if (text.includes("Error") && !text.includes("is up")) throw new Error(text);
    return text.includes("is up");
  }, 15_000);
  return peer;
}

/** Starts wireguard-go as `name` inside `ns` and configures it with wg(8); returns its process. */
export async function startWireguardGo(
  lab: NetnsLab,
  ns: string,
  name: string,
  opts: {
    key: KeyPair;
    listenPort: number;
    address: string;
    peer: { pub: string; allowedIps: string; endpoint?: string; psk?: string };
  },
): Promise<Deno.ChildProcess> {
  const proc = lab.spawn(ns, ["env", "WG_PROCESS_FOREGROUND=1", "wireguard-go", name]);
  await waitFor(
    `wireguard-go ${name}`,
    async () => (await lab.exec(ns, ["ip", "link", "show", name], { check: false })).code === 0,
  );
  const dir = await Deno.makeTempDir({ prefix: "pcwgo" });
  lab.defer(() => Deno.remove(dir, { recursive: true }));
  await Deno.writeTextFile(`${dir}/key`, opts.key.priv, { mode: 0o600 });
  const args = [
    "wg",
    "set",
    name,
    "private-key",
    `${dir}/key`,
    "listen-port",
    String(opts.listenPort),
    "peer",
    opts.peer.pub,
    "allowed-ips",
    opts.peer.allowedIps,
  ];
  if (opts.peer.endpoint) args.push("endpoint", opts.peer.endpoint);
  if (opts.peer.psk) {
    await Deno.writeTextFile(`${dir}/psk`, opts.peer.psk, { mode: 0o600 });
    args.push("preshared-key", `${dir}/psk`);
  }
  await lab.exec(ns, args);
  await lab.exec(ns, ["ip", "addr", "add", opts.address, "dev", name]);
  await lab.exec(ns, ["ip", "link", "set", name, "mtu", "1420", "up"]);
  return proc;
}

/** Builds a wg-quick file. */
export function wgQuick(opts: {
  key: KeyPair;
  address: string;
  listenPort?: number;
  extra?: string[];
  peer: { pub: string; allowedIps: string; endpoint?: string; psk?: string; extra?: string[] };
}): string {
  const lines = ["[Interface]", `PrivateKey = ${opts.key.priv}`, `Address = ${opts.address}`];
  if (opts.listenPort) lines.push(`ListenPort = ${opts.listenPort}`);
  lines.push(...(opts.extra ?? []));
  lines.push("", "[Peer]", `PublicKey = ${opts.peer.pub}`, `AllowedIPs = ${opts.peer.allowedIps}`);
  if (opts.peer.endpoint) lines.push(`Endpoint = ${opts.peer.endpoint}`);
  if (opts.peer.psk) lines.push(`PresharedKey = ${opts.peer.psk}`);
  lines.push(...(opts.peer.extra ?? []));
  return lines.join("\n") + "\n";
}

/** Pings `ip` from `ns`; resolves with the ping output or throws if nothing came back. */
export async function ping(lab: NetnsLab, ns: string, ip: string, count = 3): Promise<string> {
  const r = await lab.exec(ns, ["ping", "-c", String(count), "-i", "0.2", "-W", "2", ip], {
    check: false,
  });
  if (!/ (\d+) received/.test(r.stdout) || / 0 received/.test(r.stdout)) {
    throw new Error(`No ping replies from ${ip} in ${ns}: ${r.stdout}${r.stderr}`);
  }
  return r.stdout;
}

/**
 * Sends `bytes` of pseudo-random data over TCP from `fromNs` to `toIp:port` in
 * `toNs` and returns both sides' SHA-256 and byte counts.
 */
export async function transfer(
  lab: NetnsLab,
  fromNs: string,
  toNs: string,
  toIp: string,
  bytes: number,
  opts: { port?: number; rate?: number } = {},
): Promise<{ sent: string; received: string }> {
  const port = opts.port ?? 5001;
  const sink = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      toNs,
      Deno.execPath(),
      "run",
      "-A",
      `${TOOLS}tcp_sink.ts`,
      "0.0.0.0",
      String(port),
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  lab.defer(() => {
    try {
      sink.kill("SIGKILL");
    } catch { /* gone */ }
  });
  const reader = sink.stdout.getReader();
  const dec = new TextDecoder();
  let out = "";
  while (!out.includes("listening")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("TCP sink exited before listening");
    out += dec.decode(value);
  }
  const src = await lab.exec(fromNs, [
    Deno.execPath(),
    "run",
    "-A",
    `${TOOLS}tcp_source.ts`,
    toIp,
    String(port),
    String(bytes),
    "7",
    String(opts.rate ?? 0),
  ]);
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    out += dec.decode(value);
  }
  await sink.status;
  const received = out.replace("listening", "").trim();
  return { sent: src.stdout.trim(), received };
}

/** Exposes sh for tests that need a host-level command. */
export { sh };
