/**
 * Internet security end to end (issue 12, with issue 13's inline DLP), in
 * namespaces of its own, with real curl, openssl and a real HTTPS origin in
 * the "internet" namespace serving certificates of its own CA:
 *
 *        ┌──────────── wan (router) ─────────────┐
 *      edge 192.0.2.1      ws 198.51.100.10      inet 198.18.0.80 (HTTP, HTTPS, DNS)
 *   (proxy :3128 on 100.64.0.1)                       198.18.0.81 (HTTPS, expired cert)
 *
 * - transparent (tunnelled 80 redirected by nftables) and explicit
 *   (`curl -x 100.64.0.1:3128`): a blocked host gets the block page naming
 *   the rule, an allowed one loads and the origin sees the edge; both in the
 *   web log with the user and the device; the edge's own address and
 *   loopback are refused (the proxy reaches the internet only);
 * - SSL inspection on: the workstation sees a certificate issued by the
 *   edge's inspection CA (and it verifies against it), HTTP/2 works through
 *   it; a Do-Not-Inspect host shows the origin's own issuer; an origin with
 *   an expired certificate is refused with the block page;
 * - inline DLP: a DOCX with five card numbers uploaded over inspected HTTPS
 *   (multipart) is blocked with the rule named, a clean one passes, the
 *   incident has only redacted samples.
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, waitUntil } from "./netns.ts";
import { ADDR, inNs, LAB_USER, PROXY, startWebLab } from "./web_lab.ts";
import { documents, haveLibreOffice } from "../dlp/documents.ts";

/** curl in `ns`: body, HTTP status, exit code, HTTP version. */
async function curl(ns: string, args: string[]) {
  const r = await inNs(ns, [
    "curl",
    "-s",
    "--max-time",
    "10",
    "-w",
    "\n%{http_code} %{exitcode} %{http_version}",
    ...args,
  ]);
  const i = r.stdout.lastIndexOf("\n");
  const [status, code, version] = r.stdout.slice(i + 1).split(" ");
  return { body: r.stdout.slice(0, i), status: Number(status), code: Number(code), version };
}

/** The issuer of the certificate `ns` is shown for `name`:443. */
async function issuerSeen(ns: string, name: string): Promise<string> {
  const r = await inNs(ns, [
    "sh",
    "-c",
    `openssl s_client -connect ${name}:443 -servername ${name} </dev/null 2>/dev/null | openssl x509 -noout -issuer`,
  ]);
  return r.stdout.trim();
}

