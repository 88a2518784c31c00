/**
 * `wg show` (wireguard-tools) on the interfaces of a real connector and a
 * real edge (issue 9): both serve the UAPI socket, each side shows the other
 * as its peer with a handshake and traffic, `wg set` is refused (their
 * configuration comes from the policy and the device registry), the socket
 * goes away with the process, and a crashed process's socket is replaced
 * at the next start.
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, waitUntil } from "./netns.ts";
import { CONN_IP, DENO, EDGE_IP, EDGE_TUNNEL_PORT, MAIN, type Roles, startRoles } from "./roles.ts";
import { queryStatsText } from "../../src/dataplane/uapi.ts";

const SOCKETS = "/var/run/wireguard";

/** One `wg show IF dump` answer: the interface line and the peer lines, split on tabs. */
interface Dump {
  privateKey: string;
  publicKey: string;
  listenPort: number;
  peers: {
    publicKey: string;
    presharedKey: string;
    endpoint: string;
    allowedIps: string;
    latestHandshake: number;
    rx: number;
    tx: number;
    keepalive: string;
  }[];
}

async function dump(r: Roles, ns: string, iface: string): Promise<Dump> {
  const res = await r.inNs(ns, ["wg", "show", iface, "dump"]);
  assert.equal(res.code, 0, `wg show ${iface} dump: ${res.stderr}`);
  const [head, ...rest] = res.stdout.trim().split("\n").map((l) => l.split("\t"));
  return {
    privateKey: head[0],
    publicKey: head[1],
    listenPort: Number(head[2]),
    peers: rest.map((p) => ({
      publicKey: p[0],
      presharedKey: p[1],
      endpoint: p[2],
      allowedIps: p[3],
      latestHandshake: Number(p[4]),
      rx: Number(p[5]),
      tx: Number(p[6]),
      keepalive: p[7],
    })),
  };
}

/** Whether the socket file exists. */
const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);

