/**
 * Zero-trust private access end to end (issue 11, the edge's half), in
 * namespaces of its own (the lab's topology, with names unique to this
 * process), observed at the private app server and at the clients:
 *
 *        ┌──────────── wan (router) ─────────────┐
 *      edge 192.0.2.1   ws 198.51.100.10   gw 203.0.113.10   inet 198.18.0.80 (web, DNS)
 *        │                (engineering)      (branch, gateway box)
 *      app 198.19.0.10 (private app :80)     lan 192.168.50.10 (behind gw)
 *
 * - a rule for machine group "engineering": the workstation reaches the
 *   app; the branch LAN host gets a TCP RST within 1 s; the decision log
 *   names the deciding rule for both;
 * - a segment inside 10.0.0.0/8 (excluded by default): the workstation's
 *   connector routes it into the tunnel and reaches the app through the edge;
 * - posture: a rule needing a profile that requires a file: refused while
 *   the file is missing, allowed within 5 s of its creation and refused
 *   within 5 s of its removal (the connector signs the facts, the edge
 *   judges them), each with its reason in the decision log;
 * - an FQDN segment (wiki.corp.internal): refused until a rule allows it,
 *   then reachable by name from the workstation only;
 * - client-to-client: a host-name pattern the workstation does not match
 *   keeps the gateway box out; once the name matches, it gets in;
 * - a pathological pattern (`^(a|aa)+$`, `^((a)+)+$`) with long host names
 *   delays neither an unrelated API request nor tunnel packets by 50 ms.
 * Each step leaves the policy as it found it (no segments, no rules,
 * client-to-client off).
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, sh, waitUntil } from "./netns.ts";
import { fingerprintHash } from "../../src/identity/secrets.ts";
import { totpAt } from "../../src/identity/totp.ts";
import { TEN_NAME } from "../../src/lab/topology.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const DENO = Deno.execPath();
const ADDR = {
  edge: "192.0.2.1",
  ws: "198.51.100.10",
  gw: "203.0.113.10",
  gwLan: "192.168.50.1",
  lan: "192.168.50.10",
  inet: "198.18.0.80",
  app: "198.19.0.10",
  /** The private app's second address, inside the default-excluded 10/8 (TEN_NAME's). */
  app10: TEN_NAME.address,
  edge10: "10.20.0.1",
} as const;
const WIKI_NAME = "wiki.corp.internal";

/** The namespaces and tunnel interfaces of one run. */
interface Topo {
  ns: { edge: string; ws: string; gw: string; lan: string };
  tun: { ws: string; gw: string };
}

/** Runs an admin API call inside the edge's namespace and returns the parsed body. */
type AdminApi = (path: string, method?: string, body?: unknown) => Promise<any>;

const inNs = (ns: string, cmd: string[]) =>
  sh(["ip", "netns", "exec", ns, ...cmd], { check: false });

/** curl's exit code and total time (s) for a GET, and the body. */
async function probe(ns: string, url: string, maxTime = 5) {
  const r = await inNs(ns, [
    "curl",
    "-s",
    "--max-time",
    String(maxTime),
    "-w",
    "\n%{exitcode} %{time_total}",
    url,
  ]);
  const lines = r.stdout.split("\n");
  const [code, time] = (lines.pop() ?? "").split(" ");
  return { code: Number(code), seconds: Number(time), body: lines.join("\n") };
}

const reached = async (ns: string, url: string) =>
  /Private app behind the edge/.test((await probe(ns, url, 2)).body);

/** Refused fast: curl's "Could not connect" (7), i.e. a RST, not a timeout. */
async function refusedFast(ns: string, url: string): Promise<number> {
  const p = await probe(ns, url, 5);
  assert.equal(
    p.code,
    7,
    `expected a refused connection from ${ns} to ${url}, got ${JSON.stringify(p)}`,
  );
  return p.seconds;
}

/**
 * One TCP connection from `ns` to host:port that asks for "/" every 100 ms
 * over keep-alive; `broken(ms)` waits until it fails (the edge re-decided the
 * established flow and refused it) and says when.
 */
