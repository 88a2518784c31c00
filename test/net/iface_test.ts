import assert from "node:assert/strict";
import {
  FakeNetConfig,
  IpNetConfig,
  NetConfigError,
  routeArgs,
  ruleArgs,
} from "../../src/net/iface.ts";
import { canUseNetns, NetnsLab, sh } from "../e2e/netns.ts";

Deno.test("iface: route and rule arguments", () => {
  const routes: [string, Parameters<typeof routeArgs>[1], string[]][] = [
    ["0.0.0.0/0", { dev: "pc0" }, ["0.0.0.0/0", "dev", "pc0"]],
    ["10.1.0.0/16", { dev: "pc0", table: 51820, metric: 5 }, [
      "10.1.0.0/16",
      "dev",
      "pc0",
      "table",
      "51820",
      "metric",
      "5",
    ]],
    ["default", { via: "192.0.2.1", table: "main" }, [
      "default",
      "via",
      "192.0.2.1",
      "table",
      "main",
    ]],
    ["2001:db8::/32", { dev: "pc0", src: "2001:db8::5" }, [
      "2001:db8::/32",
      "dev",
      "pc0",
      "src",
      "2001:db8::5",
    ]],
  ];
  for (const [dest, opts, want] of routes) assert.deepEqual(routeArgs(dest, opts), want, dest);
  assert.deepEqual(ruleArgs({ fwmark: 0xca6c, table: "main", priority: 100 }), [
    "fwmark",
    "0xca6c",
    "lookup",
    "main",
    "priority",
    "100",
  ]);
  assert.deepEqual(
    ruleArgs({ not: true, fwmark: 1, mask: 0xff, table: 51820, suppressPrefixlength: 0 }),
    [
      "not",
      "fwmark",
      "0x1/0xff",
      "lookup",
      "51820",
      "suppress_prefixlength",
      "0",
    ],
  );
});

Deno.test("iface: bad values are refused before anything runs, naming the value", async () => {
  const net = new FakeNetConfig();
  const cases: [() => Promise<void>, RegExp][] = [
    [() => net.addAddress("pc0", "10.0.0.300/24"), /Cannot use prefix "10.0.0.300\/24"/],
    [() => net.addAddress("pc0", "10.0.0.1/33"), /prefix "10.0.0.1\/33"/],
    [() => net.addAddress("pc0; rm -rf /", "10.0.0.1/24"), /interface name "pc0; rm -rf \/"/],
    [() => net.addRoute("10.0.0.0/8", { dev: "pc0", table: "main; x" }), /routing table "main; x"/],
    [() => net.addRoute("10.0.0.0/8", { via: "gw" }), /gateway "gw"/],
    [() => net.setLink("pc0", { mtu: 20 }), /MTU "20"/],
    [() => net.addRule({ fwmark: -1, table: "main" }), /fwmark "-1"/],
    // `ip -batch` joins arguments with spaces and lines with newlines.
    [
      () => net.addRoute("fe80::/64", { via: "fe80::1%eth0", dev: "pc0" }),
      /gateway "fe80::1%eth0"/,
    ],
    [
      () => net.addRoute("fe80::/64", { via: "fe80::1%x\nflush", dev: "pc0" }),
      /must not contain '%', spaces or line breaks/,
    ],
    [() => net.addRoute("10.0.0.0/8", { src: "fe80::2%1", dev: "pc0" }), /source address/],
    [() => net.addAddress("pc0", "fe80::1%eth0/64"), /prefix "fe80::1%eth0\/64"/],
    [() => net.addAddress("pc0", "10.0.0.1/24\nflush"), /prefix/],
    [() => net.addAddress("pc0\n", "10.0.0.1/24"), /interface name/],
    [() => net.addRule({ from: "fe80::/64 x", table: "main" }), /prefix/],
    [
      () => net.addRoutes([{ dest: "10.0.0.0/8", opts: { dev: "pc 0" } }]).then(() => {}),
      /interface/,
    ],
  ];
  for (const [fn, re] of cases) {
    await assert.rejects(fn, (e) => e instanceof NetConfigError && re.test(e.message));
  }
  assert.equal(net.calls.length, 0);
});

Deno.test("iface: the fake records calls and undoAll removes exactly what was added", async () => {
  const net = new FakeNetConfig();
  await net.addAddress("pc0", "100.64.0.2/32");
  await net.setLink("pc0", { mtu: 1420, up: true });
  await net.addRoute("0.0.0.0/1", { dev: "pc0", table: 51820 });
  await net.addRoute("10.9.0.0/16", { dev: "pc0" });
  await net.removeRoute("10.9.0.0/16", { dev: "pc0" });
  await net.addRule({ fwmark: 0x51820, table: "main", priority: 10 });
  net.failWith = (a) => a.includes("9.9.9.9/32") ? "RTNETLINK answers: File exists" : null;
  await assert.rejects(
    () => net.addRoute("9.9.9.9/32", { dev: "pc0" }),
    /^NetConfigError: Cannot add route 9\.9\.9\.9\/32 \(ip route add 9\.9\.9\.9\/32 dev pc0\): RTNETLINK answers: File exists$/,
  );
  net.failWith = () => null;
  assert.equal(net.recorded().length, 3, "the failed and the removed route are not recorded");
  const before = net.calls.length;
  await net.undoAll();
  assert.deepEqual(net.calls.slice(before), [
    ["-4", "rule", "del", "fwmark", "0x51820", "lookup", "main", "priority", "10"],
    ["route", "del", "0.0.0.0/1", "dev", "pc0", "table", "51820"],
    ["addr", "del", "100.64.0.2/32", "dev", "pc0"],
  ]);
  const after = net.calls.length;
  await net.undoAll();
  assert.equal(net.calls.length, after, "a second undoAll does nothing");
});

