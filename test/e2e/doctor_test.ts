/**
 * `portcullis doctor --json` against the field guide's scenarios, on a real
 * edge and connector in namespaces of their own (test/e2e/roles.ts):
 *
 *   edge 192.0.2.1/24 ── conn 192.0.2.10/24
 *
 * One topology for every row: each row switches its fault on (tc netem,
 * nftables, a link MTU, an inspecting TLS server, a policy), waits until the
 * doctor names the expected hop and cause, and switches the fault off
 * again. Rows that cannot be undone (the edge killed, the clock moved, the
 * identity cloned) come last. The first row is the healthy workstation:
 * every hop healthy, the doctor done in under 10 s.
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, waitUntil } from "./netns.ts";
import { adminLogin, CONN_IP, DENO, EDGE_IP, MAIN, type Roles, startRoles } from "./roles.ts";
import type { DoctorReport, Hop } from "../../src/diag/doctor/mod.ts";

const PORTAL = new URL("./tools/captive_portal.ts", import.meta.url).pathname;

/** The baseline app profile; rows change one thing in it. */
function profile(change: (p: any) => void = () => {}) {
  const p: any = {
    name: "doctor",
    forwarding: {
      name: "doctor-fp",
      actions: { on_trusted: "none", off_trusted: "tunnel", vpn_trusted: "tunnel" },
      udpTimeoutSec: 5,
      tlsFallback: true,
    },
    failOpen: { edgeUnreachable: "direct", retries: 2 },
    policyRefreshSec: 10,
  };
  change(p);
  return p;
}

interface Row {
  name: string;
  hop: Hop;
  cause: string;
  /** Extra check on the verdict's text. */
  evidence?: RegExp;
  on(): Promise<void>;
  off?(): Promise<void>;
  /** After `off`, wait until the tunnel is connected again (default true). */
  reconnect?: boolean;
}

