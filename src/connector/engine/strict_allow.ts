/**
 * Where the edge is, for the allow-list of a traffic block (fail-closed or
 * strict enforcement): the hosts of the enrolment's API, bootstrap and tunnel
 * endpoints, of the enrolment key, and of an enrolment forgotten at logout
 * (the user must still reach the edge to log in again). Names are resolved,
 * since the block matches addresses; DNS itself stays allowed.
 */
import { logger } from "../../log.ts";
import { canonicalIp } from "../../policy/cidr.ts";
import type { StoredEnrollment } from "../../store/connector_state.ts";
import { bootstrapBase, parseEnrollmentKey } from "../enrollment_key.ts";

const log = logger("connector.engine");

/** What the edge's hosts are gathered from. */
export interface EdgeHostSources {
  /** Hosts of an enrolment forgotten at logout. */
  lastHosts: readonly string[];
  enrollment: StoredEnrollment | null;
  /** The edge's plain-HTTP bootstrap URL in use, if known. */
  bootstrapUrl: string | null;
  /** The enrolment key given to the connector, if any (a bad one adds nothing). */
  enrollmentKey: string | null | undefined;
}

/** Host names or addresses of the edge this device knows, without IPv6 brackets. */
export function edgeHosts(s: EdgeHostSources): string[] {
  const hosts = new Set<string>(s.lastHosts);
  const add = (url: string | null | undefined) => {
    if (!url) return;
    try {
      hosts.add(new URL(url).hostname);
    } catch { /* not a URL: nothing to allow */ }
  };
  const e = s.enrollment;
  if (e) {
    add(e.apiUrl);
    for (const x of e.endpoints) hosts.add(x.host);
  }
  add(s.bootstrapUrl);
  if (s.enrollmentKey) {
    try {
      const p = parseEnrollmentKey(s.enrollmentKey);
      add(p.u);
      add(bootstrapBase(p));
    } catch { /* a bad key fails enrolment with its own message */ }
  }
  return [...hosts].map((h) => h.replace(/^\[|\]$/g, "")).filter(Boolean);
}

/**
 * The edge's plain-HTTP bootstrap URL (captive probe, egress address): the
 * configured one, the enrolment's, or for enrolments stored before the key's
 * bootstrap URL was kept, the default port on the API host.
 */
export function bootstrapUrlOf(
  configured: string | undefined,
  enrollment: StoredEnrollment | null,
): string | null {
  if (configured) return configured;
  if (enrollment?.bootstrapUrl) return enrollment.bootstrapUrl;
  const api = enrollment?.apiUrl;
  if (!api) return null;
  try {
    return `http://${new URL(api).hostname}:8081`;
  } catch {
    return null;
  }
}

/** Resolves host names to addresses. */
export type ResolveHost = (host: string) => Promise<string[]>;

/** The hosts as canonical addresses: literals kept, names resolved (a failed name is logged and skipped). */
export async function edgeAllowList(
  hosts: readonly string[],
  resolve: ResolveHost = resolveHost,
): Promise<string[]> {
  const out = new Set<string>();
  for (const h of hosts) {
    const ip = canonicalIp(h);
    if (ip) {
      out.add(ip);
      continue;
    }
    try {
      for (const a of await resolve(h)) {
        const c = canonicalIp(a);
        if (c) out.add(c);
      }
    } catch (err) {
      log.warn(`Cannot resolve edge host "${h}" for the allow-list`, {
        error: (err as Error).message,
      });
    }
  }
  return [...out];
}

/** A host's A and AAAA addresses (DNS stays allowed while traffic is blocked). */
export async function resolveHost(host: string): Promise<string[]> {
  const opts = { signal: AbortSignal.timeout(3000) };
  const [v4, v6] = await Promise.all([
    Deno.resolveDns(host, "A", opts).catch(() => [] as string[]),
    Deno.resolveDns(host, "AAAA", opts).catch(() => [] as string[]),
  ]);
  return [...v4, ...v6];
}
