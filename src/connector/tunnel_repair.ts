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
  if (!state.exists) return check("tun", "failed", "tun_gone", { dev });
  const down = !state.up, lost = !state.addresses.includes(address);
  if (down) await net.setLink(dev, { up: true });
  if (lost) await net.addAddress(dev, address);
  const reason = down && lost
    ? "tun_set_up_readdressed"
    : down
    ? "tun_set_up"
    : lost
    ? "tun_readdressed"
    : null;
  return reason
    ? check("tun", "repaired", reason, { dev, address })
    : check("tun", "ok", "tun_ok", { dev, address });
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
    return failMode
      ? check("routes", "ok", "routes_fail_mode", { mode: failMode })
      : check("routes", "ok", "routes_none");
  }
  const have = new Set(state.routes.map((r) => canonicalRoute(r.dst, r.family)));
  const missing = [...installed].filter((d) =>
    !have.has(canonicalRoute(d, d.includes(":") ? 6 : 4))
  );
  const count = installed.size;
  if (!missing.length) return check("routes", "ok", "routes_ok", { count });
  const failed = await net.addRoutes(missing.map((dest) => ({ dest, opts: { dev } })));
  if (failed.length) {
    return check("routes", "failed", "routes_failed", {
      missing: missing.length,
      count,
      error: failed.slice(0, 3).join("; "),
    });
  }
  const list = missing.slice(0, 5).join(", ") + (missing.length > 5 ? ", …" : "");
  return check("routes", "repaired", "routes_repaired", { missing: missing.length, count, list });
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
  const table = o.table;
  if (!o.needed) {
    if (current === null) return check("nftables", "ok", "nft_none");
    await o.remove();
    return check("nftables", "repaired", "nft_stale", { table });
  }
  if (current !== null && current === o.expected) {
    return check("nftables", "ok", "nft_ok", { table });
  }
  await o.reapply();
  return check("nftables", "repaired", current === null ? "nft_missing" : "nft_changed", { table });
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
  if (stub === null) return check("resolv_conf", "skipped", "dns_left_alone");
  const rc = dns.resolvConf;
  const path = rc.path;
  const points = await rc.pointsAt(stub);
  const saved = rc.hasBackup();
  if (points && saved) return check("resolv_conf", "ok", "dns_ok", { path, stub });
  if (points) {
    await rc.rebuildBackup({ ...dns.original, nameservers: dns.upstream });
    const servers = dns.upstream.join(", ") || "—";
    return check("resolv_conf", "repaired", "dns_backup_rebuilt", { path, servers });
  }
  if (!(await restart())) return check("resolv_conf", "failed", "dns_repoint_failed", { path });
  return check("resolv_conf", "repaired", "dns_repointed", { path });
}
