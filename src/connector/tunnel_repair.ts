/**
 * The data plane's half of "Repair app" (src/connector/repair.ts): compare
 * what the connector installed with what the kernel and the file system
 * hold now, and put back what is missing. Each function takes the few
 * facts and actions it needs, so ConnectorTunnel keeps its state private
 * and these stay testable on their own.
 */
import type { NetConfig } from "../net/iface.ts";
import type { LinkState } from "../net/link_state.ts";
import { formatPrefix, tryParsePrefix } from "../policy/cidr.ts";
import type { SplitDns } from "./dns/mod.ts";
import { check, type RepairCheck } from "./repair.ts";

/** Canonical text of a route destination as `ip` prints it ("default", "192.0.2.1", "10.0.0.0/8"). */
export function canonicalRoute(dst: string, family: 4 | 6): string | null {
  if (dst === "default") return family === 4 ? "0.0.0.0/0" : "::/0";
  const text = dst.includes("/") ? dst : `${dst}/${family === 4 ? 32 : 128}`;
  const p = tryParsePrefix(text);
  return p ? formatPrefix(p) : null;
}

/** The TUN interface: present, up, with the tunnel address; fixes what it can in place. */
export async function repairLink(
  state: LinkState,
  dev: string,
  address: string,
  net: NetConfig,
): Promise<RepairCheck> {
  if (!state.exists) {
    return check("tun", "failed", `Interface "${dev}" is gone`);
  }
  const done: string[] = [];
  if (!state.up) {
    await net.setLink(dev, { up: true });
    done.push("set it up");
  }
  if (!state.addresses.includes(address)) {
    await net.addAddress(dev, address);
    done.push(`gave it address ${address} again`);
  }
  return done.length
    ? check("tun", "repaired", `Interface "${dev}" was not as configured: ${done.join(", ")}`)
    : check("tun", "ok", `Interface "${dev}" is up with address ${address}`);
}

/**
 * The tunnel routes: every prefix in `installed` must be in the kernel's
 * table through `dev`; the missing ones are added again.
 */
export async function repairRoutes(
  state: LinkState,
  dev: string,
  installed: ReadonlySet<string>,
  net: NetConfig,
  failMode: string | null,
): Promise<RepairCheck> {
  if (installed.size === 0) {
    return check(
      "routes",
      "ok",
      failMode ? `No tunnel routes while in fail mode "${failMode}"` : "The policy routes nothing",
    );
  }
  const have = new Set(state.routes.map((r) => canonicalRoute(r.dst, r.family)));
  const missing = [...installed].filter((d) =>
    !have.has(canonicalRoute(d, d.includes(":") ? 6 : 4))
  );
  if (!missing.length) {
    return check("routes", "ok", `All ${installed.size} tunnel routes are in place`);
  }
  const failed = await net.addRoutes(missing.map((dest) => ({ dest, opts: { dev } })));
  const shown = missing.slice(0, 5).join(", ") + (missing.length > 5 ? ", …" : "");
  if (failed.length) {
    return check(
      "routes",
      "failed",
      `${missing.length} of ${installed.size} tunnel routes were missing; cannot add ${
        failed.slice(0, 3).join("; ")
      }`,
    );
  }
  return check(
    "routes",
    "repaired",
    `Added ${missing.length} missing tunnel route(s) of ${installed.size} again: ${shown}`,
  );
}

/**
 * The connector's nftables table: loaded exactly as last applied when one
 * is needed (fail-closed block, gateway NAT), absent otherwise. A table that
 * differs in any rule (flushed, edited) is loaded again whole.
 */
export async function repairNft(o: {
  table: string;
  needed: boolean;
  expected: string | null;
  list: () => Promise<string | null>;
  reapply: () => Promise<void>;
  remove: () => Promise<void>;
}): Promise<RepairCheck> {
  const current = await o.list();
  if (!o.needed) {
    if (current === null) return check("nftables", "ok", `No table is needed and none is loaded`);
    await o.remove();
    return check("nftables", "repaired", `Removed a stale table "${o.table}"`);
  }
  if (current !== null && current === o.expected) {
    return check("nftables", "ok", `Table "${o.table}" is loaded as applied`);
  }
  await o.reapply();
  return check(
    "nftables",
    "repaired",
    current === null
      ? `Table "${o.table}" was missing; loaded it again`
      : `Table "${o.table}" had changed (rules removed or edited); loaded it again`,
  );
}

/**
 * resolv.conf while split DNS runs: our file, naming the stub, with the
 * original saved. Pointed back when anything else rewrote it (its settings
 * then become the original), and the backup rebuilt when it was lost.
 */
export async function repairResolvConf(
  dns: SplitDns,
  restart: () => Promise<boolean>,
): Promise<RepairCheck> {
  const stub = dns.resolvConfStub;
  if (stub === null) return check("resolv_conf", "skipped", "resolv.conf is left alone");
  const rc = dns.resolvConf;
  const points = await rc.pointsAt(stub);
  const saved = rc.hasBackup();
  if (points && saved) {
    return check("resolv_conf", "ok", `${rc.path} points at the split-DNS stub ${stub}`);
  }
  if (points) {
    await rc.rebuildBackup({ ...dns.original, nameservers: dns.upstream });
    return check(
      "resolv_conf",
      "repaired",
      `The saved original of ${rc.path} was gone; saved it again from the resolvers in use (${
        dns.upstream.join(", ") || "none"
      })`,
    );
  }
  if (!(await restart())) {
    return check("resolv_conf", "failed", `Cannot point ${rc.path} at the split-DNS stub again`);
  }
  return check(
    "resolv_conf",
    "repaired",
    `${rc.path} no longer pointed at the split-DNS stub; pointed it back (the settings found there are restored on stop)`,
  );
}
