/** Shared fixtures of the engine unit tests: a real device identity and an in-memory state store. */
import {
  DeviceIdentity,
  fingerprintHash,
  generateDeviceKeys,
} from "../../../src/connector/identity.ts";
import { ConnectorState } from "../../../src/store/connector_state.ts";
import { makeBundle, makeKey } from "../fake_edge.ts";

export { makeBundle, makeKey };

/** A 64-hex CA pin for keys. */
export const PIN = "c".repeat(64);

/** A fresh device identity with real keys. */
export async function makeIdentity(): Promise<DeviceIdentity> {
  const k = await generateDeviceKeys();
  const fp = { machineId: "0123456789abcdef0123456789abcdef", macs: ["02:00:00:00:00:09"] };
  return new DeviceIdentity(fp, await fingerprintHash(fp), k.secrets, {
    wgPublicKey: k.wgPublicKey,
    signingPublicKey: k.signingPublicKey,
    createdAt: 0,
  });
}

/** A connector state database in memory. */
export function memoryState(): ConnectorState {
  return ConnectorState.open(":memory:");
}

/** An enrolment key for an edge at `host`. */
export function keyFor(host = "edge.test", extra: Record<string, unknown> = {}): string {
  return makeKey({ u: `https://${host}:8443`, c: PIN, s: "s".repeat(24), ...extra });
}

/**
 * Waits (in real time, polling) until `cond` holds: for work that finishes on
 * its own schedule rather than a timer's, such as WebCrypto signing and
 * sealing during enrolment. Timer-driven work is moved with ManualTimers.
 */
export async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
