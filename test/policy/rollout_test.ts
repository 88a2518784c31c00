/** Update rules over devices: percentages, stability, groups, order, pause and rollback (tables). */
import assert from "node:assert/strict";
import {
  assignRollout,
  offerFor,
  type RolloutDevice,
  type UpdateRule,
} from "../../src/policy/rollout.ts";

const rule = (over: Partial<UpdateRule> = {}): UpdateRule => ({
  id: "upd_a",
  name: "canary",
  group: null,
  percent: 50,
  targetVersion: "0.2.0",
  paused: false,
  rollback: false,
  position: 1,
  ...over,
});

/** Ten simulated devices with random ids (as enrolment makes them). */
const devices = (n = 10, groups: string[] = []): RolloutDevice[] =>
  Array.from({ length: n }, () => ({ id: `dev_${crypto.randomUUID().slice(0, 18)}`, groups }));

const offered = (rules: UpdateRule[], ds: RolloutDevice[]) => {
  const a = assignRollout(rules, ds);
  return new Set(ds.filter((d) => offerFor(a.get(d.id)) !== null).map((d) => d.id));
};

Deno.test("rollout: a percentage rule offers that share of its devices (table)", () => {
  const table: [percent: number, fleet: number, expected: number][] = [
    [0, 10, 0],
    [10, 10, 1],
    [50, 10, 5],
    [100, 10, 10],
    [33, 3, 1],
    [50, 1, 1], // round(0.5)
    [25, 7, 2],
  ];
  for (const [percent, n, expected] of table) {
    for (let trial = 0; trial < 20; trial++) {
      const got = offered([rule({ percent })], devices(n)).size;
      assert.equal(got, expected, `${percent} % of ${n}`);
    }
  }
});

Deno.test("rollout: a 50 % rule moves the same half of 10 devices on every evaluation", () => {
  const ds = devices(10);
  const first = offered([rule()], ds);
  assert.equal(first.size, 5);
  for (let i = 0; i < 10; i++) {
    // Another order of the same fleet (the store lists devices as it likes).
    const shuffled = [...ds].sort(() => Math.random() - 0.5);
    assert.deepEqual(offered([rule()], shuffled), first);
  }
  // Raising the percentage only adds devices; another rule draws its own sample.
  const seventy = offered([rule({ percent: 70 })], ds);
  assert.equal(seventy.size, 7);
  for (const id of first) assert.ok(seventy.has(id));
  const samples = new Set<string>();
  for (let i = 0; i < 8; i++) {
    samples.add([...offered([rule({ id: `upd_${i}` })], ds)].sort().join());
  }
  assert.ok(samples.size > 1, "every rule picked the very same devices");
});

Deno.test("rollout: groups, order, pause and rollback decide the offer (table)", () => {
  const eng = { id: "dev_eng", groups: ["engineering"] };
  const ops = { id: "dev_ops", groups: ["ops"] };
  const machine = { id: "dev_m", groups: [] };
  const engRule = rule({ id: "upd_eng", name: "eng", group: "engineering", percent: 100 });
  const all = rule({
    id: "upd_all",
    name: "all",
    percent: 100,
    targetVersion: "0.1.5",
    position: 2,
  });
  const table: [what: string, rules: UpdateRule[], device: RolloutDevice, want: string | null][] = [
    ["no rule", [], eng, null],
    ["group member", [engRule], eng, "eng"],
    ["not in the group", [engRule], ops, null],
    ["first matching rule wins", [{ ...engRule, position: 1 }, all], eng, "eng"],
    ["order is by position", [{ ...engRule, position: 3 }, all], eng, "all"],
    ["falls to the catch-all", [engRule, all], ops, "all"],
    ["machine device, catch-all", [engRule, all], machine, "all"],
    ["paused rule holds its devices", [{ ...engRule, paused: true }, all], eng, null],
    ["outside 0 %", [{ ...engRule, percent: 0 }], eng, null],
  ];
  for (const [what, rules, device, want] of table) {
    const o = offerFor(assignRollout(rules, [device, machine, ops]).get(device.id));
    assert.equal(o?.ruleName ?? null, want, what);
  }
  const rb = offerFor(
    assignRollout([rule({ rollback: true, percent: 100, targetVersion: "0.0.9" })], [eng]).get(
      eng.id,
    ),
  );
  assert.deepEqual(rb, { ruleId: "upd_a", ruleName: "canary", version: "0.0.9", rollback: true });
});
