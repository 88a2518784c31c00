/**
 * The proxy engine's seams: what it needs from its host (identity, policy,
 * log, origin connections, upload inspection, SSL inspection), what it
 * hands them, and what it decides. Types only, so the edge, the inspector
 * and the forwarding code share them without importing the engine.
 */
import type { Clock } from "../clock.ts";
import type { AccessSubject } from "../policy/access.ts";
import type { WebLogRecord } from "../store/mod.ts";
import type { PageReason } from "./block_page.ts";
import type { Duplex, PeekReader } from "./stream.ts";
import type { OriginReach } from "./origin_reach.ts";
import type { UrlPolicy, UrlVerdict } from "./url_policy.ts";

/** A web log entry before it is stored. */
export type WebLogEntry = Omit<WebLogRecord, "id">;

/** What the upload check says about a request body. */
export interface UploadOutcome {
  block: boolean;
  rule: string | null;
  /** A sentence free of sensitive values ("Rule "Cards" found 5 credit card numbers"). */
  reason: string;
}

/** Inspects an upload body before it is forwarded (the edge wires the DLP engine in). */
export type UploadCheck = (body: Uint8Array, meta: {
  subject: AccessSubject;
  contentType: string | null;
  fileName: string;
  host: string;
  url: string;
}) => Promise<UploadOutcome>;

/**
 * Takes over a TLS connection the policy allowed (SSL inspection). Returns
 * false to let the engine pass it through untouched (Do-Not-Inspect).
 */
export type TlsInterceptor = (c: {
  reader: PeekReader;
  client: Duplex;
  host: string;
  port: number;
  alpn: string[];
  /** The URL policy's verdict on the name (it allowed it). */
  verdict: UrlVerdict;
  /** The connection's web log entry, for the interceptor to log it with (`logBlocked`). */
  entry: WebLogEntry;
  subject: AccessSubject;
  src: string;
  mode: "connect" | "transparent";
}) => Promise<boolean>;

/** What the engine needs from its host. */
export interface ProxyEngineDeps {
  /** The device behind a tunnel address (null: not a device; the connection is closed). */
  identify(ip: string): AccessSubject | null;
  /** The URL policy in force (swapped when rules change). */
  policy(): UrlPolicy;
  log(e: WebLogEntry): void;
  clock: Clock;
  /** Opens a TCP connection to an origin (default: `reach.connect`). */
  connect?(host: string, port: number): Promise<Duplex>;
  /** Which origin addresses the proxy connects to (default: the internet only). */
  reach?: OriginReach;
  /** Upload inspection and the largest body it sees whole. */
  uploads?: { check: UploadCheck; limit: number };
  /** SSL inspection, when on. */
  tls?: TlsInterceptor;
  /** Ports CONNECT may reach (default WEB_PORTS). */
  webPorts?: readonly number[];
}

/** What `ProxyEngine.decide` says about one request. */
export type RequestDecision =
  | { kind: "page"; page: PageReason }
  | { kind: "redirect"; location: string }
  | { kind: "bad"; code: string; message: string }
  | { kind: "forward"; verdict: UrlVerdict };

/** Counters for diagnostics and the benchmark. */
export interface ProxyStats {
  connections: number;
  requests: number;
  blocked: number;
  errors: number;
}
