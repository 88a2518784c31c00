/**
 * Path-MTU probe through the tunnel: ICMP echoes with don't-fragment set
 * (iputils `ping -M do`) of chosen IP sizes to the edge's tunnel address.
 * A size that comes back crossed the whole path inside the tunnel; one that
 * does not was lost to a link whose MTU the outer packet exceeds (the ICMP
 * "fragmentation needed" that should have told us is often filtered).
 *
 * To stay quick, each round pings a spread of sizes at once and the next
 * round narrows between the largest that passed and the smallest that
 * failed: three or four rounds cover 576..1500 to the byte. A size counts as
 * failed only when a second echo is lost too (a lost packet is not an MTU),
 * so a round costs at most two seconds.
 */
import type { DoctorFacts } from "./types.ts";

/** Sends one DF echo of `size` IP bytes; true when answered. */
export type EchoFn = (size: number) => Promise<boolean>;

/** The smallest size probed (IPv4's minimum reassembly size). */
export const MTU_FLOOR = 576;

/** An echo through `iface` to `target` with iputils ping, waiting at most 1 s. */
export function pingEcho(target: string, iface: string): EchoFn {
  return async (size) => {
    const out = await new Deno.Command("ping", {
      args: [
        "-n",
        "-q",
        "-c",
        "1",
        "-W",
        "1",
        "-M",
        "do",
        "-s",
        String(size - 28),
        "-I",
        iface,
        target,
      ],
      stdout: "null",
      stderr: "null",
    }).output().catch(() => ({ code: 2 }));
    return out.code === 0;
  };
}

/** Finds the largest DF size in MTU_FLOOR..tunnelMtu that gets through. */
export async function probeMtu(
  echo: EchoFn,
  tunnelMtu: number,
  target: string,
  spread = 8,
): Promise<NonNullable<DoctorFacts["mtu"]>> {
  if (await echo(tunnelMtu) || await echo(tunnelMtu)) {
    return { tunnelMtu, largestOk: tunnelMtu, smallestFailed: null, target };
  }
  let lo = MTU_FLOOR - 1; // largest known good (MTU_FLOOR - 1: none yet)
  let hi = tunnelMtu; // smallest known bad
  while (hi - lo > 1) {
    const step = Math.max(1, Math.ceil((hi - lo - 1) / spread));
    const sizes: number[] = [];
    for (let s = lo + step; s < hi; s += step) sizes.push(s);
    if (!sizes.length) break;
    const ok = await Promise.all(sizes.map((s) => echo(s)));
    // A lost echo is not a small MTU: a size fails only when a second try fails too.
    const again = await Promise.all(sizes.map((s, i) => ok[i] ? true : echo(s)));
    for (let i = 0; i < sizes.length; i++) ok[i] = ok[i] || again[i];
    let newLo = lo;
    let newHi = hi;
    sizes.forEach((s, i) => {
      if (ok[i] && s > newLo) newLo = s;
    });
    for (let i = 0; i < sizes.length; i++) {
      if (!ok[i] && sizes[i] > newLo && sizes[i] < newHi) newHi = sizes[i];
    }
    if (newLo === lo && newHi === hi) break;
    lo = newLo;
    hi = newHi;
  }
  return {
    tunnelMtu,
    largestOk: lo >= MTU_FLOOR ? lo : null,
    smallestFailed: hi,
    target,
  };
}
