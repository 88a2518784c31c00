import assert from "node:assert/strict";
import { encodeKey, parseWgQuick, serializeWgQuick } from "../../src/wireguard/mod.ts";

const FIXTURE = new URL("../../fixtures/wireguard/client.conf", import.meta.url);

Deno.test("config: parses the fixture and round-trips through the serializer", async () => {
  const text = await Deno.readTextFile(FIXTURE);
  const cfg = parseWgQuick(text);
  assert.equal(cfg.interface.privateKey.length, 32);
  assert.deepEqual(cfg.interface.addresses, ["10.8.0.2/24", "fd08::2/64"]);
  assert.equal(cfg.interface.listenPort, 51820);
  assert.equal(cfg.interface.mtu, 1380);
  assert.deepEqual(cfg.interface.dns, ["10.8.0.1"]);
  assert.deepEqual(cfg.interface.dnsSearch, ["corp.example"]);
  assert.equal(cfg.interface.table, "off");
  assert.deepEqual(cfg.interface.postUp, ["iptables -A FORWARD -i %i -j ACCEPT"]);
  assert.equal(cfg.warnings.length, 2);
  assert.match(cfg.warnings[0], /^Line 8: Table is kept but not acted on$/);
  assert.equal(cfg.peers.length, 2);
  assert.deepEqual(cfg.peers[0].allowedIps, ["0.0.0.0/0", "::/0"]);
  assert.equal(cfg.peers[0].endpoint, "192.0.2.10:51820");
  assert.equal(cfg.peers[0].persistentKeepalive, 25);
  assert.equal(cfg.peers[0].presharedKey?.length, 32);
  assert.equal(cfg.peers[1].endpoint, undefined);
  const again = parseWgQuick(serializeWgQuick(cfg));
  assert.deepEqual({ ...again, warnings: [] }, { ...cfg, warnings: [] });
});

const KEY = "YNxh3Jz3RzVzwnvwXbSzTg4l7ZuoVoPgS09Qg6PdJ1M=";

Deno.test("config: errors name the line and the problem", () => {
  const cases: Array<[string, string]> = [
    [
      `[Interface]\nPrivateKey = ${KEY}\n\n[Peer]\nAllowedIPs = 10.0.0.0/8\n\nPublicKey = abc`,
      "Line 7: PublicKey is not a valid base64 32-byte key",
    ],
    [`[Interface]\nPrivateKey = nope`, "Line 2: PrivateKey is not a valid base64 32-byte key"],
    [`[Interface]\nAddress = 10.0.0.1/24`, "Line 1: [Interface] has no PrivateKey"],
    [
      `[Interface]\nPrivateKey = ${KEY}\n[Peer]\nAllowedIPs = 10.0.0.0/8`,
      "Line 3: [Peer] has no PublicKey",
    ],
    [`PrivateKey = ${KEY}`, "Line 1: PrivateKey appears before any [Interface] or [Peer] section"],
    [
      `[Interface]\nPrivateKey = ${KEY}\nListenPort = 70000`,
      'Line 3: ListenPort "70000" is not a whole number from 1 to 65535',
    ],
    [
      `[Interface]\nPrivateKey = ${KEY}\n[Peer]\nPublicKey = ${KEY}\nAllowedIPs = 10.0.0.0/33`,
      'Line 5: AllowedIPs entry "10.0.0.0/33" is not an IPv4 or IPv6 prefix',
    ],
    [
      `[Interface]\nPrivateKey = ${KEY}\n[Peer]\nPublicKey = ${KEY}\nEndpoint = example.com`,
      'Line 5: Endpoint "example.com" is not HOST:PORT or [IPv6]:PORT',
    ],
    [
      `[Interface]\nPrivateKey = ${KEY}\n[Peer]\nPublicKey = ${KEY}\nEndpoint = 1.2.3.999:5`,
      'Line 5: Endpoint "1.2.3.999:5" has an invalid IPv4 address',
    ],
    [`[Interface]\nPrivateKey = ${KEY}\nFoo = bar`, "Line 3: unknown key Foo in [Interface]"],
    [
      `[Interface]\nPrivateKey = ${KEY}\nMTU = 9000`,
      'Line 3: MTU "9000" is not a whole number from 576 to 2000',
    ],
    [
      `[Interface]\nPrivateKey = ${KEY}\nPrivateKey = ${KEY}`,
      "Line 3: PrivateKey is set twice in this section",
    ],
    [
      `[Interface]\nPrivateKey = ${KEY}\n[Bogus]`,
      "Line 3: unknown section [Bogus]; expected [Interface] or [Peer]",
    ],
    [
      `[Interface]\nPrivateKey = ${KEY}\njunk`,
      'Line 3: expected "Key = Value" or a [Section], got "junk"',
    ],
    [
      `[Interface]\nPrivateKey = ${KEY}\nAddress = 10.0.0.1/40`,
      'Line 3: Address "10.0.0.1/40" is not an IP address with an optional prefix length',
    ],
    [
      `[Interface]\nPrivateKey = ${KEY}\n[Peer]\nPublicKey = ${KEY}\nPersistentKeepalive = -1`,
      'Line 5: PersistentKeepalive "-1" is not a whole number from 0 to 65535',
    ],
    [
      `[Interface]\nPrivateKey = ${KEY}\n[Peer]\nPublicKey = ${KEY}\n[Peer]\nPublicKey = ${KEY}`,
      `Line 5: [Peer] ${KEY} appears twice`,
    ],
    [`# nothing`, "Line 1: no [Interface] section"],
  ];
  for (const [text, want] of cases) {
    assert.throws(() => parseWgQuick(text), (e: Error) => {
      assert.equal(e.message, want);
      return true;
    });
  }
});

Deno.test("config: accepts case-insensitive keys, comments, CRLF, bare addresses and hostnames", () => {
  const text = `[interface]\r\nprivatekey = ${KEY} # trailing comment\r\naddress = 10.0.0.1\r\n` +
    `[peer]\r\npublickey = ${KEY}\r\nallowedips = 10.0.0.9\r\nendpoint = vpn.example.com:443\r\npersistentkeepalive = off\r\n` +
    `\r\n[Peer]\r\nPublicKey = ${
      encodeKey(new Uint8Array(32).fill(7))
    }\r\nEndpoint = [2001:db8::1]:51820\r\n`;
  const cfg = parseWgQuick(text);
  assert.deepEqual(cfg.interface.addresses, ["10.0.0.1/32"]);
  assert.deepEqual(cfg.peers[0].allowedIps, ["10.0.0.9/32"]);
  assert.equal(cfg.peers[0].endpoint, "vpn.example.com:443");
  assert.equal(cfg.peers[0].persistentKeepalive, 0);
  assert.equal(cfg.peers[1].endpoint, "[2001:db8::1]:51820");
});
