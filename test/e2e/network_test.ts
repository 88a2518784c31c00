/**
 * Network awareness end to end (issue 6), in namespaces of its own:
 *
 *                 ┌──────────────── wan (the internet's router) ────────────────┐
 *                 │192.0.2/24    198.18.0/24   198.51.100/24  172.20.0/24  203.0.113/24
 *               edge          inet (HTTP+DNS)      │              │         hotel (router, NAT,
 *             192.0.2.1        198.18.0.80        wan0           lan0       portal, DNS)
 *                                                  └──── conn ────┘            │192.168.77/24
 *                                                          └──────── wifi0 ────┘
 *
 * The connector host `conn` has three "networks" (home internet, corporate
 * LAN, hotel Wi-Fi), one active at a time: moving between them changes its
 * address, default route and resolv.conf, as roaming does. The server in
 * `inet` says which address each request came from: the edge's (tunnel),
 * the connector's own (direct), or nothing (blocked).
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, type RunResult, waitUntil } from "./netns.ts";
import { totpAt } from "../../src/identity/totp.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const PORTAL = new URL("./tools/captive_portal.ts", import.meta.url).pathname;
const DENO = Deno.execPath();

const EDGE = "192.0.2.1";
const INET = "198.18.0.80";
const WEB = "www.example.test";
const UDP_TIMEOUT_SEC = 5;

/** The connector's networks: interface, address, gateway, resolv.conf. */
const NETS = {
  internet: { dev: "wan0", addr: "198.51.100.10", gw: "198.51.100.254", dns: `nameserver ${INET}` },
  corp: {
    dev: "lan0",
    addr: "172.20.0.10",
    gw: "172.20.0.1",
    dns: "nameserver 172.20.0.53\nsearch corp.example",
  },
  hotel: {
    dev: "wifi0",
    addr: "192.168.77.10",
    gw: "192.168.77.1",
    dns: "nameserver 192.168.77.1",
  },
} as const;

/** The app profile under test; `edgeUnreachable` varies per scenario. */
function profile(edgeUnreachable: "direct" | "blocked") {
  return {
    name: "roaming",
    forwarding: {
      name: "roaming-fp",
      trusted: { defaultGateways: ["172.20.0.1"], dnsServers: ["172.20.0.53"], match: "any" },
      actions: { on_trusted: "none", off_trusted: "tunnel", vpn_trusted: "tunnel" },
      udpTimeoutSec: UDP_TIMEOUT_SEC,
      tlsFallback: true,
    },
    failOpen: {
      edgeUnreachable,
      retries: 2,
      captivePortalWindowMin: 5,
      captivePortalExpiry: "enforce",
    },
    policyRefreshSec: 10,
  };
}

