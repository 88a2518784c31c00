/**
 * Device lifecycle on the edge: enrolment (one transaction: device, key use,
 * address lease, audit), authentication of later calls, disable / enable /
 * delete with immediate effect on the tunnel, and the views the admin sees.
 *
 * One device, one identity: a device is its hardware fingerprint. The same
 * fingerprint re-enrolling replaces its keys and credential and keeps its id
 * and address. Keys already held by a device with a *different* fingerprint
 * mean a cloned disk image: refused, reported, and the original untouched.
 */
import { resolveSignIn } from "../identity/signin.ts";
import { createPublicKey, verify as edVerify } from "node:crypto";
import { InputError, NotFoundError } from "../errors.ts";
import { type EnrollRequest, type EnrollResponse, reenrollMessage } from "../control/mod.ts";
import {
  fingerprintHash,
  newDeviceCredential,
  randomId,
  sha256Hex,
  verifyDeviceCredential,
} from "../identity/secrets.ts";
import type { DeviceRecord, Store } from "../store/mod.ts";
import { hostAddress, MAX_HOST, parseIPv4, parsePrefix4 } from "./addresses.ts";
import type { EdgeContext } from "./context.ts";
import type { PeerStats, TunnelPeer } from "./dataplane_port.ts";
import { presentedSecret, usableKey } from "./enrollment_keys.ts";
import { fleetSignInEnds, refuseLapsedSignIn, signInEndOf } from "./signin_lapse.ts";

/** Result of an enrolment, for the HTTP layer and metrics. */
export interface EnrollOutcome {
  response: EnrollResponse;
  device: DeviceRecord;
  reenrolled: boolean;
}

/** Verifies an Ed25519 signature (all base64); false on any malformed input. */
export function verifyEd25519(
  publicKeyB64: string,
  message: string | Uint8Array,
  signatureB64: string,
): boolean {
  try {
    const key = createPublicKey({
      key: {
        kty: "OKP",
        crv: "Ed25519",
        x: Buffer.from(publicKeyB64, "base64").toString("base64url"),
      },
      format: "jwk",
    });
    return edVerify(
      null,
      typeof message === "string" ? new TextEncoder().encode(message) : message,
      key,
      Buffer.from(signatureB64, "base64"),
    );
  } catch {
    return false;
  }
}

