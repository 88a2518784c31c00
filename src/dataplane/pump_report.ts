/**
 * What `wg show`'s Portcullis stats (UAPI get=portcullis-stats) and the log
 * say about a pump: its counters, the devices' offload counters, and each
 * kernel offload as "on" or "off: <why>". Kept apart from the pump loop: it
 * only reads the devices.
 */
import type { TunDevice } from "../tun/mod.ts";
import type { UdpSocket } from "../net/udp.ts";
import { logger } from "../log.ts";

const log = logger("dataplane");

/** One offload's state. */
export interface OffloadState {
  on: boolean;
  why: string;
}

/** Offload states by name: tun_tso, tun_uso, tun_gro_tcp, tun_gro_udp, udp_gso, udp_gro. */
export type OffloadStates = Record<string, OffloadState>;

/** Counters of the TUN device and the UDP socket that the report carries (prefixed tun_/udp_). */
const TUN_COUNTERS = [
  "superPackets",
  "segments",
  "checksumsCompleted",
  "badFrames",
  "coalescedFrames",
  "coalescedPackets",
];
const UDP_COUNTERS = ["gsoSends", "gsoDatagrams", "gsoRefused", "groRuns", "groDatagrams"];

/** The offload states of a TUN device and a UDP socket (null: none attached). */
export function offloadStates(tun: TunDevice, udp: UdpSocket | null): OffloadStates {
  const t = tun.offloads;
  const u = udp?.offloads;
  const none = { on: false, why: "no UDP socket" };
  return {
    tun_tso: t.tso,
    tun_uso: t.uso,
    tun_gro_tcp: t.groTcp,
    tun_gro_udp: t.groUdp,
    udp_gso: u?.gso ?? none,
    udp_gro: u?.gro ?? none,
  };
}

/** One offload's state as the report prints it. */
export function stateText(o: OffloadState): string {
  return o.on ? "on" : `off: ${o.why}`;
}

/** The whole report: `counters`, the devices' offload counters, and `offload_<name>` lines. */
export function pumpReport(
  counters: object,
  tun: TunDevice,
  udp: UdpSocket | null,
): Record<string, number | string> {
  const out: Record<string, number | string> = { ...counters } as Record<string, number>;
  const ts = (tun as { stats?: Record<string, unknown> }).stats;
  for (const k of TUN_COUNTERS) if (typeof ts?.[k] === "number") out[`tun_${k}`] = ts[k] as number;
  const us = udp?.stats as Record<string, unknown> | undefined;
  for (const k of UDP_COUNTERS) if (typeof us?.[k] === "number") out[`udp_${k}`] = us[k] as number;
  for (const [k, v] of Object.entries(offloadStates(tun, udp))) out[`offload_${k}`] = stateText(v);
  return out;
}

/** Logs the offload states once, and again whenever one changes (a runtime fallback). */
export class OffloadLog {
  #text = "";

  /** Logs `states` for interface `name` unless they are what was logged last. */
  note(name: string, states: OffloadStates): void {
    const text = Object.entries(states).map(([k, v]) => `${k}=${stateText(v)}`).join(" ");
    if (text === this.#text) return;
    const first = this.#text === "";
    this.#text = text;
    const on = Object.entries(states).filter(([, v]) => v.on).map(([k]) => k);
    const off = Object.fromEntries(
      Object.entries(states).filter(([, v]) => !v.on).map(([k, v]) => [k, v.why]),
    );
    const what = first ? "Data plane offloads" : "Data plane offloads changed";
    log.info(`${what} on "${name}"`, { on: on.join(",") || "none", off });
  }
}
