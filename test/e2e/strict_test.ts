/**
 * Strict enforcement end to end (issue 6), in namespaces of its own:
 *
 *        edge 192.0.2.1 ──┐
 *                         wan (router + firewall) ── inet 198.18.0.80 (HTTP /ip, DNS)
 *   conn 198.51.100.10 ───┘
 *
 * The connector starts with `--strict-enforcement` and a key whose edge the
 * wan router refuses (the edge "is not up yet"): traffic must be blocked,
 * the edge itself reachable, until the enrolment succeeds; then it goes
 * through the tunnel. A logout with strict enforcement in the policy blocks
 * again (the edge stays reachable); SIGTERM removes the block. With strict
 * enforcement off in the policy, a logout leaves traffic alone. The server
 * in `inet` says who it saw: the edge (tunnel), the connector (direct), or
 * nothing (blocked).
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, type RunResult, waitUntil as waitUntilShared } from "./netns.ts";
import { totpAt } from "../../src/identity/totp.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const DENO = Deno.execPath();

const EDGE = "192.0.2.1";
const INET = "198.18.0.80";
const CONN = "198.51.100.10";
const WEB = "www.example.test";

function profile(strictEnforcement: boolean) {
  return {
    name: "strict",
    forwarding: { name: "strict-fp", udpTimeoutSec: 5 },
    failOpen: { strictEnforcement },
    policyRefreshSec: 10,
  };
}

/** Polls a little faster than the shared default: these steps are short. */
const waitUntil = (what: string, fn: () => Promise<boolean>, ms: number) =>
  waitUntilShared(what, fn, ms, 150);

