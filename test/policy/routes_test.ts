import assert from "node:assert/strict";
import { answerHostRoutes, planRoutes, routedThroughTunnel } from "../../src/policy/routes.ts";
import { DEFAULT_EXCLUDES } from "../../src/policy/types.ts";

Deno.test("routes: default profile tunnels the internet, keeps excludes and the edge outside", () => {
  const plan = planRoutes({
    profile: { include: ["0.0.0.0/0"], exclude: [...DEFAULT_EXCLUDES] },
    edgeAddresses: ["203.0.113.7", "2001:db8::7"],
  });
  assert.equal(routedThroughTunnel(plan, "8.8.8.8"), true);
  assert.equal(routedThroughTunnel(plan, "203.0.113.7"), false);
  assert.equal(routedThroughTunnel(plan, "203.0.113.6"), true);
  assert.equal(routedThroughTunnel(plan, "10.1.1.1"), false);
  assert.equal(routedThroughTunnel(plan, "192.168.1.1"), false);
  assert.equal(routedThroughTunnel(plan, "2001:db8::1"), false, "IPv6 not included by default");
  assert.deepEqual(plan.tunnel6, []);
  assert.deepEqual(plan.bypass4, [
    "10.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "203.0.113.7/32",
    "224.0.0.0/4",
    "255.255.255.255/32",
  ]);
  assert.deepEqual(plan.bypass6, ["2001:db8::7/128"]);
  assert.ok(plan.tunnel4.every((r) => !r.endsWith("/0")));
});

Deno.test("routes: table", () => {
  const table: {
    name: string;
    include: string[];
    exclude: string[];
    edge: string[];
    local?: string[];
    t4: string[];
    t6: string[];
  }[] = [
    {
      name: "/0 with nothing excluded is split in halves",
      include: ["0.0.0.0/0", "::/0"],
      exclude: [],
      edge: [],
      t4: ["0.0.0.0/1", "128.0.0.0/1"],
      t6: ["::/1", "8000::/1"],
    },
    {
      name: "edge inside an included private range is still outside",
      include: ["10.0.0.0/8"],
      exclude: [],
      edge: ["10.0.0.1"],
      t4: [
        "10.0.0.0/32",
        "10.0.0.2/31",
        "10.0.0.4/30",
        "10.0.0.8/29",
        "10.0.0.16/28",
        "10.0.0.32/27",
        "10.0.0.64/26",
        "10.0.0.128/25",
        "10.0.1.0/24",
        "10.0.2.0/23",
        "10.0.4.0/22",
        "10.0.8.0/21",
        "10.0.16.0/20",
        "10.0.32.0/19",
        "10.0.64.0/18",
        "10.0.128.0/17",
        "10.1.0.0/16",
        "10.2.0.0/15",
        "10.4.0.0/14",
        "10.8.0.0/13",
        "10.16.0.0/12",
        "10.32.0.0/11",
        "10.64.0.0/10",
        "10.128.0.0/9",
      ],
      t6: [],
    },
    {
      name: "split include only",
      include: ["100.64.0.0/16", "2001:db8:1::/48"],
      exclude: ["100.64.255.0/24"],
      edge: ["198.51.100.1"],
      t4: [
        "100.64.0.0/17",
        "100.64.128.0/18",
        "100.64.192.0/19",
        "100.64.224.0/20",
        "100.64.240.0/21",
        "100.64.248.0/22",
        "100.64.252.0/23",
        "100.64.254.0/24",
      ],
      t6: ["2001:db8:1::/48"],
    },
    {
      name: "local subnets kept direct on request",
      include: ["198.18.0.0/15"],
      exclude: [],
      edge: [],
      local: ["198.18.0.20/16"],
      t4: ["198.19.0.0/16"],
      t6: [],
    },
    {
      name: "everything excluded",
      include: ["0.0.0.0/0"],
      exclude: ["0.0.0.0/0"],
      edge: [],
      t4: [],
      t6: [],
    },
  ];
  for (const row of table) {
    const plan = planRoutes({
      profile: { include: row.include, exclude: row.exclude },
      edgeAddresses: row.edge,
      device: row.local ? { addresses: row.local, keepLocalSubnetsDirect: true } : undefined,
    });
    assert.deepEqual(plan.tunnel4, row.t4, row.name);
    assert.deepEqual(plan.tunnel6, row.t6, row.name);
  }
});

