/**
 * Role configuration: embedded defaults, then an optional JSON file
 * (`{"edge": {...}, "connector": {...}}`), then environment variables
 * (`PORTCULLIS_DATA_DIR`, …), then command-line flags (`--data-dir`, …),
 * each overriding the one before, validated with zod. A bad value is named
 * with what was expected and what was given:
 * `Invalid configuration: edge.tunnelPort: expected an integer from 1 to 65535, got "abc"`.
 */
import { z } from "zod";
import { InputError } from "./errors.ts";

const PORT_MSG = "expected an integer from 1 to 65535";

function coerceInt(v: unknown): unknown {
  return typeof v === "string" && /^-?\d+$/.test(v.trim()) ? Number(v.trim()) : v;
}

/** The data plane's packet slots (2112 bytes) hold at most a 2000-byte MTU. */
const MTU_MSG = "expected an integer from 576 to 2000";

/** "true"/"false" (from env and flags) as booleans; anything else is left for zod to reject. */
function coerceBool(v: unknown): unknown {
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  return v;
}

/** A TCP/UDP port; strings of digits (from env and flags) are accepted. */
export const Port = z.preprocess(
  coerceInt,
  z.number({ error: PORT_MSG }).int({ error: PORT_MSG }).min(1, { error: PORT_MSG }).max(65535, {
    error: PORT_MSG,
  }),
);

const LISTEN_MSG =
  "expected host:port (e.g. 0.0.0.0:8443 or [::]:8443) with a port from 1 to 65535";

/** "host:port" or "[v6]:port". */
export const ListenAddress = z.string({ error: LISTEN_MSG }).refine((s) => {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(s);
  return m !== null && Number(m[3]) >= 1 && Number(m[3]) <= 65535;
}, { error: LISTEN_MSG });

/** Splits "host:port" / "[v6]:port" into parts (input must satisfy ListenAddress). */
export function splitListen(addr: string): { hostname: string; port: number } {
  const i = addr.lastIndexOf(":");
  return { hostname: addr.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(addr.slice(i + 1)) };
}

const LEVEL = z.enum(["debug", "info", "warn", "error"], {
  error: 'expected one of "debug", "info", "warn", "error"',
});

/** A whole number of seconds within [min, max]; strings of digits are accepted. */
function seconds(min: number, max: number) {
  const msg = `expected a whole number of seconds from ${min} to ${max}`;
  return z.preprocess(
    coerceInt,
    z.number({ error: msg }).int({ error: msg }).min(min, { error: msg }).max(max, { error: msg }),
  );
}

const RANGE_MSG = "expected a /16 from 100.64.0.0/16 to 100.83.0.0/16";