async function heldConnection(ns: string, host: string, port: number) {
  const script = `
    const c = await Deno.connect({ hostname: ${JSON.stringify(host)}, port: ${port} });
    const buf = new Uint8Array(65536);
    const req = new TextEncoder().encode("GET / HTTP/1.1\\r\\nHost: app\\r\\n\\r\\n");
    for (;;) {
      try {
        await c.write(req);
        const n = await Promise.race([
          c.read(buf),
          new Promise((_, no) => setTimeout(() => no(new Error("no answer in 1 s")), 1000)),
        ]);
        if (n === null) throw new Error("closed");
        console.log("ok");
      } catch (e) {
        console.log("error " + e.message);
        Deno.exit(0);
      }
      await new Promise((r) => setTimeout(r, 100));
    }`;
  const p = new Deno.Command("ip", {
    args: ["netns", "exec", ns, DENO, "eval", script],
    stdout: "piped",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const lines: { text: string; at: number }[] = [];
  let ended = false;
  const reading = (async () => {
    const dec = new TextDecoder();
    let rest = "";
    for await (const chunk of p.stdout) {
      rest += dec.decode(chunk, { stream: true });
      const parts = rest.split("\n");
      rest = parts.pop()!;
      lines.push(...parts.map((text) => ({ text, at: Date.now() })));
    }
    ended = true;
  })();
  const h = {
    get answered() {
      return lines.filter((l) => l.text === "ok").length;
    },
    /** Waits until the connection failed; returns when it did (wall ms). */
    async broken(ms: number): Promise<number> {
      const failed = () => lines.find((l) => l.text.startsWith("error"));
      await waitUntil(
        "the open connection to be refused",
        () => Promise.resolve(!!failed() || ended),
        Math.max(ms, 100),
      );
      return failed()?.at ?? Date.now();
    },
    async [Symbol.asyncDispose]() {
      try {
        p.kill("SIGKILL");
      } catch { /* already gone */ }
      await p.status;
      await reading;
    },
  };
  await waitUntil(
    "the held connection to be answered",
    () => Promise.resolve(h.answered > 0),
    5_000,
  );
  return h;
}

async function deviceId(api: AdminApi, hostname: string): Promise<string> {
  const { devices } = await api("/api/v1/admin/devices");
  const d = devices.find((x: { hostname: string }) => x.hostname === hostname);
  assert.ok(d, `device ${hostname} listed`);
  return d.id;
}

async function tunnelAddress(ns: string, dev: string): Promise<string> {
  const out = (await inNs(ns, ["ip", "-4", "-o", "addr", "show", dev])).stdout;
  return out.match(/inet ([\d.]+)\//)![1];
}

async function clearPolicy(api: AdminApi): Promise<void> {
  await api("/api/v1/admin/policy/access-rules", "PUT", { items: [] });
  await api("/api/v1/admin/policy/posture-profiles", "PUT", { items: [] });
  await api("/api/v1/admin/policy/segments", "PUT", { items: [] });
  await api("/api/v1/admin/policy/client-to-client", "PUT", { enabled: false });
}

/** The private app as a segment (TCP 80 at its address). */
const PRIVATE_APP = {
  name: "private-app",
  cidrs: [`${ADDR.app}/32`],
  ports: ["80"],
  protocols: ["tcp"],
};

/** The private-access steps. */
async function accessSteps(
  t: Deno.TestContext,
  o: { dir: string; api: AdminApi; key: string; topo: Topo },
): Promise<boolean> {
  const { api } = o;
  const NS = o.topo.ns;
  const app = `http://${ADDR.app}/`;
  let ok = true;
  const step = async (name: string, fn: () => Promise<void>) => {
    if (!(await t.step(name, fn))) ok = false;
    await clearPolicy(api);
  };

  await step(
    "group rule: engineering reaches the app, the branch LAN host gets a RST within 1 s",
    async () => {
      await api("/api/v1/admin/policy/segments", "PUT", { items: [PRIVATE_APP] });
      await api("/api/v1/admin/policy/access-rules", "PUT", {
        items: [
          {
            name: "engineering app",
            ruleOrder: 1,
            segments: ["private-app"],
            machineGroups: ["engineering"],
          },
          { name: "others blocked", ruleOrder: 2, action: "deny", segments: ["private-app"] },
        ],
      });
      await waitUntil("the workstation to reach the app", () => reached(NS.ws, app), 10_000);
      await waitUntil(
        "the LAN host to be refused",
        async () => (await probe(NS.lan, app, 2)).code === 7,
        10_000,
      );
      const seconds = await refusedFast(NS.lan, app);
      assert.ok(seconds < 1, `RST after ${seconds} s`);
      // The workstation's console shows the segment allowed for it, from the edge's bundle.
      await waitUntil("the connector console to list the segment as allowed", async () => {
        const page = await inNs(NS.ws, [
          "curl",
          "-s",
          "--max-time",
          "2",
          "http://127.0.0.1:9080/fragments/segments",
        ]);
        return /data-segment="private-app" data-state="allowed"/.test(page.stdout);
      }, 10_000);
      const ws = await deviceId(api, "workstation"), gw = await deviceId(api, "branch-gw");
      await waitUntil("both decisions in the log", async () => {
        const a = (await api(`/api/v1/admin/decisions?device=${ws}&verdict=allow`)).decisions;
        const d = (await api(`/api/v1/admin/decisions?device=${gw}&verdict=deny`)).decisions;
        return a.some((x: { rule: string }) => x.rule === "engineering app") &&
          d.some((x: { rule: string; reason: string }) =>
            x.rule === "others blocked" && /denies device "branch-gw"/.test(x.reason)
          );
      }, 5_000);
    },
  );

  await step(
    "posture: a required file gates the app; created → allowed within 5 s, removed → denied within 5 s (an open connection too)",
    async () => {
      // The workstation's connector reads this host's file system (namespaces share it).
      const marker = `${o.dir}/ws-posture-marker`;
      await Deno.remove(marker).catch(() => {});
      await api("/api/v1/admin/policy/segments", "PUT", { items: [PRIVATE_APP] });
      await api("/api/v1/admin/policy/posture-profiles", "PUT", {
        items: [{ name: "marker-present", checks: [{ type: "file_exists", path: marker }] }],
      });
      await api("/api/v1/admin/policy/access-rules", "PUT", {
        items: [{
          name: "app with marker",
          segments: ["private-app"],
          machineGroups: ["engineering"],
          postureProfiles: ["marker-present"],
        }],
      });
      const ws = await deviceId(api, "workstation");
      const refused = async () => (await probe(NS.ws, app, 2)).code === 7;
      /** Some decision of the workstation since `since` with `verdict` whose reason matches. */
      let seen: string[] = [];
      const logged = (verdict: "allow" | "deny", reason: RegExp, since: number) => async () => {
        const d = (await api(`/api/v1/admin/decisions?device=${ws}&verdict=${verdict}`)).decisions;
        seen = d.map((x: { reason: string; at: string }) => `${x.at} ${x.reason}`).slice(0, 5);
        return d.some((x: { reason: string; at: string }) =>
          Date.parse(x.at) >= since - 1000 && reason.test(x.reason)
        );
      };
      // The log is flushed every 500 ms; a loaded CI machine has been seen to need more than 5 s.
      const inLog = (what: string, check: () => Promise<boolean>, ms = 10_000) =>
        waitUntil(what, check, ms).catch(async (e) => {
          const p = (await api(`/api/v1/admin/devices/${ws}`)).posture;
          throw new Error(
            `${e.message}; the log has: ${seen.join(" | ")}; posture: ${JSON.stringify(p)}`,
          );
        });
      const missing = new RegExp(
        `needs posture "marker-present", device reports ${marker.replaceAll("/", "\\/")} missing`,
      );
      // The first report may predate the profile (facts "not collected"): the
      // connector reports again on the new policy, and a new attempt logs the file.
      let since = Date.now();
      await inLog(
        "the app refused with the missing file as the reason",
        async () => (await refused()) && (await logged("deny", missing, since)()),
        15_000,
      );

      // Created: the connector sees it within its 2 s look, signs, the edge re-judges.
      await Deno.writeTextFile(marker, "present\n");
      since = Date.now();
      await waitUntil(
        "the app to be reached after the file appeared",
        () => reached(NS.ws, app),
        5_000,
      );
      const allowedAfter = Date.now() - since;
      await inLog(
        "the allow in the decision log",
        logged("allow", /^allowed: rule "app with marker"/, since),
      );
      const detail = await api(`/api/v1/admin/devices/${ws}`);
      assert.deepEqual(
        detail.posture.results.map((r: { check: string; passed: boolean; actual: string }) => [
          r.passed,
          r.actual,
        ]),
        [[true, `${marker} exists`]],
        "the edge's own evaluation, expected vs actual",
      );

      // Removed: denied again within 5 s, the connection already open included.
      await using held = await heldConnection(NS.ws, ADDR.app, 80);
      await Deno.remove(marker);
      since = Date.now();
      await waitUntil("the app to be refused after the file went", refused, 5_000);
      const deniedAfter = Date.now() - since;
      const cut = (await held.broken(5_000 - (Date.now() - since))) - since;
      assert.ok(cut < 5_000, `the open connection was cut after ${cut} ms`);
      await inLog("the new denial in the decision log", logged("deny", missing, since));
      console.log(
        `posture: allowed ${allowedAfter} ms after creation, denied ${deniedAfter} ms after removal, open connection cut after ${cut} ms (${held.answered} answers before)`,
      );
    },
  );

  await step(
    "a segment inside the default-excluded 10/8 is routed into the tunnel and reachable",
    async () => {
      const url = `http://${ADDR.app10}/`;
      const viaTunnel = async () =>
        new RegExp(`dev ${o.topo.tun.ws}\\b`).test(
          (await inNs(NS.ws, ["ip", "-4", "route", "get", ADDR.app10])).stdout,
        );
      // Before: 10/8 is excluded, so the address goes to the local network (nothing there).
      assert.equal(await viaTunnel(), false, "10.20.0.10 is not routed into the tunnel yet");
      assert.notEqual((await probe(NS.ws, url, 1)).code, 0, "unreachable outside the tunnel");
      await api("/api/v1/admin/policy/segments", "PUT", {
        items: [{
          name: "ten-net",
          cidrs: [`${ADDR.app10}/32`],
          ports: ["80"],
          protocols: ["tcp"],
        }],
      });
      await api("/api/v1/admin/policy/access-rules", "PUT", {
        items: [{
          name: "ten for engineering",
          segments: ["ten-net"],
          machineGroups: ["engineering"],
        }],
      });
      await waitUntil("the connector to route the segment into its tunnel", viaTunnel, 15_000);
      // Observed at the server: the request arrived from the edge's side of the app network.
      await waitUntil(
        "the workstation to reach the app at 10.20.0.10",
        async () => (await probe(NS.ws, url, 2)).body.includes(`You came from ${ADDR.edge10}`),
        10_000,
      );
      const ws = await deviceId(api, "workstation");
      await waitUntil("the allow in the decision log", async () => {
        const d = (await api(`/api/v1/admin/decisions?device=${ws}&rule=ten%20for%20engineering`))
          .decisions;
        return d.some((x: { dst: string }) => x.dst === ADDR.app10);
      }, 5_000);
    },
  );

  await step(
    "an FQDN segment resolving inside 10/8: the edge DNS answer is routed into the tunnel",
    async () => {
      const url = `http://${TEN_NAME.name}/`;
      const viaTunnel = async () =>
        new RegExp(`dev ${o.topo.tun.ws}\\b`).test(
          (await inNs(NS.ws, ["ip", "-4", "route", "get", TEN_NAME.address])).stdout,
        );
      // The CIDR step's routes are gone with its policy.
      await waitUntil(
        "10.20.0.10 to leave the tunnel routes",
        async () => !(await viaTunnel()),
        15_000,
      );
      await api("/api/v1/admin/policy/segments", "PUT", {
        items: [{
          name: "ten-by-name",
          domains: [TEN_NAME.name],
          ports: ["80"],
          protocols: ["tcp"],
        }],
      });
      await api("/api/v1/admin/policy/access-rules", "PUT", {
        items: [{ name: "ten name", segments: ["ten-by-name"], machineGroups: ["engineering"] }],
      });
      // The connector learns the name is the edge's (its bundle) and sends the query there; the
      // answer's address gets its host route before curl connects.
      await waitUntil(
        "the workstation to reach the app by name at 10.20.0.10",
        async () => (await probe(NS.ws, url, 2)).body.includes(`You came from ${ADDR.edge10}`),
        15_000,
      );
      assert.ok(await viaTunnel(), "a host route through the tunnel");
      assert.match(
        (await inNs(NS.ws, ["ip", "-4", "route", "show", "dev", o.topo.tun.ws])).stdout,
        /^10\.20\.0\.10 /m,
      );
    },
  );

  await step(
    "FQDN segment: wiki.corp.internal resolves through the edge and is reachable only under the rule",
    async () => {
      const url = `http://${WIKI_NAME}/`;
      await api("/api/v1/admin/policy/segments", "PUT", {
        items: [{ name: "wiki", domains: [WIKI_NAME], ports: ["80"] }],
      });
      // No rule yet: the edge resolved the name itself, so its address is private for everyone.
      await waitUntil(
        "the wiki to be refused without a rule",
        async () => (await probe(NS.ws, url, 2)).code === 7,
        10_000,
      );
      await api("/api/v1/admin/policy/access-rules", "PUT", {
        items: [{
          name: "wiki for engineering",
          segments: ["wiki"],
          machineGroups: ["engineering"],
        }],
      });
      await waitUntil(
        "the workstation to reach the wiki by name",
        () => reached(NS.ws, url),
        15_000,
      );
      const seconds = await refusedFast(NS.lan, url);
      assert.ok(seconds < 1, `RST after ${seconds} s`);
      const ws = await deviceId(api, "workstation");
      await waitUntil("the decision names the wiki", async () => {
        const d = (await api(`/api/v1/admin/decisions?device=${ws}&rule=wiki%20for%20engineering`))
          .decisions;
        return d.some((x: { name: string; segments: string[] }) =>
          x.name === WIKI_NAME && x.segments.includes("wiki")
        );
      }, 5_000);
    },
  );

  await step(
    "client-to-client: only to a device whose host name matches, only under a rule",
    async () => {
      const wsAddr = await tunnelAddress(NS.ws, o.topo.tun.ws);
      const ping = async () =>
        (await inNs(NS.gw, ["ping", "-c", "1", "-W", "1", wsAddr])).code === 0;
      await api("/api/v1/admin/policy/segments", "PUT", {
        items: [{ name: "peers", domains: ["*.clients.portcullis.internal"] }],
      });
      await api("/api/v1/admin/policy/access-rules", "PUT", {
        items: [{ name: "branch to peers", segments: ["peers"], machineGroups: ["branch"] }],
      });
      await api("/api/v1/admin/policy/client-to-client", "PUT", {
        enabled: true,
        hostnameRegex: "^branch-gw\\.",
      });
      // No restart: the connector registers its name as soon as the policy
      // turns client-to-client on (and again whenever the pattern changes).
      const ws = await deviceId(api, "workstation");
      await waitUntil("the workstation's name to be refused", async () => {
        const d = await api(`/api/v1/admin/devices/${ws}`);
        return d.clientToClient?.valid === false && /does not match/.test(d.clientToClient.reason);
      }, 20_000);
      const connectorSays = async () =>
        JSON.parse(
          (await inNs(NS.ws, [
            "curl",
            "-s",
            "--max-time",
            "2",
            "http://127.0.0.1:9080/api/v1/status",
          ]))
            .stdout,
        ).clientToClient;
      // The connector's "Valid Hostname" is the edge's answer, not its own guess.
      assert.equal((await connectorSays())?.valid, false, "the connector shows the refusal");
      assert.equal(await ping(), false, "the gateway box cannot reach the workstation");
      await api("/api/v1/admin/policy/client-to-client", "PUT", { enabled: true });
      await waitUntil(
        "the name to be valid under the new pattern",
        async () => (await api(`/api/v1/admin/devices/${ws}`)).clientToClient?.valid === true,
        5_000,
      );
      await waitUntil(
        "the connector to show the name valid",
        async () => (await connectorSays())?.valid === true,
        5_000,
      );
      await waitUntil("the gateway box to reach the workstation", ping, 10_000);
      // And not the other way round: no rule lets engineering reach peers.
      const gwAddr = await tunnelAddress(NS.gw, o.topo.tun.gw);
      assert.notEqual((await inNs(NS.ws, ["ping", "-c", "1", "-W", "1", gwAddr])).code, 0);
    },
  );

  await step(
    "a pathological host-name pattern delays neither the API nor the tunnel by 50 ms",
    async () => {
      const ca = `${o.dir}/edge/ca/ca.crt`;
      const base = `https://${ADDR.edge}:8443/api/v1`;
      const curlJson = (args: string[]) =>
        inNs(NS.ws, [
          "curl",
          "-s",
          "--max-time",
          "5",
          "--cacert",
          ca,
          "-w",
          "\n%{time_total}",
          ...args,
        ]);
      // A throwaway device of our own, enrolled with the lab key, registers the names.
      const fingerprint = {
        machineId: crypto.randomUUID().replaceAll("-", ""),
        macs: ["02:00:00:00:00:aa"],
      };
      const key32 = () => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
      const enrol = await curlJson([
        "-H",
        "Content-Type: application/json",
        "-d",
        JSON.stringify({
          key: o.key,
          hostname: "stall-probe",
          os: "linux",
          osVersion: "test",
          connectorVersion: "0.1.0",
          fingerprint,
          wgPublicKey: key32(),
          signingPublicKey: key32(),
        }),
        `${base}/enroll`,
      ]);
      const cred = JSON.parse(enrol.stdout.split("\n")[0]).credential as string;
      assert.ok(cred, enrol.stdout);
      const register = (fqdn: string) =>
        curlJson([
          "-H",
          "Content-Type: application/json",
          "-H",
          `Authorization: Bearer ${cred}`,
          "-H",
          `X-Device-Fingerprint: ${fingerprintHash(fingerprint)}`,
          "-d",
          JSON.stringify({ fqdn }),
          `${base}/c2c/register`,
        ]);
      // An unrelated API request on the edge's plain-HTTP console listener
      // (from its own host): the time to its answer is the edge's, not TLS's
      // (a TLS 1.3 session ticket left unacknowledged can hold a response
      // 40 ms behind Nagle's algorithm, busy edge or not).
      const health = async () => {
        const r = await inNs(NS.edge, [
          "curl",
          "-s",
          "-o",
          "/dev/null",
          "--max-time",
          "5",
          "-w",
          "%{time_total} %{exitcode}",
          "http://127.0.0.1:8080/api/v1/health",
        ]);
        const [total, code] = r.stdout.split(" ").map(Number);
        return code === 0 ? total : 5;
      };
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
      const healthRun = async (n: number) => {
        const out: number[] = [];
        for (let i = 0; i < n; i++) out.push(await health());
        return out;
      };
      const long = [63, 63, 63, 61].map((n) => "a".repeat(n)).join(".");
      const names = [long, `${"a".repeat(62)}b.${long.slice(64)}`, `${long.slice(0, 200)}.aaaab`];
      /**
       * Pings through the tunnel every 10 ms while names are judged one after
       * another and unrelated API requests come in; returns the median API
       * time to first byte (s) and the upper quartile of ping times (ms). A backtracking engine
       * holds the edge's one thread for seconds on the first name: pings are
       * lost and the API requests wait that long.
       */
      const measure = async (pattern: string) => {
        await api("/api/v1/admin/policy/client-to-client", "PUT", {
          enabled: true,
          hostnameRegex: pattern,
        });
        const pinging = inNs(NS.ws, ["ping", "-c", "150", "-i", "0.01", "-W", "1", "100.64.0.1"]);
        const registering = (async () => {
          const out = [];
          for (let i = 0; i < 9; i++) out.push(await register(names[i % names.length]));
          return out;
        })();
        const [regs, during, p] = await Promise.all([registering, healthRun(9), pinging]);
        for (const r of regs) {
          const [body, time] = r.stdout.split("\n");
          assert.equal(JSON.parse(body).valid, false, body);
          assert.ok(Number(time) < 1, `${pattern}: a registration took ${time} s`);
        }
        assert.match(p.stdout, / 0% packet loss/, `${pattern}: ${p.stdout.slice(-300)}`);
        const rtts = [...p.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]))
          .sort((a, b) => a - b);
        // The upper quartile: the odd packet a loaded machine delays stays out,
        // a thread held by a regex for more than a moment does not.
        return { api: median(during), apiAll: during, ping: rtts[Math.floor(rtts.length * 0.75)] };
      };
      // The reference: the same load with the default, harmless pattern, so
      // what a busy machine adds is in both and only the pattern differs. A
      // stall is deterministic — a backtracking engine holds the thread on
      // every round — while the load of a shared machine comes and goes: a
      // round that fails is measured again (reference first), up to three
      // rounds, and one clean round passes.
      const round = async () => {
        const ref = await measure("^[a-z0-9-]+\\.clients\\.portcullis\\.internal$");
        const faults: string[] = [];
        for (const pattern of ["^(a|aa)+$", "^((a)+)+$"]) {
          const m = await measure(pattern);
          if (m.api - ref.api >= 0.05) {
            faults.push(
              `${pattern}: API requests took ${
                m.apiAll.join(", ")
              } s (reference median ${ref.api} s)`,
            );
          }
          if (m.ping - ref.ping >= 50) {
            faults.push(
              `${pattern}: tunnel packets waited ${m.ping} ms (upper quartile; reference ${ref.ping} ms)`,
            );
          }
        }
        return faults;
      };
      const seen: string[][] = [];
      for (let i = 0; i < 3; i++) {
        const faults = await round();
        seen.push(faults);
        if (faults.length === 0) break;
      }
      assert.ok(
        seen.at(-1)!.length === 0,
        seen.map((f, i) => `round ${i + 1}: ${f.join("; ")}`).join("\n"),
      );
      const id = await deviceId(api, "stall-probe");
      await api(`/api/v1/admin/devices/${id}`, "DELETE");
    },
  );
  return ok;
}

Deno.test({
  name: "private access: rules, FQDN segments, client-to-client and the regex stall, end to end",
  ignore: !canUseNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await using lab = new NetnsLab("acc");
    const dir = await Deno.makeTempDir({ prefix: "pcacc" });
    lab.defer(() => Deno.remove(dir, { recursive: true }));
    let failed = false;
    lab.defer(async () => {
      if (!failed) return;
      for (const f of ["edge.log", "ws.log", "gw.log"]) {
        const text = await Deno.readTextFile(`${dir}/${f}`).catch(() => "");
        console.error(
          `----- ${f} (last 40 lines) -----\n${text.split("\n").slice(-40).join("\n")}`,
        );
      }
    });

    // ---- topology (the lab's, with this run's names) ---------------------
    const wan = await lab.ns("wan"), edge = await lab.ns("edge"), inet = await lab.ns("inet");
    const app = await lab.ns("app"), ws = await lab.ns("ws"), gw = await lab.ns("gw");
    const lan = await lab.ns("lan");
    const resolvers: [string, string][] = [[edge, ADDR.inet], [ws, ADDR.inet], [gw, ADDR.inet], [
      lan,
      ADDR.gwLan,
    ]];
    for (const [ns, resolver] of resolvers) {
      const etc = `/etc/netns/${ns}`;
      await Deno.mkdir(etc, { recursive: true });
      lab.defer(() => Deno.remove(etc, { recursive: true }));
      // Each namespace is its own machine: its own machine-id (device fingerprint).
      const id = Array.from(
        crypto.getRandomValues(new Uint8Array(16)),
        (b) => b.toString(16).padStart(2, "0"),
      ).join("");
      await Deno.writeTextFile(`${etc}/machine-id`, `${id}\n`);
      await Deno.writeTextFile(`${etc}/resolv.conf`, `nameserver ${resolver}\n`);
    }
    await lab.link(wan, "192.0.2.254/24", edge, `${ADDR.edge}/24`, "edge0");
    await lab.link(wan, "198.51.100.254/24", ws, `${ADDR.ws}/24`, "ws0");
    await lab.link(wan, "203.0.113.254/24", gw, `${ADDR.gw}/24`, "gw0");
    await lab.link(wan, "198.18.0.254/24", inet, `${ADDR.inet}/24`, "inet0");
    await lab.link(edge, "198.19.0.1/24", app, `${ADDR.app}/24`, "app0");
    await lab.link(gw, `${ADDR.gwLan}/24`, lan, `${ADDR.lan}/24`, "lan0");
    await lab.exec(edge, ["ip", "addr", "add", `${ADDR.edge10}/24`, "dev", "app0"]);
    await lab.exec(app, ["ip", "addr", "add", `${ADDR.app10}/24`, "dev", "app0"]);
    for (const ns of [wan, edge, gw]) {
      await lab.exec(ns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    }
    for (
      const [ns, via] of [
        [edge, "192.0.2.254"],
        [ws, "198.51.100.254"],
        [gw, "203.0.113.254"],
        [inet, "198.18.0.254"],
        [app, "198.19.0.1"],
        [lan, ADDR.gwLan],
      ]
    ) await lab.exec(ns, ["ip", "route", "add", "default", "via", via]);

    // ---- services ---------------------------------------------------------
    const detached = (ns: string, log: string, cmd: string[]) =>
      lab.spawn(ns, ["sh", "-c", 'exec "$@" >>"$0" 2>&1 </dev/null', `${dir}/${log}`, ...cmd]);
    const tag = `${Deno.pid % 10000}`;
    const topo: Topo = {
      ns: { edge, ws, gw, lan },
      tun: { ws: `pcaw${tag}`, gw: `pcag${tag}` },
    };
    detached(inet, "inet.log", [DENO, "run", "-A", MAIN, "lab", "_internet"]);
    detached(app, "app.log", [DENO, "run", "-A", MAIN, "lab", "_app"]);
    const edgeArgs = [
      "--data-dir",
      `${dir}/edge`,
      "--public-host",
      ADDR.edge,
      "--tunnel-port",
      "443",
      "--tun-interface",
      `pcae${tag}`,
    ];
    detached(edge, "edge.log", [DENO, "run", "-A", MAIN, "edge", ...edgeArgs]);
    const ca = `${dir}/edge/ca/ca.crt`;
    await waitUntil(
      "the edge API",
      async () =>
        (await inNs(edge, [
          "curl",
          "-sf",
          "--max-time",
          "2",
          "--cacert",
          ca,
          `https://${ADDR.edge}:8443/api/v1/health`,
        ]))
          .code === 0,
      40_000,
    );
    // Keys go to files (mode 0600), never onto a command line where ps shows them.
    const keyFor = async (group: string) => {
      const file = `${dir}/${group}.key`;
      await lab.exec(edge, [
        DENO,
        "run",
        "-A",
        MAIN,
        "edge",
        "key",
        "create",
        ...edgeArgs,
        "--reusable",
        "--group",
        group,
        "--key-file",
        file,
      ]);
      return file;
    };
    const engKey = await keyFor("engineering"), branchKey = await keyFor("branch");
    detached(ws, "ws.log", [
      DENO,
      "run",
      "-A",
      MAIN,
      "connect",
      "--key-file",
      engKey,
      "--data-dir",
      `${dir}/ws`,
      "--hostname",
      "workstation",
      "--tun-interface",
      topo.tun.ws,
    ]);
    detached(gw, "gw.log", [
      DENO,
      "run",
      "-A",
      MAIN,
      "connect",
      "--key-file",
      branchKey,
      "--data-dir",
      `${dir}/gw`,
      "--hostname",
      "branch-gw",
      "--gateway",
      "--lan-dns-listen",
      `${ADDR.gwLan}:53`,
      "--tun-interface",
      topo.tun.gw,
    ]);
    for (const ns of [ws, gw]) {
      await waitUntil(`the connector in ${ns} to connect`, async () => {
        const r = await inNs(ns, [
          "curl",
          "-s",
          "--max-time",
          "2",
          "http://127.0.0.1:9080/api/v1/status",
        ]);
        return /"state":"connected/.test(r.stdout);
      }, 45_000);
    }

    // ---- admin API --------------------------------------------------------
    const admin = await Deno.readTextFile(`${dir}/edge/initial-admin.txt`);
    const password = admin.match(/password: (\S+)/)![1];
    const secret = admin.match(/totp secret: (\S+)/)![1];
    const jar = `${dir}/cookies.txt`;
    const base = `https://${ADDR.edge}:8443`;
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
      `${base}/api/v1/auth/login`,
    ]);
    const csrf = JSON.parse(login.stdout).csrfToken as string;
    assert.ok(csrf, `login: ${login.stdout}`);
    const api: AdminApi = async (path, method = "GET", body) => {
      const data = body === undefined
        ? []
        : ["-H", "Content-Type: application/json", "-d", JSON.stringify(body)];
      const r = await inNs(edge, [
        "curl",
        "-sS",
        "--max-time",
        "10",
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
      // Say what went wrong rather than "Unexpected end of JSON input".
      try {
        return JSON.parse(r.stdout);
      } catch {
        throw new Error(
          `${method} ${path}: curl exit ${r.code}, ${r.stderr.trim() || "no error"}, body "${
            r.stdout.slice(0, 200)
          }"`,
        );
      }
    };
    // Sanity: with no segments, the private app is internet traffic through the edge.
    assert.match((await probe(ws, `http://${ADDR.app}/`)).body, /Private app.*198\.19\.0\.1/);
    const key = (await Deno.readTextFile(engKey)).trim();
    if (!(await accessSteps(t, { dir, api, key, topo }))) failed = true;
  },
});
