/**
 * The program's version, and the one way Portcullis compares versions.
 *
 * VERSION is the single source: `portcullis version`, the usage text, the
 * version a connector reports at enrolment, the consoles' footers, the
 * OpenAPI document and the fleet dashboard's "current release" all read it.
 * A test keeps it equal to deno.json's "version".
 *
 * compareVersions serves both our own releases (semantic versions: the
 * connector_version posture check, the fleet dashboard) and the versions an
 * operating system reports (the os_version posture check), so it reads:
 *
 * - an optional "v"/"V" prefix: "v1.2.0" is 1.2.0;
 * - a dotted numeric core of any length, compared number by number, with
 *   missing parts counting as 0: "12" = "12.0.0", "22.04" > "22.3",
 *   "1.10.0" > "1.9.3";
 * - a "-" suffix that names a pre-release — its first identifier starts with
 *   alpha, beta, rc, pre, preview, dev, canary, nightly or snapshot (any
 *   case) — sorts before the release and is compared with another
 *   pre-release per SemVer 2.0 §11: dot-separated identifiers, numeric ones
 *   numerically, others in ASCII order, numeric before alphanumeric, a
 *   shorter list first when all before are equal (1.2.0-rc.2 < 1.2.0-rc.10,
 *   1.2.0-alpha < 1.2.0-alpha.1 < 1.2.0-beta < 1.2.0-rc1 < 1.2.0);
 * - any other "-" suffix is a distribution's build or packaging tag and is
 *   ignored: "6.1.0-13-amd64" (Debian's kernel) is 6.1.0, as are
 *   "6.1.0-arch1-1" and "6.1.0-300.fc39.x86_64". (So is SemVer's rare purely
 *   numeric pre-release "1.0.0-0.3.7": the kernel case matters more.)
 * - "+build" metadata is ignored (SemVer §10).
 *
 * Anything else ("abc", "1..2", "") is not a version: compareVersions
 * returns null and each caller says what that means.
 */

/** The version of this Portcullis build (equal to deno.json's "version"). */
export const VERSION = "0.1.0";

/** A parsed version: the numeric core and the pre-release identifiers (empty for a release). */
export interface ParsedVersion {
  core: number[];
  pre: string[];
}

const SHAPE = /^[vV]?(\d{1,15}(?:\.\d{1,15})*)(?:-([0-9A-Za-z._-]+))?(?:\+[0-9A-Za-z._-]+)?$/;
const PRE_RELEASE = /^(alpha|beta|rc|pre|preview|dev|canary|nightly|snapshot)/i;

/** Parses a version as described above; null when `text` is not one. */
export function parseVersion(text: string): ParsedVersion | null {
  const m = SHAPE.exec(text.trim());
  if (!m) return null;
  const suffix = m[2];
  const pre = suffix && PRE_RELEASE.test(suffix) ? suffix.split(".") : [];
  if (pre.some((id) => id === "")) return null; // "1.0.0-rc..1"
  return { core: m[1].split(".").map(Number), pre };
}

/** -1, 0 or 1 as `a` is older than, the same as, or newer than `b`; null when either is not a version. */
export function compareVersions(a: string, b: string): -1 | 0 | 1 | null {
  const x = parseVersion(a), y = parseVersion(b);
  if (!x || !y) return null;
  for (let i = 0; i < Math.max(x.core.length, y.core.length); i++) {
    const d = (x.core[i] ?? 0) - (y.core[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return comparePreRelease(x.pre, y.pre);
}

/** SemVer §11 on pre-release identifiers; an empty list is the release, after every pre-release. */
function comparePreRelease(p: string[], q: string[]): -1 | 0 | 1 {
  if (p.length === 0 || q.length === 0) {
    return p.length === q.length ? 0 : p.length === 0 ? 1 : -1;
  }
  for (let i = 0; i < Math.max(p.length, q.length); i++) {
    const a = p[i], b = q[i];
    if (a === undefined) return -1;
    if (b === undefined) return 1;
    const an = /^\d+$/.test(a), bn = /^\d+$/.test(b);
    if (an && bn) {
      const d = Number(a) - Number(b);
      if (d !== 0) return d < 0 ? -1 : 1;
    } else if (an !== bn) {
      return an ? -1 : 1;
    } else if (a !== b) {
      return a < b ? -1 : 1;
    }
  }
  return 0;
}
