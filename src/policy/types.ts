/**
 * The policy model as plain data (DESIGN.md §5). The edge stores it, ships it
 * to connectors in the policy bundle, and the evaluators in src/policy
 * compile it into immutable functions. Zod schemas double as validation for
 * the REST API and as the TypeScript types.
 */
import { z } from "zod";
import { scryptHashProblem } from "../identity/password.ts";

/** An IPv4 or IPv6 prefix in CIDR notation ("10.0.0.0/8", "2001:db8::/32"). */
export const Cidr = z.string().regex(
  /^(?:(?:\d{1,3}\.){3}\d{1,3}\/\d{1,2}|[0-9a-fA-F:]+\/\d{1,3})$/,
  "expected an IPv4 or IPv6 prefix such as 10.0.0.0/8",
);

/** What the connector does with traffic on a given network type. */
export const ForwardingAction = z.enum(["tunnel", "tunnel_local_proxy", "enforce_pac", "none"]);
/** @see ForwardingAction */
export type ForwardingAction = z.infer<typeof ForwardingAction>;

/** Network types a connector can find itself on. */
export const NetworkType = z.enum(["on_trusted", "off_trusted", "vpn_trusted"]);
/** @see NetworkType */
export type NetworkType = z.infer<typeof NetworkType>;

/** Criteria that identify a trusted network; every field is optional. */
export const TrustedCriteria = z.object({
  dnsServers: z.array(z.string()).default([]),
  dnsSearchDomains: z.array(z.string()).default([]),
  /** Hostname must resolve to one of the given addresses. */
  hostnameIps: z.array(z.object({ hostname: z.string(), ips: z.array(z.string()).min(1) }))
    .default([]),
  defaultGateways: z.array(z.string()).default([]),
  /** The host holds an address inside one of these prefixes. */
  networkRanges: z.array(Cidr).default([]),
  /** The edge sees our traffic coming from one of these addresses/prefixes. */
  egressIps: z.array(z.string()).default([]),
  /** host:port whose leaf certificate SHA-256 (hex) must match. */
  tlsBeacons: z.array(
    z.object({
      host: z.string(),
      port: z.number().int().min(1).max(65535),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
    }),
  ).default([]),
  match: z.enum(["any", "all"]).default("any"),
}).strict();
/** @see TrustedCriteria */
export type TrustedCriteria = z.infer<typeof TrustedCriteria>;

/** Forwarding profile: how to recognise networks and what to do on each. */
export const ForwardingProfile = z.object({
  name: z.string().min(1).max(100),
  trusted: TrustedCriteria.default(TrustedCriteria.parse({})),
  actions: z.object({
    on_trusted: ForwardingAction.default("none"),
    off_trusted: ForwardingAction.default("tunnel"),
    vpn_trusted: ForwardingAction.default("tunnel"),
  }).strict().default({ on_trusted: "none", off_trusted: "tunnel", vpn_trusted: "tunnel" }),
  /** Seconds without a UDP handshake answer before falling back to TLS (5–60). */
  udpTimeoutSec: z.number().int().min(5).max(60).default(5),
  tlsFallback: z.boolean().default(true),
  /** Tunnel MTU; capped at 2000 because the data plane's packet slots (2112 bytes) hold no more. */
  mtu: z.number({ error: "MTU must be a whole number from 576 to 2000" })
    .int({ error: "MTU must be a whole number from 576 to 2000" })
    .min(576, { error: "MTU must be a whole number from 576 to 2000" })
    .max(2000, { error: "MTU must be a whole number from 576 to 2000" })
    .default(1420),
}).strict();
/** @see ForwardingProfile */
export type ForwardingProfile = z.infer<typeof ForwardingProfile>;

/** What to do when the edge cannot be reached, or a captive portal is found. */
export const FailOpenSettings = z.object({
  edgeUnreachable: z.enum(["direct", "blocked"]).default("direct"),
  /** Retries before declaring the edge unreachable. */
  retries: z.number().int().min(1).max(20).default(3),
  captivePortalWindowMin: z.number().int().min(1).max(60).default(10),
  /** When the captive window ends first: enforce again, or fail open. */
  captivePortalExpiry: z.enum(["enforce", "fail_open"]).default("enforce"),
  /** Block traffic before enrolment and after logout. */
  strictEnforcement: z.boolean().default(false),
}).strict();
/** @see FailOpenSettings */
export type FailOpenSettings = z.infer<typeof FailOpenSettings>;

