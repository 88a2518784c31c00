import assert from "node:assert/strict";
import { CaptureController, type CaptureTap, type TapSource } from "../../src/diag/capture.ts";
import { buildIcmpEcho } from "../../src/packet/build.ts";
import { readPcap } from "../../src/packet/pcap.ts";
import { waitUntil } from "../e2e/netns.ts";

/** A stand-in for the pump: remembers the tap and lets the test push packets through it. */
class FakePump implements TapSource {
  tap: CaptureTap | null = null;
  setTap(fn: CaptureTap | null): void {
    this.tap = fn;
  }
  push(dir: "in" | "out", pkt: Uint8Array): void {
    // Packets sit inside a larger buffer, as in the pump's slots.
    const slot = new Uint8Array(pkt.length + 40);
    slot.set(pkt, 16);
    this.tap?.(dir, slot, 16, pkt.length);
  }
}

function ping(seq: number, reply = false) {
  return buildIcmpEcho({
    src: reply ? "100.64.0.1" : "100.64.0.7",
    dst: reply ? "100.64.0.7" : "100.64.0.1",
    kind: reply ? "reply" : "request",
    ident: 0x4242,
    seq,
  });
}

async function tshark(path: string): Promise<string | null> {
  try {
    const out = await new Deno.Command("tshark", {
      args: ["-r", path, "-T", "fields", "-e", "icmp.type", "-e", "icmp.seq", "-e", "ip.src"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : null;
  } catch {
    return null;
  }
}

Deno.test("capture: writes tunnel packets to a pcap file that tshark reads", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pc-capture-" });
  try {
    const pump = new FakePump();
    const cap = new CaptureController({ dir, source: pump });
    const started = cap.start();
    assert.equal(started.running, true);
    assert.ok(pump.tap, "the tap is installed");
    for (let i = 1; i <= 3; i++) {
      pump.push("out", ping(i));
      pump.push("in", ping(i, true));
    }
    assert.equal(cap.current()!.packets, 6);
    const done = cap.stop()!;
    assert.equal(pump.tap, null, "the tap is removed");
    assert.equal(done.packets, 6);
    assert.equal(done.stopReason, "user");
    const bytes = await cap.read(done.id);
    const file = readPcap(bytes);
    assert.equal(file.packets.length, 6);
    assert.deepEqual(file.packets[0].data, ping(1));
    const out = await tshark(`${dir}/${done.file}`);
    if (out !== null) {
      const lines = out.trim().split("\n");
      assert.equal(lines.length, 6);
      assert.deepEqual(lines[0].split("\t"), ["8", "1", "100.64.0.7"]);
      assert.deepEqual(lines[1].split("\t"), ["0", "1", "100.64.0.1"]);
    }
    assert.deepEqual(cap.list().map((c) => c.id), [done.id]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("capture: one at a time, needs a tunnel, refuses bad ids", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pc-capture-" });
  try {
    const none = new CaptureController({ dir, source: () => null });
    assert.throws(() => none.start(), { code: "tunnel_not_running" });
    const cap = new CaptureController({ dir, source: new FakePump() });
    const a = cap.start();
    assert.throws(() => cap.start(), { code: "capture_running" });
    await assert.rejects(cap.read(a.id), { code: "capture_running" });
    cap.stop();
    await assert.rejects(cap.read("../../etc/passwd"), { code: "capture_not_found" });
    await assert.rejects(cap.read("cap-20260101T000000Z-zzzz"), { code: "capture_not_found" });
    assert.equal(cap.stop(), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("capture: stops by itself at the size and duration limits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pc-capture-" });
  try {
    const pump = new FakePump();
    const cap = new CaptureController({ dir, source: pump, maxBytes: 24 + 3 * (16 + 60) });
    cap.start();
    for (let i = 0; i < 10; i++) pump.push("out", ping(i));
    await waitUntil(
      "the size limit to stop the capture",
      () => Promise.resolve(!cap.current()),
      2000,
      1,
    );
    const [done] = cap.list();
    assert.equal(done.stopReason, "size");
    assert.equal(done.packets, 3);
    assert.ok(done.bytes <= 24 + 3 * (16 + 60));

    const timed = new CaptureController({ dir, source: pump, maxDurationMs: 30 });
    const t0 = performance.now();
    timed.start();
    await waitUntil(
      "the duration limit to stop the capture",
      () => Promise.resolve(!timed.current()),
      2000,
      5,
    );
    assert.ok(performance.now() - t0 >= 25, "not before the limit");
    assert.equal(pump.tap, null);
    assert.equal(timed.list()[0].stopReason, "duration");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("capture: keeps only the newest files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pc-capture-" });
  try {
    const cap = new CaptureController({ dir, source: new FakePump(), keep: 2 });
    for (let i = 0; i < 4; i++) {
      cap.start();
      cap.stop();
    }
    const files = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".pcap"));
    assert.equal(files.length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
