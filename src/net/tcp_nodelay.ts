/**
 * TCP_NODELAY for listeners this process does not hold a handle to: the
 * HTTP server behind Deno.serve opens its own socket and offers no option
 * for it. Over TLS that server writes a response head and body as separate
 * records, so with Nagle's algorithm on, every keep-alive response between
 * ~512 bytes and one segment waits for the peer's delayed ACK (40 ms a
 * request). On Linux an accepted socket inherits TCP_NODELAY from its
 * listener, so setting it once on the listening socket covers every
 * connection it accepts.
 *
 * The listener is found the way `ss -p` finds it: its inode in
 * /proc/net/tcp{,6} (local port, state LISTEN), then the descriptor of this
 * process that points at that inode.
 */
import { libc, syscallError } from "./errno.ts";

const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
const TCP_LISTEN = "0A";

/** Inodes of sockets listening on local `port` (IPv4 and IPv6 tables). */
function listeningInodes(port: number): Set<string> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const out = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(table);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[1].endsWith(hex) && f[3] === TCP_LISTEN) out.add(f[9]);
    }
  }
  return out;
}

/**
 * Sets TCP_NODELAY on this process's sockets listening on `port` (one per
 * address), so that every connection they accept from now on has it.
 * Linux only; throws when no listener is found or the call fails.
 */
export function setListenerNoDelay(port: number): void {
  const inodes = listeningInodes(port);
  const fds: number[] = [];
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(Deno.readLinkSync(`/proc/self/fd/${e.name}`));
      if (m && inodes.has(m[1])) fds.push(Number(e.name));
    } catch {
      // closed while we looked
    }
  }
  if (!fds.length) throw new Error(`Cannot find this process's listener on port ${port}`);
  const one = new Uint8Array(new Int32Array([1]).buffer);
  for (const fd of fds) {
    if (libc().setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, one, 4) < 0) {
      throw syscallError("setsockopt", `set TCP_NODELAY on the listener on port ${port}`);
    }
  }
}

/** Whether every listener of this process on `port` has TCP_NODELAY (false when there is none). */
export function listenerNoDelay(port: number): boolean {
  const inodes = listeningInodes(port);
  let seen = 0;
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    let link: string;
    try {
      link = Deno.readLinkSync(`/proc/self/fd/${e.name}`);
    } catch {
      continue;
    }
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (!m || !inodes.has(m[1])) continue;
    const v = new Uint8Array(4), len = new Uint8Array(new Uint32Array([4]).buffer);
    if (libc().getsockopt(Number(e.name), IPPROTO_TCP, TCP_NODELAY, v, len) < 0) {
      throw syscallError("getsockopt", `read TCP_NODELAY of the listener on port ${port}`);
    }
    if (new Int32Array(v.buffer)[0] === 0) return false;
    seen++;
  }
  return seen > 0;
}
