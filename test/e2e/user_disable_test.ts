/**
 * Disabling a user cuts their tunnel within 5 s, end to end in namespaces
 * of this test's own: a real edge and a real connector (the `portcullis`
 * program), `oidc-provider` under Node beside the edge as the IdP. The
 * connector signs ana in with the device flow (`portcullis connect
 * --email`, the code completed at the IdP's forms), enrols under her and
 * connects; an HTTP server behind the edge (on the edge's tunnel address)
 * sees her requests; the admin disables ana; the server stops seeing them
 * within 5 s, and the connector's calls are refused.
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, waitUntil } from "./netns.ts";
import { adminLogin, DENO, EDGE_IP, MAIN, startRoles } from "./roles.ts";
import { nodeAvailable, OidcIdp } from "../identity/oidc_idp.ts";

const FORM = new URL("../identity/oidc_device_form.ts", import.meta.url).pathname;

Deno.test({
  name: "user disable e2e: the signed-in user's tunnel stops carrying traffic within 5 s",
  ignore: !canUseNetns || !nodeAvailable(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using lab = new NetnsLab("udis");
    const roles = await startRoles(lab);
    const { jar, csrf } = await adminLogin(roles);
    const api = async (path: string, method = "GET", body?: unknown) => {
      const r = await roles.inNs(roles.edgeNs, [
        "curl",
        "-s",
        "--cacert",
        roles.ca,
        "-b",
        jar,
        "-X",
        method,
        "-H",
        `X-CSRF-Token: ${csrf}`,
        ...(body === undefined
          ? []
          : ["-H", "Content-Type: application/json", "-d", JSON.stringify(body)]),
        `https://${EDGE_IP}:8443${path}`,
      ]);
      return JSON.parse(r.stdout);
    };
    try {
      await using idp = await OidcIdp.start({
        netns: roles.edgeNs,
        clients: [{
          client_id: "portcullis-edge",
          client_secret: "lab-client-secret-0123456789",
          redirect_uris: [`https://${EDGE_IP}:8443/api/v1/signin/oidc/callback`],
          grant_types: ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"],
        }],
      });
      const p = await api("/api/v1/admin/identity-providers", "POST", {
        name: "Corp",
        kind: "oidc",
        domains: ["corp.example"],
        oidc: {
          issuer: idp.issuer,
          clientId: "portcullis-edge",
          clientSecret: "lab-client-secret-0123456789",
        },
      });
      assert.ok(p.id, JSON.stringify(p));

      // The idle connector gives way to one that signs ana in before enrolling.
      roles.connector.kill("SIGTERM");
      await roles.connector.status;
      const keyFile = `${roles.dir}/ana.key`;
      await lab.exec(roles.edgeNs, [
        DENO,
        "run",
        "-A",
        MAIN,
        "edge",
        "key",
        "create",
        ...roles.edgeArgs,
        "--expires",
        "1h",
        "--key-file",
        keyFile,
      ]);
      const log = `${roles.dir}/ana.log`;
      lab.spawn(roles.connNs, [
        "sh",
        "-c",
        'exec "$@" >>"$0" 2>&1 </dev/null',
        log,
        DENO,
        "run",
        "-A",
        MAIN,
        "connect",
        "--key-file",
        keyFile,
        "--email",
        "ana@corp.example",
        "--data-dir",
        `${roles.dir}/ana`,
        "--hostname",
        "ana-ws",
        "--tun-interface",
        roles.connTun,
        "--no-dns",
      ]);
      let told: RegExpExecArray | null = null;
      await waitUntil("the sign-in instructions", async () => {
        const text = await Deno.readTextFile(log).catch(() => "");
        told = /open (\S+) and enter the code ([A-Z]{4}-[A-Z]{4})/.exec(text);
        return told !== null;
      }, 40_000);
      const [, url, code] = told!;
      const done = await lab.exec(roles.edgeNs, [
        DENO,
        "run",
        "-A",
        FORM,
        url,
        code,
        "ana@corp.example",
        "ana-password-1",
      ], { check: false });
      assert.equal(done.code, 0, done.stdout + done.stderr);
      await waitUntil("ana's connector to connect", async () => {
        const s = await roles.connectorStatus().catch(() => ({} as Record<string, unknown>));
        return s.state === "connected" && s.user === "ana@corp.example";
      }, 40_000);

      // A server behind the edge, on the edge's tunnel address.
      const serverLog = `${roles.dir}/http.log`;
      lab.spawn(roles.edgeNs, [
        "sh",
        "-c",
        'exec "$@" >>"$0" 2>&1 </dev/null',
        serverLog,
        "python3",
        "-m",
        "http.server",
        "8088",
        "--bind",
        "100.64.0.1",
      ]);
      const hits = async () =>
        (await Deno.readTextFile(serverLog).catch(() => "")).split("\n")
          .filter((l) => l.includes('"GET /')).length;
      const get = () =>
        roles.inNs(roles.connNs, [
          "curl",
          "-s",
          "-o",
          "/dev/null",
          "--max-time",
          "1",
          "http://100.64.0.1:8088/",
        ]);
      await waitUntil("the server to see ana's requests", async () => {
        await get();
        return (await hits()) > 0;
      }, 20_000);

      const users = await api("/api/v1/admin/users");
      const ana = users.users.find((u: { username: string }) => u.username === "ana@corp.example");
      assert.equal(ana.devices.length, 1);
      const t0 = Date.now();
      const off = await api(`/api/v1/admin/users/${ana.id}/disable`, "POST");
      assert.equal(off.disabled, true, JSON.stringify(off));
      // Requests keep going; the server must stop seeing them within 5 s.
      let last = await hits();
      let lastSeen = t0;
      let quietSince = 0;
      while (Date.now() - t0 < 8000) {
        await get();
        const n = await hits();
        if (n > last) {
          last = n;
          lastSeen = Date.now();
          quietSince = 0;
        } else if (!quietSince) quietSince = Date.now();
        if (quietSince && Date.now() - quietSince > 2500) break;
      }
      const cutMs = lastSeen - t0;
      console.log(`last request seen at the server ${cutMs} ms after the disable`);
      assert.ok(cutMs < 5000, `traffic still reached the server ${cutMs} ms after the disable`);
      assert.ok(quietSince > 0, "the server stopped seeing requests");
    } catch (e) {
      throw new Error(
        `${(e as Error).message}\n${await roles.logs()}\n${await Deno.readTextFile(
          `${roles.dir}/ana.log`,
        ).catch(() => "")}`,
      );
    }
  },
});