Deno.test({
  name: "doctor: each field scenario names its hop and cause; a healthy workstation is all green",
  ignore: !canUseNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await using lab = new NetnsLab("doc");
    const r: Roles = await startRoles(lab, {
      enroll: true,
      connectorArgs: ["--probe-idle-sec", "5", "--probe-portal-sec", "2"],
    });
    const { edgeNs, connNs, dir } = r;
    const { jar, csrf } = await adminLogin(r);
    const api = async (path: string, method = "GET", body?: unknown) => {
      const data = body === undefined
        ? []
        : ["-H", "Content-Type: application/json", "-d", JSON.stringify(body)];
      const res = await r.inNs(edgeNs, [
        "curl",
        "-s",
        "--max-time",
        "10",
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
      return JSON.parse(res.stdout);
    };
    const local = (path: string) =>
      r.inNs(connNs, [
        "curl",
        "-s",
        "--max-time",
        "10",
        "-X",
        "POST",
        "-H",
        "X-Portcullis-Request: 1",
        `http://127.0.0.1:9080${path}`,
      ]);
    const setProfile = async (p: unknown) => {
      const out = await api("/api/v1/admin/policy/app-profiles", "PUT", { items: [p] });
      assert.ok(out.items, `policy update: ${JSON.stringify(out)}`);
      await local("/api/v1/actions/update-policy");
    };
    const doctor = async () => {
      const started = Date.now();
      const out = await r.inNs(connNs, [DENO, "run", "-A", MAIN, "doctor", "--json"]);
      const report = JSON.parse(out.stdout) as DoctorReport;
      return { code: out.code, report, ms: Date.now() - started };
    };
    const connected = () =>
      waitUntil("the connector to connect again", async () => {
        const s = await r.connectorStatus();
        return s.state === "connected";
      }, 40_000);
    /** Runs `cmd` in `ns` with its output appended to `<dir>/<log>`; killed on dispose. */
    const detached = (ns: string, log: string, cmd: string[]) =>
      lab.spawn(ns, ["sh", "-c", 'exec "$@" >>"$0" 2>&1 </dev/null', `${dir}/${log}`, ...cmd]);
    const startConnector = (prefix: string[] = []) =>
      detached(connNs, "conn.log", [
        ...prefix,
        DENO,
        "run",
        "-A",
        MAIN,
        "connect",
        ...r.connectArgs,
      ]);
    const stop = async (p: Deno.ChildProcess) => {
      p.kill("SIGTERM");
      await p.status;
    };
    const nft = (ns: string, script: string) => lab.exec(ns, ["nft", "-f", "-"], { stdin: script });

    try {
      await setProfile(profile());
      await connected();

      await t.step("healthy workstation: every hop healthy in under 10 s", async () => {
        // The first doctor run after a policy change may still see an old verdict.
        let last = await doctor();
        await waitUntil(
          "a healthy report",
          async () => {
            last = await doctor();
            return last.code === 0;
          },
          30_000,
          500,
        );
        const { code, report, ms } = await doctor();
        assert.equal(code, 0, JSON.stringify(report, null, 1));
        assert.equal(report.overall, "healthy");
        for (const v of report.verdicts) {
          assert.ok(v.status === "ok" || v.status === "skipped", `${v.hop}: ${v.evidence}`);
        }
        assert.ok(ms < 10_000, `doctor took ${ms} ms`);
        console.log(`healthy doctor run: ${ms} ms (connector side ${report.durationMs} ms)`);
      });

      // Certificates of an inspecting middlebox (its own CA, a leaf for the edge's address).
      const mb = `${dir}/mb`;
      await Deno.mkdir(mb);
      const ossl = (args: string[]) => lab.exec(connNs, ["openssl", ...args]);
      await ossl([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        `${mb}/ca.key`,
        "-out",
        `${mb}/ca.crt`,
        "-days",
        "2",
        "-subj",
        "/CN=Inspecting Proxy CA",
      ]);
      await ossl([
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        `${mb}/leaf.key`,
        "-out",
        `${mb}/leaf.csr`,
        "-subj",
        `/CN=${EDGE_IP}`,
      ]);
      await ossl([
        "x509",
        "-req",
        "-in",
        `${mb}/leaf.csr`,
        "-CA",
        `${mb}/ca.crt`,
        "-CAkey",
        `${mb}/ca.key`,
        "-CAcreateserial",
        "-out",
        `${mb}/leaf.crt`,
        "-days",
        "2",
      ]);
      let middlebox: Deno.ChildProcess | null = null;
      let portal: Deno.ChildProcess | null = null;

      const rows: Row[] = [
        {
          name: "far edge (tc netem 200 ms on the path)",
          hop: "edge_rtt",
          cause: "far_edge",
          on: async () => {
            await lab.exec(connNs, [
              "tc",
              "qdisc",
              "add",
              "dev",
              "eth0",
              "root",
              "netem",
              "delay",
              "200ms",
            ]);
          },
          off: async () => {
            await lab.exec(connNs, ["tc", "qdisc", "del", "dev", "eth0", "root"]);
          },
        },
        {
          name: "MTU 1280 link in the path (fragments dropped)",
          hop: "mtu",
          cause: "mtu_too_large",
          evidence: /largest that did was 1220 bytes/,
          on: async () => {
            await lab.exec(connNs, ["ip", "link", "set", "eth0", "mtu", "1280"]);
            await nft(
              edgeNs,
              "table ip nofrag {\n  chain pre { type filter hook prerouting priority -500; ip frag-off & 0x3fff != 0 drop; }\n}\n",
            );
          },
          off: async () => {
            await lab.exec(edgeNs, ["nft", "delete", "table", "ip", "nofrag"]);
            await lab.exec(connNs, ["ip", "link", "set", "eth0", "mtu", "1500"]);
          },
        },
        {
          name: "inspecting middlebox re-signs the edge certificate",
          hop: "edge_cert",
          cause: "middlebox_resigning",
          evidence: /Inspecting Proxy CA/,
          on: async () => {
            middlebox = detached(connNs, "mb.log", [
              "openssl",
              "s_server",
              "-accept",
              `${CONN_IP}:9443`,
              "-cert",
              `${mb}/leaf.crt`,
              "-key",
              `${mb}/leaf.key`,
              "-www",
              "-quiet",
            ]);
            await nft(
              connNs,
              `table ip mb {\n  chain out { type nat hook output priority -100; ip daddr ${EDGE_IP} tcp dport 8443 dnat to ${CONN_IP}:9443; }\n}\n`,
            );
          },
          off: async () => {
            await lab.exec(connNs, ["nft", "delete", "table", "ip", "mb"]);
            if (middlebox) await stop(middlebox);
          },
        },
        {
          name: "captive portal still present",
          hop: "captive_portal",
          cause: "captive_portal",
          on: async () => {
            portal = detached(connNs, "portal.log", [DENO, "run", "-A", PORTAL, CONN_IP, "portal"]);
            await waitUntil("the portal", async () => {
              const x = await r.inNs(connNs, [
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                `http://${CONN_IP}/`,
              ]);
              return x.stdout === "302";
            }, 20_000);
            await nft(
              connNs,
              `table ip portal {\n  chain out { type nat hook output priority -100; ip daddr ${EDGE_IP} tcp dport 8081 dnat to ${CONN_IP}:80; }\n}\n`,
            );
          },
          off: async () => {
            await lab.exec(connNs, ["nft", "delete", "table", "ip", "portal"], { check: false });
            if (portal) await stop(portal);
          },
        },
        {
          name: "forwarding action None on an untrusted network",
          hop: "forwarding",
          cause: "forwarding_none_untrusted",
          on: () => setProfile(profile((p) => (p.forwarding.actions.off_trusted = "none"))),
          off: () => setProfile(profile()),
        },
        {
          name: "trusted-network criterion on a host name that does not resolve",
          hop: "forwarding",
          cause: "trusted_hostname_unresolved",
          evidence: /intranet\.doctor\.invalid/,
          on: () =>
            setProfile(profile((p) => {
              p.forwarding.trusted = {
                hostnameIps: [{ hostname: "intranet.doctor.invalid", ips: ["10.9.9.9"] }],
                match: "any",
              };
            })),
          off: () => setProfile(profile()),
        },
        {
          name: "posture failing",
          hop: "posture",
          cause: "posture_failing",
          evidence: /wiki/,
          on: async () => {
            await api("/api/v1/admin/policy/posture-profiles", "PUT", {
              items: [{
                name: "marker",
                checks: [{ type: "file_exists", path: "/nonexistent/pcl-doctor" }],
              }],
            });
            await api("/api/v1/admin/policy/segments", "PUT", {
              items: [{ name: "wiki", cidrs: ["10.99.0.0/24"] }],
            });
            await api("/api/v1/admin/policy/access-rules", "PUT", {
              items: [{
                name: "wiki with marker",
                segments: ["wiki"],
                postureProfiles: ["marker"],
              }],
            });
            await setProfile(profile((p) => (p.postureProfiles = ["marker"])));
          },
          off: async () => {
            await api("/api/v1/admin/policy/access-rules", "PUT", { items: [] });
            await api("/api/v1/admin/policy/segments", "PUT", { items: [] });
            await setProfile(profile());
          },
        },
        {
          name: "UDP dropped with TLS fallback off",
          hop: "edge_udp",
          cause: "udp_blocked",
          on: async () => {
            await setProfile(profile((p) => (p.forwarding.tlsFallback = false)));
            await nft(
              connNs,
              `table ip noudp {\n  chain out { type filter hook output priority 0; ip daddr ${EDGE_IP} udp dport 4443 drop; }\n}\n`,
            );
          },
          off: async () => {
            await lab.exec(connNs, ["nft", "delete", "table", "ip", "noudp"]);
            await setProfile(profile());
          },
        },
        {
          name: "the connector's tunnel device missing",
          hop: "tunnel_device",
          cause: "tunnel_device_missing",
          on: async () => {
            await lab.exec(connNs, ["ip", "link", "del", r.connTun]);
          },
          // The service is stopped next, and started again after that.
        },
        {
          name: "connector service not running",
          hop: "service",
          cause: "service_not_running",
          on: async () => {
            await stop(r.connector);
          },
          off: () => {
            r.connector = startConnector();
            return Promise.resolve();
          },
        },
        {
          name: "fail-open active while the edge is down",
          hop: "fail_open",
          cause: "fail_open_active",
          evidence: /you are NOT protected/,
          on: async () => {
            await stop(r.edge);
          },
          off: () => {
            r.edge = detached(edgeNs, "edge.log", [DENO, "run", "-A", MAIN, "edge", ...r.edgeArgs]);
            return Promise.resolve();
          },
        },
        {
          name: "clock skew (two hours ahead)",
          hop: "clock",
          cause: "clock_skew",
          evidence: /7\d{3} s ahead/,
          on: async () => {
            await stop(r.connector);
            r.connector = startConnector(["faketime", "-f", "+2h"]);
          },
          off: async () => {
            await stop(r.connector);
          },
          reconnect: false,
        },
        {
          name: "cloned device identity (image copied to other hardware)",
          hop: "identity",
          cause: "cloned_identity",
          on: async () => {
            await lab.exec(connNs, ["ip", "link", "set", "eth0", "address", "02:00:00:d0:c7:01"]);
            r.connector = startConnector();
          },
        },
      ];

      for (const row of rows) {
        await t.step(`${row.name} → ${row.hop}/${row.cause}`, async () => {
          await row.on();
          let last: Awaited<ReturnType<typeof doctor>> | null = null;
          try {
            await waitUntil(
              `the doctor to name ${row.hop}/${row.cause}`,
              async () => {
                last = await doctor().catch(() => null);
                return !!last?.report.verdicts.some((v) =>
                  v.hop === row.hop && v.cause === row.cause
                );
              },
              45_000,
              500,
            );
          } catch (e) {
            throw new Error(
              `${(e as Error).message}\n${JSON.stringify(last, null, 1)}\n${await r.logs()}`,
            );
          }
          const { code, report } = last!;
          const v = report.verdicts.find((x) => x.hop === row.hop)!;
          assert.equal(code, 1, "a fault found: exit 1");
          assert.ok(v.status === "fault" || v.status === "warn", v.status);
          assert.ok(v.fix, "names a fix");
          if (row.evidence) assert.match(v.evidence, row.evidence);
          console.log(`  ${row.hop}/${row.cause}: ${v.evidence}\n    fix: ${v.fix}`);
          if (row.off) {
            await row.off();
            if (row.reconnect ?? true) await connected();
          }
        });
      }
    } catch (e) {
      console.error(await r.logs());
      throw e;
    }
  },
});
