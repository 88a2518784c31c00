/**
 * The printing channel's CUPS backend, run the way CUPS runs a backend
 * (`portcullis cups-backend job user title copies options [file]`,
 * DEVICE_URI=portcullis-dlp:/<real URI>, CUPS_SERVERBIN naming where the real
 * backends are), against a running connector's local API and the real edge
 * app: a LibreOffice PDF with card numbers is cancelled with the rule in the
 * job log and reported to the edge; a clean PDF and a clean job on standard
 * input reach the wrapped backend byte for byte; discovery, a bad URI and an
 * unreachable connector answer as CUPS expects. CUPS itself is not needed:
 * the wrapped backend is a script in a CUPS_SERVERBIN of the test's own.
 */
import assert from "node:assert/strict";
import { caFingerprint } from "../../../src/connector/ca_pin.ts";
import { startConnector } from "../../../src/connector/mod.ts";
import { FakeNetworkPort } from "../../../src/connector/network_port.ts";
import { FakeTunnelPort } from "../../../src/connector/tunnel_port.ts";
import { createConnectorApp } from "../../../src/http/connector_app.ts";
import { httpEdgeApi } from "../../../src/http/edge_client.ts";
import { setLogSinks } from "../../../src/log.ts";
import { fixture } from "../../http/helpers.ts";
import { documents, haveLibreOffice } from "../documents.ts";

setLogSinks([]);

const FAKE_CA = "-----BEGIN CERTIFICATE-----\nTUlJQmZha2VjYQ==\n-----END CERTIFICATE-----\n";
const MAIN = new URL("../../../main.ts", import.meta.url).pathname;

