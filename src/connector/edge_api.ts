/**
 * The connector's view of the edge's control plane: what it can ask the edge
 * (`EdgeApi`) and how a call can fail. The engine and the console depend on
 * this interface only.
 *
 * The real client (src/http/edge_client.ts) lives in the HTTP layer, beside
 * the edge's own wire schemas, and main.ts hands it in: one set of zod schemas
 * then validates both sides of the REST API, so a drift between edge and
 * connector fails a contract test instead of hiding in two copies, and the
 * domain never sees JSON (DESIGN.md §2). Tests give the engine a fake.
 */
import type {
  C2cRegistration,
  DeviceSignInStart,
  EnrollRequest,
  EnrollResponse,
  HeartbeatReport,
  PostureReport,
  PostureVerdict,
  ReauthResponse,
  SignInResult,
  UpdateOffer,
  UpdateReport,
} from "../control/mod.ts";
import type { EnrollmentKeyPayload } from "../control/enrollment_key.ts";
import { PortcullisError } from "../errors.ts";
import type { PolicyBundle } from "../policy/types.ts";
import type { DlpBundle } from "../dlp/types.ts";
import type { ZdxReportItem } from "../zdx/runner.ts";

/** The edge answered with its error body (`{"error":{"code","message"}}`). */
export class EdgeApiError extends PortcullisError {
  constructor(code: string, message: string, status: number) {
    super(code, message, status);
  }
}

/** The edge could not be reached at all (DNS, refused, timeout, reset). */
export class EdgeUnreachableError extends PortcullisError {
  constructor(message: string, options?: ErrorOptions) {
    super("edge_unreachable", message, 503, options);
  }
}

/** The edge's TLS certificate is not signed by the pinned CA. */
export class EdgeTlsError extends PortcullisError {
  constructor(message: string, options?: ErrorOptions) {
    super("edge_tls_untrusted", message, 502, options);
  }
}