/** Enrols (or re-enrols) a device; throws InputError with a code on refusal. */
export function enrollDevice(
  ctx: EdgeContext,
  req: EnrollRequest,
  sourceIp: string,
): EnrollOutcome {
  const { store, clock } = ctx;
  const now = clock.now();
  const secret = presentedSecret(req.key);
  const fingerprint = fingerprintHash(req.fingerprint);
  const { credential, hash: credentialHash } = newDeviceCredential();
  const macs = [...new Set(req.fingerprint.macs.map((m) => m.toLowerCase()))].sort();

  let conflict: DeviceRecord | undefined;
  let unproven: DeviceRecord | undefined;
  let replacedKey: string | null = null;
  let outcome: { device: DeviceRecord; host: number; reenrolled: boolean };
  try {
    outcome = store.transaction(() => {
      const key = usableKey(store, secret, now);
      // Who is enrolling: a signed-in user, or nobody on a machine key.
      const signIn = req.signIn === undefined ? undefined : resolveSignIn(store, now, req.signIn);
      if (req.signIn !== undefined && !signIn) {
        throw new InputError(
          "signin_invalid",
          `Cannot enrol "${req.hostname}": the sign-in is expired, unknown or its user is disabled; sign in again`,
          401,
        );
      }
      if (!signIn && !key.machine) {
        throw new InputError(
          "signin_required",
          `Cannot enrol "${req.hostname}": enrolment key ${key.id} is for users' devices; sign in first`,
          401,
        );
      }
      const userName = signIn?.user.username ?? null;
      const holders = store.devices.byPublicKeys(req.wgPublicKey, req.signingPublicKey);
      conflict = holders.find((d) => d.fingerprint !== fingerprint);
      if (conflict) {
        throw new InputError(
          "device_identity_conflict",
          `Cannot enrol "${req.hostname}": its keys already belong to device "${conflict.hostname}" enrolled from different hardware; a cloned disk image cannot share a device identity, so generate new keys on this machine`,
          409,
        );
      }
      if (req.wgPublicKey === req.signingPublicKey) {
        throw new InputError(
          "invalid_request",
          "Invalid request: signingPublicKey: must differ from wgPublicKey",
        );
      }
      if (!store.enrollmentKeys.claimUse(key.id, now)) {
        throw new InputError(
          "enrollment_key_used",
          `Cannot enrol: single-use enrolment key ${key.id} was already used`,
          410,
        );
      }
      const existing = store.devices.byFingerprint(fingerprint);
      let device: DeviceRecord;
      if (existing) {
        if (existing.disabled) {
          throw new InputError(
            "device_disabled",
            `Cannot enrol "${req.hostname}": this device was disabled by an administrator`,
            403,
          );
        }
        // A machine-id and MAC addresses are not secrets: only the holder of
        // the device's signing key may take its identity (id, address, name).
        const message = reenrollMessage(fingerprint, req.wgPublicKey, req.signingPublicKey);
        if (!req.proof || !verifyEd25519(existing.signingPublicKey, message, req.proof)) {
          unproven = existing;
          throw new InputError(
            "device_reenrollment_unproven",
            `Cannot enrol "${req.hostname}": this hardware is already enrolled as device "${existing.hostname}" (${existing.id}), and the request is not signed with that device's key; an administrator must delete the old device first`,
            409,
          );
        }
        if (existing.wgPublicKey !== req.wgPublicKey) replacedKey = existing.wgPublicKey;
        const changes = {
          machineId: req.fingerprint.machineId,
          macs,
          hostname: req.hostname,
          os: req.os,
          osVersion: req.osVersion,
          connectorVersion: req.connectorVersion,
          wgPublicKey: req.wgPublicKey,
          signingPublicKey: req.signingPublicKey,
          credentialHash,
          group: key.group ?? existing.group,
          enrollmentKeyId: key.id,
          updatedAt: now,
        };
        store.devices.reenroll(existing.id, changes);
        store.devices.setUser(existing.id, userName);
        device = { ...existing, ...changes, user: userName, enrolledAt: now };
      } else {
        device = {
          id: randomId("dev"),
          fingerprint,
          machineId: req.fingerprint.machineId,
          macs,
          hostname: req.hostname,
          os: req.os,
          osVersion: req.osVersion,
          connectorVersion: req.connectorVersion,
          wgPublicKey: req.wgPublicKey,
          signingPublicKey: req.signingPublicKey,
          credentialHash,
          group: key.group,
          user: userName,
          enrollmentKeyId: key.id,
          disabled: false,
          enrolledAt: now,
          updatedAt: now,
          lastSeenAt: now,
          reportedState: null,
          reportedTransport: null,
          clockSkewMs: null,
        };
        store.devices.insert(device);
      }
      if (signIn) store.userSignIns.bind(signIn.tokenHash, device.id);
      const host = store.leases.hostOf(device.id) ??
        store.leases.allocate(device.id, now, MAX_HOST);
      if (host === null) {
        throw new InputError(
          "address_pool_exhausted",
          `Cannot enrol "${req.hostname}": no free address left in ${ctx.network}`,
          503,
        );
      }
      store.audit.insert({
        at: now,
        actor: `device:${device.id}`,
        action: existing ? "device.reenroll" : "device.enroll",
        target: device.id,
        detail: {
          hostname: device.hostname,
          keyId: key.id,
          address: hostAddress(ctx.network, host),
          sourceIp,
          user: userName,
        },
      });
      return { device, host, reenrolled: existing !== undefined };
    });
  } catch (err) {
    if (unproven && err instanceof InputError && err.code === "device_reenrollment_unproven") {
      ctx.notifier.publish({
        kind: "identity_conflict",
        hostname: req.hostname,
        presentedFingerprint: fingerprint,
        existingDeviceId: unproven.id,
        existingHostname: unproven.hostname,
      });
    }
    if (conflict && err instanceof InputError && err.code === "device_identity_conflict") {
      ctx.notifier.publish({
        kind: "identity_conflict",
        hostname: req.hostname,
        presentedFingerprint: fingerprint,
        existingDeviceId: conflict.id,
        existingHostname: conflict.hostname,
      });
    }
    throw err;
  }

  const address = hostAddress(ctx.network, outcome.host);
  // Its group (subject) may have changed with the new key: its bundle is built again.
  ctx.policy.forgetDevice(outcome.device.id);
  if (replacedKey) ctx.tunnel.removePeer(replacedKey);
  ctx.tunnel.upsertPeer({
    id: outcome.device.id,
    wgPublicKey: outcome.device.wgPublicKey,
    address,
  });
  ctx.notifier.publish({
    kind: "device_enrolled",
    deviceId: outcome.device.id,
    hostname: outcome.device.hostname,
    reenrolled: outcome.reenrolled,
  });
  return {
    device: outcome.device,
    reenrolled: outcome.reenrolled,
    response: {
      deviceId: outcome.device.id,
      credential,
      address,
      network: ctx.network,
      edgeAddress: ctx.edgeAddress,
      edgePublicKey: ctx.edgePublicKey,
      endpoints: ctx.endpoints,
      policy: ctx.policy.bundleForDevice(outcome.device.id),
      user: outcome.device.user,
      group: outcome.device.group,
      serverTime: new Date(ctx.clock.now()).toISOString(),
    },
  };
}

