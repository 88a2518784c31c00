/**
 * URL policy: ordered rules over the request's host (exact names, wildcards,
 * category lists), path, method and the user/groups behind the device, each
 * with an action. Pure: compiled once from plain data, then evaluated per
 * request by the proxy engine.
 *
 * Host patterns are typed by admins, so they are never regular expressions:
 * "example.com" is that name only, "*.example.com" the names below it,
 * ".example.com" the name and every name below it. Matching is a suffix
 * walk over labels, linear in the host's length.
 *
 * What the engine does not know yet is `null`: on a TLS connection that is
 * not inspected only the host (SNI or CONNECT target) is known, so a rule
 * with path or method conditions does not match there (it cannot be
 * enforced on what is not seen, and must not block the whole host).
 */
import { z } from "zod";
import { InputError } from "../errors.ts";
import type { AccessSubject } from "../policy/access.ts";

/** What a matching rule does with the request. */
export const URL_ACTIONS = ["allow", "block", "caution", "allow_log"] as const;
/** @see URL_ACTIONS */
export type UrlAction = (typeof URL_ACTIONS)[number];

const HOST_PATTERN =
  /^(?:\*\.|\.)?(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const CATEGORY_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** A host pattern as admins type it: "name", "*.name" or ".name". */
export const HostPattern = z.string().trim().toLowerCase().max(253).refine(
  (h) => HOST_PATTERN.test(h),
  { error: 'expected a host name, "*.name" or ".name"' },
);

/** A category name. */
export const CategoryName = z.string().trim().regex(CATEGORY_NAME, {
  error: "expected a category name",
});

/** One URL rule as the admin writes it (order = position in the list). */
export const UrlRule = z.object({
  name: z.string().trim().min(1).max(100),
  enabled: z.boolean().default(true),
  /** Host patterns; with categories, empty = any host. */
  hosts: z.array(HostPattern).max(1000).default([]),
  categories: z.array(CategoryName).max(100).default([]),
  /** Path prefixes ("/admin"); empty = any path. */
  paths: z.array(
    z.string().max(2048).refine((p) => p.startsWith("/"), { error: 'expected a path from "/"' }),
  ).max(100).default([]),
  /** HTTP methods; empty = any. */
  methods: z.array(
    z.string().trim().toUpperCase().regex(/^[A-Z]{1,20}$/, { error: "expected an HTTP method" }),
  ).max(20).default([]),
  /** User names; with groups, empty = anyone. */
  users: z.array(z.string().trim().min(1).max(256)).max(1000).default([]),
  groups: z.array(z.string().trim().min(1).max(256)).max(1000).default([]),
  action: z.enum(URL_ACTIONS),
}).strict();
/** @see UrlRule */
export type UrlRule = z.infer<typeof UrlRule>;

/** Category name → domains (each matches itself and the names below it). */
export type CategoryLists = ReadonlyMap<string, readonly string[]>;

/** The request as the policy sees it. */
export interface UrlRequest {
  host: string;
  /** Null when not seen (TLS not inspected). */
  path: string | null;
  method: string | null;
  subject: Pick<AccessSubject, "user" | "groups"> | null;
}

/** The verdict and the rule that gave it. */
export interface UrlVerdict {
  action: UrlAction;
  /** Null: no rule matched (default allow). */
  rule: string | null;
  /** The categories of the host (for the log), in name order. */
  categories: string[];
}

interface CompiledRule {
  rule: UrlRule;
  exact: Set<string>;
  /** "*.d": names strictly below d. */
  below: Set<string>;
  /** ".d": d and the names below it. */
  andBelow: Set<string>;
  categories: Set<string>;
  users: Set<string>;
  groups: Set<string>;
}

/** Lower-cases a host and drops a trailing dot and a port-less IPv6 bracket. */
export function normaliseHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.endsWith(".")) h = h.slice(0, -1);
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  return h;
}

/** True when `host` is `domain` or a name below it. */
export function inDomain(host: string, domain: string): boolean {
  return host === domain || (host.length > domain.length && host.endsWith(domain) &&
    host[host.length - domain.length - 1] === ".");
}

/**
 * Calls `each` with `host`'s parent domains, nearest first ("a.b.c": "b.c",
 * then "c"); stops when it returns true. With `self`, `host` itself first.
 * Lookups by suffix make a match cost the host's labels, not the size of
 * the lists (a category list may hold a million domains).
 */
