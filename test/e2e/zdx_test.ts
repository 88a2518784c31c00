/**
 * Digital experience end to end: a real edge and connector (test/e2e/roles.ts)
 * and a web server on the "internet" side of the edge:
 *
 *   conn 192.0.2.10 ── edge 192.0.2.1 │ 198.18.0.1 ── rtr 198.18.0.254 │ 198.19.9.1 ── inet 198.19.9.80 (web)
 *
 * The connector's probe runs through the tunnel. Once its baseline is
 * learned, 150 ms are added on the edge → internet leg (this kernel has no
 * tc netem: a TUN delay line in the internet router's namespace, test/e2e/tools/
 * delay_line.ts, with a policy rule sending what it hands back on to the
 * server): the score drops from Good to Poor, the hop named is edge →
 * internet on the connector and in the edge's alert, and the score is Good
 * again once the delay is gone.
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, waitUntil } from "./netns.ts";
import { adminLogin, CONN_IP, DENO, EDGE_IP, type Roles, startRoles } from "./roles.ts";

const DELAY_LINE = new URL("./tools/delay_line.ts", import.meta.url).pathname;
const WEB_IP = "198.19.9.80";

Deno.test({
  name: "zdx: 150 ms on the edge → internet leg turns the probe Poor, names that hop, and recovers",
  ignore: !canUseNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using lab = new NetnsLab("zdx");
    const r: Roles = await startRoles(lab, { enroll: true });
    const { edgeNs, connNs, dir } = r;
    try {
      const rtr = await lab.ns("rtr");
      const inet = await lab.ns("inet");
      await lab.link(edgeNs, "198.18.0.1/24", rtr, "198.18.0.254/24", "eth1");
      await lab.link(rtr, "198.19.9.1/24", inet, `${WEB_IP}/24`, "eth2");
      await lab.exec(rtr, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
      await lab.exec(edgeNs, ["ip", "route", "add", "198.19.9.0/24", "via", "198.18.0.254"]);
      await lab.exec(inet, ["ip", "route", "add", "default", "via", "198.19.9.1"]);
      // The server notes whose address it sees: the edge's (tunnelled traffic is
      // masqueraded there) or the connector's own (the direct run, plainly routed).
      const seenLog = `${dir}/web-seen.log`;
      lab.spawn(inet, [
        DENO,
        "eval",
        `Deno.serve({ hostname: "${WEB_IP}", port: 80 }, (_q, i) => {
          Deno.writeTextFileSync(${
          JSON.stringify(seenLog)
        }, i.remoteAddr.hostname + "\\n", { append: true });
          return new Response("portal home");
        })`,
      ]);
      // A plain route from the connector's network to the internet, beside the tunnel,
      // for the direct run (curl bound to eth0): conn → edge (forwarding) → router.
      await lab.exec(rtr, ["ip", "route", "add", "192.0.2.0/24", "via", "198.18.0.1"]);
      await lab.exec(edgeNs, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
      await lab.exec(connNs, ["ip", "route", "add", "default", "via", EDGE_IP]);
      // The router's slow link: traffic for the server goes into the delay line, and what
      // it hands back (arriving from it) is routed on to eth2 by table 100.
      const dly = `${lab.prefix}d`.slice(0, 15);
      const ready = `${dir}/delay`;
      lab.spawn(rtr, [DENO, "run", "-A", DELAY_LINE, dly, "0", ready]);
      await waitUntil("the delay line", () => Deno.stat(ready).then(() => true), 20_000);
      for (
        const cmd of [
          ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"],
          ["sysctl", "-qw", `net.ipv4.conf.${dly}.rp_filter=0`],
          ["ip", "route", "add", "198.19.9.0/24", "dev", "eth2", "table", "100"],
          ["ip", "rule", "add", "iif", dly, "lookup", "100", "pref", "100"],
          ["ip", "route", "add", `${WEB_IP}/32`, "dev", dly],
        ]
      ) await lab.exec(rtr, cmd);
      const setDelay = (ms: number) => Deno.writeTextFile(`${ready}.delay`, `${ms}\n`);

      const { jar, csrf } = await adminLogin(r);
      const admin = async (path: string, method = "GET", body?: unknown) => {
        const data = body === undefined
          ? []
          : ["-H", "Content-Type: application/json", "-d", JSON.stringify(body)];
        const out = await r.inNs(edgeNs, [
          "curl",
          "-s",
          "--cacert",
          r.ca,
          "-b",
          jar,
          "-X",
          method,
          "-H",
          `X-CSRF-Token: ${csrf}`,
          ...data,
          `https://${EDGE_IP}:8443${path}`,
        ]);
        return JSON.parse(out.stdout);
      };
      await admin("/api/v1/admin/policy/app-profiles", "PUT", {
        items: [{
          name: "zdx",
          forwarding: { name: "zdx-fp" },
          policyRefreshSec: 10,
          zdxProbes: [{
            name: "portal",
            url: `http://${WEB_IP}/`,
            intervalSec: 5,
            timeoutMs: 3000,
          }],
        }],
      });
      await r.inNs(connNs, [
        "curl",
        "-s",
        "-X",
        "POST",
        "-H",
        "X-Portcullis-Request: 1",
        "http://127.0.0.1:9080/api/v1/actions/update-policy",
      ]);
      const zdx = async () => {
        const out = await r.inNs(connNs, ["curl", "-s", "http://127.0.0.1:9080/api/v1/zdx"]);
        return JSON.parse(out.stdout).probes?.[0] ?? null;
      };

      // A baseline: five good results and more.
      let p: any = null;
      await waitUntil(
        "a learned baseline",
        async () => {
          p = await zdx();
          return p?.series.length >= 6 && p.latest.band === "good" && p.latest.ok;
        },
        60_000,
        1000,
      );
      assert.equal(p.latest.address, `${WEB_IP}:80`);
      assert.equal(typeof p.latest.edgeRttMs, "number", "measured through the tunnel");
      // The direct run for comparison: over eth0, outside the tunnel, seen at the server.
      await waitUntil(
        "a direct run",
        async () => (p = await zdx())?.latest?.direct?.ok,
        30_000,
        500,
      );
      const d = p.latest.direct;
      assert.equal(d.via, "eth0", JSON.stringify(d));
      assert.equal(d.status, 200);
      assert.equal(d.address, `${WEB_IP}:80`);
      assert.equal(typeof d.phases.total, "number");
      const seen = new Set((await Deno.readTextFile(seenLog)).split("\n").filter(Boolean));
      assert.ok(seen.has("198.18.0.1"), `tunnelled, masqueraded by the edge: ${[...seen]}`);
      assert.ok(seen.has(CONN_IP), `direct, from the connector itself: ${[...seen]}`);
      console.log(
        `tunnelled total ${p.latest.phases.total} ms, direct total ${d.phases.total} ms over ${d.via}`,
      );
      const before = p.latest.phases.connect;

      await setDelay(150);
      await waitUntil(
        "the probe to turn Poor or Okay",
        async () => {
          p = await zdx();
          return p.latest.ok && p.latest.band !== "good";
        },
        30_000,
        500,
      );
      assert.equal(p.latest.worstHop, "edge_to_internet");
      assert.ok(p.latest.phases.connect >= before + 140, `connect ${p.latest.phases.connect} ms`);
      console.log(
        `score ${p.latest.score} (${p.latest.band}), connect ${before} → ${p.latest.phases.connect} ms`,
      );

      // The edge's alert names the same hop (batches arrive every 30 s).
      let alert: any = null;
      await waitUntil(
        "the edge's zdx_degraded alert",
        async () => {
          const n = await admin("/api/v1/admin/notifications?limit=500");
          alert = n.notifications.find((x: any) => x.kind === "zdx_degraded");
          return !!alert;
        },
        60_000,
        1000,
      );
      assert.equal(alert.data.hop, "edge_to_internet");
      assert.equal(alert.data.probe, "portal");
      assert.match(alert.message, /edge to internet hop grew/);

      // A lasting slowdown does not become "normal" within a few results.
      p = await zdx();
      assert.notEqual(p.latest.band, "good", "still not Good while the delay lasts");

      // The edge measured its own leg to the probe's host with mtr: through the router.
      let fleet: any = null;
      await waitUntil(
        "the edge's own path to the server",
        async () => {
          fleet = await admin("/api/v1/admin/zdx");
          return fleet.paths?.some((x: any) => x.host === WEB_IP);
        },
        30_000,
        1000,
      );
      const path = fleet.paths.find((x: any) => x.host === WEB_IP);
      // (The router shows twice: the delay line hands packets back through it.)
      assert.equal(path.hops[0].host, "198.18.0.254");
      assert.equal(path.hops.at(-1).host, WEB_IP);
      assert.equal(fleet.apps[0].probe, "portal");

      await setDelay(0);
      await waitUntil(
        "the probe to be Good again",
        async () => {
          p = await zdx();
          return p.latest.ok && p.latest.band === "good";
        },
        30_000,
        500,
      );
    } catch (e) {
      const curl = await r.inNs(connNs, [
        "curl",
        "-s",
        "-m",
        "3",
        "-w",
        " %{http_code}",
        `http://${WEB_IP}/`,
      ]);
      console.error(`curl through the tunnel: ${curl.stdout} ${curl.stderr}`);
      console.error(
        `zdx: ${
          (await r.inNs(connNs, ["curl", "-s", "http://127.0.0.1:9080/api/v1/zdx"])).stdout.slice(
            0,
            2000,
          )
        }`,
      );
      console.error(await r.logs());
      throw e;
    }
  },
});
