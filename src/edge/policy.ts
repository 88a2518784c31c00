/**
 * Policy distribution: the admin's policy objects (validated with the zod
 * schemas of src/policy/types.ts) become one PolicyBundle per device group.
 * The bundle's version is a content hash, used as the ETag, so a connector
 * that already holds it gets a 304 and a change anywhere shows as a new
 * version. Bundles are cached per group and revision; a PUT bumps the
 * revision, clears the cache and publishes `policy_updated`, which wakes the
 * long-polls and event streams.
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
  ClientToClient,
  ForwardingProfile,
  PolicyBundle,
  PostureProfile,
} from "../policy/types.ts";
import type { PolicyKind, Store } from "../store/mod.ts";
import { compileHostnameRegex } from "../policy/hostname_regex.ts";

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

/** Builds, caches and versions policy bundles; applies admin changes. */
export class PolicyService {
  #cache = new Map<string, PolicyBundle>();
  #cacheRevision = -1;

  constructor(
    private store: Store,
    private clock: Clock,
    private notifier: Notifier,
    private opts: { edgeAddress: string },
  ) {}

  /** The current revision counter (bumped by every change). */
  revision(): number {
    return Number(this.store.settings.get(REVISION_KEY) ?? "0");
  }

  /** The stored objects of a collection. */
  list(collection: PolicyCollection): unknown[] {
    return this.store.policy.list(POLICY_COLLECTIONS[collection].kind);
  }

  /** The client-to-client settings (defaults when unset). */
  clientToClient(): ClientToClient {
    const [c] = this.store.policy.list("client_to_client");
    return ClientToClient.parse(c ?? {});
  }

  /** Validates and replaces a whole collection; returns the stored objects. */
  replace(collection: PolicyCollection, body: unknown, actor: string): unknown[] {
    const { kind, schema } = POLICY_COLLECTIONS[collection];
    const items = z.array(schema as z.ZodType<{ name: string }>).max(500).parse(body);
    if (collection === "app-profiles" || collection === "forwarding-profiles") {
      for (const [i, it] of items.entries()) {
        const fp = collection === "app-profiles"
          ? (it as AppProfile).forwarding
          : it as ForwardingProfile;
        const at = collection === "app-profiles" ? `[${i}].forwarding.actions` : `[${i}].actions`;
        refuseUnbuiltActions(fp, at);
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
    this.#commit(kind, items.map((it) => ({ name: it.name, body: it })), actor);
    return items;
  }

  /** Validates and replaces the client-to-client settings. */
  replaceClientToClient(body: unknown, actor: string): ClientToClient {
    const c = ClientToClient.parse(body);
    compileHostnameRegex(c.hostnameRegex);
    this.#commit("client_to_client", [{ name: "default", body: c }], actor);
    return c;
  }

  #commit(kind: PolicyKind, items: { name: string; body: unknown }[], actor: string): void {
    const now = this.clock.now();
    const revision = this.store.transaction(() => {
      const next = this.revision() + 1;
      this.store.policy.replace(kind, items, now);
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
    this.notifier.publish({ kind: "policy_updated", revision, objectKind: kind, by: actor });
  }

  /** The bundle for a device in `group` (null = no group). */
  bundleFor(group: string | null): PolicyBundle {
    const rev = this.revision();
    if (rev !== this.#cacheRevision) {
      this.#cache.clear();
      this.#cacheRevision = rev;
    }
    const cacheKey = group ?? "\u0000";
    const hit = this.#cache.get(cacheKey);
    if (hit) return hit;
    const bundle = this.#build(group);
    this.#cache.set(cacheKey, bundle);
    return bundle;
  }

  #build(group: string | null): PolicyBundle {
    const profiles = this.store.policy.list("app_profile").map((p) => AppProfile.parse(p))
      .sort((a, b) => a.ruleOrder - b.ruleOrder);
    const appProfile =
      profiles.find((p) => p.groups.length === 0 || (group !== null && p.groups.includes(group))) ??
        defaultAppProfile();
    const posture = this.store.policy.list("posture_profile").map((p) => PostureProfile.parse(p))
      .filter((p) => appProfile.postureProfiles.includes(p.name));
    const segments = this.store.policy.list("segment").map((s) => AppSegment.parse(s));
    const c2c = this.clientToClient();
    const content = {
      appProfile,
      postureProfiles: posture,
      segments,
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
    };
    const version = sha256Hex(JSON.stringify(content)).slice(0, 32);
    return PolicyBundle.parse({
      version,
      generatedAt: new Date(this.clock.now()).toISOString(),
      ...content,
    });
  }
}

/** Forwarding actions the connector does not implement yet (issue 12 builds them). */
export const UNBUILT_ACTIONS: ReadonlySet<string> = new Set(["enforce_pac", "tunnel_local_proxy"]);

/**
 * Refuses forwarding actions that are not built yet: a connector given
 * "enforce_pac" or "tunnel_local_proxy" would otherwise fall back to a full
 * tunnel without saying so, which is not what the admin asked for.
 */
export function refuseUnbuiltActions(fp: ForwardingProfile, at: string): void {
  for (const [network, action] of Object.entries(fp.actions)) {
    if (UNBUILT_ACTIONS.has(action)) {
      throw new InputError(
        "unsupported_forwarding_action",
        `Invalid request: items${at}.${network}: forwarding action "${action}" is not available yet; use "tunnel" or "none"`,
      );
    }
  }
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** Checks that `fqdn` is a valid DNS name; returns the reason it is not, or null. */
export function dnsNameProblem(fqdn: string): string | null {
  const name = fqdn.endsWith(".") ? fqdn.slice(0, -1) : fqdn;
  if (name.length === 0 || name.length > 253) return "a DNS name has 1 to 253 characters";
  const labels = name.split(".");
  if (labels.length < 2) return "a fully qualified name has at least two labels";
  for (const l of labels) {
    if (!LABEL.test(l)) {
      return `label "${
        l.slice(0, 63)
      }" is not a valid DNS label (letters, digits and inner hyphens, 1 to 63 characters)`;
    }
  }
  return null;
}
