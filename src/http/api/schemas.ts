/**
 * Wire contracts of the edge REST API (`/api/v1`), shared by the edge (which
 * validates requests with them) and the connector (which builds requests and
 * validates responses with them). Unknown fields are rejected (`.strict()`),
 * so a typo in a client is an error, not a silent default.
 *
 * Conventions (DESIGN.md §3):
 * - every response carries the header `X-Server-Time` (ISO 8601) and JSON
 *   bodies carry `serverTime` where they are objects;
 * - errors are `{"error": {"code": "snake_case", "message": "Sentence."}}`;
 * - after enrolment, requests carry `Authorization: Bearer <credential>` and
 *   `X-Device-Fingerprint: <fingerprint hash>`.
 *
 * The messages themselves are domain types (src/control/mod.ts and the value
 * types it carries); each schema here is checked with `satisfies` to parse
 * into its domain type, so a field the domain needs cannot go missing or change
 * type on the wire unnoticed.
 */
import { z } from "zod";
import type * as control from "../../control/mod.ts";
import type * as identity from "../../identity/secrets.ts";
import type * as net from "../../net/endpoint.ts";
import type * as posture from "../../policy/posture.ts";
import { PolicyBundle } from "../../policy/types.ts";
import { SignedPostureReport } from "../../posture/report.ts";

/** Base64 of a 32-byte key (WireGuard and Ed25519 public keys). */
export const Key32 = z.string().regex(
  /^[A-Za-z0-9+/]{43}=$/,
  "expected a base64-encoded 32-byte key",
);

/** Hardware fingerprint reported by a device. */
export const HardwareFingerprint = z.object({
  machineId: z.string().min(1).max(128),
  macs: z.array(z.string().regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/)).max(64),
}).strict() satisfies z.ZodType<identity.HardwareFingerprint>;
/** @see HardwareFingerprint */
export type HardwareFingerprint = z.infer<typeof HardwareFingerprint>;

/** POST /api/v1/enroll request. */
export const EnrollRequest = z.object({
  /** The secret part of the enrolment key. */
  key: z.string().min(16).max(256),
  hostname: z.string().min(1).max(253).regex(/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/),
  os: z.string().min(1).max(64),
  osVersion: z.string().min(1).max(128),
  connectorVersion: z.string().min(1).max(32),
  fingerprint: HardwareFingerprint,
  wgPublicKey: Key32,
  signingPublicKey: Key32,
  /**
   * Ed25519 signature (base64) over `reenrollMessage(...)` by the signing key
   * this hardware enrolled with before. Needed only when the hardware is
   * already enrolled: its fingerprint is not a secret, possession of the key is.
   */
  proof: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, "expected a base64 Ed25519 signature")
    .optional(),
  signIn: z.string().regex(/^pcs_[A-Za-z0-9_-]{20,100}$/, "expected a sign-in token (pcs_…)")
    .optional(),
}).strict() satisfies z.ZodType<control.EnrollRequest>;
/** @see EnrollRequest */
export type EnrollRequest = z.infer<typeof EnrollRequest>;

/** One way to reach the edge's tunnel. */
export const TunnelEndpoint = z.object({
  transport: z.enum(["udp", "tls"]),
  host: z.string(),
  port: z.number().int().min(1).max(65535),
}).strict() satisfies z.ZodType<net.TunnelEndpoint>;
/** @see TunnelEndpoint */
export type TunnelEndpoint = z.infer<typeof TunnelEndpoint>;

/** POST /api/v1/enroll response. */
export const EnrollResponse = z.object({
  deviceId: z.string(),
  /** Shown once; the edge keeps only a hash. */
  credential: z.string(),
  /** The device's tunnel address, e.g. "100.64.0.7". */
  address: z.string(),
  /** The device range, e.g. "100.64.0.0/16"; the edge holds the first address. */
  network: z.string(),
  edgeAddress: z.string(),
  edgePublicKey: Key32,
  endpoints: z.array(TunnelEndpoint).min(1),
  policy: PolicyBundle,
  user: z.string().nullable(),
  group: z.string().nullable(),
  serverTime: z.string(),
}).strict() satisfies z.ZodType<control.EnrollResponse>;
/** @see EnrollResponse */
export type EnrollResponse = z.infer<typeof EnrollResponse>;

