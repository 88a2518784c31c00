/**
 * Who is behind a device, as access rules see it: the device (id and name),
 * the signed-in user and that user's groups (IdP and local), and the machine
 * group of the enrolment key it enrolled with. Today no user signs in on
 * devices, so a device's user is whatever the store holds (null until issue
 * 10's sign-in fills it) and its groups are the enrolment key's group
 * (source "machine") plus the local groups of that user when there is one.
 *
 * Read from the store on demand; the enforcer caches one per device and
 * asks again when a device is enrolled again or changes. Whoever changes
 * what this function returns for a device (sign-in, group sync) must say so
 * with `ctx.subjectChanged.emit(deviceId)`.
 */
import type { AccessSubject } from "../policy/access.ts";
import type { Store } from "../store/mod.ts";

export type { AccessSubject as Subject, GroupSource } from "../policy/access.ts";

/** The subject of device `deviceId`, or null when there is no such device. */
export function subjectFor(store: Store, deviceId: string): AccessSubject | null {
  const d = store.devices.byId(deviceId);
  if (!d) return null;
  const groups: AccessSubject["groups"][number][] = [];
  if (d.group) groups.push({ name: d.group, source: "machine" });
  if (d.user) {
    const u = store.users.byUsername(d.user);
    for (const g of u?.groups ?? []) groups.push({ name: g, source: "local" });
  }
  return {
    deviceId: d.id,
    deviceName: d.hostname,
    user: d.user,
    groups,
    machine: d.user === null,
  };
}
