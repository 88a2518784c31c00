/**
 * Admin consent: the URL of the identity platform's `adminconsent`
 * endpoint for the tenant being added, and what its redirect back means.
 *
 * The redirect arrives as a top-level navigation from Microsoft's site, so
 * the console's SameSite=Strict session cookie is not sent with it: the
 * `state` is what authenticates it. It names the tenant being added and
 * carries 32 random bytes; the edge keeps only its SHA-256, accepts it
 * once and only within CONSENT_TTL_MS, so a state made up, copied from
 * another request or replayed is refused.
 */
import { randomToken, sha256Hex } from "../identity/secrets.ts";

/** How long a consent request can be answered (30 minutes). */
export const CONSENT_TTL_MS = 30 * 60_000;

/** The path of the redirect handler on the admin console. */
export const CONSENT_REDIRECT_PATH = "/saas/consent";

/** A fresh state for adding tenant `name`, and the hash the edge keeps. */
export function newConsentState(name: string): { state: string; hash: string } {
  const state = `add-saas-tenant/${encodeURIComponent(name)}/${randomToken(32)}`;
  return { state, hash: sha256Hex(state) };
}

/** The stored hash of a state from a redirect (null when it cannot be one of ours). */
export function consentStateHash(state: string): string | null {
  if (
    state.length > 400 ||
    !/^add-saas-tenant\/[A-Za-z0-9%._~-]{1,200}\/[A-Za-z0-9_-]{43}$/.test(state)
  ) {
    return null;
  }
  return sha256Hex(state);
}

/** The admin-consent URL for `clientId` in `tenantId`, coming back to `redirectUri`. */
export function adminConsentUrl(
  authorityUrl: string,
  tenantId: string,
  clientId: string,
  redirectUri: string,
  state: string,
): string {
  const u = new URL(`${authorityUrl.replace(/\/+$/, "")}/${tenantId}/adminconsent`);
  u.searchParams.set("client_id", clientId);
  u.searchParams.set("state", state);
  u.searchParams.set("redirect_uri", redirectUri);
  return u.toString();
}

/** What the identity platform said on the redirect. */
export type ConsentAnswer =
  | { kind: "granted"; tenant: string | null }
  | { kind: "denied"; error: string; description: string };

/** The answer in a redirect's query (`admin_consent=True&tenant=…` or `error=…`). */
export function consentAnswer(q: Record<string, string | undefined>): ConsentAnswer {
  const clean = (s: string | undefined, n: number) =>
    // deno-lint-ignore no-control-regex
    (s ?? "").replace(/[\x00-\x1f\x7f]/g, " ").slice(0, n);
  if (q.error) {
    return {
      kind: "denied",
      error: clean(q.error, 64),
      description: clean(q.error_description, 300),
    };
  }
  if ((q.admin_consent ?? "").toLowerCase() === "true") {
    return { kind: "granted", tenant: q.tenant ? clean(q.tenant, 64).toLowerCase() : null };
  }
  return {
    kind: "denied",
    error: "invalid_response",
    description: "The redirect carried neither admin_consent=True nor an error",
  };
}

/** True when `uri` can be a consent redirect URI: http(s), no credentials, no fragment, ends in the handler's path. */
export function validRedirectUri(uri: string): boolean {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return false;
  }
  return (u.protocol === "https:" || u.protocol === "http:") && !u.username && !u.password &&
    !u.hash && u.pathname.endsWith(CONSENT_REDIRECT_PATH) && uri.length <= 500;
}
