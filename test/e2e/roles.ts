/**
 * Test fixture (not a test): a real edge and a real connector, each the
 * `portcullis` program in a namespace of its own, joined by one link:
 *
 *   edge 192.0.2.1/24 ── conn 192.0.2.10/24
 *
 * Interface names come from the lab's per-process prefix, because WireGuard
 * UAPI sockets (/var/run/wireguard/<ifname>.sock) are shared by all
 * namespaces. Everything is removed when the NetnsLab is disposed.
 */
import { type NetnsLab, type RunResult, waitUntil } from "./netns.ts";
import { totpAt } from "../../src/identity/totp.ts";
import { CONNECTOR_NFT_TABLE } from "../../src/connector/tunnel.ts";

/** The portcullis program. */
export const MAIN = new URL("../../main.ts", import.meta.url).pathname;
/** The Deno binary running the tests. */
export const DENO = Deno.execPath();

/** Addresses and ports of the two roles. */
export const EDGE_IP = "192.0.2.1";
export const CONN_IP = "192.0.2.10";
export const EDGE_TUNNEL_PORT = 4443;

/** A running edge and connector. */
export interface Roles {
  lab: NetnsLab;
  edgeNs: string;
  connNs: string;
  /** Temporary directory holding both data directories and the logs. */
  dir: string;
  /** The connector's resolv.conf as the host sees it (meaningful with `resolvConf`). */
  resolvConfPath: string;
  /** The edge CA certificate (for curl --cacert). */
  ca: string;
  edgeTun: string;
  connTun: string;
  /** Arguments that point `portcullis edge …` at this edge's data. */
  edgeArgs: string[];
  /** Arguments of every `portcullis connect` start (data directory, interface, extras). */
  connectArgs: string[];
  edge: Deno.ChildProcess;
  /** The connector process (replaced by `restartConnector`). */
  connector: Deno.ChildProcess;
  /** Runs a command in a namespace, never throwing on a non-zero exit. */
  inNs(ns: string, cmd: string[], stdin?: string): Promise<RunResult>;
  /** The connector's local status (GET /api/v1/status). */
  connectorStatus(): Promise<Record<string, unknown>>;
  /** Starts the connector again (after it stopped) and waits as `startRoles` did. */
  restartConnector(): Promise<Deno.ChildProcess>;
  /** The last lines of the edge's and the connector's logs (for failure messages). */
  logs(): Promise<string>;
}

/** Options of `startRoles`. */
export interface RolesOptions {
  /** Enrol the connector with a fresh key and wait until it is connected (default false). */
  enroll?: boolean;
  /**
   * Let the connector manage resolv.conf (split DNS), starting from this
   * text. The file is /etc/netns/<conn>/resolv.conf, which `ip netns exec`
   * bind-mounts over /etc/resolv.conf for the connector alone, so the host's
   * DNS is never touched. Default: the connector runs with --no-dns.
   */
  resolvConf?: string;
  /** More `portcullis connect` arguments, on every start ("--gateway"). */
  connectorArgs?: string[];
  /**
   * The edge's public host (default EDGE_IP). A name must be resolvable by
   * the connector: serve it from `beforeConnector` and name that server in
   * `resolvConf`. The edge's certificate covers EDGE_IP as well.
   */
  edgePublicHost?: string;
  /**
   * How the connector is run (default: `deno run -A main.ts`): an installed
   * program file, say, that updates replace.
   */
  connectorCommand?: string[];
  /** Runs once the edge answers, before the connector starts (a DNS server, say). */
  beforeConnector?: (ns: { edge: string; conn: string; dir: string }) => Promise<void>;
}

