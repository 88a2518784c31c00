/**
 * The dashboard's view of the fleet, computed from the same device views the
 * admin API returns: counts by state, breakdowns by platform, OS version and
 * connector version, which devices run an outdated connector, and traffic.
 */
import type { deviceView } from "../../edge/devices.ts";
import { compareVersions, parseVersion } from "../../version.ts";

/** A device as GET /api/v1/admin/devices returns it. */
export type DeviceJson = ReturnType<typeof deviceView>;

/** One row of a breakdown. */
export interface Breakdown {
  label: string;
  value: number;
}

/** Fleet figures for the dashboard. */
export interface FleetSummary {
  enrolled: number;
  online: number;
  disabled: number;
  byPlatform: Breakdown[];
  byOs: Breakdown[];
  byVersion: Breakdown[];
  /** The version devices are compared against. */
  latestVersion: string | null;
  outdated: DeviceJson[];
  rxBytes: number;
  txBytes: number;
}

function countBy(devices: DeviceJson[], key: (d: DeviceJson) => string): Breakdown[] {
  const m = new Map<string, number>();
  for (const d of devices) m.set(key(d), (m.get(key(d)) ?? 0) + 1);
  return [...m].map(([label, value]) => ({ label, value }))
    .sort((a, b) => b.value - a.value || a.label.localeCompare(b.label));
}

/**
 * Summarises `devices`. A connector is outdated when it is older than
 * `current` (the release the edge ships) or, without one, than the newest
 * version any device reports (src/version.ts compares them). A reported
 * version that is not a version never counts as the newest and is outdated.
 */
export function summariseFleet(devices: DeviceJson[], current?: string | null): FleetSummary {
  let latest = current ?? null;
  for (const d of devices) {
    if (!parseVersion(d.connectorVersion)) continue; // garbage is never the reference
    if (latest === null || (compareVersions(d.connectorVersion, latest) ?? 1) > 0) {
      latest = d.connectorVersion;
    }
  }
  return {
    enrolled: devices.length,
    online: devices.filter((d) => d.tunnel.state === "up").length,
    disabled: devices.filter((d) => d.disabled).length,
    byPlatform: countBy(devices, (d) => d.os),
    byOs: countBy(devices, (d) => `${d.os} ${d.osVersion}`),
    byVersion: countBy(devices, (d) => d.connectorVersion),
    latestVersion: latest,
    outdated: latest === null
      ? []
      : devices.filter((d) => (compareVersions(d.connectorVersion, latest!) ?? -1) < 0),
    rxBytes: devices.reduce((a, d) => a + d.tunnel.rxBytes, 0),
    txBytes: devices.reduce((a, d) => a + d.tunnel.txBytes, 0),
  };
}
