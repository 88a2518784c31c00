/**
 * Policy distribution: the admin's policy objects (validated with the zod
 * schemas of src/policy/types.ts) become one PolicyBundle per device, and
 * segments and rules compile into one immutable access policy per revision
 * (the value enforcement swaps in). The bundle's version is a content hash,
 * used as the ETag, so a connector that already holds it gets a 304 and a
 * change anywhere shows as a new version. Bundles are cached per device; a
 * PUT bumps the revision, clears the cache and publishes `policy_updated`,
 * which wakes the long-polls and event streams.
 */
import { z } from "zod";
import type { Clock } from "../clock.ts";
import { InputError } from "../errors.ts";
import { sha256Hex } from "../identity/secrets.ts";
import type { Notifier } from "../notify/mod.ts";
import {
  AccessRule,
  AppProfile,
  AppSegment,
  type BundleEdge,
  ClientToClient,
  ForwardingProfile,
  type PolicyBundle,
  PostureProfile,
} from "../policy/types.ts";
import type { IdentityProviderRecord, PolicyKind, Store } from "../store/mod.ts";
import {
  type AccessSubject,
  compileAccessPolicy,
  type CompiledAccess,
  type PostureStates,
} from "../policy/access.ts";
import type { PostureSource } from "./access/posture_source.ts";
import { subjectFor, subjectOf } from "./subjects.ts";
import { deviceIdp, lookupDeviceIdp } from "./device_idp.ts";
import { rejudgeRegistrations } from "./c2c.ts";
import { compileHostnameRegex } from "../policy/hostname_regex.ts";
import { type PacEdge, pacRef, renderDevicePac } from "./pac_files.ts";

export { compileHostnameRegex, MAX_REGEX_LENGTH } from "../policy/hostname_regex.ts";

/** Admin-editable policy collections: URL segment → kind and schema. */
export const POLICY_COLLECTIONS = {
  "app-profiles": { kind: "app_profile", schema: AppProfile },
  "forwarding-profiles": { kind: "forwarding_profile", schema: ForwardingProfile },
  "posture-profiles": { kind: "posture_profile", schema: PostureProfile },
  "segments": { kind: "segment", schema: AppSegment },
  "access-rules": { kind: "access_rule", schema: AccessRule },
} as const satisfies Record<string, { kind: PolicyKind; schema: z.ZodType<{ name: string }> }>;

/** URL segment of a policy collection. */
export type PolicyCollection = keyof typeof POLICY_COLLECTIONS;

/** The embedded default app profile used when the admin has configured none. */
export function defaultAppProfile(): AppProfile {
  return AppProfile.parse({ name: "default", forwarding: { name: "default" } });
}

const REVISION_KEY = "policy_revision";

/** Most items per collection (segments and rules are sized for large organisations). */
export const COLLECTION_LIMITS: Record<PolicyCollection, number> = {
  "app-profiles": 500,
  "forwarding-profiles": 500,
  "posture-profiles": 500,
  "segments": 10_000,
  "access-rules": 1_000,
};

/** A compiled access policy and the revision it was compiled from. */
export interface CompiledPolicy {
  revision: number;
  access: CompiledAccess;
  segments: readonly AppSegment[];
}

/**
 * What every bundle of one revision shares, read and parsed once: a policy
 * change wakes every connected device's stream at once, and on PostgreSQL
 * each re-read is a round trip that blocks the event loop (1,000 devices
 * times four lists was most of the fan-out's time in bench:fleet).
 */
interface RevisionPolicy extends CompiledPolicy {
  /** App profiles by rule order. */
  appProfiles: readonly AppProfile[];
  rules: readonly AccessRule[];
  postureProfiles: readonly PostureProfile[];
  clientToClient: ClientToClient;
}

/** Builds, caches and versions policy bundles; applies admin changes. */
export class PolicyService {
  #cache = new Map<string, { bundle: PolicyBundle; validUntil: number; idpStamp?: string }>();
  #cacheRevision = -1;
  #compiled: RevisionPolicy | null = null;
  readonly #posture: PostureSource | null;

  constructor(
    private store: Store,
    private clock: Clock,
    private notifier: Notifier,
    private opts: {
      edgeAddress: string;
      posture?: PostureSource;
      /** The SSL inspection CA bundles carry when the app profile consents. */
      inspectionCa?: { certPem: string; sha256: string } | null;
      /** The edge's web proxy as devices reach it through the tunnel (null: none). */
      webProxy?: { address: string; port: number } | null;
      /** The healthy edges of the fleet, listed in every bundle (call `edgesChanged` on a change). */
      edges?: () => readonly BundleEdge[];
    },
  ) {
    this.#posture = opts.posture ?? null;
    // A device's bundle carries its segment standings, which follow its posture.
    this.#posture?.onChange((id) => this.#cache.delete(id));
  }

