import assert from "node:assert/strict";
import {
  buildDnsQuery,
  DNS_CLASS_IN,
  DNS_RCODE,
  DNS_TYPE,
  dnsErrorResponse,
  type DnsMessage,
  dnsNameInZone,
  dnsNameToLabels,
  DnsParseError,
  type DnsParseReason,
  type DnsRecord,
  dnsResponseTo,
  encodeDnsMessage,
  normalizeDnsName,
  parseDnsHeader,
  parseDnsMessage,
  readDnsName,
  tryParseDnsMessage,
} from "../../src/packet/dns.ts";
import { buildUdp } from "../../src/packet/build.ts";
import { PcapWriter } from "../../src/packet/pcap.ts";
import { InputError } from "../../src/errors.ts";

const records: DnsRecord[] = [
  { name: "host.clients.portcullis.internal", class: 1, ttl: 60, type: "A", address: "100.64.0.7" },
  { name: "host.clients.portcullis.internal", class: 1, ttl: 60, type: "AAAA", address: "fd00::7" },
  {
    name: "www.portcullis.internal",
    class: 1,
    ttl: 30,
    type: "CNAME",
    target: "host.clients.portcullis.internal",
  },
  {
    name: "7.0.64.100.in-addr.arpa",
    class: 1,
    ttl: 30,
    type: "PTR",
    target: "host.clients.portcullis.internal",
  },
  {
    name: "portcullis.internal",
    class: 1,
    ttl: 30,
    type: "TXT",
    texts: ["v=1 hello", "", "ünïcode"],
  },
  { name: "portcullis.internal", class: 1, ttl: 30, type: "NS", target: "ns.portcullis.internal" },
  {
    name: "portcullis.internal",
    class: 1,
    ttl: 300,
    type: "SOA",
    mname: "ns.portcullis.internal",
    rname: "hostmaster.portcullis.internal",
    serial: 2026010101,
    refresh: 3600,
    retry: 600,
    expire: 86400,
    minimum: 60,
  },
  { name: "", class: 1232, ttl: 0, type: "OTHER", code: DNS_TYPE.OPT, data: new Uint8Array(0) },
];

function message(): DnsMessage {
  const q = parseDnsMessage(buildDnsQuery("Host.Clients.Portcullis.Internal", DNS_TYPE.A, 0xbeef));
  return dnsResponseTo(q, {
    aa: true,
    answers: records.slice(0, 5),
    authorities: records.slice(5, 7),
    additionals: records.slice(7),
  });
}

Deno.test("DNS messages round-trip with and without compression", () => {
  const m = message();
  const plain = encodeDnsMessage(m, { compress: false });
  const packed = encodeDnsMessage(m, { compress: true });
  assert.ok(packed.length < plain.length - 60, `${packed.length} vs ${plain.length}`);
  for (const wire of [plain, packed]) {
    const back = parseDnsMessage(wire);
    assert.deepEqual(back, m);
  }
  assert.equal(m.questions[0].name, "Host.Clients.Portcullis.Internal", "case is preserved");
  assert.equal(m.header.id, 0xbeef);
  assert.ok(m.header.qr && m.header.aa && m.header.rd);
});

