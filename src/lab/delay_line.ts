/**
 * The lab's delay line, for kernels without sch_netem: a TUN device that
 * holds every packet routed into it for `delayMs` and hands it back to the
 * kernel, which (by a policy rule on packets arriving from this device) sends
 * it on its way. `lab up --edges 2` routes the path to the far edge through
 * one, so that edge is measurably further away. A number written to
 * `<readyFile>.delay` changes the delay while it runs (0 switches it off).
 */
import { openLinuxTun } from "../tun/linux.ts";

/** Runs the delay line on TUN `name` until the process ends. */
export async function runDelayLine(name: string, delayMs: number, readyFile?: string) {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) {
    throw new Error(`Cannot start a delay line on "${name}": not an interface name`);
  }
  if (!Number.isFinite(delayMs) || delayMs < 0 || delayMs > 10_000) {
    throw new Error(`Cannot start a delay line with a delay of "${delayMs}" ms: expected 0-10000`);
  }
  let delay = delayMs;
  const tun = openLinuxTun({ name, up: true });
  const N = 64;
  const bufs = Array.from({ length: N }, () => new Uint8Array(65_536 + 16));
  const sizes = new Int32Array(N);
  if (readyFile) {
    await Deno.writeTextFile(readyFile, "ready\n");
    setInterval(async () => {
      const t = await Deno.readTextFile(`${readyFile}.delay`).catch(() => "");
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
}
