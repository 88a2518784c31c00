/**
 * Uninstall from the running connector: a real edge and connector in
 * namespaces (test/e2e/roles.ts). The admin sets the uninstall password on
 * the edge; once the connector has the policy, its local API refuses the
 * uninstall action without the password and with a wrong one (the
 * connector keeps running, tunnel up), and with the right one the connector
 * stops, and its TUN interface, nftables table and data directory are gone.
 */
import assert from "node:assert/strict";
import { CONNECTOR_NFT_TABLE } from "../../src/connector/tunnel.ts";
import { canUseNetns, NetnsLab, waitUntil } from "./netns.ts";
import { adminLogin, EDGE_IP, startRoles } from "./roles.ts";

Deno.test({
  name: "uninstall from the local API: the policy's password is checked, then every trace goes",
  ignore: !canUseNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using lab = new NetnsLab("unis");
    const r = await startRoles(lab, { enroll: true });
    try {
      const before = (await r.connectorStatus()).policyVersion;
      const { jar, csrf } = await adminLogin(r);
      const set = await r.inNs(r.edgeNs, [
        "curl",
        "-s",
        "--cacert",
        r.ca,
        "-b",
        jar,
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/json",
        "-H",
        `X-CSRF-Token: ${csrf}`,
        "--data-binary",
        '{"uninstall":"remove-me-3"}',
        `https://${EDGE_IP}:8443/api/v1/admin/policy/app-profiles/default/passwords`,
      ]);
      assert.equal(JSON.parse(set.stdout).guarded?.uninstall, true, set.stdout);
      const act = async (body: string) => {
        const res = await r.inNs(r.connNs, [
          "curl",
          "-s",
          "--max-time",
          "30",
          "-H",
          "X-Portcullis-Request: 1",
          "-H",
          "Content-Type: application/json",
          "--data-binary",
          body,
          "http://127.0.0.1:9080/api/v1/actions/uninstall",
        ]);
        return JSON.parse(res.stdout || "{}");
      };
      // The policy reaches the connector by its stream (asking before would uninstall at once).
      await waitUntil("the new policy to reach the connector", async () => {
        return (await r.connectorStatus()).policyVersion !== before;
      }, 20_000);
      assert.equal((await act("{}")).error?.code, "password_required");
      assert.equal((await act('{"password":"not-it"}')).error?.code, "wrong_password");
      assert.equal((await r.connectorStatus()).state, "connected", "still running");
      const tunThere = async () =>
        (await r.inNs(r.connNs, ["ip", "link", "show", r.connTun])).code === 0;
      assert.ok(await tunThere());
      assert.deepEqual(await act('{"password":"remove-me-3"}'), {
        ok: true,
        state: "uninstalling",
      });
      const status = await r.connector.status;
      assert.equal(status.code, 0, await r.logs());
      assert.ok(!(await tunThere()), "the TUN interface is gone");
      const nft = await r.inNs(r.connNs, ["nft", "list", "table", "inet", CONNECTOR_NFT_TABLE]);
      assert.notEqual(nft.code, 0, "no nftables table");
      let gone = false;
      try {
        await Deno.stat(`${r.dir}/conn`);
      } catch (e) {
        gone = e instanceof Deno.errors.NotFound;
      }
      assert.ok(gone, "the data directory is gone");
      assert.match(
        await Deno.readTextFile(`${r.dir}/conn.log`),
        /Portcullis connector uninstalled/,
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await r.logs()}`);
    }
  },
});
