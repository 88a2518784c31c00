import assert from "node:assert/strict";
import * as dgram from "node:dgram";
import {
  defaultGateways,
  detectVpnDefaultRoute,
  localAddresses,
  parseIpAddrs,
  parseIpRoutes,
  parseResolvConf,
  resolveHost,
  StaticFactsSource,
  SystemFactsSource,
  tlsFingerprint,
} from "../../../src/connector/network/facts.ts";
import { canUseNetns, NetnsLab, sh } from "../../e2e/netns.ts";

Deno.test("facts: resolv.conf parsing", () => {
  const text = `# generated
nameserver 10.0.0.53
nameserver 2001:DB8::53 # comment
nameserver fe80::1%eth0
nameserver not-an-ip
nameserver 10.0.0.53
domain old.example
search Corp.Example. lab.corp.example
options ndots:2
`;
  assert.deepEqual(parseResolvConf(text), {
    nameservers: ["10.0.0.53", "2001:db8::53", "fe80::1"],
    search: ["corp.example", "lab.corp.example"],
  });
  assert.deepEqual(parseResolvConf(""), { nameservers: [], search: [] });
});

const ROUTES4 = [
  { dst: "default", gateway: "192.0.2.1", dev: "eth0", flags: [] },
  { dst: "192.0.2.0/24", dev: "eth0", protocol: "kernel", scope: "link", prefsrc: "192.0.2.2" },
  { dst: "0.0.0.0/1", dev: "tun3", scope: "link", flags: [] },
  { dst: "default", dev: "wg9", table: "51820", flags: [] },
  { dst: "default", gateway: "10.9.9.9", dev: "eth1", table: "100" },
];
const ROUTES6 = [{ dst: "default", gateway: "fe80::1", dev: "eth0", protocol: "ra" }];
const ADDRS = [
  {
    ifname: "lo",
    flags: ["LOOPBACK", "UP"],
    link_type: "loopback",
    addr_info: [{ family: "inet", local: "127.0.0.1", prefixlen: 8, scope: "host" }],
  },
  {
    ifname: "eth0",
    flags: ["BROADCAST", "UP", "LOWER_UP"],
    link_type: "ether",
    addr_info: [
      { family: "inet", local: "192.0.2.2", prefixlen: 24, scope: "global" },
      { family: "inet6", local: "fe80::0:2", prefixlen: 64, scope: "link" },
    ],
  },
  {
    ifname: "tun3",
    flags: ["POINTOPOINT", "UP"],
    link_type: "none",
    addr_info: [{ family: "inet", local: "100.64.0.2", prefixlen: 32, scope: "global" }],
  },
  { ifname: "wg9", flags: ["POINTOPOINT"], link_type: "none", addr_info: [] },
];

Deno.test("facts: ip -j parsing, gateways, addresses and VPN detection", () => {
  const routes = [...parseIpRoutes(ROUTES4, 4), ...parseIpRoutes(ROUTES6, 6)];
  const ifs = parseIpAddrs(ADDRS);
  assert.deepEqual(defaultGateways(routes), ["192.0.2.1", "fe80::1"]);
  assert.deepEqual(localAddresses(ifs), ["192.0.2.2/24", "fe80::2/64", "100.64.0.2/32"]);
  assert.deepEqual(localAddresses(ifs, "tun3"), ["192.0.2.2/24", "fe80::2/64"]);
  // tun3 holds 0.0.0.0/1; wg9 is down so its table route does not count.
  assert.equal(detectVpnDefaultRoute(routes, ifs), "tun3");
  assert.equal(detectVpnDefaultRoute(routes, ifs, "tun3"), undefined);
  const wgUp = parseIpAddrs(ADDRS.map((i) => i.ifname === "wg9" ? { ...i, flags: ["UP"] } : i));
  assert.equal(detectVpnDefaultRoute(routes, wgUp, "tun3"), "wg9");
  // An ordinary second uplink is not a VPN.
  assert.equal(
    detectVpnDefaultRoute(parseIpRoutes([ROUTES4[4]], 4), ifs),
    undefined,
  );
  // Name-based detection when the interface is unknown.
  assert.equal(
    detectVpnDefaultRoute(parseIpRoutes([{ dst: "default", dev: "ppp0" }], 4), []),
    "ppp0",
  );
  assert.throws(() => parseIpRoutes({}, 4), /Cannot read routes: expected a JSON array/);
});

