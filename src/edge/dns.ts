/**
 * The edge's DNS service for private names, reached by tunnel clients at the
 * edge's tunnel address, port 53 (UDP and TCP).
 *
 * - Authoritative for the configured zones (e.g. "portcullis.internal",
 *   which holds "<device>.clients.portcullis.internal" for client-to-client
 *   and "protected.portcullis.internal", the "am I protected" name that
 *   resolves to the edge's tunnel address only through the tunnel). Answers
 *   come from static records and an injected lookup (the lead wires it to the
 *   device registry): records → answer, [] → NOERROR with no data, null →
 *   NXDOMAIN; negative answers carry a synthesised SOA (RFC 2308).
 * - Everything else is forwarded to upstream resolvers, with fresh random
 *   ids and answer matching (see DnsForwarder).
 * - Not an open resolver: sources the injected `allow` predicate rejects get
 *   REFUSED for every query, private names included.
 *
 * Mechanism only: which names exist and who may ask are injected.
 */
import {
  DNS_CLASS_IN,
  DNS_OPCODE_QUERY,
  DNS_RCODE,
  DNS_TYPE,
  dnsErrorResponse,
  type DnsMessage,
  dnsNameInZone,
  type DnsRecord,
  dnsRecordTypeCode,
  dnsResponseTo,
  encodeDnsMessage,
  normalizeDnsName,
  parseDnsHeader,
  tryParseDnsMessage,
} from "../packet/dns.ts";
import {
  DnsForwarder,
  type DnsServerAddress,
  type DnsSource,
  parseDnsServerAddress,
  startDnsListener,
} from "../net/dns_io.ts";
import { parseResolvConf } from "../net/resolv_conf.ts";
import { logger } from "../log.ts";

const log = logger("edge.dns");

/** The "am I protected" name: resolves only through the tunnel, to the edge. */
export const PROTECTED_NAME = "protected.portcullis.internal";

/** Answers a name in our zones: records, [] when the name exists without that type, null when it does not exist. */
export type DnsLookup = (
  name: string,
  type: number,
) => DnsRecord[] | null | Promise<DnsRecord[] | null>;

/** Options for startDnsServer. */
export interface DnsServerOptions {
  /** Where to listen; the tunnel address and 53 in production, loopback and 0 in tests. */
  listen: { hostname: string; port: number };
  /** Zones we are authoritative for, e.g. ["portcullis.internal"]. */
  zones: string[];
  /** Looks names up in our zones (name is lowercase, without trailing dot). */
  lookup: DnsLookup;
  /** Fixed records checked before `lookup` (e.g. protectedRecord(tunnelAddress)). */
  records?: DnsRecord[];
  /** Upstream resolvers ("IP" or "IP:PORT"); default: the nameservers of /etc/resolv.conf. */
  upstream?: string[];
  /** Which sources may query at all (e.g. "inside the tunnel prefixes"). */
  allow: (address: string) => boolean;
  /** Per-upstream timeout; default 2000 ms. */
  upstreamTimeoutMs?: number;
  /** Serve TCP on the same port too; default true. */
  tcp?: boolean;
  /** TTL of negative answers (SOA minimum); default 30 s. */
  negativeTtl?: number;
  /**
   * Sees each upstream answer before it goes to the client (enforcement
   * remembers the addresses it gave a device for an FQDN segment's name).
   * Must not throw; a throw is logged and the answer still goes out.
   */
  onForwarded?: (source: DnsSource, query: DnsMessage, answer: Uint8Array) => void;
}

/** A running DNS server. */
export interface DnsServer {
  /** The port bound (UDP and TCP). */
  readonly port: number;
  /** Counters for metrics and tests. */
  readonly stats: DnsServerStats;
  /** Stops serving and fails outstanding forwards. */
  close(): Promise<void>;
}

/** Query counters. */
export interface DnsServerStats {
  queries: number;
  authoritative: number;
  nxdomain: number;
  forwarded: number;
  forwardFailed: number;
  refused: number;
  malformed: number;
}

/** An A or AAAA record for PROTECTED_NAME (or `name`) pointing at `address`. */
export function protectedRecord(address: string, name = PROTECTED_NAME, ttl = 60): DnsRecord {
  return address.includes(":")
    ? { name, class: DNS_CLASS_IN, ttl, type: "AAAA", address }
    : { name, class: DNS_CLASS_IN, ttl, type: "A", address };
}

/** Reads upstream resolvers from a resolv.conf file (empty when missing). */
export async function upstreamsFromResolvConf(path = "/etc/resolv.conf"): Promise<string[]> {
  try {
    return parseResolvConf(await Deno.readTextFile(path)).nameservers;
  } catch {
    return [];
  }
}

/** Client's advertised UDP payload size (EDNS OPT class), at least 512 and at most 4096. */
function udpLimit(m: DnsMessage): number {
  const opt = m.additionals.find((r) => r.type === "OTHER" && r.code === DNS_TYPE.OPT);
  return opt ? Math.min(4096, Math.max(512, opt.class)) : 512;
}

function soaFor(zone: string, ttl: number): DnsRecord {
  return {
    name: zone,
    class: DNS_CLASS_IN,
    ttl,
    type: "SOA",
    mname: `ns.${zone}`,
    rname: `hostmaster.${zone}`,
    serial: 1,
    refresh: 3600,
    retry: 600,
    expire: 86400,
    minimum: ttl,
  };
}

