/**
 * Who is behind a device, as access rules see it: the device (id and name),
 * the signed-in user it was enrolled under and that user's groups — the
 * IdP's (source "idp", mapped at the last sign-in) and local ones — and the
 * machine group of the enrolment key it enrolled with (source "machine").
 *
 * Read from the store on demand; the enforcer caches one per device and
 * asks again when a device is enrolled again or changes. Whoever changes
 * what this function returns for a device (sign-in, group sync) must say so
 * with `ctx.subjectChanged.emit(deviceId)`.
 */
import type { AccessSubject } from "../policy/access.ts";
import type { DeviceRecord, Store, UserRecord } from "../store/mod.ts";
import { userGroups } from "../identity/signin.ts";

export type { AccessSubject as Subject, GroupSource } from "../policy/access.ts";

/**
 * The subject of device `deviceId`, or null when there is no such device.
 * `record` is the device's row when the caller just read it (one store
 * round trip less for each device a policy change wakes).
 */
export function subjectFor(
  store: Store,
  deviceId: string,
  record?: DeviceRecord | null,
): AccessSubject | null {
  const d = record?.id === deviceId ? record : store.devices.byId(deviceId);
  if (!d) return null;
  return subjectOf(d, d.user ? store.users.byUsername(d.user) ?? null : null);
}

/**
 * The subject of device `d`, given its user's record (looked up by
 * `d.user`; null for a machine device or a user since deleted) that the
 * caller read already: no store access.
 */
export function subjectOf(d: DeviceRecord, u: UserRecord | null): AccessSubject {
  const groups: AccessSubject["groups"][number][] = [];
  if (d.group) groups.push({ name: d.group, source: "machine" });
  if (d.user && u) {
    // The IdP's groups as mapped at the user's last sign-in, then local ones.
    for (const g of userGroups(u)) {
      if (g.source !== "machine") groups.push({ name: g.name, source: g.source });
    }
  }
  return {
    deviceId: d.id,
    deviceName: d.hostname,
    user: d.user,
    groups,
    machine: d.user === null,
  };
}
