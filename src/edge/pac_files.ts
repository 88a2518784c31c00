/**
 * PAC files the edge serves to devices (GET /api/v1/pac): the app profile's
 * own template with the device's variables filled in, or, without one, the
 * file generated from its include/exclude lists. PROXY is the edge's web
 * proxy as the device reaches it through the tunnel, so the edge knows the
 * device and user of every request the PAC sends there. With the profile's
 * fail-open setting "direct" the generated file falls back to DIRECT when the
 * proxy cannot be reached; "blocked" keeps it to the proxy.
 *
 * A template is checked when it is saved: size, known variables, and a run
 * in the sandbox (src/proxy/pac_eval.ts) for sample URLs with sample values,
 * which must define FindProxyForURL and return a proxy list. A template that
 * fails is refused with code "invalid_pac_template" and the sandbox's
 * sentence (with the line), and nothing is stored.
 */
import { InputError, NotFoundError } from "../errors.ts";
import { sha256Hex } from "../identity/secrets.ts";
import { generatePac } from "../policy/pac.ts";
import { MAX_PAC_TEMPLATE, type PacVariables, renderPacTemplate } from "../policy/pac_template.ts";
import { AppProfile } from "../policy/types.ts";
import type { AccessSubject } from "../policy/access.ts";
import { evaluatePac } from "../proxy/pac_eval.ts";
import { defaultAppProfile, type PolicyService } from "./policy.ts";

/** Where the device finds the edge. */
export interface PacEdge {
  /** The edge's web proxy through the tunnel (null: the edge runs none, and serves no PAC). */
  webProxy: { address: string; port: number } | null;
  /** The edge's tunnel address. */
  edgeAddress: string;
}

/** The values a template gets for `subject` (null: the admin's preview). */
export function pacVariables(subject: AccessSubject | null, edge: PacEdge): PacVariables {
  const wp = edge.webProxy;
  return {
    PROXY: wp ? `${wp.address.includes(":") ? `[${wp.address}]` : wp.address}:${wp.port}` : "",
    EDGE: edge.edgeAddress,
    DEVICE_HOSTNAME: subject?.deviceName ?? "",
    USER: subject?.user ?? "",
    GROUPS: [...new Set(subject?.groups.map((g) => g.name) ?? [])],
  };
}

/** The PAC text for a device under `profile`, or null when the edge has no web proxy. */
export function renderDevicePac(
  profile: AppProfile,
  subject: AccessSubject | null,
  edge: PacEdge,
): string | null {
  if (!edge.webProxy) return null;
  const vars = pacVariables(subject, edge);
  if (profile.pacTemplate) return renderPacTemplate(profile.pacTemplate, vars);
  return generatePac(profile, {
    proxy: vars.PROXY,
    fallbackDirect: profile.failOpen.edgeUnreachable === "direct",
  });
}

/** The bundle's reference to a PAC text. */
export function pacRef(text: string | null): { sha256: string } | null {
  return text === null ? null : { sha256: sha256Hex(text) };
}

const SAMPLE: PacVariables = {
  PROXY: "100.64.0.1:3128",
  EDGE: "100.64.0.1",
  DEVICE_HOSTNAME: "sample-device",
  USER: "sample.user@example.com",
  GROUPS: ["sample-group"],
};
const SAMPLE_URLS = ["https://www.example.com/", "http://intranet/"];

/**
 * Refuses a template that is too long, names an unknown variable, does not
 * parse, lacks FindProxyForURL, throws, loops, or returns no proxy list for
 * the sample URLs (with sample values for the variables).
 */
export async function checkPacTemplate(template: string, at = "pacTemplate"): Promise<void> {
  if (new TextEncoder().encode(template).length > MAX_PAC_TEMPLATE) {
    throw new InputError(
      "invalid_pac_template",
      `Invalid request: ${at}: the PAC template is longer than ${MAX_PAC_TEMPLATE / 1024} KiB`,
    );
  }
  let text: string;
  try {
    text = renderPacTemplate(template, SAMPLE);
  } catch (e) {
    throw new InputError("invalid_pac_template", `Invalid request: ${at}: ${(e as Error).message}`);
  }
  if (!/\bFindProxyForURL\b/.test(text)) {
    throw new InputError(
      "invalid_pac_template",
      `Invalid request: ${at}: the PAC template defines no function FindProxyForURL(url, host)`,
    );
  }
  for (const url of SAMPLE_URLS) {
    const out = await evaluatePac(text, url, { myIp: "198.51.100.10", timeoutMs: 500 });
    if (!out.ok) {
      const hint = /SyntaxError|expecting|unexpected/i.test(out.error)
        ? ` (variables become quoted literals: write "PROXY " + \${PROXY})`
        : "";
      throw new InputError(
        "invalid_pac_template",
        `Invalid request: ${at}: for ${url}: ${out.error}${
          out.line ? ` at line ${out.line}` : ""
        }${hint}`,
      );
    }
  }
}

/** Checks the templates of an app-profiles body before it is parsed and stored. */
export async function checkPacTemplates(items: unknown): Promise<void> {
  if (!Array.isArray(items)) return;
  const checked = new Set<string>();
  for (const [i, it] of items.entries()) {
    const t = (it as { pacTemplate?: unknown } | null)?.pacTemplate;
    // A template shared by many profiles runs in the sandbox once.
    if (typeof t !== "string" || t.length === 0 || checked.has(t)) continue;
    await checkPacTemplate(t, `items[${i}].pacTemplate`);
    checked.add(t);
  }
}

/** The stored profiles, or the embedded default when none is stored (the one in force). */
function profiles(policy: PolicyService): AppProfile[] {
  const stored = policy.list("app-profiles").map((p) => AppProfile.parse(p));
  return stored.length ? stored : [defaultAppProfile()];
}

/** Every app profile's PAC template (null: none) and the file generated from its lists (null: no web proxy). */
export function pacTemplates(
  policy: PolicyService,
): { profile: string; template: string | null; generated: string | null }[] {
  return profiles(policy).map((p) => {
    const { pacTemplate, ...rest } = p;
    return {
      profile: p.name,
      template: pacTemplate ?? null,
      generated: renderDevicePac(rest, null, policy.pacEdge()),
    };
  });
}

/**
 * Sets (or, with null, removes) the PAC template of app profile `name`,
 * checked first; every other setting of the profile is kept (one revision).
 */
export async function setPacTemplate(
  policy: PolicyService,
  name: string,
  template: string | null,
  actor: string,
): Promise<void> {
  if (!profiles(policy).some((p) => p.name === name)) {
    throw new NotFoundError("not_found", `No app profile named "${name.slice(0, 100)}"`);
  }
  if (template !== null) await checkPacTemplate(template, "template");
  // Read again after the await, so a change made meanwhile is not lost to this one.
  const all = profiles(policy);
  const i = all.findIndex((p) => p.name === name);
  if (i < 0) throw new NotFoundError("not_found", `No app profile named "${name.slice(0, 100)}"`);
  const next = all.map((p, j) => {
    if (j !== i) return p;
    const { pacTemplate: _old, ...rest } = p;
    return template === null ? rest : { ...rest, pacTemplate: template };
  });
  policy.replace("app-profiles", next, actor);
}
