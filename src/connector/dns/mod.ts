/**
 * Split DNS on the connector: the stub resolver plus the resolv.conf switch,
 * started and stopped together.
 *
 * Start order matters for crash safety: restore any stale backup first (so
 * the "original" servers are the real ones), start the stub (so nothing is
 * pointed at a dead address), then rewrite resolv.conf. Stop reverses it.
 */
import { type ResolvConf, ResolvConfManager } from "./resolv_conf.ts";
import {
  startStubResolver,
  type StubResolver,
  type StubResolverOptions,
  type StubRoutes,
} from "./stub.ts";

export * from "./resolv_conf.ts";
export * from "./stub.ts";
export * from "../../net/dns_io.ts";

/** Options for startSplitDns. */
export interface SplitDnsOptions {
  /** Suffixes served by the edge (PolicyBundle.edgeDnsDomains). */
  edgeDomains: string[];
  /** The edge DNS server(s) inside the tunnel (PolicyBundle.edgeDns). */
  edgeServers: string[];
  /** Stub address; default 127.0.0.53:53. resolv.conf can only name port 53. */
  listen?: { hostname: string; port: number };
  /** resolv.conf location; default /etc/resolv.conf. */
  resolvConfPath?: string;
  /** Backup location; default `${resolvConfPath}.portcullis-backup`. */
  backupPath?: string;
  /** Use these instead of the original resolv.conf nameservers. */
  upstream?: string[];
  /** Per-server timeout; default 2000 ms. */
  timeoutMs?: number;
  /** Leave resolv.conf alone (stub only); default false. */
  skipResolvConf?: boolean;
  /** See StubResolverOptions.onEdgeAddresses. */
  onEdgeAddresses?: StubResolverOptions["onEdgeAddresses"];
}

/** Running split DNS. */
export interface SplitDns {
  readonly stub: StubResolver;
  /** The original resolvers the stub forwards non-edge names to. */
  readonly upstream: string[];
  /** The resolv.conf we rewrote as it was before (search domains and options too). */
  readonly original: ResolvConf;
  /** The stub's address, as resolv.conf names it; null when resolv.conf is left alone. */
  readonly resolvConfStub: string | null;
  /** The manager of the resolv.conf we rewrote. */
  readonly resolvConf: ResolvConfManager;
  /** Swaps the edge domains/servers after a policy update (upstream stays). */
  setEdge(edgeDomains: string[], edgeServers: string[]): void;
  /** Restores resolv.conf, then stops the stub. */
  stop(): Promise<void>;
}

/** Recovers a stale backup, starts the stub and points resolv.conf at it. */
export async function startSplitDns(opts: SplitDnsOptions): Promise<SplitDns> {
  const listen = opts.listen ?? { hostname: "127.0.0.53", port: 53 };
  const rc = new ResolvConfManager({ path: opts.resolvConfPath, backupPath: opts.backupPath });
  if (!opts.skipResolvConf) await rc.recover();
  const original = await rc.read();
  const upstream = opts.upstream ?? original.nameservers;
  let routes: StubRoutes = {
    edgeDomains: opts.edgeDomains,
    edgeServers: opts.edgeServers,
    upstream,
  };
  const stub = await startStubResolver({
    ...routes,
    listen,
    timeoutMs: opts.timeoutMs,
    onEdgeAddresses: opts.onEdgeAddresses,
  });
  if (!opts.skipResolvConf) {
    try {
      await rc.apply(listen.hostname);
    } catch (e) {
      await stub.close();
      throw e;
    }
  }
  return {
    stub,
    upstream,
    original,
    resolvConfStub: opts.skipResolvConf ? null : listen.hostname,
    resolvConf: rc,
    setEdge(edgeDomains, edgeServers) {
      routes = { ...routes, edgeDomains, edgeServers };
      stub.setRoutes(routes);
    },
    async stop() {
      try {
        if (!opts.skipResolvConf) await rc.restore();
      } finally {
        await stub.close();
      }
    },
  };
}