Deno.test({
  name: "web proxy: URL policy, SSL inspection and inline DLP through the tunnel, end to end",
  ignore: !canUseNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await using lab = new NetnsLab("web");
    const dir = await Deno.makeTempDir({ prefix: "pcweb" });
    lab.defer(() => Deno.remove(dir, { recursive: true }));
    let failed = false;
    lab.defer(async () => {
      if (!failed) return;
      for (const f of ["edge.log", "ws.log", "inet.log"]) {
        const text = await Deno.readTextFile(`${dir}/${f}`).catch(() => "");
        console.error(
          `----- ${f} (last 40 lines) -----\n${text.split("\n").slice(-40).join("\n")}`,
        );
      }
    });
    const docs = haveLibreOffice() ? documents() : null;

    const { ns: { ws }, wsTun, api, user, inWorkstation } = await startWebLab(lab, dir);
    const webLog = async (q: string) => (await api(`/api/v1/admin/web/log?${q}`)).entries;
    const step = async (name: string, fn: () => Promise<void>) => {
      if (!(await t.step(name, fn))) failed = true;
    };

    const rules = await api("/api/v1/admin/web/url-rules", "PUT", {
      items: [{ name: "No blocked site", hosts: ["blocked.example.test"], action: "block" }],
    });
    assert.equal(rules.items?.length, 1, JSON.stringify(rules));

    await step(
      "transparent: a blocked host gets the block page, an allowed one loads",
      async () => {
        const b = await curl(ws, ["-H", "Accept-Language: de", "http://blocked.example.test/"]);
        assert.equal(b.status, 403, JSON.stringify(b));
        assert.match(b.body, /Zugriff gesperrt/);
        assert.match(b.body, /No blocked site/);
        const g = await curl(ws, ["http://good.example.test/"]);
        assert.equal(g.status, 200);
        // The origin sees the edge: the proxy connected from there.
        assert.match(
          g.body,
          new RegExp(
            `Hello from good\\.example\\.test\\. You came from ${ADDR.edge.replaceAll(".", "\\.")}`,
          ),
        );
      },
    );

    await step("explicit proxy through the tunnel: the same policy", async () => {
      const b = await curl(ws, [
        "-x",
        `http://${PROXY}`,
        "-H",
        "Accept: application/json",
        "http://blocked.example.test/x",
      ]);
      assert.equal(b.status, 403);
      assert.equal(JSON.parse(b.body).rule, "No blocked site");
      const g = await curl(ws, ["-x", `http://${PROXY}`, "http://good.example.test/explicit"]);
      assert.match(g.body, /Hello from good\.example\.test/);
      const c = await curl(ws, [
        "-x",
        `http://${PROXY}`,
        "--cacert",
        `${dir}/ca.crt`,
        "https://good.example.test/",
      ]);
      assert.equal(c.status, 200, "CONNECT without inspection passes the origin's TLS through");
    });

    await step("the proxy does not reach the edge itself or loopback", async () => {
      // The edge's own address (its tunnel's TLS listener is on 443) and
      // loopback are not the internet: refused before any connection, with
      // the reason, in JSON for API clients and in the user's language.
      const own = await curl(ws, [
        "-x",
        `http://${PROXY}`,
        "-H",
        "Accept: application/json",
        `http://${ADDR.edge}/`,
      ]);
      assert.equal(own.status, 403, JSON.stringify(own));
      const body = JSON.parse(own.body);
      assert.equal(body.error, "origin_refused");
      const lo = await curl(ws, [
        "-x",
        `http://${PROXY}`,
        "-H",
        "Accept-Language: fr",
        "http://localhost/",
      ]);
      assert.equal(lo.status, 403, JSON.stringify(lo));
      assert.match(lo.body, /ne se connecte pas à cette adresse/);
      // (This -w replaces the helper's: its status field is the CONNECT answer.)
      const tunnel = await curl(ws, [
        "-x",
        `http://${PROXY}`,
        "-k",
        "-w",
        "\n%{http_connect} %{exitcode} -",
        `https://${ADDR.edge}/`,
      ]);
      assert.equal(tunnel.status, 403, `CONNECT to the edge's own 443: ${JSON.stringify(tunnel)}`);
      assert.notEqual(tunnel.code, 0);
      // The log is written in batches: wait for both entries.
      let reasons: string[] = [];
      await waitUntil("the refusals in the web log", async () => {
        const logged: { host: string; reason: string }[] = await webLog("action=block&limit=50");
        reasons = logged.map((e) => `${e.host}: ${e.reason}`);
        return [ADDR.edge, "localhost"].every((h) =>
          reasons.some((r) => r.startsWith(`${h}: origin refused`))
        );
      }, 10_000).catch((e) => {
        throw new Error(`${(e as Error).message}; the log has: ${reasons.join(" | ")}`);
      });
    });

    await step(
      "a private address: nothing without an access rule, the kernel's way (not the proxy) with one",
      async () => {
        const { devices } = await api("/api/v1/admin/devices");
        const dev = devices.find((x: { hostname: string }) => x.hostname === "workstation").id;
        const decisions = async (verdict: string) =>
          ((await api(`/api/v1/admin/decisions?device=${dev}&verdict=${verdict}`)).decisions ??
            []) as { dst: string; reason: string; rule: string | null }[];
        const http = `http://${ADDR.app10}/`;
        const hello = (host: string) => `Hello from ${host}. You came from ${ADDR.edge}.`;
        // A device that routes the address into its tunnel itself, with no
        // segment holding it: the edge refuses it (not the internet), the
        // server never answers, and the decision log says why.
        const route = ["ip", "route", "add", `${ADDR.app10}/32`, "dev", wsTun];
        assert.equal((await inNs(ws, route)).code, 0);
        try {
          for (const url of [http, `https://${ADDR.app10}/`, "http://intranet.example.test/"]) {
            const r = await curl(ws, ["-k", "--max-time", "3", url]);
            assert.notEqual(r.code, 0, `${url}: ${JSON.stringify(r)}`);
            assert.ok(!r.body.includes("Hello"), r.body);
          }
          await waitUntil(
            "the denial in the decision log",
            async () =>
              (await decisions("deny")).some((d) =>
                d.dst === ADDR.app10 && /is a private address, not the internet/.test(d.reason)
              ),
            5_000,
          );
        } finally {
          await inNs(ws, ["ip", "route", "del", `${ADDR.app10}/32`, "dev", wsTun]);
        }
        // With a segment and a rule: the connector routes it, the edge lets
        // it through to the server (which sees the edge), on 80 and on 443,
        // where the certificate is the server's own: the transparent proxy
        // only takes internet addresses, so it never sees these requests.
        await api("/api/v1/admin/policy/segments", "PUT", {
          items: [{
            name: "intranet",
            cidrs: [`${ADDR.app10}/32`],
            ports: ["80", "443"],
            protocols: ["tcp"],
          }],
        });
        const rules = await api("/api/v1/admin/policy/access-rules", "PUT", {
          items: [{
            name: "intranet for engineering",
            segments: ["intranet"],
            groups: ["engineering"],
          }],
        });
        assert.equal(rules.items?.length, 1, JSON.stringify(rules));
        try {
          await waitUntil(
            "the workstation to reach the intranet server",
            async () =>
              (await curl(ws, ["--max-time", "2", http])).body.includes(hello(ADDR.app10)),
            15_000,
          );
          const tls = await curl(ws, [
            "--cacert",
            `${dir}/ca.crt`,
            "https://intranet.example.test/",
          ]);
          assert.equal(tls.status, 200, JSON.stringify(tls));
          assert.ok(tls.body.includes(hello("intranet.example.test")), tls.body);
          await waitUntil(
            "the allow in the decision log",
            async () =>
              (await decisions("allow")).some((d) =>
                d.dst === ADDR.app10 && d.rule === "intranet for engineering"
              ),
            5_000,
          );
          for (const host of [ADDR.app10, "intranet.example.test"]) {
            assert.deepEqual(await webLog(`host=${host}`), [], `${host} is not in the web log`);
          }
        } finally {
          await api("/api/v1/admin/policy/access-rules", "PUT", { items: [] });
          await api("/api/v1/admin/policy/segments", "PUT", { items: [] });
        }
      },
    );

    await step("both are in the web log with the user and the device", async () => {
      type Entry = { mode: string; deviceName: string; user: string | null; bytesDown: number };
      // Each of blocked/allowed × transparent/explicit, attributed to the
      // signed-in user, found through the log's own user filter.
      const mine = (e: Entry) => e.user === LAB_USER && e.deviceName === "workstation";
      await waitUntil("the log entries with the user", async () => {
        const blocked: Entry[] = await webLog(
          `host=blocked.example.test&action=block&user=${LAB_USER}`,
        );
        const good: Entry[] = await webLog(`host=good.example.test&action=allow&user=${LAB_USER}`);
        return ["transparent", "explicit"].every((m) =>
          blocked.some((e) => mine(e) && e.mode === m) &&
          good.some((e) => mine(e) && e.mode === m && e.bytesDown > 0)
        );
      }, 5_000);
      assert.equal(user, LAB_USER);
      const all: Entry[] = await webLog("host=blocked.example.test");
      assert.ok(all.length > 0 && all.every(mine), JSON.stringify(all));
    });

    const insp = await api("/api/v1/admin/web/inspection", "PUT", {
      enabled: true,
      doNotInspect: ["dni.example.test"],
    });
    assert.equal(insp.enabled, true, JSON.stringify(insp));
    const inspCa = `${dir}/inspection-ca.crt`;
    await Deno.writeTextFile(inspCa, (await api("/api/v1/admin/web/inspection")).ca.certificate);

    await step("SSL inspection: the workstation sees the inspection CA, h2 works", async () => {
      assert.match(await issuerSeen(ws, "good.example.test"), /Portcullis Inspection CA/);
      const r = await curl(ws, [
        "--cacert",
        inspCa,
        "--http2",
        "https://good.example.test/inspected",
      ]);
      assert.equal(r.status, 200, JSON.stringify(r));
      assert.equal(r.version, "2");
      assert.match(r.body, /Hello from good\.example\.test/);
      const h1 = await curl(ws, ["--cacert", inspCa, "--http1.1", "https://good.example.test/h1"]);
      assert.equal(h1.version, "1.1");
      // Blocked by path inside TLS now that the path is seen.
      await api("/api/v1/admin/web/url-rules", "PUT", {
        items: [
          { name: "No blocked site", hosts: ["blocked.example.test"], action: "block" },
          { name: "No admin", hosts: ["good.example.test"], paths: ["/admin"], action: "block" },
        ],
      });
      const a = await curl(ws, ["--cacert", inspCa, "https://good.example.test/admin/x"]);
      assert.equal(a.status, 403);
      assert.match(a.body, /No admin/);
      await waitUntil(
        "the inspected request in the log",
        async () =>
          (await webLog("host=good.example.test")).some((e: { mode: string; path: string }) =>
            e.mode === "inspected" && e.path === "/inspected"
          ),
        5_000,
      );
    });

    await step(
      "with the profile's consent the connector installs the CA: the system store verifies",
      async () => {
        const record = `${dir}/ws/trusted-inspection-ca.json`;
        const plainCurl = async () =>
          (await inWorkstation([
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{exitcode}",
            "https://good.example.test/system",
          ]))
            .stdout;
        assert.equal(
          await plainCurl(),
          "000 60",
          "without the CA installed, curl refuses the inspected site",
        );
        const put = await api("/api/v1/admin/policy/app-profiles", "PUT", {
          items: [{ name: "default", forwarding: { name: "default" }, installInspectionCa: true }],
        });
        assert.equal(put.items?.[0]?.installInspectionCa, true, JSON.stringify(put));
        await waitUntil("the connector to install the CA", async () => {
          const r = await Deno.readTextFile(record).catch(() => "");
          return r.includes((await api("/api/v1/admin/web/inspection")).ca.sha256);
        }, 30_000);
        // The record is written first, then update-ca-certificates runs (a few seconds).
        await waitUntil(
          "curl to verify the inspected site against the system store",
          async () => (await plainCurl()) === "200 0",
          30_000,
        );
        // Consent withdrawn: the CA goes again.
        await api("/api/v1/admin/policy/app-profiles", "PUT", {
          items: [{ name: "default", forwarding: { name: "default" } }],
        });
        await waitUntil(
          "the connector to remove the CA",
          async () => !(await Deno.stat(record).then(() => true, () => false)),
          30_000,
        );
        await waitUntil(
          "curl to refuse it again",
          async () => (await plainCurl()) === "000 60",
          30_000,
        );
      },
    );

    await step(
      "tunnel with local proxy: 127.0.0.1:9000 reaches the edge proxy, others follow the profile",
      async () => {
        const lp = "http://127.0.0.1:9000";
        const fp = (off: string) => ({
          items: [{
            name: "default",
            forwarding: { name: "default", actions: { off_trusted: off } },
          }],
        });
        const put = await api("/api/v1/admin/policy/app-profiles", "PUT", fp("tunnel_local_proxy"));
        assert.equal(
          put.items?.[0]?.forwarding?.actions?.off_trusted,
          "tunnel_local_proxy",
          JSON.stringify(put),
        );
        await waitUntil(
          "the local proxy to answer",
          async () => (await curl(ws, ["-x", lp, "http://good.example.test/lp"])).status === 200,
          30_000,
        );
        const b = await curl(ws, ["-x", lp, "http://blocked.example.test/"]);
        assert.equal(b.status, 403, "the edge's block page through the local proxy");
        assert.match(b.body, /No blocked site/);
        const s = await curl(ws, [
          "-x",
          lp,
          "--cacert",
          inspCa,
          "https://good.example.test/lp-tls",
        ]);
        assert.equal(s.status, 200, "CONNECT through the local proxy, inspected at the edge");
        // An app that ignores the proxy still goes through the tunnel (NAT at the edge).
        const direct = await curl(ws, ["http://good.example.test:8080/ignores-proxy"]);
        assert.match(direct.body, /You came from 192\.0\.2\.1/);
        const env = await inWorkstation(["cat", "/etc/profile.d/portcullis-proxy.sh"]);
        assert.match(
          env.stdout,
          /export http_proxy=http:\/\/127\.0\.0\.1:9000 https_proxy=http:\/\/127\.0\.0\.1:9000/,
        );
        assert.equal(
          await Deno.stat("/etc/profile.d/portcullis-proxy.sh").then(() => true, () => false),
          false,
          "the machine's own profile.d is untouched",
        );
        await api("/api/v1/admin/policy/app-profiles", "PUT", fp("tunnel"));
        await waitUntil(
          "the local proxy to stop and the system proxy to be restored",
          async () =>
            (await curl(ws, ["-x", lp, "http://good.example.test/"])).code === 7 &&
            (await inWorkstation(["test", "-e", "/etc/profile.d/portcullis-proxy.sh"])).code !== 0,
          30_000,
        );
      },
    );

    await step("Do-Not-Inspect: the origin's own issuer is seen", async () => {
      assert.match(await issuerSeen(ws, "dni.example.test"), /Lab Internet CA/);
      const r = await curl(ws, ["--cacert", `${dir}/ca.crt`, "https://dni.example.test/"]);
      assert.match(r.body, /Hello from dni\.example\.test/);
    });

    await step("an origin with an expired certificate is refused with the block page", async () => {
      const r = await curl(ws, ["--cacert", inspCa, "https://expired.example.test/"]);
      assert.equal(r.status, 403, JSON.stringify(r));
      assert.match(r.body, /certificate could not be verified/);
      const e = await webLog("host=expired.example.test&action=block");
      assert.match(e[0]?.reason ?? "", /origin certificate invalid/);
    });

    await step(
      "inline DLP on an inspected upload: five card numbers blocked, clean passes",
      async () => {
        if (!docs) throw new Error("LibreOffice is not installed (test/prepare.ts installs it)");
        const d = await docs;
        const dict = await api("/api/v1/admin/dlp/dictionaries/cards", "PUT", {
          kind: "credit_card",
          threshold: 3,
        });
        assert.ok(dict.def, JSON.stringify(dict));
        const dr = await api("/api/v1/admin/dlp/rules", "PUT", {
          items: [{
            name: "No cards to the web",
            channels: ["web_upload"],
            dictionaries: ["cards"],
            action: "block",
          }],
        });
        assert.equal(dr.items?.length, 1, JSON.stringify(dr));
        const b = await curl(ws, [
          "--cacert",
          inspCa,
          "-F",
          `file=@${d.docx}`,
          "https://good.example.test/upload",
        ]);
        assert.equal(b.status, 403, JSON.stringify(b));
        assert.match(b.body, /No cards to the web/);
        const ok = await curl(ws, [
          "--cacert",
          inspCa,
          "-F",
          `file=@${d.cleanDocx}`,
          "https://good.example.test/upload",
        ]);
        assert.match(ok.body, /Received \d+ bytes/);
        const inc = (await api("/api/v1/admin/dlp/incidents?channel=web_upload")).incidents;
        assert.equal(inc[0]?.rule, "No cards to the web", JSON.stringify(inc));
        assert.equal(inc[0].fileName, "refunds.docx");
        const all = JSON.stringify(inc) + JSON.stringify(await webLog("limit=500")) +
          await Deno.readTextFile(`${dir}/edge.log`);
        assert.equal(all.includes("4111 1111 1111 1111"), false, "no raw card number anywhere");
        assert.match(JSON.stringify(inc), /4111 \*\*\*\* \*\*\*\* 1111/);
      },
    );
  },
});
