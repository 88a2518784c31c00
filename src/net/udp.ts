/**
 * UDP socket through ffi/libc: the tunnel's primary transport.
 *
 * Batches: recv drains with one recvmmsg and send goes out with sendmmsg, so
 * a burst of 64 datagrams costs one FFI call each way. The mmsghdr, iovec and
 * sockaddr arrays are allocated once per socket (see mmsg.ts); the iovec base
 * of each slot is cached by the identity of the caller's slot buffer, so the
 * steady state writes only lengths. The caller's buffers must stay attached
 * (never transferred) while the socket uses them.
 *
 * Offloads (asked for with `gso`/`gro`): with UDP GSO, a run of same-size
 * datagrams to one destination (the last may be shorter) leaves as one
 * message with a UDP_SEGMENT control message, gathered straight from the
 * caller's slots, and the kernel cuts it after one trip through its stack;
 * with UDP GRO the kernel hands us runs it coalesced, which GroSplitter cuts
 * back into slots. Each falls back on its own: GSO is switched off for good
 * when a send says EIO (kernels before 6.x when the egress device cannot
 * checksum); a run the kernel refuses for its size (EINVAL, EMSGSIZE: larger
 * than the path MTU) is resent datagram by datagram, and after 8 such runs in
 * a row GSO is switched off too; `offloads` says which are on and why.
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
  EINVAL,
  EIO,
  EMSGSIZE,
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
import { NAME_SLOT, RX_CHUNK, RxVec, TxVec } from "./mmsg.ts";
import { buildSockaddr, formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from "./sockaddr.ts";
import { GroSplitter, type GroStats } from "./udp_gro.ts";
import {
  enableGro,
  explain,
  NOT_ASKED,
  probeGso,
  type UdpOffloads,
  type UdpOffloadState,
} from "./udp_offload.ts";

export type { UdpOffloads, UdpOffloadState } from "./udp_offload.ts";

/** Most datagrams the kernel takes in one GSO message (UDP_MAX_SEGMENTS before Linux 6.9). */
const GSO_MAX_SEGMENTS = 64;
/** Most UDP payload bytes in one message (65535 − IPv4 header − UDP header). */
const GSO_MAX_BYTES = 65507;
/** Runs refused for their size in a row (no GSO send in between) before GSO is switched off. */
const GSO_REFUSALS_OFF = 8;

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
  /** Send runs of same-size datagrams as one UDP GSO message (default false). */
  gso?: boolean;
  /** Let the kernel coalesce received datagrams (UDP GRO; default false). */
  gro?: boolean;
}

/** Counters a UDP socket keeps. */
export interface UdpStats extends Partial<GroStats> {
  recvPackets: number;
  sentPackets: number;
  sendDropped: number;
  truncated: number;
  /** Messages sent with UDP_SEGMENT, and the datagrams they carried. */
  gsoSends?: number;
  gsoDatagrams?: number;
  /** Runs the kernel refused for their size and that went out datagram by datagram. */
  gsoRefused?: number;
}

