import assert from "node:assert/strict";
import {
  Debouncer,
  FakeNetworkMonitor,
  type NetworkChange,
  parseMonitorLine,
  ResolvConfTracker,
  SystemNetworkMonitor,
} from "../../../src/connector/network/monitor.ts";
import { canUseNetns, NetnsLab, waitUntil } from "../../e2e/netns.ts";

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
    // ip monitor says nothing when it has subscribed: poke until it reports.
    let n = 0;
    await waitUntil(
      "ip monitor to report a change",
      async () => {
        const c = nextChange(m, 500);
        await lab.exec(ns, ["ip", "addr", "add", `10.66.1.${++n}/32`, "dev", "lo"]);
        return (await c) !== null;
      },
      10_000,
      1,
    );

    let t0 = performance.now();
    const p1 = nextChange(m, 2000);
    await lab.exec(ns, ["ip", "addr", "add", "10.66.0.1/32", "dev", "lo"]);
    const c1 = await p1;
    assert.ok(c1, "an address change is reported");
    assert.ok(c1.kinds.includes("address"), c1.kinds.join());
    const addrMs = performance.now() - t0;
    assert.ok(addrMs < 2000, `${addrMs} ms`);

    // Our own interface's routes are ignored: a burst with one on pc0 and one
    // on lo reports the lo route only.
    t0 = performance.now();
    const p2 = nextChange(m, 2000);
    await lab.exec(ns, ["ip", "route", "add", "10.50.0.0/16", "dev", "pc0"]);
    await lab.exec(ns, ["ip", "route", "add", "10.77.0.0/16", "dev", "lo"]);
    const c2 = await p2;
    assert.ok(c2 && c2.kinds.includes("route"));
    assert.equal(c2.count, 1, `only the lo route: ${c2.samples.join(" | ")}`);
    assert.match(c2.samples[0], /10\.77\.0\.0\/16 dev lo/);
    const routeMs = performance.now() - t0;
    assert.ok(routeMs < 2000, `${routeMs} ms`);
    console.log(`monitor latency: address ${addrMs.toFixed(0)} ms, route ${routeMs.toFixed(0)} ms`);

    await m.close();
    assert.equal(alive(pid), false, "the ip monitor child is gone after close");
  },
});

Deno.test("monitor: resolv.conf verdicts follow the settings, not the writes", () => {
  const A = "nameserver 10.0.0.53\nsearch corp.example\n";
  const B = "nameserver 192.168.77.1\n";
  // [text read (null: missing), monotonic ms, verdict]
  // deno-fmt-ignore
  const table: [string, [string | null, number, string][]][] = [
    ["same text again", [[A, 0, "same"]]],
    ["new comment, spacing", [["# generated by resolvconf\nnameserver  10.0.0.53\nsearch corp.example", 0, "same"]]],
    ["other server, confirmed", [[B, 0, "settling"], [B, 100, "changed"], [B, 200, "same"]]],
    ["option added", [[A + "options ndots:2\n", 0, "settling"], [A + "options ndots:2\n", 100, "changed"]]],
    ["a state passed through", [[A + B, 0, "settling"], [B, 100, "settling"], [A, 200, "same"]]],
    ["truncate, then the same text", [["", 0, "settling"], [A, 5, "same"]]],
    ["unlinked, then renamed in", [[null, 0, "settling"], [null, 400, "settling"], [B, 500, "settling"], [B, 600, "changed"]]],
    ["empty for good", [["", 0, "settling"], ["", 999, "settling"], ["", 1000, "changed"], ["", 5000, "same"]]],
    ["deleted for good, then back", [[null, 0, "settling"], [null, 1500, "changed"], [A, 1600, "settling"], [A, 1700, "changed"]]],
    ["emptied twice", [["", 0, "settling"], [A, 10, "same"], ["", 900, "settling"], ["", 1800, "settling"], ["", 1900, "changed"]]],
  ];
  for (const [name, reads] of table) {
    const t = new ResolvConfTracker(A, 1000);
    for (const [text, now, want] of reads) {
      assert.equal(t.observe(text, now), want, `${name} @${now}`);
    }
  }
});

/** Counts changes of one monitor. */
function recorder(m: SystemNetworkMonitor) {
  const changes: NetworkChange[] = [];
  m.subscribe((c) => changes.push(c));
  return changes;
}

/**
 * Waits until the monitor has judged resolv.conf after the last edit: `reads`
 * past `since` (two when polling, so one read began after the edit), nothing
 * due and no event pending. Then every change the edit caused was emitted.
 */
