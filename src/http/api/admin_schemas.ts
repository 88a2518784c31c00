/**
 * Request schemas of the admin and login API (the device API's live in
 * schemas.ts, shared with the connector). Strict, like the rest: an unknown
 * field is an error.
 */
import { z } from "zod";
import { parseIpText } from "../../packet/addr.ts";

/** Usernames: letters, digits, dot, dash, underscore, @. */
export const Username = z.string().min(1).max(64).regex(
  /^[A-Za-z0-9_.@-]+$/,
  "expected 1-64 letters, digits, '.', '-', '_' or '@'",
);

/** POST /api/v1/auth/login. */
export const LoginRequest = z.object({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(1024),
  totp: z.string().regex(/^\d{6}$/, "expected a 6-digit code"),
}).strict();
/** @see LoginRequest */
export type LoginRequest = z.infer<typeof LoginRequest>;

/** POST /api/v1/auth/login response. */
export const LoginResponse = z.object({
  user: z.object({ id: z.string(), username: z.string(), role: z.enum(["admin", "user"]) }),
  csrfToken: z.string(),
  expiresAt: z.string(),
  serverTime: z.string(),
}).strict();

/** POST /api/v1/admin/users. */
export const CreateUserRequest = z.object({
  username: Username,
  password: z.string().min(12, "expected at least 12 characters").max(1024),
  role: z.enum(["admin", "user"]).default("user"),
  groups: z.array(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/)).max(64).default([]),
}).strict();
/** @see CreateUserRequest */
export type CreateUserRequest = z.infer<typeof CreateUserRequest>;

/** POST /api/v1/admin/enrollment-keys. */
export const CreateKeyRequest = z.object({
  reusable: z.boolean().default(false),
  /** "24h", "7d", "never"; default 24h. */
  expires: z.string().max(16).default("24h"),
  group: z.string().regex(
    /^[A-Za-z0-9_.-]{1,64}$/,
    "expected 1-64 letters, digits, '.', '-' or '_'",
  )
    .nullable().default(null),
  /** A machine key enrols gateway boxes without a user; false: a signed-in user is needed. */
  machine: z.boolean().default(true),
}).strict();
/** @see CreateKeyRequest */
export type CreateKeyRequest = z.infer<typeof CreateKeyRequest>;

/** POST /api/v1/admin/tokens. */
export const CreateTokenRequest = z.object({
  name: z.string().min(1).max(100),
}).strict();

/** Heartbeat response. */
export const HeartbeatResponse = z.object({
  policyVersion: z.string(),
  serverTime: z.string(),
}).strict();

/** Posture report response. */
export const PostureResponse = z.object({
  /** Every posture profile passed, as the edge judged the reported facts. */
  passed: z.boolean(),
  profiles: z.array(
    z.object({ profile: z.string(), passed: z.boolean(), reason: z.string() }).strict(),
  ),
  serverTime: z.string(),
}).strict();

/** Support request form (multipart fields). */
export const SupportForm = z.object({
  message: z.string().min(1).max(4000),
}).strict();

/** GET /api/v1/admin/decisions query. */
export const DecisionQuery = z.object({
  device: z.string().min(1).max(128).optional(),
  user: z.string().min(1).max(256).optional(),
  verdict: z.enum(["allow", "deny"]).optional(),
  rule: z.string().min(1).max(100).optional(),
  /** Destination address or name. */
  dst: z.string().min(1).max(253).optional(),
  since: z.string().datetime({ offset: true }).optional(),
  until: z.string().datetime({ offset: true }).optional(),
  before: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
}).strict();

/** POST /api/v1/admin/access/explain: "why can't this device reach that?" */
export const ExplainRequest = z.object({
  device: z.string().min(1).max(128),
  ip: z.string().max(45).refine((v) => parseIpText(v) !== null, "expected an IPv4 or IPv6 address")
    .optional(),
  name: z.string().min(1).max(253).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  protocol: z.enum(["tcp", "udp", "icmp"]).default("tcp"),
}).strict().refine((r) => r.ip !== undefined || r.name !== undefined, {
  message: "give an ip or a name",
  path: ["ip"],
});

/** One protection password: new plain text, null to remove, absent to keep. */
const ProtectionPassword = z.string().max(1024).nullable().optional();

/** PUT /admin/policy/app-profiles/:name/passwords: plain text in, only scrypt hashes stored. */
export const SetPasswordsRequest = z.object({
  logout: ProtectionPassword,
  disable: ProtectionPassword,
  exit: ProtectionPassword,
  uninstall: ProtectionPassword,
}).strict();

/** PUT /admin/policy/app-profiles/:name/signin-lifetime: re-authentication every N hours. */
export const SetSignInLifetimeRequest = z.object({
  hours: z.number({ error: "expected a whole number of hours from 1 to 720" })
    .int({ error: "expected a whole number of hours from 1 to 720" })
    .min(1, { error: "expected a whole number of hours from 1 to 720" })
    .max(720, { error: "expected a whole number of hours from 1 to 720" }),
}).strict();

/** PUT /admin/policy/app-profiles/:name/clock-skew: the sign-in clock tolerance in seconds. */
export const SetClockSkewRequest = z.object({
  toleranceSec: z.number({ error: "expected a whole number of seconds from 0 to 1800" })
    .int({ error: "expected a whole number of seconds from 0 to 1800" })
    .min(0, { error: "expected a whole number of seconds from 0 to 1800" })
    .max(1800, { error: "expected a whole number of seconds from 0 to 1800" }),
}).strict();
