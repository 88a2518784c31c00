/**
 * Access enforcement wired into a running edge: the enforcer on the pump's
 * route and filter hooks, fed by the compiled policy (swapped on every
 * policy change), device subjects and posture (re-read when a device
 * changes), client-to-client registrations, the edge DNS's answers for
 * FQDN segments, and writing its decisions to the decision log.
 */
import type { Clock } from "../../clock.ts";
import type { EdgeContext } from "../context.ts";
import { deviceForAddress } from "../devices.ts";
import { subjectFor } from "../subjects.ts";
import type { Peer, WireGuardDevice } from "../../wireguard/mod.ts";
import { isMeshPeer, type TunnelMeshPort } from "../mesh_port.ts";
import type { Pump } from "../../dataplane/pump.ts";
import { type DnsMessage, normalizeDnsName, tryParseDnsMessage } from "../../packet/dns.ts";
import { logger } from "../../log.ts";
import { DecisionLog } from "./decision_log.ts";
import { DnsBindings } from "./dns_bindings.ts";
import { Enforcer, type EnforcerStats } from "./enforcer.ts";
import { type Resolve, SegmentResolver } from "./segment_resolver.ts";

export { Enforcer } from "./enforcer.ts";
export type { EnforcementPolicy, FlowDecision } from "./enforcer.ts";

const log = logger("edge.access");

/** The parts of the edge data plane enforcement plugs into. */
export interface EnforcedTunnel {
  readonly device: WireGuardDevice;
  readonly pump: Pump;
  /** The edge mesh's peers: client-to-client traffic to devices on other edges goes there. */
  readonly mesh?: TunnelMeshPort;
  /** The clock the data plane holds for each round (flows are timed by it); else the edge's. */
  readonly clock?: Clock;
}

/** Running enforcement. */
export interface EdgeEnforcement {
  readonly enforcer: Enforcer;
  readonly dns: DnsBindings;
  readonly decisions: DecisionLog;
  /** For the edge DNS's `onForwarded`: remembers answers for segment names. */
  observeDnsAnswer(source: string, query: DnsMessage, answer: Uint8Array): void;
  /** Counters for diagnostics and metrics. */
  stats(): EnforcerStats & { flows: number; decisionsWritten: number; decisionsSuppressed: number };
  /** Stops timers and subscriptions and flushes the decision log. */
  close(): Promise<void>;
}

/** Options of startEnforcement. */
export interface EnforcementOptions {
  /** Most flows tracked (default 65,536). */
  capacity?: number;
  /** How the edge resolves FQDN segment names itself (default: its system resolver). */
  resolve?: Resolve;
}

/** Starts enforcing on `tunnel` for the edge in `ctx`. */
export function startEnforcement(
  ctx: EdgeContext,
  tunnel: EnforcedTunnel,
  opts: EnforcementOptions = {},
): EdgeEnforcement {
  const dns = new DnsBindings(ctx.clock);
  const resolver = new SegmentResolver(dns, opts.resolve);
  const decisions = new DecisionLog(ctx.store, ctx.clock);
  decisions.start();
  const enforcer = new Enforcer({
    network: ctx.network,
    edgeAddress: ctx.edgeAddress,
    clock: tunnel.clock ?? ctx.clock,
    capacity: opts.capacity,
    dns,
    loadDevice: (id) => {
      const d = ctx.store.devices.byId(id);
      const subject = d && !d.disabled ? subjectFor(ctx.store, id) : null;
      return subject ? { subject, posture: ctx.posture.profiles(id) } : null;
    },
    lookupAddress: (ip) => {
      const d = deviceForAddress(ctx, ip);
      if (!d || d.disabled) return null;
      const reg = ctx.store.c2c.get(d.id);
      return { deviceId: d.id, name: d.hostname, fqdn: reg?.valid ? reg.fqdn : null };
    },
    peerForDestination: (buf, off, len) =>
      tunnel.mesh?.peerForDestination(buf, off, len) ??
        tunnel.device.peerForDestination(buf, off, len),
    isTransit: isMeshPeer,
    localPeerForDestination: (buf, off, len) => tunnel.device.peerForDestination(buf, off, len),
    inject: (peer: Peer, packet) => {
      tunnel.pump.sendTo(peer, packet);
    },
    onDecision: (d) => decisions.add(d),
  });
  const apply = () => {
    const { access, revision } = ctx.policy.compiled();
    enforcer.setPolicy({ access, c2cEnabled: ctx.policy.clientToClient().enabled });
    resolver.setNames(access.exactDomains).catch(() => {});
    log.info("Access policy in force", {
      revision,
      segments: access.segmentCount,
      rules: access.ruleCount,
      ...(access.unknownSegments.length ? { unknownSegments: access.unknownSegments } : {}),
    });
  };
  apply();
  tunnel.pump.setRoute(enforcer.route);
  tunnel.pump.setFilter(enforcer.filter);

  const stop = new AbortController();
  (async () => {
    for await (
      const n of ctx.notifier.subscribe({
        kinds: [
          "policy_updated",
          "device_enrolled",
          "device_disabled",
          "device_enabled",
          "device_deleted",
        ],
        signal: stop.signal,
      })
    ) {
      if (n.kind === "policy_updated") apply();
      else if (typeof n.data.deviceId === "string") enforcer.deviceChanged(n.data.deviceId);
    }
  })().catch((e) => log.error("Access policy watcher stopped", { error: String(e) }));
  const offPosture = ctx.posture.onChange((id) => enforcer.deviceChanged(id));
  const offC2c = ctx.c2cChanged.on(() => enforcer.peersChanged());
  const offSubject = ctx.subjectChanged.on((id) => enforcer.deviceChanged(id));
  const timer = setInterval(() => {
    // Posture first: a result judged again this second re-decides its flows in this tick.
    ctx.posture.tick?.();
    enforcer.tick();
  }, 1000);
  resolver.start();

  return {
    enforcer,
    dns,
    decisions,
    observeDnsAnswer(source, query, answer) {
      const q = query.questions[0];
      const policy = enforcer.policy;
      if (!q || !policy || !policy.access.nameInSegments(q.name)) return;
      const m = tryParseDnsMessage(answer);
      if (!("header" in m)) return;
      const addresses: string[] = [];
      let ttl = Infinity;
      for (const r of m.answers) {
        if (r.type === "A" || r.type === "AAAA") {
          addresses.push(r.address);
          ttl = Math.min(ttl, r.ttl);
        }
      }
      if (addresses.length) dns.record(source, normalizeDnsName(q.name), addresses, ttl);
    },
    stats() {
      return {
        ...enforcer.stats,
        flows: enforcer.flows.size,
        decisionsWritten: decisions.stats.written,
        decisionsSuppressed: decisions.stats.suppressed,
      };
    },
    async close() {
      stop.abort();
      offPosture();
      offC2c();
      offSubject();
      clearInterval(timer);
      // The hooks stay: a stopping edge must not forward unenforced in its last moments.
      decisions.close();
      await resolver.close();
    },
  };
}