async function settled(m: SystemNetworkMonitor, since: number, polling: boolean): Promise<void> {
  await waitUntil(
    "the resolv.conf watch to settle",
    () => {
      const w = m.resolvWatch;
      return Promise.resolve(w.reads >= since + (polling ? 2 : 1) && !w.due && !w.pending);
    },
    5000,
    10,
  );
}

for (const forcePolling of [false, true]) {
  const mode = forcePolling ? "polling" : "watchFs";
  Deno.test(`monitor: a resolv.conf change is reported (${mode})`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "pc-mon-" });
    const path = `${dir}/resolv.conf`;
    const A = "nameserver 10.0.0.53\n";
    const B = "nameserver 192.168.77.1\n";
    await Deno.writeTextFile(path, A);
    // Watch a namespace with nothing happening in it... or, without root, our own network.
    await using lab = canUseNetns ? new NetnsLab("mdn") : null;
    const ns = lab ? await lab.ns("a") : undefined;
    const m = await SystemNetworkMonitor.start({
      netns: ns,
      resolvConfPath: path,
      forcePolling,
      pollMs: 50,
      quietMs: 50,
      maxMs: 200,
      resolvGraceMs: 5000,
    });
    const changes = recorder(m);
    const dnsChanges = () => changes.filter((c) => c.kinds.includes("dns")).length;
    /** Runs an edit; resolves with how many DNS changes it caused. */
    const edit = async (fn: () => Promise<void>) => {
      const before = dnsChanges();
      const since = m.resolvWatch.reads;
      await fn();
      await settled(m, since, forcePolling);
      return dnsChanges() - before;
    };
    try {
      // Resolvers replace the file by rename.
      assert.equal(
        await edit(async () => {
          await Deno.writeTextFile(`${dir}/resolv.conf.new`, B);
          await Deno.rename(`${dir}/resolv.conf.new`, path);
        }),
        1,
        "a replaced file with other servers is one change",
      );
      assert.ok(changes.at(-1)?.kinds.includes("dns"));
      // Truncate and write (two events, empty in between) with the same contents.
      assert.equal(await edit(() => Deno.writeTextFile(path, B)), 0, "same contents rewritten");
      // Replaced by rename with the same contents, and a new comment.
      assert.equal(
        await edit(async () => {
          await Deno.writeTextFile(`${dir}/resolv.conf.new`, `# rewritten\n${B}`);
          await Deno.rename(`${dir}/resolv.conf.new`, path);
        }),
        0,
        "same settings under a new comment",
      );
      // Truncated, seen empty, then filled again with what it said before.
      assert.equal(
        await edit(async () => {
          const since = m.resolvWatch.reads;
          await Deno.truncate(path);
          await waitUntil(
            "the monitor to see the empty file",
            () => {
              const w = m.resolvWatch;
              return Promise.resolve(w.reads > since + (forcePolling ? 1 : 0) && w.due);
            },
            3000,
            5,
          );
          await Deno.writeTextFile(path, B);
        }),
        0,
        "an empty file in between is not a change",
      );
      // A burst of coalesced writes that ends where it began, then one that does not.
      // (Synchronous writes: no pause of this test can make a passing state look settled.)
      assert.equal(
        await edit(() => {
          for (const text of [A, "", A + B, B]) Deno.writeTextFileSync(path, text);
          return Promise.resolve();
        }),
        0,
        "a burst back to the same settings",
      );
      assert.equal(
        await edit(() => {
          for (const text of [A, "", A + B]) Deno.writeTextFileSync(path, text);
          return Promise.resolve();
        }),
        1,
        "a burst to new settings is one change",
      );
    } finally {
      await m.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("monitor: a resolv.conf that stays empty is reported after the grace period", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pc-mon-" });
  const path = `${dir}/resolv.conf`;
  await Deno.writeTextFile(path, "nameserver 10.0.0.53\n");
  // A quiet namespace when we can (the host's links come and go), our own network otherwise.
  await using lab = canUseNetns ? new NetnsLab("mde") : null;
  const ns = lab ? await lab.ns("a") : undefined;
  const m = await SystemNetworkMonitor.start({
    netns: ns,
    resolvConfPath: path,
    quietMs: 20,
    resolvGraceMs: 200,
  });
  const changes = recorder(m);
  const t0 = performance.now();
  try {
    await Deno.truncate(path);
    await waitUntil(
      "the emptied file to be reported",
      () => Promise.resolve(changes.some((c) => c.kinds.includes("dns"))),
      5000,
      10,
    );
    assert.ok(performance.now() - t0 >= 200, "not before the grace period");
  } finally {
    await m.close();
    await Deno.remove(dir, { recursive: true });
  }
});
