/**
 * The signed posture report: what a connector found on its system (raw
 * facts, not its own verdict), signed with the device's Ed25519 signing key
 * so the edge evaluates the profiles itself from facts only this device
 * could have sent. The payload is the exact JSON text that was signed; the
 * edge verifies the signature over `postureSigningMessage(payload)` before it
 * parses anything in it.
 *
 * Shared by the connector (builds and signs) and the edge (verifies, parses,
 * evaluates); like src/dlp/report.ts it is domain, so both may import it.
 */
import { z } from "zod";
import type { CertificateFact, FileFact, PostureFacts, ServiceFact } from "../policy/posture.ts";

const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "expected a lowercase SHA-256 in hex");

/** The facts on the wire (maps as arrays, so the JSON is plain). */
export const ReportedFacts = z.object({
  osVersion: z.string().max(128).optional(),
  /** Only the process names the profiles ask about that are running. */
  processes: z.array(z.string().max(256)).max(256).optional(),
  files: z.array(
    z.object({
      path: z.string().min(1).max(1024),
      exists: z.boolean(),
      sha256: Sha256Hex.optional(),
    })
      .strict(),
  ).max(256).optional(),
  diskEncryption: z.boolean().optional(),
  firewallEnabled: z.boolean().optional(),
  certificates: z.array(
    z.object({
      subject: z.string().max(1024),
      issuer: z.string().max(1024).optional(),
      notAfter: z.number().int().optional(),
      hasKey: z.boolean().optional(),
      store: z.string().max(1024).optional(),
    }).strict(),
  ).max(256).optional(),
  services: z.array(
    z.object({
      name: z.string().min(1).max(100),
      running: z.boolean(),
      sha256: Sha256Hex.optional(),
    })
      .strict(),
  ).max(64).optional(),
  connectorVersion: z.string().max(64).optional(),
}).strict();
/** @see ReportedFacts */
export type ReportedFacts = z.infer<typeof ReportedFacts>;

/** What the connector signs. */
export const PostureReportPayload = z.object({
  /** The reporting device: a report signed for one device is refused from another. */
  deviceId: z.string().min(1).max(128),
  /** When the facts were collected (ISO 8601): the age the edge judges staleness by. */
  collectedAt: z.iso.datetime({ offset: true }),
  facts: ReportedFacts,
}).strict();
/** @see PostureReportPayload */
export type PostureReportPayload = z.infer<typeof PostureReportPayload>;

/** POST /api/v1/posture request: the payload text and its signature. */
export const SignedPostureReport = z.object({
  payload: z.string().min(2).max(64 * 1024),
  signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, "expected a base64 Ed25519 signature"),
}).strict();
/** @see SignedPostureReport */
export type SignedPostureReport = z.infer<typeof SignedPostureReport>;

const LABEL = "portcullis-posture-report-v1\n";

/** The exact bytes a report's signature covers: a fixed label, then the payload text. */
export function postureSigningMessage(payload: string): Uint8Array {
  return new TextEncoder().encode(LABEL + payload);
}

/** Facts as the evaluator takes them → their wire form. */
export function factsToWire(f: PostureFacts): ReportedFacts {
  const out: ReportedFacts = {};
  if (f.osVersion !== undefined) out.osVersion = f.osVersion.slice(0, 128);
  if (f.processes) out.processes = [...f.processes].slice(0, 256);
  if (f.files) {
    out.files = [...f.files].slice(0, 256).map(([path, x]) => ({
      path,
      exists: x.exists,
      ...(x.sha256 ? { sha256: x.sha256 } : {}),
    }));
  }
  if (f.diskEncryption !== undefined) out.diskEncryption = f.diskEncryption;
  if (f.firewallEnabled !== undefined) out.firewallEnabled = f.firewallEnabled;
  if (f.certificates) out.certificates = f.certificates.slice(0, 256).map((c) => ({ ...c }));
  if (f.services) {
    out.services = [...f.services].slice(0, 64).map(([name, s]) => ({
      name,
      running: s.running,
      ...(s.sha256 ? { sha256: s.sha256 } : {}),
    }));
  }
  if (f.connectorVersion !== undefined) out.connectorVersion = f.connectorVersion.slice(0, 64);
  return out;
}

/** Wire facts → what the evaluator takes. */
export function factsFromWire(w: ReportedFacts): PostureFacts {
  const files = w.files &&
    new Map<string, FileFact>(
      w.files.map((f) => [f.path, { exists: f.exists, ...(f.sha256 ? { sha256: f.sha256 } : {}) }]),
    );
  const services = w.services &&
    new Map<string, ServiceFact>(
      w.services.map((
        s,
      ) => [s.name, { running: s.running, ...(s.sha256 ? { sha256: s.sha256 } : {}) }]),
    );
  const certificates: CertificateFact[] | undefined = w.certificates?.map((c) => ({ ...c }));
  return {
    osVersion: w.osVersion,
    processes: w.processes,
    files,
    diskEncryption: w.diskEncryption,
    firewallEnabled: w.firewallEnabled,
    certificates,
    services,
    connectorVersion: w.connectorVersion,
  };
}
