/**
 * Standalone mode: `portcullis wg up FILE` brings up an interface from a
 * standard wg-quick file so the data plane can face any WireGuard peer, and
 * `portcullis wg show` prints what every interface on this host is doing.
 *
 * What `up` changes on the system (and removes again on SIGINT/SIGTERM):
 * the TUN device, its addresses and MTU, one route per AllowedIPs prefix, and
 * for a default route (/0) the wg-quick arrangement: our UDP socket carries
 * fwmark M, the /0 goes into table M, `ip rule not fwmark M table M` sends
 * everything else there, and `ip rule table main suppress_prefixlength 0`
 * keeps more specific local routes working.
 */
import { parseWgQuick, type WgQuickConfig, WireGuardDevice } from "../wireguard/mod.ts";
import { type Endpoint, endpoint, parseEndpoint } from "../net/endpoint.ts";
import { openTun } from "../tun/open.ts";
import { UdpSocket } from "../net/udp.ts";
import { IpNetConfig, type NetConfig } from "../net/iface.ts";
import { Pump } from "./pump.ts";
import { TlsStream } from "../net/tls_stream.ts";
import { TransportFallback } from "./fallback.ts";
import { offloadFromEnv, type OffloadRequest } from "./offload.ts";
import { queryStatsText, queryUapi, serveUapi, UAPI_DIR, type UapiInterface } from "./uapi.ts";
import { systemClock } from "../clock.ts";
import { InputError } from "../errors.ts";
import { comparePrefixes, tryParsePrefix } from "../policy/cidr.ts";
import { logger } from "../log.ts";

const log = logger("wg");

/** Options for `wg up`. */
export interface WgUpOptions {
  /** Interface name; defaults to the file's base name, as wg-quick does. */
  name?: string;
  /** Lowers REKEY_AFTER_TIME (tests only; see DeviceOptions.rekeyAfterMs). */
  rekeyAfterMs?: number;
  /** How often to try UDP again while a peer is on TLS (default 30 s). */
  udpProbeMs?: number;
  /** Network configuration (real `ip` by default). */
  net?: NetConfig;
  /** Called once the interface is up (tests). */
  onReady?: (info: { name: string; listenPort: number }) => void;
  /** Resolves when the interface should come down (default: SIGINT or SIGTERM). */
  until?: Promise<void>;
  /** Kernel offloads to ask for (default: PORTCULLIS_OFFLOAD, else all). */
  offload?: OffloadRequest;
}

/** Derives an interface name from "path/wg0.conf" → "wg0", checking it is valid. */
export function interfaceNameFromPath(path: string): string {
  const base = path.split("/").pop()!.replace(/\.conf$/, "");
  if (!/^[a-zA-Z0-9_=+.-]{1,15}$/.test(base)) {
    throw new InputError(
      "invalid_interface_name",
      `Cannot derive an interface name from "${path}": "${base}" is not 1-15 letters, digits or _=+.-`,
    );
  }
  return base;
}

async function resolveEndpoint(text: string): Promise<Endpoint> {
  try {
    return parseEndpoint(text);
  } catch {
    // A host name: resolve it once, as wg-quick does at start.
    const m = text.match(/^(.+):(\d{1,5})$/);
    if (!m) throw new InputError("invalid_endpoint", `Cannot parse endpoint "${text}"`);
    const [host, port] = [m[1], Number(m[2])];
    const addrs = await Deno.resolveDns(host, "A").catch(() => [] as string[]);
    const addrs6 = addrs.length ? [] : await Deno.resolveDns(host, "AAAA").catch(() => []);
    const addr = addrs[0] ?? addrs6[0];
    if (!addr) {
      throw new InputError("unresolvable_endpoint", `Cannot resolve endpoint host "${host}"`);
    }
    return endpoint("udp", addr, port);
  }
}

function signalPromise(): { promise: Promise<void>; dispose: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  const handler = () => resolve();
  Deno.addSignalListener("SIGINT", handler);
  Deno.addSignalListener("SIGTERM", handler);
  return {
    promise,
    dispose: () => {
      Deno.removeSignalListener("SIGINT", handler);
      Deno.removeSignalListener("SIGTERM", handler);
    },
  };
}

/** Reads and parses a wg-quick file; errors name the file and the line. */
export async function loadWgQuick(path: string): Promise<WgQuickConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new InputError("unreadable_config", `Cannot read "${path}": ${(e as Error).message}`);
  }
  try {
    return parseWgQuick(text);
  } catch (e) {
    throw new InputError("invalid_wg_config", `${path}: ${(e as Error).message}`);
  }
}