Deno.test("query header flags encode in the right bits", () => {
  const q = buildDnsQuery("example.com", DNS_TYPE.AAAA, 0x1234);
  assert.deepEqual([...q.slice(0, 12)], [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  const r = encodeDnsMessage(
    dnsResponseTo(parseDnsMessage(q), { rcode: DNS_RCODE.NXDOMAIN, ra: true }),
  );
  assert.equal(r[2], 0x81);
  assert.equal(r[3], 0x83);
  const err = dnsErrorResponse(
    Uint8Array.of(0xab, 0xcd, 0x01, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0xff),
    DNS_RCODE.FORMERR,
  )!;
  assert.deepEqual([...err], [0xab, 0xcd, 0x81, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(dnsErrorResponse(new Uint8Array(5), 1), null);
  assert.equal(parseDnsHeader(new Uint8Array(11)), null);
});

Deno.test("names with odd bytes are escaped and round-trip", () => {
  const cases: [string, number[][]][] = [
    ["a\\.b.c", [[0x61, 0x2e, 0x62], [0x63]]],
    ["sp\\032ace.x", [[0x73, 0x70, 0x20, 0x61, 0x63, 0x65], [0x78]]],
    ["back\\\\slash", [[0x62, 0x61, 0x63, 0x6b, 0x5c, 0x73, 0x6c, 0x61, 0x73, 0x68]]],
    ["nul\\000", [[0x6e, 0x75, 0x6c, 0]]],
    ["", []],
  ];
  for (const [name, labels] of cases) {
    assert.deepEqual(dnsNameToLabels(name).map((l) => [...l]), labels, name);
    const wire = encodeDnsMessage({
      header: parseDnsHeader(buildDnsQuery("x", 1, 1))!,
      questions: [{ name, type: 1, class: 1 }],
      answers: [],
      authorities: [],
      additionals: [],
    });
    assert.equal(parseDnsMessage(wire).questions[0].name, name);
  }
  assert.deepEqual(dnsNameToLabels("example.com."), dnsNameToLabels("example.com"));
});

Deno.test("names that cannot be encoded are refused with InputError", () => {
  const cases = ["a..b", ".a", "x".repeat(64) + ".com", Array(130).fill("ab").join("."), "bad\\"];
  for (const name of cases) {
    assert.throws(() => buildDnsQuery(name, 1, 1), InputError, name);
  }
  // 63-octet labels and a 253-character name are fine.
  buildDnsQuery("x".repeat(63) + ".com", 1, 1);
  const max = [61, 63, 63, 63].map((n) => "a".repeat(n)).join(".");
  assert.equal(max.length, 253);
  buildDnsQuery(max, 1, 1);
  assert.throws(() => buildDnsQuery("b" + max, 1, 1), InputError);
});

/** Builds a message from raw bytes after a 12-byte header with the given counts. */
function raw(counts: [number, number, number, number], body: number[]): Uint8Array {
  return Uint8Array.from([
    0,
    1,
    0x01,
    0,
    0,
    counts[0],
    0,
    counts[1],
    0,
    counts[2],
    0,
    counts[3],
    ...body,
  ]);
}

Deno.test("hostile and malformed messages raise DnsParseError with a reason", () => {
  const q = (name: number[]) => raw([1, 0, 0, 0], [...name, 0, 1, 0, 1]);
  const cases: [string, Uint8Array, DnsParseReason][] = [
    ["empty", new Uint8Array(0), "truncated"],
    ["header only but claims a question", raw([1, 0, 0, 0], []), "truncated"],
    ["pointer to itself", q([0xc0, 12]), "pointer_loop"],
    ["pointer forward", q([0xc0, 40]), "pointer_loop"],
    [
      "two pointers in a loop",
      raw([2, 0, 0, 0], [1, 0x61, 0xc0, 20, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1]),
      "pointer_loop",
    ],
    ["label then pointer back into itself", q([1, 0x61, 1, 0x62, 0xc0, 14]), "pointer_loop"],
    ["extended label type 0x40", q([0x41, 0x61]), "bad_label_type"],
    ["reserved label type 0x80", q([0x81, 0x61]), "bad_label_type"],
    ["label runs past the end", raw([1, 0, 0, 0], [10, 0x61, 0x62]), "truncated"],
    ["pointer cut in half", raw([1, 0, 0, 0], [0xc0]), "truncated"],
    ["question without type/class", raw([1, 0, 0, 0], [1, 0x61, 0, 0, 1]), "truncated"],
    [
      "name over 255 octets",
      q(Array(5).fill([63, ...Array(63).fill(0x61)]).flat()),
      "name_too_long",
    ],
    [
      "65535 questions claimed",
      Uint8Array.from([0, 1, 1, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]),
      "truncated",
    ],
    [
      "A record of 3 bytes",
      raw([0, 1, 0, 0], [0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 3, 1, 2, 3]),
      "bad_rdata",
    ],
    [
      "AAAA record of 4 bytes",
      raw([0, 1, 0, 0], [0, 0, 28, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]),
      "bad_rdata",
    ],
    [
      "rdata past the end",
      raw([0, 1, 0, 0], [0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 40, 1, 2, 3, 4]),
      "truncated",
    ],
    [
      "CNAME name longer than rdlength",
      raw([0, 1, 0, 0], [0, 0, 5, 0, 1, 0, 0, 0, 1, 0, 2, 1, 0x61, 0]),
      "bad_rdata",
    ],
    [
      "TXT string past rdata",
      raw([0, 1, 0, 0], [0, 0, 16, 0, 1, 0, 0, 0, 1, 0, 2, 5, 0x61]),
      "bad_rdata",
    ],
    [
      "SOA too short",
      raw([0, 1, 0, 0], [0, 0, 6, 0, 1, 0, 0, 0, 1, 0, 4, 0, 0, 1, 2]),
      "bad_rdata",
    ],
    ["record header cut", raw([0, 1, 0, 0], [0, 0, 1, 0, 1]), "truncated"],
  ];
  for (const [name, bytes, reason] of cases) {
    let err: unknown;
    try {
      parseDnsMessage(bytes);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof DnsParseError, `${name}: ${err}`);
    assert.equal(err.reason, reason, name);
    assert.equal(err.code, "dns_malformed");
    const t = tryParseDnsMessage(bytes);
    assert.ok(t instanceof DnsParseError);
  }
});

Deno.test("random garbage only ever raises DnsParseError", () => {
  let seed = 99;
  const rnd = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) >>> 24;
  const base = encodeDnsMessage(message());
  let parsed = 0;
  for (let i = 0; i < 20000; i++) {
    let b: Uint8Array;
    if (i % 2) {
      b = Uint8Array.from({ length: rnd() % 80 }, rnd);
    } else {
      b = base.slice(0, rnd() % (base.length + 1));
      for (let k = 0; k < 1 + (rnd() % 4); k++) if (b.length) b[rnd() % b.length] = rnd();
    }
    const r = tryParseDnsMessage(b);
    if (!(r instanceof DnsParseError)) parsed++;
  }
  assert.ok(parsed > 0, "some mutated messages still parse");
});

Deno.test("legitimate compression pointers, including chains, parse", () => {
  // question "a.example" at 12; answer name "b" + ptr to "example" (offset 14); rdata ptr to answer name.
  const body = [1, 0x61, 7, ...new TextEncoder().encode("example"), 0, 0, 1, 0, 1];
  const ansAt = 12 + body.length;
  body.push(1, 0x62, 0xc0, 14, 0, 5, 0, 1, 0, 0, 0, 9, 0, 2, 0xc0, ansAt);
  const m = parseDnsMessage(raw([1, 1, 0, 0], body));
  assert.equal(m.questions[0].name, "a.example");
  assert.equal(m.answers[0].name, "b.example");
  assert.deepEqual(m.answers[0], {
    name: "b.example",
    class: 1,
    ttl: 9,
    type: "CNAME",
    target: "b.example",
  });
  assert.equal(readDnsName(raw([0, 0, 0, 0], body), 12).next, 12 + 11);
});

Deno.test("maxSize truncates to the question and OPT with TC set", () => {
  const m = message();
  const many: DnsRecord[] = Array.from({ length: 60 }, (_, i) => ({
    name: "host.clients.portcullis.internal",
    class: DNS_CLASS_IN,
    ttl: 60,
    type: "A" as const,
    address: `100.64.1.${i}`,
  }));
  const big = { ...m, answers: many };
  const full = encodeDnsMessage(big);
  assert.ok(full.length > 512);
  const cut = encodeDnsMessage(big, { maxSize: 512 });
  const back = parseDnsMessage(cut);
  assert.ok(back.header.tc);
  assert.equal(back.answers.length, 0);
  assert.equal(back.questions.length, 1);
  assert.equal(back.additionals.length, 1);
  assert.equal(parseDnsMessage(encodeDnsMessage(m, { maxSize: 512 })).header.tc, false);
});

Deno.test("name helpers compare case-insensitively on label boundaries", () => {
  const cases: [string, string, boolean][] = [
    ["Host.Clients.Portcullis.Internal.", "portcullis.internal", true],
    ["portcullis.internal", "portcullis.internal", true],
    ["evilportcullis.internal", "portcullis.internal", false],
    ["example.com", "", true],
    ["internal", "portcullis.internal", false],
  ];
  for (const [n, z, want] of cases) assert.equal(dnsNameInZone(n, z), want, `${n} in ${z}`);
  assert.equal(normalizeDnsName("WWW.Example.COM."), "www.example.com");
});

async function hasTshark(): Promise<boolean> {
  try {
    return (await new Deno.Command("tshark", { args: ["-v"], stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "tshark decodes the DNS messages we encode",
  ignore: !(await hasTshark()),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pc_dns_" });
    try {
      const file = `${dir}/dns.pcap`;
      const w = PcapWriter.open(file);
      w.write(
        buildUdp({
          src: "100.64.0.2",
          dst: "100.64.0.1",
          srcPort: 40000,
          dstPort: 53,
          data: encodeDnsMessage(message()),
        }),
      );
      w.close();
      const r = await new Deno.Command("tshark", {
        args: [
          "-r",
          file,
          "-T",
          "fields",
          "-e",
          "dns.qry.name",
          "-e",
          "dns.a",
          "-e",
          "dns.aaaa",
          "-e",
          "dns.cname",
          "-e",
          "dns.soa.mname",
          "-e",
          "dns.flags.authoritative",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(r.success, new TextDecoder().decode(r.stderr));
      const f = new TextDecoder().decode(r.stdout).trim().split("\t");
      assert.deepEqual(f, [
        "Host.Clients.Portcullis.Internal",
        "100.64.0.7",
        "fd00::7",
        "host.clients.portcullis.internal",
        "ns.portcullis.internal",
        "1",
      ]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
