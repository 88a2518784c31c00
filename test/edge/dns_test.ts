import assert from "node:assert/strict";
import {
  buildDnsQuery,
  DNS_CLASS_IN,
  DNS_OPCODE_QUERY,
  DNS_RCODE,
  DNS_TYPE,
  type DnsRecord,
  encodeDnsMessage,
  parseDnsMessage,
} from "../../src/packet/dns.ts";
import {
  type DnsServer,
  PROTECTED_NAME,
  protectedRecord,
  startDnsServer,
} from "../../src/edge/dns.ts";
import { startFakeUpstream, tcpExchange, udpExchange } from "../connector/dns/fake_dns.ts";

const devices: Record<string, string> = {
  "laptop-1.clients.portcullis.internal": "100.64.0.10",
  "laptop-2.clients.portcullis.internal": "100.64.0.11",
};

function lookup(name: string, type: number): DnsRecord[] | null {
  if (name === "big.portcullis.internal") {
    return Array.from({ length: 80 }, (_, i) => ({
      name,
      class: DNS_CLASS_IN,
      ttl: 5,
      type: "A" as const,
      address: `100.64.1.${i}`,
    }));
  }
  if (name === "broken.portcullis.internal") throw new Error("registry down");
  const addr = devices[name];
  if (!addr) return null;
  return type === DNS_TYPE.A
    ? [{ name, class: DNS_CLASS_IN, ttl: 60, type: "A", address: addr }]
    : [];
}

async function withServer(
  upstream: string[],
  allow: (a: string) => boolean,
  fn: (s: DnsServer) => Promise<void>,
): Promise<void> {
  const s = await startDnsServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    zones: ["portcullis.internal"],
    lookup,
    records: [protectedRecord("100.64.0.1")],
    upstream,
    allow,
    upstreamTimeoutMs: 300,
  });
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

async function ask(port: number, name: string, type: number = DNS_TYPE.A, id = 0x4242) {
  const r = await udpExchange(port, buildDnsQuery(name, type, id));
  assert.ok(r, `no answer for ${name}`);
  const m = parseDnsMessage(r);
  assert.equal(m.header.id, id);
  assert.ok(m.header.qr);
  return m;
}

Deno.test("edge DNS answers its zones, forwards the rest and refuses strangers", async () => {
  const up = await startFakeUpstream({ address: "203.0.113.9" });
  try {
    await withServer([up.addr], () => true, async (s) => {
      const rows: {
        name: string;
        type?: number;
        rcode: number;
        addrs: string[];
        aa: boolean;
        soa?: boolean;
      }[] = [
        {
          name: "laptop-1.clients.portcullis.internal",
          rcode: 0,
          addrs: ["100.64.0.10"],
          aa: true,
        },
        {
          name: "LAPTOP-2.Clients.Portcullis.Internal.",
          rcode: 0,
          addrs: ["100.64.0.11"],
          aa: true,
        },
        { name: PROTECTED_NAME, rcode: 0, addrs: ["100.64.0.1"], aa: true },
        {
          name: "nobody.clients.portcullis.internal",
          rcode: DNS_RCODE.NXDOMAIN,
          addrs: [],
          aa: true,
          soa: true,
        },
        {
          name: "laptop-1.clients.portcullis.internal",
          type: DNS_TYPE.AAAA,
          rcode: 0,
          addrs: [],
          aa: true,
          soa: true,
        },
        { name: "broken.portcullis.internal", rcode: DNS_RCODE.SERVFAIL, addrs: [], aa: true },
        { name: "www.example.com", rcode: 0, addrs: ["203.0.113.9"], aa: false },
      ];
      for (const row of rows) {
        const m = await ask(s.port, row.name, row.type);
        assert.equal(m.header.rcode, row.rcode, row.name);
        assert.equal(m.header.aa, row.aa, row.name);
        assert.deepEqual(
          m.answers.map((a) => (a.type === "A" ? a.address : a.type)),
          row.addrs,
          row.name,
        );
        assert.equal(m.authorities.some((a) => a.type === "SOA"), !!row.soa, `${row.name} SOA`);
        if (m.answers.length) {
          assert.equal(
            m.answers[0].name,
            row.name.replace(/\.$/, ""),
            "owner name echoes the question",
          );
        }
      }
      assert.equal(up.seen.length, 1, "only the outside name went upstream");
      assert.equal(up.seen[0].questions[0].name, "www.example.com");
      assert.equal(s.stats.nxdomain, 1);
      assert.equal(s.stats.forwarded, 1);

      // Upstream queries use fresh random ids, not the client's.
      for (let i = 0; i < 4; i++) await ask(s.port, `n${i}.example.org`, DNS_TYPE.A, 0x0101);
      const ids = up.seen.slice(1).map((q) => q.header.id);
      assert.ok(ids.some((id) => id !== 0x0101), `upstream ids ${ids}`);
    });
    await withServer([up.addr], (a) => a !== "127.0.0.1", async (s) => {
      for (const name of ["www.example.com", PROTECTED_NAME]) {
        const m = await ask(s.port, name);
        assert.equal(m.header.rcode, DNS_RCODE.REFUSED, name);
        assert.equal(m.answers.length, 0);
      }
      assert.equal(s.stats.refused, 2);
    });
  } finally {
    await up.close();
  }
});

