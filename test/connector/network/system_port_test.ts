import assert from "node:assert/strict";
import { SystemNetworkPort } from "../../../src/connector/network/system_port.ts";
import { FakeNetworkMonitor } from "../../../src/connector/network/monitor.ts";
import { readNetworkResolvConf, StaticFactsSource } from "../../../src/connector/network/facts.ts";
import { RESOLV_CONF_MARKER } from "../../../src/connector/dns/resolv_conf.ts";
import type { NetworkFacts } from "../../../src/policy/trusted_network.ts";
import type { NetworkChangeInfo } from "../../../src/connector/network_port.ts";
import { createBootstrapApp } from "../../../src/http/bootstrap_app.ts";
import { setLogSinks } from "../../../src/log.ts";
import { makeBundle } from "../fake_edge.ts";
import { waitUntil } from "../../e2e/netns.ts";

setLogSinks([]);

const HOME: NetworkFacts = {
  dnsServers: ["198.51.100.53"],
  dnsSearchDomains: [],
  resolved: new Map(),
  defaultGateways: ["198.51.100.254"],
  addresses: ["198.51.100.10/24"],
  beaconFingerprints: new Map(),
  vpnDefaultRoute: false,
};
const CORP: NetworkFacts = {
  ...HOME,
  defaultGateways: ["172.20.0.1"],
  addresses: ["172.20.0.10/24"],
};

function policy(trusted: Record<string, unknown>, actions = {}) {
  return makeBundle("v1", { forwarding: { name: "fp", trusted, actions } });
}

/** A fetch that serves the edge's bootstrap app as seen from `remote`. */
function bootstrapFetch(remote: string) {
  const app = createBootstrapApp({ caCertPem: "pem", caSha256: "00".repeat(32) });
  return (input: string, init: RequestInit) =>
    Promise.resolve(app.fetch(new Request(input, init), { remoteAddr: { hostname: remote } }));
}

Deno.test("system port: verdicts name the network type, action and every criterion", async (t) => {
  const monitor = new FakeNetworkMonitor();
  const facts = new StaticFactsSource(CORP);
  const port = new SystemNetworkPort({
    monitor,
    facts,
    ourInterface: "pcc0",
    identity: () => Promise.resolve("x"),
  });
  const p = policy({ defaultGateways: ["172.20.0.1"], dnsServers: ["10.9.9.9"] });
  const cases: [string, NetworkFacts, string, string, RegExp][] = [
    ["corporate LAN", CORP, "on_trusted", "none", /^On-trusted: default gateway 172\.20\.0\.1/],
    ["home internet", HOME, "off_trusted", "tunnel", /^Off-trusted: none of 2 criteria matched/],
    [
      "behind another VPN",
      { ...HOME, vpnDefaultRoute: true, vpnInterface: "wg9" },
      "vpn_trusted",
      "tunnel",
      /^VPN-trusted: .*\(wg9\)/,
    ],
  ];
  for (const [name, f, type, action, explanation] of cases) {
    await t.step(name, async () => {
      facts.facts = f;
      const v = await port.evaluate(p);
      assert.equal(v.type, type);
      assert.equal(v.action, action);
      assert.match(v.explanation, explanation);
      assert.match(v.explanation, new RegExp(`→ action ${action} \\(profile "fp"\\)$`));
      assert.equal((v.matched?.length ?? 0) + (v.unmatched?.length ?? 0), 2);
    });
  }
  assert.equal(facts.requests.at(-1)?.ourInterface, "pcc0");
  await port.close();
  assert.equal(monitor.closed, true);
});

