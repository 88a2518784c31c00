import assert from "node:assert/strict";
import { generatePac } from "../../src/policy/pac.ts";
import { parseIp, parsePrefix, prefixContains } from "../../src/policy/cidr.ts";
import { DEFAULT_EXCLUDES } from "../../src/policy/types.ts";

/** Runs a PAC text with the standard helper functions and a fake resolver. */
function loadPac(text: string, dns: Record<string, string>) {
  const helpers = {
    isPlainHostName: (h: string) => !h.includes("."),
    dnsDomainIs: (h: string, d: string) => h.endsWith(d),
    dnsResolve: (h: string) => dns[h] ?? null,
    isInNet: (ip: string, net: string, mask: string) => {
      const len = mask.split(".").reduce(
        (a, o) => a + Number(o).toString(2).replace(/0/g, "").length,
        0,
      );
      return prefixContains(parsePrefix(`${net}/${len}`), parseIp(ip));
    },
  };
  const fn = new Function(...Object.keys(helpers), `${text}\nreturn FindProxyForURL;`);
  return fn(...Object.values(helpers)) as (url: string, host: string) => string;
}

Deno.test("pac: direct for excludes, proxy for the rest", () => {
  const pac = generatePac({
    include: ["0.0.0.0/0", "::/0"],
    exclude: [...DEFAULT_EXCLUDES, "2001:db8::/32"],
    dnsIncludeDomains: ["corp.example"],
    dnsExcludeDomains: ["*.bank.example", "update.vendor.example"],
  }, { proxy: "127.0.0.1:9000" });
  const find = loadPac(pac, {
    "www.example.com": "93.184.216.34",
    "printer.lan.example": "192.168.1.9",
    "wiki.corp.example": "10.1.1.1",
  });
  const table: [string, string][] = [
    ["intranet", "DIRECT"],
    ["www.example.com", "PROXY 127.0.0.1:9000"],
    ["WWW.example.com.", "PROXY 127.0.0.1:9000"],
    ["printer.lan.example", "DIRECT"],
    ["10.2.3.4", "DIRECT"],
    ["8.8.8.8", "PROXY 127.0.0.1:9000"],
    ["wiki.corp.example", "PROXY 127.0.0.1:9000"],
    ["corp.example", "PROXY 127.0.0.1:9000"],
    ["online.bank.example", "DIRECT"],
    ["bank.example", "PROXY 127.0.0.1:9000"],
    ["update.vendor.example", "DIRECT"],
    ["x.update.vendor.example", "DIRECT"],
    ["unresolvable.example", "PROXY 127.0.0.1:9000"],
  ];
  for (const [host, want] of table) assert.equal(find(`http://${host}/`, host), want, host);
});

Deno.test("pac: split includes, fallback and injection safety", () => {
  const pac = generatePac({
    include: ["100.64.0.0/10"],
    exclude: [],
    dnsIncludeDomains: [],
    dnsExcludeDomains: ['evil"); alert(1); ("'],
  }, { proxy: "proxy.example:3128", fallbackDirect: true });
  const find = loadPac(pac, {});
  assert.equal(find("", "100.64.1.1"), "PROXY proxy.example:3128; DIRECT");
  assert.equal(find("", "8.8.8.8"), "DIRECT");
  assert.ok(pac.includes(JSON.stringify('evil"); alert(1); ("')));
  for (const bad of ["x", "a b:1", "host:99999", 'h";x:1']) {
    assert.throws(
      () =>
        generatePac({ include: [], exclude: [], dnsIncludeDomains: [], dnsExcludeDomains: [] }, {
          proxy: bad,
        }),
      /Cannot generate a PAC file for proxy/,
    );
  }
});
