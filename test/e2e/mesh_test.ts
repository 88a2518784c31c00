/**
 * Device to device across two edges over the edge mesh (issue 15), on one
 * PostgreSQL, with each workstation nearer a different edge:
 *
 *   edge-a 192.0.2.1 ───┐                ┌── ws1 203.0.113.10 (connector; +40 ms to B)
 *                       rtr (router) ────┤
 *   edge-b 198.51.100.1 ┘                └── ws2 198.18.0.20 (connector; +40 ms to A;
 *                                                TCP servers on :7000 and :7001)
 *
 * Two delay lines in the router (test/e2e/tools/delay_line.ts, chosen by
 * source address) make ws1 pick edge A and ws2 edge B; edge to edge is not
 * delayed. Client-to-client is on, and one rule allows the peers' port 7000.
 *
 * It checks: ws1 reaches ws2's port 7000 by ws2's tunnel address and the
 * server sees ws1's tunnel address (no NAT: it went device → A → mesh → B →
 * device), A's decision log holds the allow with its rule, and A's mesh
 * peer for B carries ws2's address with a handshake; port 7001 is refused
 * at A (RST), never seen at ws2, the reason in A's decision log; after edge
 * B dies and ws2 fails over to A, ws1 reaches ws2 again.
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, waitUntil } from "./netns.ts";
import { DENO, MAIN } from "./roles.ts";
import { fleetEdgeArgs, fleetProcesses } from "./fleet_lab.ts";
import { pgBinDir, startPgCluster } from "../../src/store/pg/cluster.ts";
import { totpAt } from "../../src/identity/totp.ts";

const DELAY_LINE = new URL("./tools/delay_line.ts", import.meta.url).pathname;
const A_IP = "192.0.2.1", B_IP = "198.51.100.1";
const WS1_IP = "203.0.113.10", WS2_IP = "198.18.0.20";
const DELAY_MS = 40;

interface ConnStatus {
  state: string;
  edgeSelection?: { current: { name: string } | null } | null;
}

Deno.test({
  name: "mesh: device to device across edges, policy at the first edge, and after failover",
  ignore: !canUseNetns || pgBinDir() === null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using lab = new NetnsLab("msh");
    const cluster = await startPgCluster();
    lab.defer(() => cluster.stop());
    const db = await cluster.createDatabase("mesh");
    const dir = await Deno.makeTempDir({ prefix: "pcmesh" });
    lab.defer(() => Deno.remove(dir, { recursive: true }));

    const rtr = await lab.ns("rtr");
    const nsA = await lab.ns("edgea");
    const nsB = await lab.ns("edgeb");
    const ws1 = await lab.ns("ws1");
    const ws2 = await lab.ns("ws2");
    // Each workstation is its own machine: its own machine-id (device fingerprint).
    for (const ns of [ws1, ws2]) {
      const etc = `/etc/netns/${ns}`;
      await Deno.mkdir(etc, { recursive: true });
      lab.defer(() => Deno.remove(etc, { recursive: true }));
      const id = Array.from(
        crypto.getRandomValues(new Uint8Array(16)),
        (b) => b.toString(16).padStart(2, "0"),
      ).join("");
      await Deno.writeTextFile(`${etc}/machine-id`, `${id}\n`);
    }
    await lab.link(nsA, `${A_IP}/24`, rtr, "192.0.2.254/24", "eth0");
    await lab.link(nsB, `${B_IP}/24`, rtr, "198.51.100.254/24", "eth1");
    await lab.link(ws1, `${WS1_IP}/24`, rtr, "203.0.113.254/24", "eth2");
    await lab.link(ws2, `${WS2_IP}/24`, rtr, "198.18.0.1/24", "eth3");
    await lab.exec(rtr, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await lab.exec(rtr, ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"]);
    for (
      const [ns, gw] of [[nsA, "192.0.2.254"], [nsB, "198.51.100.254"], [ws1, "203.0.113.254"], [
        ws2,
        "198.18.0.1",
      ]]
    ) await lab.exec(ns, ["ip", "route", "add", "default", "via", gw]);

    // Each workstation's packets to the far edge wait in a delay line of their own.
    const lines: [string, string, string, number][] = [
      [`${lab.prefix}a`.slice(0, 15), WS2_IP, A_IP, 101], // ws2 → A is far
      [`${lab.prefix}b`.slice(0, 15), WS1_IP, B_IP, 102], // ws1 → B is far
    ];
    for (const [dev] of lines) {
      const ready = `${dir}/${dev}.ready`;
      lab.spawn(rtr, [DENO, "run", "-A", DELAY_LINE, dev, String(DELAY_MS), ready]);
      await waitUntil(`delay line ${dev}`, () => Deno.stat(ready).then(() => true), 20_000);
    }
    await lab.exec(rtr, ["ip", "route", "add", "192.0.2.0/24", "dev", "eth0", "table", "100"]);
    await lab.exec(rtr, ["ip", "route", "add", "198.51.100.0/24", "dev", "eth1", "table", "100"]);
    for (const [dev, from, to, table] of lines) {
      for (
        const cmd of [
          ["sysctl", "-qw", `net.ipv4.conf.${dev}.rp_filter=0`],
          // Out of the delay line: on to the edge.
          ["ip", "rule", "add", "iif", dev, "lookup", "100", "pref", String(table - 30)],
          ["ip", "route", "add", `${to}/32`, "dev", dev, "table", String(table)],
          ["ip", "rule", "add", "from", from, "to", to, "lookup", String(table), "pref", "90"],
        ]
      ) await lab.exec(rtr, cmd);
    }

    // Device 2's servers write down who reached them, on which port.
    const seen = `${dir}/seen.log`;
    lab.spawn(ws2, [
      DENO,
      "eval",
      `for (const port of [7000, 7001]) {
        Deno.serve({ hostname: "0.0.0.0", port, onListen() {} }, (_q, i) => {
          Deno.writeTextFileSync(${
        JSON.stringify(seen)
      }, port + " " + i.remoteAddr.hostname + "\\n", { append: true });
          return new Response("hello from ws2");
        });
      }`,
    ]);
    const seenLines = async () =>
      (await Deno.readTextFile(seen).catch(() => "")).split("\n").filter(Boolean);

    const { detached, startEdge, logs: tail } = fleetProcesses(lab, dir);
    const logs = () => tail(["edge-a.log", "edge-b.log", "ws1.log", "ws2.log"]);
    const argsA = fleetEdgeArgs(lab, { dir, db, name: "edge-a", ip: A_IP, region: "a" });
    const argsB = fleetEdgeArgs(lab, { dir, db, name: "edge-b", ip: B_IP, region: "b" });
    const curlIn = (ns: string, args: string[]) =>
      lab.exec(ns, ["curl", "-s", "--cacert", `${dir}/edge-a/ca/ca.crt`, ...args], {
        check: false,
      });
    const healthy = (ns: string, ip: string, name: string) =>
      waitUntil(
        `${name}'s API`,
        async () =>
          (await curlIn(ns, ["-f", "--max-time", "2", `https://${ip}:8443/api/v1/health`]))
            .code === 0,
        40_000,
      );
    const connStatus = async (ns: string): Promise<ConnStatus | null> => {
      const r = await lab.exec(ns, [
        "curl",
        "-s",
        "--max-time",
        "2",
        "http://127.0.0.1:9080/api/v1/status",
      ], { check: false });
      try {
        return JSON.parse(r.stdout) as ConnStatus;
      } catch {
        return null;
      }
    };
    const onEdge = (ns: string, edge: string) => async () => {
      const s = await connStatus(ns);
      return s?.state === "connected" && s.edgeSelection?.current?.name === edge;
    };

    try {
      startEdge(nsA, "edge-a", argsA);
      await healthy(nsA, A_IP, "edge A");
      // Edge B joins the fleet with the join key edge A wrote: the fleet's CA,
      // sealing key and inspection CA come from the database.
      const edgeB = startEdge(nsB, "edge-b", [
        ...argsB,
        "--fleet-key-file",
        `${dir}/edge-a/fleet.key`,
      ]);
      await healthy(nsB, B_IP, "edge B");

      // The admin, signed in at edge A.
      const admin = await Deno.readTextFile(`${dir}/edge-a/initial-admin.txt`);
      const password = admin.match(/password: (\S+)/)![1];
      const secret = admin.match(/totp secret: (\S+)/)![1];
      const jar = `${dir}/cookies.txt`;
      const login = await curlIn(nsA, [
        "-c",
        jar,
        "-H",
        "Content-Type: application/json",
        "-d",
        JSON.stringify({ username: "admin", password, totp: totpAt(secret, Date.now()) }),
        `https://${A_IP}:8443/api/v1/auth/login`,
      ]);
      const csrf = JSON.parse(login.stdout).csrfToken as string;
      assert.ok(csrf, login.stdout);
      // deno-lint-ignore no-explicit-any
      const api = async (path: string, method = "GET", body?: unknown): Promise<any> => {
        const r = await curlIn(nsA, [
          "-b",
          jar,
          "-X",
          method,
          "-H",
          `X-CSRF-Token: ${csrf}`,
          "-H",
          "Content-Type: application/json",
          ...(body === undefined ? [] : ["-d", JSON.stringify(body)]),
          `https://${A_IP}:8443/api/v1${path}`,
        ]);
        const parsed = JSON.parse(r.stdout || "{}");
        if (parsed.error) throw new Error(`${method} ${path}: ${r.stdout}`);
        return parsed;
      };
      await api("/admin/policy/segments", "PUT", {
        items: [{
          name: "peer-echo",
          domains: ["*.clients.portcullis.internal"],
          ports: ["7000"],
          protocols: ["tcp"],
        }],
      });
      await api("/admin/policy/access-rules", "PUT", {
        items: [{ name: "peers echo", segments: ["peer-echo"] }],
      });
      await api("/admin/policy/client-to-client", "PUT", { enabled: true });

      // Two workstations, one key (made at edge A).
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
        "--reusable",
        "--expires",
        "1h",
        "--key-file",
        keyFile,
      ]);
      for (const [ns, name] of [[ws1, "ws1"], [ws2, "ws2"]]) {
        detached(ns, `${name}.log`, [
          DENO,
          "run",
          "-A",
          MAIN,
          "connect",
          "--key-file",
          keyFile,
          "--data-dir",
          `${dir}/${name}`,
          "--hostname",
          `mesh-${name}`,
          "--tun-interface",
          `${lab.prefix}${name.at(-1)}w`.slice(0, 15),
          "--no-dns",
        ]);
      }
      await waitUntil("ws1 on edge A", onEdge(ws1, "edge-a"), 60_000);
      await waitUntil("ws2 on edge B", onEdge(ws2, "edge-b"), 60_000);

      const devices = async () =>
        (await api("/admin/devices")).devices as {
          id: string;
          hostname: string;
          address: string;
        }[];
      const list = await devices();
      const d1 = list.find((d) => d.hostname === "mesh-ws1")!;
      const d2 = list.find((d) => d.hostname === "mesh-ws2")!;
      assert.ok(d1?.address && d2?.address, JSON.stringify(list));
      await waitUntil(
        "ws2's client-to-client name to be valid",
        async () => (await api(`/admin/devices/${d2.id}`)).clientToClient?.valid === true,
        20_000,
      );

      /** One request from ws1 to ws2's tunnel address; the source ws2's server saw, or null. */
      const probe = async (port: number): Promise<string | null> => {
        const before = (await seenLines()).length;
        const r = await lab.exec(ws1, [
          "curl",
          "-s",
          "--max-time",
          "2",
          `http://${d2.address}:${port}/`,
        ], { check: false });
        if (!r.stdout.includes("hello from ws2")) return null;
        const after = await seenLines();
        return after.slice(before).find((l) => l.startsWith(`${port} `))?.split(" ")[1] ?? null;
      };

      // Allowed: ws1 (on A) → ws2 (on B), seen at ws2 from ws1's own tunnel address.
      const firstMs = await waitUntil(
        "ws1 to reach ws2 over the mesh",
        async () => (await probe(7000)) === d1.address,
        20_000,
      );
      const edges = await api("/admin/edges");
      const meshB = (edges.mesh as { name: string; addresses: string[]; lastHandshake: string }[])
        .find((m) => m.name === "edge-b");
      assert.ok(meshB?.addresses.includes(d2.address), JSON.stringify(edges.mesh));
      assert.ok(meshB?.lastHandshake, "the mesh session between A and B is up");
      // The decision log is written in batches (every 500 ms).
      await waitUntil("the allow with its rule in A's decision log", async () => {
        const d = (await api(`/admin/decisions?device=${d1.id}&verdict=allow`)).decisions;
        return d.some((x: { dst: string; port: number; rule: string }) =>
          x.dst === d2.address && x.port === 7000 && x.rule === "peers echo"
        );
      }, 5_000);

      // Denied: port 7001 is in no segment; refused at A, never seen at ws2.
      assert.equal(await probe(7001), null);
      await waitUntil("the denial in A's decision log", async () => {
        const d = (await api(`/admin/decisions?device=${d1.id}&verdict=deny`)).decisions;
        return d.some((x: { dst: string; port: number; reason: string }) =>
          x.dst === d2.address && x.port === 7001 &&
          /no application segment covers it \(default deny\)/.test(x.reason)
        );
      }, 5_000);
      assert.ok(!(await seenLines()).some((l) => l.startsWith("7001 ")), "7001 never reached ws2");

      // Edge B dies: ws2 fails over to A, and ws1 reaches it again (now on one edge).
      edgeB.kill("SIGKILL");
      await edgeB.status;
      const failoverMs = await waitUntil("ws2 on edge A", onEdge(ws2, "edge-a"), 20_000);
      const t0 = performance.now();
      await waitUntil(
        "ws1 to reach ws2 after the failover",
        async () => (await probe(7000)) === d1.address,
        15_000,
      );
      console.log(
        `mesh: ws1 → ws2 across edges ${
          (firstMs / 1000).toFixed(1)
        } s after ws2's name was valid, ` +
          `denial at A; ws2 on A ${(failoverMs / 1000).toFixed(1)} s after B was killed, ` +
          `ws1 → ws2 again ${
            ((performance.now() - t0) / 1000).toFixed(1)
          } s after ws2 reached edge A`,
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await logs()}`);
    }
  },
});
