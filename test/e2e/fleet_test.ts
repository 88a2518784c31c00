/**
 * Two edges in two "regions" on one PostgreSQL, a workstation choosing
 * between them, and a server behind them that sees which edge carried each
 * request (the edges masquerade, so the source address names the edge):
 *
 *   edge-a 192.0.2.1 ──┐                 ┌── srv 198.18.0.80 (HTTP, logs the source)
 *                      rtr (router) ─────┤
 *   edge-b 198.51.100.1┘  delay line     └── ws 203.0.113.10 (connector)
 *                         (+40 ms to B)
 *
 * Both edges run `portcullis edge --database postgres://…` against one real
 * server (initdb in a temporary directory, Unix socket only); edge B joins
 * the fleet with the join key edge A wrote (the CAs and sealing key from the database).
 * The kernel has no sch_netem, so the far region is a TUN delay line in the
 * router (test/e2e/tools/delay_line.ts) on the path to edge B.
 *
 * It checks: the workstation picks the nearer edge A; killing A moves it to B
 * within 10 s with its traffic flowing again (seen at the server); A coming
 * back clearly nearer takes it back; a policy change made on B reaches the
 * device (connected to A) within 2 s; edge B serves the inspection CA edge A
 * stored (one root for the fleet).
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, waitUntil } from "./netns.ts";
import { DENO, MAIN } from "./roles.ts";
import { fleetEdgeArgs, fleetProcesses, settledOn } from "./fleet_lab.ts";
import { pgBinDir, startPgCluster } from "../../src/store/pg/cluster.ts";
import { totpAt } from "../../src/identity/totp.ts";
import { certSha256 } from "../../src/proxy/inspection_ca.ts";

const DELAY_LINE = new URL("./tools/delay_line.ts", import.meta.url).pathname;
const A_IP = "192.0.2.1", B_IP = "198.51.100.1", WS_IP = "203.0.113.10", SRV_IP = "198.18.0.80";
const DELAY_MS = 40;

Deno.test({
  name: "fleet: nearest edge, failover within 10 s, return, cross-edge policy within 2 s",
  ignore: !canUseNetns || pgBinDir() === null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using lab = new NetnsLab("flt");
    const cluster = await startPgCluster();
    lab.defer(() => cluster.stop());
    const db = await cluster.createDatabase("fleet");
    const dir = await Deno.makeTempDir({ prefix: "pcfleet" });
    lab.defer(() => Deno.remove(dir, { recursive: true }));

    const rtr = await lab.ns("rtr");
    const nsA = await lab.ns("edgea");
    const nsB = await lab.ns("edgeb");
    const ws = await lab.ns("ws");
    const srv = await lab.ns("srv");
    await lab.link(nsA, `${A_IP}/24`, rtr, "192.0.2.254/24", "eth0");
    await lab.link(nsB, `${B_IP}/24`, rtr, "198.51.100.254/24", "eth1");
    await lab.link(ws, `${WS_IP}/24`, rtr, "203.0.113.254/24", "eth2");
    await lab.link(srv, `${SRV_IP}/24`, rtr, "198.18.0.1/24", "eth3");
    // Each link's two ends carry the same name: the router's are eth0 (A) … eth3 (srv).
    await lab.exec(rtr, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    for (
      const [ns, gw] of [[nsA, "192.0.2.254"], [nsB, "198.51.100.254"], [ws, "203.0.113.254"], [
        srv,
        "198.18.0.1",
      ]]
    ) await lab.exec(ns, ["ip", "route", "add", "default", "via", gw]);

    // The far region: packets from the router to edge B wait in the delay line.
    const dly = `${lab.prefix}d`.slice(0, 15);
    const ready = `${dir}/delay`;
    lab.spawn(rtr, [DENO, "run", "-A", DELAY_LINE, dly, String(DELAY_MS), ready]);
    await waitUntil("the delay line", () => Deno.stat(ready).then(() => true), 20_000);
    for (
      const cmd of [
        ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"],
        ["sysctl", "-qw", `net.ipv4.conf.${dly}.rp_filter=0`],
        ["ip", "route", "add", "198.51.100.0/24", "dev", "eth1", "table", "100"],
        ["ip", "rule", "add", "iif", dly, "lookup", "100", "pref", "100"],
        ["ip", "route", "add", `${B_IP}/32`, "dev", dly],
      ]
    ) await lab.exec(rtr, cmd);

    // The server behind the edges writes down who reached it.
    const seen = `${dir}/seen.log`;
    lab.spawn(srv, [
      DENO,
      "eval",
      `Deno.serve({ hostname: "${SRV_IP}", port: 80, onListen() {} }, (_q, i) => {
        Deno.writeTextFileSync(${
        JSON.stringify(seen)
      }, i.remoteAddr.hostname + "\\n", { append: true });
        return new Response("hello from srv");
      })`,
    ]);

    const { detached, startEdge, logs: tail } = fleetProcesses(lab, dir);
    const logs = () => tail(["edge-a.log", "edge-b.log", "conn.log"]);
    const argsA = fleetEdgeArgs(lab, { dir, db, name: "edge-a", ip: A_IP, region: "near" });
    const argsB = fleetEdgeArgs(lab, { dir, db, name: "edge-b", ip: B_IP, region: "far" });
    const healthy = (ns: string, ip: string, name: string) =>
      waitUntil(`${name}'s API`, async () =>
        (await lab.exec(ns, [
          "curl",
          "-sf",
          "--max-time",
          "2",
          "--cacert",
          `${dir}/edge-a/ca/ca.crt`,
          `https://${ip}:8443/api/v1/health`,
        ], { check: false })).code === 0, 40_000);
    const connStatus = async () => {
      const r = await lab.exec(ws, [
        "curl",
        "-s",
        "--max-time",
        "2",
        "http://127.0.0.1:9080/api/v1/status",
      ], { check: false });
      try {
        return JSON.parse(r.stdout) as {
          state: string;
          policyVersion: string | null;
          edgeSelection?: {
            current: { name: string; rttMs: number | null } | null;
            alternatives: { name: string; rttMs: number | null }[];
            lastMove: { reason: string } | null;
            lastDecision: string | null;
          } | null;
        };
      } catch {
        return null;
      }
    };
    /** One request from the workstation to the server; the source the server saw. */
    const probeSrv = async (): Promise<string | null> => {
      const before = (await Deno.readTextFile(seen).catch(() => "")).split("\n").filter(Boolean);
      const r = await lab.exec(ws, ["curl", "-sf", "--max-time", "1", `http://${SRV_IP}/`], {
        check: false,
      });
      if (r.code !== 0 || !r.stdout.includes("hello from srv")) return null;
      const after = (await Deno.readTextFile(seen).catch(() => "")).split("\n").filter(Boolean);
      return after.length > before.length ? after.at(-1)! : null;
    };

    try {
      let edgeA = startEdge(nsA, "edge-a", argsA);
      await healthy(nsA, A_IP, "edge A");
      // Edge B joins the fleet with the join key edge A wrote: the fleet's CA
      // and sealing key come from the database (its own server certificate).
      startEdge(nsB, "edge-b", [...argsB, "--fleet-key-file", `${dir}/edge-a/fleet.key`]);
      await healthy(nsB, B_IP, "edge B");

      // Enrol the workstation with a key made at edge A.
      const keyFile = `${dir}/conn.key`;
      await lab.exec(nsA, [
        DENO,
        "run",
        "-A",
        MAIN,
        "edge",
        "key",
        "create",
        ...argsA,
        "--expires",
        "1h",
        "--key-file",
        keyFile,
      ]);
      detached(ws, "conn.log", [
        DENO,
        "run",
        "-A",
        MAIN,
        "connect",
        "--key-file",
        keyFile,
        "--data-dir",
        `${dir}/conn`,
        "--hostname",
        "fleet-ws",
        "--tun-interface",
        `${lab.prefix}c`.slice(0, 15),
        "--no-dns",
      ]);
      // Where it settles, not the first figures (fleet_lab.ts `settledOn`).
      let last = null as Awaited<ReturnType<typeof connStatus>>;
      await waitUntil("the workstation to connect through the nearer edge", async () => {
        last = await connStatus();
        return settledOn(last, "edge-a");
      }, 60_000).catch((e) => {
        throw new Error(`${(e as Error).message}: ${JSON.stringify(last)}`);
      });
      let s = (await connStatus())!;
      assert.equal(s.edgeSelection?.current?.name, "edge-a", "the nearer edge");
      assert.ok(
        (s.edgeSelection!.alternatives[0].rttMs ?? 0) >= DELAY_MS,
        JSON.stringify(s.edgeSelection),
      );
      await waitUntil("traffic through edge A", async () => (await probeSrv()) === A_IP, 20_000);

      // Kill edge A: within 10 s the workstation's traffic reaches the server through B.
      const killedAt = performance.now();
      edgeA.kill("SIGKILL");
      await edgeA.status;
      await waitUntil("traffic through edge B", async () => (await probeSrv()) === B_IP, 10_000);
      const failoverMs = performance.now() - killedAt;
      s = (await connStatus())!;
      assert.equal(s.edgeSelection?.current?.name, "edge-b");
      assert.equal(s.edgeSelection?.lastMove?.reason, "failover");

      // A comes back (same data directory): clearly nearer, it takes the workstation back.
      const backAt = performance.now();
      edgeA = startEdge(nsA, "edge-a", argsA);
      await healthy(nsA, A_IP, "edge A again");
      await waitUntil("the workstation back on edge A", async () => {
        const st = await connStatus();
        return st?.edgeSelection?.current?.name === "edge-a";
      }, 40_000);
      await waitUntil(
        "traffic through edge A again",
        async () => (await probeSrv()) === A_IP,
        10_000,
      );
      const returnMs = performance.now() - backAt;
      s = (await connStatus())!;
      assert.equal(s.edgeSelection?.lastMove?.reason, "nearer");

      // A policy change made on edge B reaches the device (on edge A) within 2 s.
      const admin = await Deno.readTextFile(`${dir}/edge-a/initial-admin.txt`);
      const password = admin.match(/password: (\S+)/)![1];
      const secret = admin.match(/totp secret: (\S+)/)![1];
      const jar = `${dir}/cookies-b.txt`;
      const curlB = (args: string[]) =>
        lab.exec(nsB, ["curl", "-s", "--cacert", `${dir}/edge-a/ca/ca.crt`, ...args], {
          check: false,
        });
      const login = await curlB([
        "-c",
        jar,
        "-H",
        "Content-Type: application/json",
        "-d",
        JSON.stringify({ username: "admin", password, totp: totpAt(secret, Date.now()) }),
        `https://${B_IP}:8443/api/v1/auth/login`,
      ]);
      const csrf = JSON.parse(login.stdout).csrfToken as string;
      assert.ok(csrf, login.stdout);
      const before = s.policyVersion;
      const t0 = performance.now();
      const put = await curlB([
        "-b",
        jar,
        "-X",
        "PUT",
        "-H",
        `X-CSRF-Token: ${csrf}`,
        "-H",
        "Content-Type: application/json",
        "-d",
        JSON.stringify({
          items: [{ name: "default", forwarding: { name: "default" }, policyRefreshSec: 300 }],
        }),
        `https://${B_IP}:8443/api/v1/admin/policy/app-profiles`,
      ]);
      assert.ok(!put.stdout.includes('"error"'), put.stdout);
      // Polled every 20 ms: the figure is the fan-out, not the polling interval.
      await waitUntil(
        "the new policy on the device",
        async () => {
          const st = await connStatus();
          return !!st && st.policyVersion !== before;
        },
        2_000,
        20,
      );
      const policyMs = performance.now() - t0;

      // Edge B's registry view: both healthy, and edge A's heartbeat counts the workstation.
      await waitUntil("edge A to count its device", async () => {
        const r = await curlB(["-b", jar, `https://${B_IP}:8443/api/v1/admin/edges`]);
        const list = JSON.parse(r.stdout) as {
          edges: { name: string; health: string; devicesConnected: number }[];
        };
        const a = list.edges.find((e) => e.name === "edge-a");
        return list.edges.every((e) => e.health === "healthy") && a?.devicesConnected === 1;
      }, 10_000);
      // One SSL inspection CA for the fleet: edge B serves the root edge A stored.
      const inspB = JSON.parse(
        (await curlB(["-b", jar, `https://${B_IP}:8443/api/v1/admin/web/inspection`])).stdout,
      ) as { ca: { sha256: string; certificate: string } };
      const inspA = await Deno.readTextFile(`${dir}/edge-a/inspection/inspection-ca.crt`);
      assert.equal(inspB.ca.sha256, certSha256(inspA));
      assert.equal(inspB.ca.certificate.trim(), inspA.trim());
      console.log(
        `fleet: failover ${(failoverMs / 1000).toFixed(1)} s, return ${
          (returnMs / 1000).toFixed(1)
        } s after edge A restarted, policy from edge B on the device in ${policyMs.toFixed(0)} ms`,
      );
      assert.ok(failoverMs <= 10_000);
      assert.ok(policyMs <= 2_000);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await logs()}`);
    }
  },
});