Deno.test("forwarding fails over, ignores spoofed answers and reports SERVFAIL when all fail", async () => {
  const dead = await startFakeUpstream({ address: "192.0.2.1", silent: true });
  const spoofy = await startFakeUpstream({ address: "198.51.100.7", spoofFirst: true });
  try {
    await withServer([dead.addr, spoofy.addr], () => true, async (s) => {
      const m = await ask(s.port, "www.example.net");
      assert.equal(m.header.rcode, 0);
      assert.deepEqual(m.answers.map((a) => a.type === "A" && a.address), ["198.51.100.7"]);
      assert.equal(dead.seen.length, 1, "the dead upstream was tried first");
      assert.equal(m.questions[0].name, "www.example.net");
    });
    await withServer([dead.addr], () => true, async (s) => {
      const m = await ask(s.port, "www.example.net");
      assert.equal(m.header.rcode, DNS_RCODE.SERVFAIL);
      assert.equal(s.stats.forwardFailed, 1);
    });
  } finally {
    await dead.close();
    await spoofy.close();
  }
});

Deno.test("garbage is ignored or answered with FORMERR, and the server keeps serving", async () => {
  await withServer([], () => true, async (s) => {
    const noReply = [
      new Uint8Array(0),
      Uint8Array.of(1, 2, 3, 4, 5),
      // A response (QR=1) must never be answered: no reflection loops.
      encodeDnsMessage({
        ...parseDnsMessage(buildDnsQuery("x.example", 1, 7)),
        header: { ...parseDnsMessage(buildDnsQuery("x.example", 1, 7)).header, qr: true },
      }),
    ];
    for (const g of noReply) assert.equal(await udpExchange(s.port, g, 200), null);
    const formerr = [
      Uint8Array.of(0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1), // pointer loop
      Uint8Array.of(0, 9, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1), // two questions
      Uint8Array.from({ length: 300 }, (_, i) => (i < 2 ? 0 : (i * 37) & 0x7f)),
    ];
    for (const g of formerr) {
      const r = await udpExchange(s.port, g);
      assert.ok(r);
      assert.equal(r[3] & 0x0f, DNS_RCODE.FORMERR);
    }
    const notimp = buildDnsQuery("a.example", 1, 3);
    notimp[2] |= 2 << 3; // opcode STATUS
    assert.notEqual((notimp[2] >> 3) & 0x0f, DNS_OPCODE_QUERY);
    assert.equal((await udpExchange(s.port, notimp))![3] & 0x0f, DNS_RCODE.NOTIMP);
    const m = await ask(s.port, PROTECTED_NAME);
    assert.equal(m.answers.length, 1);
  });
});

Deno.test("large answers are truncated on UDP and complete over TCP", async () => {
  const up = await startFakeUpstream({ address: "203.0.113.1", count: 60 });
  try {
    await withServer([up.addr], () => true, async (s) => {
      const udp = await ask(s.port, "big.portcullis.internal");
      assert.ok(udp.header.tc);
      assert.equal(udp.answers.length, 0);
      const tcp = parseDnsMessage(
        await tcpExchange(s.port, buildDnsQuery("big.portcullis.internal", 1, 5)),
      );
      assert.equal(tcp.header.id, 5);
      assert.equal(tcp.answers.length, 80);
      // Forwarded over TCP too: the upstream's full answer comes through.
      const fwdUdp = await ask(s.port, "many.example.com");
      assert.ok(fwdUdp.header.tc);
      const fwd = parseDnsMessage(
        await tcpExchange(s.port, buildDnsQuery("many.example.com", 1, 6)),
      );
      assert.equal(fwd.header.id, 6);
      assert.equal(fwd.answers.length, 60);
    });
  } finally {
    await up.close();
  }
});