/** Edge configuration. */
export const EdgeConfig = z.object({
  /** Where the database, CA and keys live. */
  dataDir: z.string({ error: "expected a directory path" }).min(1).default("./data/edge"),
  /**
   * The store: unset for the embedded SQLite file `<dataDir>/edge.db`, or a
   * postgres:// URL (`?host=/dir` for a Unix socket) that several edges share.
   */
  database: z.string().regex(/^postgres(ql)?:\/\/\S+$/i, {
    error: "expected a postgres:// or postgresql:// URL",
  }).optional(),
  /**
   * With a shared database: the fleet join key file that lets this edge take
   * the fleet's CA and sealing key from the database (src/edge/fleet_keys.ts);
   * the first edge writes a new one there. Default `<dataDir>/fleet.key`.
   */
  fleetKeyFile: z.string({ error: "expected a file path" }).min(1, {
    error: "expected a file path",
  }).optional(),
  /** HTTPS API listener. */
  apiListen: ListenAddress.default("0.0.0.0:8443"),
  /** Tunnel port, UDP and TLS. */
  tunnelPort: Port.default(443),
  /** Admin console listener. */
  consoleListen: ListenAddress.default("127.0.0.1:8080"),
  /** Plain-HTTP bootstrap listener: CA certificate and captive-portal probe. */
  bootstrapListen: ListenAddress.default("0.0.0.0:8081"),
  /** Name of the edge's TUN interface. */
  tunInterface: z.string().regex(/^[a-zA-Z0-9_.-]{1,15}$/, {
    error: "expected an interface name of 1-15 letters, digits, _ . or -",
  }).default("pce0"),
  /** Tunnel MTU. */
  mtu: z.preprocess(
    coerceInt,
    z.number({ error: MTU_MSG }).int({ error: MTU_MSG }).min(576, { error: MTU_MSG }).max(2000, {
      error: MTU_MSG,
    }),
  ).default(1420),
  /** Masquerade device traffic leaving the edge (nftables). */
  nat: z.preprocess(coerceBool, z.boolean({ error: "expected true or false" })).default(true),
  /** Preferred device range (shifted to the next free /16 on a clash). */
  deviceRange: z.string({ error: RANGE_MSG }).refine((s) => {
    const m = /^100\.(\d{1,3})\.0\.0\/16$/.exec(s);
    return m !== null && Number(m[1]) >= 64 && Number(m[1]) <= 83;
  }, { error: RANGE_MSG }).default("100.64.0.0/16"),
  /** Hostname or address devices use to reach this edge; default: first non-loopback address. */
  publicHost: z.string().regex(/^[A-Za-z0-9.:-]{1,253}$/, {
    error: "expected a hostname or IP address",
  }).optional(),
  /**
   * This edge's name in the fleet's edge registry (several edges on one
   * database); default: the host name.
   */
  edgeName: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, {
    error: "expected a name of 1-63 letters, digits, . _ or - starting with a letter or digit",
  }).optional(),
  /** A region or site label shown with the edge (e.g. "eu-west", "branch 2"); default none. */
  region: z.string().regex(/^[A-Za-z0-9 ._-]{0,64}$/, {
    error: "expected at most 64 letters, digits, spaces, . _ or -",
  }).default(""),
  /** Full API URL written into enrolment keys; default https://publicHost:apiPort. */
  publicUrl: z.url({ error: "expected an https:// or http:// URL" }).optional(),
  /** Extra names for the server certificate. */
  tlsNames: z.array(
    z.string().regex(/^[A-Za-z0-9.:-]{1,253}$/, {
      error: "expected hostnames or IP addresses",
    }),
  ).default([]),
  /**
   * Host names (besides loopback) the admin console answers to, for a console
   * listener bound to a non-loopback address; others get 421 (DNS rebinding).
   */
  consoleHosts: z.array(
    z.string().regex(/^[A-Za-z0-9.:-]{1,253}$/, {
      error: "expected hostnames or IP addresses",
    }),
  ).default([]),
  /**
   * The Microsoft identity platform's authority host for SaaS tenants
   * (national clouds: login.microsoftonline.us, login.chinacloudapi.cn).
   */
  saasAuthorityUrl: z.url({ protocol: /^https$/, error: "expected an https:// URL" }).default(
    "https://login.microsoftonline.com",
  ),
  /** The Microsoft Graph endpoint data-at-rest scans call. */
  saasGraphUrl: z.url({ protocol: /^https$/, error: "expected an https:// URL" }).default(
    "https://graph.microsoft.com/v1.0",
  ),
  /** PEM file of extra CA certificates trusted for the identity platform and Graph. */
  saasCaFile: z.string({ error: "expected a file path" }).min(1).optional(),
  /**
   * Port of the web forward proxy on the edge's tunnel address (explicit
   * HTTP and CONNECT); unset: no proxy. With `webProxyTransparent` tunnelled
   * traffic to ports 80 and 443 is redirected into it too.
   */
  webProxyPort: Port.optional(),
  /**
   * PEM file of CA certificates the inspecting proxy trusts for origins in
   * addition to the default roots (a lab "internet" with its own CA).
   */
  webProxyCaFile: z.string({ error: "expected a file path" }).min(1).optional(),
  /** Redirect tunnelled 80/443 into the web proxy (nftables). */
  webProxyTransparent: z.preprocess(coerceBool, z.boolean({ error: "expected true or false" }))
    .default(true),
  logLevel: LEVEL.default("info"),
}).strict();
/** @see EdgeConfig */
export type EdgeConfig = z.infer<typeof EdgeConfig>;

/** Connector configuration (the connector role extends this as it grows). */
export const ConnectorConfig = z.object({
  dataDir: z.string({ error: "expected a directory path" }).min(1).default("./data/connector"),
  consoleListen: ListenAddress.default("127.0.0.1:9080"),
  logLevel: LEVEL.default("info"),
  /** Name of the connector's TUN interface. */
  tunInterface: z.string().regex(/^[a-zA-Z0-9_.-]{1,15}$/, {
    error: "expected an interface name of 1-15 letters, digits, _ . or -",
  }).default("pcc0"),
  /** Device name reported to the edge (default: the host name). */
  hostname: z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$/, {
    error: "expected a host name of letters, digits, dots and hyphens",
  }).optional(),
  /** Gateway box: forward and masquerade other hosts' traffic into the tunnel. */
  gateway: z.preprocess(coerceBool, z.boolean({ error: "expected true or false" })).default(false),
  /** Gateway box: answer DNS for the LAN on this address (e.g. 192.168.50.1:53). */
  lanDnsListen: ListenAddress.optional(),
  /** Point the system resolver at the split-DNS stub (edge names through the tunnel). */
  manageDns: z.preprocess(coerceBool, z.boolean({ error: "expected true or false" })).default(true),
  /** Seconds between attempts to return from TLS to UDP. */
  udpProbeSec: seconds(1, 3600).default(30),
  /** Seconds between captive-portal / edge probes while all is well. */
  probeIdleSec: seconds(5, 3600).default(60),
  /** Seconds between probes while a captive portal holds the device. */
  probePortalSec: seconds(1, 60).default(3),
  /**
   * Block traffic (all but loopback, DNS, DHCP and the edge of the enrolment
   * key) until the first enrolment; from the first policy on, the policy's
   * strict-enforcement setting decides.
   */
  strictEnforcement: z.preprocess(coerceBool, z.boolean({ error: "expected true or false" }))
    .default(false),
  /**
   * Endpoint DLP on removable media and network shares: "auto" enforces with
   * fanotify when it can and reports only when it cannot, "report_only"
   * never blocks, "off" does not look.
   */
  dlpMode: z.enum(["auto", "report_only", "off"], {
    error: 'expected one of "auto", "report_only", "off"',
  }).default("auto"),
  /** Seconds between fetches of the DLP policy from the edge. */
  dlpRefreshSec: seconds(2, 3600).default(30),
  /**
   * The release public key (a .pub file from `portcullis release keygen`).
   * The first run pins it in the data directory; later runs use the pinned
   * copy and refuse another. Without one, the connector installs no update.
   */
  releaseKey: z.string().min(1).optional(),
  /**
   * The program file updates replace (the installed `portcullis`). Default:
   * this executable when it is a compiled Portcullis; under `deno run`, none
   * (no updates).
   */
  program: z.string().min(1).optional(),
  /** Seconds between update checks (and on "Update policy"). */
  updateCheckSec: seconds(60, 7 * 24 * 3600).default(7200),
  /** Seconds a new version has to report to the edge before it is rolled back. */
  updateHealthSec: seconds(5, 3600).default(120),
}).strict();
/** @see ConnectorConfig */
export type ConnectorConfig = z.infer<typeof ConnectorConfig>;

