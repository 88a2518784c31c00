/**
 * The edge's SaaS tenants: the tenant service and the data-at-rest scanner
 * composed with the edge's store, notifier and DLP service. Tokens come
 * from MSAL and files go to Graph through one fetch, which trusts the extra
 * CA certificates of `saasCaFile` when one is configured (an inspecting
 * proxy on the way to Microsoft; the tests' local issuer and Graph
 * emulator).
 */
import type { Clock } from "../clock.ts";
import type { Notifier } from "../notify/mod.ts";
import {
  dlpInspector,
  type FetchFn,
  MsalTokenSource,
  SaasScanner,
  SaasService,
  type TokenSource,
} from "../saas/mod.ts";
import type { Store } from "../store/mod.ts";
import type { DlpService } from "./dlp.ts";

/** The SaaS side of the edge. */
export interface EdgeSaas {
  tenants: SaasService;
  scanner: SaasScanner;
  /** The Graph endpoint scans call. */
  graphUrl: string;
  /** The identity platform's authority host (admin consent goes there). */
  authorityUrl: string;
  /** Stops running scans between requests (they resume at the next start). */
  close(): Promise<void>;
}

/** Options of `createEdgeSaas`. */
export interface EdgeSaasOptions {
  store: Store;
  clock: Clock;
  notifier: Notifier;
  dlp: DlpService;
  authorityUrl: string;
  graphUrl: string;
  /** Extra trusted CA certificates (PEM) for the identity platform and Graph. */
  caCertificates?: string[];
  /** Replaces the fetch (tests); wins over caCertificates. */
  fetch?: FetchFn;
  /** Replaces MSAL (tests of the scanner alone). */
  tokens?: TokenSource;
  maxThrottleWaitMs?: number;
}

/** Builds the tenant service and the scanner. */
export function createEdgeSaas(o: EdgeSaasOptions): EdgeSaas {
  let fetchFn: FetchFn | undefined = o.fetch;
  let client: Deno.HttpClient | null = null;
  if (!fetchFn && o.caCertificates?.length) {
    client = Deno.createHttpClient({ caCerts: o.caCertificates });
    const c = client;
    fetchFn = (input, init) => fetch(input, { ...init, client: c });
  }
  const tokens = o.tokens ?? new MsalTokenSource({ authorityUrl: o.authorityUrl, fetch: fetchFn });
  const tenants = new SaasService({
    store: o.store,
    clock: o.clock,
    notifier: o.notifier,
    tokens,
    authorityUrl: o.authorityUrl,
  });
  const scanner = new SaasScanner({
    store: o.store,
    clock: o.clock,
    notifier: o.notifier,
    tokens,
    tenants,
    inspector: dlpInspector(() => o.dlp.policy()),
    recordIncident: (i) =>
      o.dlp.recordIncident({
        source: "saas",
        hostname: i.tenantName,
        deviceId: null,
        user: i.user,
        channel: "saas_at_rest",
        fileName: i.fileName,
        fileSha256: i.fileSha256,
        fileSize: i.fileSize,
        fileType: i.fileType,
        rule: i.rule,
        action: i.action,
        outcome: i.outcome,
        matches: i.matches,
      }),
    graphUrl: o.graphUrl,
    fetch: fetchFn,
    maxThrottleWaitMs: o.maxThrottleWaitMs,
  });
  return {
    tenants,
    scanner,
    graphUrl: o.graphUrl,
    authorityUrl: o.authorityUrl,
    async close() {
      await scanner.close();
      client?.close();
    },
  };
}