Deno.test({
  name: "network awareness: trusted LAN, roaming, UDP loss, captive portal, fail-open/closed",
  ignore: !canUseNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await using lab = new NetnsLab("net");
    let failed = false;
    const step = async (name: string, fn: () => Promise<void>) => {
      if (!(await t.step(name, fn))) failed = true;
    };
    const dir = await Deno.makeTempDir({ prefix: "pcnet" });
    lab.defer(() => Deno.remove(dir, { recursive: true }));
    const timings: Record<string, number> = {};
    lab.defer(async () => {
      if (!failed) return;
      const keep = Deno.env.get("PORTCULLIS_KEEP_LOGS");
      for (const f of ["edge.log", "conn.log", "portal.log"]) {
        const text = await Deno.readTextFile(`${dir}/${f}`).catch(() => "");
        if (keep) await Deno.writeTextFile(`${keep}/${f}`, text).catch(() => {});
        console.error(
          `----- ${f} (last 60 lines) -----\n${text.split("\n").slice(-60).join("\n")}`,
        );
      }
    });

    // ---- topology -------------------------------------------------------
    const wan = await lab.ns("wan");
    const edge = await lab.ns("edge");
    const inet = await lab.ns("inet");
    const conn = await lab.ns("conn");
    const hotel = await lab.ns("hotel");
    const etc = `/etc/netns/${conn}`;
    await Deno.mkdir(etc, { recursive: true });
    lab.defer(() => Deno.remove(etc, { recursive: true }));
    await Deno.writeTextFile(`${etc}/resolv.conf`, NETS.corp.dns + "\n");

    await lab.link(wan, "192.0.2.254/24", edge, `${EDGE}/24`, "eth0");
    await lab.link(wan, "198.18.0.254/24", inet, `${INET}/24`, "eth1");
    await lab.link(wan, "198.51.100.254/24", conn, "198.51.100.10/24", "wan0");
    await lab.link(wan, "172.20.0.1/24", conn, "172.20.0.10/24", "lan0");
    await lab.link(wan, "203.0.113.254/24", hotel, "203.0.113.2/24", "up0");
    await lab.link(hotel, "192.168.77.1/24", conn, "192.168.77.10/24", "wifi0");
    for (const ns of [wan, edge, hotel]) {
      await lab.exec(ns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    }
    await lab.exec(edge, ["ip", "route", "add", "default", "via", "192.0.2.254"]);
    await lab.exec(inet, ["ip", "route", "add", "default", "via", "198.18.0.254"]);
    await lab.exec(hotel, ["ip", "route", "add", "default", "via", "203.0.113.254"]);
    // The hotel masquerades its guests and, until they sign in, sends every
    // guest HTTP connection (the edge's bootstrap port included) to its
    // portal and drops the rest.
    await lab.exec(hotel, ["nft", "-f", "-"], {
      stdin: `table ip hotelnat {
  chain post { type nat hook postrouting priority srcnat; oifname "up0" masquerade; }
}
table ip portal {
  chain pre { type nat hook prerouting priority dstnat; iifname "wifi0" tcp dport { 80, 8081 } redirect to :80; }
  chain guests { type filter hook forward priority 0; iifname "wifi0" drop; }
}
`,
    });
    // The wan router's own firewall, where the test drops traffic to the edge.
    await lab.exec(wan, ["nft", "add", "table", "ip", "wanfw"]);
    await lab.exec(wan, [
      "nft",
      "add chain ip wanfw block { type filter hook forward priority 0; }",
    ]);

    const inNs = (ns: string, cmd: string[]): Promise<RunResult> =>
      lab.exec(ns, cmd, { check: false });
    const detached = (ns: string, log: string, cmd: string[]) =>
      lab.spawn(ns, ["sh", "-c", 'exec "$@" >>"$0" 2>&1 </dev/null', `${dir}/${log}`, ...cmd]);

    /** Moves the connector to one of its networks (resolv.conf first, as DHCP does). */
    const attach = async (name: keyof typeof NETS) => {
      const net = NETS[name];
      await Deno.writeTextFile(`${etc}/resolv.conf`, net.dns + "\n");
      for (const other of Object.values(NETS)) {
        if (other.dev === net.dev) continue;
        await lab.exec(conn, ["ip", "addr", "flush", "dev", other.dev]);
        await lab.exec(conn, ["ip", "link", "set", other.dev, "down"]);
      }
      await lab.exec(conn, ["ip", "link", "set", net.dev, "up"]);
      await lab.exec(conn, ["ip", "addr", "replace", `${net.addr}/24`, "dev", net.dev]);
      await lab.exec(conn, ["ip", "route", "replace", "default", "via", net.gw]);
    };

    /** Which address the internet server saw, or null when it could not be reached. */
    const seenFrom = async (timeout = 2): Promise<string | null> => {
      const r = await inNs(conn, [
        "curl",
        "-s",
        "--max-time",
        String(timeout),
        `http://${INET}/ip`,
      ]);
      try {
        return JSON.parse(r.stdout).ip ?? null;
      } catch {
        return null;
      }
    };
    const status = async () => {
      const r = await inNs(conn, [
        "curl",
        "-s",
        "--max-time",
        "2",
        "http://127.0.0.1:9080/api/v1/status",
      ]);
      return JSON.parse(r.stdout);
    };
    const notifications = async (): Promise<
      { id: number; type: string; message: string; data: Record<string, unknown> }[]
    > => {
      const r = await inNs(conn, [
        "curl",
        "-s",
        "--max-time",
        "2",
        "http://127.0.0.1:9080/api/v1/notifications?limit=500",
      ]);
      return JSON.parse(r.stdout).notifications;
    };
    /** Notifications newer than `after`, oldest first. */
    const since = async (after: number) =>
      (await notifications()).filter((n) => n.id > after).sort((a, b) => a.id - b.id);
    const lastId = async () => Math.max(0, ...(await notifications()).map((n) => n.id));
    /**
     * Waits until the tunnel has been up for `ms`: WireGuard allows a new
     * handshake initiation only REKEY_TIMEOUT (5 s) after the last one, so a
     * loss right after a handshake cannot be acted on sooner than that.
     */
    const settled = (ms = 6000) =>
      waitUntil("a settled tunnel", async () => {
        const s = await status();
        return s.state === "connected" && Date.now() - s.connectedSince >= ms;
      }, 30_000);
    const drop = async (rule: string) => {
      await lab.exec(wan, ["nft", `add rule ip wanfw block ${rule}`]);
    };
    const allow = async () => {
      await lab.exec(wan, ["nft", "flush", "chain", "ip", "wanfw", "block"]);
    };

    // ---- services --------------------------------------------------------
    detached(inet, "inet.log", [DENO, "run", "-A", MAIN, "lab", "_internet"]);
    detached(hotel, "portal.log", [
      DENO,
      "run",
      "-A",
      PORTAL,
      "192.168.77.1",
      "portal",
      `${WEB}=${INET}`,
    ]);
    // Interface names of our own: UAPI sockets (/var/run/wireguard) are shared by every namespace.
    const edgeArgs = [
      "--data-dir",
      `${dir}/edge`,
      "--public-host",
      EDGE,
      "--tunnel-port",
      "443",
      "--tun-interface",
      `${lab.prefix}e`.slice(0, 15),
    ];
    detached(edge, "edge.log", [DENO, "run", "-A", MAIN, "edge", ...edgeArgs]);
    const ca = `${dir}/edge/ca/ca.crt`;
    await waitUntil("the edge API", async () => {
      const r = await inNs(edge, [
        "curl",
        "-sf",
        "--max-time",
        "2",
        "--cacert",
        ca,
        `https://${EDGE}:8443/api/v1/health`,
      ]);
      return r.code === 0;
    }, 40_000);

    // Admin session for policy changes.
    const admin = await Deno.readTextFile(`${dir}/edge/initial-admin.txt`);
    const password = admin.match(/password: (\S+)/)![1];
    const secret = admin.match(/totp secret: (\S+)/)![1];
    const jar = `${dir}/cookies.txt`;
    const login = await inNs(edge, [
      "curl",
      "-s",
      "--cacert",
      ca,
      "-c",
      jar,
      "-H",
      "Content-Type: application/json",
      "-d",
      JSON.stringify({ username: "admin", password, totp: totpAt(secret, Date.now()) }),
      `https://${EDGE}:8443/api/v1/auth/login`,
    ]);
    const csrf = JSON.parse(login.stdout).csrfToken as string;
    assert.ok(csrf, `admin login: ${login.stdout}`);
    const putProfile = async (mode: "direct" | "blocked") => {
      const r = await inNs(edge, [
        "curl",
        "-s",
        "--cacert",
        ca,
        "-b",
        jar,
        "-X",
        "PUT",
        "-H",
        `X-CSRF-Token: ${csrf}`,
        "-H",
        "Content-Type: application/json",
        "-d",
        JSON.stringify({ items: [profile(mode)] }),
        `https://${EDGE}:8443/api/v1/admin/policy/app-profiles`,
      ]);
      assert.ok(JSON.parse(r.stdout).items, `policy update: ${r.stdout}`);
    };
    await putProfile("direct");
    const keyOut = await lab.exec(edge, [
      DENO,
      "run",
      "-A",
      MAIN,
      "edge",
      "key",
      "create",
      ...edgeArgs,
      "--reusable",
      "--expires",
      "1d",
    ]);
    const key = keyOut.stdout.split("\n").find((l) => l.startsWith("pc1."));
    assert.ok(key, keyOut.stdout + keyOut.stderr);

    await step(
      "on the corporate LAN the on-trusted action (none) sends traffic direct",
      async () => {
        await attach("corp");
        detached(conn, "conn.log", [
          DENO,
          "run",
          "-A",
          MAIN,
          "connect",
          key,
          "--data-dir",
          `${dir}/conn`,
          "--hostname",
          "roamer",
          "--no-dns",
          "--tun-interface",
          `${lab.prefix}c`.slice(0, 15),
          "--udp-probe-sec",
          "4",
          "--probe-portal-sec",
          "2",
        ]);
        await waitUntil(
          "the connector to settle on the trusted network",
          async () => (await status()).state === "trusted_network",
          40_000,
        );
        const s = await status();
        assert.equal(s.network.type, "on_trusted");
        assert.equal(s.network.action, "none");
        assert.match(s.network.explanation, /On-trusted: .*172\.20\.0\.(1|53)/);
        assert.ok(s.network.matched.length >= 1, JSON.stringify(s.network));
        assert.equal(await seenFrom(), NETS.corp.addr, "the server sees the connector itself");
        const n = await notifications();
        assert.ok(n.some((x) => x.type === "network_changed" && /On-trusted/.test(x.message)));
        assert.ok(n.some((x) => x.type === "state_changed" && x.data.to === "trusted_network"));
      },
    );

    await step("moving to the internet brings the tunnel up within 5 s", async () => {
      const mark = await lastId();
      const started = Date.now();
      await attach("internet");
      const took = await waitUntil(
        "traffic through the edge",
        async () => (await seenFrom(1)) === EDGE,
        15_000,
      );
      timings.trustedToTunnelMs = Date.now() - started;
      assert.ok(timings.trustedToTunnelMs <= 5000, `tunnel after ${took} ms`);
      const s = await status();
      assert.equal(s.network.type, "off_trusted");
      assert.match(
        s.network.explanation,
        /Off-trusted: none of 2 criteria matched.*→ action tunnel/,
      );
      assert.match(
        s.network.unmatched.join(" "),
        /default gateways 172\.20\.0\.1 not in use \(seen 198\.51\.100\.254\)/,
      );
      const n = await since(mark);
      assert.ok(
        n.some((x) => x.type === "network_changed" && /Off-trusted/.test(x.message)),
        JSON.stringify(n),
      );
      await waitUntil(
        "the connected notification",
        async () =>
          (await since(mark)).some((x) => x.type === "state_changed" && x.data.to === "connected"),
        3000,
      );
    });

    await step(
      "UDP to the edge dropped: TLS fallback, and back to UDP when allowed",
      async () => {
        await waitUntil("UDP transport", async () => (await status()).transport === "udp", 10_000);
        await settled();
        const mark = await lastId();
        const started = Date.now();
        await drop(`ip daddr ${EDGE} udp dport 443 drop`);
        await waitUntil("TLS transport", async () => (await status()).transport === "tls", 25_000);
        timings.udpToTlsMs = Date.now() - started;
        assert.equal(await seenFrom(), EDGE, "still through the edge, over TLS");
        const n = await since(mark);
        const tls = n.find((x) =>
          x.type === "state_changed" && x.data.to === "connected" && x.data.transport === "tls"
        );
        assert.ok(tls, JSON.stringify(n));
        assert.match(tls.message, /Connected over TLS \(UDP handshakes went unanswered\)/);
        // Detection (liveness: a missed probe starts a handshake, ≤ 3 s) + UDP timeout + 2 s.
        assert.ok(
          timings.udpToTlsMs <= (UDP_TIMEOUT_SEC + 2 + 3) * 1000,
          `TLS after ${timings.udpToTlsMs} ms`,
        );
        const back = Date.now();
        await allow();
        await waitUntil(
          "UDP transport again",
          async () => (await status()).transport === "udp",
          20_000,
        );
        timings.tlsToUdpMs = Date.now() - back;
        assert.equal(await seenFrom(), EDGE);
      },
    );

    await step(
      "hotel Wi-Fi: portal detected, user told, login posted, tunnel back within 10 s",
      async () => {
        await allow(); // an earlier failed step may have left a drop behind
        const mark = await lastId();
        const started = Date.now();
        await attach("hotel");
        await waitUntil(
          "captive portal state",
          async () => (await status()).state === "captive_portal",
          15_000,
        );
        timings.portalDetectedMs = Date.now() - started;
        const n = await since(mark);
        const told = n.find((x) => x.type === "captive_portal");
        assert.ok(told, JSON.stringify(n));
        assert.match(
          told.message,
          /^Sign in to the network: .*Redirected \(302\).*http:\/\/192\.168\.77\.1\/login/,
        );
        assert.ok(n.some((x) => x.type === "state_changed" && x.data.to === "captive_portal"));
        // The hotel's DNS and HTTP lead to the portal, and traffic gets there (not into a tunnel).
        const dns = await inNs(conn, ["getent", "ahostsv4", WEB]);
        assert.match(dns.stdout, /^192\.168\.77\.1\s/m);
        const page = await inNs(conn, ["curl", "-s", "-L", "--max-time", "3", `http://${WEB}/`]);
        assert.match(page.stdout, /Welcome to the hotel Wi-Fi/);
        // The user signs in.
        const signed = await inNs(conn, [
          "curl",
          "-s",
          "--max-time",
          "3",
          "-d",
          "room=101",
          "http://192.168.77.1/login",
        ]);
        assert.match(signed.stdout, /You are online/);
        const posted = Date.now();
        await waitUntil(
          "traffic through the edge after sign-in",
          async () => (await seenFrom(1)) === EDGE,
          20_000,
        );
        timings.portalToTunnelMs = Date.now() - posted;
        assert.ok(
          timings.portalToTunnelMs <= 10_000,
          `tunnel back after ${timings.portalToTunnelMs} ms`,
        );
        await waitUntil(
          "connected state",
          async () => (await status()).state === "connected",
          5000,
        );
        const after = await since(mark);
        const cleared = after.find((x) => x.type === "captive_portal_cleared");
        assert.ok(cleared, JSON.stringify(after));
        assert.match(cleared.message, /Signed in: .*protection resumes/);
        // Now the hotel's DNS gives real answers, and they go through the tunnel.
        const web = await inNs(conn, ["curl", "-s", "--max-time", "3", `http://${WEB}/`]);
        assert.match(web.stdout, new RegExp(`You came from ${EDGE.replaceAll(".", "\\.")}`));
      },
    );

    await step(
      "edge unreachable, fail-open: direct traffic, loud state, recovers on its own",
      async () => {
        await allow(); // an earlier failed step may have left a drop behind
        await attach("internet");
        await waitUntil(
          "tunnel on the internet network",
          async () => (await seenFrom(1)) === EDGE,
          20_000,
        );
        await settled(3000);
        const mark = await lastId();
        const started = Date.now();
        // Everything to the edge is lost (ICMP still passes, for the fail-closed check below).
        await drop(`ip daddr ${EDGE} meta l4proto { tcp, udp } drop`);
        await waitUntil("fail-open", async () => (await status()).state === "fail_open", 40_000);
        timings.failOpenMs = Date.now() - started;
        const s = await status();
        assert.match(
          s.description,
          /^Internet security off \(fail-open\): the edge is unreachable — no answer to 2 attempts/,
        );
        assert.equal(await seenFrom(), NETS.internet.addr, "direct: the server sees the connector");
        const n = await since(mark);
        const loud = n.find((x) => x.type === "security_off");
        assert.ok(loud, JSON.stringify(n));
        assert.match(loud.message, /^Internet security off \(fail-open\)/);
        assert.ok(n.some((x) =>
          x.type === "state_changed" && x.data.to === "connecting" &&
          /stopped answering/.test(String(x.data.reason))
        ));
        const back = Date.now();
        await allow();
        await waitUntil("protected again", async () => (await seenFrom(1)) === EDGE, 30_000);
        timings.failOpenRecoveryMs = Date.now() - back;
        await waitUntil(
          "connected state",
          async () => (await status()).state === "connected",
          10_000,
        );
        const after = await since(mark);
        assert.ok(after.some((x) => x.type === "protection_restored"), JSON.stringify(after));
      },
    );

    await step(
      "edge unreachable, fail-closed: only DNS, DHCP and the edge pass; recovers",
      async () => {
        await allow(); // an earlier failed step may have left a drop behind
        const before = (await status()).policyVersion;
        await putProfile("blocked");
        await waitUntil(
          "the new policy",
          async () => (await status()).policyVersion !== before,
          20_000,
        );
        const mark = await lastId();
        const started = Date.now();
        await drop(`ip daddr ${EDGE} meta l4proto { tcp, udp } drop`);
        await waitUntil(
          "fail-closed",
          async () => (await status()).state === "fail_closed",
          40_000,
        );
        timings.failClosedMs = Date.now() - started;
        assert.equal(await seenFrom(), null, "the internet is blocked");
        const dns = await inNs(conn, ["getent", "ahostsv4", WEB]);
        assert.match(
          dns.stdout,
          new RegExp(`^${INET.replaceAll(".", "\\.")}\\s`, "m"),
          "DNS still works",
        );
        const pingEdge = await inNs(conn, ["ping", "-c", "1", "-W", "2", EDGE]);
        assert.equal(pingEdge.code, 0, "the edge itself is allowed");
        const pingOther = await inNs(conn, ["ping", "-c", "1", "-W", "1", INET]);
        assert.notEqual(pingOther.code, 0, "anything else is blocked");
        const n = await since(mark);
        const loud = n.find((x) => x.type === "traffic_blocked");
        assert.ok(loud, JSON.stringify(n));
        assert.match(loud.message, /^Traffic blocked \(fail-closed\)/);
        const back = Date.now();
        await allow();
        await waitUntil("protected again", async () => (await seenFrom(1)) === EDGE, 30_000);
        timings.failClosedRecoveryMs = Date.now() - back;
        await waitUntil(
          "connected state",
          async () => (await status()).state === "connected",
          5000,
        );
        const nft = await inNs(conn, ["nft", "list", "tables"]);
        assert.doesNotMatch(nft.stdout, /portcullis_conn/, "the block is lifted");
      },
    );

    console.log(`network awareness timings (ms): ${JSON.stringify(timings)}`);
  },
});
