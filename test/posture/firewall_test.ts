/**
 * Firewall collector: "on" means a rule set outside Portcullis's own tables
 * drops new inbound connections on the default-route interface. Each case
 * is loaded into a fresh network namespace with the real nft and judged
 * from nft's own JSON and that namespace's route table, so the parser meets
 * exactly what nftables prints.
 */
import assert from "node:assert/strict";
import { collectFirewall, defaultRouteInterface } from "../../src/posture/mod.ts";
import { canUseNetns, NetnsLab } from "../e2e/netns.ts";

const CASES: [string, string, boolean][] = [
  ["no rule set at all", "", false],
  [
    "a NAT-only table",
    "table ip nat { chain post { type nat hook postrouting priority 100; masquerade; } }",
    false,
  ],
  [
    "an input chain that accepts everything",
    "table inet filter { chain input { type filter hook input priority 0; policy accept; } }",
    false,
  ],
  [
    "policy drop with the usual accepts (established, loopback, ssh)",
    `table inet filter { chain input { type filter hook input priority 0; policy drop;
       ct state established,related accept; iifname "lo" accept; tcp dport 22 accept; } }`,
    true,
  ],
  [
    "policy accept, ending in a drop for the uplink",
    `table inet filter { chain input { type filter hook input priority 0; policy accept;
       ct state established,related accept; iifname "up0" drop; } }`,
    true,
  ],
  [
    "policy drop, but everything on the uplink accepted first",
    `table inet filter { chain input { type filter hook input priority 0; policy drop;
       iifname "up0" accept; } }`,
    false,
  ],
  [
    "new connections rejected",
    `table ip filter { chain INPUT { type filter hook input priority 0; policy accept;
       ct state new reject; } }`,
    true,
  ],
  [
    "drops only on another interface",
    `table inet filter { chain input { type filter hook input priority 0; policy accept;
       iifname "lan0" drop; } }`,
    false,
  ],
  [
    "only our own (connector) table drops: does not count",
    `table inet portcullis_conn { chain input { type filter hook input priority 0; policy drop; } }`,
    false,
  ],
];

Deno.test({
  name: "firewall: real nft rule sets judged on the default-route interface",
  ignore: !canUseNetns,
  async fn() {
    await using lab = new NetnsLab("fw");
    const a = await lab.ns("a"), b = await lab.ns("b");
    await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24", "up0");
    await lab.exec(a, ["ip", "route", "add", "default", "via", "192.0.2.2"]);
    const routes = (await lab.exec(a, ["cat", "/proc/net/route"])).stdout;
    assert.equal(defaultRouteInterface(routes), "up0");
    for (const [name, script, want] of CASES) {
      await lab.exec(a, ["nft", "flush", "ruleset"]);
      // nft wants a newline (or ";") before each closing brace.
      if (script) await lab.exec(a, ["nft", "-f", "-"], { stdin: script.replaceAll("}", "\n}") });
      const json = (await lab.exec(a, ["nft", "-j", "list", "ruleset"])).stdout;
      const got = await collectFirewall({
        nftJson: () => Promise.resolve(json),
        routeTable: () => Promise.resolve(routes),
      });
      assert.equal(got, want, name);
    }
  },
});

Deno.test("firewall: the default route's interface, lowest metric first; none without one", () => {
  const head = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n";
  const table: [string, string | null][] = [
    [head, null],
    [`${head}eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n`, null],
    [
      `${head}wlan0\t00000000\t010200C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n` +
      `eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n`,
      "eth0",
    ],
    [`${head}eth0\t00000000\t010200C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n`, null], // not up
  ];
  for (const [text, want] of table) assert.equal(defaultRouteInterface(text), want);
});

Deno.test("firewall: no default route means nothing to protect (off); garbage JSON fails", async () => {
  assert.equal(
    await collectFirewall({
      routeTable: () => Promise.resolve(""),
      nftJson: () => Promise.resolve("{"),
    }),
    false,
  );
  const routes = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n" +
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n";
  await assert.rejects(
    collectFirewall({
      routeTable: () => Promise.resolve(routes),
      nftJson: () => Promise.resolve("{"),
    }),
  );
});
