/**
 * What the kernel says about one interface right now, read through
 * `ip -json`: whether it exists and is up, its addresses, and the routes
 * through it in the main table. "Repair app" compares this with what the
 * connector installed, because anything else on the host (an administrator,
 * NetworkManager, a script) may have changed it behind our back.
 */
import { tiedCommand } from "./tied_command.ts";

/** An interface as the kernel has it. */
export interface LinkState {
  exists: boolean;
  /** Administratively up (the UP flag). */
  up: boolean;
  /** Addresses as "address/prefixlen". */
  addresses: string[];
  /** Destinations of main-table routes out of it, as `ip` prints them ("default", "10.0.0.0/8", "192.0.2.1"). */
  routes: { family: 4 | 6; dst: string }[];
}

async function ipJson(args: string[], netns?: string): Promise<unknown[] | null> {
  const out = await tiedCommand("ip", {
    args: [...(netns ? ["-n", netns] : []), "-j", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  if (out.code !== 0) return null;
  try {
    const v = JSON.parse(new TextDecoder().decode(out.stdout) || "[]");
    return Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

/** Reads interface `dev`'s state; `exists` is false when the kernel has no such interface. */
export async function readLinkState(
  dev: string,
  opts: { netns?: string } = {},
): Promise<LinkState> {
  const links = await ipJson(["addr", "show", "dev", dev], opts.netns);
  const link = links?.[0] as
    | { flags?: string[]; addr_info?: { local?: string; prefixlen?: number }[] }
    | undefined;
  if (!link) return { exists: false, up: false, addresses: [], routes: [] };
  const addresses = (link.addr_info ?? [])
    .filter((a) => typeof a.local === "string" && typeof a.prefixlen === "number")
    .map((a) => `${a.local}/${a.prefixlen}`);
  const routes: LinkState["routes"] = [];
  for (const family of [4, 6] as const) {
    const list = await ipJson([`-${family}`, "route", "show", "dev", dev], opts.netns) ?? [];
    for (const r of list as { dst?: string }[]) {
      if (typeof r.dst === "string") routes.push({ family, dst: r.dst });
    }
  }
  return { exists: true, up: (link.flags ?? []).includes("UP"), addresses, routes };
}
