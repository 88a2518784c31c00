/**
 * Runs the forward proxy on the edge: the engine (src/proxy) with the
 * edge's identity lookup (a tunnel address → its device and user), URL
 * policy, web log and inline DLP, listening on the edge's tunnel address;
 * and, for transparent mode, an nftables table `portcullis_proxy` that
 * redirects tunnelled TCP to ports 80 and 443 on internet addresses into
 * the same listener. The table is removed on close.
 *
 * Only internet addresses: the proxy reaches nothing else (origin_reach.ts),
 * so a private application on 10.x:443 that an access rule allows must go
 * the kernel's way, as any other port does, and not be redirected into a
 * proxy that refuses it. Nor is the edge's own address redirected.
 */
import { nftApply, nftReset } from "../net/nft.ts";
import { addressScope, specialPrefixes } from "../policy/cidr.ts";
import { logger } from "../log.ts";
import { ProxyEngine } from "../proxy/engine.ts";
import { Inspector } from "../proxy/inspector.ts";
import { OriginClient } from "../proxy/origin_client.ts";
import { OriginReach } from "../proxy/origin_reach.ts";
import type { ServeFn } from "../serve.ts";
import { type ProxyServer, startProxyServer } from "../proxy/server.ts";
import { DEFAULT_UPLOAD_LIMIT } from "../dlp/upload.ts";
import type { EdgeContext } from "./context.ts";
import { deviceForAddress } from "./devices.ts";
import { subjectFor } from "./subjects.ts";

const log = logger("edge.proxy");

/** Name of the nftables table of the transparent redirect. */
export const PROXY_NFT_TABLE = "portcullis_proxy";

/** Options of the edge's web proxy. */
export interface WebProxyOptions {
  port: number;
  /** The edge's TUN interface (redirect source). */
  tunName: string;
  /** Redirect tunnelled 80/443 into the proxy. */
  transparent: boolean;
  /** Opens the TLS listeners SSL inspection terminates connections on. */
  serve?: ServeFn;
  /** Extra CA certificates (PEM) trusted for origins besides the default roots. */
  originCaCerts?: string[];
  /**
   * Handed a predicate that is true while the proxy serves connections (the
   * edge gives it to its pump, which then stops holding the event loop).
   */
  onBusy?: (busy: (() => boolean) | null) => void;
  /** Told after every write to a device (the edge pokes its pump: see Pump.poke). */
  onClientWrite?: () => void;
}

/** A running edge web proxy. */
export interface WebProxy {
  port: number;
  engine: ProxyEngine;
  close(): Promise<void>;
}

/**
 * The nftables rules of the transparent redirect: tunnelled 80/443 to any
 * address but the special blocks and the edge's own (listed only when no
 * block holds it already, so the set has no overlapping elements).
 */
export function redirectRules(o: { tunName: string; edgeAddress: string; port: number }): string {
  const own = addressScope(o.edgeAddress) === null ? [o.edgeAddress] : [];
  const skip = [...own, ...specialPrefixes(4)].join(", ");
  return nftReset("ip", PROXY_NFT_TABLE) +
    `table ip ${PROXY_NFT_TABLE} {\n chain prerouting {\n` +
    `  type nat hook prerouting priority dstnat; policy accept;\n` +
    `  iifname "${o.tunName}" ip daddr != { ${skip} } tcp dport { 80, 443 } redirect to :${o.port}\n` +
    ` }\n}\n`;
}

/** Starts the proxy (and the redirect) for the edge. */
export async function startWebProxy(ctx: EdgeContext, o: WebProxyOptions): Promise<WebProxy> {
  // A device's subject is read from the store; cached briefly so a page of
  // fifty requests is one lookup, and a sign-in is seen within seconds.
  const cache = new Map<string, { at: number; s: ReturnType<typeof subjectFor> }>();
  const identify = (ip: string) => {
    const now = ctx.clock.monotonic();
    const hit = cache.get(ip);
    if (hit && now - hit.at < 5000) return hit.s;
    const d = deviceForAddress(ctx, ip);
    const s = d && !d.disabled ? subjectFor(ctx.store, d.id) : null;
    if (cache.size > 10_000) cache.clear();
    cache.set(ip, { at: now, s });
    return s;
  };
  const uploads = { check: ctx.web.uploadCheck, limit: DEFAULT_UPLOAD_LIMIT };
  // Plain forwarding, passthrough and the inspector's client reach the same places.
  const reach = new OriginReach();
  let inspector: Inspector | null = null;
  let client: OriginClient | null = null;
  if (o.serve && ctx.web.ca) {
    client = new OriginClient({ caCerts: o.originCaCerts ?? [], reach });
    inspector = new Inspector({
      ca: ctx.web.ca,
      serve: o.serve,
      inspects: (host) => ctx.web.inspects(host),
      origin: client,
      uploads,
    });
  }
  const engine = new ProxyEngine({
    identify,
    policy: () => ctx.web.policy(),
    log: (e) => ctx.web.record(e),
    clock: ctx.clock,
    uploads,
    tls: inspector?.intercept,
    reach,
  });
  inspector?.attach(engine);
  const server: ProxyServer = startProxyServer({
    hostname: ctx.edgeAddress,
    port: o.port,
    engine,
    onClientWrite: o.onClientWrite,
  });
  o.onBusy?.(() => server.open > 0);
  if (o.transparent) {
    try {
      await nftApply(
        redirectRules({ tunName: o.tunName, edgeAddress: ctx.edgeAddress, port: server.port }),
      );
    } catch (e) {
      await server.close();
      await inspector?.close();
      client?.close();
      throw e;
    }
  }
  log.info("Web proxy up", { port: server.port, transparent: o.transparent });
  return {
    port: server.port,
    engine,
    async close() {
      o.onBusy?.(null);
      if (o.transparent) await nftApply(nftReset("ip", PROXY_NFT_TABLE)).catch(() => {});
      await server.close();
      await inspector?.close();
      client?.close();
      ctx.web.flush();
    },
  };
}
