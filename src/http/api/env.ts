/**
 * Types shared by the edge's REST sub-apps: the per-request variables set by
 * the authentication middlewares, and the app's dependencies.
 */
import type { EdgeContext } from "../../edge/context.ts";
import type { SupportQuota } from "../../edge/devices.ts";
import type { LoginRateLimiter } from "../../identity/rate_limit.ts";
import type { ScryptParams } from "../../identity/password.ts";
import type { IdentityProviders } from "../../identity/providers.ts";
import type { SignInService } from "../../identity/signin.ts";
import type { SessionManager } from "../../identity/sessions.ts";
import type { DeviceRecord, SessionRecord, UserRecord } from "../../store/mod.ts";
import type { EdgeMetrics } from "./metrics.ts";
import type { LogRecord } from "../../log.ts";

/** Hono environment of the edge app. */
export type EdgeEnv = {
  Variables: {
    /** The authenticated device (device API). */
    device: DeviceRecord;
    /** The authenticated admin (admin API). */
    user: UserRecord;
    /** The console session, when authenticated by cookie. */
    session: SessionRecord | undefined;
    /** "user:alice" or "token:name", for the audit log. */
    actor: string;
  };
};

/** Dependencies of `createEdgeApp`. */
export interface EdgeAppDeps {
  /** The control-plane context (store, clock, notifier, tunnel port, policy, …). */
  ctx: EdgeContext;
  /** Console sessions; default: a SessionManager over ctx.store with default lifetimes. */
  sessions?: SessionManager;
  /** Login rate limiter; default: per-user 5 / per-IP 20 in 15 min. */
  rateLimiter?: LoginRateLimiter;
  /** Interval of SSE keepalive comments (ms); default 15000. */
  sseKeepaliveMs?: number;
  /** scrypt parameters for new users (tests lower them). */
  scrypt?: ScryptParams;
  /** Metrics sink; default: a fresh EdgeMetrics. */
  metrics?: EdgeMetrics;
  /** Support upload limits per device; default DEFAULT_SUPPORT_QUOTA (5 an hour, keep 20). */
  supportQuota?: SupportQuota;
  /** Product version written into diagnostics bundles. */
  productVersion?: string;
  /** Recent log records for diagnostics bundles. */
  logs?: () => LogRecord[];
  /** Identity providers; default: over ctx.store with the global fetch for metadata URLs. */
  identityProviders?: IdentityProviders;
  /** User sign-in; default: over identityProviders with openid-client on the global fetch. */
  signIn?: SignInService;
}

/** Resolved dependencies used by the sub-apps. */
export interface ResolvedDeps {
  ctx: EdgeContext;
  sessions: SessionManager;
  rateLimiter: LoginRateLimiter;
  sseKeepaliveMs: number;
  scrypt?: ScryptParams;
  metrics: EdgeMetrics;
  supportQuota?: SupportQuota;
  productVersion?: string;
  logs?: () => LogRecord[];
  identityProviders: IdentityProviders;
  signIn: SignInService;
}
