import assert from "node:assert/strict";
import {
  beaconKey,
  beaconsToProbe,
  evaluateTrustedNetwork,
  hostnamesToResolve,
  type NetworkFacts,
} from "../../src/policy/trusted_network.ts";
import { TrustedCriteria } from "../../src/policy/types.ts";

const FP = "a".repeat(64);
const OTHER = "b".repeat(64);

function facts(over: Partial<NetworkFacts> = {}): NetworkFacts {
  return {
    dnsServers: ["10.0.0.53"],
    dnsSearchDomains: ["corp.example"],
    resolved: new Map([["intranet.corp.example", ["10.0.0.80"]]]),
    defaultGateways: ["10.0.0.1"],
    addresses: ["10.0.0.20/24", "fe80::1/64"],
    egressIp: "198.51.100.9",
    beaconFingerprints: new Map<string, string | Error>([["10.0.0.5:8443", FP]]),
    vpnDefaultRoute: false,
    ...over,
  };
}

const hotel = facts({
  dnsServers: ["192.168.77.1"],
  dnsSearchDomains: ["hotel.lan"],
  resolved: new Map([["intranet.corp.example", []]]),
  defaultGateways: ["192.168.77.1"],
  addresses: ["192.168.77.23/24"],
  egressIp: "203.0.113.50",
  beaconFingerprints: new Map([["10.0.0.5:8443", new Error("connection refused")]]),
});

Deno.test("trusted network: each criterion alone, on the corporate LAN and in a hotel", () => {
  const table: [string, Partial<TrustedCriteria>, RegExp][] = [
    ["dns server", { dnsServers: ["10.0.0.53"] }, /DNS server 10.0.0.53 is in use/],
    ["search domain", { dnsSearchDomains: ["CORP.example."] }, /search domain/],
    [
      "hostname",
      { hostnameIps: [{ hostname: "intranet.corp.example", ips: ["10.0.0.80"] }] },
      /resolves to 10.0.0.80/,
    ],
    ["gateway", { defaultGateways: ["10.0.0.1"] }, /default gateway 10.0.0.1/],
    ["range", { networkRanges: ["10.0.0.0/16"] }, /local address 10.0.0.20\/24 is in/],
    ["egress ip", { egressIps: ["198.51.100.9"] }, /egress address 198.51.100.9 matches/],
    ["egress prefix", { egressIps: ["198.51.100.0/24"] }, /matches 198.51.100.0\/24/],
    [
      "beacon",
      { tlsBeacons: [{ host: "10.0.0.5", port: 8443, sha256: FP }] },
      /presented the expected certificate/,
    ],
  ];
  for (const [name, c, why] of table) {
    const criteria = TrustedCriteria.parse(c);
    const corp = evaluateTrustedNetwork(criteria, facts());
    assert.equal(corp.networkType, "on_trusted", name);
    assert.equal(corp.trusted, true, name);
    assert.match(corp.matched[0], why, name);
    assert.deepEqual(corp.unmatched, [], name);
    const away = evaluateTrustedNetwork(criteria, hotel);
    assert.equal(away.networkType, "off_trusted", name);
    assert.equal(away.trusted, false, name);
    assert.deepEqual(away.matched, [], name);
    assert.equal(away.unmatched.length, 1, name);
  }
});

Deno.test("trusted network: explanations of misses say what was seen", () => {
  const c = TrustedCriteria.parse({
    dnsServers: ["10.0.0.53"],
    hostnameIps: [{ hostname: "intranet.corp.example", ips: ["10.0.0.80"] }],
    egressIps: ["198.51.100.9"],
    tlsBeacons: [{ host: "10.0.0.5", port: 8443, sha256: FP }],
  });
  const v = evaluateTrustedNetwork(c, hotel);
  assert.deepEqual(v.unmatched, [
    "DNS servers 10.0.0.53 not in use (seen 192.168.77.1)",
    "intranet.corp.example does not resolve to 10.0.0.80 (got none)",
    "egress address 203.0.113.50 is not in 198.51.100.9",
    "TLS beacon 10.0.0.5:8443 failed: connection refused",
  ]);
  assert.equal(v.explanation, "Off-trusted: none of 4 criteria matched");
  const wrongCert = evaluateTrustedNetwork(
    c,
    facts({ beaconFingerprints: new Map([["10.0.0.5:8443", OTHER]]) }),
  );
  assert.match(wrongCert.unmatched[0], /presented certificate bbbbbbbbbbbbbbbb…, expected aaaa/);
  const noEgress = evaluateTrustedNetwork(c, facts({ egressIp: undefined }));
  assert.deepEqual(noEgress.unmatched, ["egress address unknown is not in 198.51.100.9"]);
  const unprobed = evaluateTrustedNetwork(c, facts({ beaconFingerprints: new Map() }));
  assert.deepEqual(unprobed.unmatched, ["TLS beacon 10.0.0.5:8443 was not probed"]);
});

