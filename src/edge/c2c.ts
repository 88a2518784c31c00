/**
 * Client-to-client registrations: whether a device's FQDN may be used to
 * reach it. A name is valid when it is a DNS name, client-to-client is on,
 * it matches the host-name pattern (RE2, linear time) and no other device
 * holds it validly. The edge judges names when a device registers and again
 * for every registration when the settings change, so "valid" always means
 * "valid under the current pattern".
 */
import type { HostnameMatcher } from "../policy/hostname_regex.ts";
import { compileHostnameRegex } from "../policy/hostname_regex.ts";
import type { ClientToClient } from "../policy/types.ts";
import type { Store } from "../store/mod.ts";

/** A judged name. */
export interface C2cJudgement {
  fqdn: string;
  valid: boolean;
  reason: string;
}

/** Judges `raw` for device `deviceId` under `settings` (compiled `matcher`). */
export function judgeC2cName(
  store: Store,
  settings: ClientToClient,
  matcher: HostnameMatcher,
  deviceId: string,
  raw: string,
): C2cJudgement {
  const fqdn = raw.toLowerCase().replace(/\.$/, "");
  let reason = "";
  const problem = dnsNameProblem(raw);
  if (problem) reason = `"${raw.slice(0, 253)}" is not a valid DNS name: ${problem}`;
  else if (!settings.enabled) reason = "Client-to-client is disabled on this edge";
  else if (!matcher.test(fqdn)) {
    reason = `"${fqdn}" does not match the configured hostname pattern ${settings.hostnameRegex}`;
  } else {
    const owner = store.c2c.validOwner(fqdn);
    if (owner !== null && owner !== deviceId) {
      reason = `"${fqdn}" is already registered by another device`;
    }
  }
  const valid = reason === "";
  return { fqdn, valid, reason: valid ? `"${fqdn}" matches ${settings.hostnameRegex}` : reason };
}

/**
 * Judges every stored registration again under new settings (call inside
 * the transaction that stores them); returns how many changed validity.
 */
export function rejudgeRegistrations(store: Store, settings: ClientToClient): number {
  const matcher = compileHostnameRegex(settings.hostnameRegex);
  let changed = 0;
  const regs = store.c2c.list().sort((a, b) => a.registeredAt - b.registeredAt);
  // Invalidate first, so an earlier registrant keeps a name a later one also asked for.
  for (const r of regs) if (r.valid) store.c2c.upsert({ ...r, valid: false });
  for (const r of regs) {
    const j = judgeC2cName(store, settings, matcher, r.deviceId, r.fqdn);
    store.c2c.upsert({ ...r, valid: j.valid, reason: j.reason });
    if (j.valid !== r.valid) changed++;
  }
  return changed;
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