Deno.test("system port: the egress criterion asks the edge, and only when configured", async () => {
  const monitor = new FakeNetworkMonitor();
  const facts = new StaticFactsSource(HOME);
  const port = new SystemNetworkPort({
    monitor,
    facts,
    ourInterface: "pcc0",
    fetch: bootstrapFetch("203.0.113.7"),
    identity: () => Promise.resolve("x"),
  });
  const ctx = { bootstrapUrl: "http://192.0.2.1:8081" };
  let v = await port.evaluate(policy({ egressIps: ["203.0.113.0/24"] }), ctx);
  assert.equal(v.type, "on_trusted");
  assert.match(v.explanation, /egress address 203\.0\.113\.7 matches 203\.0\.113\.0\/24/);
  v = await port.evaluate(policy({ egressIps: ["192.0.2.0/24"] }), ctx);
  assert.equal(v.type, "off_trusted");
  // Without an egress criterion the edge is not asked.
  await port.evaluate(policy({ defaultGateways: ["1.2.3.4"] }), ctx);
  assert.equal(facts.requests.at(-1)?.egressIp, undefined);
  // A portal answering anything is not believed.
  const lying = new SystemNetworkPort({
    monitor: new FakeNetworkMonitor(),
    facts,
    ourInterface: "pcc0",
    fetch: () => Promise.resolve(new Response('{"ip":"not an address"}')),
    identity: () => Promise.resolve("x"),
  });
  assert.equal(await lying.egressAddress(ctx.bootstrapUrl), undefined);
  await port.close();
  await lying.close();
});

Deno.test("system port: changes say whether the device moved to another network", async () => {
  const monitor = new FakeNetworkMonitor();
  let id = "gw=a";
  const port = new SystemNetworkPort({
    monitor,
    facts: new StaticFactsSource(HOME),
    ourInterface: "pcc0",
    identity: () => Promise.resolve(id),
  });
  const seen: NetworkChangeInfo[] = [];
  port.subscribe((c) => seen.push(c));
  // The identity is read when a change arrives, so the move comes after it.
  monitor.emit(["dns"]);
  id = "gw=b";
  await waitUntil("the first change", () => Promise.resolve(seen.length === 1), 2000, 1);
  monitor.emit(["route", "address"]);
  await waitUntil("the second change", () => Promise.resolve(seen.length === 2), 2000, 1);
  assert.deepEqual(seen, [
    { newNetwork: false, kinds: ["dns"] },
    { newNetwork: true, kinds: ["route", "address"] },
  ]);
  await port.close();
});

Deno.test("system port: the captive probe passes the edge's echo and catches a portal", async () => {
  const port = new SystemNetworkPort({
    monitor: new FakeNetworkMonitor(),
    ourInterface: "pcc0",
    fetch: bootstrapFetch("198.51.100.10"),
    identity: () => Promise.resolve("x"),
  });
  assert.equal((await port.probeEdge("http://192.0.2.1:8081")).kind, "clear");
  const portal = new SystemNetworkPort({
    monitor: new FakeNetworkMonitor(),
    ourInterface: "pcc0",
    fetch: () =>
      Promise.resolve(new Response(null, { status: 302, headers: { Location: "http://p/login" } })),
    identity: () => Promise.resolve("x"),
  });
  const r = await portal.probeEdge("http://192.0.2.1:8081");
  assert.equal(r.kind, "captive");
  assert.equal(r.kind === "captive" && r.location, "http://p/login");
  await port.close();
  await portal.close();
});

Deno.test("facts: while split DNS owns resolv.conf, the network's real servers are read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/resolv.conf`;
    const original = "nameserver 172.20.0.53\nsearch corp.example\n";
    await Deno.writeTextFile(path, `${RESOLV_CONF_MARKER}\nnameserver 127.0.0.53\n`);
    await Deno.writeTextFile(
      `${path}.portcullis-backup`,
      JSON.stringify({ kind: "file", content: btoa(original), mode: 0o644 }),
    );
    assert.equal(await readNetworkResolvConf(path), original);
    await Deno.writeTextFile(path, "nameserver 9.9.9.9\n");
    assert.equal(await readNetworkResolvConf(path), "nameserver 9.9.9.9\n", "a foreign file wins");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