Deno.test("iface: undoAll tolerates changes already gone but reports real failures", async () => {
  const net = new FakeNetConfig();
  await net.addAddress("pc0", "10.0.0.1/24");
  await net.addRoute("10.1.0.0/16", { dev: "pc0" });
  net.failWith = (a) =>
    a[0] === "addr"
      ? 'Cannot find device "pc0"'
      : a[0] === "route"
      ? "RTNETLINK answers: Operation not permitted"
      : null;
  await assert.rejects(
    () => net.undoAll(),
    /Cannot undo every network change: route 10\.1\.0\.0\/16 dev pc0: RTNETLINK answers: Operation not permitted/,
  );
  assert.deepEqual(net.recorded(), []);
});

Deno.test(
  { name: "iface: real ip in a namespace, then undoAll", ignore: !canUseNetns },
  async () => {
    await using lab = new NetnsLab("ifc");
    const ns = await lab.ns("a");
    await sh(["ip", "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
    await sh(["ip", "-n", ns, "link", "set", "d1", "up"]);
    const net = new IpNetConfig({ netns: ns });
    lab.defer(() => net.undoAll());
    const show = async (...args: string[]) => (await sh(["ip", "-n", ns, ...args])).stdout;
    await net.addAddress("d0", "10.99.0.1/24");
    await net.setLink("d0", { mtu: 1380, up: true });
    await net.addRoute("10.50.0.0/16", { dev: "d0", table: 100, metric: 7 });
    await net.addRoute("10.60.0.0/16", { via: "10.99.0.9" });
    await net.addRule({ fwmark: 0x5043, table: "main", priority: 1234 });
    assert.match(await show("addr", "show", "dev", "d0"), /inet 10\.99\.0\.1\/24/);
    assert.match(await show("link", "show", "d0"), /mtu 1380/);
    assert.match(await show("route", "show", "table", "100"), /10\.50\.0\.0\/16 dev d0 .*metric 7/);
    assert.match(await show("route"), /10\.60\.0\.0\/16 via 10\.99\.0\.9 dev d0/);
    assert.match(await show("rule"), /^1234:\s+from all fwmark 0x5043 lookup main/m);
    await assert.rejects(
      () => net.addAddress("nosuch0", "10.98.0.1/24"),
      (e) =>
        e instanceof NetConfigError &&
        e.message.startsWith(
          'Cannot add address 10.98.0.1/24 to "nosuch0" (ip addr add 10.98.0.1/24 dev nosuch0): ',
        ),
    );
    await net.undoAll();
    assert.doesNotMatch(await show("addr", "show", "dev", "d0"), /10\.99\.0\.1/);
    assert.equal((await show("route", "show", "table", "100")).trim(), "");
    assert.doesNotMatch(await show("route"), /10\.60\.0\.0/);
    assert.doesNotMatch(await show("rule"), /0x5043/);
    await net.undoAll();
  },
);

Deno.test(
  {
    name: "iface: many routes in one ip -batch; a failing one is reported, the rest undone",
    ignore: !canUseNetns,
  },
  async () => {
    await using lab = new NetnsLab("ifb");
    const ns = await lab.ns("a");
    await sh(["ip", "-n", ns, "link", "add", "dum0", "type", "veth", "peer", "name", "dum1"]);
    await sh(["ip", "-n", ns, "link", "set", "dum0", "up"]);
    const net = new IpNetConfig({ netns: ns });
    const routes = Array.from({ length: 60 }, (_, i) => ({
      dest: `198.18.${i}.0/24`,
      opts: { dev: "dum0" },
    }));
    routes.push({ dest: "198.18.5.0/24", opts: { dev: "dum0" } }); // a duplicate: refused
    const failed = await net.addRoutes(routes);
    assert.equal(failed.length, 1);
    assert.match(failed[0], /^198\.18\.5\.0\/24: .*File exists/);
    const shown = await sh(["ip", "-n", ns, "route", "show", "dev", "dum0"]);
    assert.equal(shown.stdout.trim().split("\n").length, 60);
    await net.undoAll();
    const after = await sh(["ip", "-n", ns, "route", "show", "dev", "dum0"]);
    assert.equal(after.stdout.trim(), "");
  },
);

Deno.test("iface: the fake adds many routes one by one and records them", async () => {
  const net = new FakeNetConfig();
  net.failWith = (a) => (a.includes("203.0.113.0/24") ? "RTNETLINK answers: File exists" : null);
  const failed = await net.addRoutes([
    { dest: "198.51.100.0/24", opts: { dev: "pc0" } },
    { dest: "203.0.113.0/24", opts: { dev: "pc0" } },
  ]);
  assert.deepEqual(failed, ["203.0.113.0/24: RTNETLINK answers: File exists"]);
  assert.deepEqual(net.recorded(), ["route 198.51.100.0/24 dev pc0"]);
});