/**
 * Resolves `Authorization: Bearer <credential>` plus `X-Device-Fingerprint`
 * to a device. Unknown credential 401; a known credential from other
 * hardware 403 `device_fingerprint_mismatch` (and an admin notification);
 * a disabled device 403 `device_disabled`; a device whose user's sign-in
 * ended 401 `signin_expired`, unless `o.lapsed` is "allow" (renewing it).
 */
export function authenticateDevice(
  ctx: EdgeContext,
  authorization: string | undefined,
  fingerprintHeader: string | undefined,
  o: { lapsed?: "allow" } = {},
): DeviceRecord {
  const m = /^Bearer ([A-Za-z0-9_-]{16,128})$/.exec(authorization ?? "");
  if (!m) {
    throw new InputError(
      "device_unauthorized",
      'Cannot authenticate the device: expected "Authorization: Bearer <device credential>"',
      401,
    );
  }
  const device = ctx.store.devices.byCredentialHash(sha256Hex(m[1]));
  if (!device || !verifyDeviceCredential(m[1], device.credentialHash)) {
    throw new InputError(
      "device_unauthorized",
      "Cannot authenticate the device: the credential is not valid (re-enrol the device)",
      401,
    );
  }
  const fp = (fingerprintHeader ?? "").trim().toLowerCase();
  if (!verifyDeviceCredential(fp, sha256Hex(device.fingerprint))) {
    ctx.notifier.publish({
      kind: "fingerprint_mismatch",
      deviceId: device.id,
      hostname: device.hostname,
      presentedFingerprint: /^[0-9a-f]{64}$/.test(fp) ? fp : "(malformed)",
    });
    throw new InputError(
      "device_fingerprint_mismatch",
      `Cannot authenticate the device: the credential of "${device.hostname}" was presented from different hardware`,
      403,
    );
  }
  if (device.disabled) {
    throw new InputError(
      "device_disabled",
      `Device "${device.hostname}" was disabled by an administrator`,
      403,
    );
  }
  if (device.user !== null && ctx.store.users.byUsername(device.user)?.disabled) {
    throw new InputError(
      "user_disabled",
      `User "${device.user}" of device "${device.hostname}" was disabled by an administrator`,
      403,
    );
  }
  // Re-authentication every N hours: past its sign-in's end, the device is
  // out of the tunnel until its user signs in again (signin_lapse.ts).
  if (o.lapsed !== "allow") refuseLapsedSignIn(ctx, device);
  return device;
}

function requireDevice(ctx: EdgeContext, id: string): DeviceRecord {
  const d = ctx.store.devices.byId(id);
  if (!d) throw new NotFoundError("device_not_found", `Cannot find device "${id}"`);
  return d;
}

/** Disables a device and removes its peer from the tunnel at once. */
export function disableDevice(ctx: EdgeContext, id: string, actor: string): DeviceRecord {
  const d = requireDevice(ctx, id);
  const now = ctx.clock.now();
  ctx.store.transaction(() => {
    ctx.store.devices.setDisabled(id, true, now);
    ctx.store.audit.insert({ at: now, actor, action: "device.disable", target: id, detail: {} });
  });
  ctx.tunnel.removePeer(d.wgPublicKey);
  ctx.notifier.publish({ kind: "device_disabled", deviceId: id, hostname: d.hostname, by: actor });
  return { ...d, disabled: true, updatedAt: now };
}

/** Enables a device and puts its peer back in the tunnel. */
export function enableDevice(ctx: EdgeContext, id: string, actor: string): DeviceRecord {
  const d = requireDevice(ctx, id);
  const now = ctx.clock.now();
  ctx.store.transaction(() => {
    ctx.store.devices.setDisabled(id, false, now);
    ctx.store.audit.insert({ at: now, actor, action: "device.enable", target: id, detail: {} });
  });
  const host = ctx.store.leases.hostOf(id);
  if (host !== null) {
    ctx.tunnel.upsertPeer({
      id,
      wgPublicKey: d.wgPublicKey,
      address: hostAddress(ctx.network, host),
    });
  }
  ctx.notifier.publish({ kind: "device_enabled", deviceId: id, hostname: d.hostname, by: actor });
  return { ...d, disabled: false, updatedAt: now };
}

