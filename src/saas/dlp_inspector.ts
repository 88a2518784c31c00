/**
 * The DLP content engine (src/dlp) as the drive scanner's inspector: a
 * file is inspected with the current DLP policy and decided for its owner
 * on the `saas_at_rest` channel, so data-at-rest findings follow the same
 * dictionaries and rules as every other channel. A file no rule covers for
 * its owner is not read past its download.
 */
import { decide, type DlpPolicy, inspectFile } from "../dlp/mod.ts";
import { sha256Hex } from "../identity/secrets.ts";
import type { ContentInspector, Verdict } from "./drive_scan.ts";

/** The inspector over `policy` (read for every file, so policy changes apply at once). */
export function dlpInspector(policy: () => DlpPolicy): ContentInspector {
  return {
    async inspect(bytes: Uint8Array, name: string, owner: string): Promise<Verdict> {
      const p = policy();
      // The owner's groups are not looked up: rules naming users or everyone apply.
      const subject = { user: owner, groups: [] };
      if (!p.covers("saas_at_rest", subject)) {
        return {
          action: "allow",
          rule: null,
          reason: "No DLP rule covers SaaS data at rest for this owner",
          fileType: "unknown",
          sha256: sha256Hex(bytes),
          matches: [],
        };
      }
      const f = await inspectFile(p, bytes, name);
      const d = decide(p, subject, "saas_at_rest", f.matches);
      return {
        action: d.action,
        rule: d.rule,
        reason: d.reason,
        fileType: f.fileType,
        sha256: f.sha256,
        matches: d.matches.map((m) => ({
          dictionary: m.dictionary,
          kind: m.kind,
          count: m.count,
          samples: m.samples,
        })),
      };
    },
  };
}
