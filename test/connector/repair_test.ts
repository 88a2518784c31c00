/**
 * "Repair app" pieces on their own: the route, link and nftables checks
 * over fakes (table tests), and the role's checks (pinned CA, state
 * database) over a real in-memory store and a real certificate.
 */
import assert from "node:assert/strict";
import { setLogSinks } from "../../src/log.ts";
import { FakeNetConfig } from "../../src/net/iface.ts";
import type { LinkState } from "../../src/net/link_state.ts";
import {
  canonicalRoute,
  repairLink,
  repairNft,
  repairRoutes,
} from "../../src/connector/tunnel_repair.ts";
import { type RepairCheck, repairConnector, Repairer } from "../../src/connector/repair.ts";
import { ConnectorState } from "../../src/store/connector_state.ts";
import { makeCaAndServer } from "./tls_fixture.ts";

setLogSinks([]);

const link = (o: Partial<LinkState> = {}): LinkState => ({
  exists: true,
  up: true,
  addresses: ["100.64.0.2/16"],
  routes: [],
  ...o,
});

Deno.test("canonicalRoute: ip's spellings of a destination", () => {
  const cases: [string, 4 | 6, string | null][] = [
    ["default", 4, "0.0.0.0/0"],
    ["default", 6, "::/0"],
    ["192.0.2.1", 4, "192.0.2.1/32"],
    ["10.0.0.0/8", 4, "10.0.0.0/8"],
    ["2001:db8::/32", 6, "2001:db8::/32"],
    ["2001:db8::1", 6, "2001:db8::1/128"],
    ["junk", 4, null],
  ];
  for (const [dst, fam, want] of cases) assert.equal(canonicalRoute(dst, fam), want, dst);
});

Deno.test("repairLink: up, address, both, gone", async () => {
  const cases: [Partial<LinkState>, RepairCheck["status"], string[][]][] = [
    [{}, "ok", []],
    [{ up: false }, "repaired", [["link", "set", "dev", "pc0", "up"]]],
    [{ addresses: [] }, "repaired", [["addr", "add", "100.64.0.2/16", "dev", "pc0"]]],
    [{ exists: false }, "failed", []],
  ];
  for (const [state, status, calls] of cases) {
    const net = new FakeNetConfig();
    const r = await repairLink(link(state), "pc0", "100.64.0.2/16", net);
    assert.equal(r.status, status, JSON.stringify(state));
    for (const c of calls) {
      assert.ok(net.calls.some((x) => x.join(" ").includes(c.join(" "))), `${c} in ${net.calls}`);
    }
  }
});

Deno.test("repairRoutes: only the missing prefixes are added, failures are reported", async () => {
  const installed = new Set(["0.0.0.0/1", "128.0.0.0/1", "2000::/3"]);
  const present = link({ routes: [{ family: 4, dst: "0.0.0.0/1" }] });
  const net = new FakeNetConfig();
  const r = await repairRoutes(present, "pc0", installed, net, null);
  assert.equal(r.status, "repaired");
  assert.match(
    r.detail,
    /Added 2 missing tunnel route\(s\) of 3 again: 128\.0\.0\.0\/1, 2000::\/3/,
  );
  assert.ok(
    !net.calls.some((c) => c.join(" ").includes("0.0.0.0/1 ")),
    "no re-add of a present route",
  );

  const all = link({
    routes: [
      { family: 4, dst: "0.0.0.0/1" },
      { family: 4, dst: "128.0.0.0/1" },
      { family: 6, dst: "2000::/3" },
    ],
  });
  assert.equal((await repairRoutes(all, "pc0", installed, new FakeNetConfig(), null)).status, "ok");

  const failing = new FakeNetConfig();
  failing.failWith = () => "RTNETLINK answers: No such device";
  const f = await repairRoutes(present, "pc0", installed, failing, null);
  assert.equal(f.status, "failed");

  const none = await repairRoutes(present, "pc0", new Set(), new FakeNetConfig(), "blocked");
  assert.equal(none.status, "ok");
  assert.match(none.detail, /fail mode "blocked"/);
});

Deno.test("repairNft: loaded as applied, missing, changed, stale", async () => {
  const cases: {
    needed: boolean;
    current: string | null;
    status: RepairCheck["status"];
    did: string | null;
  }[] = [
    { needed: true, current: "T", status: "ok", did: null },
    { needed: true, current: null, status: "repaired", did: "reapply" },
    { needed: true, current: "T-flushed", status: "repaired", did: "reapply" },
    { needed: false, current: null, status: "ok", did: null },
    { needed: false, current: "old", status: "repaired", did: "remove" },
  ];
  for (const c of cases) {
    let did: string | null = null;
    const r = await repairNft({
      table: "t",
      needed: c.needed,
      expected: "T",
      list: () => Promise.resolve(c.current),
      reapply: () => Promise.resolve(void (did = "reapply")),
      remove: () => Promise.resolve(void (did = "remove")),
    });
    assert.equal(r.status, c.status, JSON.stringify(c));
    assert.equal(did, c.did, JSON.stringify(c));
  }
});

Deno.test("repairConnector: CA pin and database checks, tunnel failures become rows", async () => {
  const store = ConnectorState.open(":memory:");
  try {
    const tunnel = { repair: () => Promise.reject(new Error("boom")) };
    const before = await repairConnector({ tunnel, store });
    const ids = Object.fromEntries(before.checks.map((c) => [c.id, c]));
    assert.equal(ids.tun.status, "failed");
    assert.match(ids.tun.detail, /boom/);
    assert.equal(ids.ca_trust.status, "skipped");
    assert.equal(ids.state_db.status, "ok");
    assert.equal(before.failed, 1);

    const { caPem } = await makeCaAndServer("repair-test");
    const fake = {
      getEnrollment: () => ({ caPem }) as never,
      integrityCheck: () => store.integrityCheck(),
      reindex: () => store.reindex(),
    };
    const ok = { repair: () => Promise.resolve([]) };
    const now = await repairConnector({ tunnel: ok, store: fake });
    assert.equal(now.checks.find((c) => c.id === "ca_trust")!.status, "ok");
    const later = await repairConnector({
      tunnel: ok,
      store: fake,
      now: () => Date.now() + 10 * 86_400_000,
    });
    const ca = later.checks.find((c) => c.id === "ca_trust")!;
    assert.equal(ca.status, "failed");
    assert.match(ca.detail, /expired/);

    const bad = { ...fake, getEnrollment: () => ({ caPem: "not a pem" }) as never };
    const b = await repairConnector({ tunnel: ok, store: bad });
    assert.equal(b.checks.find((c) => c.id === "ca_trust")!.status, "failed");

    // A damaged index that REINDEX rebuilds; then one it cannot.
    let broken = true;
    const db = {
      ...fake,
      integrityCheck: () => broken ? ["row 3 missing from index x"] : [],
      reindex: () => void (broken = false),
    };
    const d = await repairConnector({ tunnel: ok, store: db });
    assert.equal(d.checks.find((c) => c.id === "state_db")!.status, "repaired");
    const dead = { ...db, integrityCheck: () => ["page 2 is never used"], reindex: () => {} };
    const x = await repairConnector({ tunnel: ok, store: dead });
    assert.equal(x.checks.find((c) => c.id === "state_db")!.status, "failed");

    // The repairer keeps the last report and joins a run in progress.
    const rep = new Repairer({ tunnel: ok, store: fake });
    assert.equal(rep.last, null);
    const [a, c] = await Promise.all([rep.run(), rep.run()]);
    assert.equal(a, c);
    assert.equal(rep.last, a);
  } finally {
    store.db.close();
  }
});
