/**
 * wg-quick configuration files: parser and serializer.
 *
 * Errors are InputErrors whose message names the line and the problem, e.g.
 * `Line 7: PublicKey is not a valid base64 32-byte key`. Keys wg-quick uses
 * for the host (PreUp/PostUp/PreDown/PostDown, SaveConfig, FwMark) are kept
 * and reported as warnings, because this program configures the host itself.
 */
import { InputError } from "../errors.ts";
import { decodeKey, encodeKey } from "./keys.ts";
import { parseIp, parsePrefix } from "./ip.ts";

/** The [Interface] section. */
export interface WgQuickInterface {
  privateKey: Uint8Array;
  /** Interface addresses with prefix length ("10.0.0.2/24"), host bits kept. */
  addresses: string[];
  listenPort?: number;
  mtu?: number;
  /** DNS servers (IP literals). */
  dns: string[];
  /** DNS search domains (non-IP DNS entries). */
  dnsSearch: string[];
  table?: string;
  fwMark?: string;
  preUp: string[];
  postUp: string[];
  preDown: string[];
  postDown: string[];
  saveConfig?: boolean;
  /** Portcullis extension: also accept the TLS fallback transport on this TCP port. */
  tlsListenPort?: number;
  /** Portcullis extension: PEM certificate chain file for the TLS listener. */
  tlsCertificate?: string;
  /** Portcullis extension: PEM private key file for the TLS listener. */
  tlsPrivateKey?: string;
}

/** One [Peer] section. */
export interface WgQuickPeer {
  publicKey: Uint8Array;
  presharedKey?: Uint8Array;
  /** Prefixes with host bits cleared ("10.0.0.0/24"). */
  allowedIps: string[];
  /** "host:port" or "[v6]:port"; the host may be a name the caller resolves. */
  endpoint?: string;
  persistentKeepalive?: number;
  /** Portcullis extension: "host:port" of the peer's TLS fallback listener. */
  tlsEndpoint?: string;
  /** Portcullis extension: PEM CA file that the peer's TLS certificate must chain to. */
  tlsCa?: string;
  /** Portcullis extension: seconds without a UDP handshake answer before falling back (5-60). */
  udpTimeout?: number;
}

/** A parsed wg-quick file. */
export interface WgQuickConfig {
  interface: WgQuickInterface;
  peers: WgQuickPeer[];
  /** Sentences about settings that were parsed but will not be acted on. */
  warnings: string[];
}

const fail = (line: number, msg: string): never => {
  throw new InputError("invalid_wg_config", `Line ${line}: ${msg}`);
};

const IGNORED = new Set([
  "preup",
  "postup",
  "predown",
  "postdown",
  "saveconfig",
  "fwmark",
  "table",
]);

function list(value: string): string[] {
  return value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

function int(line: number, key: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    fail(line, `${key} "${value}" is not a whole number from ${min} to ${max}`);
  }
  return Number(value);
}

function key(line: number, name: string, value: string): Uint8Array {
  return decodeKey(value) ?? fail(line, `${name} is not a valid base64 32-byte key`);
}

function endpointText(line: number, value: string): string {
  const m = value.match(/^\[([^\]]+)\]:(\d+)$/) ?? value.match(/^([^:\s]+):(\d+)$/);
  if (!m) return fail(line, `Endpoint "${value}" is not HOST:PORT or [IPv6]:PORT`);
  if (value.startsWith("[") && !parseIp(m[1])) {
    fail(line, `Endpoint "${value}" has an invalid IPv6 address`);
  }
  if (!value.startsWith("[") && /^[\d.]+$/.test(m[1]) && !parseIp(m[1])) {
    fail(line, `Endpoint "${value}" has an invalid IPv4 address`);
  }
  int(line, "Endpoint port", m[2], 1, 65535);
  return value;
}