/** GET /api/v1/policy response (200; 304 when If-None-Match matches). */
export const PolicyResponse = z.object({
  policy: PolicyBundle,
  serverTime: z.string(),
}).strict();
/** @see PolicyResponse */
export type PolicyResponse = z.infer<typeof PolicyResponse>;

/** One posture check result: expected vs actual, so a failure explains itself. */
export const PostureResult = z.object({
  profile: z.string().max(100),
  check: z.string().max(100),
  passed: z.boolean(),
  expected: z.string().max(1024),
  actual: z.string().max(1024),
}).strict() satisfies z.ZodType<posture.PostureResult>;
/** @see PostureResult */
export type PostureResult = z.infer<typeof PostureResult>;

/** POST /api/v1/posture request: facts signed by the device (src/posture/report.ts). */
export const PostureReport = SignedPostureReport satisfies z.ZodType<control.PostureReport>;
/** @see PostureReport */
export type PostureReport = z.infer<typeof PostureReport>;

const Ms = z.number().min(0).max(600_000);

/** POST /api/v1/zdx request: a batch of digital-experience results (src/zdx). */
export const ZdxReport = z.object({
  results: z.array(
    z.object({
      probe: z.string().regex(/^[A-Za-z0-9 ._-]{1,64}$/),
      url: z.string().max(2048).regex(/^https?:\/\//),
      at: z.number().int().min(0).max(8.64e15),
      ok: z.boolean(),
      status: z.number().int().min(100).max(599).nullable(),
      phases: z.object({ dns: Ms, connect: Ms, tls: Ms, ttfb: Ms, total: Ms }).strict().nullable(),
      edgeRttMs: Ms.nullable(),
    }).strict(),
  ).min(1).max(500),
}).strict();
/** @see ZdxReport */
export type ZdxReport = z.infer<typeof ZdxReport>;

/** POST /api/v1/c2c/register request. */
export const C2cRegisterRequest = z.object({
  fqdn: z.string().min(1).max(253),
}).strict();
/** @see C2cRegisterRequest */
export type C2cRegisterRequest = z.infer<typeof C2cRegisterRequest>;

/** POST /api/v1/c2c/register response. */
export const C2cRegisterResponse = z.object({
  fqdn: z.string(),
  valid: z.boolean(),
  reason: z.string(),
  serverTime: z.string(),
}).strict() satisfies z.ZodType<control.C2cRegistration>;
/** @see C2cRegisterResponse */
export type C2cRegisterResponse = z.infer<typeof C2cRegisterResponse>;

/** POST /api/v1/heartbeat request: the connector's view of its own state. */
export const HeartbeatRequest = z.object({
  state: z.string().max(64),
  transport: z.enum(["udp", "tls"]).nullable(),
  clockSkewMs: z.number().int().optional(),
  connectorVersion: z.string().min(1).max(32).optional(),
}).strict() satisfies z.ZodType<control.HeartbeatReport>;
/** @see HeartbeatRequest */
export type HeartbeatRequest = z.infer<typeof HeartbeatRequest>;

/** POST /api/v1/reauth request: the user's new sign-in for an enrolled device. */
export const ReauthRequest = z.object({
  signIn: z.string({ error: "expected the sign-in token from /api/v1/signin/redeem" }).min(1)
    .max(200),
}).strict() satisfies z.ZodType<control.ReauthRequest>;
/** @see ReauthRequest */
export type ReauthRequest = z.infer<typeof ReauthRequest>;

/** POST /api/v1/reauth response. */
export const ReauthResponse = z.object({
  user: z.string(),
  signInEndsAt: z.string(),
  serverTime: z.string(),
}).strict() satisfies z.ZodType<control.ReauthResponse>;

/** Error body. */
export const ErrorBody = z.object({
  error: z.object({ code: z.string(), message: z.string() }).strict(),
}).strict();
/** @see ErrorBody */
export type ErrorBody = z.infer<typeof ErrorBody>;

/** GET /api/v1/update response: the release this device should run, or null. */
export const UpdateCheckResponse = z.object({
  update: z.object({
    ruleId: z.string(),
    ruleName: z.string(),
    version: z.string().min(1).max(32),
    rollback: z.boolean(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    size: z.number().int().nonnegative(),
    signedManifest: z.string().max(8192),
    rollbackAuthorisation: z.string().max(8192).optional(),
  }).strict().nullable(),
  serverTime: z.string(),
}).strict();
