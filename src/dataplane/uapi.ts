/**
 * The WireGuard cross-platform userspace API (UAPI) on a Unix socket at
 * /var/run/wireguard/<iface>.sock — the same socket wireguard-go opens — so
 * the standard `wg show` works against a Portcullis interface, and
 * `portcullis wg show` works against wireguard-go.
 *
 * Every Portcullis interface serves it: `wg up`'s, the connector's and the
 * edge's. Only `get=1` is served; `set=1` answers errno=-95 (EOPNOTSUPP, which
 * wg(8) prints as "Unable to modify interface: Operation not supported";
 * errors are negative, as wireguard-go writes them) and
 * the refusal is logged: the configuration of a Portcullis interface comes
 * from its wg-quick file, the connector's policy or the edge's device
 * registry, and a change made behind their back would be undone or, worse,
 * silently disagree with them.
 *
 * The socket is mode 0600: it reveals the private key, as wireguard-go's does.
 * It is removed on close; a socket left by a crashed process (nobody answers
 * on it) is replaced at start, while one a running process answers on is
 * never taken over: the directory is shared by all network namespaces, so
 * the same interface name in two namespaces is a clash, refused by name.
 */
import type { WireGuardDevice } from "../wireguard/mod.ts";
import { decodeKey, publicKeyOf } from "../wireguard/mod.ts";
import { formatHostPort } from "../net/endpoint.ts";
import { PortcullisError } from "../errors.ts";
import { logger } from "../log.ts";

const log = logger("uapi");

/** Errors as UAPI sends them (negated): operation not supported, invalid argument. */
const EOPNOTSUPP = 95, EINVAL = 22;

/** Directory where WireGuard implementations put their UAPI sockets. */
export const UAPI_DIR = "/var/run/wireguard";

/** What `get=1` reports beside the device's own state. */
export interface UapiInfo {
  privateKey: Uint8Array;
  listenPort: number;
  fwmark?: number;
}

const hex = (b: Uint8Array): string =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** Renders the `get=1` answer for a device (without the final errno line). */
export function renderGet(device: WireGuardDevice, info: UapiInfo): string {
  const lines: string[] = [`private_key=${hex(info.privateKey)}`, `listen_port=${info.listenPort}`];
  if (info.fwmark) lines.push(`fwmark=${info.fwmark}`);
  for (const s of device.stats()) {
    const pub = decodeKey(s.publicKey);
    if (!pub) continue;
    lines.push(`public_key=${hex(pub)}`);
    const peer = device.getPeer(pub);
    if (peer?.presharedKey) lines.push(`preshared_key=${hex(peer.presharedKey)}`);
    lines.push("protocol_version=1");
    // wg(8) only understands IP endpoints; a TLS endpoint is shown by its address too.
    if (s.endpoint) lines.push(`endpoint=${formatHostPort(s.endpoint.address, s.endpoint.port)}`);
    const ms = s.lastHandshakeWallMs ?? 0;
    lines.push(`last_handshake_time_sec=${Math.floor(ms / 1000)}`);
    lines.push(`last_handshake_time_nsec=${(ms % 1000) * 1_000_000}`);
    lines.push(`tx_bytes=${s.txBytes}`, `rx_bytes=${s.rxBytes}`);
    lines.push(`persistent_keepalive_interval=${s.persistentKeepaliveSec}`);
    for (const a of s.allowedIps) lines.push(`allowed_ip=${a}`);
  }
  return lines.join("\n") + "\n";
}

/** A running UAPI listener; close() removes the socket file. */
export interface UapiServer {
  readonly path: string;
  close(): Promise<void>;
}

/** Options of `serveUapi`. */
export interface UapiOptions {
  /** Socket directory (default UAPI_DIR). */
  dir?: string;
  /** Extra lines for `get=portcullis-stats` (pump counters, offload states as text). */
  counters?: () => Record<string, number | string>;
  /** What configures the interface, named when a `set` is refused ("the connector's policy"). */
  configuredBy?: string;
}