Deno.test("routes: bad input names the value", () => {
  assert.throws(
    () => planRoutes({ profile: { include: ["0.0.0.0/0"], exclude: [] }, edgeAddresses: ["edge"] }),
    /Cannot parse IP address "edge"/,
  );
  assert.throws(
    () => planRoutes({ profile: { include: ["10/8"], exclude: [] }, edgeAddresses: [] }),
    /Cannot parse IP prefix "10\/8"/,
  );
});

Deno.test("routes: segments are tunnelled even inside an exclude range", () => {
  const table: {
    name: string;
    include: string[];
    exclude: string[];
    edge: string[];
    local?: string[];
    segments: string[];
    inside: string[];
    outside: string[];
  }[] = [
    {
      name: "a segment inside the default 10/8 exclude",
      include: ["0.0.0.0/0"],
      exclude: [...DEFAULT_EXCLUDES],
      edge: ["192.0.2.1"],
      segments: ["10.20.0.0/24"],
      inside: ["10.20.0.10", "8.8.8.8"],
      outside: ["10.20.1.1", "10.0.0.1", "192.168.1.1", "192.0.2.1"],
    },
    {
      name: "segments inside 172.16/12 and 192.168/16, one host each",
      include: ["0.0.0.0/0"],
      exclude: [...DEFAULT_EXCLUDES],
      edge: [],
      segments: ["172.20.1.5/32", "192.168.7.0/24"],
      inside: ["172.20.1.5", "192.168.7.200"],
      outside: ["172.20.1.6", "192.168.8.1"],
    },
    {
      name: "a split-tunnel profile still gets its segments",
      include: ["100.64.0.0/16"],
      exclude: [],
      edge: [],
      segments: ["10.1.0.0/16", "2001:db8:5::/64"],
      inside: ["10.1.2.3", "100.64.0.9", "2001:db8:5::1"],
      outside: ["8.8.8.8", "10.2.0.1", "2001:db8:6::1"],
    },
    {
      name: "the edge's own address inside a segment stays outside (no loop)",
      include: ["0.0.0.0/0"],
      exclude: [...DEFAULT_EXCLUDES],
      edge: ["10.9.0.1"],
      segments: ["10.9.0.0/24"],
      inside: ["10.9.0.2", "10.9.0.0"],
      outside: ["10.9.0.1"],
    },
    {
      name: "local subnets kept direct win over a segment",
      include: ["0.0.0.0/0"],
      exclude: [...DEFAULT_EXCLUDES],
      edge: [],
      local: ["10.5.5.20/24"],
      segments: ["10.5.0.0/16"],
      inside: ["10.5.6.1"],
      outside: ["10.5.5.1"],
    },
  ];
  for (const row of table) {
    const plan = planRoutes({
      profile: { include: row.include, exclude: row.exclude },
      edgeAddresses: row.edge,
      device: row.local ? { addresses: row.local, keepLocalSubnetsDirect: true } : undefined,
      segments: row.segments,
    });
    for (const a of row.inside) {
      assert.equal(routedThroughTunnel(plan, a), true, `${row.name}: ${a}`);
    }
    for (const a of row.outside) {
      assert.equal(routedThroughTunnel(plan, a), false, `${row.name}: ${a}`);
    }
    // Nothing routed into the tunnel is also reported as kept outside.
    for (const r of plan.bypass4) {
      assert.equal(routedThroughTunnel(plan, r.split("/")[0]), false, `${row.name}: ${r}`);
    }
  }
});

Deno.test("routes: host routes for edge DNS answers outside the plan (table)", () => {
  const plan = planRoutes({
    profile: { include: ["0.0.0.0/0"], exclude: [...DEFAULT_EXCLUDES] },
    edgeAddresses: ["192.0.2.1"],
    segments: ["10.9.0.0/24"],
  });
  const table: [string, string[], string[]][] = [
    ["an address in 10/8", ["10.20.0.10"], ["10.20.0.10/32"]],
    ["already tunnelled (internet, a CIDR segment)", ["8.8.8.8", "10.9.0.5"], []],
    ["the edge itself never", ["192.0.2.1"], []],
    ["duplicates once, IPv6 too", ["10.1.1.1", "10.1.1.1", "fd00::5"], [
      "10.1.1.1/32",
      "fd00::5/128",
    ]],
    ["garbage ignored", ["not-an-ip", ""], []],
  ];
  for (const [name, answers, want] of table) {
    assert.deepEqual(answerHostRoutes(plan, answers, ["192.0.2.1"]), want, name);
  }
});
