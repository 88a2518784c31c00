/**
 * The proxy engine on loopback sockets with real curl as the client and real
 * origins behind it (plain HTTP and HTTPS with a certificate of their own):
 * explicit requests, CONNECT, transparent (origin-form and TLS by SNI),
 * block page (HTML in the user's language, JSON for API clients), caution
 * with Continue, web ports only, inline DLP on uploads through the edge's
 * real WebSecurityService and DlpService, and garbage answered with a 400.
 * Host names `*.test` are sent to the local origins by the engine's connect
 * hook, so no resolver is involved.
 */
import { testStore } from "../http/test_store.ts";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import { ProxyEngine } from "../../src/proxy/engine.ts";
import { startProxyServer } from "../../src/proxy/server.ts";
import { UrlRule } from "../../src/proxy/url_policy.ts";
import { DlpService } from "../../src/edge/dlp.ts";
import {
  loadCategories,
  SHIPPED_CATEGORIES,
  WebSecurityService,
} from "../../src/edge/web_security.ts";
import { Notifier } from "../../src/notify/mod.ts";
import type { AccessSubject } from "../../src/policy/access.ts";
import { waitUntil } from "../e2e/netns.ts";

const SUBJECT: AccessSubject = {
  deviceId: "dev-1",
  deviceName: "workstation",
  user: "alice",
  groups: [{ name: "sales", source: "local" }],
  machine: false,
};

