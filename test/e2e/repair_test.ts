/**
 * "Repair app" end to end (issue 9): a real edge and connector in
 * namespaces (test/e2e/roles.ts), the connector a gateway box (so it owns an
 * nftables table) that manages its namespace's resolv.conf. Behind its back
 * the test deletes a tunnel route, flushes the table and rewrites
 * resolv.conf; one repair through the local API puts each back and says so,
 * and a second finds nothing left to do. Then the TUN interface itself is
 * deleted: the repair sets the tunnel up again.
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, waitUntil } from "./netns.ts";
import { connectorAction, connectorTable, EDGE_IP, startRoles, tunnelRoutes } from "./roles.ts";
import { CONNECTOR_NFT_TABLE } from "../../src/connector/tunnel.ts";
import { RESOLV_CONF_MARKER } from "../../src/connector/dns/resolv_conf.ts";
import type { RepairReport } from "../../src/connector/repair.ts";

const ORIGINAL = `nameserver ${EDGE_IP}\n`;

Deno.test({
  name:
    "repair app: a deleted route, a flushed nftables table and a rewritten resolv.conf come back",
  ignore: !canUseNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using lab = new NetnsLab("rep");
    const r = await startRoles(lab, {
      enroll: true,
      resolvConf: ORIGINAL,
      connectorArgs: ["--gateway"],
    });
    const ns = (cmd: string[]) => r.inNs(r.connNs, cmd);
    const routes = () => tunnelRoutes(r);
    const table = () => connectorTable(r);
    const repair = async (): Promise<RepairReport> => {
      const body = await connectorAction(r, "repair");
      assert.equal(body.ok, true, JSON.stringify(body));
      return body.report as RepairReport;
    };
    const byId = (rep: RepairReport) => Object.fromEntries(rep.checks.map((c) => [c.id, c]));
    try {
      await waitUntil("split DNS to take over resolv.conf", async () => {
        return (await Deno.readTextFile(r.resolvConfPath)).startsWith(RESOLV_CONF_MARKER);
      }, 15_000);
      const before = await routes();
      const policyRoutes = before.filter((x) => x.protocol !== "kernel");
      assert.ok(policyRoutes.length > 0, `tunnel routes: ${JSON.stringify(before)}`);
      const tableBefore = await table();
      assert.match(tableBefore, /masquerade/);

      // A healthy connector: nothing to repair.
      const clean = byId(await repair());
      for (const id of ["tun", "routes", "nftables", "resolv_conf", "ca_trust", "state_db"]) {
        assert.equal(clean[id]?.status, "ok", `${id}: ${JSON.stringify(clean[id])}`);
      }

      // Break three things behind the connector's back.
      const victim = policyRoutes[0].dst;
      await ns(["ip", "route", "del", victim, "dev", r.connTun]);
      await ns(["nft", "flush", "table", "inet", CONNECTOR_NFT_TABLE]);
      assert.doesNotMatch(await table(), /masquerade/);
      assert.ok(!(await routes()).some((x) => x.dst === victim));
      await Deno.writeTextFile(r.resolvConfPath, "nameserver 192.0.2.77\n");

      const rep = await repair();
      const got = byId(rep);
      assert.equal(got.routes.status, "repaired", JSON.stringify(got.routes));
      assert.match(got.routes.detail, new RegExp(victim.replace(/[./]/g, "\\$&")));
      assert.equal(got.nftables.status, "repaired", JSON.stringify(got.nftables));
      assert.equal(got.resolv_conf.status, "repaired", JSON.stringify(got.resolv_conf));
      assert.equal(got.tun.status, "ok");
      assert.equal(rep.failed, 0, JSON.stringify(rep));

      // Restored in the kernel and on disk, as installed.
      assert.ok((await routes()).some((x) => x.dst === victim), "the route is back");
      assert.equal(await table(), tableBefore);
      const rc = await Deno.readTextFile(r.resolvConfPath);
      assert.ok(rc.startsWith(RESOLV_CONF_MARKER), rc);
      // The tunnel still carries traffic.
      await waitUntil("the edge to answer through the tunnel", async () => {
        const g = await ns(["getent", "ahostsv4", "protected.portcullis.internal"]);
        return g.code === 0;
      }, 10_000);

      const again = await repair();
      assert.equal(again.repaired, 0, JSON.stringify(again));

      // The interface itself deleted: the tunnel is set up again, routes and all.
      await ns(["ip", "link", "del", r.connTun]);
      const rebuilt = byId(await repair());
      assert.equal(rebuilt.tun.status, "repaired", JSON.stringify(rebuilt.tun));
      assert.equal(rebuilt.routes.status, "ok", JSON.stringify(rebuilt.routes));
      assert.ok((await routes()).some((x) => x.dst === victim), "routes through the new interface");
      await waitUntil("the rebuilt tunnel to carry traffic", async () => {
        const g = await ns(["getent", "ahostsv4", "protected.portcullis.internal"]);
        return g.code === 0;
      }, 15_000);

      // The settings found at repair time (192.0.2.77) are what a stop restores.
      r.connector.kill("SIGTERM");
      await r.connector.status;
      assert.equal(await Deno.readTextFile(r.resolvConfPath), "nameserver 192.0.2.77\n");
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await r.logs()}`);
    }
  },
});