/** The default exclusions every commercial connector ships with. */
export const DEFAULT_EXCLUDES: readonly string[] = Object.freeze([
  "224.0.0.0/4",
  "169.254.0.0/16",
  "255.255.255.255/32",
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
]);

/** Actions a connector password can guard. */
export const PROTECTED_ACTIONS = ["logout", "disable", "exit", "uninstall"] as const;
/** One of PROTECTED_ACTIONS. */
export type ProtectedAction = typeof PROTECTED_ACTIONS[number];

/** An scrypt hash as src/identity/password.ts encodes it (checked, never plain text). */
export const ScryptHash = z.string().superRefine((v, ctx) => {
  const why = scryptHashProblem(v);
  if (why) ctx.addIssue({ code: "custom", message: `not an scrypt hash: ${why}` });
});
/** A digital-experience web probe the connector runs (src/zdx/web_probe.ts). */
export const ZdxProbe = z.object({
  name: z.string().regex(/^[A-Za-z0-9 ._-]{1,64}$/, {
    error: "expected 1-64 letters, digits, spaces, dots, dashes or underscores",
  }),
  url: z.url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" }).max(2048),
  intervalSec: z.number().int().min(5).max(3600).default(60),
  timeoutMs: z.number().int().min(500).max(30_000).default(10_000),
}).strict();
/** @see ZdxProbe */
export type ZdxProbe = z.infer<typeof ZdxProbe>;

/** App profile: per user group, by rule order. */
export const AppProfile = z.object({
  name: z.string().min(1).max(100),
  ruleOrder: z.number().int().min(0).default(0),
  groups: z.array(z.string()).default([]),
  forwarding: ForwardingProfile,
  failOpen: FailOpenSettings.default(FailOpenSettings.parse({})),
  postureProfiles: z.array(z.string()).default([]),
  /**
   * scrypt hashes (never plain text) of the passwords the connector asks for
   * before logout / disable / exit / uninstall; a malformed hash is refused
   * here, when it is saved, not when a user first types the password.
   */
  passwords: z.object({
    logout: ScryptHash.optional(),
    disable: ScryptHash.optional(),
    exit: ScryptHash.optional(),
    uninstall: ScryptHash.optional(),
  }).strict().default({}),
  /**
   * Allowed clock difference (s) when the edge validates sign-in tokens and
   * assertions; the connector warns its user past it. The edge validates with
   * the default profile's value (the one a device without a group gets),
   * because the user's group is known only after validation.
   */
  clockSkewToleranceSec: z.number({ error: "expected a whole number of seconds from 0 to 1800" })
    .int({ error: "expected a whole number of seconds from 0 to 1800" })
    .min(0, { error: "expected a whole number of seconds from 0 to 1800" })
    .max(1800, { error: "expected a whole number of seconds from 0 to 1800" })
    .default(120),
  /**
   * How long a user's sign-in on a device lasts (re-authentication every N
   * hours): past it the edge refuses the device's calls and takes it out of
   * the tunnel until the user signs in again. Machine devices have no sign-in.
   */
  signInLifetimeHours: z.number({ error: "expected a whole number of hours from 1 to 720" })
    .int({ error: "expected a whole number of hours from 1 to 720" })
    .min(1, { error: "expected a whole number of hours from 1 to 720" })
    .max(720, { error: "expected a whole number of hours from 1 to 720" })
    .default(12),
  logMode: z.enum(["error", "warn", "info", "debug"]).default("info"),
  policyRefreshSec: z.number().int().min(10).max(86400).default(60),
  include: z.array(Cidr).default(["0.0.0.0/0"]),
  exclude: z.array(Cidr).default([...DEFAULT_EXCLUDES]),
  dnsIncludeDomains: z.array(z.string()).default([]),
  dnsExcludeDomains: z.array(z.string()).default([]),
  /**
   * Consent to install the edge's SSL inspection CA into the device's trust
   * (system store and NSS databases); off: the connector installs nothing
   * and removes a CA it installed before.
   */
  installInspectionCa: z.boolean().default(false),
  /** Digital-experience probes for this group's devices (absent: none). */
  zdxProbes: z.array(ZdxProbe).max(20).optional(),
  /**
   * The profile's own PAC file, with device variables (src/policy/pac_template.ts);
   * absent: the edge serves the one generated from the include/exclude lists.
   */
  pacTemplate: z.string().min(1).max(64 * 1024, { error: "expected at most 64 KiB" }).optional(),
}).strict();
/** @see AppProfile */
export type AppProfile = z.infer<typeof AppProfile>;

