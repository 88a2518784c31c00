/**
 * `portcullis lab up|down|status`: the whole system on one machine, in
 * network namespaces (see topology.ts for the picture).
 *
 * `up` is idempotent: a complete lab is left alone; a partial one (a crash,
 * a killed process) is taken down and built again. `down` removes every
 * namespace, interface, nftables table, /etc/netns file, process and the lab
 * data directory, and succeeds when there is nothing to remove.
 *
 * The processes run detached (setsid), with their logs in the lab directory,
 * and their PIDs in state.json so `down` can find them after `up` exited.
 */
import {
  ADDR,
  EDGE2,
  EDGE2_HOST,
  EDGE2_LINK,
  GROUPS,
  HOST_CONSOLE_PORTS,
  HOSTS,
  LINKS,
  NS,
  PORTS,
  TUN,
  WEB_NAME,
} from "./topology.ts";
import { InputError } from "../errors.ts";
import { pgBinDir, startPgCluster } from "../store/pg/cluster.ts";

/** Options of the lab commands. */
export interface LabOptions {
  /** Lab directory (data dirs, logs, state). Default ./data/lab. */
  dir?: string;
  /** Command that runs Portcullis: [deno, run, -A, main.ts] by default. */
  self?: string[];
  /** Where messages go (default console.log). */
  print?: (line: string) => void;
  /** How long to wait for connectors to connect (ms). */
  connectTimeoutMs?: number;
  /**
   * Edges: 1 (SQLite, the default) or 2 — two regions on one PostgreSQL
   * (started in a temporary directory, stopped by `down`), the second behind
   * a 40 ms delay line.
   */
  edges?: number;
}

interface LabState {
  startedAt: string;
  pids: Record<string, number>;
  /**
   * The workstation's enrolment key file (group "engineering", mode 0600):
   * keys never go on a command line, where ps shows them.
   */
  keyFile: string;
  /** The gateway box's enrolment key file (group "branch"). */
  gwKeyFile?: string;
  /** How many edges this lab runs. */
  edges?: number;
  /** The PostgreSQL server's directory (two edges), stopped and removed by `down`. */
  pgDir?: string;
}

const te = new TextDecoder();

async function run(
  cmd: string[],
  check = true,
): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "piped", stderr: "piped" })
    .output();
  const res = { code: r.code, out: te.decode(r.stdout), err: te.decode(r.stderr) };
  if (check && r.code !== 0) {
    throw new InputError("lab_failed", `Command "${cmd.join(" ")}" failed: ${res.err.trim()}`, 500);
  }
  return res;
}

const inNs = (ns: string, cmd: string[], check = true) =>
  run(["ip", "netns", "exec", ns, ...cmd], check);

function defaults(o: LabOptions) {
  const main = new URL("../../main.ts", import.meta.url).pathname;
  return {
    dir: o.dir ?? "./data/lab",
    self: o.self ?? [Deno.execPath(), "run", "-A", main],
    print: o.print ?? ((l: string) => console.log(l)),
    connectTimeoutMs: o.connectTimeoutMs ?? 45_000,
    edges: o.edges ?? 1,
  };
}

