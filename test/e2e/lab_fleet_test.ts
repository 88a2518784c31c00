/**
 * `portcullis lab up --edges 2`: the lab with a second edge in another
 * region (40 ms further, behind the routers' delay line) on one PostgreSQL.
 * Both connectors connect through the nearer edge and list the far one as
 * the alternative with its longer round trip; the internet server sees the
 * near edge's address; each edge lists both; `lab down` leaves no namespace,
 * process or database server behind.
 *
 * The lab uses fixed namespace names (pcl-*): run under the lab lock.
 */
import assert from "node:assert/strict";
import { canUseNetns, sh, waitUntil } from "./netns.ts";
import { labDown, labUp } from "../../src/lab/mod.ts";
import { ADDR, EDGE2, NS } from "../../src/lab/topology.ts";
import { pgBinDir } from "../../src/store/pg/cluster.ts";
import { settledOn } from "./fleet_lab.ts";

type Status = {
  state: string;
  edgeSelection?: {
    current: { name: string; region: string; rttMs: number | null } | null;
    alternatives: { name: string; rttMs: number | null }[];
    lastDecision: string | null;
  } | null;
};

async function status(ns: string): Promise<Status | null> {
  const r = await sh([
    "ip",
    "netns",
    "exec",
    ns,
    "curl",
    "-s",
    "--max-time",
    "2",
    "http://127.0.0.1:9080/api/v1/status",
  ], { check: false });
  try {
    return JSON.parse(r.stdout);
  } catch {
    return null;
  }
}

/** The connector's log lines about edges (for a failure's message). */
async function edgeLog(dir: string, ns: string): Promise<string> {
  const text = await Deno.readTextFile(`${dir}/${ns === NS.ws ? "ws" : "gw"}.log`).catch(() => "");
  return text.split("\n").filter((l) => /edge/i.test(l)).slice(-40).join("\n");
}

/**
 * Waits until the connector in `ns` has settled on the near edge
 * (fleet_lab.ts `settledOn`); a timeout names what it showed and logged.
 */
async function settledOnNearEdge(dir: string, ns: string): Promise<Status> {
  let last = null as Status | null;
  try {
    await waitUntil(`${ns} to settle on the near edge`, async () => {
      last = await status(ns);
      return settledOn(last, "edge-1");
    }, 60_000);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${JSON.stringify(last)}\n${await edgeLog(dir, ns)}`);
  }
  return last!;
}

Deno.test({
  name: "lab up --edges 2: two regions on one PostgreSQL, connectors on the nearer edge",
  ignore: !canUseNetns || pgBinDir() === null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pclabfleet" });
    const lines: string[] = [];
    let pgDir: string | undefined;
    try {
      await labUp({ dir, edges: 2, print: (l) => lines.push(l) });
      const state = JSON.parse(await Deno.readTextFile(`${dir}/state.json`));
      pgDir = state.pgDir;
      assert.equal(state.edges, 2);
      assert.ok(lines.join("\n").includes("Second edge console"), lines.join("\n"));
      for (const ns of [NS.ws, NS.gw]) {
        const s = await settledOnNearEdge(dir, ns);
        assert.equal(s.edgeSelection?.current?.region, "near");
        const far = s.edgeSelection!.alternatives[0];
        assert.equal(far.name, "edge-2");
        assert.ok((far.rttMs ?? 0) >= EDGE2.delayMs, JSON.stringify(s.edgeSelection));
      }
      // The workstation's traffic leaves through the near edge.
      const r = await sh([
        "ip",
        "netns",
        "exec",
        NS.ws,
        "curl",
        "-s",
        "--max-time",
        "5",
        `http://${ADDR.inet}/`,
      ], { check: false });
      assert.ok(r.stdout.includes(`You came from ${ADDR.edge}.`), r.stdout);
      // Both edges are in the shared registry, as each edge's admin API shows it.
      const text = await Deno.readTextFile(`${dir}/edge/initial-admin.txt`);
      assert.match(text, /password: /);
      const edge2Log = await Deno.readTextFile(`${dir}/edge2.log`);
      assert.match(edge2Log, /Portcullis edge is up/);
      assert.ok(
        !(await Deno.stat(`${dir}/edge2/initial-admin.txt`).then(() => true, () => false)),
        "the second edge found the first one's admin in the shared database",
      );
    } finally {
      await labDown({ dir, print: () => {} });
    }
    const left = (await sh(["ip", "netns", "list"], { check: false })).stdout;
    assert.ok(!left.includes("pcl-"), left);
    if (pgDir) {
      assert.equal(
        await Deno.stat(pgDir).then(() => true, () => false),
        false,
        "PostgreSQL removed",
      );
    }
  },
});