/** Brings an interface up from a wg-quick file and runs it until told to stop. */
export async function wgUp(path: string, opts: WgUpOptions = {}): Promise<void> {
  const cfg = await loadWgQuick(path);
  for (const w of cfg.warnings) log.warn(w);
  const name = opts.name ?? interfaceNameFromPath(path);
  const mtu = cfg.interface.mtu ?? 1420;
  const net = opts.net ?? new IpNetConfig();
  const hasDefault = cfg.peers.some((p) => p.allowedIps.some((a) => a.endsWith("/0")));
  const fwmark = hasDefault ? (cfg.interface.listenPort ?? 51820) : undefined;

  const fallbacks = new Map<string, TransportFallback>();
  const device = new WireGuardDevice({
    privateKey: cfg.interface.privateKey,
    clock: systemClock,
    mtu,
    rekeyAfterMs: opts.rekeyAfterMs,
    onEvent: (e) => {
      log.info(`Peer ${e.type.replace("_", " ")}`, {
        peer: e.peer.publicKeyText,
        transport: e.peer.endpoint?.transport,
      });
      if (e.type === "handshake_complete") {
        fallbacks.get(e.peer.publicKeyText)?.onHandshakeComplete();
      }
    },
  });
  for (const p of cfg.peers) {
    device.setPeer({
      publicKey: p.publicKey,
      presharedKey: p.presharedKey,
      allowedIps: p.allowedIps,
      endpoint: p.endpoint ? await resolveEndpoint(p.endpoint) : undefined,
      persistentKeepaliveSec: p.persistentKeepalive,
    });
  }

  const offload = opts.offload ?? offloadFromEnv();
  const tun = openTun({ name, mtu, offload: offload.tun });
  const cleanups: (() => Promise<void> | void)[] = [() => tun.close()];
  let pump: Pump | null = null;
  const sig = opts.until ? null : signalPromise();
  try {
    const udp = UdpSocket.bind({
      port: cfg.interface.listenPort ?? 0,
      fwmark,
      gso: offload.udp.gso,
      gro: offload.udp.gro,
    });
    cleanups.push(() => udp.close());
    for (const a of cfg.interface.addresses) await net.addAddress(name, a);
    await net.setLink(name, { mtu, up: true });
    cleanups.push(() => net.undoAll());
    for (const p of cfg.peers) {
      for (const prefix of p.allowedIps) {
        if (prefix.endsWith("/0")) {
          const family = prefix.includes(":") ? 6 : 4;
          await net.addRoute(prefix, { dev: name, table: fwmark });
          await net.addRule({ not: true, fwmark, table: fwmark!, family });
          await net.addRule({ table: "main", suppressPrefixlength: 0, family });
        } else if (!coveredByAddress(prefix, cfg.interface.addresses)) {
          await net.addRoute(prefix, { dev: name });
        }
      }
    }
    const needTls = cfg.interface.tlsListenPort !== undefined ||
      cfg.peers.some((p) => p.tlsEndpoint);
    let tls: TlsStream | null = null;
    if (needTls) {
      tls = new TlsStream({ wake: () => pump?.kick() });
      const t = tls;
      cleanups.push(() => t.close());
    }
    if (tls && cfg.interface.tlsListenPort !== undefined) {
      const f = cfg.interface;
      if (!f.tlsCertificate || !f.tlsPrivateKey) {
        throw new InputError(
          "invalid_wg_config",
          `${path}: TlsListenPort needs TlsCertificate and TlsPrivateKey`,
        );
      }
      tls.listen({
        port: f.tlsListenPort!,
        cert: await Deno.readTextFile(f.tlsCertificate),
        key: await Deno.readTextFile(f.tlsPrivateKey),
      });
    }
    pump = new Pump({ tun, device, udp, tls });
    const run = pump.run();
    for (const p of cfg.peers) {
      if (!p.tlsEndpoint || !p.endpoint) continue;
      const peer = device.getPeer(p.publicKey)!;
      const m = p.tlsEndpoint.match(/^\[?([^\]]+?)\]?:(\d+)$/)!;
      const fb = new TransportFallback({
        device,
        peer,
        udp: peer.endpoint!,
        tls: {
          hostname: m[1],
          port: Number(m[2]),
          caCerts: p.tlsCa ? [await Deno.readTextFile(p.tlsCa)] : undefined,
        },
        tlsStream: tls,
        udpTimeoutMs: (p.udpTimeout ?? 5) * 1000,
        probeIntervalMs: opts.udpProbeMs,
        kick: () => pump?.kick(),
        onChange: (t, reason) =>
          log.info(`Peer now on ${t.toUpperCase()}`, { peer: peer.publicKeyText, reason }),
      });
      fallbacks.set(peer.publicKeyText, fb);
      fb.start();
      cleanups.push(() => fb.stop());
    }
    const uapi = await serveUapi(
      name,
      device,
      () => ({
        privateKey: cfg.interface.privateKey,
        listenPort: udp.port,
        fwmark,
      }),
      { counters: () => pump!.report(), configuredBy: path },
    );
    cleanups.push(() => uapi.close());
    log.info(`Interface "${name}" is up`, { listenPort: udp.port, peers: cfg.peers.length });
    opts.onReady?.({ name, listenPort: udp.port });
    await Promise.race([opts.until ?? sig!.promise, run]);
  } finally {
    sig?.dispose();
    if (pump) await pump.stop();
    device.close();
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (e) {
        log.warn("Cleanup step failed", { error: (e as Error).message });
      }
    }
    log.info(`Interface "${name}" is down`);
  }
}

