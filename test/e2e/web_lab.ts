/**
 * The web proxy's lab, shared by its end-to-end test and its benchmark, in
 * namespaces of the caller's NetnsLab (unique names, removed on dispose):
 *
 *        ┌──────────── wan (router) ─────────────┐
 *      edge 192.0.2.1      ws 198.51.100.10      inet 198.18.0.80 (HTTP, HTTPS, DNS)
 *   (proxy :3128 on 100.64.0.1)                       198.18.0.81 (HTTPS, expired cert)
 *
 * A real edge (web proxy on, transparent redirect of tunnelled 80/443, the
 * internet's CA trusted for origins) and a real connector on the
 * workstation, enrolled with a user key and connected once the local user
 * LAB_USER signed in on its console (or with a machine key); the internet's
 * origins come from tools/web_origin.ts (its own CA, an expired certificate on .81, DNS for
 * NAMES, and ports 8080/8443 that the redirect leaves alone, for the plain
 * NAT path). Returns an admin API client logged in on the edge.
 */
import assert from "node:assert/strict";
import { type NetnsLab, sh, waitUntil } from "./netns.ts";
import { totpAt } from "../../src/identity/totp.ts";
import { privateTrustScript } from "./private_trust.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const ORIGIN = new URL("./tools/web_origin.ts", import.meta.url).pathname;
const DENO = Deno.execPath();

/** Addresses of the lab. */
export const ADDR = {
  edge: "192.0.2.1",
  ws: "198.51.100.10",
  inet: "198.18.0.80",
  inet2: "198.18.0.81",
  /** An intranet server on a private address (behind the router, on the "internet" host). */
  app10: "10.30.0.80",
} as const;
/** The edge proxy as devices reach it through the tunnel. */
export const PROXY = "100.64.0.1:3128";
/** Names the internet's DNS answers. */
export const NAMES = [
  ["good.example.test", ADDR.inet],
  ["blocked.example.test", ADDR.inet],
  ["dni.example.test", ADDR.inet],
  ["expired.example.test", ADDR.inet2],
  ["intranet.example.test", ADDR.app10],
];

/** Runs `cmd` in namespace `ns` (no check). */
export const inNs = (ns: string, cmd: string[], stdin?: string) =>
  sh(["ip", "netns", "exec", ns, ...cmd], { check: false, stdin });

/** The local user signed in on the workstation (unless the lab uses a machine key). */
export const LAB_USER = "ana";

/** A local user's credentials. */
interface LabUser {
  username: string;
  password: string;
  totpSecret: string;
}

/** The connector console inside the workstation's namespace. */
const CONSOLE = "http://127.0.0.1:9080";

/**
 * Signs `u` in the way a person does: the connector console's local sign-in
 * form (with the console's CSRF token from the page), posted with curl from
 * the workstation. Retried until the console answers with its redirect: a
 * TOTP code is accepted once, so a retry inside the same 30 s step waits for
 * the next code.
 */
async function signInOnConsole(ws: string, u: LabUser): Promise<void> {
  let csrf = "";
  await waitUntil("the connector console's sign-in form", async () => {
    const page = await inNs(ws, ["curl", "-s", "--max-time", "2", `${CONSOLE}/private-access`]);
    csrf = /id="signin-local-form"[\s\S]*?name="_csrf" value="([^"]+)"/.exec(page.stdout)?.[1] ??
      "";
    return csrf !== "";
  }, 45_000);
  let last = "";
  await waitUntil(
    `${u.username} to sign in on the connector console`,
    async () => {
      const r = await inNs(ws, [
        "curl",
        "-s",
        "--max-time",
        "15",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        "--data-urlencode",
        `_csrf=${csrf}`,
        "--data-urlencode",
        `username=${u.username}`,
        "--data-urlencode",
        `password=${u.password}`,
        "--data-urlencode",
        `totp=${totpAt(u.totpSecret, Date.now())}`,
        `${CONSOLE}/signin/local`,
      ]);
      last = r.stdout;
      return /^303 .*\/private-access$/.test(r.stdout);
    },
    70_000,
    2_000,
  ).catch((e) => {
    throw new Error(`${(e as Error).message} (last answer: ${last})`);
  });
}

