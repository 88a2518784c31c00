/** Client-to-client names resolve to the registering device's tunnel address, and only while valid. */
import assert from "node:assert/strict";
import { fixture } from "../http/helpers.ts";
import { c2cAddress } from "../../src/edge/devices.ts";

Deno.test("c2c: a valid registration resolves to the device address; disabled or unknown do not", async () => {
  const f = await fixture();
  try {
    const d = await f.enroll();
    const fqdn = "laptop.clients.portcullis.internal";
    assert.equal(c2cAddress(f.ctx, fqdn), null, "nothing while client-to-client is off");
    await f.adminReq("PUT", "/api/v1/admin/policy/client-to-client", { enabled: true });
    const r = await (await f.req("POST", "/api/v1/c2c/register", { fqdn }, d.headers)).json();
    assert.equal(r.valid, true, r.reason);
    assert.equal(c2cAddress(f.ctx, fqdn), d.json.address);
    assert.equal(c2cAddress(f.ctx, "LAPTOP.clients.portcullis.internal"), d.json.address);
    assert.equal(c2cAddress(f.ctx, "other.clients.portcullis.internal"), null);
    await f.adminReq("POST", `/api/v1/admin/devices/${d.json.deviceId}/disable`);
    assert.equal(c2cAddress(f.ctx, fqdn), null, "a disabled device is not reachable by name");
  } finally {
    f.store.close();
  }
});
