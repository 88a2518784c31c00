/**
 * Which identity provider a device's user signs in at, for the device's
 * policy bundle (the connector's doctor probes that hop: reachability and
 * certificate). The user record names the provider the user signed in
 * through; a machine device or a local user has none (they sign in at the
 * edge itself). The URL is the one users are sent to: the OIDC issuer, or
 * the SAML single sign-on URL from the provider's metadata.
 *
 * Bundles are cached per device, so the provider's identity and last change
 * make a stamp: a cached bundle is used only while the stamp is the same
 * (an admin editing the issuer, or the user signing in through another
 * provider, gives the device a new bundle on its next fetch).
 */
import type { DeviceIdp } from "../policy/types.ts";
import { providerView } from "../identity/providers.ts";
import type { IdentityProviderRecord, Store, UserRecord } from "../store/mod.ts";

/** The provider behind a device's user, and the stamp its cached bundle is valid for. */
export interface DeviceIdpLookup {
  stamp: string;
  /** The user's record (null: a machine device, or no such user). */
  user: UserRecord | null;
  /** The provider's record (null: none applies). */
  provider: IdentityProviderRecord | null;
}

/**
 * Finds the provider of `user` (a username, null for a machine device);
 * cheap (two lookups). Both records are handed on, so the bundle built from
 * them reads neither again.
 */
export function lookupDeviceIdp(store: Store, user: string | null): DeviceIdpLookup {
  const u = user === null ? null : store.users.byUsername(user) ?? null;
  const p = u?.providerId ? store.identityProviders.get(u.providerId) ?? null : null;
  return { stamp: p ? `${p.id}@${p.updatedAt}` : "", user: u, provider: p };
}

/** The bundle's view of provider `p` (null when there is none or it has no URL to give). */
export function deviceIdp(p: IdentityProviderRecord | null): DeviceIdp | null {
  if (!p) return null;
  let url: string | null = null;
  try {
    url = p.oidc?.issuer ?? (p.saml ? providerView(p).saml?.ssoUrl ?? null : null);
  } catch {
    // Stored metadata that no longer parses: nothing to probe.
    url = null;
  }
  if (!url || url.length > 2048 || !URL.canParse(url)) return null;
  if (!["https:", "http:"].includes(new URL(url).protocol)) return null;
  return { name: p.name.slice(0, 64), kind: p.kind, url };
}
