/**
 * UDP socket through ffi/libc: the tunnel's primary transport.
 *
 * Batches: recv drains with one recvmmsg and send goes out with sendmmsg, so
 * a burst of 64 datagrams costs one FFI call each way. The mmsghdr, iovec and
 * sockaddr arrays are allocated once per socket; the iovec base of each slot
 * is cached by the identity of the caller's slot buffer, so the steady state
 * writes only lengths. The caller's buffers must stay attached (never
 * transferred) while the socket uses them.
 *
 * Senders are turned into interned Endpoints through a direct-mapped cache
 * keyed by the raw sockaddr words, so a known peer costs a few integer
 * compares and no string. v4-mapped IPv6 senders on a dual-stack socket
 * become plain IPv4 Endpoints. Destination sockaddrs are built once per
 * Endpoint (WeakMap) and copied into the slot only when the slot's
 * destination changes.
 */
import {
  AF_INET,
  AF_INET6,
  EAGAIN,
  EINTR,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  MMSGHDR_SIZE,
  MSG_DONTWAIT,
  SO_BINDTODEVICE,
  SO_MARK,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_REUSEADDR,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOL_SOCKET,
} from "../../ffi/libc.ts";
import { InputError, SyscallError } from "../errors.ts";
import { type Endpoint, endpoint } from "./endpoint.ts";
import { lastErrno, libc, syscallError } from "./errno.ts";
import { buildSockaddr, formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from "./sockaddr.ts";

/** Options for binding a UDP socket. */
export interface UdpOptions {
  /** Local address; "::" (default) is dual-stack, "0.0.0.0" IPv4 only. */
  address?: string;
  /** Local port; 0 (default) picks an ephemeral one, see `port`. */
  port?: number;
  /** On an IPv6 socket, refuse IPv4 (default false: dual-stack). */
  v6only?: boolean;
  /** Receive buffer bytes (default 4 MiB; SO_RCVBUFFORCE tried first). */
  rcvbuf?: number;
  /** Send buffer bytes (default 4 MiB; SO_SNDBUFFORCE tried first). */
  sndbuf?: number;
  /** Firewall mark on our packets, so policy routing lets tunnel traffic bypass the tunnel. */
  fwmark?: number;
  /** Bind to this interface (SO_BINDTODEVICE). */
  device?: string;
  /** Allow rebinding a port in TIME_WAIT-like states (default false). */
  reuseAddr?: boolean;
  /** Most datagrams per recvmmsg/sendmmsg call (default 64). */
  batch?: number;
}

/** Counters a UDP socket keeps. */
export interface UdpStats {
  recvPackets: number;
  sentPackets: number;
  sendDropped: number;
  truncated: number;
}

const NAME_SLOT = 32; // bytes of sockaddr storage per message (sockaddr_in6 is 28)
const MSG_TRUNC = 0x20;
const CACHE = 256; // direct-mapped sender cache entries

function ptrOf(b: Uint8Array): number {
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
}

/** One set of mmsghdr/iovec/sockaddr arrays, wired together once. */
class MsgVec {
  readonly hdrs: Uint8Array;
  readonly hdr32: Uint32Array;
  readonly iovs: Uint8Array;
  readonly iov32: Uint32Array;
  readonly names: Uint8Array;
  readonly names32: Uint32Array;
  readonly names16: Uint16Array;
  readonly src: (Uint8Array | undefined)[] = [];
  readonly base: number[] = [];
  readonly dst: (Endpoint | undefined)[] = [];
  offset = -1;
  constructor(n: number) {
    this.hdrs = new Uint8Array(n * MMSGHDR_SIZE);
    this.hdr32 = new Uint32Array(this.hdrs.buffer);
    const iovs = new Uint8Array(n * 16);
    this.iovs = iovs; // reachable for as long as the headers point at it
    this.iov32 = new Uint32Array(iovs.buffer);
    this.names = new Uint8Array(n * NAME_SLOT);
    this.names32 = new Uint32Array(this.names.buffer);
    this.names16 = new Uint16Array(this.names.buffer);
    const iovP = ptrOf(iovs), nameP = ptrOf(this.names);
    for (let i = 0; i < n; i++) {
      const h = i * 16; // u32 index of mmsghdr i
      setPtr(this.hdr32, h + 0, nameP + i * NAME_SLOT); // msg_name
      setPtr(this.hdr32, h + 4, iovP + i * 16); // msg_iov
      this.hdr32[h + 6] = 1; // msg_iovlen
    }
  }
  /** Points slot i's iovec at b[offset..] (length: the rest of b), caching by buffer identity. */
  iov(i: number, b: Uint8Array, offset: number): void {
    if (this.src[i] === b) return;
    this.src[i] = b;
    setPtr(this.iov32, i * 4, ptrOf(b) + offset);
    this.iov32[i * 4 + 2] = b.length - offset;
    this.iov32[i * 4 + 3] = 0;
  }
}

function setPtr(u32: Uint32Array, i: number, p: number): void {
  u32[i] = p % 0x1_0000_0000;
  u32[i + 1] = Math.floor(p / 0x1_0000_0000);
}

/** A non-blocking UDP socket bound to a local address. */
export class UdpSocket {
  #fd: number;
  /** Socket family: 6 for "::" (dual-stack) and other IPv6 binds, 4 otherwise. */
  readonly family: 4 | 6;
  /** The local address as given to bind(). */
  readonly address: string;
  /** The bound local port (the ephemeral one when 0 was asked for). */
  readonly port: number;
  /** Most datagrams per recvmmsg/sendmmsg call. */
  readonly batch: number;
  #rx: MsgVec;
  #tx: MsgVec;
  #sa = new WeakMap<Endpoint, Uint8Array>();
  // Sender cache: family, 4 address words (v4 uses word 3), port, endpoint.
  #cFam = new Uint8Array(CACHE);
  #cW = new Uint32Array(CACHE * 4);
  #cPort = new Uint16Array(CACHE);
  #cEp: (Endpoint | undefined)[] = new Array(CACHE);
  #stats: UdpStats = { recvPackets: 0, sentPackets: 0, sendDropped: 0, truncated: 0 };

  private constructor(fd: number, family: 4 | 6, address: string, port: number, batch: number) {
    this.#fd = fd;
    this.family = family;
    this.address = address;
    this.port = port;
    this.batch = batch;
    this.#rx = new MsgVec(batch);
    this.#tx = new MsgVec(batch);
  }

  /** Opens, configures and binds a socket; throws a SyscallError naming the step. */
  static bind(opts: UdpOptions = {}): UdpSocket {
    const address = opts.address ?? "::";
    const port = opts.port ?? 0;
    const what = `UDP socket on ${address.includes(":") ? `[${address}]` : address}:${port}`;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new InputError("bad_port", `Cannot bind ${what}: port must be 0-65535`);
    }
    const v4 = parseIpv4(address);
    const v6 = v4 ? null : parseIpv6(address);
    if (!v4 && !v6) {
      throw new InputError("bad_address", `Cannot bind ${what}: "${address}" is not an IP address`);
    }
    const batch = Math.max(1, Math.min(opts.batch ?? 64, 1024));
    const family: 4 | 6 = v4 ? 4 : 6;
    const c = libc();
    const fd = c.socket(
      family === 4 ? AF_INET : AF_INET6,
      SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
      0,
    );
    if (fd < 0) throw syscallError("socket", `create ${what}`);
    try {
      const setInt = (level: number, name: number, value: number, label: string) => {
        const v = new Int32Array([value]);
        if (c.setsockopt(fd, level, name, new Uint8Array(v.buffer), 4) < 0) {
          throw syscallError("setsockopt", `set ${label} ${value} on ${what}`);
        }
      };
      const force = (forced: number, plain: number, value: number, label: string) => {
        const v = new Uint8Array(new Int32Array([value]).buffer);
        if (c.setsockopt(fd, SOL_SOCKET, forced, v, 4) === 0) return;
        setInt(SOL_SOCKET, plain, value, label); // not root: capped at [rw]mem_max
      };
      if (family === 6) setInt(IPPROTO_IPV6, IPV6_V6ONLY, opts.v6only ? 1 : 0, "IPV6_V6ONLY");
      if (opts.reuseAddr) setInt(SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
      force(SO_RCVBUFFORCE, SO_RCVBUF, opts.rcvbuf ?? 4 << 20, "SO_RCVBUF");
      force(SO_SNDBUFFORCE, SO_SNDBUF, opts.sndbuf ?? 4 << 20, "SO_SNDBUF");
      if (opts.fwmark !== undefined) {
        if (!Number.isInteger(opts.fwmark) || opts.fwmark < 0 || opts.fwmark > 0xffffffff) {
          throw new InputError(
            "bad_fwmark",
            `Cannot set fwmark ${opts.fwmark} on ${what}: expected 0-4294967295`,
          );
        }
        setInt(SOL_SOCKET, SO_MARK, opts.fwmark | 0, "fwmark");
      }
      if (opts.device !== undefined) {
        const dev = new TextEncoder().encode(opts.device + "\0");
        if (dev.length > 16 || c.setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, dev.length) < 0) {
          throw syscallError("setsockopt", `bind ${what} to device "${opts.device}"`);
        }
      }
      const sa = buildSockaddr(address, port, family)!;
      if (c.bind(fd, sa, sa.length) < 0) throw syscallError("bind", `bind ${what}`);
      const got = new Uint8Array(NAME_SLOT);
      const len = new Uint32Array([NAME_SLOT]);
      if (c.getsockname(fd, got, new Uint8Array(len.buffer)) < 0) {
        throw syscallError("getsockname", `read the port of ${what}`);
      }
      const bound = (got[2] << 8) | got[3];
      return new UdpSocket(fd, family, address, bound, batch);
    } catch (e) {
      c.close(fd);
      throw e;
    }
  }

  /** The non-blocking fd for a Poller; -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /** A copy of the counters. */
  get stats(): UdpStats {
    return { ...this.#stats };
  }

  /** Effective kernel receive and send buffer sizes (the kernel doubles requests). */
  bufferSizes(): { rcvbuf: number; sndbuf: number } {
    const read = (name: number): number => {
      const v = new Int32Array(1);
      const l = new Uint32Array([4]);
      libc().getsockopt(
        this.#live("query"),
        SOL_SOCKET,
        name,
        new Uint8Array(v.buffer),
        new Uint8Array(l.buffer),
      );
      return v[0];
    };
    return { rcvbuf: read(SO_RCVBUF), sndbuf: read(SO_SNDBUF) };
  }

  #live(what: string): number {
    if (this.#fd < 0) {
      throw new SyscallError(
        what,
        9,
        `Cannot ${what} UDP socket on port ${this.port}: the socket is closed`,
      );
    }
    return this.#fd;
  }

  /**
   * Receives up to min(bufs.length, batch) datagrams without blocking: datagram
   * i lands at bufs[i][offset..], its length in sizes[i], its sender in from[i].
   * Returns the count; 0 when nothing is waiting.
   */
  recv(bufs: Uint8Array[], sizes: Int32Array, from: Endpoint[], offset = 0): number {
    const fd = this.#live("receive on");
    const rx = this.#rx;
    if (rx.offset !== offset) {
      rx.src.length = 0;
      rx.offset = offset;
    }
    const max = Math.min(bufs.length, sizes.length, this.batch);
    const h32 = rx.hdr32;
    for (let i = 0; i < max; i++) {
      rx.iov(i, bufs[i], offset);
      h32[i * 16 + 2] = NAME_SLOT; // msg_namelen, overwritten by the kernel
    }
    let r = libc().recvmmsg(fd, rx.hdrs, max, MSG_DONTWAIT, null);
    if (r < 0) {
      const e = lastErrno();
      if (e === EINTR) r = libc().recvmmsg(fd, rx.hdrs, max, MSG_DONTWAIT, null);
      if (r < 0) {
        const e2 = e === EINTR ? lastErrno() : e;
        if (e2 === EAGAIN || e2 === EINTR) return 0;
        throw syscallError("recvmmsg", `receive on UDP socket on port ${this.port}`, e2);
      }
    }
    for (let i = 0; i < r; i++) {
      sizes[i] = h32[i * 16 + 14]; // msg_len
      if (h32[i * 16 + 12] & MSG_TRUNC) this.#stats.truncated++;
      from[i] = this.#sender(i);
    }
    this.#stats.recvPackets += r;
    return r;
  }

  // Maps the sockaddr in rx slot i to an interned Endpoint, via the cache.
  #sender(i: number): Endpoint {
    const n16 = this.#rx.names16, n32 = this.#rx.names32;
    const fam = n16[i * 16];
    const port = ((n16[i * 16 + 1] & 0xff) << 8) | (n16[i * 16 + 1] >> 8);
    let w0 = 0, w1 = 0, w2 = 0, w3: number, f: 4 | 6;
    if (fam === AF_INET) {
      w3 = n32[i * 8 + 1];
      f = 4;
    } else {
      w0 = n32[i * 8 + 2];
      w1 = n32[i * 8 + 3];
      w2 = n32[i * 8 + 4];
      w3 = n32[i * 8 + 5];
      if (w0 === 0 && w1 === 0 && w2 === 0xffff0000) {
        w2 = 0;
        f = 4; // v4-mapped: a plain IPv4 peer
      } else f = 6;
    }
    const slot = (Math.imul(w3 ^ w0 ^ w1 ^ w2 ^ (port * 0x9e3779b1), 0x85ebca6b) >>> 24) &
      (CACHE - 1);
    const cw = this.#cW;
    if (
      this.#cFam[slot] === f && this.#cPort[slot] === port && cw[slot * 4 + 3] === w3 &&
      cw[slot * 4] === w0 && cw[slot * 4 + 1] === w1 && cw[slot * 4 + 2] === w2
    ) {
      return this.#cEp[slot]!;
    }
    const names = this.#rx.names;
    const address = f === 4
      ? formatIpv4(names, i * NAME_SLOT + (fam === AF_INET ? 4 : 20))
      : formatIpv6(names, i * NAME_SLOT + 8);
    const ep = endpoint("udp", address, port);
    this.#cFam[slot] = f;
    this.#cPort[slot] = port;
    cw[slot * 4] = w0;
    cw[slot * 4 + 1] = w1;
    cw[slot * 4 + 2] = w2;
    cw[slot * 4 + 3] = w3;
    this.#cEp[slot] = ep;
    return ep;
  }

  /**
   * Sends datagrams bufs[i][offset .. offset+sizes[i]] to to[i] for i < count,
   * without blocking. Returns how many were consumed: sent, or dropped because
   * the kernel refused that one datagram (unreachable, bad address; counted).
   * Less than `count` means the send buffer is full (EAGAIN): wait for POLLOUT
   * and resend from there, or drop the rest.
   */
  send(bufs: Uint8Array[], sizes: Int32Array, to: Endpoint[], count: number, offset = 0): number {
    const fd = this.#live("send on");
    const tx = this.#tx;
    if (tx.offset !== offset) {
      tx.src.length = 0;
      tx.offset = offset;
    }
    const c = libc();
    let done = 0;
    while (done < count) {
      const chunk = Math.min(count - done, this.batch);
      let n = 0; // slots filled; packets refused up front are dropped here
      for (let k = 0; k < chunk; k++) {
        const j = done + k;
        const ep = to[j];
        const size = sizes[j];
        if (tx.dst[n] !== ep) {
          const sa = ep ? this.#sockaddr(ep) : null;
          if (!sa || size < 0 || size > bufs[j].length - offset) {
            this.#stats.sendDropped++;
            continue;
          }
          tx.names.set(sa, n * NAME_SLOT);
          tx.hdr32[n * 16 + 2] = sa.length; // msg_namelen
          tx.dst[n] = ep;
        } else if (size < 0 || size > bufs[j].length - offset) {
          this.#stats.sendDropped++;
          continue;
        }
        tx.iov(n, bufs[j], offset);
        tx.iov32[n * 4 + 2] = size; // iov_len is per packet
        n++;
      }
      let k = 0;
      while (k < n) {
        const r = c.sendmmsg(
          fd,
          k === 0 ? tx.hdrs : tx.hdrs.subarray(k * MMSGHDR_SIZE),
          n - k,
          MSG_DONTWAIT,
        );
        if (r > 0) {
          k += r;
          this.#stats.sentPackets += r;
          continue;
        }
        const e = lastErrno();
        if (e === EINTR) continue;
        if (e === EAGAIN) {
          // Map slot k back to the caller's index: slots skip refused packets.
          return done + this.#consumedBefore(k, done, chunk, to, sizes, bufs, offset);
        }
        this.#stats.sendDropped++; // this one datagram was refused; go on with the rest
        k++;
      }
      done += chunk;
    }
    return count;
  }

  // How many caller packets from `start` precede slot `k` (refused ones included).
  #consumedBefore(
    k: number,
    start: number,
    chunk: number,
    to: Endpoint[],
    sizes: Int32Array,
    bufs: Uint8Array[],
    offset: number,
  ): number {
    let slots = 0;
    for (let j = 0; j < chunk; j++) {
      const i = start + j;
      const ok = to[i] && this.#sockaddr(to[i]) && sizes[i] >= 0 &&
        sizes[i] <= bufs[i].length - offset;
      if (ok) {
        if (slots === k) return j;
        slots++;
      }
    }
    return chunk;
  }

  #sockaddr(ep: Endpoint): Uint8Array | null {
    let sa = this.#sa.get(ep);
    if (sa === undefined) {
      sa = (ep.transport === "udp" ? buildSockaddr(ep.address, ep.port, this.family) : null) ??
        new Uint8Array(0);
      this.#sa.set(ep, sa);
    }
    return sa.length ? sa : null;
  }

  /** Closes the socket; idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    libc().close(this.#fd);
    this.#fd = -1;
  }
}