async function backend(args: string[], env: Record<string, string>, stdin?: Uint8Array) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", MAIN, "cups-backend", ...args],
    env,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name:
    "CUPS backend: sensitive jobs cancelled and reported, clean jobs printed by the wrapped backend",
  ignore: !haveLibreOffice(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "pc-cups-" });
    const edge = await fixture();
    edge.clock.setWall(Date.now());
    edge.ctx.caSha256 = await caFingerprint(FAKE_CA);
    await Deno.writeTextFile(`${dir}/machine-id`, crypto.randomUUID().replaceAll("-", "") + "\n");
    await Deno.mkdir(`${dir}/net/eth0`, { recursive: true });
    await Deno.writeTextFile(`${dir}/net/eth0/address`, "02:00:00:00:30:01\n");
    await Deno.writeTextFile(`${dir}/mountinfo`, "");
    assert.equal(
      (await edge.adminReq("PUT", "/api/v1/admin/dlp/dictionaries/cards", { kind: "credit_card" }))
        .status,
      200,
    );
    assert.equal(
      (await edge.adminReq("PUT", "/api/v1/admin/dlp/rules", {
        items: [{
          name: "No cards in print",
          channels: ["printing"],
          dictionaries: ["cards"],
          action: "block",
        }],
      })).status,
      200,
    );
    const fetch = async (req: Request) =>
      new URL(req.url).pathname === "/ca.pem" ? new Response(FAKE_CA) : await edge.app.request(req);
    const c = await startConnector({
      dataDir: `${dir}/data`,
      enrollmentKey: edge.newKey().key,
      hostname: "ws-print",
      machineIdPath: `${dir}/machine-id`,
      sysNetPath: `${dir}/net`,
      heartbeatSec: 3600,
      postureSec: 3600,
      policyRefreshSec: 3600,
      dlp: {
        mode: "report_only",
        refreshSec: 3600,
        endpoint: { mountinfoPath: `${dir}/mountinfo` },
      },
    }, {
      tunnel: new FakeTunnelPort(),
      network: new FakeNetworkPort(),
      edge: httpEdgeApi({ fetch }),
    });
    const api = createConnectorApp({ engine: c.engine, hub: c.hub, store: c.store, dlp: c.dlp });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, api.fetch);
    try {
      for (let i = 0; i < 100 && c.engine.state.kind !== "connected"; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      await c.dlp!.refresh();
      const docs = await documents();
      await Deno.mkdir(`${dir}/serverbin/backend`, { recursive: true });
      await Deno.writeTextFile(
        `${dir}/serverbin/backend/testprn`,
        '#!/bin/sh\nprintf %s "$DEVICE_URI" > "$OUT_DIR/uri"\ncat "$6" > "$OUT_DIR/printed"\n',
        { mode: 0o755 },
      );
      const env = {
        DEVICE_URI: "portcullis-dlp:/testprn://queue1/raw",
        CUPS_SERVERBIN: `${dir}/serverbin`,
        PORTCULLIS_CONNECTOR_URL: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
        OUT_DIR: dir,
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      };
      const printed = () => Deno.readFile(`${dir}/printed`).catch(() => null);

      const blocked = await backend(["7", "alice", "Refunds Q3", "1", "", docs.pdf], env);
      assert.equal(blocked.code, 5, blocked.stderr);
      assert.match(
        blocked.stderr,
        /ERROR: Portcullis DLP blocked this print job: Rule "No cards in print" found 5 credit card numbers \(cards\)/,
      );
      assert.equal(await printed(), null, "nothing reached the printer");
      for (let i = 0; i < 100 && edge.store.dlpIncidents.count() === 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const [inc] = edge.ctx.dlp.incidents({ limit: 5 });
      assert.deepEqual([inc.channel, inc.outcome, inc.fileName], [
        "printing",
        "cancelled",
        "print job 7: Refunds Q3",
      ]);
      assert.equal(inc.matches[0].samples[0], "4111 **** **** 1111");
      assert.equal(c.store.listNotifications({ type: "dlp_blocked" }).length, 1);

      const clean = await backend(["8", "alice", "Newsletter", "1", "", docs.cleanPdf], env);
      assert.equal(clean.code, 0, clean.stderr);
      assert.deepEqual(await printed(), await Deno.readFile(docs.cleanPdf));
      assert.equal(await Deno.readTextFile(`${dir}/uri`), "testprn://queue1/raw");

      await Deno.remove(`${dir}/printed`);
      const text = new TextEncoder().encode("Lunch menu for Friday\n");
      const piped = await backend(["9", "bob", "Menu", "1", ""], env, text);
      assert.equal(piped.code, 0, piped.stderr);
      assert.deepEqual(await printed(), text);

      const discovery = await backend([], env);
      assert.match(discovery.stdout, /^network portcullis-dlp "Unknown" "Portcullis DLP/);
      const badUri = await backend(["10", "a", "t", "1", "", docs.cleanPdf], {
        ...env,
        DEVICE_URI: "ipp://x/",
      });
      assert.equal(badUri.code, 1);
      assert.match(
        badUri.stderr,
        /Device URI "ipp:\/\/x\/" is not portcullis-dlp:\/<uri of the real printer>/,
      );
      const down = await backend(["11", "a", "t", "1", "", docs.pdf], {
        ...env,
        PORTCULLIS_CONNECTOR_URL: "http://127.0.0.1:9",
      });
      assert.equal(down.code, 1, "fails (CUPS retries) rather than printing uninspected");
      assert.match(down.stderr, /Cannot ask the Portcullis connector about this job/);

      // The installer writes the backend where CUPS looks for it, and refuses without CUPS.
      const inst = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          MAIN,
          "dlp",
          "install-cups-backend",
          "--backend-dir",
          `${dir}/serverbin/backend`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(inst.success, new TextDecoder().decode(inst.stderr));
      assert.match(
        await Deno.readTextFile(`${dir}/serverbin/backend/portcullis-dlp`),
        /cups-backend "\$@"/,
      );
      const none = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, "dlp", "install-cups-backend", "--backend-dir", `${dir}/nope`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(none.success, false);
      assert.match(
        new TextDecoder().decode(none.stderr),
        /Cannot install the CUPS backend: ".*nope" does not exist \(is CUPS installed\?\)/,
      );
    } finally {
      await server.shutdown();
      await c.stop();
      edge.store.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
