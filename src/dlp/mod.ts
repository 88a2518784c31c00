/**
 * Data loss prevention: the content engine (dictionaries, detectors, text
 * extraction, inspection within budgets), the DLP policy (rules and the
 * pure decision), and the inline entry point `inspectUpload`. The edge
 * stores policy and incidents (src/edge/dlp.ts); connectors enforce it on
 * removable media and network shares (src/dlp/endpoint/).
 */
export * from "./types.ts";
export { Scanner, ScanTally } from "./scanner.ts";
export {
  DEFAULT_BUDGET,
  type InspectBudget,
  inspectBytes,
  type Inspection,
  sniffType,
} from "./inspect.ts";
export { appliesTo, decide, describeMatches, type DlpDecision, DlpPolicy } from "./policy.ts";
export {
  DEFAULT_UPLOAD_LIMIT,
  inspectFile,
  inspectUpload,
  type UploadFile,
  type UploadMeta,
  type UploadVerdict,
} from "./upload.ts";
export { buildEdmIndex, normaliseCell } from "./detectors/edm.ts";
export { compileRe2 } from "./detectors/regex.ts";
export { looksUnredacted } from "./redact.ts";
