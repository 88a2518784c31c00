/**
 * Re-authentication every N hours, the edge's side. A user's device is in
 * the tunnel only while its user's sign-in on it lasts: from the sign-in
 * bound to the device, for the `signInLifetimeHours` of the app profile
 * *that device* gets (its group's), read when asked, so a profile change
 * applies to sign-ins already made. Past it, the device API refuses the
 * device with `signin_expired` and its peer leaves the tunnel (also when
 * nobody calls: the edge sweeps), but the device stays enrolled: its user
 * signs in again and the connector hands the new sign-in over here
 * (`renewDeviceSignIn`), which puts the same device back in the tunnel —
 * same id, key, credential and address, no new enrolment.
 */
import { InputError } from "../errors.ts";
import { resolveSignIn } from "../identity/signin.ts";
import type { DeviceRecord } from "../store/mod.ts";
import { hostAddress } from "./addresses.ts";
import type { EdgeContext } from "./context.ts";

/** How long a sign-in lasts on device `d` (ms): its own app profile's (its group's) lifetime. */
export function signInLifetimeFor(ctx: EdgeContext, d: DeviceRecord): number {
  return lifetimeMs(ctx.policy.appProfiles()(d.group));
}

function lifetimeMs(p: { signInLifetimeHours: number }): number {
  return p.signInLifetimeHours * 3600_000;
}

/**
 * When the sign-in of device `d`'s user on it ends (ms), or null for a
 * machine device (no user) or one with no sign-in bound (enrolled before
 * users were bound; nothing to lapse).
 */
export function signInEndOf(ctx: EdgeContext, d: DeviceRecord): number | null {
  if (d.user === null) return null;
  const s = ctx.store.userSignIns.latestForDevice(d.id);
  return s ? s.createdAt + signInLifetimeFor(ctx, d) : null;
}

/**
 * `signInEndOf` for a pass over the whole fleet: every device's newest
 * sign-in and the profiles are read once, not per device. Per device, on
 * PostgreSQL, the 30 s sweep of 2,000 user devices held the edge's thread
 * (the one that moves every tunnel packet) for about 2 s.
 */
export function fleetSignInEnds(ctx: EdgeContext): (d: DeviceRecord) => number | null {
  const latest = ctx.store.userSignIns.latestCreatedAtByDevice();
  // Read when a device has a sign-in to end: a fleet of machine devices needs no profile.
  let profileOf: ((group: string | null) => { signInLifetimeHours: number }) | null = null;
  return (d) => {
    if (d.user === null) return null;
    const at = latest.get(d.id);
    if (at === undefined) return null;
    profileOf ??= ctx.policy.appProfiles();
    return at + lifetimeMs(profileOf(d.group));
  };
}

/** Refuses a device whose sign-in ended (401 `signin_expired`) and takes it out of the tunnel. */
export function refuseLapsedSignIn(ctx: EdgeContext, d: DeviceRecord): void {
  const end = signInEndOf(ctx, d);
  if (end === null || end > ctx.clock.now()) return;
  // Once: a lapsed device that keeps calling is not taken out (and announced to the fleet) each time.
  if (ctx.tunnel.hasPeer(d.wgPublicKey)) ctx.tunnel.removePeer(d.wgPublicKey);
  throw new InputError(
    "signin_expired",
    `The sign-in of "${d.user}" on "${d.hostname}" ended at ${
      new Date(end).toISOString()
    }; sign in again`,
    401,
  );
}

/**
 * Takes every device whose sign-in ended out of the tunnel; returns how
 * many it removed. Run periodically: a device that stops calling the API
 * must not keep its tunnel past its sign-in.
 */
export function sweepLapsedSignIns(ctx: EdgeContext): number {
  let n = 0;
  const endOf = fleetSignInEnds(ctx);
  const now = ctx.clock.now();
  for (const d of ctx.store.devices.list()) {
    if (d.user === null || d.disabled) continue;
    const end = endOf(d);
    // Out already (this sweep's or an earlier one's): nothing to do, nothing to tell the fleet.
    if (end === null || end > now || !ctx.tunnel.hasPeer(d.wgPublicKey)) continue;
    ctx.tunnel.removePeer(d.wgPublicKey);
    n++;
  }
  return n;
}

/**
 * Device `d` (authenticated by its credential, its sign-in possibly ended)
 * presents its user's new sign-in token: it must be live, unused on any
 * other device, and the same user's. The sign-in is bound to the device,
 * audited, and the device is back in the tunnel.
 */
export function renewDeviceSignIn(
  ctx: EdgeContext,
  d: DeviceRecord,
  token: string,
): { user: string; signInEndsAt: number } {
  const { store, clock } = ctx;
  const now = clock.now();
  if (d.user === null) {
    throw new InputError(
      "signin_not_needed",
      `Device "${d.hostname}" is a machine device: it has no user to sign in`,
      409,
    );
  }
  const s = resolveSignIn(store, now, token);
  if (!s) {
    throw new InputError(
      "signin_invalid",
      `Cannot renew the sign-in on "${d.hostname}": the sign-in is expired, unknown or its user is disabled; sign in again`,
      401,
    );
  }
  if (s.user.username !== d.user) {
    throw new InputError(
      "signin_user_mismatch",
      `Device "${d.hostname}" belongs to "${d.user}", not to "${s.user.username}"; sign in as ${d.user}`,
      403,
    );
  }
  store.transaction(() => {
    if (!store.userSignIns.bind(s.tokenHash, d.id)) {
      throw new InputError(
        "signin_in_use",
        `Cannot renew the sign-in on "${d.hostname}": this sign-in is bound to another device`,
        409,
      );
    }
    store.audit.insert({
      at: now,
      actor: `user:${d.user}`,
      action: "device.signin_renew",
      target: d.id,
      detail: { hostname: d.hostname },
    });
  });
  const host = store.leases.hostOf(d.id);
  if (host !== null && !d.disabled) {
    ctx.tunnel.upsertPeer({
      id: d.id,
      wgPublicKey: d.wgPublicKey,
      address: hostAddress(ctx.network, host),
    });
  }
  ctx.subjectChanged.emit(d.id);
  return { user: d.user, signInEndsAt: now + signInLifetimeFor(ctx, d) };
}
