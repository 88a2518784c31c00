import assert from "node:assert/strict";
import { openTun } from "../../src/tun/open.ts";
import { PortcullisError } from "../../src/errors.ts";
import { FakeWintun } from "./fake_wintun.ts";
import { canUseNetns } from "../e2e/netns.ts";

Deno.test("openTun: unsupported platforms get a clear error", () => {
  assert.throws(
    () => openTun({ name: "pc0" }, "darwin"),
    (e) =>
      e instanceof PortcullisError && e.code === "unsupported_platform" &&
      e.message === 'Cannot open TUN device "pc0": darwin is not supported (Linux and Windows are)',
  );
});

Deno.test("openTun: windows goes through Wintun (injected symbols)", () => {
  const fake = new FakeWintun();
  const tun = openTun({ name: "pc-win", mtu: 1380, wintun: fake.api() }, "windows");
  assert.equal(tun.name, "pc-win");
  assert.equal(tun.mtu, 1380);
  tun.close();
  assert.deepEqual(fake.calls.slice(-2), ["EndSession", "CloseAdapter"]);
});

Deno.test({ name: "openTun: linux opens /dev/net/tun", ignore: !canUseNetns }, () => {
  const tun = openTun({ name: "pcq%d", mtu: 1420 }, "linux");
  try {
    assert.match(tun.name, /^pcq\d+$/);
    assert.equal(tun.mtu, 1420);
    assert.ok(tun.fd >= 0);
  } finally {
    tun.close();
  }
});
