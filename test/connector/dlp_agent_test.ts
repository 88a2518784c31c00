/**
 * The connector's DLP against the real edge app (in-process): the bundle is
 * fetched with an ETag and kept across a restart, so it applies while the
 * edge is down; an incident raised while the edge is unreachable waits in
 * the outbox (also across a restart) and reaches the edge, signed, once it
 * answers again. The endpoint agent runs report-only over a network share
 * listed in a mount table file.
 */
import assert from "node:assert/strict";
import { caFingerprint } from "../../src/connector/ca_pin.ts";
import { startConnector } from "../../src/connector/mod.ts";
import { FakeNetworkPort } from "../../src/connector/network_port.ts";
import { FakeTunnelPort } from "../../src/connector/tunnel_port.ts";
import { httpEdgeApi } from "../../src/http/edge_client.ts";
import { setLogSinks } from "../../src/log.ts";
import { fixture } from "../http/helpers.ts";

setLogSinks([]);

const FAKE_CA = "-----BEGIN CERTIFICATE-----\nTUlJQmZha2VjYQ==\n-----END CERTIFICATE-----\n";

async function until(what: string, cond: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("connector DLP: bundle kept across restarts, incidents wait for an unreachable edge", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pc-dlp-agent-" });
  const share = await Deno.makeTempDir({ prefix: "pc-dlp-share-" });
  const edge = await fixture();
  edge.clock.setWall(Date.now());
  edge.ctx.caSha256 = await caFingerprint(FAKE_CA);
  await Deno.writeTextFile(`${dir}/machine-id`, crypto.randomUUID().replaceAll("-", "") + "\n");
  await Deno.mkdir(`${dir}/net/eth0`, { recursive: true });
  await Deno.writeTextFile(`${dir}/net/eth0/address`, "02:00:00:00:20:01\n");
  await Deno.writeTextFile(
    `${dir}/mountinfo`,
    `50 22 0:60 / ${share} rw - nfs4 nas.corp.example:/export rw\n`,
  );
  for (
    const [path, body] of [
      ["/api/v1/admin/dlp/dictionaries/ssn", { kind: "us_ssn" }],
      ["/api/v1/admin/dlp/rules", {
        items: [{
          name: "SSN on shares",
          channels: ["network_share"],
          dictionaries: ["ssn"],
          action: "block",
        }],
      }],
    ] as const
  ) {
    assert.equal((await edge.adminReq("PUT", path, body)).status, 200);
  }
  let down = false;
  const fetch = async (req: Request) => {
    const url = new URL(req.url);
    if (url.pathname === "/ca.pem") return new Response(FAKE_CA);
    if (down) throw new TypeError("connection refused");
    return await edge.app.request(req);
  };
  const key = edge.newKey({ reusable: true }).key;
  const start = () =>
    startConnector({
      dataDir: `${dir}/data`,
      enrollmentKey: key,
      hostname: "ws-dlp",
      machineIdPath: `${dir}/machine-id`,
      sysNetPath: `${dir}/net`,
      heartbeatSec: 3600,
      postureSec: 3600,
      policyRefreshSec: 3600,
      dlp: {
        mode: "report_only",
        refreshSec: 3600,
        endpoint: { mountinfoPath: `${dir}/mountinfo`, rescanMs: 100, settleMs: 100 },
      },
    }, {
      tunnel: new FakeTunnelPort(),
      network: new FakeNetworkPort(),
      edge: httpEdgeApi({ fetch }),
    });
  let c = await start();
  try {
    await until("enrolled", () => c.engine.state.kind === "connected");
    await c.dlp!.refresh();
    const first = c.dlp!.status();
    assert.equal(first.rules[0].name, "SSN on shares");
    assert.equal(first.endpoint!.mounts[0].channel, "network_share");

    // The edge goes away; a copy to the share is reported when it comes back.
    down = true;
    await c.stop();
    c = await start();
    assert.equal(
      c.dlp!.status().policyVersion,
      first.policyVersion,
      "the stored bundle applies without the edge",
    );
    await until(
      "the share is watched",
      () => c.dlp!.status().endpoint!.mounts.some((m) => m.covered),
    );
    await Deno.writeTextFile(`${share}/payroll.txt`, "SSN 123-45-6780\n");
    await until("the incident is in the outbox", () => c.dlp!.status().outbox === 1);
    assert.equal(edge.store.dlpIncidents.count(), 0);
    await c.dlp!.refresh();
    assert.match(
      c.dlp!.status().lastError ?? "",
      /Cannot report a DLP incident: .*connection refused/,
    );
    assert.equal(c.dlp!.status().outbox, 1);

    // A restart keeps the report; the edge gets it, once, when it answers.
    await c.stop();
    c = await start();
    assert.equal(c.dlp!.status().outbox, 1);
    down = false;
    await c.dlp!.refresh();
    assert.equal(c.dlp!.status().outbox, 0);
    assert.equal(edge.store.dlpIncidents.count(), 1);
    const [inc] = edge.ctx.dlp.incidents({ limit: 10 });
    assert.equal(inc.hostname, "ws-dlp");
    assert.equal(inc.outcome, "report_only");
    assert.equal(inc.fileName, `${share}/payroll.txt`);
    assert.deepEqual(inc.matches[0].samples, ["***-**-6780"]);
    await c.dlp!.refresh();
    assert.equal(edge.store.dlpIncidents.count(), 1, "sent once");
  } finally {
    await c.stop();
    edge.store.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.remove(share, { recursive: true }).catch(() => {});
  }
});
