import assert from "node:assert/strict";
import { buildIcmpEcho, buildTcp, buildUdp } from "../../src/packet/build.ts";
import {
  encodePcapGlobalHeader,
  LINKTYPE_RAW,
  MemoryPcapSink,
  PcapWriter,
  readPcap,
} from "../../src/packet/pcap.ts";
import { InputError } from "../../src/errors.ts";

async function hasTshark(): Promise<boolean> {
  try {
    const r = await new Deno.Command("tshark", { args: ["-v"], stdout: "null", stderr: "null" })
      .output();
    return r.success;
  } catch {
    return false;
  }
}
const tshark = await hasTshark();

async function tsharkFields(
  file: string,
  fields: string[],
  extra: string[] = [],
): Promise<string[][]> {
  const args = ["-r", file, "-T", "fields", ...extra, ...fields.flatMap((f) => ["-e", f])];
  const r = await new Deno.Command("tshark", { args, stdout: "piped", stderr: "piped" }).output();
  const err = new TextDecoder().decode(r.stderr);
  assert.ok(r.success, `tshark failed: ${err}`);
  return new TextDecoder().decode(r.stdout).trim().split("\n").map((l) => l.split("\t"));
}

Deno.test("pcap writer round-trips through the reader with snaplen and timestamps", () => {
  const sink = new MemoryPcapSink();
  let t = 1_700_000_000_123_456;
  const w = new PcapWriter(sink, { snaplen: 40, nowMicros: () => t++ });
  const a = buildIcmpEcho({ src: "10.0.0.1", dst: "10.0.0.2" });
  const b = buildUdp({
    src: "fd00::1",
    dst: "fd00::2",
    srcPort: 1,
    dstPort: 2,
    data: new Uint8Array(100),
  });
  assert.ok(w.write(a));
  const framed = new Uint8Array(b.length + 10);
  framed.set(b, 10);
  assert.ok(w.write(framed, 10, b.length));
  w.close();
  assert.ok(sink.closed);
  assert.equal(w.write(a), false, "closed writer drops");
  const f = readPcap(sink.bytes());
  assert.equal(f.linktype, LINKTYPE_RAW);
  assert.equal(f.snaplen, 40);
  assert.equal(f.packets.length, 2);
  assert.deepEqual(f.packets[0].data, a.slice(0, 40));
  assert.equal(f.packets[0].originalLength, a.length);
  assert.equal(f.packets[0].tsSec, 1_700_000_000);
  assert.equal(f.packets[0].tsUsec, 123_456);
  assert.equal(f.packets[1].tsUsec, 123_457);
  assert.deepEqual(f.packets[1].data, b.slice(0, 40));
  assert.equal(f.packets[1].originalLength, b.length);
});

Deno.test("pcap writer stops at its byte and packet limits", () => {
  const p = buildIcmpEcho({ src: "10.0.0.1", dst: "10.0.0.2" }); // 60 bytes
  const cases = [
    { opts: { maxPackets: 3 }, kept: 3 },
    { opts: { maxBytes: 24 + 2 * (16 + 60) }, kept: 2 },
    { opts: { maxBytes: 24 + 2 * (16 + 60) - 1 }, kept: 1 },
    { opts: { maxBytes: 24 }, kept: 0 },
  ];
  for (const c of cases) {
    const sink = new MemoryPcapSink();
    const w = new PcapWriter(sink, c.opts);
    for (let i = 0; i < 5; i++) w.write(p);
    assert.equal(w.packets, c.kept, JSON.stringify(c.opts));
    assert.equal(w.dropped, 5 - c.kept);
    assert.ok(w.full);
    assert.equal(sink.bytes().length, w.bytes);
    assert.equal(readPcap(sink.bytes()).packets.length, c.kept);
  }
  assert.throws(() => new PcapWriter(new MemoryPcapSink(), { snaplen: 0 }), InputError);
});

Deno.test("readPcap rejects garbage and truncated files with a typed error", () => {
  const good = new MemoryPcapSink();
  const w = new PcapWriter(good);
  w.write(buildIcmpEcho({ src: "10.0.0.1", dst: "10.0.0.2" }));
  const bytes = good.bytes();
  const cases: [string, Uint8Array][] = [
    ["short", new Uint8Array(10)],
    ["bad magic", new Uint8Array(24)],
    ["truncated record header", bytes.slice(0, 30)],
    ["truncated packet", bytes.slice(0, bytes.length - 1)],
  ];
  for (const [name, b] of cases) assert.throws(() => readPcap(b), InputError, name);
  // Big-endian files are read too.
  const be = encodePcapGlobalHeader(1500);
  const dv = new DataView(be.buffer);
  dv.setUint32(0, 0xa1b2c3d4, false);
  dv.setUint32(16, 1500, false);
  dv.setUint32(20, 101, false);
  assert.equal(readPcap(be).snaplen, 1500);
});

Deno.test({
  name: "tshark reads the packets we write, with valid checksums",
  ignore: !tshark,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pc_pcap_" });
    try {
      const file = `${dir}/cap.pcap`;
      const w = PcapWriter.open(file, { maxPackets: 100 });
      w.write(buildIcmpEcho({ src: "10.0.0.1", dst: "10.0.0.2", ident: 7, seq: 1 }));
      w.write(buildIcmpEcho({ src: "10.0.0.2", dst: "10.0.0.1", ident: 7, seq: 1, kind: "reply" }));
      w.write(
        buildUdp({
          src: "10.0.0.1",
          dst: "10.0.0.53",
          srcPort: 33333,
          dstPort: 5353,
          data: Uint8Array.of(1, 2, 3),
        }),
      );
      w.write(
        buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 40000, dstPort: 443, seq: 1000 }),
      );
      w.write(buildIcmpEcho({ src: "fd00::1", dst: "fd00::2", ident: 9, seq: 2 }));
      w.close();

      const icmp = await tsharkFields(file, ["icmp.type", "icmp.ident", "icmp.checksum.status"], [
        "-Y",
        "icmp",
      ]);
      assert.deepEqual(icmp, [["8", "7", "1"], ["0", "7", "1"]]);
      const v6 = await tsharkFields(file, ["icmpv6.type", "icmpv6.checksum.status"], [
        "-Y",
        "icmpv6",
      ]);
      assert.deepEqual(v6, [["128", "1"]]);
      const checks = [
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
      ];
      const udp = await tsharkFields(file, [
        "udp.dstport",
        "udp.checksum.status",
        "ip.checksum.status",
      ], [...checks, "-Y", "udp"]);
      assert.deepEqual(udp, [["5353", "1", "1"]]);
      const tcp = await tsharkFields(file, [
        "tcp.dstport",
        "tcp.flags.syn",
        "tcp.checksum.status",
        "tcp.options.mss_val",
      ], [...checks, "-Y", "tcp"]);
      assert.deepEqual(tcp, [["443", "1", "1", "1360"]]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
