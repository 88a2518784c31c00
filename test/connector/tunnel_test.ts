import assert from "node:assert/strict";
import { CONNECTOR_NFT_TABLE, connectorNftScript, syncRoutes } from "../../src/connector/tunnel.ts";
import { FakeNetConfig } from "../../src/net/iface.ts";

const canNft = Deno.build.os === "linux" && Deno.uid() === 0;

/** Asks nft to parse and validate a script against the kernel without committing it. */
async function nftCheck(script: string): Promise<{ code: number; stderr: string }> {
  const p = new Deno.Command("nft", { args: ["-c", "-f", "-"], stdin: "piped", stderr: "piped" })
    .spawn();
  const w = p.stdin.getWriter();
  await w.write(new TextEncoder().encode(script));
  await w.close();
  const out = await p.output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

type Case = {
  name: string;
  input: Parameters<typeof connectorNftScript>[0];
  has: RegExp[];
  hasNot?: RegExp[];
};

const CASES: Case[] = [
  {
    name: "block with no tunnel and no edge: loopback, DNS, DHCP only",
    input: { block: { allow: [] }, gateway: null },
    has: [
      /chain output \{\n\s+type filter hook output priority 0; policy drop;/,
      /oifname "lo" accept/,
      /udp dport \{ 53, 67, 68, 546, 547 \} accept/,
      /tcp dport 53 accept/,
      /chain forward \{\n\s+type filter hook forward priority 0; policy drop;/,
    ],
    hasNot: [/daddr/, /masquerade/],
  },
  {
    name: "block with an allow-list: v4 and v6 edges, canonical and unique",
    input: {
      block: { allow: ["192.0.2.1", "192.0.2.1", "[2001:DB8::1]", "198.51.100.9"] },
      gateway: null,
    },
    has: [
      /ip daddr \{ 192\.0\.2\.1, 198\.51\.100\.9 \} accept/,
      /ip6 daddr \{ 2001:db8::1 \} accept/,
    ],
  },
  {
    name: "names and junk never reach the script",
    input: {
      block: { allow: ["edge.example", "1.2.3.4; flush ruleset", "", "300.1.1.1"] },
      gateway: null,
    },
    has: [/policy drop/],
    hasNot: [/daddr/, /flush/, /edge\.example/],
  },
  {
    name: "gateway NAT alone",
    input: { block: null, gateway: { tun: "pcc0", address: "100.64.0.7" } },
    has: [/oifname "pcc0" ip saddr != 100\.64\.0\.7 masquerade/],
    hasNot: [/policy drop/],
  },
  {
    name: "gateway NAT and a block together",
    input: { block: { allow: ["192.0.2.1"] }, gateway: { tun: "pcc0", address: "100.64.0.7" } },
    has: [/masquerade/, /ip daddr \{ 192\.0\.2\.1 \} accept/],
  },
];

Deno.test("connectorNftScript: table tests", async (t) => {
  for (const c of CASES) {
    await t.step(c.name, async () => {
      const script = connectorNftScript(c.input);
      assert.ok(
        script.startsWith(
          `table inet ${CONNECTOR_NFT_TABLE}\ndelete table inet ${CONNECTOR_NFT_TABLE}\n`,
        ),
        "replaces the table atomically",
      );
      for (const re of c.has) assert.match(script, re);
      for (const re of c.hasNot ?? []) assert.doesNotMatch(script, re);
      if (canNft) {
        const r = await nftCheck(script);
        assert.equal(r.code, 0, `nft refused the script: ${r.stderr}\n${script}`);
      }
    });
  }
  await t.step("nothing to do → the table is removed, present or not", async () => {
    const script = connectorNftScript({ block: null, gateway: null });
    assert.equal(
      script,
      `table inet ${CONNECTOR_NFT_TABLE}\ndelete table inet ${CONNECTOR_NFT_TABLE}\n`,
    );
    if (canNft) assert.equal((await nftCheck(script)).code, 0);
  });
  await t.step("a bad gateway interface is refused, naming it", () => {
    assert.throws(
      () => connectorNftScript({ block: null, gateway: { tun: 'x" accept', address: "1.2.3.4" } }),
      /Cannot masquerade into "x" accept"/,
    );
  });
});

Deno.test("syncRoutes: a policy change adds the new prefix before removing the stale one", async () => {
  const net = new FakeNetConfig();
  const installed = new Set<string>();
  await syncRoutes(net, installed, ["10.1.0.0/16", "10.2.0.0/16", "fd00::/64"], "pcc0");
  assert.deepEqual(net.calls, [
    ["route", "add", "10.1.0.0/16", "dev", "pcc0"],
    ["route", "add", "10.2.0.0/16", "dev", "pcc0"],
    ["route", "add", "fd00::/64", "dev", "pcc0"],
  ]);
  net.calls.length = 0;
  // 10.2/16 becomes 10.3/16: add first, then delete; the others are untouched.
  await syncRoutes(net, installed, ["10.1.0.0/16", "10.3.0.0/16", "fd00::/64"], "pcc0");
  assert.deepEqual(net.calls, [
    ["route", "add", "10.3.0.0/16", "dev", "pcc0"],
    ["route", "del", "10.2.0.0/16", "dev", "pcc0"],
  ]);
  assert.deepEqual([...installed].sort(), ["10.1.0.0/16", "10.3.0.0/16", "fd00::/64"]);
  net.calls.length = 0;
  // Same set again: nothing at all.
  await syncRoutes(net, installed, ["fd00::/64", "10.3.0.0/16", "10.1.0.0/16"], "pcc0");
  assert.deepEqual(net.calls, []);
  // A route that fails to add is not recorded, so the next apply retries it.
  net.failWith = (a) => (a[2] === "10.4.0.0/16" ? "RTNETLINK answers: File exists" : null);
  await syncRoutes(
    net,
    installed,
    ["10.1.0.0/16", "10.3.0.0/16", "fd00::/64", "10.4.0.0/16"],
    "pcc0",
  );
  assert.equal(installed.has("10.4.0.0/16"), false);
  net.failWith = () => null;
  net.calls.length = 0;
  // Fail mode ("direct"/"blocked") wants no tunnel routes: every one goes.
  await syncRoutes(net, installed, [], "pcc0");
  assert.deepEqual((net.calls as string[][]).map((c) => c.slice(0, 3)).sort(), [
    ["route", "del", "10.1.0.0/16"],
    ["route", "del", "10.3.0.0/16"],
    ["route", "del", "fd00::/64"],
  ]);
  assert.equal(installed.size, 0);
});