async function existingNamespaces(): Promise<string[]> {
  const r = await run(["ip", "-j", "netns", "list"], false);
  try {
    return (JSON.parse(r.out || "[]") as { name: string }[]).map((n) => n.name)
      .filter((n) => n.startsWith("pcl-"));
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

async function readState(dir: string): Promise<LabState | null> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dir}/state.json`));
  } catch {
    return null;
  }
}

/** Starts a detached process in `ns` (or on the host when null), logging to `log`. */
function spawnDetached(ns: string | null, cmd: string[], log: string): number {
  const inner = ["setsid", "sh", "-c", 'exec "$@" >>"$0" 2>&1 </dev/null', log, ...cmd];
  const full = ns ? ["ip", "netns", "exec", ns, ...inner] : inner;
  const child = new Deno.Command(full[0], {
    args: full.slice(1),
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  child.unref();
  return child.pid;
}

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | null>,
  timeoutMs: number,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new InputError(
    "lab_timeout",
    `Timed out waiting for ${what}${last ? `: ${last}` : ""}`,
    500,
  );
}

/** True when every namespace exists and every recorded process is alive. */
async function complete(dir: string): Promise<boolean> {
  const st = await readState(dir);
  if (!st) return false;
  const have = new Set(await existingNamespaces());
  const namespaces = [...Object.values(NS), ...((st.edges ?? 1) > 1 ? [EDGE2.ns] : [])];
  return namespaces.every((n) => have.has(n)) && Object.values(st.pids).every(alive);
}

/** Builds namespaces, links and routes (with the second edge's when `edges` is 2). */
async function buildNetwork(edges: number): Promise<void> {
  const hosts = edges > 1 ? [...HOSTS, EDGE2_HOST] : HOSTS;
  const links = edges > 1 ? [...LINKS, EDGE2_LINK] : LINKS;
  for (const h of hosts) {
    await run(["ip", "netns", "add", h.ns]);
    await inNs(h.ns, ["ip", "link", "set", "lo", "up"]);
    const etc = `/etc/netns/${h.ns}`;
    await Deno.mkdir(etc, { recursive: true });
    // Each namespace is its own "machine": its own machine-id and resolver.
    const id = Array.from(
      crypto.getRandomValues(new Uint8Array(16)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    await Deno.writeTextFile(`${etc}/machine-id`, id + "\n");
    await Deno.writeTextFile(`${etc}/resolv.conf`, `nameserver ${h.resolver ?? ADDR.inet}\n`);
    if (h.router) await inNs(h.ns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  }
  let n = 0;
  for (const l of links) {
    const ta = `pcltmp${n}a`, tb = `pcltmp${n++}b`;
    await run(["ip", "link", "add", ta, "type", "veth", "peer", "name", tb]);
    await run(["ip", "link", "set", ta, "netns", l.a]);
    await run(["ip", "link", "set", tb, "netns", l.b]);
    for (const [ns, tmp, name, addr] of [[l.a, ta, l.aIf, l.aAddr], [l.b, tb, l.bIf, l.bAddr]]) {
      await run(["ip", "-n", ns, "link", "set", tmp, "name", name]);
      await run(["ip", "-n", ns, "addr", "add", addr, "dev", name]);
      await run(["ip", "-n", ns, "link", "set", name, "up"]);
    }
  }
  for (const h of hosts) {
    if (h.gateway) await run(["ip", "-n", h.ns, "route", "add", "default", "via", h.gateway]);
  }
}

/**
 * The second region: the routers send what is bound for the second edge
 * through the delay line, and what it hands back (arriving from it) on to
 * the edge by table 100.
 */
async function routeThroughDelay(self: string[], dir: string): Promise<number> {
  const ready = `${dir}/delay.ready`;
  await Deno.remove(ready).catch(() => {});
  const pid = spawnDetached(
    NS.wan,
    [...self, "lab", "_delay", EDGE2.delayTun, String(EDGE2.delayMs), ready],
    `${dir}/delay.log`,
  );
  await waitFor("the delay line", () => Deno.stat(ready).then(() => true), 20_000);
  for (
    const cmd of [
      ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"],
      ["sysctl", "-qw", `net.ipv4.conf.${EDGE2.delayTun}.rp_filter=0`],
      ["ip", "route", "add", EDGE2.net, "dev", EDGE2.wanIf, "table", "100"],
      ["ip", "rule", "add", "iif", EDGE2.delayTun, "lookup", "100", "pref", "100"],
      ["ip", "route", "add", `${EDGE2.addr}/32`, "dev", EDGE2.delayTun],
    ]
  ) await inNs(NS.wan, cmd);
  return pid;
}

/** Stops the lab's PostgreSQL server (started by `up` with two edges) and removes it. */
async function stopPg(pgDir: string): Promise<void> {
  const bin = pgBinDir();
  if (bin) {
    const as = Deno.uid() === 0
      ? ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
      : [];
    await run(
      [...as, `${bin}/pg_ctl`, "-D", `${pgDir}/data`, "-m", "immediate", "-w", "stop"],
      false,
    );
  }
  await Deno.remove(pgDir, { recursive: true }).catch(() => {});
}

async function connectorStatus(ns: string): Promise<Record<string, unknown> | null> {
  const r = await inNs(ns, [
    "curl",
    "-s",
    "--max-time",
    "2",
    "-H",
    "Accept: application/json",
    `http://127.0.0.1:${PORTS.connectorConsole}/api/v1/status`,
  ], false);
  if (r.code !== 0) return null;
  try {
    return JSON.parse(r.out);
  } catch {
    return null;
  }
}

