import assert from "node:assert/strict";
import {
  checksumUpdate16,
  checksumUpdate32,
  checksumUpdateBytes,
  foldSum,
  internetChecksum,
  sumWords,
} from "../../src/packet/checksum.ts";

const hex = (s: string) =>
  Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!.map((x) => parseInt(x, 16)));

Deno.test("internetChecksum matches known vectors", () => {
  const cases: [string, string, number][] = [
    // RFC 1071 §3 example: folded sum ddf2, checksum is its complement.
    ["rfc1071", "0001 f203 f4f5 f6f7", 0x220d],
    // IPv4 header with checksum field zeroed (classic example, checksum b861).
    ["ipv4 header", "4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7", 0xb861],
    ["odd length pads with zero", "01", 0xfeff],
    ["empty", "", 0xffff],
    ["all ones", "ffff ffff", 0x0000],
  ];
  for (const [name, data, want] of cases) {
    const b = data ? hex(data) : new Uint8Array(0);
    assert.equal(internetChecksum(b, 0, b.length), want, name);
  }
  assert.equal(foldSum(sumWords(hex("0001f203f4f5f6f7"), 0, 8)), 0xddf2);
});

Deno.test("a header including its checksum sums to 0xffff", () => {
  const b = hex("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7");
  assert.equal(foldSum(sumWords(b, 0, b.length)), 0xffff);
  assert.equal(internetChecksum(b, 0, b.length), 0);
});

Deno.test("incremental updates (RFC 1624) equal a full recompute", () => {
  let seed = 12345;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8;
  for (let trial = 0; trial < 500; trial++) {
    const len = 20 + (rnd() % 40) * 2;
    const b = new Uint8Array(len);
    for (let i = 0; i < len; i++) b[i] = rnd() & 0xff;
    if (trial % 7 === 0) b.fill(0); // exercise the all-zero corner
    b[10] = b[11] = 0;
    const c0 = internetChecksum(b, 0, len);
    b[10] = c0 >> 8;
    b[11] = c0 & 0xff;
    const kind = trial % 3;
    const at = 12 + 2 * (rnd() % ((len - 16) / 2));
    let c1: number;
    const old = b.slice();
    if (kind === 0) {
      const ow = (b[at] << 8) | b[at + 1];
      const nw = rnd() & 0xffff;
      b[at] = nw >> 8;
      b[at + 1] = nw & 0xff;
      c1 = checksumUpdate16(c0, ow, nw);
    } else if (kind === 1) {
      const ov = ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
      const nv = (rnd() * 7919) >>> 0;
      new DataView(b.buffer).setUint32(at, nv);
      c1 = checksumUpdate32(c0, ov, nv);
    } else {
      for (let i = 0; i < 4; i++) b[at + i] = rnd() & 0xff;
      c1 = checksumUpdateBytes(c0, old, at, b, at, 4);
    }
    b[10] = b[11] = 0;
    const full = internetChecksum(b, 0, len);
    // RFC 1624 eqn. 3 never yields 0x0000 where a recompute could give 0xffff-equivalent +0/-0;
    // both encodings of zero verify, so compare by verification as well as value.
    b[10] = c1 >> 8;
    b[11] = c1 & 0xff;
    assert.equal(foldSum(sumWords(b, 0, len)), 0xffff, `trial ${trial} verifies`);
    if (!(full === 0 && c1 === 0xffff) && !(full === 0xffff && c1 === 0)) {
      assert.equal(c1, full, `trial ${trial} kind ${kind}`);
    }
  }
});

Deno.test("sumWords: the word-at-a-time path equals byte pairs at every alignment and length", () => {
  let seed = 99;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8;
  const ab = new ArrayBuffer(70_011);
  const all = new Uint8Array(ab);
  for (let i = 0; i < all.length; i++) all[i] = rnd() & 0xff;
  const plain = (b: Uint8Array, off: number, len: number) => {
    let s = 0;
    for (let i = 0; i < len; i += 2) s += (b[off + i] << 8) | (i + 1 < len ? b[off + i + 1] : 0);
    return foldSum(s);
  };
  // Views that start at each byte of a word, offsets of every parity, lengths around the
  // word threshold, odd tails, and the largest super-packet.
  const lengths = [63, 64, 65, 66, 67, 1368, 1369, 1420, 9001, 65535, 65536];
  for (let base = 0; base < 4; base++) {
    const view = new Uint8Array(ab, base, ab.byteLength - base - 3);
    for (let off = 0; off < 8; off++) {
      for (const len of lengths) {
        assert.equal(
          foldSum(sumWords(view, off, len)),
          plain(view, off, len),
          `${base}/${off}/${len}`,
        );
        assert.equal(
          foldSum(sumWords(view, off, len, 0x12345)),
          foldSum(plain(view, off, len) + 0x12345),
          "with an initial sum",
        );
      }
    }
  }
  const ones = new Uint8Array(4096).fill(0xff);
  assert.equal(foldSum(sumWords(ones, 1, 4000)), 0xffff);
  assert.equal(foldSum(sumWords(new Uint8Array(4096), 3, 4000)), 0);
});
