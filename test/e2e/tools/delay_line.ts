/**
 * A delay line for kernels without tc netem: a TUN device that holds every
 * packet routed into it for DELAY_MS and then hands it back to the kernel,
 * which (by a policy rule on packets arriving from this device, set up by
 * the test) forwards it on its way. One direction of a path is thus
 * `DELAY_MS` longer, like `tc qdisc add … netem delay DELAY_MS`.
 *
 *   deno run -A delay_line.ts IFNAME DELAY_MS [READY_FILE]
 *
 * The delay can be changed while it runs: a number written to
 * `<READY_FILE>.delay` is read every 200 ms (0 switches the delay off).
 */
import { openLinuxTun } from "../../../src/tun/linux.ts";

const [name, delayArg, ready] = Deno.args;
if (!name || !delayArg) {
  console.error("usage: delay_line.ts IFNAME DELAY_MS [READY_FILE]");
  Deno.exit(2);
}
let delay = Number(delayArg);
const tun = openLinuxTun({ name, up: true });
const N = 64;
const bufs = Array.from({ length: N }, () => new Uint8Array(65_536 + 16));
const sizes = new Int32Array(N);
if (ready) {
  await Deno.writeTextFile(ready, "ready\n");
  setInterval(async () => {
    const t = await Deno.readTextFile(`${ready}.delay`).catch(() => "");
    if (t.trim() !== "" && Number.isFinite(Number(t))) delay = Number(t);
  }, 200);
}
while (true) {
  await tun.readable(1000);
  let n: number;
  while ((n = tun.read(bufs, sizes, 16)) > 0) {
    for (let i = 0; i < n; i++) {
      const pkt = bufs[i].slice(16, 16 + sizes[i]);
      const out = () => {
        const one = [new Uint8Array(16 + pkt.length)];
        one[0].set(pkt, 16);
        tun.write(one, Int32Array.of(pkt.length), 16, 1);
      };
      if (delay > 0) setTimeout(out, delay);
      else out();
    }
  }
}