/** Parses wg-quick text; throws an InputError naming the line on the first problem. */
export function parseWgQuick(text: string): WgQuickConfig {
  const warnings: string[] = [];
  let iface: Partial<WgQuickInterface> & { line?: number } | null = null;
  const peers: Array<Partial<WgQuickPeer> & { line: number }> = [];
  let section: "interface" | "peer" | null = null;
  const seen = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const raw = lines[i].replace(/#.*$/, "").trim();
    if (!raw) continue;
    const sec = raw.match(/^\[\s*(\w+)\s*\]$/);
    if (sec) {
      const name = sec[1].toLowerCase();
      seen.clear();
      if (name === "interface") {
        if (iface) fail(n, "a second [Interface] section is not allowed");
        iface = {
          line: n,
          addresses: [],
          dns: [],
          dnsSearch: [],
          preUp: [],
          postUp: [],
          preDown: [],
          postDown: [],
        };
        section = "interface";
      } else if (name === "peer") {
        peers.push({ line: n, allowedIps: [] });
        section = "peer";
      } else {
        fail(n, `unknown section [${sec[1]}]; expected [Interface] or [Peer]`);
      }
      continue;
    }
    const eq = raw.indexOf("=");
    if (eq < 0) fail(n, `expected "Key = Value" or a [Section], got "${raw}"`);
    const k = raw.slice(0, eq).trim();
    const v = raw.slice(eq + 1).trim();
    const lk = k.toLowerCase();
    if (!section) fail(n, `${k} appears before any [Interface] or [Peer] section`);
    const multi = ["address", "dns", "allowedips", "preup", "postup", "predown", "postdown"]
      .includes(lk);
    if (!multi && seen.has(lk)) fail(n, `${k} is set twice in this section`);
    seen.add(lk);
    if (section === "interface") {
      const f = iface!;
      switch (lk) {
        case "privatekey":
          f.privateKey = key(n, "PrivateKey", v);
          break;
        case "address":
          for (const a of list(v)) {
            const [ip, bits, extra] = a.split("/");
            const bytes = parseIp(ip);
            const max = bytes?.length === 16 ? 128 : 32;
            if (
              !bytes || extra !== undefined ||
              (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > max))
            ) {
              fail(n, `Address "${a}" is not an IP address with an optional prefix length`);
            }
            f.addresses!.push(bits === undefined ? `${ip}/${max}` : a);
          }
          break;
        case "listenport":
          f.listenPort = int(n, "ListenPort", v, 1, 65535);
          break;
        case "mtu":
          // 2000: the largest packet the data plane's slots (2112 bytes) can hold.
          f.mtu = int(n, "MTU", v, 576, 2000);
          break;
        case "dns":
          for (const d of list(v)) {
            if (parseIp(d)) f.dns!.push(d);
            else if (/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(d)) f.dnsSearch!.push(d);
            else fail(n, `DNS "${d}" is neither an IP address nor a search domain`);
          }
          break;
        case "table":
          f.table = v;
          break;
        case "fwmark":
          f.fwMark = v;
          break;
        case "saveconfig":
          if (!/^(true|false)$/i.test(v)) fail(n, `SaveConfig "${v}" is not true or false`);
          f.saveConfig = v.toLowerCase() === "true";
          break;
        case "preup":
        case "postup":
        case "predown":
        case "postdown": {
          const field = ({
            preup: "preUp",
            postup: "postUp",
            predown: "preDown",
            postdown: "postDown",
          } as const)[lk];
          f[field]!.push(v);
          break;
        }
        case "tlslistenport":
          f.tlsListenPort = int(n, "TlsListenPort", v, 1, 65535);
          break;
        case "tlscertificate":
          f.tlsCertificate = v;
          break;
        case "tlsprivatekey":
          f.tlsPrivateKey = v;
          break;
        default:
          fail(n, `unknown key ${k} in [Interface]`);
      }
      if (IGNORED.has(lk)) warnings.push(`Line ${n}: ${k} is kept but not acted on`);
    } else {
      const p = peers[peers.length - 1];
      switch (lk) {
        case "publickey":
          p.publicKey = key(n, "PublicKey", v);
          break;
        case "presharedkey":
          p.presharedKey = key(n, "PresharedKey", v);
          break;
        case "allowedips":
          for (const a of list(v)) {
            const pre = parsePrefix(a);
            if (!pre) fail(n, `AllowedIPs entry "${a}" is not an IPv4 or IPv6 prefix`);
            p.allowedIps!.push(a.includes("/") ? a : `${a}/${pre!.addr.length * 8}`);
          }
          break;
        case "endpoint":
          p.endpoint = endpointText(n, v);
          break;
        case "persistentkeepalive":
          p.persistentKeepalive = v.toLowerCase() === "off"
            ? 0
            : int(n, "PersistentKeepalive", v, 0, 65535);
          break;
        case "tlsendpoint":
          p.tlsEndpoint = endpointText(n, v);
          break;
        case "tlsca":
          p.tlsCa = v;
          break;
        case "udptimeout":
          p.udpTimeout = int(n, "UdpTimeout", v, 5, 60);
          break;
        default:
          fail(n, `unknown key ${k} in [Peer]`);
      }
    }
  }
  if (!iface) return fail(lines.length, "no [Interface] section");
  const ifc = iface as Partial<WgQuickInterface> & { line: number };
  if (!ifc.privateKey) fail(ifc.line, "[Interface] has no PrivateKey");
  const seenKeys = new Set<string>();
  for (const p of peers) {
    if (!p.publicKey) fail(p.line, "[Peer] has no PublicKey");
    const t = encodeKey(p.publicKey!);
    if (seenKeys.has(t)) fail(p.line, `[Peer] ${t} appears twice`);
    seenKeys.add(t);
  }
  const { line: _l, ...ifaceOut } = ifc;
  return {
    interface: ifaceOut as WgQuickInterface,
    peers: peers.map(({ line: _line, ...p }) => p as WgQuickPeer),
    warnings,
  };
}

