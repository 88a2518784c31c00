/**
 * Collects the facts trusted-network detection needs (src/policy/trusted_network.ts)
 * from the real system: resolv.conf, `ip -j route` / `ip -j addr`, DNS
 * lookups with a timeout, TLS beacon fingerprints, and whether another VPN
 * holds the default route.
 *
 * Mechanism only: nothing here decides whether a network is trusted. The
 * egress address comes from the edge and is passed in. Every probe has a
 * timeout so a dead network cannot stall re-evaluation; a failed probe is
 * recorded as a fact (an empty answer or an Error) rather than thrown.
 */
import { parseResolvConf as parseResolvConfText } from "../../net/resolv_conf.ts";
import * as tls from "node:tls";
import type { NetworkFacts } from "../../policy/trusted_network.ts";
import { beaconKey } from "../../policy/trusted_network.ts";
import { canonicalIp, tryParseIp } from "../../policy/cidr.ts";
import { RESOLV_CONF_MARKER } from "../dns/resolv_conf.ts";

/** Nameservers and search domains from a resolv.conf. */
export interface ResolvConf {
  nameservers: string[];
  search: string[];
}

/** One route from `ip -j route`. */
export interface RouteFact {
  /** "default" or a CIDR ("10.0.0.0/24"); host routes come without a length. */
  dst: string;
  gateway?: string;
  dev?: string;
  table?: string;
  family: 4 | 6;
}

/** One interface from `ip -j addr`. */
export interface InterfaceFact {
  name: string;
  up: boolean;
  /** "ether", "none" (tun, wireguard), "ppp", "loopback", ... */
  linkType: string;
  /** Addresses in CIDR form with their scope. */
  addresses: { cidr: string; scope: string }[];
}

/** What to probe, besides the always-collected facts. */
export interface FactsRequest {
  /** Hostnames whose addresses the criteria name. */
  hostnames?: readonly string[];
  /** TLS beacons to fingerprint. */
  beacons?: readonly { host: string; port: number }[];
  /** Our own tunnel interface: never counted as another VPN, its addresses ignored. */
  ourInterface?: string;
  /** Our public address as the edge reported it. */
  egressIp?: string;
}

/** Anything that can produce NetworkFacts (the real system or a fake). */
export interface NetworkFactsSource {
  /** Gathers the facts now. */
  collect(req: FactsRequest): Promise<NetworkFacts>;
}

/** Parses resolv.conf into facts: nameservers as canonical, unique addresses; search domains lowercased. */
export function parseResolvConf(text: string): { nameservers: string[]; search: string[] } {
  const raw = parseResolvConfText(text);
  const nameservers: string[] = [];
  for (const n of raw.nameservers) {
    // Strip a zone ("fe80::1%eth0") before validation; keep only real addresses.
    const ip = canonicalIp(n.split("%")[0]);
    if (ip && !nameservers.includes(ip)) nameservers.push(ip);
  }
  const search = raw.search.map((d) => d.toLowerCase().replace(/\.$/, "")).filter(Boolean);
  return { nameservers, search };
}

function asArray(json: unknown, what: string): Record<string, unknown>[] {
  if (!Array.isArray(json)) throw new Error(`Cannot read ${what}: expected a JSON array`);
  return json.filter((x): x is Record<string, unknown> => typeof x === "object" && x !== null);
}

/** Parses the JSON of `ip -j route` (one family per call). */
export function parseIpRoutes(json: unknown, family: 4 | 6): RouteFact[] {
  return asArray(json, "routes").map((r) => {
    const fact: RouteFact = { dst: String(r.dst ?? ""), family };
    if (typeof r.gateway === "string") fact.gateway = r.gateway;
    if (typeof r.dev === "string") fact.dev = r.dev;
    if (typeof r.table === "string") fact.table = r.table;
    return fact;
  }).filter((r) => r.dst !== "");
}

/**
 * Reads the resolv.conf that describes the network. When our own split DNS
 * has pointed resolv.conf at its stub (the file starts with our marker), the
 * network's real nameservers are in the backup next to it; reading the stub
 * address instead would make every DNS-server criterion fail while tunnelled.
 */
export async function readNetworkResolvConf(path: string): Promise<string> {
  const text = await Deno.readTextFile(path).catch(() => "");
  if (!text.startsWith(RESOLV_CONF_MARKER)) return text;
  try {
    const backup = JSON.parse(await Deno.readTextFile(`${path}.portcullis-backup`));
    if (backup?.kind === "file" && typeof backup.content === "string") {
      return new TextDecoder().decode(
        Uint8Array.from(atob(backup.content), (c) => c.charCodeAt(0)),
      );
    }
    if (backup?.kind === "symlink" && typeof backup.target === "string") {
      const target = backup.target.startsWith("/")
        ? backup.target
        : `${path.slice(0, path.lastIndexOf("/") + 1)}${backup.target}`;
      return await Deno.readTextFile(target).catch(() => "");
    }
  } catch {
    // No readable backup: the stub file is all we know.
  }
  return text;
}

