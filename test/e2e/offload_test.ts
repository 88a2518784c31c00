/**
 * Kernel offloads end to end: two `portcullis wg up` processes in network
 * namespaces, real TCP through the tunnel, and the Portcullis stats (UAPI
 * get=portcullis-stats, `portcullis wg show`) saying what was used:
 * - all offloads on: super-packets cut, UDP GSO runs sent, GRO runs received,
 *   merged TUN writes, the transfer intact;
 * - one side with PORTCULLIS_OFFLOAD=off, the other with an underlay MTU too
 *   small for its GSO runs: the kernel refuses them, GSO goes off by itself
 *   and says why, and the transfer is still intact.
 * (Portcullis ⇄ wireguard-go with offloads on is wg_interop_test.ts.)
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab } from "./netns.ts";
import {
  ifName,
  keyPair,
  ping,
  startPortcullis,
  transfer,
  waitFor,
  wgQuick,
} from "./wg_harness.ts";
import { queryStatsText } from "../../src/dataplane/uapi.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const opts = { ignore: !canUseNetns, sanitizeOps: false, sanitizeResources: false };

async function pair(lab: NetnsLab, envA: Record<string, string>, envB: Record<string, string>) {
  const a = await lab.ns("a");
  const b = await lab.ns("b");
  await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
  const ka = keyPair(), kb = keyPair();
  const nb = ifName("b"), na = ifName("a");
  await startPortcullis(
    lab,
    b,
    nb,
    wgQuick({
      key: kb,
      address: "10.9.0.2/24",
      listenPort: 51820,
      peer: { pub: ka.pub, allowedIps: "10.9.0.1/32" },
    }),
    envB,
  );
  await startPortcullis(
    lab,
    a,
    na,
    wgQuick({
      key: ka,
      address: "10.9.0.1/24",
      peer: { pub: kb.pub, allowedIps: "10.9.0.2/32", endpoint: "192.0.2.2:51820" },
    }),
    envA,
  );
  await ping(lab, a, "10.9.0.2");
  const stats = (name: string) => queryStatsText(`/var/run/wireguard/${name}.sock`);
  return { a, b, na, nb, stats };
}

const num = (s: Record<string, string>, k: string) => Number(s[k] ?? "0");

Deno.test("offloads end to end: every offload used both ways, transfers intact", opts, async () => {
  await using lab = new NetnsLab("ofa");
  const { a, b, na, nb, stats } = await pair(lab, {}, {});
  const there = await transfer(lab, a, b, "10.9.0.2", 20 << 20);
  assert.equal(there.received, there.sent, "a → b intact");
  const back = await transfer(lab, b, a, "10.9.0.1", 20 << 20, { port: 5002 });
  assert.equal(back.received, back.sent, "b → a intact");
  for (const name of [na, nb]) {
    const s = await stats(name);
    for (const k of ["tun_tso", "tun_uso", "tun_gro_tcp", "tun_gro_udp", "udp_gso", "udp_gro"]) {
      assert.equal(s[`offload_${k}`], "on", `${name}: ${k}`);
    }
    assert.ok(num(s, "tun_superPackets") > 10, `${name} cut super-packets: ${JSON.stringify(s)}`);
    assert.ok(num(s, "udp_gsoSends") > 10, `${name} sent GSO runs`);
    assert.ok(num(s, "udp_groRuns") > 10, `${name} received GRO runs`);
    assert.ok(num(s, "tun_coalescedFrames") > 10, `${name} merged TUN writes`);
    assert.equal(num(s, "tun_badFrames"), 0);
  }
  // `portcullis wg show` says it too.
  const show = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "wg", "show", na],
    stdout: "piped",
  });
  const text = new TextDecoder().decode((await show.output()).stdout);
  assert.match(text, /offloads on: tun_tso, tun_uso, tun_gro_tcp, tun_gro_udp, udp_gso, udp_gro/);
});

Deno.test(
  "offloads end to end: one side off, the other refused by the path; still intact",
  opts,
  async () => {
    await using lab = new NetnsLab("ofb");
    const { a, b, na, nb, stats } = await pair(lab, { PORTCULLIS_OFFLOAD: "off" }, {});
    // b's datagrams (1452 + 28 bytes) no longer fit the underlay in one piece: each GSO run
    // is refused, resent datagram by datagram (IP fragments), and after 8 GSO goes off.
    await lab.exec(b, ["ip", "link", "set", "veth0", "mtu", "1400"]);
    await lab.exec(a, ["ip", "link", "set", "veth0", "mtu", "1400"]);
    const back = await transfer(lab, b, a, "10.9.0.1", 10 << 20);
    assert.equal(back.received, back.sent, "b → a intact");
    const there = await transfer(lab, a, b, "10.9.0.2", 10 << 20, { port: 5002 });
    assert.equal(there.received, there.sent, "a → b intact");
    const sa = await stats(na);
    for (const k of ["tun_tso", "tun_uso", "tun_gro_tcp", "udp_gso", "udp_gro"]) {
      assert.equal(sa[`offload_${k}`], "off: not requested", k);
    }
    assert.equal(num(sa, "tun_superPackets"), 0);
    const sb = await waitFor("b's GSO to go off", async () => {
      const s = await stats(nb);
      return s.offload_udp_gso?.startsWith("off:") ? s : null;
    });
    assert.match(
      sb.offload_udp_gso,
      /^off: kernel refused 8 GSO sends in a row: .+ \(datagrams larger than the path MTU\)$/,
    );
    assert.equal(sb.offload_tun_tso, "on", "the TUN offloads do not depend on it");
  },
);
