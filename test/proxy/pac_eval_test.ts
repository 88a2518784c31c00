/**
 * The PAC sandbox against a PAC engine nobody here wrote: Debian's
 * libpacparser1 (the library behind pactester; called through FFI the way
 * pactester calls it), on 50 URL/PAC cases — five PAC files (one made by
 * our own generatePac) × ten URLs, with myIpAddress set the same in both.
 * Hosts are names the PAC decides without DNS, or IPv4 literals, so neither
 * engine asks a resolver. Then the failures: an endless loop and endless
 * recursion stopped within the limit, a throw and a syntax error reported
 * with their line, garbage results refused, memory capped.
 */
import assert from "node:assert/strict";
import { evaluatePac, isProxyList } from "../../src/proxy/pac_eval.ts";
import { generatePac } from "../../src/policy/pac.ts";

const LIB = "/usr/lib/libpacparser.so.1";
const haveLib = (() => {
  try {
    return Deno.statSync(LIB).isFile;
  } catch {
    return false;
  }
})();
const MY_IP = "10.20.30.40";

const PACS: Record<string, string> = {
  domains: `function FindProxyForURL(url, host) {
  if (isPlainHostName(host)) return "DIRECT";
  if (dnsDomainIs(host, ".intranet.example")) return "DIRECT";
  if (localHostOrDomainIs(host, "www.partner.example")) return "PROXY partner-proxy:8080";
  if (dnsDomainLevels(host) > 3) return "PROXY deep:3128";
  return "PROXY edge.example:3128; DIRECT";
}`,
  patterns: `function FindProxyForURL(url, host) {
  if (shExpMatch(url, "*/downloads/*")) return "PROXY dl:8080";
  if (shExpMatch(host, "*.cdn.example")) return "DIRECT";
  if (url.substring(0, 6) == "https:") return "PROXY tls:8443";
  if (shExpMatch(host, "10.*")) return "DIRECT";
  return "PROXY web:80";
}`,
  nets: `function FindProxyForURL(url, host) {
  if (isInNet(myIpAddress(), "10.20.0.0", "255.255.0.0")) {
    if (isInNet(host, "192.168.0.0", "255.255.0.0")) return "DIRECT";
    if (isInNet(host, "172.16.0.0", "255.240.0.0")) return "PROXY lab:3128";
    return "PROXY office:3128";
  }
  return "DIRECT";
}`,
  mixed: `var BYPASS = ["a.example", "b.example", "c.example"];
function FindProxyForURL(url, host) {
  host = host.toLowerCase();
  for (var i = 0; i < BYPASS.length; i++) {
    if (host == BYPASS[i] || dnsDomainIs(host, "." + BYPASS[i])) return "DIRECT";
  }
  if (host.indexOf("video") >= 0) return "PROXY video:81; PROXY backup:82";
  return "PROXY 127.0.0.1:9000";
}`,
  generated: generatePac({
    include: ["0.0.0.0/0"],
    exclude: ["10.0.0.0/8", "192.168.0.0/16"],
    dnsIncludeDomains: ["corp.example"],
    dnsExcludeDomains: ["bank.example", "*.health.example"],
  }, { proxy: "127.0.0.1:9000", fallbackDirect: true }),
};

const URLS = [
  "http://intranet/",
  "http://wiki.intranet.example/page",
  "https://www.partner.example/",
  "http://a.b.c.d.example/x",
  "https://files.example/downloads/setup.exe",
  "http://img.cdn.example/logo.png",
  "http://10.1.2.3/",
  "http://192.168.1.20/admin",
  "http://172.20.0.5:8080/",
  "https://video.a.example/stream",
];

