import assert from "node:assert/strict";
import { startSplitDns } from "../../../src/connector/dns/mod.ts";
import { startStubResolver } from "../../../src/connector/dns/stub.ts";
import { parseResolvConf, RESOLV_CONF_MARKER } from "../../../src/connector/dns/resolv_conf.ts";
import { startDnsServer } from "../../../src/edge/dns.ts";
import { PortcullisError } from "../../../src/errors.ts";
import {
  buildDnsQuery,
  DNS_CLASS_IN,
  DNS_RCODE,
  DNS_TYPE,
  parseDnsMessage,
} from "../../../src/packet/dns.ts";
import { startFakeUpstream, tcpExchange, udpExchange } from "./fake_dns.ts";

async function ask(port: number, name: string, id = 0x7777) {
  const r = await udpExchange(port, buildDnsQuery(name, DNS_TYPE.A, id));
  assert.ok(r, `no answer for ${name}`);
  const m = parseDnsMessage(r);
  assert.equal(m.header.id, id);
  return m;
}
const addrs = (m: ReturnType<typeof parseDnsMessage>) =>
  m.answers.map((a) => (a.type === "A" ? a.address : a.type));

Deno.test("split DNS: edge names go to the edge, the rest upstream; resolv.conf switched and restored", async () => {
  const edge = await startFakeUpstream({ address: "100.64.0.1" });
  const pub = await startFakeUpstream({ address: "203.0.113.80" });
  const dir = await Deno.makeTempDir({ prefix: "pc_split_" });
  const path = `${dir}/resolv.conf`;
  const original = "nameserver 192.0.2.53\nsearch corp.example\noptions ndots:2\n";
  await Deno.writeTextFile(path, original);
  const split = await startSplitDns({
    edgeDomains: ["portcullis.internal"],
    edgeServers: [edge.addr],
    upstream: [pub.addr],
    listen: { hostname: "127.0.0.1", port: 0 },
    resolvConfPath: path,
    timeoutMs: 300,
  });
  try {
    const conf = parseResolvConf(await Deno.readTextFile(path));
    assert.deepEqual(conf, {
      nameservers: ["127.0.0.1"],
      search: ["corp.example"],
      options: ["ndots:2"],
    });
    const rows: [string, string[], "edge" | "upstream"][] = [
      ["protected.portcullis.internal", ["100.64.0.1"], "edge"],
      ["Laptop.Clients.Portcullis.Internal", ["100.64.0.1"], "edge"],
      ["portcullis.internal", ["100.64.0.1"], "edge"],
      ["www.example.com", ["203.0.113.80"], "upstream"],
      ["notportcullis.internal", ["203.0.113.80"], "upstream"],
    ];
    for (const [name, want, route] of rows) {
      assert.equal(split.stub.routeFor(name), route, name);
      assert.deepEqual(addrs(await ask(split.stub.port, name)), want, name);
    }
    assert.deepEqual(edge.seen.map((q) => q.questions[0].name), rows.slice(0, 3).map((r) => r[0]));
    assert.deepEqual(pub.seen.map((q) => q.questions[0].name), rows.slice(3).map((r) => r[0]));
    // TCP clients are forwarded over TCP.
    const t = parseDnsMessage(
      await tcpExchange(split.stub.port, buildDnsQuery("tcp.portcullis.internal", 1, 9)),
    );
    assert.deepEqual(addrs(t), ["100.64.0.1"]);
    // A policy update moves a suffix to the edge.
    split.setEdge(["portcullis.internal", "corp.example"], [edge.addr]);
    assert.deepEqual(addrs(await ask(split.stub.port, "intranet.corp.example")), ["100.64.0.1"]);
    assert.equal(split.stub.stats.toEdge, 5);
  } finally {
    await split.stop();
    await edge.close();
    await pub.close();
  }
  try {
    assert.equal(await Deno.readTextFile(path), original, "resolv.conf restored exactly");
    await assert.rejects(() => Deno.lstat(`${path}.portcullis-backup`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("split DNS recovers from a crash: stale backup restored before reading the original servers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pc_split_" });
  const path = `${dir}/resolv.conf`;
  const original = "nameserver 192.0.2.10\nsearch crashed.example\n";
  await Deno.writeTextFile(path, original);
  try {
    const first = await startSplitDns({
      edgeDomains: ["portcullis.internal"],
      edgeServers: ["127.0.0.1:9"],
      listen: { hostname: "127.0.0.1", port: 0 },
      resolvConfPath: path,
    });
    // Simulate a crash: the stub dies, resolv.conf is left pointing at it.
    await first.stub.close();
    assert.ok((await Deno.readTextFile(path)).startsWith(RESOLV_CONF_MARKER));
    const second = await startSplitDns({
      edgeDomains: ["portcullis.internal"],
      edgeServers: ["127.0.0.1:9"],
      listen: { hostname: "127.0.0.1", port: 0 },
      resolvConfPath: path,
    });
    assert.deepEqual(second.upstream, ["192.0.2.10"], "original servers, not the dead stub");
    await second.stop();
    assert.equal(await Deno.readTextFile(path), original);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connector stub through the real edge DNS service, end to end on loopback", async () => {
  const internet = await startFakeUpstream({ address: "203.0.113.5" });
  const edgeDns = await startDnsServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    zones: ["portcullis.internal"],
    lookup: (name, type) =>
      name === "pc-2.clients.portcullis.internal" && type === DNS_TYPE.A
        ? [{ name, class: DNS_CLASS_IN, ttl: 60, type: "A", address: "100.64.0.22" }]
        : null,
    upstream: [internet.addr],
    allow: (a) => a === "127.0.0.1",
    upstreamTimeoutMs: 300,
  });
  const isp = await startFakeUpstream({ address: "198.51.100.200" });
  const stub = await startStubResolver({
    listen: { hostname: "127.0.0.1", port: 0 },
    edgeDomains: ["portcullis.internal"],
    edgeServers: [`127.0.0.1:${edgeDns.port}`],
    upstream: [isp.addr],
    timeoutMs: 300,
  });
  try {
    assert.deepEqual(addrs(await ask(stub.port, "pc-2.clients.portcullis.internal")), [
      "100.64.0.22",
    ]);
    const nx = await ask(stub.port, "pc-9.clients.portcullis.internal");
    assert.equal(nx.header.rcode, DNS_RCODE.NXDOMAIN);
    assert.ok(nx.header.aa);
    assert.deepEqual(addrs(await ask(stub.port, "www.example.org")), ["198.51.100.200"]);
    assert.equal(internet.seen.length, 0, "outside names never reach the edge");
    // A stub that lists itself upstream (stale resolv.conf) must not loop: it answers SERVFAIL.
    stub.setRoutes({ edgeDomains: [], edgeServers: [], upstream: [`127.0.0.1:${stub.port}`] });
    const loop = await ask(stub.port, "www.example.org");
    assert.equal(loop.header.rcode, DNS_RCODE.SERVFAIL);
  } finally {
    await stub.close();
    await isp.close();
    await edgeDns.close();
    await internet.close();
  }
});

Deno.test("a port already in use is a typed error naming the address", async () => {
  const first = await startStubResolver({
    listen: { hostname: "127.0.0.1", port: 0 },
    edgeDomains: [],
    edgeServers: [],
    upstream: [],
  });
  try {
    await assert.rejects(
      () =>
        startStubResolver({
          listen: { hostname: "127.0.0.1", port: first.port },
          edgeDomains: [],
          edgeServers: [],
          upstream: [],
        }),
      (e: unknown) =>
        e instanceof PortcullisError && e.code === "dns_listen_failed" &&
        e.message.includes(`127.0.0.1:${first.port}`),
    );
  } finally {
    await first.close();
  }
});

Deno.test("stub: the edge's answers are handed over (and waited for) before they go back; upstream ones are not", async () => {
  const edge = await startFakeUpstream({ address: "10.20.0.10" });
  const isp = await startFakeUpstream({ address: "198.51.100.200" });
  const seen: string[][] = [];
  let routed = false;
  const stub = await startStubResolver({
    listen: { hostname: "127.0.0.1", port: 0 },
    edgeDomains: ["corp.internal"],
    edgeServers: [edge.addr],
    upstream: [isp.addr],
    timeoutMs: 300,
    onEdgeAddresses: async (a) => {
      seen.push(a);
      await new Promise((r) => setTimeout(r, 30)); // a route being installed
      routed = true;
    },
  });
  try {
    assert.deepEqual(addrs(await ask(stub.port, "ten.corp.internal")), ["10.20.0.10"]);
    assert.equal(routed, true, "the answer waited for the route");
    assert.deepEqual(seen, [["10.20.0.10"]]);
    await ask(stub.port, "www.example.org");
    assert.equal(seen.length, 1, "upstream answers are not the edge's");
  } finally {
    await stub.close();
    await isp.close();
    await edge.close();
  }
  // A hook that hangs or throws delays the answer a bounded time and never loses it.
  const edge2 = await startFakeUpstream({ address: "10.20.0.11" });
  for (const hook of [() => new Promise<void>(() => {}), () => Promise.reject(new Error("no"))]) {
    const s = await startStubResolver({
      listen: { hostname: "127.0.0.1", port: 0 },
      edgeDomains: ["corp.internal"],
      edgeServers: [edge2.addr],
      upstream: [],
      timeoutMs: 300,
      onEdgeAddresses: hook,
    });
    try {
      const t0 = performance.now();
      assert.deepEqual(addrs(await ask(s.port, "ten.corp.internal")), ["10.20.0.11"]);
      assert.ok(performance.now() - t0 < 1500);
    } finally {
      await s.close();
    }
  }
  await edge2.close();
});