/** Brings the lab up (idempotent). */
export async function labUp(opts: LabOptions = {}): Promise<void> {
  const o = defaults(opts);
  if (Deno.uid() !== 0) {
    throw new InputError("lab_needs_root", "The lab needs root: it creates network namespaces");
  }
  if (await complete(o.dir)) {
    o.print("The lab is already up.");
    await labStatus(opts);
    return;
  }
  if ((await existingNamespaces()).length || (await readState(o.dir))) {
    o.print("Found a partial lab; taking it down first.");
    await labDown(opts);
  }
  await Deno.mkdir(o.dir, { recursive: true, mode: 0o700 });
  const dir = await Deno.realPath(o.dir);
  const pids: Record<string, number> = {};
  if (o.edges !== 1 && o.edges !== 2) {
    throw new InputError("usage", `Cannot build a lab with "${o.edges}" edges: expected 1 or 2`);
  }
  const two = o.edges === 2;
  let pgDir: string | undefined;
  try {
    o.print(`Building the network (${two ? 8 : 7} namespaces)...`);
    await buildNetwork(o.edges);
    let database: string[] = [];
    if (two) {
      if (!pgBinDir()) {
        throw new InputError(
          "lab_needs_postgres",
          "Two edges share a PostgreSQL server: install it first (apt-get install postgresql)",
        );
      }
      o.print("Starting PostgreSQL for the two edges...");
      const pg = await startPgCluster("pcl-lab-pg-");
      pgDir = pg.dir;
      database = ["--database", await pg.createDatabase("lab")];
      pids.delay = await routeThroughDelay(o.self, dir);
    }
    pids.internet = spawnDetached(NS.inet, [...o.self, "lab", "_internet"], `${dir}/internet.log`);
    pids.app = spawnDetached(NS.app, [...o.self, "lab", "_app"], `${dir}/app.log`);
    o.print(two ? "Starting the edges..." : "Starting the edge...");
    const edgeArgs = [
      "--data-dir",
      `${dir}/edge`,
      "--public-host",
      ADDR.edge,
      "--tunnel-port",
      String(PORTS.tunnel),
      "--tun-interface",
      TUN.edge,
      ...(two ? [...database, "--edge-name", "edge-1", "--region", "near"] : []),
    ];
    pids.edge = spawnDetached(NS.edge, [...o.self, "edge", ...edgeArgs], `${dir}/edge.log`);
    const edgeUp = (ns: string, addr: string, what: string) =>
      waitFor(what, async () => {
        const r = await inNs(ns, [
          "curl",
          "-sf",
          "--max-time",
          "2",
          "--cacert",
          `${dir}/edge/ca/ca.crt`,
          `https://${addr}:${PORTS.edgeApi}/api/v1/health`,
        ], false);
        return r.code === 0 ? true : null;
      }, 30_000);
    await edgeUp(NS.edge, ADDR.edge, "the edge API");
    if (two) {
      // The second edge joins the fleet with the join key the first one wrote:
      // the fleet's CA and sealing key come from the database.
      const edge2Args = [
        "--fleet-key-file",
        `${dir}/edge/fleet.key`,
        "--data-dir",
        `${dir}/edge2`,
        "--public-host",
        EDGE2.addr,
        "--tunnel-port",
        String(PORTS.tunnel),
        "--tun-interface",
        EDGE2.tun,
        ...database,
        "--edge-name",
        "edge-2",
        "--region",
        "far",
      ];
      pids.edge2 = spawnDetached(EDGE2.ns, [...o.self, "edge", ...edge2Args], `${dir}/edge2.log`);
      await edgeUp(EDGE2.ns, EDGE2.addr, "the second edge's API");
    }
    // One key per machine group: the workstation is in "engineering", the
    // gateway box (and so its LAN) in "branch", so access rules can tell them apart.
    const newKey = async (file: string, group: string) => {
      await Deno.remove(file).catch(() => {});
      await inNs(NS.edge, [
        ...o.self,
        "edge",
        "key",
        "create",
        ...edgeArgs,
        "--reusable",
        "--expires",
        "7d",
        "--group",
        group,
        "--key-file",
        file,
      ]);
      return file;
    };
    const keyFile = await newKey(`${dir}/enroll.key`, GROUPS.ws);
    const gwKeyFile = await newKey(`${dir}/enroll-branch.key`, GROUPS.gw);

    o.print("Starting the connectors (workstation and gateway box)...");
    pids.ws = spawnDetached(
      NS.ws,
      [
        ...o.self,
        "connect",
        "--key-file",
        keyFile,
        "--data-dir",
        `${dir}/ws`,
        "--hostname",
        "workstation",
        "--tun-interface",
        TUN.ws,
      ],
      `${dir}/ws.log`,
    );
    pids.gw = spawnDetached(
      NS.gw,
      [
        ...o.self,
        "connect",
        "--key-file",
        gwKeyFile,
        "--data-dir",
        `${dir}/gw`,
        "--hostname",
        "branch-gw",
        "--gateway",
        "--lan-dns-listen",
        `${ADDR.gwLan}:53`,
        "--tun-interface",
        TUN.gw,
      ],
      `${dir}/gw.log`,
    );
    // Console bridges: namespace loopback ⇄ Unix socket ⇄ host loopback.
    const sock = (n: string) => `${dir}/${n}-console.sock`;
    pids.bridgeEdge = spawnDetached(
      NS.edge,
      [...o.self, "lab", "_bridge-in", sock("edge"), String(PORTS.edgeConsole)],
      `${dir}/bridge.log`,
    );
    pids.bridgeWs = spawnDetached(
      NS.ws,
      [...o.self, "lab", "_bridge-in", sock("ws"), String(PORTS.connectorConsole)],
      `${dir}/bridge.log`,
    );
    pids.bridgeGw = spawnDetached(
      NS.gw,
      [...o.self, "lab", "_bridge-in", sock("gw"), String(PORTS.connectorConsole)],
      `${dir}/bridge.log`,
    );
    if (two) {
      pids.bridgeEdge2 = spawnDetached(
        EDGE2.ns,
        [...o.self, "lab", "_bridge-in", sock("edge2"), String(PORTS.edgeConsole)],
        `${dir}/bridge.log`,
      );
    }
    pids.bridgeHost = spawnDetached(null, [
      ...o.self,
      "lab",
      "_bridge-out",
      `${HOST_CONSOLE_PORTS.edge}=${sock("edge")}`,
      `${HOST_CONSOLE_PORTS.ws}=${sock("ws")}`,
      `${HOST_CONSOLE_PORTS.gw}=${sock("gw")}`,
      ...(two ? [`${HOST_CONSOLE_PORTS.edge2}=${sock("edge2")}`] : []),
    ], `${dir}/bridge.log`);
    const state: LabState = {
      startedAt: new Date().toISOString(),
      pids,
      keyFile,
      gwKeyFile,
      edges: o.edges,
      pgDir,
    };
    await Deno.writeTextFile(`${dir}/state.json`, JSON.stringify(state, null, 2), { mode: 0o600 });

    for (const [name, ns] of [["workstation", NS.ws], ["gateway box", NS.gw]] as const) {
      await waitFor(`the ${name} connector to connect`, async () => {
        const s = await connectorStatus(ns);
        return s && String(s.state).startsWith("connected") ? s : null;
      }, o.connectTimeoutMs);
    }
  } catch (e) {
    await Deno.writeTextFile(
      `${dir}/state.json`,
      JSON.stringify({
        startedAt: new Date().toISOString(),
        pids,
        keyFile: "",
        edges: o.edges,
        pgDir,
      }),
    ).catch(() => {});
    o.print(`Lab failed to come up: ${(e as Error).message}`);
    o.print(`Logs are in ${dir}; run "portcullis lab down" to clean up.`);
    throw e;
  }
  printWelcome(o.print, dir, two);
}