const MSG_TRUNC = 0x20;
const CACHE = 256; // direct-mapped sender cache entries

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
  #rx: RxVec;
  #tx: TxVec;
  #txOffset = -1;
  #gso: UdpOffloadState;
  #gro: UdpOffloadState;
  #split: GroSplitter | null = null;
  #sa = new WeakMap<Endpoint, Uint8Array>();
  // Sender cache: family, 4 address words (v4 uses word 3), port, endpoint.
  #cFam = new Uint8Array(CACHE);
  #cW = new Uint32Array(CACHE * 4);
  #cPort = new Uint16Array(CACHE);
  #cEp: (Endpoint | undefined)[] = new Array(CACHE);
  #stats: UdpStats = { recvPackets: 0, sentPackets: 0, sendDropped: 0, truncated: 0 };
  #gsoStats = { gsoSends: 0, gsoDatagrams: 0, gsoRefused: 0 };
  #refusedInARow = 0;

  private constructor(
    fd: number,
    family: 4 | 6,
    address: string,
    port: number,
    batch: number,
    gso: UdpOffloadState,
    gro: UdpOffloadState,
  ) {
    this.#fd = fd;
    this.family = family;
    this.address = address;
    this.port = port;
    this.batch = batch;
    this.#gso = gso;
    this.#gro = gro;
    this.#rx = new RxVec(batch, gro.on, gro.on ? new Uint8Array(batch * RX_CHUNK) : null);
    if (gro.on) this.#split = new GroSplitter(batch);
    this.#tx = new TxVec(batch);
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
      const gso = opts.gso ? probeGso(fd) : { on: false, why: NOT_ASKED };
      const gro = opts.gro ? enableGro(fd) : { on: false, why: NOT_ASKED };
      return new UdpSocket(fd, family, address, bound, batch, gso, gro);
    } catch (e) {
      c.close(fd);
      throw e;
    }
  }

  /** The non-blocking fd for a Poller; -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /** A copy of the counters (with the offload paths' when they are on). */
  get stats(): UdpStats {
    const out: UdpStats = { ...this.#stats };
    const g = this.#gsoStats;
    if (this.#gso.on || g.gsoSends + g.gsoRefused > 0) Object.assign(out, g);
    if (this.#split) Object.assign(out, this.#split.stats);
    return out;
  }

  /** Which offloads are on, and why the others are off (runtime fallbacks included). */
  get offloads(): UdpOffloads {
    return { gso: this.#gso, gro: this.#gro };
  }

  /** Staging bytes GRO would like in the caller's arena (0 without GRO). */
  get stagingBytes(): number {
    return this.#gro.on ? this.batch * RX_CHUNK : 0;
  }

  /**
   * Moves GRO staging into `region` (an arena shared with the caller's slots,
   * so cutting runs into slots is a copyWithin); ignored while datagrams are
   * pending or when the region is too small.
   */
  useStaging(region: Uint8Array): void {
    if (!this.#split || this.#split.pending || region.length < this.stagingBytes) return;
    this.#rx.useStaging(region.subarray(0, this.stagingBytes));
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
    const split = this.#split;
    const max = Math.min(bufs.length, sizes.length);
    if (split?.pending) {
      const n = split.drain(bufs, sizes, from, offset, max);
      this.#stats.recvPackets += n;
      return n;
    }
    const vlen = Math.min(max, this.batch);
    for (let i = 0; i < vlen; i++) rx.prepare(i, bufs[i], offset);
    let r = libc().recvmmsg(fd, rx.hdrs, vlen, MSG_DONTWAIT, null);
    if (r < 0) {
      const e = lastErrno();
      if (e === EINTR) r = libc().recvmmsg(fd, rx.hdrs, vlen, MSG_DONTWAIT, null);
      if (r < 0) {
        const e2 = e === EINTR ? lastErrno() : e;
        rx.filled = 0;
        if (e2 === EAGAIN || e2 === EINTR) return 0;
        throw syscallError("recvmmsg", `receive on UDP socket on port ${this.port}`, e2);
      }
    }
    rx.filled = r;
    let n: number;
    if (split) {
      for (let i = 0; i < r; i++) if (rx.flags(i) & MSG_TRUNC) this.#stats.truncated++;
      n = split.split(rx, r, bufs, sizes, from, offset, max, this.#senderOf);
    } else {
      for (let i = 0; i < r; i++) {
        sizes[i] = rx.length(i);
        if (rx.flags(i) & MSG_TRUNC) this.#stats.truncated++;
        from[i] = this.#sender(i);
      }
      n = r;
    }
    this.#stats.recvPackets += n;
    return n;
  }

  readonly #senderOf = (i: number): Endpoint => this.#sender(i);

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
    if (this.#txOffset !== offset) {
      tx.dst.length = 0;
      this.#txOffset = offset;
    }
    const c = libc();
    let done = 0;
    // Datagrams before this index go one by one (the kernel refused them as a run).
    let singlesUntil = 0;
    // Refused datagrams before this index were counted already (a resend gathers again).
    let countedUntil = 0;
    while (done < count) {
      // Gather up to `batch` datagrams into messages: runs for one destination with GSO.
      const gso = this.#gso.on;
      let nIov = 0, nMsg = 0;
      let runGso = 0, runBytes = 0, runOpen = false;
      let j = done;
      while (j < count && nIov < this.batch) {
        const ep = to[j];
        const size = sizes[j];
        const sa = ep ? this.#sockaddr(ep) : null;
        if (!sa || size < 0 || size > bufs[j].length - offset) {
          if (j >= countedUntil) this.#stats.sendDropped++;
          j++;
          runOpen = false; // a message covers consecutive caller indices only
          continue;
        }
        const m = nMsg - 1;
        if (
          runOpen && gso && j >= singlesUntil && tx.dst[m] === ep && size <= runGso &&
          tx.count[m] < GSO_MAX_SEGMENTS && runBytes + size <= GSO_MAX_BYTES
        ) {
          tx.iov(nIov++, bufs[j], offset, size);
          tx.count[m]++;
          runBytes += size;
          if (size < runGso) runOpen = false; // a shorter datagram ends the run
          j++;
          continue;
        }
        // A new message for this datagram.
        const k = nMsg++;
        if (tx.dst[k] !== ep) {
          tx.names.set(sa, k * NAME_SLOT);
          tx.hdr32[k * 16 + 2] = sa.length; // msg_namelen
          tx.dst[k] = ep;
        }
        tx.first[k] = j;
        tx.count[k] = 1;
        tx.iov(nIov++, bufs[j], offset, size);
        runGso = size;
        runBytes = size;
        runOpen = size > 0;
        j++;
      }
      // Finish the messages: iovec ranges, and UDP_SEGMENT where a run has several.
      let iov = 0;
      for (let m = 0; m < nMsg; m++) {
        const n = tx.count[m];
        tx.message(m, iov, n, n > 1 ? sizes[tx.first[m]] : 0);
        iov += n;
      }
      let k = 0;
      let restart = -1;
      while (k < nMsg) {
        const r = c.sendmmsg(
          fd,
          k === 0 ? tx.hdrs : tx.hdrs.subarray(k * MMSGHDR_SIZE),
          nMsg - k,
          MSG_DONTWAIT,
        );
        if (r > 0) {
          for (let m = k; m < k + r; m++) this.#sent(tx.count[m]);
          k += r;
          continue;
        }
        const e = lastErrno();
        if (e === EINTR) continue;
        if (e === EAGAIN) return tx.first[k]; // datagrams before it are consumed
        if (tx.count[k] > 1) {
          if (e === EIO) {
            // udp_send_skb(): the egress device cannot checksum, which GSO needs.
            this.#gso = {
              on: false,
              why: `kernel refused a GSO send: ${
                explain(e)
              } (the egress device lacks checksum offload)`,
            };
          }
          if (e === EIO || e === EINVAL || e === EMSGSIZE) {
            // Resend this run datagram by datagram (and, after EIO, everything else too).
            this.#gsoStats.gsoRefused++;
            if (e !== EIO && ++this.#refusedInARow >= GSO_REFUSALS_OFF && this.#gso.on) {
              // The datagrams are larger than the path takes in one piece: every run would
              // be refused, so stop asking (the kernel fragments the single ones).
              this.#gso = {
                on: false,
                why: `kernel refused ${GSO_REFUSALS_OFF} GSO sends in a row: ${
                  explain(e)
                } (datagrams larger than the path MTU)`,
              };
            }
            singlesUntil = tx.first[k] + tx.count[k];
            restart = tx.first[k];
            break;
          }
        }
        // This one message was refused (unreachable, bad address): drop it, go on.
        this.#stats.sendDropped += tx.count[k];
        k++;
      }
      countedUntil = Math.max(countedUntil, j);
      done = restart >= 0 ? restart : j;
    }
    return count;
  }

  #sent(datagrams: number): void {
    this.#stats.sentPackets += datagrams;
    if (datagrams > 1) {
      this.#refusedInARow = 0;
      this.#gsoStats.gsoSends++;
      this.#gsoStats.gsoDatagrams += datagrams;
    }
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
    this.#split?.reset();
  }
}