/** Parses the JSON of `ip -j addr`. */
export function parseIpAddrs(json: unknown): InterfaceFact[] {
  return asArray(json, "interfaces").map((i) => {
    const flags = Array.isArray(i.flags) ? i.flags.map(String) : [];
    const infos = Array.isArray(i.addr_info) ? i.addr_info : [];
    const addresses: { cidr: string; scope: string }[] = [];
    for (const a of infos as Record<string, unknown>[]) {
      const ip = typeof a.local === "string" ? canonicalIp(a.local) : null;
      if (ip && typeof a.prefixlen === "number") {
        addresses.push({ cidr: `${ip}/${a.prefixlen}`, scope: String(a.scope ?? "global") });
      }
    }
    return {
      name: String(i.ifname ?? ""),
      up: flags.includes("UP"),
      linkType: String(i.link_type ?? ""),
      addresses,
    };
  }).filter((i) => i.name !== "");
}

const VPN_NAME = /^(tun|tap|wg|ppp|utun|ipsec|vti|gpd|cscotun|nordlynx|tailscale|zt)/i;
const DEFAULTISH = new Set(["default", "0.0.0.0/0", "0.0.0.0/1", "128.0.0.0/1", "::/0", "::/1"]);

function isDefaultish(dst: string): boolean {
  return DEFAULTISH.has(dst) || dst === "8000::/1";
}

/**
 * Names the VPN interface (not ours) that holds a default route, if any. A
 * VPN is an interface with a tunnel-like link type (none, ppp) or name; a
 * default route is "default" or the two /1 halves VPNs use to override it,
 * in any routing table.
 */
export function detectVpnDefaultRoute(
  routes: readonly RouteFact[],
  interfaces: readonly InterfaceFact[],
  ourInterface?: string,
): string | undefined {
  const byName = new Map(interfaces.map((i) => [i.name, i]));
  for (const r of routes) {
    if (!r.dev || r.dev === ourInterface || !isDefaultish(r.dst)) continue;
    const iface = byName.get(r.dev);
    if (iface && !iface.up) continue;
    const tunnelLike = iface ? ["none", "ppp"].includes(iface.linkType) : false;
    if (tunnelLike || VPN_NAME.test(r.dev)) return r.dev;
  }
  return undefined;
}

/** Gateways of the default routes in the main table, canonical, without duplicates. */
export function defaultGateways(routes: readonly RouteFact[]): string[] {
  const out: string[] = [];
  for (const r of routes) {
    if (r.dst !== "default" || !r.gateway || (r.table && r.table !== "main")) continue;
    const g = canonicalIp(r.gateway);
    if (g && !out.includes(g)) out.push(g);
  }
  return out;
}

/** Interface addresses worth matching against network ranges (not loopback, not ours). */
export function localAddresses(
  interfaces: readonly InterfaceFact[],
  ourInterface?: string,
): string[] {
  const out: string[] = [];
  for (const i of interfaces) {
    if (i.name === ourInterface || i.linkType === "loopback") continue;
    for (const a of i.addresses) if (a.scope !== "host") out.push(a.cidr);
  }
  return out;
}

/** Resolves A and AAAA records with a timeout; an unresolvable name gives []. */
export async function resolveHost(
  hostname: string,
  opts: { timeoutMs?: number; nameServer?: { ipAddr: string; port?: number } } = {},
): Promise<string[]> {
  if (tryParseIp(hostname)) return [canonicalIp(hostname) as string];
  const signal = AbortSignal.timeout(opts.timeoutMs ?? 2000);
  const one = async (type: "A" | "AAAA") => {
    try {
      return await Deno.resolveDns(hostname, type, { signal, nameServer: opts.nameServer });
    } catch {
      return [] as string[];
    }
  };
  const [a, aaaa] = await Promise.all([one("A"), one("AAAA")]);
  return [...a, ...aaaa].map((x) => canonicalIp(x) ?? x);
}

/**
 * Connects to host:port over TLS and returns the SHA-256 (hex) of the leaf
 * certificate's DER. The chain is not verified on purpose: the beacon is
 * identified by this exact hash, which is stronger than any CA check.
 */