/** The CA served at the bootstrap URL is not the one the enrolment key names. */
export class CaPinMismatchError extends PortcullisError {
  readonly expected: string;
  readonly actual: string;
  constructor(expected: string, actual: string, url: string) {
    super(
      "ca_pin_mismatch",
      `Cannot trust the edge CA from ${url}: its SHA-256 is ${actual} but the enrolment key expects ${expected}; a TLS-inspecting middlebox or proxy may be in the path`,
      502,
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * True when the edge refused the device credential itself (unknown, deleted,
 * or presented from other hardware): retrying cannot help, re-enrolment can.
 * A disabled device (403 device_disabled) is not such a refusal: the admin may
 * enable it again, so the enrolment is kept.
 */
export function isCredentialRefused(err: unknown): boolean {
  return err instanceof EdgeApiError && !isSignInLapsed(err) &&
    (err.status === 401 || err.code === "device_fingerprint_mismatch");
}

/**
 * The edge refused the device because its user's sign-in ended (re-
 * authentication every N hours): the credential is still good, the user
 * must sign in again; the enrolment is kept.
 */
export function isSignInLapsed(err: unknown): boolean {
  return err instanceof EdgeApiError && err.code === "signin_expired";
}

/** Errors that mean "the edge is not serving us now": transport failures and 5xx answers. */
export function isUnreachable(err: unknown): boolean {
  return err instanceof EdgeUnreachableError || err instanceof EdgeTlsError ||
    (err instanceof EdgeApiError && err.status >= 500);
}

/** Result of a conditional policy fetch. */
export type PolicyFetch =
  | { status: "updated"; policy: PolicyBundle; etag: string | null }
  | { status: "unchanged" };

/** Options for followPolicy. */
export interface FollowOptions {
  signal: AbortSignal;
  /** Called with each version the stream announces. */
  onVersion: (version: string) => void;
  /** Called when the stream breaks, before the next reconnect. */
  onError?: (err: Error) => void;
  /** Called when the edge announces on the stream that this device was disabled or deleted. */
  onRevoked?: (reason: string) => void;
  /** Called each time the stream (re)connects. */
  onConnected?: () => void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** What the connector can ask the edge; failures are the error classes above. */
export interface EdgeApi {
  /** Server time minus local time (ms) from the last response, or null before any. */
  readonly clockSkewMs: number | null;
  /** Sets the device credential and fingerprint hash sent with every later request. */
  setCredentials(credential: string | null, fingerprintHash: string | null): void;
  /** Enrols this device. */
  enroll(req: EnrollRequest): Promise<EnrollResponse>;
  /** Fetches the policy unless it is still the one with `etag`. */
  fetchPolicy(etag?: string | null): Promise<PolicyFetch>;
  /** Sends a signed posture report; returns the edge's verdict on it (null when it gave none). */
  reportPosture(report: PostureReport): Promise<PostureVerdict | null>;
  /** Tells the edge this device's state. */
  heartbeat(req: HeartbeatReport): Promise<void>;
  /** Asks for a client-to-client name. */
  registerC2c(fqdn: string): Promise<C2cRegistration>;
  /** Uploads a support request with a diagnostics bundle; returns the edge's answer. */
  supportRequest(message: string, bundle: Uint8Array, filename?: string): Promise<unknown>;
  /**
   * Follows policy changes until `signal` aborts, reconnecting with backoff.
   * Ends with the error when the edge refuses the credential (isCredentialRefused).
   */
  followPolicy(o: FollowOptions): Promise<void>;
  /** Releases connections. */
  close(): void;
  /** Fetches this device's DLP bundle unless it is still the one with `etag` (absent: the edge has no DLP). */
  fetchDlpPolicy?(etag?: string | null): Promise<DlpFetch>;
  /** Fetches this device's PAC file unless it is still the one with `etag` (absent: an edge without PAC files). */
  fetchPac?(etag?: string | null): Promise<PacFetch>;
  /** Sends one signed DLP incident report. */
  reportDlpIncident?(payload: string, signature: string): Promise<void>;
  /** Sends a batch of digital-experience results (POST /api/v1/zdx). */
  reportZdx?(results: ZdxReportItem[]): Promise<void>;
  /** Starts a device (headless) sign-in for `email` (absent: this edge has no sign-in). */
  startDeviceSignIn?(email: string): Promise<DeviceSignInStart>;
  /** Asks how a device sign-in stands: still pending, or done with its one-time grant. */
  pollDeviceSignIn?(
    handle: string,
  ): Promise<{ status: "pending" } | { status: "done"; grant: string }>;
  /** Redeems a one-time sign-in grant for a sign-in token. */
  redeemSignIn?(grant: string): Promise<SignInResult>;
  /** Hands the user's new sign-in over after the last one ended; the device is back in the tunnel. */
  reauth?(signIn: string): Promise<ReauthResponse>;
  /** Asks which connector release this device should run (null: none; absent: an edge without updates). */
  checkUpdate?(): Promise<UpdateOffer | null>;
  /** Downloads a release's program (at most `maxBytes`). */
  downloadRelease?(version: string, maxBytes: number): Promise<Uint8Array>;
  /** Tells the edge what this connector did with a release. */
  reportUpdate?(r: UpdateReport): Promise<void>;
  /** Signs a local user (password + one-time code) in for a sign-in token. */
  signInLocal?(username: string, password: string, totp: string): Promise<SignInResult>;
}

/** Result of a conditional PAC fetch. */
export type PacFetch =
  | { status: "updated"; text: string }
  | { status: "unchanged" };

/** Result of a conditional DLP bundle fetch. */
export type DlpFetch =
  | { status: "updated"; bundle: DlpBundle; etag: string | null }
  | { status: "unchanged" };

/** How the connector reaches an edge: its pinned CA first, then API clients trusting only it. */
export interface EdgeApiFactory {
  /** Fetches the edge CA named by an enrolment key and returns its PEM only if the pin matches. */
  fetchCa(p: EnrollmentKeyPayload): Promise<string>;
  /** A client of the edge API at `apiUrl` that trusts only `caPem`. */
  client(apiUrl: string, caPem: string): EdgeApi;
}