Deno.test({
  name: "strict enforcement: blocked before enrolment and after logout, as the policy says",
  ignore: !canUseNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await using lab = new NetnsLab("str");
    let failed = false;
    const step = async (name: string, fn: () => Promise<void>) => {
      if (!(await t.step(name, fn))) failed = true;
    };
    const dir = await Deno.makeTempDir({ prefix: "pcstrict" });
    lab.defer(() => Deno.remove(dir, { recursive: true }));
    const timings: Record<string, number> = {};
    lab.defer(async () => {
      if (!failed) return;
      for (const f of ["edge.log", "conn.log"]) {
        const text = await Deno.readTextFile(`${dir}/${f}`).catch(() => "");
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
    const etc = `/etc/netns/${conn}`;
    await Deno.mkdir(etc, { recursive: true });
    lab.defer(() => Deno.remove(etc, { recursive: true }));
    await Deno.writeTextFile(`${etc}/resolv.conf`, `nameserver ${INET}\n`);
    await lab.link(wan, "192.0.2.254/24", edge, `${EDGE}/24`, "edge0");
    await lab.link(wan, "198.18.0.254/24", inet, `${INET}/24`, "inet0");
    await lab.link(wan, "198.51.100.254/24", conn, `${CONN}/24`, "conn0");
    await lab.exec(wan, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await lab.exec(edge, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    for (
      const [ns, gw] of [[edge, "192.0.2.254"], [inet, "198.18.0.254"], [conn, "198.51.100.254"]]
    ) {
      await lab.exec(ns, ["ip", "route", "add", "default", "via", gw]);
    }
    // The wan router's firewall: while the rule is in, the edge "is not up yet"
    // for TCP and UDP (refused at once), though it still answers pings.
    await lab.exec(wan, ["nft", "-f", "-"], {
      stdin: `table ip wanfw {
  chain block { type filter hook forward priority 0; }
}
`,
    });
    const edgeDown = () =>
      lab.exec(wan, [
        "nft",
        "add rule ip wanfw block ip daddr",
        EDGE,
        "meta l4proto tcp reject with tcp reset",
      ])
        .then(() =>
          lab.exec(wan, [
            "nft",
            "add rule ip wanfw block ip daddr",
            EDGE,
            "meta l4proto udp reject",
          ])
        );
    const edgeUp = () => lab.exec(wan, ["nft", "flush", "chain", "ip", "wanfw", "block"]);

    const inNs = (ns: string, cmd: string[]): Promise<RunResult> =>
      lab.exec(ns, cmd, { check: false });
    const detached = (ns: string, log: string, cmd: string[]) =>
      lab.spawn(ns, ["sh", "-c", 'exec "$@" >>"$0" 2>&1 </dev/null', `${dir}/${log}`, ...cmd]);
    /** Who the internet server saw: the edge, the connector, or null (blocked). */
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
    const local = (path: string, extra: string[] = []) =>
      inNs(conn, ["curl", "-s", "--max-time", "3", ...extra, `http://127.0.0.1:9080${path}`]);
    const status = async () => JSON.parse((await local("/api/v1/status")).stdout);
    const notifications = async (): Promise<
      { id: number; type: string; message: string; data: Record<string, unknown> }[]
    > => JSON.parse((await local("/api/v1/notifications?limit=500")).stdout).notifications;
    const logout = async () =>
      JSON.parse(
        (await local("/api/v1/actions/logout", [
          "-X",
          "POST",
          "-H",
          "X-Portcullis-Request: 1",
          "-H",
          "Content-Type: application/json",
          "-d",
          "{}",
        ])).stdout,
      );
    const nftTables = async () => (await inNs(conn, ["nft", "list", "tables"])).stdout;
    const ca = `${dir}/edge/ca/ca.crt`;
    /** The edge's API and bootstrap, as the connector host reaches them. */
    const edgeReachable = async () => {
      const api = await inNs(conn, [
        "curl",
        "-sf",
        "--max-time",
        "3",
        "--cacert",
        ca,
        `https://${EDGE}:8443/api/v1/health`,
      ]);
      const boot = await inNs(conn, [
        "curl",
        "-sf",
        "--max-time",
        "3",
        `http://${EDGE}:8081/ca.pem`,
      ]);
      return api.code === 0 && boot.code === 0;
    };
    const pings = async (host: string) =>
      (await inNs(conn, ["ping", "-c", "1", "-W", "1", host])).code === 0;

    // ---- services --------------------------------------------------------
    const t0 = Date.now();
    detached(inet, "inet.log", [DENO, "run", "-A", MAIN, "lab", "_internet"]);
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
    timings.edgeStartMs = Date.now() - t0;
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
    const putProfile = async (strict: boolean) => {
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
        JSON.stringify({ items: [profile(strict)] }),
        `https://${EDGE}:8443/api/v1/admin/policy/app-profiles`,
      ]);
      assert.ok(JSON.parse(r.stdout).items, `policy update: ${r.stdout}`);
    };
    await putProfile(true);
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
    const connect = () =>
      detached(conn, "conn.log", [
        DENO,
        "run",
        "-A",
        MAIN,
        "connect",
        key,
        "--strict-enforcement",
        "--data-dir",
        `${dir}/conn`,
        "--hostname",
        "strict1",
        "--no-dns",
        "--tun-interface",
        `${lab.prefix}c`.slice(0, 15),
      ]);
    /** SIGTERM, as a service manager stops it; resolves with the exit code. */
    const terminate = async (p: Deno.ChildProcess) => {
      p.kill("SIGTERM");
      const s = await Promise.race([
        p.status,
        new Promise<null>((r) => setTimeout(() => r(null), 10_000)),
      ]);
      assert.ok(s, "the connector exits within 10 s of SIGTERM");
      return s.code;
    };

    let proc: Deno.ChildProcess | null = null;

    await step("before enrolment (edge not up yet): blocked but for DNS and the edge", async () => {
      await edgeDown();
      assert.equal(await seenFrom(), CONN, "without the connector, traffic goes direct");
      proc = connect();
      await waitUntil(
        "strict enforcement",
        async () => (await status()).blockedUntil === "enrolled",
        20_000,
      );
      const s = await status();
      assert.match(s.state, /^(error|authenticating)$/);
      assert.match(
        s.description,
        /^Traffic blocked until this device is enrolled \(strict enforcement\)/,
      );
      assert.equal(await seenFrom(), null, "the internet server is not reached");
      assert.equal(await pings(INET), false, "nothing else gets out");
      assert.equal(await pings(EDGE), true, "the key's edge is on the allow-list");
      const dns = await inNs(conn, ["getent", "ahostsv4", WEB]);
      assert.match(dns.stdout, new RegExp(`^${INET.replaceAll(".", "\\.")}\\s`, "m"), "DNS works");
      assert.match(await nftTables(), /portcullis_conn/);
      const told = (await notifications()).find((n) => n.type === "strict_enforcement");
      assert.ok(told, "the user is told");
      assert.match(
        told.message,
        /^Traffic blocked until this device is enrolled \(strict enforcement\): only DNS, DHCP and the edge/,
      );
    });

    await step("the edge comes up: enrolled, traffic through the tunnel", async () => {
      const up = Date.now();
      await edgeUp();
      await waitUntil("traffic through the edge", async () => (await seenFrom(1)) === EDGE, 25_000);
      timings.edgeUpToTunnelMs = Date.now() - up;
      const s = await status();
      assert.equal(s.state, "connected");
      assert.equal(s.blockedUntil, null);
      assert.equal(s.strictEnforcement, true, "the policy keeps strict enforcement on");
      assert.doesNotMatch(await nftTables(), /portcullis_conn/, "the block is lifted");
      assert.ok((await notifications()).some((n) => n.type === "strict_enforcement_lifted"));
    });

    await step("logout with strict enforcement: blocked again, the edge reachable", async () => {
      const started = Date.now();
      const r = await logout();
      assert.deepEqual(r, { ok: true, state: "unenrolled" });
      timings.logoutToBlockedMs = Date.now() - started;
      const s = await status();
      assert.equal(s.blockedUntil, "login");
      assert.equal(s.description, "Traffic blocked until you log in again (strict enforcement)");
      assert.equal(await seenFrom(), null, "the internet is blocked");
      assert.equal(await pings(INET), false);
      assert.ok(await edgeReachable(), "the edge API and bootstrap stay reachable");
      const told = (await notifications()).find((n) =>
        n.type === "strict_enforcement" && /log in again/.test(n.message)
      );
      assert.ok(told);
    });

    await step("SIGTERM removes the block", async () => {
      const started = Date.now();
      const code = await terminate(proc!);
      timings.sigtermExitMs = Date.now() - started;
      assert.equal(code, 0);
      assert.doesNotMatch(await nftTables(), /portcullis_conn/, "no table left behind");
      assert.equal(await seenFrom(), CONN, "traffic flows again, direct");
    });

    await step("strict enforcement off in the policy: logout leaves traffic alone", async () => {
      await putProfile(false);
      proc = connect();
      await waitUntil("traffic through the edge", async () => (await seenFrom(1)) === EDGE, 25_000);
      assert.equal((await status()).strictEnforcement, false, "the policy decides");
      const r = await logout();
      assert.deepEqual(r, { ok: true, state: "unenrolled" });
      const s = await status();
      assert.equal(s.blockedUntil, null);
      assert.equal(s.description, "Not enrolled");
      assert.equal(await seenFrom(), CONN, "direct: the server sees the connector itself");
      assert.doesNotMatch(await nftTables(), /portcullis_conn/);
      assert.equal(await terminate(proc), 0);
    });

    timings.totalMs = Date.now() - t0;
    console.log(`strict enforcement timings (ms): ${JSON.stringify(timings)}`);
  },
});
