/**
 * The real NetworkPort: where is this device, and what does the forwarding
 * profile say to do here?
 *
 * evaluate() collects the facts the policy's trusted-network criteria need
 * (facts.ts: resolv.conf, routes, addresses, the criteria's hostnames and
 * TLS beacons, and — only when an egress criterion exists — our public
 * address as the edge's bootstrap listener sees it), evaluates them
 * (src/policy/trusted_network.ts) and maps the network type to the profile's
 * action (src/policy/forwarding.ts). The verdict keeps every matched and
 * unmatched criterion so the console can say why.
 *
 * subscribe() relays the change monitor's debounced events (our own tunnel
 * interface is ignored by the monitor), tagged with whether the network's
 * identity — default gateways and local addresses — changed, so the engine
 * can tell "moved to another network" from "something moved within it".
 *
 * probeEdge() is the captive-portal / reachability probe. It goes to the
 * edge's own address, which is never routed into the tunnel, so it leaves
 * through the physical interface; a fresh HTTP client per probe makes sure no
 * pooled connection from before a move (or before a portal started
 * intercepting) answers for the current network.
 */
import type { PolicyBundle } from "../../policy/types.ts";
import {
  beaconsToProbe,
  evaluateTrustedNetwork,
  hostnamesToResolve,
} from "../../policy/trusted_network.ts";
import { decideForwarding } from "../../policy/forwarding.ts";
import { canonicalIp } from "../../policy/cidr.ts";
import { logger } from "../../log.ts";
import type { NetworkVerdict } from "../engine_state.ts";
import type { NetworkChangeInfo, NetworkContext, NetworkPort } from "../network_port.ts";
import {
  defaultGateways,
  ipJson,
  localAddresses,
  type NetworkFactsSource,
  parseIpAddrs,
  parseIpRoutes,
  SystemFactsSource,
} from "./facts.ts";
import type { NetworkMonitor } from "./monitor.ts";
import { type CaptiveProbeResult, type FetchFn, probeCaptivePortal } from "./captive.ts";

const log = logger("network.port");

/** The path of the edge's "what is my address" endpoint on the bootstrap listener. */
export const EGRESS_PATH = "/egress";

/** Options of the system network port. */
export interface SystemNetworkPortOptions {
  /** Change events (the real SystemNetworkMonitor, or a fake). */
  monitor: NetworkMonitor;
  /** Facts source (default: SystemFactsSource). */
  facts?: NetworkFactsSource;
  /** Our tunnel interface: never another VPN, its addresses never ours. */
  ourInterface: string;
  /** Fetch for probes; default: real fetch on a fresh client per request. */
  fetch?: FetchFn;
  /** Probe timeout (default 3000 ms). */
  probeTimeoutMs?: number;
  /** Network identity (gateways + addresses); default reads `ip -j route/addr`. */
  identity?: () => Promise<string>;
}

/** Reads default gateways and local addresses, the parts that name "this network". */
export async function systemNetworkIdentity(ourInterface?: string): Promise<string> {
  const [r4, r6, addrs] = await Promise.all([
    ipJson(["-4", "route", "show", "table", "main"]),
    ipJson(["-6", "route", "show", "table", "main"]),
    ipJson(["addr", "show"]),
  ]);
  const routes = [...parseIpRoutes(r4, 4), ...parseIpRoutes(r6, 6)];
  const gws = defaultGateways(routes).sort();
  // Link-local IPv6 addresses come and go with links; they do not name a network.
  const addresses = localAddresses(parseIpAddrs(addrs), ourInterface)
    .filter((a) => !a.toLowerCase().startsWith("fe80:")).sort();
  return `gw=${gws.join(",")};addr=${addresses.join(",")}`;
}

/** A fetch that opens a new HTTP client for each request and closes it afterwards. */
export const freshFetch: FetchFn = async (input, init) => {
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  try {
    const res = await fetch(input, { ...init, client });
    // Read the body now so the client can be closed; bodies here are tiny.
    const body = res.status === 204 || res.status === 304 ? null : await res.arrayBuffer();
    return new Response(body, { status: res.status, headers: res.headers });
  } finally {
    client.close();
  }
};