/** An admin API call inside the edge's namespace; returns the parsed body. */
export type AdminApi = (path: string, method?: string, body?: unknown) => Promise<any>;

/** A running web lab. */
export interface WebLab {
  ns: { edge: string; ws: string; inet: string };
  /** The workstation connector's TUN interface. */
  wsTun: string;
  api: AdminApi;
  /** The user the workstation's device is bound to (null with a machine key). */
  user: string | null;
  /** The internet's CA certificate (PEM file). */
  originCa: string;
  /** Runs a command as the connector's host sees it (its network and its trust stores). */
  inWorkstation: (cmd: string[]) => ReturnType<typeof sh>;
}

/** Builds the topology, starts origins, edge and connector; logs go to `dir`. */
export async function startWebLab(
  lab: NetnsLab,
  dir: string,
  opts: { machine?: boolean } = {},
): Promise<WebLab> {
  // ---- topology ----------------------------------------------------------
  const wan = await lab.ns("wan"), edge = await lab.ns("edge"), inet = await lab.ns("inet");
  const ws = await lab.ns("ws");
  for (const ns of [edge, ws]) {
    const etc = `/etc/netns/${ns}`;
    await Deno.mkdir(etc, { recursive: true });
    lab.defer(() => Deno.remove(etc, { recursive: true }));
    const id = Array.from(
      crypto.getRandomValues(new Uint8Array(16)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    await Deno.writeTextFile(`${etc}/machine-id`, `${id}\n`);
    await Deno.writeTextFile(`${etc}/resolv.conf`, `nameserver ${ADDR.inet}\n`);
    // The connector's system proxy file (tunnel with local proxy) stays in the namespace.
    if (ns === ws) await Deno.mkdir(`${etc}/profile.d`);
  }
  await lab.link(wan, "192.0.2.254/24", edge, `${ADDR.edge}/24`, "edge0");
  await lab.link(wan, "198.51.100.254/24", ws, `${ADDR.ws}/24`, "ws0");
  await lab.link(wan, "198.18.0.254/24", inet, `${ADDR.inet}/24`, "inet0");
  await lab.exec(inet, ["ip", "addr", "add", `${ADDR.inet2}/24`, "dev", "inet0"]);
  await lab.exec(inet, ["ip", "addr", "add", `${ADDR.app10}/32`, "dev", "inet0"]);
  await lab.exec(wan, ["ip", "route", "add", `${ADDR.app10}/32`, "via", ADDR.inet]);
  for (const ns of [wan, edge]) await lab.exec(ns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  for (
    const [ns, via] of [[edge, "192.0.2.254"], [ws, "198.51.100.254"], [inet, "198.18.0.254"]]
  ) await lab.exec(ns, ["ip", "route", "add", "default", "via", via]);

  // ---- services ------------------------------------------------------------
  const detached = (ns: string, log: string, cmd: string[]) =>
    lab.spawn(ns, ["sh", "-c", 'exec "$@" >>"$0" 2>&1 </dev/null', `${dir}/${log}`, ...cmd]);
  const tag = `${Deno.pid % 10000}`;
  const wsTun = `pcww${tag}`;
  detached(inet, "inet.log", [
    DENO,
    "run",
    "-A",
    ORIGIN,
    dir,
    ADDR.inet,
    ADDR.inet2,
    NAMES.map(([n, a]) => `${n}=${a}`).join(","),
    ADDR.app10,
  ]);
  await waitUntil(
    "the internet's origins",
    async () => /ready/.test(await Deno.readTextFile(`${dir}/inet.log`).catch(() => "")),
    30_000,
  );
  const edgeArgs = [
    "--data-dir",
    `${dir}/edge`,
    "--public-host",
    ADDR.edge,
    "--tunnel-port",
    "443",
    "--tun-interface",
    `pcwe${tag}`,
    "--web-proxy-port",
    "3128",
    "--web-proxy-ca-file",
    `${dir}/ca.crt`,
  ];
  detached(edge, "edge.log", [DENO, "run", "-A", MAIN, "edge", ...edgeArgs]);
  const ca = `${dir}/edge/ca/ca.crt`;
  await waitUntil(
    "the edge API",
    async () =>
      (await inNs(edge, [
        "curl",
        "-sf",
        "--max-time",
        "2",
        "--cacert",
        ca,
        `https://${ADDR.edge}:8443/api/v1/health`,
      ])).code === 0,
    40_000,
  );
  // ---- admin API -------------------------------------------------------------
  const admin = await Deno.readTextFile(`${dir}/edge/initial-admin.txt`);
  const password = admin.match(/password: (\S+)/)![1];
  const secret = admin.match(/totp secret: (\S+)/)![1];
  const jar = `${dir}/cookies.txt`;
  const base = `https://${ADDR.edge}:8443`;
  const login = await inNs(edge, [
    "curl",
    "-s",
    "--cacert",
    ca,
    "-c",
    jar,
    "-H",
    "Content-Type: application/json",
    "-d",
    JSON.stringify({ username: "admin", password, totp: totpAt(secret, Date.now()) }),
    `${base}/api/v1/auth/login`,
  ]);
  const csrf = JSON.parse(login.stdout).csrfToken as string;
  assert.ok(csrf, `login: ${login.stdout}`);
  const api = async (path: string, method = "GET", body?: unknown) => {
    const data = body === undefined
      ? []
      : ["-H", "Content-Type: application/json", "-d", JSON.stringify(body)];
    const r = await inNs(edge, [
      "curl",
      "-s",
      "--max-time",
      "10",
      "--cacert",
      ca,
      "-b",
      jar,
      "-X",
      method,
      "-H",
      `X-CSRF-Token: ${csrf}`,
      ...data,
      `${base}${path}`,
    ]);
    return JSON.parse(r.stdout);
  };
  // ---- the workstation's user and enrolment ---------------------------------
  // By default the device is bound to a local user (password + TOTP) who
  // signs in on the connector's console, as a person at the workstation
  // would; `machine: true` enrols it with a machine key instead (no user).
  const machine = opts.machine === true;
  let user: LabUser | null = null;
  if (!machine) {
    const password = `pw-${crypto.randomUUID()}`;
    const created = await api("/api/v1/admin/users", "POST", {
      username: LAB_USER,
      password,
      groups: ["engineering"],
    });
    assert.ok(created.totp?.secret, `create user: ${JSON.stringify(created)}`);
    user = { username: LAB_USER, password, totpSecret: created.totp.secret };
  }
  const keyFile = `${dir}/eng.key`;
  await lab.exec(edge, [
    DENO,
    "run",
    "-A",
    MAIN,
    "edge",
    "key",
    "create",
    ...edgeArgs,
    "--reusable",
    ...(machine ? [] : ["--user"]),
    "--group",
    "engineering",
    "--key-file",
    keyFile,
  ]);
  // The connector installs the inspection CA when the profile consents: in a
  // private mount namespace with copies of the trust stores, never the machine's.
  detached(ws, "ws.log", [
    "unshare",
    "-m",
    "--propagation",
    "private",
    "sh",
    "-c",
    privateTrustScript(`${dir}/ws-trust`, [
      DENO,
      "run",
      "-A",
      MAIN,
      "connect",
      "--key-file",
      keyFile,
      "--data-dir",
      `${dir}/ws`,
      "--hostname",
      "workstation",
      "--tun-interface",
      wsTun,
    ], `${dir}/ws.pid`),
  ]);
  if (user) await signInOnConsole(ws, user);
  await waitUntil("the connector to connect", async () => {
    const r = await inNs(ws, [
      "curl",
      "-s",
      "--max-time",
      "2",
      "http://127.0.0.1:9080/api/v1/status",
    ]);
    return /"state":"connected/.test(r.stdout);
  }, 45_000);
  if (user) {
    const name = user.username;
    await waitUntil(`the edge to list the workstation under ${name}`, async () => {
      const r = await api("/api/v1/admin/devices");
      return (r.devices ?? []).some((d: { hostname: string; user: string | null }) =>
        d.hostname === "workstation" && d.user === name
      );
    }, 10_000);
  }

  const wsPid = Number(await Deno.readTextFile(`${dir}/ws.pid`));
  return {
    ns: { edge, ws, inet },
    wsTun,
    api,
    user: user?.username ?? null,
    originCa: `${dir}/ca.crt`,
    inWorkstation: (cmd) =>
      sh(["nsenter", "-t", String(wsPid), "-m", "-n", ...cmd], { check: false }),
  };
}
