/**
 * Fail-open and fail-closed when only the tunnel cannot form: UDP to the
 * edge's tunnel port is dropped and TLS fallback is off, while the edge's
 * API still answers over TCP (so the "edge unreachable" detector alone would
 * never fire). In namespaces of this test's own (test/e2e/roles.ts):
 *
 *   edge 192.0.2.1 (+ a web server on 198.18.0.80, its loopback)
 *     ── conn 192.0.2.10 (default route via the edge, for direct traffic)
 *
 * The web server says whose address it sees: the connector's tunnel address
 * while protected, 192.0.2.10 when traffic goes direct. Per row (the
 * profile's fail mode): drop UDP, wait for the fail state with its reason
 * and loud notification, check what the server sees, stay in the state
 * while heartbeats succeed, lift the drop, and see the tunnel come back on
 * its own (it kept handshaking in the background).
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, waitUntil } from "./netns.ts";
import {
  adminLogin,
  CONN_IP,
  DENO,
  EDGE_IP,
  EDGE_TUNNEL_PORT,
  type Roles,
  startRoles,
} from "./roles.ts";

const WEB_IP = "198.18.0.80";
const UDP_TIMEOUT_SEC = 5;
const RETRIES = 2;

function profile(edgeUnreachable: "direct" | "blocked") {
  return {
    name: "nofallback",
    forwarding: {
      name: "nofallback-fp",
      actions: { on_trusted: "none", off_trusted: "tunnel", vpn_trusted: "tunnel" },
      udpTimeoutSec: UDP_TIMEOUT_SEC,
      tlsFallback: false,
    },
    failOpen: { edgeUnreachable, retries: RETRIES },
    policyRefreshSec: 10,
  };
}

interface Row {
  mode: "direct" | "blocked";
  state: "fail_open" | "fail_closed";
  notice: string;
  told: RegExp;
  /** What the web server sees while the fault is on (null: nothing gets through). */
  seen: (tunnelAddr: string) => string | null;
}