/** A typed posture check with its expected value. */
export const PostureCheck = z.discriminatedUnion("type", [
  z.object({ type: z.literal("os_version"), min: z.string() }).strict(),
  z.object({ type: z.literal("process_running"), name: z.string().min(1) }).strict(),
  z.object({
    type: z.literal("file_exists"),
    path: z.string().min(1),
    sha256: z.string().optional(),
  })
    .strict(),
  z.object({ type: z.literal("disk_encryption") }).strict(),
  z.object({ type: z.literal("firewall_enabled") }).strict(),
  /**
   * A client certificate in the directory `store` (PEM files) whose issuer
   * (and subject, when given) match and whose private key is there too: a
   * certificate without its key proves nothing about this device.
   */
  z.object({
    type: z.literal("certificate"),
    issuer: z.string().min(1).max(512).optional(),
    subject: z.string().min(1).max(512).optional(),
    store: z.string().min(1).max(1024).optional(),
  }).strict(),
  z.object({ type: z.literal("connector_version"), min: z.string() }).strict(),
  /** An EDR agent: the named service's process running, and its binary's SHA-256 when given. */
  z.object({
    type: z.literal("edr"),
    service: z.string().min(1).max(100),
    sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, "expected a SHA-256 in hex").optional(),
  }).strict(),
]);
/** @see PostureCheck */
export type PostureCheck = z.infer<typeof PostureCheck>;

/** A named set of posture checks, all of which must pass. */
export const PostureProfile = z.object({
  name: z.string().min(1).max(100),
  checks: z.array(PostureCheck).min(1),
  /** A device's report counts this long after it was collected; older, the profile fails. */
  validityMinutes: z.number().int().min(1).max(1440).default(15),
  /** The edge evaluates the stored facts again this often (and on every report or profile change). */
  reevaluateMinutes: z.number().int().min(1).max(1440).default(5),
}).strict().superRefine((p, ctx) => {
  p.checks.forEach((c, i) => {
    if (c.type === "certificate" && !c.issuer && !c.subject) {
      ctx.addIssue({
        code: "custom",
        path: ["checks", i],
        message: "a certificate check needs an issuer or a subject",
      });
    }
  });
});
/** @see PostureProfile */
export type PostureProfile = z.infer<typeof PostureProfile>;

/** Application segment: private destinations behind the edge. */
export const AppSegment = z.object({
  name: z.string().min(1).max(100),
  domains: z.array(z.string()).default([]),
  cidrs: z.array(Cidr).default([]),
  /** Port ranges like "80", "8000-8100"; empty means all ports. */
  ports: z.array(z.string().regex(/^\d{1,5}(-\d{1,5})?$/)).default([]),
  protocols: z.array(z.enum(["tcp", "udp", "icmp"])).default(["tcp", "udp", "icmp"]),
}).strict();
/** @see AppSegment */
export type AppSegment = z.infer<typeof AppSegment>;

/**
 * Access policy rule: allow or deny segments to a subject meeting posture.
 * Conditions (see src/policy/access.ts): users or groups (IdP and local
 * groups of the signed-in user), machine groups (the enrolment key's group),
 * devices (by device id: host names are chosen by the device, ids are not),
 * and posture profiles that must all pass. Empty lists do not restrict.
 */
export const AccessRule = z.object({
  name: z.string().min(1).max(100),
  ruleOrder: z.number().int().min(0).default(0),
  action: z.enum(["allow", "deny"]).default("allow"),
  segments: z.array(z.string()).min(1).max(1000),
  users: z.array(z.string()).max(1000).default([]),
  groups: z.array(z.string()).max(1000).default([]),
  machineGroups: z.array(z.string()).max(1000).default([]),
  devices: z.array(z.string()).max(1000).default([]),
  postureProfiles: z.array(z.string()).max(100).default([]),
}).strict();
/** @see AccessRule */
export type AccessRule = z.infer<typeof AccessRule>;