/** Starts the edge DNS service. */
export async function startDnsServer(opts: DnsServerOptions): Promise<DnsServer> {
  const zones = opts.zones.map(normalizeDnsName).sort((a, b) => b.length - a.length);
  const upstream: DnsServerAddress[] = (opts.upstream ?? await upstreamsFromResolvConf())
    .map(parseDnsServerAddress);
  const negTtl = opts.negativeTtl ?? 30;
  const staticRecords = (opts.records ?? []).map((r) => ({ ...r, key: normalizeDnsName(r.name) }));
  const forwarder = new DnsForwarder({ timeoutMs: opts.upstreamTimeoutMs ?? 2000 });
  const stats: DnsServerStats = {
    queries: 0,
    authoritative: 0,
    nxdomain: 0,
    forwarded: 0,
    forwardFailed: 0,
    refused: 0,
    malformed: 0,
  };

  async function answerLocally(q: DnsMessage, zone: string, src: DnsSource): Promise<Uint8Array> {
    const question = q.questions[0];
    const name = normalizeDnsName(question.name);
    const respond = (rcode: number, answers: DnsRecord[], authorities: DnsRecord[] = []) => {
      const m = dnsResponseTo(q, { aa: true, ra: true, rcode, answers, authorities });
      return encodeDnsMessage(m, { maxSize: src.transport === "udp" ? udpLimit(q) : 65535 });
    };
    if (question.class !== DNS_CLASS_IN && question.class !== 255) {
      return respond(DNS_RCODE.REFUSED, []);
    }
    stats.authoritative++;
    const wantAll = question.type === DNS_TYPE.ANY;
    const matches = (r: DnsRecord) => {
      const t = dnsRecordTypeCode(r);
      return wantAll || t === question.type || t === DNS_TYPE.CNAME;
    };
    const fixed = staticRecords.filter((r) => r.key === name);
    let found: DnsRecord[] | null = fixed.length ? fixed : null;
    if (name === zone && (question.type === DNS_TYPE.SOA || wantAll)) {
      found = [...(found ?? []), soaFor(zone, negTtl)];
    }
    try {
      const looked = await opts.lookup(name, question.type);
      if (looked) found = [...(found ?? []), ...looked];
      else if (found === null && name === zone) found = [];
    } catch (e) {
      log.error("DNS lookup failed", { name, type: question.type, error: String(e) });
      return respond(DNS_RCODE.SERVFAIL, []);
    }
    if (found === null) {
      stats.nxdomain++;
      return respond(DNS_RCODE.NXDOMAIN, [], [soaFor(zone, negTtl)]);
    }
    // Answer with the owner name exactly as asked, so clients that randomise case still match.
    const answers = found.filter(matches).map((r) => {
      const { key: _k, ...rest } = r as DnsRecord & { key?: string };
      return normalizeDnsName(rest.name) === name
        ? { ...rest, name: question.name } as DnsRecord
        : rest as DnsRecord;
    });
    return respond(DNS_RCODE.NOERROR, answers, answers.length ? [] : [soaFor(zone, negTtl)]);
  }

  const handler = async (raw: Uint8Array, src: DnsSource): Promise<Uint8Array | null> => {
    const h = parseDnsHeader(raw);
    if (!h || h.qr) return null; // too short to answer, or a response: never reflect
    stats.queries++;
    if (!opts.allow(src.address)) {
      stats.refused++;
      return dnsErrorResponse(raw, DNS_RCODE.REFUSED);
    }
    const q = tryParseDnsMessage(raw);
    if (!("header" in q)) {
      stats.malformed++;
      return dnsErrorResponse(raw, DNS_RCODE.FORMERR);
    }
    if (h.opcode !== DNS_OPCODE_QUERY) return dnsErrorResponse(raw, DNS_RCODE.NOTIMP);
    if (q.questions.length !== 1) {
      stats.malformed++;
      return dnsErrorResponse(raw, DNS_RCODE.FORMERR);
    }
    const zone = zones.find((z) => dnsNameInZone(q.questions[0].name, z));
    if (zone !== undefined) {
      try {
        return await answerLocally(q, zone, src);
      } catch (e) {
        log.error("Cannot answer DNS query", { name: q.questions[0].name, error: String(e) });
        return encodeDnsMessage(dnsResponseTo(q, { rcode: DNS_RCODE.SERVFAIL, ra: true }));
      }
    }
    stats.forwarded++;
    const ans = await forwarder.forward(raw, q, upstream, src.transport);
    if (ans) {
      try {
        opts.onForwarded?.(src, q, ans);
      } catch (e) {
        log.error("DNS answer observer failed", { error: String(e) });
      }
      return ans;
    }
    stats.forwardFailed++;
    return encodeDnsMessage(dnsResponseTo(q, { rcode: DNS_RCODE.SERVFAIL, ra: true }));
  };

  let listener;
  try {
    listener = await startDnsListener({ ...opts.listen, tcp: opts.tcp ?? true }, handler);
  } catch (e) {
    await forwarder.close();
    throw e;
  }
  log.info("DNS service listening", {
    hostname: opts.listen.hostname,
    port: listener.port,
    zones,
    upstream: upstream.length,
  });
  return {
    port: listener.port,
    stats,
    async close() {
      await listener.close();
      await forwarder.close();
    },
  };
}
