/**
 * `portcullis service install|uninstall [edge|connector] [--dry-run]`:
 * systemd units for the two roles, so a crash is followed by a restart a
 * second later (Restart=always, RestartSec=1) — the connector's start then
 * repairs resolv.conf at once (src/connector/cli.ts) — and "Restart service"
 * restarts the unit (src/connector/restart.ts).
 *
 * Hardening keeps only what the roles use: network administration (TUN
 * device, routes, netlink, nftables), raw sockets (ping probes) and low
 * ports; the file system is read-only except the state directory, /run
 * (UAPI sockets) and, for the connector, /etc (resolv.conf is rewritten by
 * rename in its directory). /proc/sys stays writable (ip_forward for NAT),
 * and MemoryDenyWriteExecute stays off (V8 compiles JavaScript to machine
 * code). KillMode=mixed sends SIGTERM to the main process alone, so its own
 * cleanup stops its helpers; whatever is left gets SIGKILL afterwards.
 */
import { parseCliArgs } from "./cli_args.ts";
import { InputError } from "./errors.ts";
import { exists } from "./install.ts";

/** The roles that get a unit. */
export type ServiceRole = "edge" | "connector";

/** The unit file name of a role. */
export function unitName(role: ServiceRole): string {
  return `portcullis-${role}.service`;
}

/** Quotes one ExecStart word for systemd (spaces, quotes, backslashes, % and $ specifiers). */
export function systemdQuote(word: string): string {
  const escaped = word.replaceAll("%", "%%").replaceAll("$", "$$$$");
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** What a unit is made from. */
export interface UnitOptions {
  role: ServiceRole;
  /** The command that runs the program, up to (not including) the role: [deno, "run", "-A", main.ts] or [binary]. */
  program: string[];
  /** Default /var/lib/portcullis/<role> (systemd creates it: StateDirectory). */
  dataDir?: string;
  /** More arguments for the role ("--gateway"). */
  args?: string[];
}

/** Renders the unit file text. */
export function renderUnit(o: UnitOptions): string {
  const dataDir = o.dataDir ?? `/var/lib/portcullis/${o.role}`;
  const exec = [...o.program, o.role === "edge" ? "edge" : "connect", "--data-dir", dataDir];
  exec.push(...(o.args ?? []));
  const what = o.role === "edge"
    ? "Portcullis service edge (zero-trust gateway)"
    : "Portcullis connector (zero-trust client)";
  const stateDir = dataDir.startsWith("/var/lib/") ? dataDir.slice("/var/lib/".length) : null;
  const writable = ["/run", ...(o.role === "connector" ? ["/etc"] : [])];
  if (!stateDir) writable.push(dataDir);
  return [
    "# Written by `portcullis service install`; remove with `portcullis service uninstall`.",
    "[Unit]",
    `Description=${what}`,
    "After=network-online.target",
    "Wants=network-online.target",
    "StartLimitIntervalSec=0",
    "",
    "[Service]",
    "Type=simple",
    `ExecStart=${exec.map(systemdQuote).join(" ")}`,
    "Restart=always",
    "RestartSec=1",
    "KillMode=mixed",
    "TimeoutStopSec=20",
    ...(stateDir ? [`StateDirectory=${stateDir}`, "StateDirectoryMode=0700"] : []),
    "UMask=0077",
    "# Network administration (TUN, routes, netlink, nftables), ping, ports below 1024.",
    "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
    "NoNewPrivileges=yes",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
    "DevicePolicy=closed",
    "DeviceAllow=/dev/net/tun rw",
    "ProtectSystem=strict",
    `ReadWritePaths=${writable.join(" ")}`,
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "SystemCallArchitectures=native",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** How this program is run now, as the start of an ExecStart line. */
export function currentProgram(): string[] {
  const exe = Deno.execPath();
  const base = exe.slice(exe.lastIndexOf("/") + 1);
  if (!/^deno/.test(base)) return [exe]; // `deno compile`d binary
  const main = Deno.mainModule.startsWith("file://")
    ? decodeURIComponent(new URL(Deno.mainModule).pathname)
    : Deno.mainModule;
  return [exe, "run", "-A", main];
}

async function systemctl(args: string[]): Promise<void> {
  const out = await new Deno.Command("systemctl", {
    args,
    stdin: "null",
    stdout: "inherit",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new InputError(
      "systemctl_failed",
      `"systemctl ${args.join(" ")}" failed: ${new TextDecoder().decode(out.stderr).trim()}`,
      500,
    );
  }
}

/** Runs `portcullis service install|uninstall [edge|connector] [--dry-run] [--unit-dir DIR] [-- ARGS]`. */
export async function serviceCommand(
  argv: string[],
  print: (s: string) => void = console.log,
): Promise<number> {
  const dash = argv.indexOf("--");
  const extra = dash >= 0 ? argv.slice(dash + 1) : [];
  const { values, positionals } = parseCliArgs(dash >= 0 ? argv.slice(0, dash) : argv, {
    "dry-run": { type: "boolean" },
    "unit-dir": { type: "string" },
    "data-dir": { type: "string" },
    "no-start": { type: "boolean" },
  }, "portcullis service");
  const [action, roleArg = "connector", ...rest] = positionals;
  if (action !== "install" && action !== "uninstall") {
    throw new InputError(
      "usage",
      `Unknown service action "${String(action ?? "").slice(0, 40)}": use install or uninstall`,
    );
  }
  if (roleArg !== "edge" && roleArg !== "connector") {
    throw new InputError(
      "usage",
      `Unknown role "${roleArg.slice(0, 40)}": use edge or connector`,
    );
  }
  if (rest.length) {
    throw new InputError("usage", `Unexpected argument "${rest[0].slice(0, 40)}"`);
  }
  const role: ServiceRole = roleArg;
  const dir = (values["unit-dir"] as string | undefined) ?? "/etc/systemd/system";
  const path = `${dir}/${unitName(role)}`;
  const dryRun = values["dry-run"] === true;
  // Only talk to systemd when it runs this machine and we write its own directory.
  const live = !dryRun && values["unit-dir"] === undefined && exists("/run/systemd/system");
  if (action === "install") {
    const text = renderUnit({
      role,
      program: currentProgram(),
      dataDir: values["data-dir"] as string | undefined,
      args: extra,
    });
    if (dryRun) {
      print(`# ${path}\n${text}`);
      return 0;
    }
    await Deno.mkdir(dir, { recursive: true });
    const tmp = `${path}.tmp`;
    await Deno.writeTextFile(tmp, text, { mode: 0o644 });
    await Deno.rename(tmp, path);
    print(`Wrote ${path}`);
    if (live) {
      await systemctl(["daemon-reload"]);
      await systemctl(["enable", ...(values["no-start"] ? [] : ["--now"]), unitName(role)]);
      print(`Enabled ${unitName(role)}${values["no-start"] ? "" : " and started it"}`);
    } else if (values["unit-dir"] === undefined) {
      print("systemd is not running here: enable the unit once it is.");
    }
    return 0;
  }
  if (dryRun) {
    print(`Would stop and disable ${unitName(role)} and remove ${path}`);
    return 0;
  }
  if (live) await systemctl(["disable", "--now", unitName(role)]).catch(() => {});
  try {
    await Deno.remove(path);
    print(`Removed ${path}`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    print(`${path} was not installed`);
  }
  if (live) await systemctl(["daemon-reload"]);
  return 0;
}
