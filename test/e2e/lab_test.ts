/**
 * The whole system, end to end, in the lab's namespaces (issue 4):
 * - traffic from the workstation and from a LAN host behind the gateway box
 *   reaches the internet server from the edge's address;
 * - "am I protected" says yes for both, naming the device;
 * - the edge lists both devices with bytes counted;
 * - the edge restarts and the connectors are back within 10 s without
 *   enrolling again;
 * - a copied connector data directory on another machine does not
 *   impersonate the first device, which keeps working;
 * - private access (rules, FQDN segments, client-to-client) is tested in
 *   access_test.ts, in namespaces of its own;
 * - `lab down` leaves no namespace, interface, nftables table or process.
 *
 * The lab uses fixed namespace names (pcl-*), so this file must not run
 * beside another lab.
 */
import assert from "node:assert/strict";
import { canUseNetns, sh, waitUntil } from "./netns.ts";
import { labDown, labUp } from "../../src/lab/mod.ts";
import { ADDR, NS, TUN } from "../../src/lab/topology.ts";
import { totpAt } from "../../src/identity/totp.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function inNs(
  ns: string,
  cmd: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return await sh(["ip", "netns", "exec", ns, ...cmd], { check: false });
}

async function curl(ns: string, url: string, json = false, maxTimeSec = 5): Promise<string> {
  const args = ["curl", "-sS", "--max-time", String(maxTimeSec)];
  if (json) args.push("-H", "Accept: application/json");
  const r = await inNs(ns, [...args, url]);
  if (json && r.stdout.trim() === "") {
    // Say why, with what the namespace resolves through: an empty body is
    // otherwise only "Unexpected end of JSON input".
    const rc = await Deno.readTextFile(`/etc/netns/${ns}/resolv.conf`).catch((e) => String(e));
    throw new Error(`curl ${url} in ${ns}: exit ${r.code}, ${r.stderr.trim()}; resolv.conf: ${rc}`);
  }
  return r.stdout;
}

/** Logs in to the edge admin API inside pcl-edge and returns a curl runner with the session. */
async function adminApi(dir: string) {
  const text = await Deno.readTextFile(`${dir}/edge/initial-admin.txt`);
  const password = text.match(/password: (\S+)/)![1];
  const secret = text.match(/totp secret: (\S+)/)![1];
  const jar = `${dir}/admin-cookies.txt`;
  const base = `https://${ADDR.edge}:8443`;
  const ca = `${dir}/edge/ca/ca.crt`;
  const login = await inNs(NS.edge, [
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
    `${base}/api/v1/auth/login`,
  ]);
  const csrf = JSON.parse(login.stdout).csrfToken as string;
  assert.ok(csrf, `login: ${login.stdout}`);
  return async (path: string, method = "GET", body?: unknown) => {
    const data = body === undefined
      ? []
      : ["-H", "Content-Type: application/json", "-d", JSON.stringify(body)];
    const r = await inNs(NS.edge, [
      "curl",
      "-s",
      "--cacert",
      ca,
      "-b",
      jar,
      "-X",
      method,
      "-H",
      `X-CSRF-Token: ${csrf}`,
      ...data,
      `${base}${path}`,
    ]);
    return JSON.parse(r.stdout);
  };
}