function pacparser() {
  const lib = Deno.dlopen(
    LIB,
    {
      pacparser_init: { parameters: [], result: "i32" },
      pacparser_parse_pac_string: { parameters: ["buffer"], result: "i32" },
      pacparser_find_proxy: { parameters: ["buffer", "buffer"], result: "pointer" },
      pacparser_setmyip: { parameters: ["buffer"], result: "void" },
      pacparser_cleanup: { parameters: [], result: "void" },
    } as const,
  );
  const c = (s: string) => new TextEncoder().encode(`${s}\0`);
  return {
    find(pac: string, url: string): string | null {
      const s = lib.symbols;
      assert.equal(s.pacparser_init(), 1);
      try {
        s.pacparser_setmyip(c(MY_IP));
        if (s.pacparser_parse_pac_string(c(pac)) !== 1) return null;
        const p = s.pacparser_find_proxy(c(url), c(new URL(url).hostname));
        return p ? Deno.UnsafePointerView.getCString(p) : null;
      } finally {
        s.pacparser_cleanup();
      }
    },
    close: () => lib.close(),
  };
}

Deno.test({
  name: "PAC sandbox agrees with libpacparser1 on 50 URL/PAC cases",
  ignore: !haveLib,
  async fn() {
    const ref = pacparser();
    try {
      let n = 0;
      const norm = (s: string) => s.split(";").map((p) => p.trim()).filter(Boolean).join("; ");
      for (const [name, pac] of Object.entries(PACS)) {
        for (const url of URLS) {
          const theirs = ref.find(pac, url);
          const ours = await evaluatePac(pac, url, { myIp: MY_IP });
          assert.ok(theirs !== null, `pacparser failed on ${name} ${url}`);
          assert.deepEqual(ours, { ok: true, result: norm(theirs!) }, `${name} ${url}`);
          n++;
        }
      }
      assert.equal(n, 50);
    } finally {
      ref.close();
    }
  },
});

Deno.test("PAC sandbox: loops, recursion, throws, syntax errors and garbage are reported, within limits", async () => {
  const t0 = performance.now();
  const loop = await evaluatePac(
    "function FindProxyForURL(u, h) {\n  while (true) {}\n}",
    "http://a.example/",
    {
      timeoutMs: 300,
    },
  );
  const took = performance.now() - t0;
  assert.deepEqual(loop.ok, false);
  assert.match((loop as { error: string }).error, /ran longer than 300 ms and was stopped/);
  assert.ok(took < 2000, `stopped after ${took} ms`);
  const rec = await evaluatePac(
    "function f() { return f() + 1; }\nfunction FindProxyForURL(u, h) { return f(); }",
    "http://a/",
  );
  assert.match((rec as { error: string }).error, /recursed too deep|longer than|memory/);
  const thrown = await evaluatePac(
    "function FindProxyForURL(u, h) {\n  throw new Error('boom');\n}",
    "http://a/",
  );
  assert.deepEqual(thrown, { ok: false, error: "The PAC file failed: boom", line: 2 });
  const syntax = await evaluatePac("function FindProxyForURL(u, h) {\n  return (;\n}", "http://a/");
  assert.equal(syntax.ok, false);
  assert.equal((syntax as { line: number }).line, 2);
  const mem = await evaluatePac(
    "function FindProxyForURL(u, h) { var a = []; for (;;) a.push(new Array(100000).join('x')); }",
    "http://a/",
    { memoryBytes: 8 * 1024 * 1024, timeoutMs: 1500 },
  );
  assert.match((mem as { error: string }).error, /memory|longer than/);
  for (const bad of ["42", "'PROXY'", "'hello world'", "null", "'PROXY a:1; rm -rf'"]) {
    const r = await evaluatePac(`function FindProxyForURL(u, h) { return ${bad}; }`, "http://a/");
    assert.equal(r.ok, false, bad);
    assert.match((r as { error: string }).error, /not a proxy list/, bad);
  }
  assert.equal((await evaluatePac("no function here", "http://a/")).ok, false);
  // Nothing a PAC file does survives into the next evaluation.
  await evaluatePac(
    "var leaked = 1; function FindProxyForURL(u, h) { return 'DIRECT'; }",
    "http://a/",
  );
  const fresh = await evaluatePac(
    "function FindProxyForURL(u, h) { return typeof leaked == 'undefined' ? 'DIRECT' : 'PROXY x:1'; }",
    "http://a/",
  );
  assert.deepEqual(fresh, { ok: true, result: "DIRECT" });
  assert.equal(isProxyList("PROXY a.example:3128; SOCKS5 b:1080; DIRECT"), true);
  assert.equal(isProxyList(""), false);
});