export function tlsFingerprint(
  host: string,
  port: number,
  opts: { timeoutMs?: number; servername?: string } = {},
): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? 3000;
  const target = beaconKey(host, port);
  return new Promise<string>((resolve, reject) => {
    let settled = false;
    const isIp = tryParseIp(host) !== null;
    const socket = tls.connect({
      host,
      port,
      rejectUnauthorized: false,
      servername: opts.servername ?? (isIp ? undefined : host),
    });
    const finish = (err: Error | null, value?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value as string);
    };
    const timer = setTimeout(
      () =>
        finish(
          new Error(`Cannot fingerprint TLS beacon ${target}: timed out after ${timeoutMs} ms`),
        ),
      timeoutMs,
    );
    socket.once("secureConnect", async () => {
      try {
        const raw = socket.getPeerCertificate()?.raw as Uint8Array | undefined;
        if (!raw || raw.length === 0) {
          finish(new Error(`Cannot fingerprint TLS beacon ${target}: no certificate presented`));
          return;
        }
        const digest = new Uint8Array(
          await crypto.subtle.digest("SHA-256", new Uint8Array(raw)),
        );
        finish(null, Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""));
      } catch (e) {
        finish(new Error(`Cannot fingerprint TLS beacon ${target}: ${(e as Error).message}`));
      }
    });
    socket.once("error", (e: Error) => {
      finish(new Error(`Cannot fingerprint TLS beacon ${target}: ${e.message}`));
    });
  });
}

/** Runs `ip [-n NS] -j ARGS` and parses its JSON output. */
export async function ipJson(args: readonly string[], netns?: string): Promise<unknown> {
  const full = [...(netns ? ["-n", netns] : []), "-j", ...args];
  const out = await new Deno.Command("ip", { args: full, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`Cannot run "ip ${full.join(" ")}": ${err || `exit code ${out.code}`}`);
  }
  const text = new TextDecoder().decode(out.stdout).trim();
  return text ? JSON.parse(text) : [];
}

/** Options of the real facts source. */
export interface SystemFactsOptions {
  /** Path of resolv.conf (default /etc/resolv.conf). */
  resolvConfPath?: string;
  /** Run `ip` inside this network namespace (tests, the lab). */
  netns?: string;
  /** Per-probe timeout in ms (default 2000). */
  timeoutMs?: number;
  /** DNS server for hostname lookups (default: the system's). */
  nameServer?: { ipAddr: string; port?: number };
}

/** Collects facts from this machine. */
export class SystemFactsSource implements NetworkFactsSource {
  readonly #opts: SystemFactsOptions;
  constructor(opts: SystemFactsOptions = {}) {
    this.#opts = opts;
  }

  /** Gathers every fact, probing hostnames and beacons in parallel. */
  async collect(req: FactsRequest): Promise<NetworkFacts> {
    const timeoutMs = this.#opts.timeoutMs ?? 2000;
    const resolvText = readNetworkResolvConf(this.#opts.resolvConfPath ?? "/etc/resolv.conf");
    const ns = this.#opts.netns;
    const [r4, r6, addrs] = await Promise.all([
      ipJson(["-4", "route", "show", "table", "all"], ns),
      ipJson(["-6", "route", "show", "table", "all"], ns),
      ipJson(["addr", "show"], ns),
    ]);
    const routes = [...parseIpRoutes(r4, 4), ...parseIpRoutes(r6, 6)];
    const interfaces = parseIpAddrs(addrs);
    const resolved = new Map<string, string[]>();
    const beaconFingerprints = new Map<string, string | Error>();
    await Promise.all([
      ...(req.hostnames ?? []).map(async (h) => {
        resolved.set(h, await resolveHost(h, { timeoutMs, nameServer: this.#opts.nameServer }));
      }),
      ...(req.beacons ?? []).map(async (b) => {
        const key = beaconKey(b.host, b.port);
        beaconFingerprints.set(
          key,
          await tlsFingerprint(b.host, b.port, { timeoutMs }).catch((e: Error) => e),
        );
      }),
    ]);
    const resolv = parseResolvConf(await resolvText);
    const vpn = detectVpnDefaultRoute(routes, interfaces, req.ourInterface);
    return {
      dnsServers: resolv.nameservers,
      dnsSearchDomains: resolv.search,
      resolved,
      defaultGateways: defaultGateways(routes),
      addresses: localAddresses(interfaces, req.ourInterface),
      egressIp: req.egressIp,
      beaconFingerprints,
      vpnDefaultRoute: vpn !== undefined,
      vpnInterface: vpn,
    };
  }
}

/** A fake facts source for tests: returns whatever it was last given. */
export class StaticFactsSource implements NetworkFactsSource {
  /** The facts returned by collect; tests replace it to "move" the device. */
  facts: NetworkFacts;
  /** The requests collect received, newest last. */
  readonly requests: FactsRequest[] = [];
  constructor(facts: NetworkFacts) {
    this.facts = facts;
  }
  /** Returns the current facts, with the request's egress address applied. */
  collect(req: FactsRequest): Promise<NetworkFacts> {
    this.requests.push(req);
    return Promise.resolve({ ...this.facts, egressIp: req.egressIp ?? this.facts.egressIp });
  }
}
