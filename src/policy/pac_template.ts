/**
 * PAC templates: an app profile's own PAC file with device variables, filled
 * in by the edge for each device it serves.
 *
 * A variable is written `${NAME}` anywhere in the template and becomes a
 * JavaScript literal — a JSON string (`${GROUPS}`: a JSON array of strings) —
 * so `return "PROXY " + ${PROXY};` is how a template names the proxy. The
 * value is never spliced into a string the template opened: a hostile host
 * name or group name ends up inside its own quotes and cannot run as script.
 * Unknown names are refused when the template is saved, not when a device
 * fetches it.
 */
import { InputError } from "../errors.ts";

/** Largest PAC template (and rendered PAC) the edge accepts: 64 KiB. */
export const MAX_PAC_TEMPLATE = 64 * 1024;

/** The variables a template may use. */
export const PAC_VARIABLES = ["PROXY", "EDGE", "DEVICE_HOSTNAME", "USER", "GROUPS"] as const;

/** The values for one device. */
export interface PacVariables {
  /** The proxy the device should use, "host:port" (the edge proxy through the tunnel). */
  PROXY: string;
  /** The edge's address inside the tunnel (its DNS and proxy listen there). */
  EDGE: string;
  /** The device's host name as enrolled. */
  DEVICE_HOSTNAME: string;
  /** The signed-in user's name ("" for a machine device). */
  USER: string;
  /** The device's groups (machine group and the user's groups). */
  GROUPS: readonly string[];
}

const VAR_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** The first `${NAME}` in `template` that is not a known variable, or null. */
export function unknownPacVariable(template: string): string | null {
  for (const m of template.matchAll(VAR_RE)) {
    if (!(PAC_VARIABLES as readonly string[]).includes(m[1])) return m[1];
  }
  return null;
}

/** Fills the device's values into `template` as JSON literals; refuses unknown names. */
export function renderPacTemplate(template: string, vars: PacVariables): string {
  const bad = unknownPacVariable(template);
  if (bad !== null) {
    throw new InputError(
      "invalid_pac_template",
      `The PAC template names an unknown variable "\${${bad.slice(0, 40)}}"; known: ${
        PAC_VARIABLES.map((v) => `\${${v}}`).join(", ")
      }`,
    );
  }
  // JSON.stringify escapes quotes, backslashes and control characters; the
  // line and paragraph separators are escaped too (old PAC engines predate ES2019).
  return template.replace(
    VAR_RE,
    (_, name: keyof PacVariables) =>
      JSON.stringify(vars[name]).replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029"),
  );
}