function printWelcome(print: (l: string) => void, dir: string, two: boolean): void {
  const second = two
    ? `
  Second edge console  http://127.0.0.1:${HOST_CONSOLE_PORTS.edge2}/   (region "far", ${EDGE2.delayMs} ms further; same admin)
  Both edges share one PostgreSQL; each console's Edges tab lists both, and the
  connectors' consoles show the edge they chose and its round trip.`
    : "";
  print(`
The Portcullis lab is up.

  Edge console         http://127.0.0.1:${HOST_CONSOLE_PORTS.edge}/   (admin login in ${dir}/edge/initial-admin.txt)${second}
  Workstation console  http://127.0.0.1:${HOST_CONSOLE_PORTS.ws}/
  Gateway box console  http://127.0.0.1:${HOST_CONSOLE_PORTS.gw}/

Things to try:
  ip netns exec ${NS.ws} curl http://${WEB_NAME}/            # the internet sees the edge (${ADDR.edge})
  ip netns exec ${NS.lan} curl http://${ADDR.inet}/          # a LAN host behind the gateway box, same
  ip netns exec ${NS.ws} curl http://protected.portcullis.internal/   # am I protected?
  ip netns exec ${NS.ws} curl http://${ADDR.app}/            # the private app, only via the edge
  ip netns exec ${NS.ws} ${Deno.execPath()} run -A main.ts check    # the same check from the CLI
  portcullis lab status
  portcullis lab down
`);
}