/**
 * Makes `path` free for our listener: nothing there, or a stale socket that
 * no process answers on any more (removed). Throws `uapi_in_use` when a
 * running process answers on it.
 */
export async function claimUapiPath(path: string, iface: string): Promise<void> {
  try {
    await Deno.lstat(path);
  } catch {
    return; // nothing there
  }
  let live = false;
  try {
    (await Deno.connect({ transport: "unix", path })).close();
    live = true;
  } catch { /* refused: its process is gone */ }
  if (live) {
    throw new PortcullisError(
      "uapi_in_use",
      `Cannot serve the WireGuard UAPI socket of "${iface}": another running process serves ${path} ` +
        "(an interface of the same name, perhaps in another network namespace); give this one another name",
      409,
    );
  }
  log.info("Replacing a stale UAPI socket", { path });
  await Deno.remove(path);
}

/** Serves UAPI for `iface` until closed. */
export async function serveUapi(
  iface: string,
  device: WireGuardDevice,
  info: () => UapiInfo,
  opts: UapiOptions = {},
): Promise<UapiServer> {
  const dir = opts.dir ?? UAPI_DIR;
  const counters = opts.counters ?? (() => ({}));
  await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
  const path = `${dir}/${iface}.sock`;
  await claimUapiPath(path, iface);
  const listener = Deno.listen({ transport: "unix", path });
  await Deno.chmod(path, 0o600);
  const conns = new Set<Deno.Conn>();
  const loop = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      handle(conn).catch((e) => log.debug("UAPI connection failed", { error: String(e) }))
        .finally(() => conns.delete(conn));
    }
  })().catch(() => {});

  async function handle(conn: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(4096);
    let text = "";
    const dec = new TextDecoder();
    try {
      while (true) {
        const n = await conn.read(buf);
        if (n === null) return;
        text += dec.decode(buf.subarray(0, n), { stream: true });
        if (text.length > 1 << 20) return; // a UAPI request is never this long
        let end: number;
        while ((end = text.indexOf("\n\n")) >= 0) {
          const req = text.slice(0, end);
          text = text.slice(end + 2);
          const op = req.split("\n")[0];
          let reply: string;
          if (op === "get=1") reply = renderGet(device, info()) + "errno=0\n\n";
          else if (op === "get=portcullis-stats") {
            // Our own extension: drop counters by reason, pump counters and offload states.
            const all = { ...prefixed("drop_", device.drops), ...counters() };
            reply = Object.entries(all).map(([k, v]) => `${k}=${v}`).join("\n") + "\nerrno=0\n\n";
          } else if (op === "set=1") {
            log.warn(`Refused a UAPI set on "${iface}" (wg set)`, {
              reason: `its configuration comes from ${opts.configuredBy ?? "Portcullis"}`,
            });
            reply = `errno=-${EOPNOTSUPP}\n\n`;
          } else reply = `errno=-${EINVAL}\n\n`;
          await writeAll(conn, new TextEncoder().encode(reply));
        }
      }
    } finally {
      try {
        conn.close();
      } catch { /* closed */ }
    }
  }

  return {
    path,
    async close() {
      try {
        listener.close();
      } catch { /* closed */ }
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await loop;
      try {
        await Deno.remove(path);
      } catch { /* gone */ }
    },
  };
}

function prefixed(p: string, o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [p + k, v]));
}

/** Sends one UAPI request (e.g. "get=1") and returns the answer text up to its errno line. */
async function uapiRequest(path: string, op: string): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await writeAll(conn, new TextEncoder().encode(`${op}\n\n`));
    const dec = new TextDecoder();
    const buf = new Uint8Array(65536);
    let text = "";
    while (!/(^|\n)errno=-?\d+\n/.test(text)) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += dec.decode(buf.subarray(0, n), { stream: true });
    }
    return text;
  } finally {
    conn.close();
  }
}

