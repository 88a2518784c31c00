/**
 * Benchmark (not a test): what access enforcement costs.
 *
 *   deno task bench:access [seconds=5] [rounds=3]   (root; under flock -o /tmp/pcl-bench.lock)
 *
 * 1. Flow setup rate through the route hook (in process, real packets): new
 *    TCP flows per second decided and tracked, and established packets per
 *    second, with no policy and with 10,000 segments and 1,000 rules loaded,
 *    side by side, as a ratio.
 * 2. Tunnel throughput end to end (iperf3, TCP, each way): a real edge and a
 *    real connector in network namespaces, the iperf3 server behind the
 *    edge; with no segments or rules, and with 10,000 segments and 1,000
 *    rules loaded through the admin API (the server is in one of the
 *    segments, allowed by the last rule), alternating in the same run, as a
 *    ratio of the medians.
 */
import { canUseNetns, NetnsLab, type RunResult, waitUntil } from "../e2e/netns.ts";
import { totpAt } from "../../src/identity/totp.ts";
import { Enforcer } from "../../src/edge/access/enforcer.ts";
import { compileAccessPolicy } from "../../src/policy/access.ts";
import { AccessRule, AppSegment } from "../../src/policy/types.ts";
import { buildTcp } from "../../src/packet/build.ts";
import { TCP_FLAGS } from "../../src/packet/transport.ts";
import { systemClock } from "../../src/clock.ts";
import type { Peer } from "../../src/wireguard/mod.ts";

const seconds = Number(Deno.args[0] ?? 5);
const rounds = Number(Deno.args[1] ?? 3);
const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const DENO = Deno.execPath();

/** 10,000 segments (one /24 each, port 443) and 1,000 rules naming ten each, for other groups. */
function bigPolicy(server: string, group: string) {
  const segments = Array.from({ length: 10_000 }, (_, i) => ({
    name: `seg-${i}`,
    cidrs: [`10.${(i >> 8) & 0xff}.${i & 0xff}.0/24`],
    domains: [`app${i}.corp.example`],
    ports: ["443"],
    protocols: ["tcp"],
  }));
  segments[9_999] = { ...segments[9_999], cidrs: [`${server}/32`], ports: ["5201"] };
  const rules = Array.from({ length: 1_000 }, (_, i) => ({
    name: `rule-${i}`,
    ruleOrder: i,
    segments: Array.from({ length: 10 }, (_, k) => `seg-${i * 10 + k}`),
    machineGroups: i === 999 ? [group] : [`group-${i}`],
  }));
  return { segments, rules };
}

// ---- 1. flow setup rate ------------------------------------------------------

function setupRate(policy: { segments: unknown[]; rules: unknown[] }, flows: number) {
  const peer = { userData: "dev_bench" } as Peer;
  const e = new Enforcer({
    network: "100.64.0.0/16",
    edgeAddress: "100.64.0.1",
    clock: systemClock,
    capacity: 1 << 18,
    loadDevice: (id) => ({
      subject: {
        deviceId: id,
        deviceName: "bench",
        user: null,
        groups: [{ name: "bench", source: "machine" }],
        machine: true,
      },
      posture: new Map(),
    }),
    lookupAddress: () => null,
    peerForDestination: () => null,
    inject: () => {},
    onDecision: () => {},
  });
  e.setPolicy({
    access: compileAccessPolicy(
      policy.segments.map((s) => AppSegment.parse(s)),
      policy.rules.map((r) => AccessRule.parse(r)),
    ),
    c2cEnabled: false,
  });
  // Destinations spread over the segments' space and the internet.
  const pkts = Array.from({ length: 4096 }, (_, i) =>
    buildTcp({
      src: "100.64.0.2",
      dst: i % 2 ? `10.${(i >> 8) & 0x27}.${i & 0xff}.9` : `198.18.${i & 0xff}.${i >> 8}`,
      srcPort: 1024,
      dstPort: i % 4 === 1 ? 443 : 5201,
    }));
  const slot = new Uint8Array(2048);
  let t = performance.now();
  for (let n = 0; n < flows; n++) {
    const p = pkts[n & 4095];
    slot.set(p, 16);
    // A new source port per flow: every packet is a new flow.
    const port = 1024 + (n >> 12);
    slot[16 + 20] = port >> 8;
    slot[16 + 21] = port & 0xff;
    e.route(slot, 16, p.length, peer);
  }
  const newRate = flows / ((performance.now() - t) / 1000);
  // An allowed flow under both policies (internet without one, the last rule with it).
  const est = buildTcp({
    src: "100.64.0.2",
    dst: "198.19.0.10",
    srcPort: 1024,
    dstPort: 5201,
    flags: TCP_FLAGS.ACK,
  });
  slot.set(est, 16);
  t = performance.now();
  for (let n = 0; n < flows; n++) e.route(slot, 16, est.length, peer);
  const estRate = flows / ((performance.now() - t) / 1000);
  return { newRate, estRate, tracked: e.flows.size };
}