  /** The access policy compiled from the current revision (compiled once per revision). */
  compiled(): CompiledPolicy {
    return this.#at(this.revision());
  }

  /** The policy of revision `rev` (the current one, just read), read once per revision. */
  #at(rev: number): RevisionPolicy {
    if (this.#compiled?.revision === rev) return this.#compiled;
    const list = (kind: PolicyKind) => this.store.policy.list(kind);
    const segments = list("segment").map((s) => AppSegment.parse(s));
    const rules = list("access_rule").map((r) => AccessRule.parse(r));
    const [c2c] = list("client_to_client");
    this.#compiled = {
      revision: rev,
      access: compileAccessPolicy(segments, rules),
      segments,
      rules,
      appProfiles: list("app_profile").map((p) => AppProfile.parse(p))
        .sort((a, b) => a.ruleOrder - b.ruleOrder),
      postureProfiles: list("posture_profile").map((p) => PostureProfile.parse(p)),
      clientToClient: ClientToClient.parse(c2c ?? {}),
    };
    return this.#compiled;
  }

  /** The fleet's healthy edges changed: every bundle lists them, so every bundle is built again. */
  edgesChanged(): void {
    this.#cache.clear();
  }

  /** Forgets the cached bundle of a device (its subject changed, e.g. re-enrolled). */
  forgetDevice(deviceId: string): void {
    this.#cache.delete(deviceId);
  }

  /** The current revision counter (bumped by every change). */
  revision(): number {
    return Number(this.store.settings.get(REVISION_KEY) ?? "0");
  }

  /** The stored objects of a collection. */
  list(collection: PolicyCollection): unknown[] {
    return this.store.policy.list(POLICY_COLLECTIONS[collection].kind);
  }

  /**
   * The clock skew (s) the edge allows when it validates sign-in tokens and
   * assertions: the tolerance of the app profile a device without a group
   * gets, since the user's groups are known only once validation passed.
   */
  signInClockSkewSec(): number {
    return this.bundleFor(null).appProfile.clockSkewToleranceSec;
  }

  /**
   * How long a new sign-in token may wait to be used (ms): the default
   * profile's `signInLifetimeHours`, since no device is known yet. Once the
   * token is bound to a device, the device's own profile decides how long
   * the sign-in lasts there (signin_lapse.ts).
   */
  signInLifetimeMs(): number {
    return this.bundleFor(null).appProfile.signInLifetimeHours * 3600_000;
  }

  /** The client-to-client settings (defaults when unset). */
  clientToClient(): ClientToClient {
    const [c] = this.store.policy.list("client_to_client");
    return ClientToClient.parse(c ?? {});
  }

  /** Validates and replaces a whole collection; returns the stored objects. */
  replace(collection: PolicyCollection, body: unknown, actor: string): unknown[] {
    const { kind, schema } = POLICY_COLLECTIONS[collection];
    const items = z.array(schema as z.ZodType<{ name: string }>).max(COLLECTION_LIMITS[collection])
      .parse(body);
    if (collection === "app-profiles" || collection === "forwarding-profiles") {
      for (const [i, it] of items.entries()) {
        const fp = collection === "app-profiles"
          ? (it as AppProfile).forwarding
          : it as ForwardingProfile;
        const at = collection === "app-profiles" ? `[${i}].forwarding.actions` : `[${i}].actions`;
        refuseUnbuiltActions(fp, at, this.opts.webProxy != null);
      }
    }
    const seen = new Set<string>();
    for (const [i, it] of items.entries()) {
      if (seen.has(it.name)) {
        throw new InputError(
          "invalid_request",
          `Invalid request: [${i}].name: duplicate name "${it.name}"`,
        );
      }
      seen.add(it.name);
    }
    if (collection === "segments" || collection === "access-rules") {
      // Compile the would-be policy now, so a bad one is refused before it is stored.
      const segs = collection === "segments" ? items as AppSegment[] : this.compiled().segments;
      const rules = collection === "access-rules"
        ? items as AccessRule[]
        : this.store.policy.list("access_rule").map((r) => AccessRule.parse(r));
      compileAccessPolicy(segs, rules);
    }
    this.#commit(kind, items.map((it) => ({ name: it.name, body: it })), actor);
    return items;
  }

  /** Validates and replaces the client-to-client settings. */
  replaceClientToClient(body: unknown, actor: string): ClientToClient {
    const c = ClientToClient.parse(body);
    compileHostnameRegex(c.hostnameRegex);
    // Registrations are judged again under the new settings in the same transaction.
    this.#commit("client_to_client", [{ name: "default", body: c }], actor, () => {
      rejudgeRegistrations(this.store, c);
    });
    return c;
  }

  #commit(
    kind: PolicyKind,
    items: { name: string; body: unknown }[],
    actor: string,
    also?: () => void,
  ): void {
    const now = this.clock.now();
    const revision = this.store.transaction(() => {
      const next = this.revision() + 1;
      this.store.policy.replace(kind, items, now);
      also?.();
      this.store.settings.set(REVISION_KEY, String(next));
      this.store.audit.insert({
        at: now,
        actor,
        action: "policy.update",
        target: kind,
        detail: { revision: next, count: items.length },
      });
      return next;
    });
    this.#cache.clear();
    // The edge judges posture itself: new profiles mean new results for every device.
    if (kind === "posture_profile") this.#posture?.profilesChanged?.();
    this.notifier.publish({ kind: "policy_updated", revision, objectKind: kind, by: actor });
  }

  /**
   * The bundle for one device: its app profile (by its group), and only the
   * segments a rule could allow for its subject, with their standing under
   * its current posture. Cached per device until the revision, the device's
   * posture or its subject changes, or a posture result it used expires.
   */
  bundleForDevice(deviceId: string): PolicyBundle {
    const rev = this.#checkRevision();
    const hit = this.#cache.get(deviceId);
    const now = this.clock.now();
    const device = this.store.devices.byId(deviceId) ?? null;
    const idp = lookupDeviceIdp(this.store, device?.user ?? null);
    if (hit && now < hit.validUntil && hit.idpStamp === idp.stamp) return hit.bundle;
    const subject = device ? subjectOf(device, idp.user) : null;
    const posture = this.#posture?.profiles(deviceId) ?? new Map();
    let validUntil = Infinity;
    for (const p of posture.values()) {
      if (p.expiresAt > now) validUntil = Math.min(validUntil, p.expiresAt);
    }
    const bundle = this.#build(
      rev,
      subject?.groups.find((g) => g.source === "machine")?.name ?? null,
      {
        subject,
        posture,
        now,
        idp: idp.provider,
      },
    );
    this.#cache.set(deviceId, { bundle, validUntil, idpStamp: idp.stamp });
    return bundle;
  }

  /**
   * Which app profile a device of machine group `group` (null = none) gets
   * under the current revision, read once: for a pass over the whole fleet,
   * where a bundle per device would read the device, its user, its IdP and
   * its posture from the store for each one.
   */
  appProfiles(): (group: string | null) => AppProfile {
    const profiles = this.#at(this.#checkRevision()).appProfiles;
    return (group) => pickAppProfile(profiles, group);
  }

  /**
   * A preview for the admin: the bundle a machine device in `group` (null =
   * none) with no posture results would get.
   */
  bundleFor(group: string | null): PolicyBundle {
    const rev = this.#checkRevision();
    const key = `\u0000group:${group ?? ""}`;
    const hit = this.#cache.get(key);
    if (hit) return hit.bundle;
    const bundle = this.#build(rev, group, {
      subject: previewSubject(group),
      posture: new Map(),
      now: this.clock.now(),
    });
    this.#cache.set(key, { bundle, validUntil: Infinity });
    return bundle;
  }

  /**
   * The PAC file device `deviceId` is served (GET /api/v1/pac): the same
   * text whose hash its bundle carries; null without the web proxy.
   */
  pacForDevice(deviceId: string): string | null {
    const bundle = this.bundleForDevice(deviceId);
    return this.#pac(bundle.appProfile, subjectFor(this.store, deviceId));
  }

  /** The PAC file a machine device in `group` would get (the admin's preview). */
  pacForGroup(group: string | null): string | null {
    return this.#pac(this.bundleFor(group).appProfile, previewSubject(group));
  }

  /** Where devices find the edge's proxy and tunnel address (the PAC variables' source). */
  pacEdge(): PacEdge {
    return { webProxy: this.opts.webProxy ?? null, edgeAddress: this.opts.edgeAddress };
  }

  #pac(profile: AppProfile, subject: AccessSubject | null): string | null {
    return renderDevicePac(profile, subject, this.pacEdge());
  }

  /** Reads the revision once; a new one empties the bundle cache. Returns it. */
  #checkRevision(): number {
    const rev = this.revision();
    if (rev !== this.#cacheRevision) {
      this.#cache.clear();
      this.#cacheRevision = rev;
    }
    return rev;
  }

  #build(
    rev: number,
    group: string | null,
    who: {
      subject: AccessSubject | null;
      posture: PostureStates;
      now: number;
      /** The identity provider of the device's user (lookupDeviceIdp), if any. */
      idp?: IdentityProviderRecord | null;
    },
  ): PolicyBundle {
    const policy = this.#at(rev);
    const appProfile = pickAppProfile(policy.appProfiles, group);
    const { access: compiled, segments: all } = policy;
    const standings = who.subject ? compiled.standings(who.subject, who.posture, who.now) : [];
    const applies = standings.filter((s) => s.state !== "denied");
    // The profiles this device must report on: its app profile's, and those the
    // rules deciding its segments need (and no other rule's).
    const deciding = new Set(applies.map((s) => s.rule));
    const needed = new Set(appProfile.postureProfiles);
    for (const r of policy.rules) {
      if (deciding.has(r.name)) { for (const p of r.postureProfiles) needed.add(p); }
    }
    const posture = policy.postureProfiles.filter((p) => needed.has(p.name));
    const names = new Set(applies.map((s) => s.segment));
    const segments = all.filter((s) => names.has(s.name));
    const c2c = policy.clientToClient;
    const content = {
      appProfile,
      postureProfiles: posture,
      segments,
      access: applies,
      clientToClient: c2c,
      // Names the edge answers (the "am I protected" name, client-to-client
      // names, private app domains) are resolved through the tunnel.
      edgeDnsDomains: [
        ...new Set([
          "portcullis.internal",
          ...(c2c.enabled ? [c2c.domain] : []),
          ...segments.flatMap((s) => s.domains.map((d) => d.replace(/^\*\./, ""))),
        ]),
      ],
      edgeDns: this.opts.edgeAddress,
      webProxy: this.opts.webProxy ?? null,
      pac: pacRef(this.#pac(appProfile, who.subject)),
      identityProvider: deviceIdp(who.idp ?? null),
      inspectionCa: appProfile.installInspectionCa && this.opts.inspectionCa
        ? { pem: this.opts.inspectionCa.certPem, sha256: this.opts.inspectionCa.sha256 }
        : null,
      edges: [...(this.opts.edges?.() ?? [])],
    };
    const version = sha256Hex(JSON.stringify(content)).slice(0, 32);
    return { version, generatedAt: new Date(this.clock.now()).toISOString(), ...content };
  }
}

