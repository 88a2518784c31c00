/**
 * DNS bindings (what the edge DNS told each device) and the edge DNS's
 * observer hook that feeds them: per device, TTL floor and ceiling, bounded
 * per device, the edge's own resolutions for every device.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import {
  BINDING_TTL_CEILING_S,
  BINDING_TTL_FLOOR_S,
  DnsBindings,
  GLOBAL,
} from "../../src/edge/access/dns_bindings.ts";
import { startDnsServer } from "../../src/edge/dns.ts";
import { buildDnsQuery, DNS_TYPE, parseDnsMessage } from "../../src/packet/dns.ts";
import { startFakeUpstream, udpExchange } from "../connector/dns/fake_dns.ts";

Deno.test("dns bindings: per device, with a TTL floor and ceiling, bounded", () => {
  const clock = new ManualClock(0);
  const b = new DnsBindings(clock, 3);
  b.record("100.64.0.2", "Wiki.Corp.Internal.", ["10.1.2.3", "fd00::3"], 5);
  assert.deepEqual(b.names("100.64.0.2", "10.1.2.3"), ["wiki.corp.internal"]);
  assert.deepEqual(b.names("::ffff:100.64.0.2", "fd00:0::3"), ["wiki.corp.internal"]);
  assert.equal(b.names("100.64.0.3", "10.1.2.3"), null, "another device was told nothing");
  b.record("100.64.0.2", "git.corp.internal", ["10.1.2.3"], 5);
  assert.deepEqual(b.names("100.64.0.2", "10.1.2.3"), ["wiki.corp.internal", "git.corp.internal"]);
  clock.advance(BINDING_TTL_FLOOR_S * 1000 - 1);
  assert.ok(b.names("100.64.0.2", "10.1.2.3"), "a 5 s TTL is kept for the floor");
  clock.advance(2);
  assert.equal(b.names("100.64.0.2", "10.1.2.3"), null);
  b.record("100.64.0.2", "long.corp.internal", ["10.9.9.9"], 10 * 86400);
  clock.advance(BINDING_TTL_CEILING_S * 1000 + 1);
  assert.equal(b.names("100.64.0.2", "10.9.9.9"), null, "a day-long TTL is capped");
  for (let i = 1; i <= 5; i++) b.record("100.64.0.2", `n${i}.example`, [`10.0.0.${i}`], 60);
  assert.equal(b.count("100.64.0.2"), 3);
  assert.equal(b.names("100.64.0.2", "10.0.0.1"), null, "the oldest went first");
  assert.deepEqual(b.names("100.64.0.2", "10.0.0.5"), ["n5.example"]);
  // What the edge resolved itself holds for every device; a device's own answer wins.
  b.record(GLOBAL, "wiki.corp.internal", ["10.7.7.7"], 120);
  assert.deepEqual(b.names("100.64.0.9", "10.7.7.7"), ["wiki.corp.internal"]);
  b.forget("100.64.0.2");
  assert.equal(b.count("100.64.0.2"), 0);
  b.record("not an address", "x.example", ["10.0.0.1"], 60);
  b.record("100.64.0.2", "x.example", ["garbage"], 60);
  assert.equal(b.count("100.64.0.2"), 0);
});

Deno.test("edge DNS: every forwarded answer is shown to the observer before it goes out", async () => {
  const up = await startFakeUpstream({ address: "198.19.0.10" });
  const seen: { src: string; name: string; answer: string[] }[] = [];
  const s = await startDnsServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    zones: ["portcullis.internal"],
    lookup: () => null,
    upstream: [up.addr],
    allow: () => true,
    onForwarded: (src, q, answer) => {
      const m = parseDnsMessage(answer);
      seen.push({
        src: src.address,
        name: q.questions[0].name,
        answer: m.answers.map((a) => (a.type === "A" ? a.address : a.type)),
      });
      if (q.questions[0].name === "boom.corp.internal") throw new Error("observer bug");
    },
  });
  try {
    const r = await udpExchange(s.port, buildDnsQuery("wiki.corp.internal", DNS_TYPE.A, 7));
    assert.deepEqual(parseDnsMessage(r!).answers.map((a) => a.type === "A" && a.address), [
      "198.19.0.10",
    ]);
    assert.deepEqual(seen, [{
      src: "127.0.0.1",
      name: "wiki.corp.internal",
      answer: ["198.19.0.10"],
    }]);
    // A throwing observer does not cost the client its answer.
    const b = await udpExchange(s.port, buildDnsQuery("boom.corp.internal", DNS_TYPE.A, 8));
    assert.equal(parseDnsMessage(b!).header.rcode, 0);
    // Names in the edge's own zones are not forwarded, so not observed.
    await udpExchange(s.port, buildDnsQuery("x.portcullis.internal", DNS_TYPE.A, 9));
    assert.equal(seen.length, 2);
  } finally {
    await s.close();
    await up.close();
  }
});
