/**
 * Access enforcement on the edge's data plane: the pump's `route` hook (every
 * decrypted packet a device sends) and `filter` hook (every packet the
 * kernel sends towards a device), over a connection tracker.
 *
 *   device → edge (route)                      kernel → device (filter)
 *   ─────────────────────                      ───────────────────────
 *   flow known, verdict current? ── yes ─▶     reply of a known flow? ── yes ─▶ pass
 *     allowed: TUN (or the peer, c2c)           ICMP error about one? ── yes ─▶ pass
 *     denied: RST / ICMP prohibited             anything else: drop (nobody behind
 *   reply of a flow another device opened?        the edge opens connections to a device)
 *   new flow: decide (policy value, subject,
 *     posture, DNS bindings), remember, log
 *
 * Policy apart from mechanism: the compiled policy is an immutable value
 * swapped in with `setPolicy`, which bumps a generation; every flow carries
 * the generation it was decided under (and its device's), so after a policy
 * or posture change each flow is decided again on its next packet — a
 * revoked flow is refused on the very next packet, in either direction.
 *
 * Destinations: the edge's own tunnel address (DNS, "am I protected") is
 * always allowed; another device's address is private (client-to-client:
 * allowed only while client-to-client is on, only to a device with a valid
 * registered host name, and only when a rule allows it — the name is matched
 * against segment domains); everything else is private when it falls in a
 * segment (by CIDR, or by a name the edge DNS gave this device for it) or
 * when it is not an internet address (10/8, CGNAT, link-local, … — so a
 * device that routes them into its tunnel reaches nothing behind the edge
 * without a rule), and internet otherwise, which is allowed through NAT.
 */
import type { Clock } from "../../clock.ts";
import type { FilterFn, RouteFn } from "../../dataplane/pump.ts";
import type { Peer } from "../../wireguard/mod.ts";
import { formatIpBytes, parseIpv4Text } from "../../packet/addr.ts";
import { IpHeader, IPPROTO, parseIp } from "../../packet/ip.ts";
import { parseTransport, TransportHeader } from "../../packet/transport.ts";
import {
  type AccessDecision,
  type AccessSubject,
  type CompiledAccess,
  type FlowProtocol,
  nonInternetReason,
  type PostureStates,
  type PreparedSubject,
  prepareSubject,
} from "../../policy/access.ts";
import { addressScope, addressScope4 } from "../../policy/cidr.ts";
import { FlowTable, type FlowTimeouts, newFlowKey, reverseKey } from "./conntrack.ts";
import { fillFlowKey, fillFragmentKey, quotedFlowKey, wordsText } from "./flow_key.ts";
import type { DnsBindings } from "./dns_bindings.ts";
import { buildAdminProhibited, buildTcpReset, TokenBucket } from "./reject.ts";

/** What enforcement decides with; swapped whole. */
export interface EnforcementPolicy {
  access: CompiledAccess;
  /** Client-to-client on: devices may reach each other (under the rules). */
  c2cEnabled: boolean;
}

/** A device as the data plane sees another device (a client-to-client destination). */
export interface PeerDevice {
  deviceId: string;
  name: string;
  /** Its valid registered FQDN, or null. */
  fqdn: string | null;
}

/** One access decision, for the decision log. */
export interface FlowDecision {
  /** Wall-clock ms. */
  at: number;
  deviceId: string;
  deviceName: string;
  user: string | null;
  src: string;
  dst: string;
  /** Destination port (0 for ICMP). */
  port: number;
  protocol: string;
  /** The name the destination was matched by, if any. */
  name: string | null;
  allowed: boolean;
  rule: string | null;
  segments: string[];
  reason: string;
}