Deno.test("trusted network: any vs all", () => {
  const base = {
    dnsServers: ["10.0.0.53"],
    defaultGateways: ["10.0.0.1"],
    networkRanges: ["10.0.0.0/24"],
  };
  const partial = facts({ defaultGateways: ["10.9.9.9"] });
  const table: [string, "any" | "all", NetworkFacts, boolean, number, number][] = [
    ["any, all match", "any", facts(), true, 3, 0],
    ["all, all match", "all", facts(), true, 3, 0],
    ["any, one misses", "any", partial, true, 2, 1],
    ["all, one misses", "all", partial, false, 2, 1],
    ["any, none match", "any", hotel, false, 0, 3],
    ["all, none match", "all", hotel, false, 0, 3],
  ];
  for (const [name, match, f, trusted, m, u] of table) {
    const v = evaluateTrustedNetwork(TrustedCriteria.parse({ ...base, match }), f);
    assert.equal(v.trusted, trusted, name);
    assert.equal(v.matched.length, m, name);
    assert.equal(v.unmatched.length, u, name);
  }
  const allMiss = evaluateTrustedNetwork(TrustedCriteria.parse({ ...base, match: "all" }), partial);
  assert.match(allMiss.explanation, /^Off-trusted: 1 of 3 criteria did not match \(default/);
  const allHit = evaluateTrustedNetwork(TrustedCriteria.parse({ ...base, match: "all" }), facts());
  assert.equal(allHit.explanation, "On-trusted: all 3 criteria matched");
});

Deno.test("trusted network: nothing configured trusts nothing; VPN wins", () => {
  const empty = evaluateTrustedNetwork(TrustedCriteria.parse({}), facts());
  assert.equal(empty.trusted, false);
  assert.equal(empty.networkType, "off_trusted");
  assert.equal(empty.explanation, "Off-trusted: no trusted-network criteria are configured");
  const emptyAll = evaluateTrustedNetwork(TrustedCriteria.parse({ match: "all" }), facts());
  assert.equal(emptyAll.trusted, false);

  const vpn = evaluateTrustedNetwork(
    TrustedCriteria.parse({ dnsServers: ["10.0.0.53"] }),
    facts({ ...hotel, vpnDefaultRoute: true, vpnInterface: "tun7" }),
  );
  assert.equal(vpn.networkType, "vpn_trusted");
  assert.equal(vpn.trusted, true);
  assert.equal(vpn.unmatched.length, 1, "criteria still explained");
  assert.match(vpn.explanation, /VPN-trusted: another VPN interface \(tun7\)/);
});

Deno.test("trusted network: addresses compare canonically", () => {
  const v = evaluateTrustedNetwork(
    TrustedCriteria.parse({ dnsServers: ["2001:DB8:0::53"] }),
    facts({ dnsServers: ["2001:db8::53"] }),
  );
  assert.equal(v.trusted, true);
});

Deno.test("trusted network: probe lists", () => {
  const c = TrustedCriteria.parse({
    hostnameIps: [{ hostname: "a.example", ips: ["1.1.1.1"] }, {
      hostname: "a.example",
      ips: ["1.1.1.2"],
    }],
    tlsBeacons: [{ host: "2001:db8::5", port: 443, sha256: FP }],
  });
  assert.deepEqual(hostnamesToResolve(c), ["a.example"]);
  assert.deepEqual(beaconsToProbe(c), [{ host: "2001:db8::5", port: 443 }]);
  assert.equal(beaconKey("2001:db8::5", 443), "[2001:db8::5]:443");
});
