/**
 * An edge named by DNS (issue 9): the edge's public host is a name served
 * by a DNS server in the edge's namespace (test/e2e/tools/dns_server.ts),
 * the connector resolves it through its resolv.conf. The addresses the
 * name resolves to stay outside the tunnel, so the tunnel never routes
 * into itself, while everything else goes through it. When the name moves
 * to another address and the network changes, the connector resolves again
 * and keeps the new address out too.
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, waitUntil } from "./netns.ts";
import { DENO, EDGE_IP, startRoles } from "./roles.ts";

const NAME = "edge.portcullis-lab.test";
const MOVED = "192.0.2.2";
const DNS_TOOL = new URL("./tools/dns_server.ts", import.meta.url).pathname;

Deno.test({
  name: "edge named by DNS: its resolved addresses stay out of the tunnel, also after it moves",
  ignore: !canUseNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using lab = new NetnsLab("ename");
    let zone = "";
    const r = await startRoles(lab, {
      enroll: true,
      edgePublicHost: NAME,
      resolvConf: `nameserver ${EDGE_IP}\n`,
      beforeConnector: async ({ edge, dir }) => {
        zone = `${dir}/zone.json`;
        await Deno.writeTextFile(zone, JSON.stringify({ [NAME]: [EDGE_IP] }));
        lab.spawn(edge, [
          "sh",
          "-c",
          'exec "$@" >>"$0" 2>&1',
          `${dir}/dns.log`,
          DENO,
          "run",
          "-A",
          DNS_TOOL,
          EDGE_IP,
          zone,
        ]);
        await waitUntil("the DNS server", async () => {
          return (await Deno.readTextFile(`${dir}/dns.log`).catch(() => "")).includes("dns ready");
        }, 20_000);
      },
    });
    const ns = (cmd: string[]) => r.inNs(r.connNs, cmd);
    /** The interface the connector's kernel would send `ip` out of. */
    const via = async (ip: string) => {
      const out = (await ns(["ip", "-j", "route", "get", ip])).stdout;
      return (JSON.parse(out || "[]")[0]?.dev ?? null) as string | null;
    };
    try {
      const status = await r.connectorStatus();
      assert.equal(status.state, "connected");
      // The enrolment names the edge; the connector looked it up.
      const dnsLog = await Deno.readTextFile(`${r.dir}/dns.log`);
      assert.match(dnsLog, new RegExp(`query ${NAME.replaceAll(".", "\\.")}`));
      assert.equal(await via(EDGE_IP), "eth0", "the edge's address stays outside the tunnel");
      assert.equal(await via("198.51.100.7"), r.connTun, "other traffic goes through the tunnel");
      assert.equal(await via(MOVED), r.connTun, "the address the name will move to is tunnelled");
      const log = await Deno.readTextFile(`${r.dir}/conn.log`);
      assert.match(log, /Edge host resolved; its addresses stay outside the tunnel/);

      // The name moves (the edge answers on both for the test); a network change follows.
      await r.inNs(r.edgeNs, ["ip", "addr", "add", `${MOVED}/24`, "dev", "eth0"]);
      await Deno.writeTextFile(zone, JSON.stringify({ [NAME]: [MOVED] }));
      await ns(["ip", "addr", "add", "192.0.2.11/24", "dev", "eth0"]);
      await waitUntil("the moved address to be kept out of the tunnel", async () => {
        return (await via(MOVED)) === "eth0";
      }, 20_000);
      // The address the tunnel still talks to stays out as well: no loop.
      assert.equal(await via(EDGE_IP), "eth0");
      assert.equal(await via("198.51.100.7"), r.connTun);
      await waitUntil("the tunnel to carry traffic", async () => {
        const g = await ns(["getent", "ahostsv4", "protected.portcullis.internal"]);
        return g.code === 0;
      }, 10_000);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await r.logs()}`);
    }
  },
});