/** Deletes a device: its address, posture and registration go with it. */
export function deleteDevice(ctx: EdgeContext, id: string, actor: string): void {
  const d = requireDevice(ctx, id);
  const now = ctx.clock.now();
  ctx.store.transaction(() => {
    ctx.store.devices.delete(id);
    ctx.store.audit.insert({
      at: now,
      actor,
      action: "device.delete",
      target: id,
      detail: { hostname: d.hostname },
    });
  });
  ctx.tunnel.removePeer(d.wgPublicKey);
  ctx.notifier.publish({ kind: "device_deleted", deviceId: id, hostname: d.hostname, by: actor });
}

/**
 * What deciding a device's tunnel peer reads besides the device itself:
 * its lease, whether an administrator disabled its user, when its sign-in
 * ends (null: it does not lapse).
 */
export interface PeerFacts {
  host(d: DeviceRecord): number | null | undefined;
  userDisabled(d: DeviceRecord): boolean;
  signInEnd(d: DeviceRecord): number | null;
}

/** The facts of one device, each read when asked. */
function deviceFacts(ctx: EdgeContext): PeerFacts {
  return {
    host: (d) => ctx.store.leases.hostOf(d.id),
    userDisabled: (d) => d.user !== null && ctx.store.users.byUsername(d.user)?.disabled === true,
    signInEnd: (d) => signInEndOf(ctx, d),
  };
}

/**
 * The facts of every device, read in a few queries: for passes over the
 * whole fleet (start-up, a reconnected peer feed), which per device cost
 * three round trips each on PostgreSQL, all on the edge's one thread.
 */
export function fleetPeerFacts(ctx: EdgeContext): PeerFacts {
  const leases = ctx.store.leases.all();
  const disabledUser = ctx.store.devices.idsWithDisabledUser();
  return {
    host: (d) => leases.get(d.id),
    userDisabled: (d) => disabledUser.has(d.id),
    signInEnd: fleetSignInEnds(ctx),
  };
}

/**
 * The tunnel peer device `d` should be, or null when it must not be in the
 * tunnel (disabled, no address, its user disabled, its sign-in ended).
 */
export function peerOf(
  ctx: EdgeContext,
  d: DeviceRecord,
  facts: PeerFacts = deviceFacts(ctx),
): TunnelPeer | null {
  if (d.disabled) return null;
  const host = facts.host(d);
  if (host === undefined || host === null || facts.userDisabled(d)) return null;
  const end = facts.signInEnd(d);
  if (end !== null && end <= ctx.clock.now()) return null;
  return { id: d.id, wgPublicKey: d.wgPublicKey, address: hostAddress(ctx.network, host) };
}

/** Puts every enabled device with an address and a live sign-in into the tunnel (at start). */
export function loadPeers(ctx: EdgeContext): number {
  const facts = fleetPeerFacts(ctx);
  let n = 0;
  for (const d of ctx.store.devices.list()) {
    const peer = peerOf(ctx, d, facts);
    if (!peer) continue;
    ctx.tunnel.upsertPeer(peer);
    n++;
  }
  return n;
}

/** How long after the last handshake a tunnel still counts as up (WireGuard's reject-after-time). */
export const TUNNEL_UP_MS = 180_000;

/**
 * The admin's view of a device, with live tunnel counters. A list passes
 * each device's lease and the tunnel's counters, read once for all: the
 * counters are every peer's, so reading them per device made a list of N
 * devices cost N² peers' worth.
 */