/** Starts the edge and the connector in namespaces owned by `lab`. */
export async function startRoles(lab: NetnsLab, opts: RolesOptions = {}): Promise<Roles> {
  const dir = await Deno.makeTempDir({ prefix: "pcroles" });
  lab.defer(() => Deno.remove(dir, { recursive: true }));
  const edgeNs = await lab.ns("edge");
  const connNs = await lab.ns("conn");
  const connEtc = `/etc/netns/${connNs}`;
  if (opts.resolvConf !== undefined) {
    await Deno.mkdir(connEtc, { recursive: true });
    lab.defer(() => Deno.remove(connEtc, { recursive: true }));
    await Deno.writeTextFile(`${connEtc}/resolv.conf`, opts.resolvConf);
  }
  await lab.link(edgeNs, `${EDGE_IP}/24`, connNs, `${CONN_IP}/24`, "eth0");
  const edgeTun = `${lab.prefix}e`.slice(0, 15);
  const connTun = `${lab.prefix}c`.slice(0, 15);
  const inNs = (ns: string, cmd: string[], stdin?: string) =>
    lab.exec(ns, cmd, { check: false, stdin });
  /** Runs `cmd` in `ns` with its output appended to `<dir>/<log>`. */
  const detached = (ns: string, log: string, cmd: string[]) =>
    lab.spawn(ns, ["sh", "-c", 'exec "$@" >>"$0" 2>&1 </dev/null', `${dir}/${log}`, ...cmd]);
  const logs = async () => {
    let out = "";
    for (const f of ["edge.log", "conn.log"]) {
      const text = await Deno.readTextFile(`${dir}/${f}`).catch(() => "");
      out += `----- ${f} -----\n${text.split("\n").slice(-40).join("\n")}\n`;
    }
    return out;
  };

  const edgeArgs = [
    "--data-dir",
    `${dir}/edge`,
    "--public-host",
    opts.edgePublicHost ?? EDGE_IP,
    ...(opts.edgePublicHost ? ["--tls-names", EDGE_IP] : []),
    "--tunnel-port",
    String(EDGE_TUNNEL_PORT),
    "--tun-interface",
    edgeTun,
  ];
  const ca = `${dir}/edge/ca/ca.crt`;
  const edge = detached(edgeNs, "edge.log", [DENO, "run", "-A", MAIN, "edge", ...edgeArgs]);
  const connectorStatus = async () => {
    const r = await inNs(connNs, [
      "curl",
      "-s",
      "--max-time",
      "2",
      "http://127.0.0.1:9080/api/v1/status",
    ]);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };
  const connectArgs = [
    "--data-dir",
    `${dir}/conn`,
    "--hostname",
    "roles-ws",
    "--tun-interface",
    connTun,
    ...(opts.resolvConf === undefined ? ["--no-dns"] : []),
    ...(opts.connectorArgs ?? []),
  ];
  /** Starts the connector with `extra` arguments and waits for its API (or its tunnel). */
  const startConnector = async (extra: string[]) => {
    const p = detached(connNs, "conn.log", [
      ...(opts.connectorCommand ?? [DENO, "run", "-A", MAIN]),
      "connect",
      ...extra,
      ...connectArgs,
    ]);
    await waitUntil(
      opts.enroll ? "the connector to connect" : "the connector's local API",
      async () => {
        const s = await connectorStatus();
        return opts.enroll ? s.state === "connected" : typeof s.state === "string";
      },
      40_000,
    );
    return p;
  };
  try {
    await waitUntil("the edge API", async () => {
      const r = await inNs(edgeNs, [
        "curl",
        "-sf",
        "--max-time",
        "2",
        "--cacert",
        ca,
        `https://${EDGE_IP}:8443/api/v1/health`,
      ]);
      return r.code === 0;
    }, 40_000);
    await opts.beforeConnector?.({ edge: edgeNs, conn: connNs, dir });
    const first: string[] = [];
    if (opts.enroll) {
      // As the README says: a key file (mode 0600), never a key on the command line.
      const keyFile = `${dir}/conn.key`;
      await lab.exec(edgeNs, [
        DENO,
        "run",
        "-A",
        MAIN,
        "edge",
        "key",
        "create",
        ...edgeArgs,
        "--expires",
        "1h",
        "--key-file",
        keyFile,
      ]);
      first.push("--key-file", keyFile);
    }
    const roles: Roles = {
      lab,
      edgeNs,
      connNs,
      dir,
      resolvConfPath: `${connEtc}/resolv.conf`,
      ca,
      edgeTun,
      connTun,
      edgeArgs,
      connectArgs,
      edge,
      connector: await startConnector(first),
      inNs,
      connectorStatus,
      // Later starts reuse the stored enrolment.
      restartConnector: async () => (roles.connector = await startConnector([])),
      logs,
    };
    return roles;
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${await logs()}`);
  }
}

/** Logs in to the edge admin API (from the edge's namespace) and returns the cookie jar and CSRF token. */
export async function adminLogin(r: Roles): Promise<{ jar: string; csrf: string }> {
  const text = await Deno.readTextFile(`${r.dir}/edge/initial-admin.txt`);
  const password = text.match(/password: (\S+)/)![1];
  const secret = text.match(/totp secret: (\S+)/)![1];
  const jar = `${r.dir}/cookies.txt`;
  const login = await r.inNs(r.edgeNs, [
    "curl",
    "-s",
    "--cacert",
    r.ca,
    "-c",
    jar,
    "-H",
    "Content-Type: application/json",
    "-d",
    JSON.stringify({ username: "admin", password, totp: totpAt(secret, Date.now()) }),
    `https://${EDGE_IP}:8443/api/v1/auth/login`,
  ]);
  const csrf = JSON.parse(login.stdout).csrfToken as string;
  if (!csrf) throw new Error(`Admin login failed: ${login.stdout}`);
  return { jar, csrf };
}

/** Calls the edge admin API (from the edge's namespace) with a session from `adminLogin`; returns the JSON. */
export async function adminCall(
  r: Roles,
  session: { jar: string; csrf: string },
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const res = await r.inNs(r.edgeNs, [
    "curl",
    "-s",
    "--cacert",
    r.ca,
    "-b",
    session.jar,
    "-X",
    method,
    "-H",
    `X-CSRF-Token: ${session.csrf}`,
    "-H",
    "Content-Type: application/json",
    ...(body === undefined ? [] : ["-d", JSON.stringify(body)]),
    `https://${EDGE_IP}:8443${path}`,
  ]);
  return JSON.parse(res.stdout);
}

/** Runs a connector action through its local API (POST /api/v1/actions/NAME); returns the JSON. */
export async function connectorAction(r: Roles, name: string): Promise<Record<string, unknown>> {
  const res = await r.inNs(r.connNs, [
    "curl",
    "-s",
    "--max-time",
    "20",
    "-X",
    "POST",
    "-H",
    "X-Portcullis-Request: 1",
    "-H",
    "Content-Type: application/json",
    "-d",
    "{}",
    `http://127.0.0.1:9080/api/v1/actions/${name}`,
  ]);
  return JSON.parse(res.stdout);
}

/** The routes through the connector's tunnel interface, as `ip -j route` lists them. */
export async function tunnelRoutes(r: Roles): Promise<{ dst: string; protocol?: string }[]> {
  const out = (await r.inNs(r.connNs, ["ip", "-j", "route", "show", "dev", r.connTun])).stdout;
  return JSON.parse(out || "[]");
}

/** The connector's nftables table as `nft list table` prints it ("" when absent). */
export async function connectorTable(r: Roles): Promise<string> {
  return (await r.inNs(r.connNs, ["nft", "list", "table", "inet", CONNECTOR_NFT_TABLE])).stdout;
}