/** Takes the lab down; leaves nothing behind. */
export async function labDown(opts: LabOptions = {}): Promise<void> {
  const o = defaults(opts);
  const st = await readState(o.dir);
  const pids = Object.values(st?.pids ?? {});
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGTERM");
    } catch { /* gone */ }
  }
  // Connectors restore routes, DNS and nftables on SIGTERM; give them a moment.
  const end = Date.now() + 8000;
  while (pids.some(alive) && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
  for (const pid of pids.filter(alive)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
  if (st?.pgDir) await stopPg(st.pgDir);
  for (const ns of await existingNamespaces()) {
    const r = await run(["ip", "netns", "pids", ns], false);
    for (const pid of r.out.split(/\s+/).filter(Boolean)) {
      try {
        Deno.kill(Number(pid), "SIGKILL");
      } catch { /* gone */ }
    }
    await run(["ip", "netns", "del", ns], false);
    await Deno.remove(`/etc/netns/${ns}`, { recursive: true }).catch(() => {});
  }
  for (const h of HOSTS) {
    await Deno.remove(`/etc/netns/${h.ns}`, { recursive: true }).catch(() => {});
  }
  await Deno.remove(o.dir, { recursive: true }).catch(() => {});
  o.print("The lab is down: no namespaces, interfaces, nftables tables or processes are left.");
}

/** Prints what is running. */
export async function labStatus(opts: LabOptions = {}): Promise<boolean> {
  const o = defaults(opts);
  const st = await readState(o.dir);
  const have = await existingNamespaces();
  if (!st && have.length === 0) {
    o.print("The lab is down.");
    return false;
  }
  o.print(`Namespaces: ${have.length ? have.join(", ") : "none"}`);
  for (const [name, pid] of Object.entries(st?.pids ?? {})) {
    o.print(
      `  ${name.padEnd(12)} pid ${String(pid).padEnd(8)} ${alive(pid) ? "running" : "NOT RUNNING"}`,
    );
  }
  for (const [name, ns] of [["workstation", NS.ws], ["gateway box", NS.gw]] as const) {
    if (!have.includes(ns)) continue;
    const s = await connectorStatus(ns);
    o.print(
      `  ${name}: ${s ? `${s.state}${s.address ? `, address ${s.address}` : ""}` : "no answer"}`,
    );
  }
  return true;
}