Deno.test({
  name: "wg show: the connector's and the edge's interfaces, read by wireguard-tools",
  ignore: !canUseNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await using lab = new NetnsLab("wgs");
    const r = await startRoles(lab, { enroll: true });
    let failed = false;
    const step = async (name: string, fn: () => Promise<void>) => {
      if (!(await t.step(name, fn))) failed = true;
    };
    lab.defer(async () => {
      if (failed) console.error(await r.logs());
    });
    const connSock = `${SOCKETS}/${r.connTun}.sock`;
    const edgeSock = `${SOCKETS}/${r.edgeTun}.sock`;
    // Traffic through the tunnel, so both sides count bytes: the edge's tunnel address.
    await r.inNs(r.connNs, ["ping", "-c", "2", "-i", "0.2", "-W", "2", "100.64.0.1"]);

    let conn!: Dump, edge!: Dump;
    await step(
      "wg show IF dump: each side has the other as its peer, with a handshake",
      async () => {
        conn = await dump(r, r.connNs, r.connTun);
        edge = await dump(r, r.edgeNs, r.edgeTun);
        assert.equal(conn.peers.length, 1, "the connector has one peer: the edge");
        const toEdge = conn.peers[0];
        assert.equal(toEdge.publicKey, edge.publicKey, "the connector's peer is the edge's key");
        assert.equal(toEdge.endpoint, `${EDGE_IP}:${EDGE_TUNNEL_PORT}`);
        assert.equal(toEdge.allowedIps, "0.0.0.0/0,::/0");
        assert.equal(toEdge.keepalive, "25");
        assert.equal(toEdge.presharedKey, "(none)");
        assert.ok(toEdge.latestHandshake > Date.now() / 1000 - 120, "a recent handshake");
        assert.ok(toEdge.rx > 0 && toEdge.tx > 0, "bytes both ways");

        const device = edge.peers.find((p) => p.publicKey === conn.publicKey);
        assert.ok(device, "the edge has the connector's key as a peer");
        assert.equal(edge.listenPort, EDGE_TUNNEL_PORT);
        assert.match(
          device.endpoint,
          new RegExp(`^${CONN_IP.replaceAll(".", "\\.")}:${conn.listenPort}$`),
        );
        const address = String((await r.connectorStatus()).deviceAddress);
        assert.equal(device.allowedIps, `${address}/32`, "the device's address is its only source");
        assert.ok(device.latestHandshake > 0 && device.rx > 0 && device.tx > 0);
        // The dump carries the private key, as wg(8) does for root: it must match the public one.
        const pub = await r.inNs(r.connNs, ["wg", "pubkey"], conn.privateKey + "\n");
        assert.equal(pub.stdout.trim(), conn.publicKey);
      },
    );

    await step("wg show IF and portcullis wg show IF: the human-readable form", async () => {
      const wg = await r.inNs(r.connNs, ["wg", "show", r.connTun]);
      assert.equal(wg.code, 0, wg.stderr);
      assert.match(wg.stdout, new RegExp(`^interface: ${r.connTun}$`, "m"));
      assert.match(wg.stdout, new RegExp(`^peer: ${escape(edge.publicKey)}$`, "m"));
      assert.match(wg.stdout, /latest handshake: (Now|.* ago)/);
      assert.match(wg.stdout, /transfer: .* received, .* sent/);
      const ours = await r.inNs(r.edgeNs, [DENO, "run", "-A", MAIN, "wg", "show", r.edgeTun]);
      assert.equal(ours.code, 0, ours.stderr);
      assert.match(ours.stdout, new RegExp(`^interface: ${r.edgeTun}$`, "m"));
      assert.match(ours.stdout, new RegExp(`^peer: ${escape(conn.publicKey)}$`, "m"));
      // Both roles ask for the kernel offloads and say what they got (get=portcullis-stats).
      assert.match(ours.stdout, /^ {2}offloads on: tun_tso, .*udp_gro$/m);
      for (const sock of [connSock, edgeSock]) {
        const stats = await queryStatsText(sock);
        assert.equal(stats.offload_tun_tso, "on", `${sock}: ${JSON.stringify(stats)}`);
        assert.equal(stats.offload_udp_gso, "on");
      }
    });

    await step("wg set is refused on a managed interface, and changes nothing", async () => {
      for (
        const [ns, iface, peer] of [[r.connNs, r.connTun, edge], [
          r.edgeNs,
          r.edgeTun,
          conn,
        ]] as const
      ) {
        const set = await r.inNs(ns, ["wg", "set", iface, "peer", peer.publicKey, "remove"]);
        assert.notEqual(set.code, 0);
        assert.match(set.stderr, /Unable to modify interface: Operation not supported/);
      }
      assert.equal((await dump(r, r.connNs, r.connTun)).peers.length, 1);
      const ping = await r.inNs(r.connNs, ["ping", "-c", "1", "-W", "2", "100.64.0.1"]);
      assert.equal(ping.code, 0, "the tunnel still carries traffic");
      assert.match(await Deno.readTextFile(`${r.dir}/conn.log`), /Refused a UAPI set/);
    });

    await step("the socket goes with the process, and a crashed one's is replaced", async () => {
      const info = await Deno.lstat(connSock);
      assert.equal(info.mode! & 0o777, 0o600, "only root can read it (it holds the private key)");
      // A clean stop removes it.
      r.connector.kill("SIGTERM");
      await r.connector.status;
      assert.equal(await exists(connSock), false, "removed on exit");
      // A crash leaves it behind; the next start replaces it.
      await r.restartConnector();
      await waitUntil("the socket", () => exists(connSock), 10_000);
      r.connector.kill("SIGKILL");
      await r.connector.status;
      assert.equal(await exists(connSock), true, "a killed process leaves its socket");
      // (Not `wg show`: wireguard-tools removes a socket nobody answers on.)
      await assert.rejects(
        () => Deno.connect({ transport: "unix", path: connSock }),
        Deno.errors.ConnectionRefused,
        "nobody answers on it",
      );
      await r.restartConnector();
      await waitUntil(
        "wg show to answer again",
        async () => (await r.inNs(r.connNs, ["wg", "show", r.connTun])).code === 0,
        10_000,
      );
      assert.match(await Deno.readTextFile(`${r.dir}/conn.log`), /Replacing a stale UAPI socket/);
      // The edge's socket goes with the edge.
      r.edge.kill("SIGTERM");
      await r.edge.status;
      assert.equal(await exists(edgeSock), false, "the edge's socket is removed on exit");
    });
  },
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