/** True when `prefix` equals the connected network of one of the interface addresses. */
function coveredByAddress(prefix: string, addresses: string[]): boolean {
  // The kernel already routes an address's own subnet to the interface; adding it again fails.
  const want = tryParsePrefix(prefix);
  return want !== null && addresses.some((a) => {
    const net = tryParsePrefix(a); // host bits are cleared: 10.9.0.1/24 → 10.9.0.0/24
    return net !== null && comparePrefixes(net, want) === 0;
  });
}

/** Lists the interfaces with a UAPI socket (Portcullis and wireguard-go alike). */
export async function listInterfaces(dir = UAPI_DIR): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.name.endsWith(".sock")) names.push(e.name.slice(0, -5));
    }
  } catch { /* no directory: no interfaces */ }
  return names.sort();
}

/** An interface as `wg show` prints it, with Portcullis's offload states when it has them. */
export interface ShownInterface extends UapiInterface {
  /** offload name → "on" or "off: <why>"; absent for wireguard-go and other implementations. */
  offloads?: Record<string, string>;
}

/** Reads one interface's state through its UAPI socket. */
export async function showInterface(name: string, dir = UAPI_DIR): Promise<ShownInterface> {
  const path = `${dir}/${name}.sock`;
  const shown: ShownInterface = await queryUapi(path, name).catch((e) => {
    throw new InputError(
      "no_such_interface",
      `Cannot read interface "${name}": ${(e as Error).message}`,
    );
  });
  // Our extension; other implementations answer it with an errno and no lines.
  const stats = await queryStatsText(path).catch(() => ({} as Record<string, string>));
  const offloads = Object.entries(stats).filter(([k]) => k.startsWith("offload_"));
  if (offloads.length) {
    shown.offloads = Object.fromEntries(offloads.map(([k, v]) => [k.slice(8), v]));
  }
  return shown;
}

function ago(sec: number, nowSec: number): string {
  if (!sec) return "never";
  const d = Math.max(0, nowSec - sec);
  const parts: string[] = [];
  const h = Math.floor(d / 3600), m = Math.floor((d % 3600) / 60), s = d % 60;
  if (h) parts.push(`${h} hour${h === 1 ? "" : "s"}`);
  if (m) parts.push(`${m} minute${m === 1 ? "" : "s"}`);
  parts.push(`${s} second${s === 1 ? "" : "s"}`);
  return parts.join(", ") + " ago";
}

function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(2)} ${units[i]}`;
}

/** Formats an interface like `wg show` does (plus a line on offloads for our own interfaces). */
export function formatInterface(i: ShownInterface, nowSec = Math.floor(Date.now() / 1000)): string {
  const out = [
    `interface: ${i.name}`,
    `  public key: ${i.publicKey ?? "(unknown)"}`,
    `  private key: (hidden)`,
    `  listening port: ${i.listenPort}`,
  ];
  if (i.offloads) {
    const on = Object.entries(i.offloads).filter(([, v]) => v === "on").map(([k]) => k);
    const off = Object.entries(i.offloads).filter(([, v]) => v !== "on")
      .map(([k, v]) => `${k} (${v.replace(/^off: /, "")})`);
    out.push(`  offloads on: ${on.length ? on.join(", ") : "none"}`);
    if (off.length) out.push(`  offloads off: ${off.join("; ")}`);
  }
  for (const p of i.peers) {
    out.push("", `peer: ${p.publicKey}`);
    if (p.presharedKey) out.push("  preshared key: (hidden)");
    if (p.endpoint) out.push(`  endpoint: ${p.endpoint}`);
    out.push(`  allowed ips: ${p.allowedIps.length ? p.allowedIps.join(", ") : "(none)"}`);
    out.push(`  latest handshake: ${ago(p.lastHandshakeSec, nowSec)}`);
    out.push(`  transfer: ${bytes(p.rxBytes)} received, ${bytes(p.txBytes)} sent`);
    if (p.persistentKeepalive) {
      out.push(`  persistent keepalive: every ${p.persistentKeepalive} seconds`);
    }
  }
  return out.join("\n");
}
