/**
 * The DLP policy as plain data: dictionaries (what to look for) and rules
 * (who, which channel, which dictionaries, what to do). The admin API
 * validates input with these schemas, the edge stores the validated values,
 * and connectors receive them in their DLP bundle; both sides compile them
 * into the immutable scanner and rule list of policy.ts.
 */
import { z } from "zod";

/** The detectors a dictionary can use. */
export const DICTIONARY_KINDS = [
  "credit_card",
  "iban",
  "us_ssn",
  "email",
  "regex",
  "keywords",
  "edm",
] as const;
/** One of DICTIONARY_KINDS. */
export type DictionaryKind = typeof DICTIONARY_KINDS[number];

/** Where data leaves: the channels a rule can cover. */
export const CHANNELS = [
  "web_upload",
  "cloud_upload",
  "removable_media",
  "network_share",
  "printing",
  /** Files at rest in a connected SaaS tenant (src/saas), scanned by the edge. */
  "saas_at_rest",
] as const;
/** One of CHANNELS. */
export type Channel = typeof CHANNELS[number];

/** What a rule does when it fires. */
export const ACTIONS = ["allow", "notify", "block"] as const;
/** One of ACTIONS. */
export type DlpAction = typeof ACTIONS[number];

const Name = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$/,
  "expected 1-64 letters, digits, spaces, '.', '-' or '_', starting with a letter or digit",
);

/** Longest custom pattern accepted. */
export const MAX_PATTERN_LENGTH = 1000;
/** Most keywords in one dictionary. */
export const MAX_TERMS = 5000;

/** Matches count only with one of `terms` within `window` characters before or after. */
export const Proximity = z.object({
  terms: z.array(z.string().min(1).max(100)).min(1).max(200),
  window: z.number().int().min(1).max(10_000).default(100),
}).strict();

/** The admin's definition of a dictionary (an EDM dictionary's index is stored apart). */
export const DictionaryDef = z.object({
  name: Name,
  kind: z.enum(DICTIONARY_KINDS),
  description: z.string().max(500).default(""),
  /** Matches needed before the dictionary counts as found in a file (default 1). */
  threshold: z.number().int().min(1).max(100_000).default(1),
  proximity: Proximity.nullable().default(null),
  /** regex: an RE2 pattern (linear time; no back-references or look-around). */
  pattern: z.string().min(1).max(MAX_PATTERN_LENGTH).optional(),
  /**
   * Case matters? Default: yes for regex (RE2's own default; "(?i)" in the
   * pattern ignores case, and a case-sensitive pattern with a literal prefix
   * is searched an order of magnitude faster), no for keywords.
   */
  caseSensitive: z.boolean().optional(),
  /** keywords: the terms (Aho–Corasick). */
  terms: z.array(z.string().min(1).max(200)).max(MAX_TERMS).optional(),
  wholeWord: z.boolean().default(true),
  /** edm: how many cells of one row must appear in a file for a match (default 2, capped by the columns). */
  minColumns: z.number().int().min(1).max(32).default(2),
}).strict().superRefine((d, ctx) => {
  if (d.kind === "regex" && !d.pattern) {
    ctx.addIssue({
      code: "custom",
      path: ["pattern"],
      message: "a regex dictionary needs a pattern",
    });
  }
  if (d.kind === "keywords" && !d.terms?.length) {
    ctx.addIssue({ code: "custom", path: ["terms"], message: "a keyword dictionary needs terms" });
  }
});
/** A validated dictionary definition. */
export type DictionaryDef = z.infer<typeof DictionaryDef>;

/**
 * An exact-data-match index: HMAC-SHA-256 (truncated to 128 bits, hex) of
 * every normalised cell of the uploaded CSV, with its row and column. The
 * cells themselves are never kept.
 */
export const EdmIndex = z.object({
  /** The HMAC key (base64, 32 bytes); sealed at rest on the edge. */
  key: z.string().regex(/^[A-Za-z0-9+/]{43}=$/),
  columns: z.array(z.string().max(64)).min(1).max(32),
  rows: z.number().int().min(0),
  /** Longest cell in words, so the scanner knows which word n-grams to try. */
  maxWords: z.number().int().min(1).max(8),
  /** Lengths (in characters) of normalised cells, so the scanner hashes only candidates that can match. */
  lengths: z.array(z.number().int().min(1).max(256)),
  /** `hash:row:column` triples, packed as "hex32 row col" strings. */
  cells: z.array(z.string().regex(/^[0-9a-f]{32} \d{1,7} \d{1,2}$/)),
}).strict();
/** A validated EDM index. */
export type EdmIndex = z.infer<typeof EdmIndex>;

/** A dictionary as the scanner compiles it: the definition plus its EDM index when it has one. */
export interface DictionarySpec {
  def: DictionaryDef;
  edm?: EdmIndex;
}

/** Who a file belongs to, as rules see it. */
export interface DlpSubject {
  user: string | null;
  groups: string[];
}

/** An admin's rule. */
export const DlpRule = z.object({
  name: Name,
  enabled: z.boolean().default(true),
  description: z.string().max(500).default(""),
  /** Users it applies to (empty with no groups: everyone). */
  users: z.array(z.string().min(1).max(256)).max(500).default([]),
  groups: z.array(z.string().min(1).max(256)).max(500).default([]),
  channels: z.array(z.enum(CHANNELS)).min(1).max(CHANNELS.length),
  dictionaries: z.array(Name).min(1).max(50),
  /** "any": one listed dictionary found is enough; "all": every one must be found. */
  match: z.enum(["any", "all"]).default("any"),
  action: z.enum(ACTIONS),
}).strict();
/** A validated rule. */
export type DlpRule = z.infer<typeof DlpRule>;

/** What the scanner found for one dictionary in one file (samples redacted). */
export interface DictionaryMatch {
  dictionary: string;
  kind: DictionaryKind;
  count: number;
  /** Up to three redacted samples; never a raw value. */
  samples: string[];
  /** True when the count reached the dictionary's threshold. */
  triggered: boolean;
}

/** The wire and storage form of a dictionary match (what incidents carry). */
export const MatchSummary = z.object({
  dictionary: z.string().max(64),
  kind: z.enum(DICTIONARY_KINDS),
  count: z.number().int().min(0).max(10_000_000),
  samples: z.array(z.string().max(80)).max(3),
  triggered: z.boolean(),
}).strict();

/** The DLP bundle a connector receives: its rules and the dictionaries they use. */
export const DlpBundle = z.object({
  version: z.string(),
  /** Who the device's files belong to, as the edge knows it (rules are decided for this subject). */
  subject: z.object({ user: z.string().nullable(), groups: z.array(z.string()) }).strict(),
  rules: z.array(DlpRule),
  dictionaries: z.array(z.object({ def: DictionaryDef, edm: EdmIndex.optional() }).strict()),
}).strict();
/** A validated DLP bundle. */
export type DlpBundle = z.infer<typeof DlpBundle>;
