/**
 * Test tool: captures super-packets the kernel itself produced, as fixtures
 * for the segmentation and coalescing tests (fixtures/offload/*.bin, each one
 * frame: virtio_net_hdr + packet, exactly as read from the TUN device).
 *
 *   deno run -A test/e2e/tools/capture_offload.ts [fixtures/offload]
 *
 * Two namespaces, each with a TUN device opened with TSO/USO; this tool
 * relays raw frames between the two fds (the kernel takes GSO frames on
 * write too), so real TCP over IPv4 and IPv6 and a UDP GSO sender run across
 * them, and keeps the first small super-packet of each kind it sees, plus a
 * single packet with a partial checksum (NEEDS_CSUM). Needs root.
 */
import { NetnsLab, sh } from "../netns.ts";
import { LinuxTun } from "../../../src/tun/linux.ts";
import { libc } from "../../../src/net/errno.ts";
import { Poller, POLLIN } from "../../../src/net/poller.ts";

const out = Deno.args[0] ?? new URL("../../../fixtures/offload/", import.meta.url).pathname;
const TOOLS = new URL("./", import.meta.url).pathname;
const UDP_SENDER = `
  import { UdpSocket } from "${new URL("../../../src/net/udp.ts", import.meta.url).href}";
  import { endpoint } from "${new URL("../../../src/net/endpoint.ts", import.meta.url).href}";
  const [addr, dst] = Deno.args;
  const s = UdpSocket.bind({ address: addr, gso: true });
  const bufs = Array.from({ length: 5 }, (_, i) => new Uint8Array(1300).fill(0x41 + i));
  const sizes = new Int32Array([1200, 1200, 1200, 1200, 700]);
  const to = new Array(5).fill(endpoint("udp", dst, 9999));
  for (let i = 0; i < 20; i++) { s.send(bufs, sizes, to, 5); await new Promise((r) => setTimeout(r, 20)); }
  s.close();
`;

await Deno.mkdir(out, { recursive: true });
await using lab = new NetnsLab("cap");
const a = await lab.ns("a"), b = await lab.ns("b");
const offload = { tso: true, uso: true, gro: true };
const ta = LinuxTun.open({ name: `${lab.prefix}a`.slice(-15), mtu: 1420, up: false, offload });
const tb = LinuxTun.open({ name: `${lab.prefix}b`.slice(-15), mtu: 1420, up: false, offload });
lab.defer(() => ta.close());
lab.defer(() => tb.close());
for (const [t, ns, v4, v6] of [[ta, a, "10.77.0.1", "fd77::1"], [tb, b, "10.77.0.2", "fd77::2"]]) {
  const tun = t as LinuxTun;
  await sh(["ip", "link", "set", tun.name, "netns", ns as string]);
  await sh(["ip", "-n", ns as string, "addr", "add", `${v4}/24`, "dev", tun.name]);
  await sh(["ip", "-n", ns as string, "-6", "addr", "add", `${v6}/64`, "dev", tun.name, "nodad"]);
  await sh(["ip", "-n", ns as string, "link", "set", tun.name, "up"]);
}

const wanted = new Map<string, Uint8Array>();
const frame = new Uint8Array(10 + 65535);
const poller = new Poller();
poller.add(ta.fd, POLLIN);
poller.add(tb.fd, POLLIN);
let running = true;
const relay = (async () => {
  while (running) {
    let moved = 0;
    for (const [src, dst] of [[ta, tb], [tb, ta]]) {
      for (;;) {
        const n = libc().read(src.fd, frame, BigInt(frame.length));
        if (n <= 0) break;
        moved++;
        keep(frame.subarray(0, n));
        libc().write(dst.fd, frame, BigInt(n));
      }
    }
    if (!moved) await poller.wait(50);
  }
})();

function keep(f: Uint8Array): void {
  const gso = f[1] & 0x7f, flags = f[0];
  const gsoSize = f[4] | (f[5] << 8);
  const len = f.length - 10;
  const v = f[10] >> 4;
  const segs = gsoSize ? Math.ceil(len / gsoSize) : 1;
  let kind = "";
  if (gso === 1 && segs >= 3 && len <= 16384) kind = "tcp4_tso";
  else if (gso === 4 && segs >= 3 && len <= 16384) kind = "tcp6_tso";
  else if (gso === 5 && v === 4) kind = "udp4_uso";
  else if (gso === 0 && (flags & 1) && v === 4 && f[19] === 6 && len > 100) kind = "tcp4_partial";
  if (kind && !wanted.has(kind)) wanted.set(kind, f.slice());
}

async function tcp(dst: string, port: number): Promise<void> {
  const sink = lab.spawn(b, [
    Deno.execPath(),
    "run",
    "-A",
    `${TOOLS}tcp_sink.ts`,
    dst,
    String(port),
  ]);
  for (let i = 0; i < 50; i++) {
    const r = await lab.exec(b, ["ss", "-ltn"], { check: false });
    if (r.stdout.includes(`:${port}`)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await lab.exec(a, [
    Deno.execPath(),
    "run",
    "-A",
    `${TOOLS}tcp_source.ts`,
    dst,
    String(port),
    "4000000",
  ]);
  await sink.status;
}

await tcp("10.77.0.2", 5001);
await tcp("fd77::2", 5002);
await lab.exec(a, [Deno.execPath(), "eval", UDP_SENDER, "10.77.0.1", "10.77.0.2"]);
running = false;
poller.wake();
await relay;
poller.close();
for (const [kind, f] of wanted) {
  await Deno.writeFile(`${out}/${kind}.bin`, f);
  console.log(`${kind}: ${f.length} bytes, gso_type ${f[1]}, gso_size ${f[4] | (f[5] << 8)}`);
}
const missing = ["tcp4_tso", "tcp6_tso", "udp4_uso", "tcp4_partial"].filter((k) => !wanted.has(k));
if (missing.length) console.log(`not seen: ${missing.join(", ")}`);