/** Reads our counters extension (`get=portcullis-stats`) from a UAPI socket: the numeric lines. */
export async function queryStats(path: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(await queryStatsText(path))) {
    if (/^-?\d+(\.\d+)?$/.test(v)) out[k] = Number(v);
  }
  return out;
}

/** Reads every line of `get=portcullis-stats` as text (offload states are "on" or "off: <why>"). */
export async function queryStatsText(path: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const line of (await uapiRequest(path, "get=portcullis-stats")).split("\n")) {
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const k = line.slice(0, eq);
    if (k !== "errno") out[k] = line.slice(eq + 1);
  }
  return out;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/** One peer as read back through UAPI. */
export interface UapiPeer {
  publicKey: string;
  presharedKey: boolean;
  endpoint: string | null;
  lastHandshakeSec: number;
  rxBytes: number;
  txBytes: number;
  persistentKeepalive: number;
  allowedIps: string[];
}

/** An interface as read back through UAPI. */
export interface UapiInterface {
  name: string;
  publicKey: string | null;
  listenPort: number;
  peers: UapiPeer[];
}

/** Parses a `get=1` answer; keys come back in base64 as wg(8) prints them. */
export function parseGet(name: string, text: string): UapiInterface {
  const out: UapiInterface = { name, publicKey: null, listenPort: 0, peers: [] };
  let peer: UapiPeer | null = null;
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq < 0) continue;
    const k = line.slice(0, eq);
    const v = line.slice(eq + 1);
    switch (k) {
      case "private_key":
        out.publicKey = hexToB64Public(v);
        break;
      case "listen_port":
        out.listenPort = Number(v);
        break;
      case "public_key":
        peer = {
          publicKey: hexToB64(v),
          presharedKey: false,
          endpoint: null,
          lastHandshakeSec: 0,
          rxBytes: 0,
          txBytes: 0,
          persistentKeepalive: 0,
          allowedIps: [],
        };
        out.peers.push(peer);
        break;
      case "preshared_key":
        if (peer) peer.presharedKey = !/^0+$/.test(v);
        break;
      case "endpoint":
        if (peer) peer.endpoint = v;
        break;
      case "last_handshake_time_sec":
        if (peer) peer.lastHandshakeSec = Number(v);
        break;
      case "rx_bytes":
        if (peer) peer.rxBytes = Number(v);
        break;
      case "tx_bytes":
        if (peer) peer.txBytes = Number(v);
        break;
      case "persistent_keepalive_interval":
        if (peer) peer.persistentKeepalive = Number(v);
        break;
      case "allowed_ip":
        if (peer) peer.allowedIps.push(v);
        break;
      case "errno":
        if (v !== "0") throw new Error(`Cannot read interface "${name}": UAPI errno ${v}`);
    }
  }
  return out;
}

function hexBytes(h: string): Uint8Array {
  const b = new Uint8Array(h.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(h.slice(i * 2, i * 2 + 2), 16);
  return b;
}

function hexToB64(h: string): string {
  return btoa(String.fromCharCode(...hexBytes(h)));
}

function hexToB64Public(h: string): string | null {
  if (!/^[0-9a-f]{64}$/.test(h)) return null;
  return btoa(String.fromCharCode(...publicKeyOf(hexBytes(h))));
}

/** Asks the UAPI socket at `path` for `get=1` and parses the answer. */
export async function queryUapi(path: string, name: string): Promise<UapiInterface> {
  return parseGet(name, await uapiRequest(path, "get=1"));
}

/**
 * serveUapi for an interface Portcullis manages (the connector's, the
 * edge's): the tunnel matters more than its inspection socket, so a socket
 * that cannot be served is a warning that says why, and null.
 */
export async function serveManagedUapi(
  iface: string,
  device: WireGuardDevice,
  info: () => UapiInfo,
  opts: UapiOptions = {},
): Promise<UapiServer | null> {
  try {
    return await serveUapi(iface, device, info, opts);
  } catch (e) {
    log.warn("WireGuard UAPI socket not served; wg show will not see this interface", {
      interface: iface,
      error: (e as Error).message,
    });
    return null;
  }
}
