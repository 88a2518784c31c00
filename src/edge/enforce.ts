/**
 * Edge-side forwarding decisions for decrypted device packets, as immutable
 * functions the pump calls per packet (policy apart from mechanism).
 *
 * Today: traffic from one device to another device's tunnel address is
 * allowed only while client-to-client is enabled in the policy; the edge's
 * own address and everything outside the device network pass to the TUN,
 * where the kernel routes and NATs it. Zero trust means device-to-device is
 * denied unless the policy says otherwise.
 */
import type { RouteFn } from "../dataplane/pump.ts";
import { parseIPv4, parsePrefix4 } from "./addresses.ts";

/** Builds the route function for `network` ("100.64.0.0/16") and the current policy. */
export function deviceRouteFn(network: string, edgeAddress: string, c2cEnabled: boolean): RouteFn {
  const p = parsePrefix4(network);
  const edge = parseIPv4(edgeAddress);
  if (!p || edge === null) throw new RangeError(`Cannot enforce on network "${network}"`);
  const mask = p.len === 0 ? 0 : (0xffffffff << (32 - p.len)) >>> 0;
  const net = p.base;
  if (c2cEnabled) return () => "tun";
  return (buf, off) => {
    if (buf[off] >> 4 !== 4) return "tun";
    const dst = ((buf[off + 16] << 24) | (buf[off + 17] << 16) | (buf[off + 18] << 8) |
      buf[off + 19]) >>> 0;
    return ((dst & mask) >>> 0) === net && dst !== edge ? "drop" : "tun";
  };
}