/** Writes a config back as wg-quick text (keys in the canonical spelling). */
export function serializeWgQuick(cfg: Omit<WgQuickConfig, "warnings">): string {
  const out: string[] = ["[Interface]"];
  const f = cfg.interface;
  out.push(`PrivateKey = ${encodeKey(f.privateKey)}`);
  if (f.addresses.length) out.push(`Address = ${f.addresses.join(", ")}`);
  if (f.listenPort !== undefined) out.push(`ListenPort = ${f.listenPort}`);
  if (f.mtu !== undefined) out.push(`MTU = ${f.mtu}`);
  if (f.dns.length || f.dnsSearch.length) {
    out.push(`DNS = ${[...f.dns, ...f.dnsSearch].join(", ")}`);
  }
  if (f.table !== undefined) out.push(`Table = ${f.table}`);
  if (f.fwMark !== undefined) out.push(`FwMark = ${f.fwMark}`);
  if (f.saveConfig !== undefined) out.push(`SaveConfig = ${f.saveConfig}`);
  if (f.tlsListenPort !== undefined) out.push(`TlsListenPort = ${f.tlsListenPort}`);
  if (f.tlsCertificate !== undefined) out.push(`TlsCertificate = ${f.tlsCertificate}`);
  if (f.tlsPrivateKey !== undefined) out.push(`TlsPrivateKey = ${f.tlsPrivateKey}`);
  for (
    const [k, vs] of [["PreUp", f.preUp], ["PostUp", f.postUp], ["PreDown", f.preDown], [
      "PostDown",
      f.postDown,
    ]] as const
  ) {
    for (const v of vs) out.push(`${k} = ${v}`);
  }
  for (const p of cfg.peers) {
    out.push("", "[Peer]", `PublicKey = ${encodeKey(p.publicKey)}`);
    if (p.presharedKey) out.push(`PresharedKey = ${encodeKey(p.presharedKey)}`);
    if (p.allowedIps.length) out.push(`AllowedIPs = ${p.allowedIps.join(", ")}`);
    if (p.endpoint) out.push(`Endpoint = ${p.endpoint}`);
    if (p.persistentKeepalive) out.push(`PersistentKeepalive = ${p.persistentKeepalive}`);
    if (p.tlsEndpoint) out.push(`TlsEndpoint = ${p.tlsEndpoint}`);
    if (p.tlsCa) out.push(`TlsCa = ${p.tlsCa}`);
    if (p.udpTimeout !== undefined) out.push(`UdpTimeout = ${p.udpTimeout}`);
  }
  return out.join("\n") + "\n";
}