/** The network port over the real system. */
export class SystemNetworkPort implements NetworkPort {
  readonly #o: SystemNetworkPortOptions;
  readonly #facts: NetworkFactsSource;
  readonly #fetch: FetchFn;
  readonly #identity: () => Promise<string>;
  #listeners = new Set<(c: NetworkChangeInfo) => void>();
  #unsub: () => void;
  #lastIdentity: string | null = null;
  #closed = false;

  /** Wraps a started monitor; close() closes it too. */
  constructor(opts: SystemNetworkPortOptions) {
    this.#o = opts;
    this.#facts = opts.facts ?? new SystemFactsSource();
    this.#fetch = opts.fetch ?? freshFetch;
    this.#identity = opts.identity ?? (() => systemNetworkIdentity(opts.ourInterface));
    this.#unsub = opts.monitor.subscribe((change) => void this.#onChange(change.kinds));
    void this.#identity().then((id) => (this.#lastIdentity ??= id), () => {});
  }

  async #onChange(kinds: string[]): Promise<void> {
    if (this.#closed) return;
    let newNetwork = true;
    try {
      const id = await this.#identity();
      newNetwork = id !== this.#lastIdentity;
      this.#lastIdentity = id;
    } catch (e) {
      log.warn("Cannot read the network identity", { error: (e as Error).message });
    }
    log.info("Network changed", { kinds, newNetwork });
    for (const fn of [...this.#listeners]) {
      try {
        fn({ newNetwork, kinds });
      } catch (e) {
        log.error("Network change listener failed", { error: (e as Error).message });
      }
    }
  }

  /** Collects facts, evaluates the trusted-network criteria and picks the profile's action. */
  async evaluate(policy: PolicyBundle, ctx: NetworkContext = {}): Promise<NetworkVerdict> {
    const profile = policy.appProfile.forwarding;
    const criteria = profile.trusted;
    const egressIp = criteria.egressIps.length && ctx.bootstrapUrl
      ? await this.egressAddress(ctx.bootstrapUrl)
      : undefined;
    const facts = await this.#facts.collect({
      hostnames: hostnamesToResolve(criteria),
      beacons: beaconsToProbe(criteria),
      ourInterface: this.#o.ourInterface,
      egressIp,
    });
    const verdict = evaluateTrustedNetwork(criteria, facts);
    const decision = decideForwarding(profile, verdict);
    return {
      type: decision.networkType,
      action: decision.action,
      explanation: decision.reason,
      matched: verdict.matched,
      unmatched: verdict.unmatched,
    };
  }

  /** Asks the edge which address our traffic comes from; undefined when it cannot say. */
  async egressAddress(bootstrapUrl: string): Promise<string | undefined> {
    try {
      const u = new URL(bootstrapUrl);
      if (u.protocol !== "http:") return undefined;
      u.pathname = EGRESS_PATH;
      const res = await this.#fetch(u.toString(), {
        method: "GET",
        redirect: "manual",
        signal: AbortSignal.timeout(this.#o.probeTimeoutMs ?? 3000),
      });
      if (res.status !== 200) {
        await res.body?.cancel();
        return undefined;
      }
      const text = (await res.text()).slice(0, 100);
      const ip = (JSON.parse(text) as { ip?: unknown }).ip;
      // A portal may answer anything: accept only a well-formed address.
      return typeof ip === "string" ? canonicalIp(ip) ?? undefined : undefined;
    } catch (e) {
      log.debug("Cannot learn the egress address", { error: (e as Error).message });
      return undefined;
    }
  }

  /** Probes the edge's bootstrap listener for a captive portal. */
  probeEdge(bootstrapUrl: string): Promise<CaptiveProbeResult> {
    return probeCaptivePortal({
      url: bootstrapUrl,
      fetch: this.#fetch,
      timeoutMs: this.#o.probeTimeoutMs,
    });
  }

  /** Registers a change listener. */
  subscribe(fn: (change: NetworkChangeInfo) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Stops the monitor. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsub();
    this.#listeners.clear();
    await this.#o.monitor.close();
  }
}
