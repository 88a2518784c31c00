/**
 * What the two-edge e2e tests (fleet_test.ts, mesh_test.ts, lab_fleet_test.ts)
 * share: processes that outlive their spawning command with their output in
 * a log file of the test's directory, the tail of those logs for a failure's
 * message, an edge's command line on the fleet's shared PostgreSQL, and when
 * a connector has settled on an edge.
 */
import type { NetnsLab } from "./netns.ts";
import { DENO, MAIN } from "./roles.ts";

/** The tunnel port every edge of these labs listens on. */
export const FLEET_TUNNEL_PORT = 4443;

/** Process helpers writing to `<dir>/<log>`. */
export function fleetProcesses(lab: NetnsLab, dir: string) {
  const detached = (ns: string, log: string, cmd: string[]) =>
    lab.spawn(ns, ["sh", "-c", 'exec "$@" >>"$0" 2>&1 </dev/null', `${dir}/${log}`, ...cmd]);
  return {
    detached,
    /** Starts `portcullis edge` with `args` in `ns`, logging to `<name>.log`. */
    startEdge: (ns: string, name: string, args: string[]) =>
      detached(ns, `${name}.log`, [DENO, "run", "-A", MAIN, "edge", ...args]),
    /** The last 30 lines of each log, for a failure's message. */
    async logs(files: string[]): Promise<string> {
      let out = "";
      for (const f of files) {
        const text = await Deno.readTextFile(`${dir}/${f}`).catch(() => "");
        out += `----- ${f} -----\n${text.split("\n").slice(-30).join("\n")}\n`;
      }
      return out;
    },
  };
}

/** An edge's flags in a fleet lab: its own data directory and TUN, the shared database. */
export function fleetEdgeArgs(
  lab: NetnsLab,
  o: { dir: string; db: string; name: string; ip: string; region: string },
): string[] {
  return [
    "--data-dir",
    `${o.dir}/${o.name}`,
    "--database",
    o.db,
    "--public-host",
    o.ip,
    "--edge-name",
    o.name,
    "--region",
    o.region,
    "--tunnel-port",
    String(FLEET_TUNNEL_PORT),
    "--tun-interface",
    `${lab.prefix}${o.name.at(-1)}`.slice(0, 15),
  ];
}

/** What these tests read of a connector's status (`GET /api/v1/status`). */
export interface FleetStatus {
  state: string;
  edgeSelection?: {
    current: { name: string; rttMs: number | null } | null;
    alternatives: { name: string; rttMs: number | null }[];
    lastDecision: string | null;
  } | null;
}

/**
 * True once the connector is connected through `edge` with both edges of the
 * lab measured and no move pending. A first measurement slowed by a busy
 * host may name the other edge; the connector then confirms it 10 s later
 * before it moves, so a test waits for where it settles, not for the first
 * figures.
 */
export function settledOn(s: FleetStatus | null, edge: string): boolean {
  const sel = s?.edgeSelection;
  return s?.state === "connected" && sel?.current?.name === edge &&
    sel.current.rttMs !== null && sel.alternatives.length === 1 &&
    sel.alternatives[0].rttMs !== null && sel.lastDecision !== "confirming";
}
