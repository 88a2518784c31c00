/**
 * Benchmark (not a test): iperf3 TCP throughput and ping RTT through a
 * Portcullis tunnel and through a wireguard-go tunnel, in the same run and
 * the same two-namespace topology, printed side by side with the ratio.
 *
 *   deno task bench:tunnel [seconds=10]
 *
 * Needs root (namespaces), wireguard-go, wg, iperf3 and ping.
 */
import { NetnsLab } from "../e2e/netns.ts";
import {
  ifName,
  keyPair,
  startPortcullis,
  startWireguardGo,
  waitFor,
  wgQuick,
} from "../e2e/wg_harness.ts";

const seconds = Number(Deno.args[0] ?? 10);

interface Result {
  sendMbps: number;
  recvMbps: number;
  reverseMbps: number;
  rttAvgMs: number;
  rttMinMs: number;
}

async function measure(lab: NetnsLab, a: string, b: string): Promise<Result> {
  await lab.exec(a, ["ping", "-c", "3", "-i", "0.2", "10.9.0.2"], { check: false });
  const iperf = async (reverse: boolean) => {
    const srv = lab.spawn(b, ["iperf3", "-s", "-1"]);
    await waitFor("iperf3 server", async () => {
      const r = await lab.exec(b, ["ss", "-ltn"], { check: false });
      return r.stdout.includes(":5201");
    });
    const args = ["iperf3", "-c", "10.9.0.2", "-t", String(seconds), "-J"];
    if (reverse) args.push("-R");
    const r = await lab.exec(a, args);
    await srv.status;
    const j = JSON.parse(r.stdout);
    return {
      send: j.end.sum_sent.bits_per_second / 1e6,
      recv: j.end.sum_received.bits_per_second / 1e6,
    };
  };
  const fwd = await iperf(false);
  const rev = await iperf(true);
  const p = await lab.exec(a, ["ping", "-c", "50", "-i", "0.05", "10.9.0.2"]);
  const m = p.stdout.match(/= ([\d.]+)\/([\d.]+)\/([\d.]+)/);
  return {
    sendMbps: fwd.send,
    recvMbps: fwd.recv,
    reverseMbps: rev.recv,
    rttMinMs: m ? Number(m[1]) : NaN,
    rttAvgMs: m ? Number(m[2]) : NaN,
  };
}

async function topology(tag: string) {
  const lab = new NetnsLab(tag);
  const a = await lab.ns("a");
  const b = await lab.ns("b");
  await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
  return { lab, a, b };
}

async function portcullis(): Promise<Result> {
  const { lab, a, b } = await topology("bp");
  try {
    const ka = keyPair(), kb = keyPair();
    await startPortcullis(
      lab,
      b,
      ifName("b"),
      wgQuick({
        key: kb,
        address: "10.9.0.2/24",
        listenPort: 51820,
        peer: { pub: ka.pub, allowedIps: "10.9.0.1/32" },
      }),
      { PORTCULLIS_LOG_LEVEL: "info" },
    );
    await startPortcullis(
      lab,
      a,
      ifName("a"),
      wgQuick({
        key: ka,
        address: "10.9.0.1/24",
        peer: { pub: kb.pub, allowedIps: "10.9.0.2/32", endpoint: "192.0.2.2:51820" },
      }),
      { PORTCULLIS_LOG_LEVEL: "info" },
    );
    return await measure(lab, a, b);
  } finally {
    await lab[Symbol.asyncDispose]();
  }
}

async function wireguardGo(): Promise<Result> {
  const { lab, a, b } = await topology("bg");
  try {
    const ka = keyPair(), kb = keyPair();
    await startWireguardGo(lab, b, ifName("b"), {
      key: kb,
      listenPort: 51820,
      address: "10.9.0.2/24",
      peer: { pub: ka.pub, allowedIps: "10.9.0.1/32" },
    });
    await startWireguardGo(lab, a, ifName("a"), {
      key: ka,
      listenPort: 51821,
      address: "10.9.0.1/24",
      peer: { pub: kb.pub, allowedIps: "10.9.0.2/32", endpoint: "192.0.2.2:51820" },
    });
    return await measure(lab, a, b);
  } finally {
    await lab[Symbol.asyncDispose]();
  }
}

if (Deno.uid() !== 0) {
  console.error("bench:tunnel needs root (network namespaces).");
  Deno.exit(2);
}
console.log(
  `Tunnel benchmark: iperf3 TCP ${seconds} s each way, 50 pings; two namespaces on veth.`,
);
const go = await wireguardGo();
const pc = await portcullis();
const row = (name: string, p: number, g: number, higherBetter = true) => {
  const ratio = higherBetter ? p / g : g / p;
  console.log(
    `${name.padEnd(26)} ${p.toFixed(2).padStart(10)} ${g.toFixed(2).padStart(12)} ${
      ratio.toFixed(2).padStart(8)
    }`,
  );
  return ratio;
};
console.log(
  `${"".padEnd(26)} ${"Portcullis".padStart(10)} ${"wireguard-go".padStart(12)} ${
    "ratio".padStart(8)
  }`,
);
const r1 = row("TCP a→b Mbit/s (received)", pc.recvMbps, go.recvMbps);
const r2 = row("TCP b→a Mbit/s (received)", pc.reverseMbps, go.reverseMbps);
row("ping RTT avg ms", pc.rttAvgMs, go.rttAvgMs, false);
row("ping RTT min ms", pc.rttMinMs, go.rttMinMs, false);
console.log(`throughput ratio (mean of both directions): ${((r1 + r2) / 2).toFixed(2)}`);
