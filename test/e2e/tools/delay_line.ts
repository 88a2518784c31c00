/**
 * The lab's delay line (src/lab/delay_line.ts) as a process for tests on
 * kernels without tc netem: one direction of a path becomes DELAY_MS longer,
 * like `tc qdisc add … netem delay DELAY_MS`; the test sets up the policy
 * rule that sends on what it hands back. A number written to
 * `<READY_FILE>.delay` changes the delay while it runs (0 switches it off).
 *
 *   deno run -A delay_line.ts IFNAME DELAY_MS [READY_FILE]
 */
import { runDelayLine } from "../../../src/lab/delay_line.ts";

const [name, delayArg, ready] = Deno.args;
if (!name || !delayArg) {
  console.error("usage: delay_line.ts IFNAME DELAY_MS [READY_FILE]");
  Deno.exit(2);
}
await runDelayLine(name, Number(delayArg), ready);