Deno.test({
  name: "lab: both connectors tunnel through the edge; restart, clone and teardown behave",
  ignore: !canUseNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "pclab" });
    const lines: string[] = [];
    try {
      await labUp({ dir, print: (l) => lines.push(l) });
      assert.ok(lines.join("\n").includes("The Portcullis lab is up"));

      await t.step(
        "internet sees the edge's address from the workstation and the LAN host",
        async () => {
          assert.match(
            await curl(NS.ws, "http://www.example.test/"),
            /You came from 192\.0\.2\.1\./,
          );
          assert.match(await curl(NS.lan, `http://${ADDR.inet}/`), /You came from 192\.0\.2\.1\./);
          // Without the tunnel the server would see 198.51.100.10 / 203.0.113.10.
        },
      );

      await t.step("am I protected says yes for both, naming the device", async () => {
        const ws = JSON.parse(await curl(NS.ws, "http://protected.portcullis.internal/", true));
        assert.equal(ws.protected, true);
        assert.equal(ws.hostname, "workstation");
        const lan = JSON.parse(await curl(NS.lan, "http://protected.portcullis.internal/", true));
        assert.equal(lan.protected, true);
        assert.equal(lan.hostname, "branch-gw");
        const cli = await inNs(NS.ws, [Deno.execPath(), "run", "-A", MAIN, "check"]);
        assert.equal(cli.code, 0, cli.stdout + cli.stderr);
        assert.match(cli.stdout, /^Protected: .*device workstation/);
        // Off the tunnel, the same page says no.
        const direct = JSON.parse(await curl(NS.edge, `http://100.64.0.1/`, true));
        assert.equal(direct.protected, false);
      });

      await t.step("no command line in the lab holds the enrolment key", async () => {
        const state = JSON.parse(await Deno.readTextFile(`${dir}/state.json`));
        assert.equal((await Deno.stat(state.keyFile)).mode! & 0o777, 0o600);
        const key = (await Deno.readTextFile(state.keyFile)).trim();
        assert.match(key, /^pc1\./);
        // The lab's processes: those it recorded and everything in its namespaces
        // (other people's processes on this machine are none of this test's business).
        const pids = new Set(Object.values(state.pids as Record<string, number>).map(String));
        for (const ns of Object.values(NS)) {
          const r = await sh(["ip", "netns", "pids", ns], { check: false });
          for (const pid of r.stdout.split(/\s+/).filter(Boolean)) pids.add(pid);
        }
        const ps = await sh(["ps", "-eo", "pid=,args="]);
        const lab = ps.stdout.split("\n").map((l) => l.trim().match(/^(\d+)\s+(.*)$/))
          .filter((m): m is RegExpMatchArray => m !== null && pids.has(m[1]));
        assert.ok(lab.length >= 8, `the lab's processes are seen (${lab.length})`);
        assert.ok(lab.some((m) => / connect --key-file /.test(m[2])), "connectors read a key file");
        for (const [, pid, args] of lab) {
          assert.ok(!args.includes(key), `process ${pid} shows the key: ${args.slice(0, 120)}`);
          assert.doesNotMatch(
            args,
            /pc1\.[A-Za-z0-9_-]{16}/,
            `process ${pid}: ${args.slice(0, 120)}`,
          );
        }
      });

      await t.step("wg show (wireguard-tools) on every lab interface", async () => {
        const edgeKey = (await inNs(NS.edge, ["wg", "show", TUN.edge, "public-key"])).stdout.trim();
        assert.match(edgeKey, /^[A-Za-z0-9+/]{43}=$/, "the edge's interface answers");
        const edgePeers = (await inNs(NS.edge, ["wg", "show", TUN.edge, "peers"])).stdout;
        for (const [ns, tun] of [[NS.ws, TUN.ws], [NS.gw, TUN.gw]] as const) {
          const own = (await inNs(ns, ["wg", "show", tun, "public-key"])).stdout.trim();
          assert.ok(edgePeers.includes(own), `the edge has ${tun} of ${ns} as a peer`);
          const peers = (await inNs(ns, ["wg", "show", tun, "peers"])).stdout.trim();
          assert.equal(peers, edgeKey, `${tun}'s peer is the edge`);
        }
      });

      await t.step("the private app is reachable only through the edge", async () => {
        assert.match(await curl(NS.ws, `http://${ADDR.app}/`), /Private app.*198\.19\.0\.1/);
      });

      // One admin session for the whole test: a TOTP code is accepted once only.
      const api = await adminApi(dir);
      await t.step(
        "metrics: on the edge's loopback console only, not on the public API",
        async () => {
          const pub = await inNs(NS.ws, [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-k",
            `https://${ADDR.edge}:8443/metrics`,
          ]);
          assert.equal(pub.stdout, "404");
          const local = await inNs(NS.edge, ["curl", "-s", "http://127.0.0.1:8080/metrics"]);
          assert.match(local.stdout, /^# (HELP|TYPE) portcullis_/m);
        },
      );

      await t.step("the edge lists both devices with bytes counted", async () => {
        const body = await api("/api/v1/admin/devices");
        const devices = body.devices ?? body.items ?? body;
        const byName = new Map(devices.map((d: { hostname: string }) => [d.hostname, d]));
        for (const name of ["workstation", "branch-gw"]) {
          const d = byName.get(name) as {
            tunnel: { rxBytes: number; txBytes: number; state: string };
          };
          assert.ok(d, `device ${name} listed: ${JSON.stringify(body)}`);
          assert.ok(d.tunnel.rxBytes > 0 && d.tunnel.txBytes > 0, JSON.stringify(d.tunnel));
          assert.equal(d.tunnel.state, "up");
        }
      });

      await t.step(
        "a device disabled by the admin loses its tunnel within 5 s, and comes back",
        async () => {
          const body = await api("/api/v1/admin/devices");
          const devices = body.devices ?? body.items ?? body;
          const ws = devices.find((d: { hostname: string }) => d.hostname === "workstation");
          const started = Date.now();
          await api(`/api/v1/admin/devices/${ws.id}/disable`, "POST");
          const took = await waitUntil("the workstation's traffic to stop", async () => {
            const r = await inNs(NS.ws, [
              "curl",
              "-s",
              "--max-time",
              "1",
              `http://${ADDR.inet}/ip`,
            ]);
            return !r.stdout.includes(ADDR.edge);
          }, 10_000);
          assert.ok(Date.now() - started <= 5_000, `tunnel gone after ${took} ms`);
          // The gateway box is unaffected.
          assert.match(await curl(NS.lan, `http://${ADDR.inet}/ip`), /192\.0\.2\.1/);
          await api(`/api/v1/admin/devices/${ws.id}/enable`, "POST");
          await waitUntil("the workstation to be back", async () => {
            return (await curl(NS.ws, `http://${ADDR.inet}/ip`)).includes(ADDR.edge);
          }, 30_000);
        },
      );

      await t.step(
        "after an edge restart the connectors are back within 10 s, not re-enrolled",
        async () => {
          const state = JSON.parse(await Deno.readTextFile(`${dir}/state.json`));
          Deno.kill(state.pids.edge, "SIGTERM");
          await waitUntil("old edge to exit", () => {
            try {
              Deno.kill(state.pids.edge, "SIGCONT");
              return Promise.resolve(false);
            } catch {
              return Promise.resolve(true);
            }
          }, 15_000);
          const args = [
            MAIN,
            "edge",
            "--data-dir",
            `${dir}/edge`,
            "--public-host",
            ADDR.edge,
            "--tunnel-port",
            "443",
          ];
          const p = new Deno.Command("ip", {
            args: [
              "netns",
              "exec",
              NS.edge,
              "setsid",
              "sh",
              "-c",
              'exec "$@" >>"$0" 2>&1 </dev/null',
              `${dir}/edge.log`,
              Deno.execPath(),
              "run",
              "-A",
              ...args,
            ],
            stdin: "null",
            stdout: "null",
            stderr: "null",
          }).spawn();
          p.unref();
          state.pids.edge = p.pid;
          await Deno.writeTextFile(`${dir}/state.json`, JSON.stringify(state));
          // Short attempts, both at once: a 5 s curl stuck on the dead path
          // would add up to 5 s (twice) to the time measured.
          const took = await waitUntil("both connectors to pass traffic again", async () => {
            const [a, b] = await Promise.all([
              curl(NS.ws, `http://${ADDR.inet}/ip`, false, 1),
              curl(NS.lan, `http://${ADDR.inet}/ip`, false, 1),
            ]);
            return a.includes(ADDR.edge) && b.includes(ADDR.edge);
          }, 20_000);
          console.log(`edge restart: both connectors pass traffic again after ${took} ms`);
          assert.ok(took <= 10_000, `reconnected in ${took} ms`);
          const wsLog = await Deno.readTextFile(`${dir}/ws.log`);
          assert.equal((wsLog.match(/"event":"enrolled"/g) ?? []).length, 1, "enrolled only once");
        },
      );

      await t.step(
        "a copied data directory on another machine does not impersonate the device",
        async () => {
          // A second workstation with a different machine-id, holding a copy of the first one's data.
          const ns2 = "pcl-ws2";
          await sh(["ip", "netns", "add", ns2]);
          await Deno.mkdir(`/etc/netns/${ns2}`, { recursive: true });
          await Deno.writeTextFile(
            `/etc/netns/${ns2}/machine-id`,
            "0123456789abcdef0123456789abcdef\n",
          );
          await Deno.writeTextFile(`/etc/netns/${ns2}/resolv.conf`, `nameserver ${ADDR.inet}\n`);
          await sh(["ip", "link", "add", "pcltmp9a", "type", "veth", "peer", "name", "pcltmp9b"]);
          await sh(["ip", "link", "set", "pcltmp9a", "netns", NS.wan]);
          await sh(["ip", "link", "set", "pcltmp9b", "netns", ns2]);
          await sh(["ip", "-n", NS.wan, "addr", "add", "198.51.102.254/24", "dev", "pcltmp9a"]);
          await sh(["ip", "-n", NS.wan, "link", "set", "pcltmp9a", "up"]);
          await sh(["ip", "-n", ns2, "addr", "add", "198.51.102.10/24", "dev", "pcltmp9b"]);
          await sh(["ip", "-n", ns2, "link", "set", "pcltmp9b", "up"]);
          await sh(["ip", "-n", ns2, "link", "set", "lo", "up"]);
          await sh(["ip", "-n", ns2, "route", "add", "default", "via", "198.51.102.254"]);
          await sh(["cp", "-a", `${dir}/ws`, `${dir}/ws-copy`]);
          const state = JSON.parse(await Deno.readTextFile(`${dir}/state.json`));
          const copy = new Deno.Command("ip", {
            args: [
              "netns",
              "exec",
              ns2,
              "setsid",
              "sh",
              "-c",
              'exec "$@" >>"$0" 2>&1 </dev/null',
              `${dir}/ws-copy.log`,
              Deno.execPath(),
              "run",
              "-A",
              MAIN,
              "connect",
              "--key-file",
              state.keyFile,
              "--data-dir",
              `${dir}/ws-copy`,
              "--hostname",
              "workstation",
              "--tun-interface",
              "pcc2",
            ],
            stdin: "null",
            stdout: "null",
            stderr: "null",
          }).spawn();
          copy.unref();
          state.pids.wsCopy = copy.pid;
          await Deno.writeTextFile(`${dir}/state.json`, JSON.stringify(state));
          await waitUntil("the copy to come up as its own device", async () => {
            const s = await inNs(ns2, [
              "curl",
              "-s",
              "--max-time",
              "2",
              "http://127.0.0.1:9080/api/v1/status",
            ]);
            return /"state":"connected/.test(s.stdout);
          }, 30_000);
          const copyLog = await Deno.readTextFile(`${dir}/ws-copy.log`);
          assert.match(
            copyLog,
            /discarded|identity_replaced|Discarded/i,
            "the copy discarded the keys it found",
          );
          const mine = JSON.parse(await curl(ns2, "http://protected.portcullis.internal/", true));
          const orig = JSON.parse(await curl(NS.ws, "http://protected.portcullis.internal/", true));
          assert.equal(orig.protected, true);
          assert.notEqual(mine.device, orig.device, "the copy is a different device");
          assert.notEqual(mine.address, orig.address);
          assert.match(
            await curl(NS.ws, `http://${ADDR.inet}/`),
            /192\.0\.2\.1/,
            "the original keeps working",
          );
        },
      );
    } finally {
      await labDown({ dir, print: (l) => lines.push(l) });
    }
    // Nothing left behind.
    const ns = await sh(["ip", "netns", "list"]);
    assert.ok(!/pcl-/.test(ns.stdout), ns.stdout);
    const links = await sh(["ip", "-o", "link"]);
    assert.ok(!/pcl|pce0|pcc0|pcc1/.test(links.stdout), links.stdout);
    for (const name of Object.values(TUN)) {
      const sock = await Deno.lstat(`/var/run/wireguard/${name}.sock`).then(
        () => true,
        () => false,
      );
      assert.equal(sock, false, `no UAPI socket of ${name} left`);
    }
    const nft = await sh(["nft", "list", "tables"]);
    assert.ok(!/portcullis/.test(nft.stdout), nft.stdout);
    const ps = await sh(["ps", "-eo", "args"]);
    assert.ok(!ps.stdout.includes(dir), "no lab process left");
    const etc = await sh(["ls", "-A", "/etc/netns"], { check: false });
    assert.ok(!/pcl-/.test(etc.stdout), `/etc/netns left: ${etc.stdout}`);
  },
});
