/**
 * Where the web proxy may connect for a device: the internet, not the edge.
 *
 * The proxy connects to the name a device gives (Host header, CONNECT
 * target, SNI) and resolves it on the edge. Without a check, a device could
 * name `localhost`, the edge's own address, a private address of the edge's
 * networks or the cloud metadata address (or a public name whose DNS answers
 * one of them) and reach services that only the edge should: the tunnel's
 * TLS listener on 443, a local admin port, the LAN behind the edge. Private
 * applications are reached through private access (segments and access
 * rules), never through the web proxy.
 *
 * So every connection the proxy opens goes to an address checked here, at
 * connect time (the address connected to is the one checked, so a name that
 * resolves differently on a second lookup gains nothing):
 * - loopback, unspecified, private, shared (CGNAT, the tunnel's own
 *   addresses), link-local, unique-local, multicast and reserved addresses
 *   are refused (src/policy/cidr.ts `addressScope`);
 * - so is any address of the edge's own interfaces;
 * - `allow` lists prefixes that are reached anyway (a lab whose origins are on
 *   loopback).
 * A name with some allowed addresses connects to those only.
 */
import { lookup } from "node:dns/promises";
import {
  addressScope,
  canonicalIp,
  parsePrefix,
  type Prefix,
  prefixContains,
  tryParseIp,
} from "../policy/cidr.ts";

/** How long the edge's interface addresses are reused before they are read again (ms). */
const OWN_TTL_MS = 5000;

/** Why the proxy did not connect: the name's addresses are all off limits. */
export class OriginRefused extends Error {
  readonly code = "origin_refused";
  constructor(message: string) {
    super(message);
    this.name = "OriginRefused";
  }
}

/** Options of an OriginReach. */
export interface OriginReachOptions {
  /** Prefixes reached even though their scope is refused (CIDR text). */
  allow?: readonly string[];
  /** Resolves a name to addresses (default: the system resolver, all families). */
  resolve?: (host: string) => Promise<string[]>;
  /** The edge's own addresses (default: every interface's). */
  ownAddresses?: () => string[];
}

/** The check, and the connect that uses it. */
export class OriginReach {
  readonly #allow: Prefix[];
  readonly #resolve: (host: string) => Promise<string[]>;
  readonly #own: () => string[];
  #ownCache: { at: number; set: Set<string> } | null = null;

  constructor(o: OriginReachOptions = {}) {
    this.#allow = (o.allow ?? []).map((p) => parsePrefix(p));
    this.#resolve = o.resolve ?? systemResolve;
    this.#own = o.ownAddresses ?? interfaceAddresses;
  }

  /** Why the proxy does not connect to `ip`, or null when it may. */
  refusal(ip: string): string | null {
    // An IPv4-mapped IPv6 address is the IPv4 address it maps (the kernel connects to that).
    const canon = canonicalIp(ip)?.replace(/^::ffff:(?=\d+\.)/, "") ?? null;
    if (canon === null) return "not an address";
    const parsed = tryParseIp(canon)!;
    if (this.#allow.some((p) => prefixContains(p, parsed))) return null;
    if (this.#ownAddresses().has(canon)) return "an address of the edge itself";
    const scope = addressScope(canon);
    return scope ? `${scope} address` : null;
  }

  /**
   * The addresses of `host` the proxy may connect to, in the resolver's
   * order. Throws OriginRefused when there are none.
   */
  async addresses(host: string, signal?: AbortSignal): Promise<string[]> {
    const name = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
    signal?.throwIfAborted();
    const all = tryParseIp(name) ? [name] : await abortable(this.#resolve(name), signal);
    const ok: string[] = [];
    const refused: string[] = [];
    for (const ip of all) {
      const why = this.refusal(ip);
      if (why === null) ok.push(ip);
      else refused.push(`${ip}: ${why}`);
    }
    if (all.length === 0) throw new Error(`Cannot resolve ${name}: the name has no address`);
    if (ok.length === 0) {
      throw new OriginRefused(
        `The proxy does not connect to ${name} (${refused.slice(0, 3).join("; ")})`,
      );
    }
    return ok;
  }

  /**
   * A TCP connection to `host`:`port` on an allowed address, trying each in
   * turn. Throws OriginRefused, or the last connect error.
   */
  async connect(host: string, port: number, signal?: AbortSignal): Promise<Deno.TcpConn> {
    const ips = await this.addresses(host, signal);
    let last: unknown;
    for (const ip of ips) {
      signal?.throwIfAborted();
      try {
        return await Deno.connect({ hostname: ip, port, signal });
      } catch (e) {
        last = e;
        if (signal?.aborted) break;
      }
    }
    throw last;
  }

  #ownAddresses(): Set<string> {
    const now = performance.now();
    if (!this.#ownCache || now - this.#ownCache.at > OWN_TTL_MS) {
      const set = new Set<string>();
      for (const a of this.#own()) {
        const c = canonicalIp(a);
        if (c) set.add(c);
      }
      this.#ownCache = { at: now, set };
    }
    return this.#ownCache.set;
  }
}

/**
 * `p`, or the signal's reason once it aborts. The system resolver cannot be
 * stopped (getaddrinfo on a thread), but a client that left must not hold
 * its proxy connection until the resolver gives up; the lookup finishes
 * unobserved.
 */
function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Every address of the system resolver (hosts file, then DNS), IPv4 and IPv6. */
async function systemResolve(host: string): Promise<string[]> {
  try {
    return (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOTFOUND" || code === "ENODATA") return [];
    throw e;
  }
}

/** Every address on this host's interfaces. */
function interfaceAddresses(): string[] {
  return Deno.networkInterfaces().map((i) => i.address);
}

/** Certificate errors as rustls/fetch word them. */
export function isCertificateError(e: unknown): boolean {
  const text = `${(e as Error)?.message ?? e} ${(e as { cause?: Error })?.cause?.message ?? ""}`;
  return /certificate|UnknownIssuer|CertExpired|NotValidForName|invalid peer|CertNotValidYet|BadSignature/i
    .test(text);
}

/** How a failed origin connection is logged and answered. */
export function originFailure(e: unknown): { code: string; reason: string; status: number } {
  if (e instanceof OriginRefused) return { code: e.code, reason: "origin refused", status: 403 };
  if (isCertificateError(e)) {
    return {
      code: "origin_certificate_invalid",
      reason: "origin certificate invalid",
      status: 403,
    };
  }
  return { code: "origin_unreachable", reason: "origin unreachable", status: 502 };
}
