/**
 * The control protocol's messages as domain types (DESIGN.md §3): what a
 * connector and the edge say to each other at enrolment, in heartbeats,
 * posture reports and client-to-client registration. Both roles work with
 * these plain TypeScript types; the zod wire schemas in src/http/api/schemas.ts
 * validate the JSON at the HTTP edge and are checked at compile time to
 * produce exactly these shapes.
 *
 * Layer: below the roles (edge/, connector/), above policy/, identity/ and
 * net/, whose value types (policy bundle, hardware fingerprint, tunnel
 * endpoint, posture result) the messages carry.
 */
import type { HardwareFingerprint } from "../identity/secrets.ts";
import type { TunnelEndpoint } from "../net/endpoint.ts";
import type { PolicyBundle } from "../policy/types.ts";

/** A device asking to enrol (POST /api/v1/enroll). */
export interface EnrollRequest {
  /** The secret part of the enrolment key. */
  key: string;
  hostname: string;
  os: string;
  osVersion: string;
  connectorVersion: string;
  fingerprint: HardwareFingerprint;
  /** Base64 WireGuard public key. */
  wgPublicKey: string;
  /** Base64 Ed25519 public key the device signs re-enrolments with. */
  signingPublicKey: string;
  /**
   * Ed25519 signature (base64) over `reenrollMessage(...)` by the signing key
   * this hardware enrolled with before. Needed only when the hardware is
   * already enrolled: its fingerprint is not a secret, possession of the key is.
   */
  proof?: string;
  /**
   * The user's sign-in token (from /api/v1/signin/redeem): the device is
   * enrolled as theirs. Required unless the key is a machine key.
   */
  signIn?: string;
}

/** A device hands its user's new sign-in over after the last one ended (POST /api/v1/reauth). */
export interface ReauthRequest {
  /** The new sign-in token (from /api/v1/signin/redeem), of the device's own user. */
  signIn: string;
}

/** The device is back in the tunnel under its user's new sign-in. */
export interface ReauthResponse {
  user: string;
  /** When this sign-in ends on this device (ISO). */
  signInEndsAt: string;
  serverTime: string;
}

/** A device sign-in started at the edge: what the user must do, and the handle to poll. */
export interface DeviceSignInStart {
  handle: string;
  userCode: string;
  verificationUri: string;
  verificationUriComplete: string | null;
  expiresIn: number;
  interval: number;
}

/** A redeemed sign-in: the token to enrol with and who it is. */
export interface SignInResult {
  token: string;
  user: { username: string; email: string | null; provider: string | null };
  expiresAt: string;
}

/** What a device gets back from a successful enrolment. */
export interface EnrollResponse {
  deviceId: string;
  /** Shown once; the edge keeps only a hash. */
  credential: string;
  /** The device's tunnel address, e.g. "100.64.0.7". */
  address: string;
  /** The device range, e.g. "100.64.0.0/16"; the edge holds the first address. */
  network: string;
  edgeAddress: string;
  /** Base64 WireGuard public key of the edge. */
  edgePublicKey: string;
  endpoints: TunnelEndpoint[];
  policy: PolicyBundle;
  user: string | null;
  group: string | null;
  /** The edge's clock (ISO 8601), for clock-skew reports. */
  serverTime: string;
}

/** The message a re-enrolling device signs with its previous signing key. */
export function reenrollMessage(
  fingerprintHash: string,
  wgPublicKey: string,
  signingPublicKey: string,
): string {
  return `portcullis-reenroll-v1\n${fingerprintHash}\n${wgPublicKey}\n${signingPublicKey}`;
}

/**
 * A device's posture report (POST /api/v1/posture): the JSON text of a
 * PostureReportPayload (src/posture/report.ts: device id, collection time,
 * raw facts) and the device signing key's Ed25519 signature over it.
 */
export interface PostureReport {
  payload: string;
  /** Base64 Ed25519 signature over postureSigningMessage(payload). */
  signature: string;
}

/** What the edge made of an accepted posture report (its own judgement, per profile). */
export interface PostureVerdict {
  /** Every profile passed. */
  passed: boolean;
  profiles: { profile: string; passed: boolean; reason: string }[];
}

/** The connector's view of its own state (POST /api/v1/heartbeat). */
export interface HeartbeatReport {
  state: string;
  transport: "udp" | "tls" | null;
  clockSkewMs?: number;
  /** The version this connector runs (it changes with updates; the enrolment's is the first). */
  connectorVersion?: string;
}

/** The release the edge says a device should run (GET /api/v1/update). */
export interface UpdateOffer {
  ruleId: string;
  ruleName: string;
  version: string;
  /** The rule allows a version older than the one running. */
  rollback: boolean;
  sha256: string;
  size: number;
  /** The signed manifest's JSON text, as the release key signed it (src/fleet/release.ts). */
  signedManifest: string;
  /**
   * A rollback rule's signed rollback authorisation (src/fleet/rollback_auth.ts),
   * without which the connector refuses an older version. Absent otherwise.
   */
  rollbackAuthorisation?: string;
}

/** What a connector tells the edge it did with a release (POST /api/v1/update/report). */
export interface UpdateReport {
  version: string;
  outcome: "installed" | "rolled_back" | "refused" | "failed";
  reason: string;
}

/** The edge's verdict on a client-to-client name (POST /api/v1/c2c/register). */
export interface C2cRegistration {
  fqdn: string;
  valid: boolean;
  reason: string;
  serverTime: string;
}
