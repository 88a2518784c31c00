/**
 * Disabling a user, the edge's side: their sign-ins end and their devices
 * leave the tunnel at once; the device API refuses them (devices.ts
 * authenticateDevice) until an administrator enables the user again.
 */
import { NotFoundError } from "../errors.ts";
import type { DeviceRecord } from "../store/mod.ts";
import { hostAddress } from "./addresses.ts";
import type { EdgeContext } from "./context.ts";

/**
 * Disables or enables a user: a disabled user's sign-ins end and every one
 * of their devices leaves the tunnel at once (traffic stops with the next
 * packet); enabling puts the devices that are not disabled themselves back.
 */
export function setUserDisabled(
  ctx: EdgeContext,
  userId: string,
  disabled: boolean,
  actor: string,
): DeviceRecord[] {
  const u = ctx.store.users.byId(userId);
  if (!u) throw new NotFoundError("user_not_found", `Cannot find user "${userId.slice(0, 64)}"`);
  const now = ctx.clock.now();
  const devices = ctx.store.devices.byUser(u.username);
  ctx.store.transaction(() => {
    ctx.store.users.setDisabled(u.id, disabled);
    if (disabled) ctx.store.userSignIns.deleteForUser(u.id);
    ctx.store.audit.insert({
      at: now,
      actor,
      action: disabled ? "user.disable" : "user.enable",
      target: u.id,
      detail: { username: u.username, devices: devices.map((d) => d.id) },
    });
  });
  for (const d of devices) {
    if (disabled) ctx.tunnel.removePeer(d.wgPublicKey);
    else if (!d.disabled) {
      const host = ctx.store.leases.hostOf(d.id);
      if (host !== null) {
        ctx.tunnel.upsertPeer({
          id: d.id,
          wgPublicKey: d.wgPublicKey,
          address: hostAddress(ctx.network, host),
        });
      }
    }
    ctx.subjectChanged.emit(d.id);
  }
  return devices;
}
