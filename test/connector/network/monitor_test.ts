import assert from "node:assert/strict";
import {
  Debouncer,
  FakeNetworkMonitor,
  type NetworkChange,
  parseMonitorLine,
  SystemNetworkMonitor,
} from "../../../src/connector/network/monitor.ts";
import { canUseNetns, NetnsLab } from "../../e2e/netns.ts";

Deno.test("monitor: debouncer fires after quiet, or at the latest after max", () => {
  // [message times], expected fire time
  const table: [number[], number][] = [
    [[0], 300],
    [[0, 100, 200], 500],
    [[0, 250, 500, 750, 1000, 1250], 1500],
    [[0, 299], 599],
  ];
  for (const [times, want] of table) {
    const d = new Debouncer(300, 1500);
    for (const t of times) d.note(t);
    assert.equal(d.deadline(), want, times.join());
    assert.equal(d.take(want - 1), false);
    assert.equal(d.pending, true);
    assert.equal(d.take(want), true);
    assert.equal(d.pending, false);
    assert.equal(d.deadline(), null);
    assert.equal(d.take(want + 10_000), false, "fires once");
  }
});

Deno.test("monitor: ip monitor lines are classified with their interface", () => {
  const table: [string, ReturnType<typeof parseMonitorLine>][] = [
    ["[ADDR]2: eth0    inet 10.0.0.5/24 scope global eth0", { kind: "address", dev: "eth0" }],
    ["[ADDR]Deleted 2: eth0    inet 10.0.0.5/24", { kind: "address", dev: "eth0" }],
    ["[ROUTE]default via 10.0.0.1 dev eth0 proto dhcp", { kind: "route", dev: "eth0" }],
    ["[ROUTE]Deleted 10.1.0.0/16 dev pc0 scope link", { kind: "route", dev: "pc0" }],
    ["[ROUTE]unreachable 10.9.0.0/16", { kind: "route", dev: undefined }],
    ["[LINK]3: veth0@if2: <BROADCAST,UP> mtu 1500", { kind: "link", dev: "veth0" }],
    ["[NEIGH]10.0.0.1 dev eth0 lladdr aa:bb", null],
    ["garbage", null],
  ];
  for (const [line, want] of table) assert.deepEqual(parseMonitorLine(line), want, line);
});

Deno.test("monitor: the fake delivers to subscribers until unsubscribed", async () => {
  const fake = new FakeNetworkMonitor();
  const got: NetworkChange[] = [];
  const off = fake.subscribe((c) => got.push(c));
  fake.emit(["route"]);
  off();
  fake.emit(["dns"]);
  assert.deepEqual(got.map((c) => c.kinds), [["route"]]);
  await fake.close();
  assert.equal(fake.closed, true);
});

/** Resolves with the first change, or null after `ms`. */
function nextChange(m: SystemNetworkMonitor, ms: number): Promise<NetworkChange | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      off();
      resolve(null);
    }, ms);
    const off = m.subscribe((c) => {
      clearTimeout(timer);
      off();
      resolve(c);
    });
  });
}

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "monitor: address and route changes in a namespace arrive within 2 s; close cleans up",
  ignore: !canUseNetns,
  async fn() {
    await using lab = new NetnsLab("mon");
    const ns = await lab.ns("a");
    await lab.exec(ns, ["ip", "tuntap", "add", "dev", "pc0", "mode", "tun"]);
    await lab.exec(ns, ["ip", "link", "set", "pc0", "up"]);
    const m = await SystemNetworkMonitor.start({
      netns: ns,
      resolvConfPath: null,
      ignoreInterfaces: ["pc0"],
    });
    lab.defer(() => m.close());
    const pid = m.childPid as number;
    assert.ok(pid > 0 && alive(pid));
    await new Promise((r) => setTimeout(r, 200)); // let ip monitor subscribe

    let t0 = performance.now();
    const p1 = nextChange(m, 2000);
    await lab.exec(ns, ["ip", "addr", "add", "10.66.0.1/32", "dev", "lo"]);
    const c1 = await p1;
    assert.ok(c1, "an address change is reported");
    assert.ok(c1.kinds.includes("address"), c1.kinds.join());
    const addrMs = performance.now() - t0;
    assert.ok(addrMs < 2000, `${addrMs} ms`);

    // Our own interface's routes are ignored.
    const quiet = nextChange(m, 800);
    await lab.exec(ns, ["ip", "route", "add", "10.50.0.0/16", "dev", "pc0"]);
    assert.equal(await quiet, null, "changes on pc0 are ignored");

    t0 = performance.now();
    const p2 = nextChange(m, 2000);
    await lab.exec(ns, ["ip", "route", "add", "10.77.0.0/16", "dev", "lo"]);
    const c2 = await p2;
    assert.ok(c2 && c2.kinds.includes("route"));
    const routeMs = performance.now() - t0;
    assert.ok(routeMs < 2000, `${routeMs} ms`);
    console.log(`monitor latency: address ${addrMs.toFixed(0)} ms, route ${routeMs.toFixed(0)} ms`);

    await m.close();
    assert.equal(alive(pid), false, "the ip monitor child is gone after close");
  },
});

for (const forcePolling of [false, true]) {
  Deno.test(`monitor: a resolv.conf change is reported (${forcePolling ? "polling" : "watchFs"})`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "pc-mon-" });
    const path = `${dir}/resolv.conf`;
    await Deno.writeTextFile(path, "nameserver 10.0.0.53\n");
    // Watch a namespace with nothing happening in it... or, without root, our own network.
    await using lab = canUseNetns ? new NetnsLab("mdn") : null;
    const ns = lab ? await lab.ns("a") : undefined;
    const m = await SystemNetworkMonitor.start({
      netns: ns,
      resolvConfPath: path,
      forcePolling,
      pollMs: 200,
    });
    try {
      await new Promise((r) => setTimeout(r, 150));
      const p = nextChange(m, 2000);
      const t0 = performance.now();
      // Resolvers replace the file by rename.
      await Deno.writeTextFile(`${dir}/resolv.conf.new`, "nameserver 192.168.77.1\n");
      await Deno.rename(`${dir}/resolv.conf.new`, path);
      const c = await p;
      assert.ok(c, "a DNS change is reported");
      assert.deepEqual(c.kinds, ["dns"]);
      assert.ok(performance.now() - t0 < 2000);
      // Touching the file without changing it is not a change.
      const none = nextChange(m, 700);
      await Deno.writeTextFile(path, "nameserver 192.168.77.1\n");
      assert.equal(await none, null);
    } finally {
      await m.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}