export function deviceView(
  ctx: EdgeContext,
  d: DeviceRecord,
  host?: number | null,
  peerStats: ReadonlyMap<string, PeerStats> = ctx.tunnel.peerStats(),
) {
  const h = host === undefined ? ctx.store.leases.hostOf(d.id) : host;
  const stats = peerStats.get(d.wgPublicKey);
  const now = ctx.clock.now();
  const up = stats?.lastHandshake != null && now - stats.lastHandshake < TUNNEL_UP_MS;
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    id: d.id,
    hostname: d.hostname,
    fingerprint: d.fingerprint,
    machineId: d.machineId,
    macs: d.macs,
    os: d.os,
    osVersion: d.osVersion,
    connectorVersion: d.connectorVersion,
    group: d.group,
    user: d.user,
    address: h === null ? null : hostAddress(ctx.network, h),
    wgPublicKey: d.wgPublicKey,
    signingPublicKey: d.signingPublicKey,
    disabled: d.disabled,
    enrolledAt: iso(d.enrolledAt),
    lastSeenAt: iso(d.lastSeenAt),
    reportedState: d.reportedState,
    clockSkewMs: d.clockSkewMs,
    tunnel: {
      state: d.disabled ? "disabled" : up ? "up" : "down",
      transport: stats?.transport ?? (d.reportedTransport as "udp" | "tls" | null),
      endpoint: stats?.endpoint ?? null,
      lastHandshake: iso(stats?.lastHandshake ?? null),
      rxBytes: stats?.rxBytes ?? 0,
      txBytes: stats?.txBytes ?? 0,
    },
  };
}

/** Finds a device for the admin API or throws 404. */
export function getDevice(ctx: EdgeContext, id: string): DeviceRecord {
  return requireDevice(ctx, id);
}

/**
 * The device whose tunnel address is `ip`, or null: answers "who sent this
 * packet?" for the "am I protected" page (the tunnel's allowed-IPs check
 * guarantees a packet from a device address came from that device).
 */
export function deviceForAddress(ctx: EdgeContext, ip: string): DeviceRecord | null {
  const net = parsePrefix4(ctx.network);
  const addr = parseIPv4(ip);
  if (!net || addr === null) return null;
  const host = addr - net.base;
  if (host < 2 || host >= 2 ** (32 - net.len) - 1) return null;
  const id = ctx.store.leases.deviceAt(host);
  return id ? ctx.store.devices.byId(id) ?? null : null;
}

/**
 * The tunnel address answering to a client-to-client FQDN: the device that
 * holds a valid registration for it, if that device is enabled and leased.
 */
export function c2cAddress(ctx: EdgeContext, fqdn: string): string | null {
  if (!ctx.policy.clientToClient().enabled) return null;
  const id = ctx.store.c2c.validOwner(fqdn.toLowerCase());
  if (!id) return null;
  const d = ctx.store.devices.byId(id);
  const host = ctx.store.leases.hostOf(id);
  if (!d || d.disabled || host === null) return null;
  return hostAddress(ctx.network, host);
}

/** Limits on support uploads per device. */
export interface SupportQuota {
  /** Uploads allowed per device within `windowMs`. */
  perWindow: number;
  /** Window length in ms. */
  windowMs: number;
  /** Bundles kept per device; older ones are pruned. */
  keep: number;
}

/** Defaults: 5 uploads an hour, the newest 20 bundles kept per device. */
export const DEFAULT_SUPPORT_QUOTA: SupportQuota = { perWindow: 5, windowMs: 3_600_000, keep: 20 };

/**
 * Refuses with 429 support_rate_limited when the device already uploaded its
 * quota within the window. Counted from the stored rows, so a restart does
 * not reset it; call it again inside the insert's transaction to close races.
 */
export function checkSupportQuota(
  store: Store,
  deviceId: string,
  now: number,
  quota: SupportQuota = DEFAULT_SUPPORT_QUOTA,
): void {
  const row = store.db.get<{ n: number; first: number | null }>(
    "SELECT COUNT(*) AS n, MIN(created_at) AS first FROM support_requests WHERE device_id = ? AND created_at > ?",
    deviceId,
    now - quota.windowMs,
  );
  const n = Number(row?.n ?? 0);
  if (n >= quota.perWindow) {
    const waitS = Math.max(1, Math.ceil((Number(row!.first) + quota.windowMs - now) / 1000));
    throw new InputError(
      "support_rate_limited",
      `Cannot accept another support request from this device: ${quota.perWindow} were sent in the last ${
        Math.round(quota.windowMs / 60_000)
      } minutes; try again in ${waitS} seconds`,
      429,
    );
  }
}

/** Deletes all but the newest `keep` support bundles of a device; returns how many were removed. */
export function pruneSupportBundles(store: Store, deviceId: string, keep: number): number {
  return store.db.run(
    `DELETE FROM support_requests WHERE device_id = ? AND id NOT IN (
       SELECT id FROM support_requests WHERE device_id = ? ORDER BY created_at DESC, id DESC LIMIT ?
     )`,
    deviceId,
    deviceId,
    keep,
  ).changes;
}