// ---- 2. tunnel throughput ------------------------------------------------------

async function throughput() {
  await using lab = new NetnsLab("bacc");
  const dir = await Deno.makeTempDir({ prefix: "pcbacc" });
  lab.defer(() => Deno.remove(dir, { recursive: true }));
  const EDGE = "192.0.2.1", CONN = "198.51.100.10", SRV = "198.19.0.10";
  const wan = await lab.ns("wan"), edge = await lab.ns("edge");
  const conn = await lab.ns("conn"), srv = await lab.ns("srv");
  await lab.link(wan, "192.0.2.254/24", edge, `${EDGE}/24`, "edge0");
  await lab.link(wan, "198.51.100.254/24", conn, `${CONN}/24`, "conn0");
  await lab.link(edge, "198.19.0.1/24", srv, `${SRV}/24`, "srv0");
  for (const ns of [wan, edge]) await lab.exec(ns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  await lab.exec(edge, ["ip", "route", "add", "default", "via", "192.0.2.254"]);
  await lab.exec(conn, ["ip", "route", "add", "default", "via", "198.51.100.254"]);
  await lab.exec(srv, ["ip", "route", "add", "default", "via", "198.19.0.1"]);
  const inNs = (ns: string, cmd: string[]): Promise<RunResult> =>
    lab.exec(ns, cmd, { check: false });
  const detached = (ns: string, log: string, cmd: string[]) =>
    lab.spawn(ns, ["sh", "-c", 'exec "$@" >>"$0" 2>&1 </dev/null', `${dir}/${log}`, ...cmd]);
  const tag = `${Deno.pid % 10000}`;
  const edgeArgs = [
    "--data-dir",
    `${dir}/edge`,
    "--public-host",
    EDGE,
    "--tunnel-port",
    "443",
    "--tun-interface",
    `pcbe${tag}`,
  ];
  detached(edge, "edge.log", [DENO, "run", "-A", MAIN, "edge", ...edgeArgs]);
  const ca = `${dir}/edge/ca/ca.crt`;
  await waitUntil(
    "the edge API",
    async () =>
      (await inNs(edge, ["curl", "-sf", "--cacert", ca, `https://${EDGE}:8443/api/v1/health`]))
        .code === 0,
    40_000,
  );
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
  const put = async (collection: string, items: unknown[]) => {
    await Deno.writeTextFile(`${dir}/body.json`, JSON.stringify({ items }));
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
      "--data-binary",
      `@${dir}/body.json`,
      `https://${EDGE}:8443/api/v1/admin/policy/${collection}`,
    ]);
    if (!JSON.parse(r.stdout).items) {
      throw new Error(`PUT ${collection}: ${r.stdout.slice(0, 300)}`);
    }
  };
  const keyFile = `${dir}/bench.key`;
  await lab.exec(edge, [
    DENO,
    "run",
    "-A",
    MAIN,
    "edge",
    "key",
    "create",
    ...edgeArgs,
    "--group",
    "bench",
    "--key-file",
    keyFile,
  ]);
  detached(conn, "conn.log", [
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
    "bench1",
    "--no-dns",
    "--tun-interface",
    `pcbc${tag}`,
  ]);
  await waitUntil("the connector to connect", async () => {
    const r = await inNs(conn, ["curl", "-s", "http://127.0.0.1:9080/api/v1/status"]);
    return /"state":"connected/.test(r.stdout);
  }, 45_000);
  lab.spawn(srv, ["iperf3", "-s"]);
  await waitUntil(
    "iperf3",
    async () => (await inNs(srv, ["ss", "-ltn"])).stdout.includes(":5201"),
    10_000,
  );
  const iperf = async (reverse: boolean) => {
    const args = ["iperf3", "-c", SRV, "-t", String(seconds), "-J", ...(reverse ? ["-R"] : [])];
    const r = await inNs(conn, args);
    const j = JSON.parse(r.stdout);
    return j.end.sum_received.bits_per_second / 1e6;
  };
  const measure = async () => ({ up: await iperf(false), down: await iperf(true) });
  const { segments, rules } = bigPolicy(SRV, "bench");
  let putMs = 0, enforcedAfterMs = 0;
  const load = async (on: boolean) => {
    const t0 = performance.now();
    // Rules first when clearing, segments first when loading: never a rule naming nothing.
    if (!on) {
      await put("access-rules", []);
      await put("segments", []);
      return;
    }
    await put("segments", segments);
    await put("access-rules", rules);
    putMs = performance.now() - t0;
    // The edge enforces it when a new flow to the server is logged as allowed by the last rule.
    const since = new Date().toISOString();
    await waitUntil(
      "the policy to be enforced",
      async () => {
        await inNs(conn, ["curl", "-s", "--max-time", "1", `http://${SRV}:5201/`]);
        const r = await inNs(edge, [
          "curl",
          "-s",
          "--cacert",
          ca,
          "-b",
          jar,
          `https://${EDGE}:8443/api/v1/admin/decisions?rule=rule-999&verdict=allow&since=${since}`,
        ]);
        return JSON.parse(r.stdout).decisions?.length > 0;
      },
      30_000,
      50,
    );
    enforcedAfterMs = performance.now() - t0;
  };
  // Phases alternate (none, loaded, none, loaded, ...) so a machine whose load
  // changes during the run weighs on both alike; medians per phase.
  const none: { up: number; down: number }[] = [], loaded: typeof none = [];
  for (let r = 0; r < rounds; r++) {
    await load(false);
    none.push(await measure());
    await load(true);
    loaded.push(await measure());
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  return {
    none: { up: med(none.map((x) => x.up)), down: med(none.map((x) => x.down)) },
    loaded: { up: med(loaded.map((x) => x.up)), down: med(loaded.map((x) => x.down)) },
    all: { none, loaded },
    putMs,
    enforcedAfterMs,
  };
}