const SCHEMAS = { edge: EdgeConfig, connector: ConnectorConfig } as const;

/** Role names with a configuration. */
export type Role = keyof typeof SCHEMAS;

/** Raised for any invalid configuration value. */
export class ConfigError extends InputError {
  constructor(message: string) {
    super("invalid_configuration", message);
  }
}

/** Where configuration comes from. */
export interface ConfigSources {
  /** JSON file path (optional). */
  file?: string;
  /** Environment (default: none; pass Deno.env.toObject()). */
  env?: Record<string, string>;
  /** Parsed flags by kebab-case name (e.g. {"data-dir": "/x"}). */
  flags?: Record<string, string | number | boolean | string[] | undefined>;
}

/** Settings given as comma-separated lists in the environment and flags. */
const LIST_KEYS = new Set(["tlsNames", "consoleHosts"]);

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function describeValue(v: unknown): string {
  if (v === undefined) return "nothing";
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function valueAt(obj: unknown, path: PropertyKey[]): unknown {
  let cur: unknown = obj;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return cur;
}

/** Turns the first zod issue into `Invalid configuration: role.field: expected …, got …`. */
function configError(role: string, err: z.ZodError, raw: unknown): ConfigError {
  const issue = err.issues[0];
  const path = [role, ...issue.path.map(String)].join(".");
  if (issue.code === "unrecognized_keys") {
    return new ConfigError(
      `Invalid configuration: ${path}: unknown setting ${
        issue.keys.map((k) => `"${k}"`).join(", ")
      }`,
    );
  }
  return new ConfigError(
    `Invalid configuration: ${path}: ${issue.message}, got ${
      describeValue(valueAt(raw, issue.path))
    }`,
  );
}

/** Merges file, environment and flags for `role` and validates the result. */
export async function loadConfig<R extends Role>(
  role: R,
  sources: ConfigSources = {},
): Promise<z.infer<(typeof SCHEMAS)[R]>> {
  const schema = SCHEMAS[role];
  const keys = Object.keys(schema.shape);
  let raw: Record<string, unknown> = {};
  if (sources.file) {
    let text: string;
    try {
      text = await Deno.readTextFile(sources.file);
    } catch (err) {
      throw new ConfigError(
        `Cannot read configuration file "${sources.file}": ${(err as Error).message}`,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(
        `Cannot parse configuration file "${sources.file}": ${(err as Error).message}`,
      );
    }
    if (json === null || typeof json !== "object" || Array.isArray(json)) {
      throw new ConfigError(
        `Invalid configuration: "${sources.file}" must hold a JSON object such as {"${role}": {...}}`,
      );
    }
    const section = (json as Record<string, unknown>)[role];
    if (section !== undefined) {
      if (section === null || typeof section !== "object" || Array.isArray(section)) {
        throw new ConfigError(`Invalid configuration: ${role}: expected an object`);
      }
      raw = { ...(section as Record<string, unknown>) };
    }
  }
  for (const k of keys) {
    const v = sources.env?.[`PORTCULLIS_${snake(k)}`];
    if (v !== undefined && v !== "") {
      raw[k] = Array.isArray(raw[k]) || LIST_KEYS.has(k)
        ? v.split(",").map((s) => s.trim()).filter(Boolean)
        : v;
    }
  }
  for (const k of keys) {
    const v = sources.flags?.[kebab(k)];
    if (v !== undefined) raw[k] = LIST_KEYS.has(k) && typeof v === "string" ? v.split(",") : v;
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw configError(role, parsed.error, raw);
  return parsed.data as z.infer<(typeof SCHEMAS)[R]>;
}

/** The first non-loopback IPv4 address of this host, or 127.0.0.1. */
export function defaultPublicHost(): string {
  try {
    const a = Deno.networkInterfaces().find((i) =>
      i.family === "IPv4" && !i.address.startsWith("127.")
    );
    return a?.address ?? "127.0.0.1";
  } catch {
    return "127.0.0.1";
  }
}