async function curl(args: string[]) {
  const out = await new Deno.Command("curl", {
    args: ["-s", "--max-time", "10", "-w", "\n%{http_code} %{exitcode} %{http_connect}", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const i = text.lastIndexOf("\n");
  const [status, code, connect] = text.slice(i + 1).split(" ").map(Number);
  return {
    body: text.slice(0, i),
    status,
    code,
    connect,
    stderr: new TextDecoder().decode(out.stderr),
  };
}

async function selfSigned(dir: string, cn: string) {
  const key = `${dir}/${cn}.key`, crt = `${dir}/${cn}.crt`;
  const r = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      key,
      "-out",
      crt,
      "-days",
      "2",
      "-subj",
      `/CN=${cn}`,
      "-addext",
      `subjectAltName=DNS:${cn}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  return { key: await Deno.readTextFile(key), cert: await Deno.readTextFile(crt), file: crt };
}

Deno.test({
  name: "proxy engine: explicit, CONNECT, transparent, pages, caution, DLP, on real sockets",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "pcproxy" });
    const ac = new AbortController();
    const seen: { method: string; path: string; body: string; host: string | null }[] = [];
    const handler = async (req: Request) => {
      const u = new URL(req.url);
      const body = await req.text();
      seen.push({ method: req.method, path: u.pathname, body, host: req.headers.get("host") });
      return new Response(`origin says hello ${u.pathname} (${body.length} bytes)`);
    };
    const plain = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
      handler,
    );
    const cert = await selfSigned(dir, "tls.test");
    const tls = Deno.serve(
      {
        hostname: "127.0.0.1",
        port: 0,
        signal: ac.signal,
        onListen() {},
        cert: cert.cert,
        key: cert.key,
      },
      handler,
    );
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const store = await testStore();
    const notifier = new Notifier(store, clock);
    const dlp = new DlpService(store, clock, notifier);
    store.devices.insert({
      id: SUBJECT.deviceId,
      fingerprint: "f".repeat(64),
      machineId: "m1",
      macs: [],
      hostname: SUBJECT.deviceName,
      os: "linux",
      osVersion: "test",
      connectorVersion: "0.1.0",
      wgPublicKey: "k",
      signingPublicKey: "s",
      credentialHash: "c",
      group: null,
      user: SUBJECT.user,
      enrollmentKeyId: null,
      disabled: false,
      enrolledAt: clock.now(),
      updatedAt: clock.now(),
      lastSeenAt: null,
      reportedState: null,
      reportedTransport: null,
      clockSkewMs: null,
    });
    const web = new WebSecurityService(
      store,
      clock,
      notifier,
      dlp,
      await loadCategories([SHIPPED_CATEGORIES]),
    );
    let known = true;
    const engine = new ProxyEngine({
      identify: () => (known ? SUBJECT : null),
      policy: () => web.policy(),
      log: (e) => web.record(e),
      clock,
      connect: (host, port) => {
        const target = host === "tls.test"
          ? tls.addr.port
          : port === 443
          ? tls.addr.port
          : plain.addr.port;
        return Deno.connect({
          hostname: "127.0.0.1",
          port: host.endsWith(".test") ? target : port,
        });
      },
      uploads: { check: web.uploadCheck, limit: 1024 * 1024 },
    });
    let clientWrites = 0;
    const server = startProxyServer({
      hostname: "127.0.0.1",
      port: 0,
      engine,
      onClientWrite: () => clientWrites++,
    });
    const proxy = `http://127.0.0.1:${server.port}`;
    const logOf = (host: string) => web.webLog({ host, limit: 10 });
    try {
      web.replaceRules(
        [
          { name: "No gambling", categories: ["gambling"], action: "block" },
          { name: "Blocked site", hosts: ["blocked.test"], action: "block" },
          { name: "Careful", hosts: ["careful.test"], action: "caution" },
          { name: "Watch", hosts: ["watched.test"], action: "allow_log" },
          { name: "Admin area", hosts: ["app.test"], paths: ["/admin"], action: "block" },
        ].map((r) => UrlRule.parse(r)),
        "test",
      );

      await t.step(
        "explicit GET reaches the origin and is logged with the user and bytes",
        async () => {
          const writes = clientWrites;
          const r = await curl(["-x", proxy, "http://plain.test/hello?token=secret"]);
          assert.equal(r.status, 200, r.stderr);
          assert.match(r.body, /origin says hello \/hello/);
          // Told of the answer's writes (on the edge, each pokes the tunnel's pump).
          assert.ok(clientWrites > writes, "writes to the client are told");
          assert.equal(seen.at(-1)?.host, "plain.test");
          const [e] = logOf("plain.test");
          assert.equal(e.mode, "explicit");
          assert.equal(e.action, "allow");
          assert.equal(e.user, "alice");
          assert.equal(e.path, "/hello", "the query string is not logged");
          assert.equal(e.status, 200);
          assert.ok(e.bytesUp > 50 && e.bytesDown > 50, JSON.stringify(e));
        },
      );

      await t.step(
        "block page: HTML in the user's language naming the rule, JSON for APIs",
        async () => {
          const en = await curl(["-x", proxy, "-H", "Accept: text/html", "http://blocked.test/x"]);
          assert.equal(en.status, 403);
          assert.match(en.body, /Access blocked/);
          assert.match(en.body, /<dd id="rule">Blocked site<\/dd>/);
          const de = await curl([
            "-x",
            proxy,
            "-H",
            "Accept-Language: de-DE,de;q=0.9",
            "http://blocked.test/",
          ]);
          assert.match(de.body, /Zugriff gesperrt/);
          const fr = await curl(["-x", proxy, "-H", "Accept-Language: fr", "http://blocked.test/"]);
          assert.match(fr.body, /Accès bloqué/);
          const api = await curl([
            "-x",
            proxy,
            "-H",
            "Accept: application/json",
            "http://www.bet365.com/",
          ]);
          assert.equal(api.status, 403);
          const j = JSON.parse(api.body);
          assert.equal(j.error, "url_blocked");
          assert.equal(j.rule, "No gambling");
          assert.match(j.message, /does not allow this site\. \(rule "No gambling"\)/);
          const [e] = logOf("bet365");
          assert.deepEqual([e.action, e.rule, e.categories], ["block", "No gambling", [
            "gambling",
          ]]);
          assert.equal(
            seen.some((s) => s.host === "blocked.test"),
            false,
            "nothing reached the origin",
          );
        },
      );

      await t.step("path rule blocks only its path", async () => {
        assert.equal((await curl(["-x", proxy, "http://app.test/admin/users"])).status, 403);
        assert.equal((await curl(["-x", proxy, "http://app.test/home"])).status, 200);
      });

      await t.step("caution: interstitial, then Continue for this device only", async () => {
        const first = await curl(["-x", proxy, "http://careful.test/page?a=1"]);
        assert.equal(first.status, 200);
        assert.match(first.body, /Caution/);
        const link = /id="continue" href="([^"]+)"/.exec(first.body)![1].replaceAll("&#38;", "&");
        assert.match(link, /^http:\/\/careful\.test\/\.portcullis\/continue\?t=[0-9a-f]{32}&to=/);
        known = true;
        const cont = await curl(["-x", proxy, "-D", "-", link]);
        assert.equal(cont.status, 302);
        assert.match(cont.body, /Location: \/page\?a=1/);
        const again = await curl(["-x", proxy, "http://careful.test/page?a=1"]);
        assert.match(again.body, /origin says hello \/page/);
        const reuse = await curl(["-x", proxy, link]);
        assert.equal(reuse.status, 400, "a Continue token works once");
        assert.equal(JSON.parse(reuse.body).error, "invalid_continue");
        const actions = logOf("careful.test").map((e) => e.reason);
        assert.ok(
          actions.includes("caution page shown") && actions.includes("caution acknowledged"),
        );
      });

      await t.step("allow_log is allowed and logged as such", async () => {
        assert.equal((await curl(["-x", proxy, "http://watched.test/"])).status, 200);
        assert.equal(logOf("watched.test")[0].action, "allow_log");
      });

      await t.step("CONNECT: TLS passes through with the origin's own certificate", async () => {
        const r = await curl(["-x", proxy, "--cacert", cert.file, "https://tls.test/secure"]);
        assert.equal(r.status, 200, r.stderr);
        assert.match(r.body, /origin says hello \/secure/);
        await waitUntil(
          "the TLS connection in the log",
          () => Promise.resolve(logOf("tls.test").length > 0),
          5000,
        );
        const [e] = logOf("tls.test");
        assert.equal(e.mode, "connect");
        assert.equal(e.path, null);
        assert.ok(e.bytesDown > 500, "the handshake and answer were counted");
      });

      await t.step("CONNECT to a blocked host or a non-web port is refused", async () => {
        const b = await curl(["-x", proxy, "-k", "https://blocked.test/"]);
        assert.notEqual(b.code, 0);
        assert.equal(b.connect, 403);
        const p = await curl(["-x", proxy, "-k", "https://plain.test:25/"]);
        assert.equal(p.connect, 403);
        assert.equal(logOf("plain.test")[0].reason, "port 25 is not a web port");
      });

      await t.step("transparent: origin-form by Host, TLS by SNI", async () => {
        const r = await curl(["-H", "Host: plain.test", `${proxy}/transparent`]);
        assert.match(r.body, /origin says hello \/transparent/);
        assert.equal(logOf("plain.test")[0].mode, "transparent");
        const s = await curl([
          "--cacert",
          cert.file,
          "--connect-to",
          `tls.test:443:127.0.0.1:${server.port}`,
          "https://tls.test/sni",
        ]);
        assert.match(s.body, /origin says hello \/sni/, s.stderr);
        await waitUntil(
          "the transparent TLS connection in the log",
          () => Promise.resolve(logOf("tls.test")[0].mode === "transparent"),
          5000,
        );
        const blocked = await curl([
          "-k",
          "--connect-to",
          `blocked.test:443:127.0.0.1:${server.port}`,
          "https://blocked.test/",
        ]);
        assert.notEqual(blocked.code, 0, "a blocked SNI ends the connection");
        assert.equal(
          logOf("blocked.test")[0].reason,
          'blocked by rule "Blocked site" (TLS by name)',
        );
      });

      await t.step(
        "inline DLP: an upload with card numbers is blocked with the rule named",
        async () => {
          dlp.putDictionary("cards", { kind: "credit_card", threshold: 3 }, "test");
          dlp.replaceRules([{
            name: "No cards on the web",
            channels: ["web_upload"],
            dictionaries: ["cards"],
            action: "block",
          }], "test");
          const cards =
            "4111 1111 1111 1111, 5555 5555 5555 4444, 4012 8888 8888 1881, 3782 822463 10005";
          await Deno.writeTextFile(`${dir}/cards.txt`, `refunds: ${cards}\n`);
          await Deno.writeTextFile(`${dir}/clean.txt`, "nothing to see here\n");
          const before = seen.length;
          const r = await curl([
            "-x",
            proxy,
            "-F",
            `file=@${dir}/cards.txt`,
            "http://upload.test/upload",
          ]);
          assert.equal(r.status, 403);
          assert.match(r.body, /sensitive data/);
          assert.match(r.body, /No cards on the web/);
          assert.equal(seen.length, before, "no byte of the upload reached the origin");
          const chunked = await curl([
            "-x",
            proxy,
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            `@${dir}/cards.txt`,
            "http://upload.test/raw",
          ]);
          assert.equal(chunked.status, 403, "chunked bodies are inspected too");
          const ok = await curl([
            "-x",
            proxy,
            "-F",
            `file=@${dir}/clean.txt`,
            "http://upload.test/upload",
          ]);
          assert.equal(ok.status, 200);
          assert.match(seen.at(-1)!.body, /nothing to see here/);
          const inc = dlp.incidents({ limit: 5 });
          assert.equal(inc[0].channel, "web_upload");
          assert.equal(inc[0].rule, "No cards on the web");
          assert.equal(inc[0].hostname, "workstation");
          const all = JSON.stringify({ inc, log: web.webLog({ limit: 100 }) });
          assert.equal(all.includes("4111 1111 1111 1111"), false, "no raw card number stored");
          assert.match(all, /4111 \*\*\*\* \*\*\*\* 1111/);
          dlp.replaceRules([], "test");
        },
      );

      await t.step("garbage gets a 400 with a code; unknown sources are closed", async () => {
        const c = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
        await c.write(new TextEncoder().encode("NOT A REQUEST\r\n\r\n"));
        const buf = new Uint8Array(4096);
        const n = await c.read(buf);
        c.close();
        const text = new TextDecoder().decode(buf.subarray(0, n ?? 0));
        assert.match(text, /^HTTP\/1\.1 400/);
        assert.match(text, /"error":"bad_request_line"/);
        known = false;
        const r = await curl(["-x", proxy, "http://plain.test/"]);
        assert.notEqual(r.code, 0);
        known = true;
      });
    } finally {
      await server.close();
      ac.abort();
      await plain.finished;
      await tls.finished;
      web.close();
      store.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
