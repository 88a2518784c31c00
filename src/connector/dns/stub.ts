/**
 * The connector's split-DNS stub resolver: listens on a local address
 * (127.0.0.53:53 by default) and sends each query either to the edge's DNS
 * through the tunnel (names under the policy's edge-served suffixes, e.g.
 * "portcullis.internal") or to the host's original upstream servers.
 *
 * The routing table is an immutable value swapped in by setRoutes() when a
 * new policy bundle arrives; queries in flight finish on the old one.
 *
 * The addresses the edge answers (a private app's name, a peer's
 * client-to-client name) are handed to `onEdgeAddresses` before the answer
 * goes back, so the connector can route them into the tunnel first: an FQDN
 * segment may resolve inside an excluded range (10/8 …) that no route of the
 * profile sends through the tunnel, and the client's first packet must not
 * leave by the local network.
 */
import {
  DNS_RCODE,
  dnsErrorResponse,
  dnsNameInZone,
  dnsResponseTo,
  encodeDnsMessage,
  normalizeDnsName,
  parseDnsHeader,
  tryParseDnsMessage,
} from "../../packet/dns.ts";
import {
  DnsForwarder,
  type DnsServerAddress,
  type DnsSource,
  parseDnsServerAddress,
  startDnsListener,
} from "../../net/dns_io.ts";
import { logger } from "../../log.ts";

const log = logger("connector.dns");

/** Which servers answer which names. */
export interface StubRoutes {
  /** Suffixes served by the edge (PolicyBundle.edgeDnsDomains). */
  edgeDomains: string[];
  /** The edge DNS server(s) inside the tunnel ("IP" or "IP:PORT"; PolicyBundle.edgeDns). */
  edgeServers: string[];
  /** The host's original resolvers, for everything else. */
  upstream: string[];
}

/** Options for startStubResolver. */
export interface StubResolverOptions extends StubRoutes {
  /** Default { hostname: "127.0.0.53", port: 53 }. */
  listen?: { hostname: string; port: number };
  /** Per-server timeout; default 2000 ms. */
  timeoutMs?: number;
  /** Which sources may query; default loopback only. */
  allow?: (address: string) => boolean;
  /** Serve TCP too; default true. */
  tcp?: boolean;
  /** Called with the A/AAAA addresses of each edge answer; the answer waits for it (bounded). */
  onEdgeAddresses?: (addresses: string[]) => Promise<void> | void;
}

/** Longest an answer waits for `onEdgeAddresses` (a route being installed). */
const EDGE_HOOK_WAIT_MS = 500;

/** The A and AAAA addresses in a DNS answer (none when it does not parse). */
export function answerAddresses(answer: Uint8Array): string[] {
  const m = tryParseDnsMessage(answer);
  if (!("header" in m)) return [];
  return m.answers.flatMap((r) => (r.type === "A" || r.type === "AAAA" ? [r.address] : []));
}

/** Query counters. */
export interface StubStats {
  queries: number;
  toEdge: number;
  toUpstream: number;
  failed: number;
  refused: number;
}

/** A running stub resolver. */
export interface StubResolver {
  /** The port bound. */
  readonly port: number;
  /** The address bound. */
  readonly hostname: string;
  readonly stats: StubStats;
  /** Swaps the routing table (e.g. after a policy update). */
  setRoutes(routes: StubRoutes): void;
  /** Returns which servers a name would go to ("edge" or "upstream"). */
  routeFor(name: string): "edge" | "upstream";
  close(): Promise<void>;
}

interface CompiledRoutes {
  edgeDomains: string[];
  edge: DnsServerAddress[];
  upstream: DnsServerAddress[];
}

const isLoopback = (a: string) =>
  a.startsWith("127.") || a === "::1" || a.startsWith("::ffff:127.");

/** Waits for `p` at most `ms`; a failure is logged, never thrown into the answer. */
async function withDeadline(p: Promise<void> | void, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      Promise.resolve(p),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
    ]);
  } catch (e) {
    log.warn("Cannot route an edge DNS answer into the tunnel", { error: (e as Error).message });
  } finally {
    clearTimeout(timer);
  }
}

/** Starts the split-DNS stub. */
export async function startStubResolver(opts: StubResolverOptions): Promise<StubResolver> {
  const listen = opts.listen ?? { hostname: "127.0.0.53", port: 53 };
  const allow = opts.allow ?? isLoopback;
  const forwarder = new DnsForwarder({ timeoutMs: opts.timeoutMs ?? 2000 });
  const stats: StubStats = { queries: 0, toEdge: 0, toUpstream: 0, failed: 0, refused: 0 };
  let boundPort = listen.port;

  const compile = (r: StubRoutes): CompiledRoutes => {
    // Never forward to ourselves: a stale resolv.conf can list the stub as "original".
    const notSelf = (s: DnsServerAddress) =>
      !(s.address === listen.hostname && (s.port === boundPort || s.port === listen.port));
    return {
      edgeDomains: r.edgeDomains.map(normalizeDnsName).filter((d) => d !== ""),
      edge: r.edgeServers.map(parseDnsServerAddress),
      upstream: r.upstream.map(parseDnsServerAddress).filter(notSelf),
    };
  };
  let routes = compile(opts);

  const routeFor = (name: string): "edge" | "upstream" =>
    routes.edgeDomains.some((d) => dnsNameInZone(name, d)) ? "edge" : "upstream";

  const handler = async (raw: Uint8Array, src: DnsSource): Promise<Uint8Array | null> => {
    const h = parseDnsHeader(raw);
    if (!h || h.qr) return null;
    stats.queries++;
    if (!allow(src.address)) {
      stats.refused++;
      return dnsErrorResponse(raw, DNS_RCODE.REFUSED);
    }
    const q = tryParseDnsMessage(raw);
    if (!("header" in q) || q.questions.length !== 1) {
      return dnsErrorResponse(raw, DNS_RCODE.FORMERR);
    }
    const r = routes;
    const where = routeFor(q.questions[0].name);
    const servers = where === "edge" ? r.edge : r.upstream;
    if (where === "edge") stats.toEdge++;
    else stats.toUpstream++;
    const ans = await forwarder.forward(raw, q, servers, src.transport);
    if (ans && where === "edge" && opts.onEdgeAddresses) {
      const addresses = answerAddresses(ans);
      if (addresses.length) await withDeadline(opts.onEdgeAddresses(addresses), EDGE_HOOK_WAIT_MS);
    }
    if (ans) return ans;
    stats.failed++;
    log.debug("DNS query failed", { name: q.questions[0].name, via: where });
    return encodeDnsMessage(dnsResponseTo(q, { rcode: DNS_RCODE.SERVFAIL, ra: true }));
  };

  let listener;
  try {
    listener = await startDnsListener({ ...listen, tcp: opts.tcp ?? true }, handler);
  } catch (e) {
    await forwarder.close();
    throw e;
  }
  boundPort = listener.port;
  routes = compile(opts);
  log.info("Split DNS stub listening", {
    hostname: listen.hostname,
    port: listener.port,
    edgeDomains: routes.edgeDomains,
  });
  return {
    port: listener.port,
    hostname: listen.hostname,
    stats,
    setRoutes(r) {
      routes = compile(r);
    },
    routeFor,
    async close() {
      await listener.close();
      await forwarder.close();
    },
  };
}
