/**
 * The transparent redirect's nftables rules: tunnelled 80/443 to internet
 * addresses only. The edge's own address is in the skip set unless a special
 * block already holds it (no overlapping elements), and each variant is
 * accepted by the real nft in a network namespace of its own (unshare: it
 * goes away with the process, nothing to clean up).
 */
import assert from "node:assert/strict";
import { redirectRules } from "../../src/edge/web_proxy.ts";
import { specialPrefixes } from "../../src/policy/cidr.ts";
import { canUseNetns, sh } from "../e2e/netns.ts";

const haveNft = canUseNetns &&
  await sh(["nft", "--version"], { check: false }).then((r) => r.code === 0, () => false);

const TABLE: { name: string; edge: string; listed: boolean }[] = [
  { name: "tunnel address inside 100.64.0.0/10", edge: "100.64.0.1", listed: false },
  { name: "a private tunnel network", edge: "10.99.0.1", listed: false },
  { name: "a public edge address", edge: "192.0.2.1", listed: true },
];

for (const row of TABLE) {
  Deno.test(`web proxy redirect rules: ${row.name}`, async () => {
    const script = redirectRules({ tunName: "pcwtest0", edgeAddress: row.edge, port: 3128 });
    const rule = script.split("\n").find((l) => l.includes("redirect to"))!;
    const set = /ip daddr != \{ ([^}]*) \}/.exec(rule)![1].split(", ");
    assert.equal(set.includes(row.edge), row.listed, rule);
    for (const p of specialPrefixes(4)) assert.ok(set.includes(p), `${p} skipped: ${rule}`);
    assert.match(rule, /iifname "pcwtest0" .* tcp dport \{ 80, 443 \} redirect to :3128$/);
    if (!haveNft) return;
    const out = await sh(
      ["unshare", "-n", "sh", "-c", "nft -f - && nft list table ip portcullis_proxy"],
      { check: false, stdin: script },
    );
    assert.equal(out.code, 0, `nft refused the rules: ${out.stderr}\n${script}`);
    const listed = out.stdout;
    assert.match(listed, /10\.0\.0\.0\/8/);
    assert.equal(listed.includes(row.edge), row.listed, listed);
  });
}
