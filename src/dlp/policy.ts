/**
 * DLP rules as one immutable value: the dictionaries they use compiled into
 * a scanner, the rules in order. `decide` is pure: given who, which channel
 * and what the scanner found, the first enabled rule that covers the
 * subject and the channel and whose dictionaries were found decides. An
 * "allow" rule is an exemption (nothing is recorded); no rule means allow.
 */
import { InputError } from "../errors.ts";
import { Scanner } from "./scanner.ts";
import type {
  Channel,
  DictionaryMatch,
  DictionarySpec,
  DlpAction,
  DlpRule,
  DlpSubject,
} from "./types.ts";

/** The decision for one file. */
export interface DlpDecision {
  action: DlpAction;
  /** The rule that decided; null when none fired. */
  rule: string | null;
  /** The matches of the deciding rule's dictionaries (all matches when none fired). */
  matches: DictionaryMatch[];
  /** A sentence for logs and pages ("Rule "Cards on USB" found 5 credit card numbers"). */
  reason: string;
}

/** Compiled DLP policy. */
export class DlpPolicy {
  readonly scanner: Scanner;
  readonly rules: readonly DlpRule[];
  readonly version: string;

  /**
   * Compiles `rules` over `dictionaries`. Throws an InputError when a rule
   * names a dictionary that does not exist or one cannot be compiled.
   */
  constructor(rules: readonly DlpRule[], dictionaries: readonly DictionarySpec[], version = "") {
    const names = new Set(dictionaries.map((d) => d.def.name));
    rules.forEach((r, i) => {
      for (const d of r.dictionaries) {
        if (!names.has(d)) {
          throw new InputError(
            "unknown_dictionary",
            `Invalid request: rules[${i}].dictionaries: rule "${r.name}" names dictionary "${d}", which does not exist`,
          );
        }
      }
    });
    // Only dictionaries some enabled rule uses are compiled and scanned for.
    const used = new Set(rules.filter((r) => r.enabled).flatMap((r) => r.dictionaries));
    this.scanner = new Scanner(dictionaries.filter((d) => used.has(d.def.name)));
    this.rules = rules;
    this.version = version;
  }

  /** True when some enabled rule covers `channel` for `subject` (else nothing needs scanning). */
  covers(channel: Channel, subject?: DlpSubject): boolean {
    return this.rules.some((r) =>
      r.enabled && r.channels.includes(channel) &&
      (!subject || appliesTo(r, subject))
    );
  }
}

/** True when the rule's users and groups include the subject (none listed: everyone). */
export function appliesTo(rule: DlpRule, s: DlpSubject): boolean {
  if (rule.users.length === 0 && rule.groups.length === 0) return true;
  const user = s.user?.toLowerCase() ?? null;
  if (user !== null && rule.users.some((u) => u.toLowerCase() === user)) return true;
  return rule.groups.some((g) => s.groups.includes(g));
}

const KIND_WORDS: Record<string, [string, string]> = {
  credit_card: ["credit card number", "credit card numbers"],
  iban: ["IBAN", "IBANs"],
  us_ssn: ["US social security number", "US social security numbers"],
  email: ["e-mail address", "e-mail addresses"],
  regex: ["match", "matches"],
  keywords: ["keyword", "keywords"],
  edm: ["protected record", "protected records"],
};

/** "5 credit card numbers (cards), 1 IBAN (bank)" for a list of matches. */
export function describeMatches(matches: readonly DictionaryMatch[]): string {
  return matches.map((m) => {
    const [one, many] = KIND_WORDS[m.kind] ?? ["match", "matches"];
    return `${m.count} ${m.count === 1 ? one : many} (${m.dictionary})`;
  }).join(", ");
}

/** Decides what happens to a file with `matches`, sent by `subject` over `channel`. */
export function decide(
  policy: DlpPolicy,
  subject: DlpSubject,
  channel: Channel,
  matches: readonly DictionaryMatch[],
): DlpDecision {
  const found = new Map(matches.filter((m) => m.triggered).map((m) => [m.dictionary, m]));
  for (const r of policy.rules) {
    if (!r.enabled || !r.channels.includes(channel) || !appliesTo(r, subject)) continue;
    const hit = r.dictionaries.filter((d) => found.has(d));
    const fires = r.match === "all" ? hit.length === r.dictionaries.length : hit.length > 0;
    if (!fires) continue;
    const ms = hit.map((d) => found.get(d)!);
    return {
      action: r.action,
      rule: r.name,
      matches: ms,
      reason: `Rule "${r.name}" found ${describeMatches(ms)}`,
    };
  }
  return {
    action: "allow",
    rule: null,
    matches: [...matches],
    reason: matches.length ? "No rule fired for what was found" : "Nothing sensitive found",
  };
}