Deno.test({
  name:
    "fail mode e2e: UDP dropped, TLS fallback off — fail-open goes direct, fail-closed blocks, both recover",
  ignore: !canUseNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await using lab = new NetnsLab("fot");
    const r: Roles = await startRoles(lab, {
      enroll: true,
      connectorArgs: ["--probe-idle-sec", "5", "--probe-portal-sec", "2"],
    });
    const { edgeNs, connNs, dir } = r;
    const { jar, csrf } = await adminLogin(r);
    const api = async (path: string, method = "GET", body?: unknown) => {
      const out = await r.inNs(edgeNs, [
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
        ...(body === undefined
          ? []
          : ["-H", "Content-Type: application/json", "-d", JSON.stringify(body)]),
        `https://${EDGE_IP}:8443${path}`,
      ]);
      return JSON.parse(out.stdout);
    };
    const local = (path: string, method = "GET") =>
      r.inNs(connNs, [
        "curl",
        "-s",
        "--max-time",
        "5",
        "-X",
        method,
        "-H",
        "X-Portcullis-Request: 1",
        `http://127.0.0.1:9080${path}`,
      ]);
    const status = async () => JSON.parse((await local("/api/v1/status")).stdout);
    const notifications = async (): Promise<
      { id: number; type: string; message: string; data: Record<string, unknown> }[]
    > => JSON.parse((await local("/api/v1/notifications?limit=500")).stdout).notifications;
    const lastId = async () => Math.max(0, ...(await notifications()).map((n) => n.id));
    /** Whose address the web server sees (null: no answer). */
    const seen = async (): Promise<string | null> => {
      const out = await r.inNs(connNs, ["curl", "-s", "--max-time", "2", `http://${WEB_IP}/`]);
      return out.code === 0 && out.stdout ? out.stdout.trim() : null;
    };
    const nft = (script: string) => lab.exec(connNs, ["nft", "-f", "-"], { stdin: script });
    const dropUdp = () =>
      nft(
        `table ip noudp {\n  chain out { type filter hook output priority 0; ip daddr ${EDGE_IP} udp dport ${EDGE_TUNNEL_PORT} drop; }\n}\n`,
      );
    const allowUdp = () =>
      lab.exec(connNs, ["nft", "delete", "table", "ip", "noudp"], { check: false });

    try {
      await lab.exec(edgeNs, ["ip", "addr", "add", `${WEB_IP}/32`, "dev", "lo"]);
      // Direct traffic (fail-open) leaves by the default route, through the edge's box.
      await lab.exec(connNs, ["ip", "route", "add", "default", "via", EDGE_IP]);
      await lab.exec(edgeNs, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
      lab.spawn(edgeNs, [
        "sh",
        "-c",
        'exec "$@" >>"$0" 2>&1 </dev/null',
        `${dir}/web.log`,
        DENO,
        "eval",
        `Deno.serve({ hostname: "${WEB_IP}", port: 80 }, (_q, i) => new Response(i.remoteAddr.hostname))`,
      ]);
      const tunnelAddr = String((await status()).deviceAddress ?? "");
      assert.match(tunnelAddr, /^100\.64\./, "the connector's tunnel address");

      const rows: Row[] = [
        {
          mode: "direct",
          state: "fail_open",
          notice: "security_off",
          told: /you are NOT protected/,
          seen: () => CONN_IP,
        },
        {
          mode: "blocked",
          state: "fail_closed",
          notice: "traffic_blocked",
          told: /^Traffic blocked \(fail-closed\)/,
          seen: () => null,
        },
      ];
      for (const row of rows) {
        await t.step(`${row.mode}: ${row.state}, then connected again`, async () => {
          try {
            const before = (await status()).policyVersion;
            await api("/api/v1/admin/policy/app-profiles", "PUT", { items: [profile(row.mode)] });
            await local("/api/v1/actions/update-policy", "POST");
            await waitUntil("the new policy", async () => {
              const s = await status();
              return s.policyVersion !== before && s.state === "connected";
            }, 30_000);
            await waitUntil("protected traffic", async () => (await seen()) === tunnelAddr, 20_000);
            const mark = await lastId();
            const started = Date.now();
            await dropUdp();
            await waitUntil(row.state, async () => (await status()).state === row.state, 60_000);
            const tookMs = Date.now() - started;
            const s = await status();
            assert.match(s.reason, /went unanswered for \d+ s and TLS fallback is off/);
            assert.ok(s.reason.includes(`${EDGE_IP}:${EDGE_TUNNEL_PORT}`), s.reason);
            const n = (await notifications()).filter((x) => x.id > mark);
            const loud = n.find((x) => x.type === row.notice);
            assert.ok(loud, JSON.stringify(n));
            assert.match(loud.message, row.told);
            await waitUntil(
              `the server to see ${row.seen(tunnelAddr) ?? "nothing"}`,
              async () => (await seen()) === row.seen(tunnelAddr),
              20_000,
            );
            // The edge keeps answering over TCP meanwhile (heartbeats report the state to
            // it): that must not flap the connector back into a black-holing "connecting".
            // Two heartbeats the edge received while the connector was in the fail state.
            const device = async () =>
              (await api("/api/v1/admin/devices")).devices.find((x: { hostname: string }) =>
                x.hostname === "roles-ws"
              ) as { reportedState: string | null; lastSeenAt: string | null };
            let seenAt = started;
            for (let i = 0; i < 2; i++) {
              await waitUntil(
                `heartbeat ${i + 1} in the fail state`,
                async () => {
                  const x = await device();
                  const at = Date.parse(x.lastSeenAt ?? "");
                  if (x.reportedState !== row.state || !(at > seenAt)) return false;
                  seenAt = at;
                  return true;
                },
                75_000,
                1000,
              );
            }
            const after = (await notifications()).filter((x) => x.id > mark);
            const flaps = after.filter((x) =>
              x.type === "state_changed" && x.data.from === row.state
            );
            assert.deepEqual(flaps, [], "stayed in the fail state");
            assert.equal((await status()).state, row.state);
            console.log(`  ${row.mode}: ${row.state} after ${tookMs} ms — ${s.reason}`);
            const back = Date.now();
            await allowUdp();
            await waitUntil(
              "connected again",
              async () => (await status()).state === "connected",
              60_000,
            );
            await waitUntil("protected again", async () => (await seen()) === tunnelAddr, 20_000);
            console.log(`  ${row.mode}: connected again ${Date.now() - back} ms after UDP passed`);
          } catch (e) {
            throw new Error(`${(e as Error).message}\n${await r.logs()}`);
          } finally {
            await allowUdp();
          }
        });
      }
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await r.logs()}`);
    }
  },
});
