/**
 * What a connector tells the edge about a DLP event, and how it is signed.
 * The payload is JSON text signed with the device's Ed25519 key (the one
 * bound at enrolment); the edge verifies the signature over the exact text,
 * then parses it with this schema. Matches carry redacted samples only, and
 * the edge checks that too (`looksUnredacted`).
 */
import { z } from "zod";
import { CHANNELS, MatchSummary } from "./types.ts";

/** One incident as the connector reports it. */
export const IncidentReport = z.object({
  /** The connector's own id of the event (retries send the same one). */
  reportId: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/),
  /** The enrolled device's id, so a report cannot be replayed for another device. */
  deviceId: z.string().min(1).max(64),
  occurredAt: z.iso.datetime(),
  // SaaS data at rest is the edge's own channel (its scans); no device reports it.
  channel: z.enum(CHANNELS).refine((c) => c !== "saas_at_rest", {
    message: "saas_at_rest is reported by the edge's SaaS scans, not by devices",
  }),
  /** The file's name as the user saw it (path on the medium or share). */
  fileName: z.string().min(1).max(1024),
  fileSha256: z.string().regex(/^[0-9a-f]{64}$/),
  fileSize: z.number().int().min(0).max(2 ** 53),
  fileType: z.string().max(32),
  rule: z.string().max(64).nullable(),
  action: z.enum(["notify", "block"]),
  /** What happened: "quarantined", "reported", "denied", "report_only" (no enforcement possible), … */
  outcome: z.enum(["quarantined", "reported", "denied", "report_only", "cancelled"]),
  matches: z.array(MatchSummary).max(50),
}).strict();
/** A validated incident report. */
export type IncidentReport = z.infer<typeof IncidentReport>;

/** The signed request body: the payload text and its signature. */
export const SignedIncident = z.object({
  payload: z.string().min(2).max(64 * 1024),
  signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, "expected a base64 Ed25519 signature"),
}).strict();

const LABEL = "portcullis-dlp-incident-v1\n";

/** The exact bytes a report's signature covers: a fixed label, then the payload text. */
export function incidentSigningMessage(payload: string): Uint8Array {
  return new TextEncoder().encode(LABEL + payload);
}