/** A tiny DNS responder: A 10.0.0.80 for intranet.corp.test, NXDOMAIN otherwise; can stay silent. */
async function startDns(silent = false): Promise<{ port: number; close: () => void }> {
  const sock = dgram.createSocket("udp4");
  sock.on("message", (msg: Uint8Array, rinfo: { port: number; address: string }) => {
    if (silent) return;
    let off = 12;
    const labels: string[] = [];
    while (msg[off] !== 0) {
      labels.push(new TextDecoder().decode(msg.subarray(off + 1, off + 1 + msg[off])));
      off += msg[off] + 1;
    }
    const qtype = (msg[off + 1] << 8) | msg[off + 2];
    const qEnd = off + 5;
    const name = labels.join(".").toLowerCase();
    const known = name === "intranet.corp.test";
    const answer = known && qtype === 1;
    const head = new Uint8Array(12);
    head.set(msg.subarray(0, 2));
    head[2] = 0x81;
    head[3] = known ? 0x80 : 0x83;
    head[5] = 1;
    head[7] = answer ? 1 : 0;
    const q = msg.subarray(12, qEnd);
    const ans = answer
      ? new Uint8Array([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 80])
      : new Uint8Array();
    const out = new Uint8Array(head.length + q.length + ans.length);
    out.set(head);
    out.set(q, 12);
    out.set(ans, 12 + q.length);
    sock.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
  return { port: sock.address().port, close: () => sock.close() };
}

Deno.test("facts: hostname resolution with a timeout", async () => {
  const dns = await startDns();
  try {
    const ns = { ipAddr: "127.0.0.1", port: dns.port };
    assert.deepEqual(await resolveHost("intranet.corp.test", { nameServer: ns }), ["10.0.0.80"]);
    assert.deepEqual(await resolveHost("nothing.corp.test", { nameServer: ns }), []);
    assert.deepEqual(await resolveHost("2001:DB8::1"), ["2001:db8::1"]);
  } finally {
    dns.close();
  }
  const silent = await startDns(true);
  try {
    const t0 = performance.now();
    const got = await resolveHost("intranet.corp.test", {
      timeoutMs: 300,
      nameServer: { ipAddr: "127.0.0.1", port: silent.port },
    });
    assert.deepEqual(got, []);
    assert.ok(performance.now() - t0 < 1500, "lookup honoured the timeout");
  } finally {
    silent.close();
  }
});

/** Makes a self-signed certificate with openssl and returns it with its DER SHA-256. */
async function makeCert(dir: string, cn: string) {
  await sh([
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${dir}/${cn}.key`,
    "-out",
    `${dir}/${cn}.pem`,
    "-days",
    "1",
    "-subj",
    `/CN=${cn}`,
  ]);
  const der = await sh([
    "openssl",
    "x509",
    "-in",
    `${dir}/${cn}.pem`,
    "-outform",
    "DER",
    "-out",
    `${dir}/${cn}.der`,
  ]);
  void der;
  const bytes = await Deno.readFile(`${dir}/${cn}.der`);
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return {
    cert: await Deno.readTextFile(`${dir}/${cn}.pem`),
    key: await Deno.readTextFile(`${dir}/${cn}.key`),
    sha256: Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join(""),
  };
}

function serveTls(cert: string, key: string) {
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key });
  const handshakes: Promise<void>[] = [];
  const timers = new Map<Deno.TlsConn, ReturnType<typeof setTimeout>>();
  const closeConn = (c: Deno.TlsConn) => {
    clearTimeout(timers.get(c));
    timers.delete(c);
    try {
      c.close();
    } catch { /* closed */ }
  };
  const loop = (async () => {
    for await (const c of listener) {
      // Close a little after the handshake, as a beacon that only shows its certificate.
      handshakes.push(
        c.handshake().then(() => {}, () => {}).then(() => {
          timers.set(c, setTimeout(() => closeConn(c), 200));
        }),
      );
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      await loop;
      await Promise.all(handshakes);
      for (const c of [...timers.keys()]) closeConn(c);
    },
  };
}

Deno.test("facts: TLS beacon fingerprint equals the SHA-256 of the leaf DER", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pc-beacon-" });
  try {
    const beacon = await makeCert(dir, "beacon.corp.test");
    const other = await makeCert(dir, "other");
    const srv = serveTls(beacon.cert, beacon.key);
    try {
      const fp = await tlsFingerprint("127.0.0.1", srv.port, { servername: "beacon.corp.test" });
      assert.equal(fp, beacon.sha256);
      assert.notEqual(fp, other.sha256);
    } finally {
      await srv.close();
    }
    // Nothing listening: a clear error, not a hang.
    await assert.rejects(
      tlsFingerprint("127.0.0.1", srv.port, { timeoutMs: 1000 }),
      /Cannot fingerprint TLS beacon 127.0.0.1:\d+: /,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("facts: a plain TCP server that never speaks TLS times out", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const loop = (async () => {
    for await (const c of l) held.push(c);
  })().catch(() => {});
  try {
    await assert.rejects(
      tlsFingerprint("127.0.0.1", (l.addr as Deno.NetAddr).port, { timeoutMs: 300 }),
      /timed out after 300 ms/,
    );
  } finally {
    l.close();
    for (const c of held) c.close();
    await loop;
  }
});

Deno.test({
  name: "facts: SystemFactsSource reads a namespace's routes, addresses and VPN",
  ignore: !canUseNetns,
  async fn() {
    await using lab = new NetnsLab("fct");
    const ns = await lab.ns("a");
    const dir = await Deno.makeTempDir({ prefix: "pc-facts-" });
    lab.defer(() => Deno.remove(dir, { recursive: true }));
    await Deno.writeTextFile(`${dir}/resolv.conf`, "nameserver 10.77.0.53\nsearch corp.test\n");
    const gw = await lab.ns("gw");
    await lab.link(ns, "10.77.0.20/24", gw, "10.77.0.1/24", "eth9");
    await lab.exec(ns, ["ip", "route", "add", "default", "via", "10.77.0.1"]);
    const dnsSrv = await startDns();
    lab.defer(() => dnsSrv.close());
    const beacon = await makeCert(dir, "beacon");
    const tlsSrv = serveTls(beacon.cert, beacon.key);
    lab.defer(() => tlsSrv.close());

    const src = new SystemFactsSource({
      netns: ns,
      resolvConfPath: `${dir}/resolv.conf`,
      nameServer: { ipAddr: "127.0.0.1", port: dnsSrv.port },
      timeoutMs: 1500,
    });
    const req = {
      hostnames: ["intranet.corp.test"],
      beacons: [{ host: "127.0.0.1", port: tlsSrv.port }, { host: "127.0.0.1", port: 1 }],
      ourInterface: "pc0",
      egressIp: "198.51.100.9",
    };
    let f = await src.collect(req);
    assert.deepEqual(f.dnsServers, ["10.77.0.53"]);
    assert.deepEqual(f.dnsSearchDomains, ["corp.test"]);
    assert.deepEqual(f.defaultGateways, ["10.77.0.1"]);
    assert.ok(f.addresses.includes("10.77.0.20/24"), f.addresses.join());
    assert.deepEqual(f.resolved.get("intranet.corp.test"), ["10.0.0.80"]);
    assert.equal(f.beaconFingerprints.get(`127.0.0.1:${tlsSrv.port}`), beacon.sha256);
    assert.ok(f.beaconFingerprints.get("127.0.0.1:1") instanceof Error);
    assert.equal(f.egressIp, "198.51.100.9");
    assert.equal(f.vpnDefaultRoute, false);

    // Another VPN takes the default route with the two /1 halves.
    await lab.exec(ns, ["ip", "tuntap", "add", "dev", "tun5", "mode", "tun"]);
    await lab.exec(ns, ["ip", "link", "set", "tun5", "up"]);
    await lab.exec(ns, ["ip", "route", "add", "0.0.0.0/1", "dev", "tun5"]);
    await lab.exec(ns, ["ip", "route", "add", "128.0.0.0/1", "dev", "tun5"]);
    f = await src.collect(req);
    assert.equal(f.vpnDefaultRoute, true);
    assert.equal(f.vpnInterface, "tun5");
    // ...unless that interface is ours.
    f = await src.collect({ ...req, ourInterface: "tun5" });
    assert.equal(f.vpnDefaultRoute, false);
  },
});

Deno.test("facts: the static fake returns what it holds and records requests", async () => {
  const fake = new StaticFactsSource({
    dnsServers: ["1.1.1.1"],
    dnsSearchDomains: [],
    resolved: new Map(),
    defaultGateways: [],
    addresses: [],
    beaconFingerprints: new Map(),
    vpnDefaultRoute: false,
  });
  const f = await fake.collect({ egressIp: "203.0.113.1" });
  assert.equal(f.egressIp, "203.0.113.1");
  assert.deepEqual(f.dnsServers, ["1.1.1.1"]);
  assert.equal(fake.requests.length, 1);
});
