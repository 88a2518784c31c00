/**
 * Which kernel offloads the data plane asks for, and how to switch them off.
 *
 * All are asked for by default; each falls back on its own when the kernel
 * refuses it (see src/tun/linux.ts and src/net/udp.ts), so asking is safe.
 * `PORTCULLIS_OFFLOAD` switches them for a before/after benchmark or for
 * debugging: "on" (the default) or "off", a list of the ones to use
 * ("tso,gro"), or a list of the ones to leave out ("-udp-gro,-uso").
 *
 *   tso      TUN hands us TCP super-packets (TUNSETOFFLOAD TSO4/TSO6)
 *   uso      TUN hands us UDP super-packets (USO4/USO6, Linux 6.2+)
 *   gro      TUN writes merge consecutive segments of a connection
 *   udp-gso  runs of datagrams leave as one UDP_SEGMENT send
 *   udp-gro  the kernel hands us coalesced datagram runs (UDP_GRO)
 */
import { InputError } from "../errors.ts";
import type { TunOffloadRequest } from "../tun/mod.ts";

/** The offloads the data plane can use, by the names PORTCULLIS_OFFLOAD takes. */
export const OFFLOAD_NAMES = ["tso", "uso", "gro", "udp-gso", "udp-gro"] as const;

/** One offload's name. */
export type OffloadName = typeof OFFLOAD_NAMES[number];

/** What to ask the TUN device and the UDP socket for. */
export interface OffloadRequest {
  tun: TunOffloadRequest;
  udp: { gso: boolean; gro: boolean };
}

/** Every offload requested. */
export const ALL_OFFLOADS: OffloadRequest = Object.freeze({
  tun: Object.freeze({ tso: true, uso: true, gro: true }),
  udp: Object.freeze({ gso: true, gro: true }),
});

/** The request for a set of offload names. */
export function offloadRequest(names: ReadonlySet<OffloadName>): OffloadRequest {
  return {
    tun: { tso: names.has("tso"), uso: names.has("uso"), gro: names.has("gro") },
    udp: { gso: names.has("udp-gso"), gro: names.has("udp-gro") },
  };
}

/**
 * Parses a PORTCULLIS_OFFLOAD value (undefined or "" means "on"); throws an
 * InputError naming the bad value.
 */
export function parseOffloadSetting(text: string | undefined): OffloadRequest {
  const v = (text ?? "").trim().toLowerCase();
  if (v === "" || v === "on" || v === "all") return offloadRequest(new Set(OFFLOAD_NAMES));
  if (v === "off" || v === "none") return offloadRequest(new Set());
  const items = v.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const minus = items.filter((s) => s.startsWith("-"));
  if (minus.length > 0 && minus.length !== items.length) {
    throw new InputError(
      "bad_offload",
      `Cannot read PORTCULLIS_OFFLOAD "${text}": list either the offloads to use or, each with "-", the ones to leave out`,
    );
  }
  const names = new Set<OffloadName>(minus.length ? OFFLOAD_NAMES : []);
  for (const item of items) {
    const name = item.replace(/^-/, "");
    if (!(OFFLOAD_NAMES as readonly string[]).includes(name)) {
      throw new InputError(
        "bad_offload",
        `Cannot read PORTCULLIS_OFFLOAD "${text}": "${name}" is not one of on, off, ${
          OFFLOAD_NAMES.join(", ")
        }`,
      );
    }
    if (minus.length) names.delete(name as OffloadName);
    else names.add(name as OffloadName);
  }
  return offloadRequest(names);
}

/** The request from the environment (PORTCULLIS_OFFLOAD). */
export function offloadFromEnv(): OffloadRequest {
  return parseOffloadSetting(Deno.env.get("PORTCULLIS_OFFLOAD"));
}