/** Client-to-client settings. */
export const ClientToClient = z.object({
  enabled: z.boolean().default(false),
  /** Devices whose FQDN matches this regex may register. */
  hostnameRegex: z.string().default("^[a-z0-9-]+\\.clients\\.portcullis\\.internal$"),
  domain: z.string().default("clients.portcullis.internal"),
}).strict();
/** @see ClientToClient */
export type ClientToClient = z.infer<typeof ClientToClient>;

/** The standing of one application segment for the device a bundle is for. */
export const SegmentAccess = z.object({
  segment: z.string(),
  /** allowed now; posture_failing: a rule would allow it if posture passed; denied. */
  state: z.enum(["allowed", "posture_failing", "denied"]),
  rule: z.string().nullable(),
  reason: z.string(),
}).strict();
/** @see SegmentAccess */
export type SegmentAccess = z.infer<typeof SegmentAccess>;

/** The identity provider a device's user signs in at, as a bundle carries it. */
export const DeviceIdp = z.object({
  name: z.string().max(64),
  kind: z.enum(["oidc", "saml"]),
  /** A string, not z.url(): a URL the edge stored must never make the bundle unreadable. */
  url: z.string().max(2048),
}).strict();
/** @see DeviceIdp */
export type DeviceIdp = z.infer<typeof DeviceIdp>;

/**
 * One healthy edge as a bundle lists it (src/fleet/edge_registry.ts): what a
 * connector needs to measure it (the bootstrap URL's captive-portal probe),
 * to tunnel to it (key and endpoints) and to talk to its API (URL and CA,
 * trusted because the bundle came over the pinned connection of an edge of
 * the same fleet).
 */
export const BundleEdge = z.object({
  id: z.string().max(64),
  name: z.string().max(253),
  region: z.string().max(64),
  publicKey: z.string().max(64),
  endpoints: z.array(
    z.object({
      transport: z.enum(["udp", "tls"]),
      host: z.string().max(253),
      port: z.number().int().min(1).max(65535),
    }).strict(),
  ).min(1).max(8),
  apiUrl: z.string().max(2048),
  bootstrapUrl: z.string().max(2048),
  caPem: z.string().max(16_384),
}).strict();
/** @see BundleEdge */
export type BundleEdge = z.infer<typeof BundleEdge>;

/**
 * The policy bundle a connector receives: its effective app profile plus the
 * pieces it needs locally. `version` is a content hash (the ETag). It holds
 * only the segments that apply to this device (a rule could allow them for
 * its subject), with their standing in `access` — never every segment and
 * rule of the organisation.
 */
export const PolicyBundle = z.object({
  version: z.string(),
  generatedAt: z.string(),
  appProfile: AppProfile,
  postureProfiles: z.array(PostureProfile).default([]),
  segments: z.array(AppSegment).default([]),
  access: z.array(SegmentAccess).default([]),
  clientToClient: ClientToClient.default(ClientToClient.parse({})),
  /** Names under this suffix are resolved by the edge's DNS through the tunnel. */
  edgeDnsDomains: z.array(z.string()).default([]),
  /** The edge DNS server address (inside the tunnel). */
  edgeDns: z.string().optional(),
  /** The edge's web proxy through the tunnel ("tunnel with local proxy" forwards to it). */
  webProxy: z.object({ address: z.string().max(64), port: z.number().int().min(1).max(65535) })
    .strict().nullable().default(null),
  /** This device's PAC file (GET /api/v1/pac) by its SHA-256, so the connector knows when to fetch it; null without the web proxy. */
  pac: z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict().nullable().default(null),
  /**
   * The identity provider the device's user signs in at (null: a machine
   * device, or a local user who signs in at the edge), so the connector's
   * doctor can check that hop: its name, kind and the URL users are sent to
   * (the OIDC issuer, the SAML single sign-on URL).
   */
  identityProvider: DeviceIdp.nullable().default(null),
  /** The SSL inspection CA to trust, when the app profile consents (else null). */
  inspectionCa: z.object({
    pem: z.string().max(16_384),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  }).strict().nullable().default(null),
  /**
   * The healthy edges of the fleet (several edges on one database): the
   * connector tunnels to the nearest (src/policy/edge_selection.ts). Empty
   * from an edge without a registry; the enrolment's edge is used then.
   */
  edges: z.array(BundleEdge).max(64).default([]),
}).strict();
/** @see PolicyBundle */
export type PolicyBundle = z.infer<typeof PolicyBundle>;