if (!canUseNetns) {
  console.error("bench:access needs root (network namespaces).");
  Deno.exit(2);
}
console.log("Access enforcement benchmark.");
const FLOWS = 200_000;
// Alternating, three each; the best of each (a busy machine only ever slows a loop down).
const bigP = bigPolicy("198.19.0.10", "bench");
const runs = {
  empty: [] as ReturnType<typeof setupRate>[],
  big: [] as ReturnType<typeof setupRate>[],
};
for (let r = 0; r < 3; r++) {
  runs.empty.push(setupRate({ segments: [], rules: [] }, FLOWS));
  runs.big.push(setupRate(bigP, FLOWS));
}
const best = (xs: ReturnType<typeof setupRate>[]) => ({
  newRate: Math.max(...xs.map((x) => x.newRate)),
  estRate: Math.max(...xs.map((x) => x.estRate)),
  tracked: xs[0].tracked,
});
const empty = best(runs.empty), big = best(runs.big);
const row = (name: string, a: number, b: number, unit: string) =>
  console.log(
    `${name.padEnd(34)} ${a.toFixed(0).padStart(12)} ${b.toFixed(0).padStart(14)} ${
      (b / a).toFixed(2).padStart(7)
    }  ${unit}`,
  );
console.log(
  `${"".padEnd(34)} ${"no policy".padStart(12)} ${"10k seg/1k rules".padStart(14)} ${
    "ratio".padStart(7)
  }`,
);
row("new flows/s through the route hook", empty.newRate, big.newRate, "flows/s");
row("established packets/s (lookup)", empty.estRate, big.estRate, "packets/s");
console.log(`(${FLOWS} flows each, best of 3 alternating runs; ${big.tracked} tracked at the end)`);
console.log(
  `\nTunnel throughput, iperf3 TCP ${seconds} s each way, edge + connector in namespaces, ` +
    `median of ${rounds} alternating rounds:`,
);
const tp = await throughput();
row("TCP connector→server Mbit/s", tp.none.up, tp.loaded.up, "Mbit/s");
row("TCP server→connector Mbit/s", tp.none.down, tp.loaded.down, "Mbit/s");
const ratio = (tp.loaded.up / tp.none.up + tp.loaded.down / tp.none.down) / 2;
console.log(`throughput ratio, loaded / none (mean of both directions): ${ratio.toFixed(2)}`);
const fmtRounds = (xs: { up: number; down: number }[]) =>
  xs.map((x) => `${x.up.toFixed(0)}/${x.down.toFixed(0)}`).join(", ");
console.log(
  `rounds, up/down Mbit/s: none ${fmtRounds(tp.all.none)}; loaded ${fmtRounds(tp.all.loaded)}`,
);
console.log(
  `(loading 10,000 segments and 1,000 rules through the API took ${tp.putMs.toFixed(0)} ms; ` +
    `enforced ${tp.enforcedAfterMs.toFixed(0)} ms after the first PUT began)`,
);
