/**
 * Wire schemas of the sign-in API (src/http/api/signin_api.ts), shared with
 * the connector's edge client, which parses the answers with them.
 */
import { z } from "zod";

/** An email address as a user types it. */
const Email = z.string().trim().min(3).max(254).regex(
  /^[^\s@]+@[^\s@]+$/,
  "expected an email address",
);

/** GET /api/v1/signin/start query. */
export const StartQuery = z.object({
  email: Email,
  return: z.string().min(1).max(500),
  state: z.string().regex(/^[A-Za-z0-9_-]{16,128}$/, "expected 16-128 letters, digits, '-' or '_'"),
}).strict();

/** POST /api/v1/signin/device. */
export const DeviceStartRequest = z.object({ email: Email }).strict();
/** POST /api/v1/signin/device/poll. */
export const DevicePollRequest = z.object({ handle: z.string().min(16).max(100) }).strict();
/** POST /api/v1/signin/local: a local user (password + TOTP) on a device. */
export const LocalSignInRequest = z.object({
  username: z.string().min(1).max(254),
  password: z.string().min(1).max(1024),
  totp: z.string().regex(/^\d{6}$/, "expected a 6-digit code"),
}).strict();

/** POST /api/v1/signin/redeem. */
export const RedeemRequest = z.object({ grant: z.string().min(16).max(100) }).strict();

/** POST /api/v1/signin/device response. */
export const DeviceStartResponse = z.object({
  handle: z.string(),
  userCode: z.string(),
  verificationUri: z.string(),
  verificationUriComplete: z.string().nullable(),
  expiresIn: z.number(),
  interval: z.number(),
});
/** POST /api/v1/signin/device/poll response. */
export const DevicePollResponse = z.union([
  z.object({ status: z.literal("pending") }),
  z.object({ status: z.literal("done"), grant: z.string() }),
]);
/** POST /api/v1/signin/redeem response. */
export const RedeemResponse = z.object({
  token: z.string(),
  user: z.object({
    username: z.string(),
    email: z.string().nullable(),
    provider: z.string().nullable(),
  }).passthrough(),
  expiresAt: z.string(),
});
