/**
 * The doctor's identity-provider hop, end to end in namespaces of this
 * test's own (test/e2e/roles.ts):
 *
 *   edge 192.0.2.1 (+ oidc-provider on its loopback, a TLS front on :9444)
 *     ── conn 192.0.2.10 (ana's connector)
 *
 * ana signs in through the real oidc-provider (under Node) with the device
 * flow, so her device's policy bundle names that provider. The admin then
 * serves the IdP as https on the edge's address (a TLS front before the
 * same oidc-provider) and points the provider's issuer there; each row
 * switches a fault on and waits until `portcullis doctor --json` on ana's
 * machine gives the expected verdict for the idp hop: reachable (ok), the
 * IdP's port blocked on the way (idp_unreachable, naming the host), the
 * IdP's certificate expired (idp_cert_expired).
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, waitUntil } from "./netns.ts";
import { adminLogin, DENO, EDGE_IP, MAIN, startRoles } from "./roles.ts";
import { nodeAvailable, OidcIdp } from "../identity/oidc_idp.ts";
import type { DoctorReport } from "../../src/diag/doctor/mod.ts";

const FORM = new URL("../identity/oidc_device_form.ts", import.meta.url).pathname;
const FRONT = new URL("./tools/tls_front.ts", import.meta.url).pathname;
const FAKETIME = "/usr/bin/faketime";
const IDP_PORT = 9444;

interface Row {
  name: string;
  status: "ok" | "fault";
  cause: string;
  evidence: RegExp;
  on(): Promise<void>;
  off?(): Promise<void>;
}

Deno.test({
  name: "doctor e2e: the IdP hop — reachable, blocked on the path, certificate expired",
  ignore: !canUseNetns || !nodeAvailable(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await using lab = new NetnsLab("didp");
    const roles = await startRoles(lab);
    const { edgeNs, connNs, dir } = roles;
    const { jar, csrf } = await adminLogin(roles);
    const api = async (path: string, method = "GET", body?: unknown) => {
      const r = await roles.inNs(edgeNs, [
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
    const detached = (ns: string, log: string, cmd: string[]) =>
      lab.spawn(ns, ["sh", "-c", 'exec "$@" >>"$0" 2>&1 </dev/null', `${dir}/${log}`, ...cmd]);
    const doctor = async () => {
      const out = await roles.inNs(connNs, [DENO, "run", "-A", MAIN, "doctor", "--json"]);
      return { code: out.code, report: JSON.parse(out.stdout) as DoctorReport };
    };
    const stop = async (p: Deno.ChildProcess | null) => {
      if (!p) return;
      try {
        p.kill("SIGTERM");
      } catch { /* gone */ }
      await p.status;
    };
    try {
      await using idp = await OidcIdp.start({
        netns: edgeNs,
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

      // ana signs in through the IdP (device flow) and enrols under her name.
      roles.connector.kill("SIGTERM");
      await roles.connector.status;
      const keyFile = `${dir}/ana.key`;
      await lab.exec(edgeNs, [
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
      const log = `${dir}/ana.log`;
      roles.connector = detached(connNs, "ana.log", [
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
        `${dir}/ana`,
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
      const done = await lab.exec(edgeNs, [
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

      // Certificates for the IdP's https front: one in date, one that expired a year ago.
      const certs = `${dir}/idp-certs`;
      await Deno.mkdir(certs);
      const cert = async (name: string, fake: string[]) => {
        await lab.exec(edgeNs, [
          ...fake,
          "openssl",
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:P-256",
          "-nodes",
          "-keyout",
          `${certs}/${name}.key`,
          "-out",
          `${certs}/${name}.crt`,
          "-days",
          "30",
          "-subj",
          "/CN=idp.corp.example",
          "-addext",
          `subjectAltName=IP:${EDGE_IP}`,
        ]);
      };
      await cert("good", []);
      await cert("old", [FAKETIME, "-f", "-400d"]);
      const idpPort = new URL(idp.issuer).port;
      let front: Deno.ChildProcess | null = null;
      const startFront = async (name: string) => {
        await stop(front);
        front = detached(edgeNs, "front.log", [
          DENO,
          "run",
          "-A",
          FRONT,
          EDGE_IP,
          String(IDP_PORT),
          `${certs}/${name}.crt`,
          `${certs}/${name}.key`,
          `127.0.0.1:${idpPort}`,
        ]);
        await waitUntil("the IdP's TLS front", async () => {
          const x = await roles.inNs(edgeNs, ["ss", "-tln"]);
          return x.stdout.includes(`${EDGE_IP}:${IDP_PORT}`);
        }, 20_000);
      };
      await startFront("good");
      // The front really carries the IdP: its discovery document comes through.
      const disco = await roles.inNs(connNs, [
        "curl",
        "-s",
        "-k",
        "--max-time",
        "5",
        `https://${EDGE_IP}:${IDP_PORT}/.well-known/openid-configuration`,
      ]);
      assert.match(disco.stdout, /"device_authorization_endpoint"/);
      const patched = await api(`/api/v1/admin/identity-providers/${p.id}`, "PATCH", {
        oidc: { issuer: `https://${EDGE_IP}:${IDP_PORT}`, clientId: "portcullis-edge" },
      });
      assert.equal(patched.oidc?.issuer, `https://${EDGE_IP}:${IDP_PORT}`, JSON.stringify(patched));
      await roles.inNs(connNs, [
        "curl",
        "-s",
        "-X",
        "POST",
        "-H",
        "X-Portcullis-Request: 1",
        "http://127.0.0.1:9080/api/v1/actions/update-policy",
      ]);

      const rows: Row[] = [
        {
          name: "IdP reachable, certificate in date",
          status: "ok",
          cause: "ok",
          evidence: new RegExp(
            `"Corp" at https://${EDGE_IP}:${IDP_PORT} answers over TLS, certificate valid until`,
          ),
          on: () => Promise.resolve(),
        },
        {
          name: "IdP blocked on the path",
          status: "fault",
          cause: "idp_unreachable",
          evidence: new RegExp(
            `cannot be reached on ${EDGE_IP.replaceAll(".", "\\.")}:${IDP_PORT}`,
          ),
          on: () =>
            lab.exec(connNs, ["nft", "-f", "-"], {
              stdin:
                `table ip noidp {\n  chain out { type filter hook output priority 0; ip daddr ${EDGE_IP} tcp dport ${IDP_PORT} drop; }\n}\n`,
            }).then(() => {}),
          off: () => lab.exec(connNs, ["nft", "delete", "table", "ip", "noidp"]).then(() => {}),
        },
        {
          name: "IdP certificate expired",
          status: "fault",
          cause: "idp_cert_expired",
          evidence: /certificate for "CN=idp\.corp\.example" that expired on 20\d\d-/,
          on: () => startFront("old"),
          off: () => startFront("good"),
        },
      ];
      for (const row of rows) {
        await t.step(`${row.name} → idp/${row.cause}`, async () => {
          let last: Awaited<ReturnType<typeof doctor>> | null = null;
          try {
            await row.on();
            await waitUntil(
              `the doctor to say idp/${row.cause}`,
              async () => {
                last = await doctor().catch(() => null);
                return last?.report.verdicts.some((v) =>
                  v.hop === "idp" && v.cause === row.cause
                ) ??
                  false;
              },
              45_000,
              500,
            ).catch((e) => {
              throw new Error(`${e.message}\n${JSON.stringify(last, null, 1)}`);
            });
            const v = last!.report.verdicts.find((x) => x.hop === "idp")!;
            assert.equal(v.status, row.status);
            assert.match(v.evidence, row.evidence);
            if (row.status === "fault") {
              assert.equal(last!.code, 1, "a fault found: exit 1");
              assert.ok(v.fix);
            }
            console.log(`  idp/${row.cause}: ${v.evidence}${v.fix ? `\n    fix: ${v.fix}` : ""}`);
          } finally {
            await row.off?.();
          }
        });
      }
      await stop(front);
    } catch (e) {
      throw new Error(
        `${(e as Error).message}\n${await roles.logs()}\n${await Deno.readTextFile(
          `${dir}/ana.log`,
        ).catch(() => "")}`,
      );
    }
  },
});