/** What the enforcer needs from the edge. */
export interface EnforcerDeps {
  /** Device network, e.g. "100.64.0.0/16". */
  network: string;
  /** The edge's tunnel address. */
  edgeAddress: string;
  clock: Clock;
  /** Most flows tracked (default 65,536). */
  capacity?: number;
  timeouts?: Partial<FlowTimeouts>;
  /** Loads a device's subject and posture (first packet, and after a change); null = unknown. */
  loadDevice(deviceId: string): { subject: AccessSubject; posture: PostureStates } | null;
  /** The device holding tunnel address `ip`, or null. */
  lookupAddress(ip: string): PeerDevice | null;
  /**
   * The peer the packet at `buf[off..]` goes to (client-to-client): the
   * device's own peer, or the mesh peer of the edge the device is on.
   */
  peerForDestination(buf: Uint8Array, off: number, len: number): Peer | null;
  /** True for a peer that is another edge (the mesh): its packets take the `transit` path. */
  isTransit?(from: Peer): boolean;
  /** This edge's own device peer for the packet's destination (mesh delivery), or null. */
  localPeerForDestination?(buf: Uint8Array, off: number, len: number): Peer | null;
  /** Sends a packet to a device through its tunnel (RST / ICMP errors). */
  inject(peer: Peer, packet: Uint8Array): void;
  /** Told about each decision on a private destination. */
  onDecision?(d: FlowDecision): void;
  /** What the edge DNS told each device (FQDN segments). */
  dns?: DnsBindings;
  /** Rejections per device per second (burst 2×); default 20. */
  rejectRate?: number;
}

/** Counters for metrics and tests. */
export interface EnforcerStats {
  newFlows: number;
  redecided: number;
  allowed: number;
  denied: number;
  resets: number;
  icmpErrors: number;
  rejectsLimited: number;
  replies: number;
  unsolicited: number;
  malformed: number;
  unknownDevice: number;
  /** Packets another edge sent over the mesh and this edge delivered to its device. */
  transit: number;
  /** Mesh packets dropped: malformed, or not for a device of this edge. */
  transitDropped: number;
}

interface DeviceSlot {
  handle: number;
  id: string;
  gen: number;
  loaded: boolean;
  subject: PreparedSubject | null;
  posture: PostureStates;
  /** Wall ms when a posture result it was decided with expires. */
  validUntil: number;
  bucket: TokenBucket;
}

/** Per-flow data kept in the table. */
interface FlowData {
  /** The peer to forward to (client-to-client), or null for the TUN. */
  peer: Peer | null;
  rule: string | null;
  reason: string | null;
  private: boolean;
}

/** Why a flow that arrived over the mesh is in this edge's table. */
const TRANSIT_REASON = "allowed by the edge the source device is connected to (over the mesh)";

const PROTOCOL_NAME: Record<number, FlowProtocol> = { 6: "tcp", 17: "udp", 1: "icmp", 58: "icmp" };

/** The enforcer. `route` and `filter` are the pump hooks. */
export class Enforcer {
  readonly stats: EnforcerStats = {
    newFlows: 0,
    redecided: 0,
    allowed: 0,
    denied: 0,
    resets: 0,
    icmpErrors: 0,
    rejectsLimited: 0,
    replies: 0,
    unsolicited: 0,
    malformed: 0,
    unknownDevice: 0,
    transit: 0,
    transitDropped: 0,
  };
  readonly flows: FlowTable;
  readonly #d: EnforcerDeps;
  #policy: EnforcementPolicy | null = null;
  #gen = 1;
  #devs: DeviceSlot[] = [];
  #byId = new Map<string, DeviceSlot>();
  #peers = new Map<string, PeerDevice | null>();
  readonly #netBase: number;
  readonly #netMask: number;
  readonly #edge: number;
  readonly #edgeBytes: Uint8Array;
  readonly #global: TokenBucket;
  // Scratch, one packet at a time.
  readonly #ip = new IpHeader();
  readonly #tp = new TransportHeader();
  readonly #key = newFlowKey();
  readonly #rkey = newFlowKey();
  readonly #addr = new Uint8Array(16);

  /** Builds an enforcer; nothing passes until `setPolicy`. */
  constructor(deps: EnforcerDeps) {
    this.#d = deps;
    this.flows = new FlowTable({
      capacity: deps.capacity,
      clock: deps.clock,
      timeouts: deps.timeouts,
    });
    const [base, len] = deps.network.split("/");
    const b = parseIpv4Text(base), e = parseIpv4Text(deps.edgeAddress);
    const bits = Number(len);
    if (!b || !e || !Number.isInteger(bits) || bits < 0 || bits > 32) {
      throw new RangeError(`Cannot enforce on network "${deps.network}"`);
    }
    this.#netMask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    this.#netBase = (((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) & this.#netMask) >>> 0;
    this.#edge = ((e[0] << 24) | (e[1] << 16) | (e[2] << 8) | e[3]) >>> 0;
    this.#edgeBytes = e;
    this.#global = new TokenBucket(1000, 2000, deps.clock.monotonic());
  }

