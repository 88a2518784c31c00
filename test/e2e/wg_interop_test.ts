/**
 * The tunnel against an independent implementation (wireguard-go) and
 * against itself, in network namespaces, on real packets:
 * - each side as initiator: ping, a 50 MB TCP transfer whose SHA-256 matches,
 *   and rekeys during a transfer;
 * - Portcullis ↔ Portcullis over UDP, and over the TLS fallback while an
 *   nftables rule drops UDP, then back to UDP when the rule goes;
 * - garbage on the port is dropped and counted while the session keeps working.
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab } from "./netns.ts";
import {
  ifName,
  keyPair,
  ping,
  startPortcullis,
  startWireguardGo,
  transfer,
  waitFor,
  wgQuick,
} from "./wg_harness.ts";
import { queryStats, queryUapi } from "../../src/dataplane/uapi.ts";
import { ensureCa } from "../../src/edge/ca.ts";

const MB50 = 50 * 1024 * 1024;
const TOOLS = new URL("./tools/", import.meta.url).pathname;
const opts = { ignore: !canUseNetns, sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "interop: Portcullis initiates to wireguard-go; ping, 50 MB intact, rekeys mid-transfer",
  opts,
  async () => {
    await using lab = new NetnsLab("wgi");
    const a = await lab.ns("a");
    const b = await lab.ns("b");
    await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
    const ka = keyPair(), kb = keyPair();
    const goName = ifName("g");
    await startWireguardGo(lab, b, goName, {
      key: kb,
      listenPort: 51820,
      address: "10.9.0.2/24",
      peer: { pub: ka.pub, allowedIps: "10.9.0.1/32" },
    });
    const pc = await startPortcullis(
      lab,
      a,
      ifName("p"),
      wgQuick({
        key: ka,
        address: "10.9.0.1/24",
        listenPort: 51820,
        peer: { pub: kb.pub, allowedIps: "10.9.0.2/32", endpoint: "192.0.2.2:51820" },
      }),
      { PORTCULLIS_WG_REKEY_AFTER_SEC: "1" },
    );

    await ping(lab, a, "10.9.0.2");
    const before = pc.handshakes();
    const startedSec = Math.floor(Date.now() / 1000);
    // Paced at 6 MB/s so the 50 MB transfer lasts ~8 s and spans rekeys (at most
    // one per REKEY_TIMEOUT, with REKEY_AFTER_TIME lowered to 1 s).
    const t = await transfer(lab, a, b, "10.9.0.2", MB50, { rate: 6 * 1024 * 1024 });
    assert.equal(t.received, t.sent, "SHA-256 and length at the far end match what was sent");
    assert.match(t.sent, / 52428800$/);
    assert.ok(pc.handshakes() - before >= 1, `rekeyed during the transfer (${pc.log()})`);
    // wireguard-go agrees it has a fresh session with us: one made during the
    // transfer (how long ago depends on how long a busy machine took to send it).
    const go = await queryUapi(`/var/run/wireguard/${goName}.sock`, goName);
    assert.ok(
      go.peers[0].lastHandshakeSec >= startedSec,
      `last handshake at ${go.peers[0].lastHandshakeSec}, transfer began at ${startedSec}`,
    );
  },
);

Deno.test(
  "interop: wireguard-go initiates to Portcullis (with a preshared key); ping and 50 MB intact",
  opts,
  async () => {
    await using lab = new NetnsLab("wgr");
    const a = await lab.ns("a");
    const b = await lab.ns("b");
    await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
    const ka = keyPair(), kb = keyPair();
    const psk = keyPair().priv;
    const pc = await startPortcullis(
      lab,
      a,
      ifName("p"),
      wgQuick({
        key: ka,
        address: "10.9.0.1/24",
        listenPort: 51820,
        peer: { pub: kb.pub, allowedIps: "10.9.0.2/32", psk },
      }),
    );
    await startWireguardGo(lab, b, ifName("g"), {
      key: kb,
      listenPort: 51821,
      address: "10.9.0.2/24",
      peer: { pub: ka.pub, allowedIps: "10.9.0.1/32", endpoint: "192.0.2.1:51820", psk },
    });
    await ping(lab, b, "10.9.0.1");
    const t = await transfer(lab, b, a, "10.9.0.1", MB50);
    assert.equal(t.received, t.sent);
    assert.ok(pc.handshakes() >= 1);
    const ours = await queryUapi(`/var/run/wireguard/${pc.name}.sock`, pc.name);
    assert.equal(
      ours.peers[0].endpoint,
      "192.0.2.2:51821",
      "learned wireguard-go's endpoint by roaming",
    );
  },
);

Deno.test("Portcullis to Portcullis over UDP: ping and 50 MB intact", opts, async () => {
  await using lab = new NetnsLab("wgp");
  const a = await lab.ns("a");
  const b = await lab.ns("b");
  await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
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
  );
  await ping(lab, a, "10.9.0.2");
  const t = await transfer(lab, a, b, "10.9.0.2", MB50);
  assert.equal(t.received, t.sent);
});

Deno.test(
  "Portcullis to Portcullis: TLS fallback when nftables drops UDP, and back to UDP",
  opts,
  async () => {
    await using lab = new NetnsLab("wgt");
    const a = await lab.ns("a");
    const b = await lab.ns("b");
    await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
    const dir = await Deno.makeTempDir({ prefix: "pctls" });
    lab.defer(() => Deno.remove(dir, { recursive: true }));
    // The edge's own CA code makes the CA and a server certificate for the address.
    const ca = await ensureCa(dir, { ips: ["192.0.2.2"] });
    const ka = keyPair(), kb = keyPair();
    await startPortcullis(
      lab,
      b,
      ifName("b"),
      wgQuick({
        key: kb,
        address: "10.9.0.2/24",
        listenPort: 51820,
        extra: [
          "TlsListenPort = 8443",
          `TlsCertificate = ${ca.serverCertPath}`,
          `TlsPrivateKey = ${ca.serverKeyPath}`,
        ],
        peer: { pub: ka.pub, allowedIps: "10.9.0.1/32" },
      }),
    );
    // Client-side UDP to the server's port is dropped before the tunnel starts.
    await lab.exec(a, ["nft", "-f", "-"], {
      stdin: "table inet pctest {\n chain out {\n  type filter hook output priority 0;\n" +
        "  udp dport 51820 drop\n }\n}\n",
    });
    const started = Date.now();
    const pa = await startPortcullis(
      lab,
      a,
      ifName("a"),
      wgQuick({
        key: ka,
        address: "10.9.0.1/24",
        peer: {
          pub: kb.pub,
          allowedIps: "10.9.0.2/32",
          endpoint: "192.0.2.2:51820",
          extra: ["TlsEndpoint = 192.0.2.2:8443", `TlsCa = ${ca.caCertPath}`, "UdpTimeout = 5"],
        },
      }),
      { PORTCULLIS_UDP_PROBE_SEC: "2" },
    );
    await waitFor("fallback to TLS", () => pa.log().includes("Peer now on TLS"), 15_000);
    const fellBackMs = Date.now() - started;
    assert.ok(fellBackMs <= 5_000 + 2_000 + 1_500, `fell back in ${fellBackMs} ms`);
    await ping(lab, a, "10.9.0.2");
    const t = await transfer(lab, a, b, "10.9.0.2", 10 * 1024 * 1024);
    assert.equal(t.received, t.sent, "10 MB intact over TLS");
    // UDP allowed again: the probe finds it and the peer moves back.
    await lab.exec(a, ["nft", "delete", "table", "inet", "pctest"]);
    await waitFor("back to UDP", () => pa.log().includes("Peer now on UDP"), 15_000);
    await ping(lab, a, "10.9.0.2");
  },
);

Deno.test(
  "garbage on the port is dropped and counted; the session keeps working",
  opts,
  async () => {
    await using lab = new NetnsLab("wgg");
    const a = await lab.ns("a");
    const b = await lab.ns("b");
    await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
    const ka = keyPair(), kb = keyPair();
    const pa = await startPortcullis(
      lab,
      a,
      ifName("a"),
      wgQuick({
        key: ka,
        address: "10.9.0.1/24",
        listenPort: 51820,
        peer: { pub: kb.pub, allowedIps: "10.9.0.2/32" },
      }),
    );
    await startPortcullis(
      lab,
      b,
      ifName("b"),
      wgQuick({
        key: kb,
        address: "10.9.0.2/24",
        listenPort: 51821,
        peer: { pub: ka.pub, allowedIps: "10.9.0.1/32", endpoint: "192.0.2.1:51820" },
      }),
    );
    // Capture real transport packets to replay them later.
    const dir = await Deno.makeTempDir({ prefix: "pcgb" });
    lab.defer(() => Deno.remove(dir, { recursive: true }));
    const cap = lab.spawn(a, [
      "tshark",
      "-i",
      "veth0",
      "-f",
      "udp dst port 51820",
      "-c",
      "8",
      "-w",
      `${dir}/cap.pcap`,
    ], { output: "piped" });
    // Ping only once tshark says it is capturing (it prints that on stderr).
    // Its output is drained to the end, so a late message never meets a closed pipe.
    let capturingSaid: (v: boolean) => void = () => {};
    const capturing = new Promise<boolean>((r) => (capturingSaid = r));
    const drained = (async () => {
      let said = "";
      for await (const chunk of cap.stderr.pipeThrough(new TextDecoderStream())) {
        said += chunk;
        if (said.includes("Capturing on")) capturingSaid(true);
      }
      capturingSaid(false);
    })();
    const drainedOut = cap.stdout.pipeTo(new WritableStream());
    assert.ok(await capturing, "tshark starts capturing");
    // Ten pings: eight data packets fill the capture whatever the handshake did meanwhile.
    await ping(lab, b, "10.9.0.1", 10);
    await cap.status;
    await Promise.all([drained, drainedOut]);
    const fields = await lab.exec(a, [
      "tshark",
      "-r",
      `${dir}/cap.pcap`,
      "-T",
      "fields",
      "-e",
      "udp.payload",
    ]);
    const payloads = fields.stdout.split("\n").map((l) => l.replace(/:/g, "").trim())
      .filter((l) => l.startsWith("04"));
    assert.ok(payloads.length >= 3, `captured transport packets: ${fields.stdout}`);
    await Deno.writeTextFile(`${dir}/replay.hex`, payloads.join("\n"));

    const g = await lab.exec(b, [
      Deno.execPath(),
      "run",
      "-A",
      `${TOOLS}garbage.ts`,
      "192.0.2.1",
      "51820",
      ka.pub,
      `${dir}/replay.hex`,
    ]);
    const sent = JSON.parse(g.stdout);
    assert.ok(sent.replayed >= 9);
    const sock = `/var/run/wireguard/${pa.name}.sock`;
    const stats: Record<string, number> = await waitFor("drops counted", async () => {
      const s = await queryStats(sock);
      return s.drop_replay >= sent.replayed && s.drop_unknown_peer + s.drop_bad_handshake >= 1
        ? s
        : null;
    });
    const malformed = stats.drop_short + stats.drop_wrong_size + stats.drop_unknown_type +
      stats.drop_bad_mac1 + stats.drop_unknown_index + stats.drop_bad_auth;
    assert.ok(
      malformed >= sent.random + sent.truncated + sent.oversized - 10,
      JSON.stringify(stats),
    );
    // Still up, still talking, and the replays did not move the peer's endpoint.
    await ping(lab, b, "10.9.0.1");
    const ours = await queryUapi(sock, pa.name);
    assert.equal(ours.peers[0].endpoint, "192.0.2.2:51821");
  },
);