/** The first profile (in rule order) for every group or naming `group`; the default when none is. */
function pickAppProfile(profiles: readonly AppProfile[], group: string | null): AppProfile {
  return profiles.find((p) =>
    p.groups.length === 0 || (group !== null && p.groups.includes(group))
  ) ?? defaultAppProfile();
}

/** The subject of an admin's preview: a machine device of `group` with no posture results. */
function previewSubject(group: string | null): AccessSubject {
  return {
    deviceId: "",
    deviceName: "(preview)",
    user: null,
    groups: group === null ? [] : [{ name: group, source: "machine" }],
    machine: true,
  };
}

/** Forwarding actions the connector does not implement yet (none left since issue 12). */
export const UNBUILT_ACTIONS: ReadonlySet<string> = new Set<string>();

/** Forwarding actions that send the device's web traffic to the edge's web proxy. */
const NEEDS_WEB_PROXY: ReadonlySet<string> = new Set(["tunnel_local_proxy", "enforce_pac"]);

/**
 * Refuses forwarding actions that cannot be carried out: "tunnel_local_proxy"
 * and "enforce_pac" need the edge's web proxy (`webProxyPort`). A connector
 * given either without it would otherwise fall back to a full tunnel (or
 * send its PAC's traffic nowhere) without saying so, which is not what the
 * admin asked for.
 */
export function refuseUnbuiltActions(fp: ForwardingProfile, at: string, webProxy = false): void {
  for (const [network, action] of Object.entries(fp.actions)) {
    if (NEEDS_WEB_PROXY.has(action) && !webProxy) {
      throw new InputError(
        "unsupported_forwarding_action",
        `Invalid request: items${at}.${network}: forwarding action "${action}" needs the edge's web proxy (start the edge with --web-proxy-port); use "tunnel" or "none"`,
      );
    }
    if (UNBUILT_ACTIONS.has(action)) {
      throw new InputError(
        "unsupported_forwarding_action",
        `Invalid request: items${at}.${network}: forwarding action "${action}" is not available yet; use "tunnel" or "none"`,
      );
    }
  }
}

export { dnsNameProblem } from "./c2c.ts";