  /** Swaps in a new policy value; every flow is decided again on its next packet. */
  setPolicy(p: EnforcementPolicy): void {
    this.#policy = p;
    this.#gen = (this.#gen + 1) >>> 0 || 1;
    this.#peers.clear();
  }

  /** The policy in force. */
  get policy(): EnforcementPolicy | null {
    return this.#policy;
  }

  /** A device's subject or posture changed: its flows are decided again on their next packet. */
  deviceChanged(deviceId: string): void {
    const d = this.#byId.get(deviceId);
    if (d) {
      d.gen = (d.gen + 1) >>> 0;
      d.loaded = false;
    }
    // It may also be another device's client-to-client destination.
    this.peersChanged();
  }

  /** Client-to-client registrations changed: flows to devices are decided again. */
  peersChanged(): void {
    this.#peers.clear();
    // Flows towards devices depend on registrations: a new generation covers them.
    this.#gen = (this.#gen + 1) >>> 0 || 1;
  }

  /** Periodic work: expire flows, and re-decide devices whose posture results expired. */
  tick(): void {
    this.flows.sweep();
    const now = this.#d.clock.now();
    for (const d of this.#devs) {
      if (d.loaded && d.validUntil <= now) {
        d.validUntil = Infinity; // loading it again computes the next expiry
        this.deviceChanged(d.id);
      }
    }
  }