function someSuffix(host: string, self: boolean, each: (d: string) => boolean): boolean {
  if (self && each(host)) return true;
  for (let i = host.indexOf("."); i >= 0; i = host.indexOf(".", i + 1)) {
    if (each(host.slice(i + 1))) return true;
  }
  return false;
}

/** An immutable, compiled URL policy. */
export class UrlPolicy {
  readonly rules: readonly UrlRule[];
  readonly #compiled: CompiledRule[];
  /** Category names, sorted. */
  readonly #names: string[];
  /** Every listed domain, with the categories listing it. */
  readonly #byDomain = new Map<string, string[]>();

  /** Compiles rules (already validated) against category lists; unknown categories are refused. */
  constructor(rules: readonly UrlRule[], categories: CategoryLists) {
    this.rules = rules;
    this.#names = [...categories.keys()].sort((a, b) => a.localeCompare(b));
    for (const name of this.#names) {
      for (const d of categories.get(name)!) {
        const list = this.#byDomain.get(d);
        if (!list) this.#byDomain.set(d, [name]);
        else if (!list.includes(name)) list.push(name);
      }
    }
    this.#compiled = rules.map((rule) => {
      for (const c of rule.categories) {
        if (!categories.has(c)) {
          throw new InputError(
            "unknown_category",
            `Cannot use URL rule "${rule.name}": category "${c}" does not exist (known: ${
              [...categories.keys()].sort().join(", ") || "none"
            })`,
          );
        }
      }
      const exact = new Set<string>(), below = new Set<string>(), andBelow = new Set<string>();
      for (const h of rule.hosts) {
        if (h.startsWith("*.")) below.add(h.slice(2));
        else if (h.startsWith(".")) andBelow.add(h.slice(1));
        else exact.add(h);
      }
      return {
        rule,
        exact,
        below,
        andBelow,
        categories: new Set(rule.categories),
        users: new Set(rule.users.map((u) => u.toLowerCase())),
        groups: new Set(rule.groups),
      };
    });
  }

  /** The categories `host` belongs to (sorted by name). */
  categoriesOf(host: string): string[] {
    const h = normaliseHost(host);
    let found: Set<string> | null = null;
    someSuffix(h, true, (d) => {
      const cs = this.#byDomain.get(d);
      if (cs) { for (const c of cs) (found ??= new Set()).add(c); }
      return false;
    });
    const hit = found as Set<string> | null;
    return hit ? this.#names.filter((n) => hit.has(n)) : [];
  }

  /** The first enabled rule that matches decides; none: allow. */
  evaluate(req: UrlRequest): UrlVerdict {
    const host = normaliseHost(req.host);
    const categories = this.categoriesOf(host);
    for (const c of this.#compiled) {
      if (!c.rule.enabled) continue;
      if (!this.#hostMatches(c, host, categories)) continue;
      if (c.rule.paths.length) {
        if (req.path === null || !c.rule.paths.some((p) => req.path!.startsWith(p))) continue;
      }
      if (c.rule.methods.length) {
        if (req.method === null || !c.rule.methods.includes(req.method.toUpperCase())) continue;
      }
      if (c.users.size || c.groups.size) {
        const s = req.subject;
        const userHit = s?.user != null && c.users.has(s.user.toLowerCase());
        const groupHit = s?.groups.some((g) => c.groups.has(g.name)) ?? false;
        if (!userHit && !groupHit) continue;
      }
      return { action: c.rule.action, rule: c.rule.name, categories };
    }
    return { action: "allow", rule: null, categories };
  }

  #hostMatches(c: CompiledRule, host: string, categories: string[]): boolean {
    if (!c.exact.size && !c.below.size && !c.andBelow.size && !c.categories.size) return true;
    if (c.exact.has(host)) return true;
    if (c.below.size && someSuffix(host, false, (d) => c.below.has(d))) return true;
    if (c.andBelow.size && someSuffix(host, true, (d) => c.andBelow.has(d))) return true;
    return categories.some((n) => c.categories.has(n));
  }
}

/** Parses a category list file: one domain a line, "#" comments, blank lines ignored. */
export function parseCategoryList(name: string, text: string): string[] {
  const out: string[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*$/, "").trim().toLowerCase().replace(/^\./, "");
    if (!line) return;
    if (!HOST_PATTERN.test(line) || line.startsWith("*")) {
      throw new InputError(
        "invalid_category",
        `Cannot read category "${name}": line ${i + 1} "${line.slice(0, 80)}" is not a domain`,
      );
    }
    out.push(line);
  });
  return out;
}

/** True when `name` is a valid category name. */
export function isCategoryName(name: string): boolean {
  return CATEGORY_NAME.test(name);
}
