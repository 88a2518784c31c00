/**
 * Firewall: a rule set that actually drops unsolicited inbound traffic on the
 * interface of the default route. A loaded table is not a firewall (it may
 * only NAT, or accept everything), and the connector's own table never
 * counts: it is ours, not the device's protection.
 *
 * We read `nft -j list ruleset` and, for every base chain on the input hook
 * outside our tables, follow
 * its rules in order as a packet of a new connection on that interface
 * would: a rule that matches only on the input interface and the
 * connection state and accepts ends the chain as "accepts"; one that drops
 * or rejects ends it as "drops"; rules matching anything else (ports,
 * addresses) or jumping elsewhere are passed by, and the chain's policy
 * decides at the end. nftables drops a packet that any base chain drops, so
 * one dropping chain is enough. (netdev ingress chains are not read: nft
 * 1.0.6's JSON leaves out their device, so we cannot tell which interface
 * they guard.)
 */

/** Where the firewall collector looks; defaults are the real system. */
export interface FirewallSources {
  /** Runs `nft -j list ruleset` and returns its stdout, or throws. */
  nftJson?: () => Promise<string>;
  /** Text of /proc/net/route (default route interface). */
  routeTable?: () => Promise<string>;
}

/** Tables whose names start with this are Portcullis's own (connector and edge). */
export const OWN_TABLE_PREFIX = "portcullis";

/** The interface of the IPv4 default route in /proc/net/route text, or null. */
export function defaultRouteInterface(route: string): string | null {
  let best: { iface: string; metric: number } | null = null;
  for (const line of route.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dest, , flags, , , metric, mask] = f;
    // RTF_UP (1) set, destination and mask 0.
    if (dest !== "00000000" || mask !== "00000000" || !(parseInt(flags, 16) & 1)) continue;
    const m = Number(metric);
    if (!best || m < best.metric) best = { iface, metric: m };
  }
  return best?.iface ?? null;
}

type Json = Record<string, unknown>;

/** Values a match's right-hand side allows (a string, a list, or a set). */
function values(right: unknown): string[] | null {
  if (typeof right === "string") return [right];
  if (Array.isArray(right)) return right.filter((x): x is string => typeof x === "string");
  if (right && typeof right === "object" && "set" in right) return values((right as Json).set);
  return null;
}

type Verdict = "accept" | "drop" | null;

/** What one rule does to a new inbound connection on `iface`: accept, drop, or pass it by. */
function ruleVerdict(expr: Json[], iface: string): Verdict {
  let verdict: Verdict = null;
  for (const e of expr) {
    if ("match" in e) {
      const m = e.match as Json;
      const left = m.left as Json | undefined;
      const key = (left?.meta as Json | undefined)?.key ?? (left?.ct as Json | undefined)?.key;
      const vals = values(m.right);
      const op = m.op ?? "==";
      if ((key === "iifname" || key === "iif") && vals && (op === "==" || op === "in")) {
        if (!vals.includes(iface)) return null; // another interface's rule
        continue;
      }
      if ((key === "iifname" || key === "iif") && vals && op === "!=") {
        if (vals.includes(iface)) return null;
        continue;
      }
      if (key === "state" && vals) {
        // Only rules that apply to a new connection matter for "unsolicited inbound".
        if ((op === "==" || op === "in") ? !vals.includes("new") : vals.includes("new")) {
          return null;
        }
        continue;
      }
      return null; // matches on ports, addresses …: not a verdict on all inbound
    }
    if ("accept" in e) verdict = "accept";
    else if ("drop" in e || "reject" in e) verdict = "drop";
    else if ("jump" in e || "goto" in e || "queue" in e) return null;
  }
  return verdict;
}

/** Whether the rule set drops new inbound connections on `iface` (see the module comment). */
export function dropsInbound(rulesetJson: string, iface: string): boolean {
  const items = (JSON.parse(rulesetJson) as { nftables?: Json[] }).nftables ?? [];
  const chains: Json[] = [];
  const rules = new Map<string, Json[][]>();
  const id = (x: Json) => `${x.family}\u0000${x.table}\u0000${x.chain ?? x.name}`;
  for (const it of items) {
    if (it.chain) chains.push(it.chain as Json);
    if (it.rule) {
      const r = it.rule as Json;
      const list = rules.get(id(r)) ?? [];
      list.push((r.expr as Json[] | undefined) ?? []);
      rules.set(id(r), list);
    }
  }
  for (const c of chains) {
    if (String(c.table).startsWith(OWN_TABLE_PREFIX)) continue;
    if (c.type !== undefined && c.type !== "filter") continue;
    if (c.hook !== "input" || c.family === "netdev") continue;
    let outcome: Verdict = null;
    for (const expr of rules.get(id(c)) ?? []) {
      outcome = ruleVerdict(expr, iface);
      if (outcome) break;
    }
    outcome ??= c.policy === "drop" ? "drop" : "accept";
    if (outcome === "drop") return true;
  }
  return false;
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(
      `Cannot run ${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/** True when a rule set outside Portcullis's own tables drops new inbound connections on the default-route interface. */
export async function collectFirewall(src: FirewallSources = {}): Promise<boolean> {
  const route = await (src.routeTable ?? (() => Deno.readTextFile("/proc/net/route")))();
  const iface = defaultRouteInterface(route);
  if (!iface) return false; // no default route: nothing faces the network to protect
  const json = await (src.nftJson ?? (() => run("nft", ["-j", "list", "ruleset"])))();
  return dropsInbound(json, iface);
}
