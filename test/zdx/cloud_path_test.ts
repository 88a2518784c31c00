import assert from "node:assert/strict";
import { parseMtrJson, runMtr, slowestHop } from "../../src/zdx/cloud_path.ts";
import { canUseNetns, NetnsLab } from "../e2e/netns.ts";

const report = (hubs: unknown[]) =>
  JSON.stringify({ report: { mtr: { dst: "192.0.2.1", tests: 3 }, hubs } });
const hub = (count: number, host: string, avg: number, loss = 0) => ({
  count,
  host,
  "Loss%": loss,
  Snt: 3,
  Last: avg,
  Avg: avg,
  Best: avg,
  Wrst: avg,
  StDev: 0,
});

Deno.test("cloud path: mtr's JSON report, and the hop that adds the time", () => {
  const p = parseMtrJson(
    report([hub(1, "10.0.0.1", 1), hub(2, "???", 0, 100), hub(3, "192.0.2.1", 151)]),
  );
  assert.equal(p.target, "192.0.2.1");
  assert.equal(p.hops.length, 3);
  assert.deepEqual(p.slowest, { hop: 3, host: "192.0.2.1", addedMs: 150 });
  assert.equal(slowestHop([]), null);
});

const GARBAGE: [string, string][] = [
  ["not json", "mtr: unknown host"],
  ["no hubs", JSON.stringify({ report: { mtr: { dst: "x" } } })],
  ["a hop without times", report([{ count: 1, host: "h" }])],
  ["negative time", report([hub(1, "h", -1)])],
];
for (const [name, text] of GARBAGE) {
  Deno.test(`cloud path: garbage is refused (${name})`, () => {
    assert.throws(() => parseMtrJson(text), /Cannot read the mtr report/);
  });
}

Deno.test("cloud path: a bad target is refused before mtr runs; a real run reads", async () => {
  await assert.rejects(runMtr("-x; rm -rf /"), /Invalid mtr target/);
  const p = await runMtr("127.0.0.1", { count: 2 });
  assert.equal(p.target, "127.0.0.1");
  assert.equal(p.hops[0].host, "127.0.0.1");
});

Deno.test({
  name: "cloud path: real mtr through a router namespace names both hops",
  ignore: !canUseNetns,
  sanitizeResources: false,
  async fn() {
    await using lab = new NetnsLab("mtr");
    const a = await lab.ns("a"), r = await lab.ns("r"), b = await lab.ns("b");
    await lab.link(a, "10.91.1.2/24", r, "10.91.1.1/24", "eth0");
    await lab.link(r, "10.91.2.1/24", b, "10.91.2.2/24", "eth1");
    await lab.exec(r, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await lab.exec(a, ["ip", "route", "add", "default", "via", "10.91.1.1"]);
    await lab.exec(b, ["ip", "route", "add", "default", "via", "10.91.2.1"]);
    const out = await lab.exec(a, ["mtr", "--json", "-n", "-c", "2", "-i", "0.2", "10.91.2.2"]);
    const p = parseMtrJson(out.stdout);
    assert.deepEqual(p.hops.map((h) => h.host), ["10.91.1.1", "10.91.2.2"]);
    assert.ok(p.hops.every((h) => h.lossPct === 0 && h.sent === 2));
    assert.ok(p.slowest);
  },
});