  /** The route hook: a decrypted packet from device `from` (or from another edge over the mesh). */
  readonly route: RouteFn = (buf, off, len, from) => {
    if (this.#d.isTransit?.(from)) return this.#transit(buf, off, len);
    const ip = this.#ip, tp = this.#tp;
    if (parseIp(buf, off, len, ip) !== null || parseTransport(ip, tp) !== null) {
      this.stats.malformed++;
      return "drop";
    }
    const key = this.#key;
    fillFlowKey(ip, tp, key);
    const ft = this.flows;
    let slot = ft.lookup(key);
    if (slot >= 0) {
      const dev = this.#devs[ft.dev[slot]];
      if (ft.gen[slot] === this.#gen && ft.devGen[slot] === dev.gen) {
        ft.seen(slot, false, tp.tcpFlags);
        if (ft.verdict[slot] === 1) return (ft.data[slot] as FlowData | null)?.peer ?? "tun";
        this.#reject(dev, from);
        return "drop";
      }
    } else if ((key[9] & 0x10000) === 0) {
      // A reply in a flow another device opened to this one (client-to-client).
      const r = ft.lookup(reverseKey(key, this.#rkey));
      if (r >= 0 && (ft.data[r] as FlowData | null)?.peer) {
        const ok = this.#current(r) && ft.verdict[r] === 1;
        if (!ok) return "drop";
        ft.seen(r, true, tp.tcpFlags);
        this.stats.replies++;
        return this.#d.peerForDestination(buf, off, len) ?? "drop";
      }
    } else {
      // A later fragment whose first fragment was never allowed.
      return "drop";
    }
    const dev = this.#device(from);
    if (!dev) {
      this.stats.unknownDevice++;
      return "drop";
    }
    const first = slot < 0;
    const out = this.#evaluate(dev, key, buf, off, len);
    if (first) {
      slot = ft.insert(key, out.allowed, dev.handle, this.#gen, dev.gen);
      this.stats.newFlows++;
    } else {
      const before = ft.data[slot] as FlowData | null;
      ft.redecide(slot, out.allowed, this.#gen, dev.gen);
      // The address may have passed to another device since (deleted, leased again).
      ft.setDevice(slot, dev.handle);
      this.stats.redecided++;
      // Logged again only when the outcome changed.
      if (before && before.reason === out.data.reason) {
        out.log = null;
      }
    }
    ft.data[slot] = out.data;
    ft.seen(slot, false, tp.tcpFlags);
    if (ip.moreFragments && out.allowed) this.#allowFragments(ip, dev, out.data);
    if (out.log) this.#d.onDecision?.(out.log);
    if (out.allowed) {
      this.stats.allowed++;
      return out.data.peer ?? "tun";
    }
    this.stats.denied++;
    this.#reject(dev, from);
    return "drop";
  };

  /** The filter hook: a packet the kernel sends towards a device. */
  readonly filter: FilterFn = (buf, off, len) => {
    const ip = this.#ip, tp = this.#tp;
    if (parseIp(buf, off, len, ip) !== null || parseTransport(ip, tp) !== null) {
      this.stats.malformed++;
      return "drop";
    }
    const key = this.#key;
    fillFlowKey(ip, tp, key);
    const ft = this.flows;
    const orig = reverseKey(key, this.#rkey);
    let slot = ft.lookup(orig);
    if (slot < 0 && (key[9] & 0x10000) !== 0) slot = ft.lookup(key); // reply fragments
    if (slot >= 0) {
      if (!this.#current(slot) || ft.verdict[slot] !== 1) return "drop";
      ft.seen(slot, true, tp.tcpFlags);
      if (ip.moreFragments && ip.fragmentOffset === 0) {
        fillFragmentKey(ip, this.#key);
        if (ft.lookup(this.#key) < 0) {
          const s = ft.insert(this.#key, true, ft.dev[slot], this.#gen, ft.devGen[slot]);
          ft.data[s] = ft.data[slot];
        }
      }
      this.stats.replies++;
      return "pass";
    }
    if (quotedFlowKey(ip, tp, this.#rkey)) {
      const q = ft.lookup(this.#rkey);
      if (q >= 0 && this.#current(q) && ft.verdict[q] === 1) return "pass";
    }
    this.stats.unsolicited++;
    return "drop";
  };

  /**
   * A packet another edge forwarded over the mesh to one of this edge's
   * devices. That edge decided it (the device that sent it is connected
   * there, and the same policy is shared), and only its registered key with
   * a source located there gets this far (the device's transit check), so it
   * is delivered, never decided again and never sent to the TUN. A new flow
   * is remembered, so the device's replies are recognised as replies and go
   * back over the mesh rather than being judged as flows of their own.
   */
  #transit(buf: Uint8Array, off: number, len: number): "drop" | Peer {
    const ip = this.#ip, tp = this.#tp;
    if (parseIp(buf, off, len, ip) !== null || parseTransport(ip, tp) !== null) {
      this.stats.transitDropped++;
      return "drop";
    }
    const to = this.#d.localPeerForDestination?.(buf, off, len) ?? null;
    if (!to || this.#d.isTransit?.(to) || typeof to.userData !== "string") {
      this.stats.transitDropped++;
      return "drop";
    }
    const key = this.#key;
    fillFlowKey(ip, tp, key);
    const ft = this.flows;
    const slot = ft.lookup(key);
    if (slot >= 0) {
      if (ft.verdict[slot] !== 1 || (ft.data[slot] as FlowData | null)?.peer !== to) {
        ft.redecide(slot, true, this.#gen, this.#devs[ft.dev[slot]].gen);
        ft.data[slot] = { peer: to, rule: null, reason: TRANSIT_REASON, private: true };
      }
      ft.seen(slot, false, tp.tcpFlags);
    } else if ((key[9] & 0x10000) === 0) {
      const r = ft.lookup(reverseKey(key, this.#rkey));
      if (r >= 0) ft.seen(r, true, tp.tcpFlags);
      else if (ip.version === 4) {
        const src = this.#d.lookupAddress(this.#devAddress(key));
        if (src) {
          const dev = this.#slotOf(src.deviceId);
          const s = ft.insert(key, true, dev.handle, this.#gen, dev.gen);
          ft.data[s] = { peer: to, rule: null, reason: TRANSIT_REASON, private: true };
          ft.seen(s, false, tp.tcpFlags);
        }
      }
    }
    this.stats.transit++;
    return to;
  }

  /** True when a flow's verdict was reached under the current policy and device state; else decides it again. */
  #current(slot: number): boolean {
    const ft = this.flows;
    const dev = this.#devs[ft.dev[slot]];
    if (ft.gen[slot] === this.#gen && ft.devGen[slot] === dev.gen) return true;
    if (!dev.loaded) this.#load(dev);
    if (!dev.subject) return false;
    const key = ft.keyOf(slot);
    const copy = newFlowKey();
    copy.set(key);
    const out = this.#evaluate(dev, copy, null, 0, 0);
    const before = ft.data[slot] as FlowData | null;
    const changed = !before || before.reason !== out.data.reason;
    ft.redecide(slot, out.allowed, this.#gen, dev.gen);
    ft.data[slot] = { ...out.data, peer: before?.peer ?? out.data.peer };
    this.stats.redecided++;
    if (changed && out.log) this.#d.onDecision?.(out.log);
    return true;
  }

  #device(from: Peer): DeviceSlot | null {
    const id = from.userData;
    if (typeof id !== "string") return null;
    const d = this.#slotOf(id);
    if (!d.loaded) this.#load(d);
    return d.subject ? d : null;
  }

  /** The slot of a device (made on first sight, not loaded). */
  #slotOf(id: string): DeviceSlot {
    let d = this.#byId.get(id);
    if (!d) {
      d = {
        handle: this.#devs.length,
        id,
        gen: 1,
        loaded: false,
        subject: null,
        posture: new Map(),
        validUntil: Infinity,
        bucket: new TokenBucket(
          this.#d.rejectRate ?? 20,
          2 * (this.#d.rejectRate ?? 20),
          this.#d.clock.monotonic(),
        ),
      };
      this.#devs.push(d);
      this.#byId.set(id, d);
    }
    return d;
  }

  #load(d: DeviceSlot): void {
    const got = this.#d.loadDevice(d.id);
    d.loaded = true;
    d.subject = got ? prepareSubject(got.subject) : null;
    d.posture = got?.posture ?? new Map();
    const now = this.#d.clock.now();
    let until = Infinity;
    for (const p of d.posture.values()) if (p.expiresAt > now) until = Math.min(until, p.expiresAt);
    d.validUntil = until;
  }

  /** Decides the flow in `key` for device `dev`. */
  #evaluate(
    dev: DeviceSlot,
    key: Uint32Array,
    buf: Uint8Array | null,
    off: number,
    len: number,
  ): { allowed: boolean; data: FlowData; log: FlowDecision | null } {
    const family = ((key[9] >>> 8) & 0xff) as 4 | 6;
    const proto = key[9] & 0xff;
    const port = proto === IPPROTO.TCP || proto === IPPROTO.UDP ? key[8] & 0xffff : 0;
    const a = this.#addr;
    for (let i = 0; i < 4; i++) {
      a[4 * i] = key[4 + i] >>> 24;
      a[4 * i + 1] = (key[4 + i] >>> 16) & 0xff;
      a[4 * i + 2] = (key[4 + i] >>> 8) & 0xff;
      a[4 * i + 3] = key[4 + i] & 0xff;
    }
    const policy = this.#policy;
    const subject = dev.subject!;
    const dst4 = key[4];
    if (family === 4 && dst4 === this.#edge) {
      return {
        allowed: true,
        data: { peer: null, rule: null, reason: null, private: false },
        log: null,
      };
    }
    const protocol: FlowProtocol | undefined = PROTOCOL_NAME[proto];
    const deny = (reason: string, names: string[] | null = null) =>
      this.#result(dev, key, port, protocol, names, {
        allowed: false,
        private: true,
        segments: [],
        rule: null,
        reason,
      }, null);
    if (!policy) return deny("denied: the edge has no access policy loaded yet");
    if (family === 4 && ((dst4 & this.#netMask) >>> 0) === this.#netBase) {
      // Client-to-client.
      const dstText = formatIpBytes(a, 0, 4);
      if (!policy.c2cEnabled) return deny("denied: client-to-client is disabled");
      let peer = this.#peers.get(dstText);
      if (peer === undefined) {
        peer = this.#d.lookupAddress(dstText);
        this.#peers.set(dstText, peer);
      }
      if (!peer) return deny(`denied: no device holds ${dstText}`);
      if (peer.fqdn === null) {
        return deny(`denied: device "${peer.name}" has no valid registered host name`);
      }
      if (!protocol) {
        return deny(`denied: IP protocol ${proto} is not allowed between devices`, [peer.fqdn]);
      }
      const d = policy.access.decideAt(
        subject,
        dev.posture,
        a,
        0,
        4,
        protocol,
        port,
        [peer.fqdn],
        `the destination is device "${peer.name}"`,
        this.#d.clock.now(),
      );
      const target = d.allowed ? (buf ? this.#d.peerForDestination(buf, off, len) : null) : null;
      if (d.allowed && buf && !target) {
        return deny(`denied: device "${peer.name}" is not connected`);
      }
      return this.#result(dev, key, port, protocol, [peer.fqdn], d, target);
    }
    const src = family === 4 ? this.#devAddress(key) : wordsText(key, 0);
    const names = this.#d.dns?.namesAt(src, a, 0, family === 4 ? 4 : 16) ?? null;
    // Not the internet (10/8, CGNAT, link-local…): private, default deny.
    const dst6 = family === 6 ? formatIpBytes(a, 0, 16) : null;
    const scope = dst6 === null ? addressScope4(dst4) : addressScope(dst6);
    const special = scope && nonInternetReason(dst6 ?? formatIpBytes(a, 0, 4), scope);
    if (!protocol) {
      if (policy.access.addressInSegments(a, 0, family)) {
        return deny(`denied: IP protocol ${proto} is not allowed to application segments`);
      }
      if (special) return deny(`denied: ${special}, and no application segment covers it`);
      return {
        allowed: true,
        data: { peer: null, rule: null, reason: null, private: false },
        log: null,
      };
    }
    const d = policy.access.decideAt(
      subject,
      dev.posture,
      a,
      0,
      family,
      protocol,
      port,
      names,
      special,
      this.#d.clock.now(),
    );
    return this.#result(dev, key, port, protocol, names, d, null);
  }

  #devAddress(key: Uint32Array): string {
    const w = key[0];
    return `${w >>> 24}.${(w >>> 16) & 0xff}.${(w >>> 8) & 0xff}.${w & 0xff}`;
  }

  #result(
    dev: DeviceSlot,
    key: Uint32Array,
    port: number,
    protocol: FlowProtocol | undefined,
    names: readonly string[] | null,
    d: AccessDecision,
    peer: Peer | null,
  ): { allowed: boolean; data: FlowData; log: FlowDecision | null } {
    const data: FlowData = { peer, rule: d.rule, reason: d.reason, private: d.private };
    if (!d.private) return { allowed: d.allowed, data, log: null };
    const family = (key[9] >>> 8) & 0xff;
    const a = this.#addr;
    const s = dev.subject!.subject;
    const src = family === 4 ? this.#devAddress(key) : wordsText(key, 0);
    return {
      allowed: d.allowed,
      data,
      log: {
        at: this.#d.clock.now(),
        deviceId: s.deviceId,
        deviceName: s.deviceName,
        user: s.user,
        src,
        dst: formatIpBytes(a, 0, family === 4 ? 4 : 16),
        port,
        protocol: protocol ?? `ip-${key[9] & 0xff}`,
        name: names?.[0] ?? null,
        allowed: d.allowed,
        rule: d.rule,
        segments: d.segments,
        reason: d.reason,
      },
    };
  }

  /** Sends the rejection for the packet in the scratch headers, rate-limited. */
  #reject(dev: DeviceSlot, from: Peer): void {
    const now = this.#d.clock.monotonic();
    const ip = this.#ip, tp = this.#tp;
    // The budget first: a flood of denied packets must not cost a packet build each.
    if (!dev.bucket.take(now) || !this.#global.take(now)) {
      this.stats.rejectsLimited++;
      return;
    }
    const pkt = ip.protocol === IPPROTO.TCP
      ? buildTcpReset(ip, tp)
      : ip.version === 4
      ? buildAdminProhibited(ip, tp, this.#edgeBytes)
      : null;
    if (!pkt) return;
    if (ip.protocol === IPPROTO.TCP) this.stats.resets++;
    else this.stats.icmpErrors++;
    this.#d.inject(from, pkt);
  }

  #allowFragments(ip: IpHeader, dev: DeviceSlot, data: FlowData): void {
    const k = newFlowKey();
    fillFragmentKey(ip, k);
    const ft = this.flows;
    if (ft.lookup(k) >= 0) return;
    const s = ft.insert(k, true, dev.handle, this.#gen, dev.gen);
    ft.data[s] = data;
  }
}
