/** Device network choice and address arithmetic. */
import assert from "node:assert/strict";
import {
  chooseDeviceNetwork,
  hostAddress,
  overlaps,
  parsePrefix4,
} from "../../src/edge/addresses.ts";

Deno.test("addresses: 100.64/16 unless it clashes, then the next free /16 up to 100.83", () => {
  const table: [string[], string][] = [
    [[], "100.64.0.0/16"],
    [["192.168.1.10/24", "fe80::1/64"], "100.64.0.0/16"],
    [["100.64.3.1/24"], "100.65.0.0/16"],
    [["100.64.0.1/15"], "100.66.0.0/16"],
    [
      ["100.64.0.0/10"].slice(0, 0).concat(["100.64.9.9/16", "100.65.1.1/16", "100.66.0.1/30"]),
      "100.67.0.0/16",
    ],
    [["10.0.0.1/8", "100.100.0.1/16"], "100.64.0.0/16"],
  ];
  for (const [local, want] of table) {
    assert.equal(chooseDeviceNetwork(local), want, local.join(","));
  }
  assert.throws(() => chooseDeviceNetwork(["100.64.0.1/10"]), /all overlap/);
  assert.throws(() => chooseDeviceNetwork([], "10.0.0.0/8"), /expected an IPv4 \/16/);
  assert.equal(chooseDeviceNetwork([], "100.70.0.0/16"), "100.70.0.0/16");
});

Deno.test("addresses: host arithmetic and overlap", () => {
  assert.equal(hostAddress("100.64.0.0/16", 1), "100.64.0.1");
  assert.equal(hostAddress("100.65.0.0/16", 258), "100.65.1.2");
  assert.equal(hostAddress("100.65.0.0/16", 65534), "100.65.255.254");
  assert.ok(overlaps(parsePrefix4("0.0.0.0/0")!, parsePrefix4("100.64.0.0/16")!));
  assert.ok(!overlaps(parsePrefix4("100.63.255.0/24")!, parsePrefix4("100.64.0.0/16")!));
  assert.equal(parsePrefix4("300.1.1.1/8"), null);
});
