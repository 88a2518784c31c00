/**
 * Crash-safe DNS and children tied to the connector (issue 9): a real edge
 * and connector in namespaces (test/e2e/roles.ts), the connector managing
 * its namespace's resolv.conf (a test-owned file `ip netns exec` mounts over
 * /etc/resolv.conf, so the host's DNS is never touched).
 *
 * `kill -9` the connector: no child it spawned (the `ip monitor`, any
 * helper) survives it, and resolv.conf is left pointing at the dead stub
 * (nothing can run in a killed process). The next start restores the
 * original before anything else, then points resolv.conf at its new stub,
 * through which names resolve; a clean stop leaves the original bytes.
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, waitUntil } from "./netns.ts";
import { EDGE_IP, startRoles } from "./roles.ts";
import { alive, descendants } from "./procs.ts";
import { RESOLV_CONF_MARKER } from "../../src/connector/dns/resolv_conf.ts";

const ORIGINAL = `# the network's own resolver\nnameserver ${EDGE_IP}\nsearch corp.example\n`;

Deno.test({
  name: "connector kill -9: no child survives, the next start restores resolv.conf",
  ignore: !canUseNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using lab = new NetnsLab("crsh");
    const r = await startRoles(lab, { enroll: true, resolvConf: ORIGINAL });
    const backup = `${r.dir}/conn/resolv.conf.backup`;
    const read = () => Deno.readTextFile(r.resolvConfPath);
    try {
      await waitUntil("the connector to point resolv.conf at its stub", async () => {
        return (await read()).startsWith(RESOLV_CONF_MARKER);
      }, 15_000);
      assert.match(await read(), /^nameserver 127\.0\.0\.53$/m);
      const pid = r.connector.pid;
      const kids = descendants(pid);
      assert.ok(
        kids.some((k) => /\bip\b.*\bmonitor\b/.test(k.cmd)),
        `the connector runs ip monitor: ${JSON.stringify(kids)}`,
      );

      r.connector.kill("SIGKILL");
      await r.connector.status;
      await waitUntil("every child of the killed connector to die", () => {
        return Promise.resolve(kids.every((k) => !alive(k.pid)));
      }, 5000);
      // What a crash leaves: the stub is gone, resolv.conf still names it.
      assert.ok((await read()).startsWith(RESOLV_CONF_MARKER));
      await Deno.stat(backup);

      // As a service manager would (the unit's RestartSec=1 less the second): start again now.
      const killedAt = Date.now();
      await r.restartConnector();
      const log = await Deno.readTextFile(`${r.dir}/conn.log`);
      const restored = log.split("\n").find((l) =>
        l.includes("Restored resolv.conf left behind by an earlier run")
      );
      assert.ok(restored, "the next start restores resolv.conf");
      const ms = Date.parse(JSON.parse(restored).ts) - killedAt;
      console.log(`resolv.conf restored ${ms} ms after the kill (plus RestartSec under systemd)`);
      await waitUntil("the new run to point resolv.conf at its new stub", async () => {
        return (await read()).startsWith(RESOLV_CONF_MARKER);
      }, 15_000);
      // The new backup holds the real original, not the dead stub's file.
      const saved = JSON.parse(await Deno.readTextFile(backup));
      assert.equal(saved.kind, "file");
      assert.equal(atob(saved.content), ORIGINAL);
      // Names resolve again through the system resolver (edge names via the tunnel).
      await waitUntil("an edge name to resolve through the new stub", async () => {
        const g = await r.inNs(r.connNs, ["getent", "ahostsv4", "protected.portcullis.internal"]);
        return g.code === 0;
      }, 10_000);
      console.log(`edge names resolve again ${Date.now() - killedAt} ms after the kill`);

      r.connector.kill("SIGTERM");
      await r.connector.status;
      assert.equal(await read(), ORIGINAL);
      await assert.rejects(Deno.stat(backup));
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await r.logs()}`);
    }
  },
});
