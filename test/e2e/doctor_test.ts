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
import { chromium } from "playwright-core";
import { canUseNetns, NetnsLab, waitUntil } from "./netns.ts";
import {
  adminLogin,
  CONN_IP,
  DENO,
  EDGE_IP,
  EDGE_TUNNEL_PORT,
  MAIN,
  type Roles,
  startRoles,
} from "./roles.ts";
import type { DoctorReport, Hop } from "../../src/diag/doctor/mod.ts";
import { totpAt } from "../../src/identity/totp.ts";
import { LANG_COOKIE } from "../../web/i18n/mod.ts";

const PORTAL = new URL("./tools/captive_portal.ts", import.meta.url).pathname;
/** A web server beyond the edge (on the edge's loopback), reached through the tunnel. */
const WEB_IP = "198.18.0.80";
const SHOTS = new URL("../output/screenshots/", import.meta.url).pathname;
const CHROMIUM = "/usr/bin/chromium";
const DELAY = new URL("./tools/udp_delay.ts", import.meta.url).pathname;
/** libfaketime (Debian faketime): moves this process's wall clock, nothing else. */
const FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

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
    zdxProbes: [{ name: "intranet", url: `http://${WEB_IP}/`, intervalSec: 5, timeoutMs: 3000 }],
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
  /** Console languages to photograph the doctor page in while the fault is on. */
  shoot?: ("en" | "de" | "fr")[];
  /** Another verdict the same report must hold (the state the fault leads to). */
  also?: [Hop, RegExp];
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
    // Chromium inside the connector's namespace, where its console listens on loopback.
    const browser = `${dir}/chromium-in-ns`;
    await Deno.writeTextFile(browser, `#!/bin/sh\nexec ip netns exec ${connNs} ${CHROMIUM} "$@"\n`);
    await Deno.chmod(browser, 0o755);
    await Deno.mkdir(SHOTS, { recursive: true });
    /** Opens More ▸ Run the doctor in `lang`, checks the row for `hop`, photographs the page. */
    const photograph = async (lang: "en" | "de" | "fr", hop: Hop, cause: string, name: string) => {
      const b = await chromium.launch({
        executablePath: browser,
        headless: true,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
      });
      try {
        const page = await b.newPage({ locale: lang, viewport: { width: 1280, height: 900 } });
        page.setDefaultTimeout(20_000);
        await page.goto("http://127.0.0.1:9080/more");
        await page.click("#run-doctor");
        await page.waitForSelector("#doctor-table");
        const row = await page.textContent(`#hop-${hop}`);
        assert.ok(row?.includes(cause), `doctor page row ${hop}: ${row}`);
        assert.equal(await page.getAttribute("html", "lang"), lang);
        await page.screenshot({ path: `${SHOTS}${name}-${lang}.png`, fullPage: true });
      } finally {
        await b.close();
      }
    };

    try {
      await lab.exec(edgeNs, ["ip", "addr", "add", `${WEB_IP}/32`, "dev", "lo"]);
      detached(edgeNs, "web.log", [
        DENO,
        "eval",
        `Deno.serve({ hostname: "${WEB_IP}", port: 80 }, () => new Response("intranet home"))`,
      ]);
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
        await photograph("en", "service", "ok", "doctor-healthy");
      });

      await t.step(
        "ZDX: the policy's probe runs through the tunnel and scores; Experience tab",
        async () => {
          let z: any = null;
          await waitUntil(
            "a scored ZDX result",
            async () => {
              const out = await r.inNs(connNs, ["curl", "-s", "http://127.0.0.1:9080/api/v1/zdx"]);
              z = JSON.parse(out.stdout);
              return z.probes?.[0]?.series?.length >= 2;
            },
            30_000,
            500,
          );
          const latest = z.probes[0].latest;
          assert.equal(latest.ok, true, JSON.stringify(latest));
          assert.equal(latest.status, 200);
          assert.equal(latest.bytes, "intranet home".length);
          assert.equal(latest.address, `${WEB_IP}:80`);
          // Through the tunnel: the tunnel's round trip rides along.
          assert.equal(typeof latest.edgeRttMs, "number");
          assert.equal(latest.band, "good");
          assert.ok(z.deviceScore >= 66);
          for (const lang of ["en", "de", "fr"] as const) {
            const b = await chromium.launch({
              executablePath: browser,
              headless: true,
              args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
            });
            try {
              const page = await b.newPage({
                locale: lang,
                viewport: { width: 1280, height: 900 },
              });
              page.setDefaultTimeout(20_000);
              await page.goto("http://127.0.0.1:9080/zdx");
              await page.waitForSelector("#zdx-chart canvas");
              const row = await page.textContent("#zdx-intranet");
              assert.match(row ?? "", /intranet/);
              assert.match(await page.textContent("#zdx-device-score") ?? "", /\d+ · /);
              await page.screenshot({ path: `${SHOTS}zdx-connector-${lang}.png`, fullPage: true });
            } finally {
              await b.close();
            }
          }
          // The connector sends its results every 30 s: wait for a batch here, before the
          // fault rows below make the edge unreachable at the moments it would send.
          await waitUntil(
            "the edge to hold the device's ZDX results",
            async () => {
              const fleet = await api("/api/v1/admin/zdx");
              return fleet.apps?.[0]?.probe === "intranet";
            },
            45_000,
            1000,
          );
        },
      );

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
      let delay: Deno.ChildProcess | null = null;
      let portal: Deno.ChildProcess | null = null;

      const rows: Row[] = [
        {
          // This kernel has no netem: a relay adds 100 ms each way to the tunnel's UDP.
          name: "far edge (200 ms more round trip on the path)",
          hop: "edge_rtt",
          cause: "far_edge",
          // mtr over the direct (ICMP) path is fast: the relay delays the tunnel's UDP only.
          evidence: /takes (2\d\d|[3-9]\d\d) ms.*time is added on the tunnel's own way/,
          on: async () => {
            delay = detached(connNs, "delay.log", [
              DENO,
              "run",
              "-A",
              DELAY,
              `${CONN_IP}:5443`,
              `${EDGE_IP}:${EDGE_TUNNEL_PORT}`,
              "5444",
              "100",
            ]);
            await waitUntil("the delaying relay", async () => {
              const x = await r.inNs(connNs, ["ss", "-uln"]);
              return x.stdout.includes(`${CONN_IP}:5444`);
            }, 20_000);
            await nft(
              connNs,
              `table ip far {\n  chain out { type nat hook output priority -100; ip daddr ${EDGE_IP} udp dport ${EDGE_TUNNEL_PORT} udp sport != 5444 dnat to ${CONN_IP}:5443; }\n}\n`,
            );
            // Established flows keep their conntrack entry (and skip the DNAT): start afresh.
            await lab.exec(connNs, ["conntrack", "-D", "-p", "udp"], { check: false });
          },
          off: async () => {
            await lab.exec(connNs, ["nft", "delete", "table", "ip", "far"]);
            await lab.exec(connNs, ["conntrack", "-D", "-p", "udp"], { check: false });
            if (delay) await stop(delay);
          },
        },
        {
          name: "MTU 1280 link in the path (fragments dropped)",
          hop: "mtu",
          cause: "mtu_too_large",
          // WireGuard pads to 16 bytes: 1216 + 60 bytes of headers is the last size under 1280.
          evidence: /largest that did was 1216 bytes/,
          shoot: ["de"],
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
          shoot: ["en"],
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
          // The connector keeps trying UDP (it does not fail open): the edge stops answering.
          // (before or after the reconfiguring for the new policy completed a handshake).
          also: ["handshake", /^(no_handshake|handshake_unanswered)$/],
          on: async () => {
            await setProfile(profile((p) => (p.forwarding.tlsFallback = false)));
            await connected();
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
          shoot: ["fr"],
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
            // env execs (faketime's own wrapper forks, and the kill would miss the connector).
            r.connector = startConnector(["env", `LD_PRELOAD=${FAKETIME_LIB}`, "FAKETIME=+2h"]);
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
            // The same data directory on "another machine": ip netns exec binds
            // /etc/netns/<ns>/machine-id over /etc/machine-id for the connector.
            const etc = `/etc/netns/${connNs}`;
            await Deno.mkdir(etc, { recursive: true });
            lab.defer(() => Deno.remove(etc, { recursive: true }));
            const id = Array.from(
              crypto.getRandomValues(new Uint8Array(16)),
              (b) => b.toString(16).padStart(2, "0"),
            ).join("");
            await Deno.writeTextFile(`${etc}/machine-id`, `${id}\n`);
            r.connector = startConnector();
          },
        },
      ];

      for (const row of rows) {
        await t.step(`${row.name} → ${row.hop}/${row.cause}`, async () => {
          let last: Awaited<ReturnType<typeof doctor>> | null = null;
          try {
            await row.on();
            try {
              await waitUntil(
                `the doctor to name ${row.hop}/${row.cause}`,
                async () => {
                  last = await doctor().catch(() => null);
                  const has = ([hop, cause]: [Hop, string | RegExp]) =>
                    !!last?.report.verdicts.some((v) =>
                      v.hop === hop &&
                      (typeof cause === "string" ? v.cause === cause : cause.test(v.cause))
                    );
                  return has([row.hop, row.cause]) && (!row.also || has(row.also));
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
            for (const lang of row.shoot ?? []) {
              await photograph(lang, row.hop, row.cause, `doctor-${row.cause}`);
            }
          } finally {
            // Switch the fault off even when the row failed, so the next row starts clean.
            if (row.off) {
              await row.off();
              if (row.reconnect ?? true) await connected();
            }
          }
        });
      }
      await t.step("ZDX at the edge: batches arrived; Digital Experience page", async () => {
        let fleet: any = null;
        await waitUntil(
          "the edge to hold the device's ZDX results",
          async () => {
            fleet = await api("/api/v1/admin/zdx");
            return fleet.apps?.[0]?.probe === "intranet";
          },
          60_000,
          1000,
        ).catch((e) => {
          throw new Error(`${e.message}: ${JSON.stringify(fleet).slice(0, 1500)}`);
        });
        assert.equal(fleet.devices[0].hostname, "roles-ws");
        assert.ok(fleet.latest.some((x: any) => x.probe === "intranet"));
        // Measured results (not only failures from the fault rows) made the hourly hops.
        assert.ok(fleet.hops.length >= 1 && fleet.hops[0][1].device_to_edge >= 0);
        const edgeBrowser = `${dir}/chromium-in-edge`;
        await Deno.writeTextFile(
          edgeBrowser,
          `#!/bin/sh\nexec ip netns exec ${edgeNs} ${CHROMIUM} "$@"\n`,
        );
        await Deno.chmod(edgeBrowser, 0o755);
        const text = await Deno.readTextFile(`${dir}/edge/initial-admin.txt`);
        const password = text.match(/password: (\S+)/)![1];
        const secret = text.match(/totp secret: (\S+)/)![1];
        const b = await chromium.launch({
          executablePath: edgeBrowser,
          headless: true,
          args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
        });
        try {
          // One session (a TOTP code counts once); the language cookie switches the page.
          const ctx = await b.newContext({ viewport: { width: 1280, height: 900 } });
          const page = await ctx.newPage();
          page.setDefaultTimeout(20_000);
          await page.goto("http://127.0.0.1:8080/zdx");
          assert.match(page.url(), /\/login/);
          await page.keyboard.type("admin");
          await page.keyboard.press("Tab");
          await page.keyboard.type(password);
          await page.keyboard.press("Tab");
          await page.keyboard.type(totpAt(secret, Date.now()));
          await page.keyboard.press("Enter");
          await page.waitForURL((u) => !u.pathname.startsWith("/login"));
          for (const lang of ["en", "de", "fr"] as const) {
            await ctx.addCookies([{
              name: LANG_COOKIE,
              value: lang,
              url: "http://127.0.0.1:8080",
            }]);
            await page.goto("http://127.0.0.1:8080/zdx");
            await page.waitForSelector("#zdx-hops canvas");
            assert.match(await page.textContent("#zdx-devices") ?? "", /roles-ws/);
            assert.match(await page.textContent("#zdx-apps") ?? "", /intranet/);
            assert.equal(await page.getAttribute("html", "lang"), lang);
            await page.screenshot({ path: `${SHOTS}zdx-edge-${lang}.png`, fullPage: true });
          }
        } finally {
          await b.close();
        }
      });
    } catch (e) {
      console.error(await r.logs());
      throw e;
    }
  },
});
