/**
 * The IdP hop against real sockets on loopback: a TLS server with a
 * certificate in date, one whose certificate expired (made by openssl under
 * faketime, a year back), a plain http listener, a closed port, and no IdP
 * at all. Each row probes (probeIdp) and judges (idpVerdict).
 */
import assert from "node:assert/strict";
import { probeIdp } from "../../src/diag/doctor/idp_probe.ts";
import { idpVerdict } from "../../src/diag/doctor/verdicts.ts";

const FAKETIME = "/usr/bin/faketime";
const canFake = (() => {
  try {
    return Deno.statSync(FAKETIME).isFile;
  } catch {
    return false;
  }
})();

/** A self-signed certificate for 127.0.0.1; `backDays` moves openssl's clock back. */
async function selfSigned(dir: string, name: string, backDays: number, days: number) {
  const args = [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${dir}/${name}.key`,
    "-out",
    `${dir}/${name}.crt`,
    "-days",
    String(days),
    "-subj",
    "/CN=idp.test",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
  ];
  const cmd = backDays
    ? new Deno.Command(FAKETIME, { args: ["-f", `-${backDays}d`, "openssl", ...args] })
    : new Deno.Command("openssl", { args });
  const out = await cmd.output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return {
    cert: await Deno.readTextFile(`${dir}/${name}.crt`),
    key: await Deno.readTextFile(`${dir}/${name}.key`),
  };
}

/** Accepts TLS connections and completes handshakes until closed. */
function serveTls(pem: { cert: string; key: string }) {
  const l = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: pem.cert, key: pem.key });
  const conns: Deno.Conn[] = [];
  const done = (async () => {
    for await (const c of l) {
      conns.push(c);
      (c as Deno.TlsConn).handshake().catch(() => {});
    }
  })().catch(() => {});
  return {
    port: (l.addr as Deno.NetAddr).port,
    async close() {
      l.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await done;
    },
  };
}

Deno.test({
  name: "idp probe: reachable, expired certificate, http, unreachable, none",
  ignore: !canFake,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "pcl-idp-" });
    const good = serveTls(await selfSigned(dir, "good", 0, 30));
    const expired = serveTls(await selfSigned(dir, "old", 400, 30));
    const plain = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepting = (async () => {
      for await (const c of plain) c.close();
    })().catch(() => {});
    // A port nothing listens on: bind one, note it, close it.
    const gone = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const closedPort = (gone.addr as Deno.NetAddr).port;
    gone.close();
    const plainPort = (plain.addr as Deno.NetAddr).port;
    try {
      const rows: {
        name: string;
        url: string | null;
        status: string;
        cause: string;
        evidence: RegExp;
      }[] = [
        {
          name: "TLS, certificate in date",
          url: `https://127.0.0.1:${good.port}/realms/corp`,
          status: "ok",
          cause: "ok",
          evidence:
            /"Corp" at https:\/\/127\.0\.0\.1:\d+\/realms\/corp answers over TLS, certificate valid until 20/,
        },
        {
          name: "certificate expired",
          url: `https://127.0.0.1:${expired.port}`,
          status: "fault",
          cause: "idp_cert_expired",
          evidence: /certificate for "CN=idp\.test" that expired on 20\d\d-/,
        },
        {
          name: "http on loopback: TCP only",
          url: `http://127.0.0.1:${plainPort}`,
          status: "ok",
          cause: "ok",
          evidence: /answers over TCP \(http: no certificate\)/,
        },
        {
          name: "nothing listening",
          url: `https://127.0.0.1:${closedPort}`,
          status: "fault",
          cause: "idp_unreachable",
          evidence: new RegExp(
            `cannot be reached on 127\\.0\\.0\\.1:${closedPort}: .*ECONNREFUSED`,
          ),
        },
        {
          name: "no IdP for this device",
          url: null,
          status: "skipped",
          cause: "no_idp",
          evidence: /machine device/,
        },
      ];
      for (const row of rows) {
        await t.step(row.name, async () => {
          const facts = await probeIdp(
            row.url === null ? null : { name: "Corp", url: row.url },
            2000,
          );
          const v = idpVerdict({ service: { running: true }, idp: facts }, Date.now());
          assert.equal(v.cause, row.cause, JSON.stringify({ facts, v }));
          assert.equal(v.status, row.status);
          assert.match(v.evidence, row.evidence);
          if (v.status === "fault") assert.ok(v.fix);
        });
      }
    } finally {
      await good.close();
      await expired.close();
      plain.close();
      await accepting;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
