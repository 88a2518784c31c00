/**
 * The enrolment key's payload: what the string `pc1.<base64url(JSON)>` handed
 * to an admin carries. The edge makes keys (src/edge/enrollment_keys.ts), the
 * connector reads them (src/connector/enrollment_key.ts); both check the
 * payload with this one schema.
 *
 * A zod schema lives here in the domain on purpose: a key is not an HTTP
 * message but a credential an admin pastes on a command line, so its format
 * belongs to the control protocol itself (as the policy model's schemas do in
 * src/policy/types.ts), not to the REST API's wire schemas.
 */
import { z } from "zod";

/** Prefix that versions the key format. */
export const KEY_PREFIX = "pc1.";

/**
 * `{u: edge API URL, c: sha256 hex of the edge CA cert DER, s: secret, b?: bootstrap URL}`.
 * Unknown fields are rejected, so a mangled key is an error, not a default.
 */
export const EnrollmentKeyPayload = z.object({
  u: z.string().url(),
  c: z.string().regex(/^[0-9a-f]{64}$/),
  s: z.string().min(16).max(256),
  /**
   * Plain-HTTP bootstrap URL of the edge serving `/ca.pem` (checked against
   * `c` before use) and `/generate_204` (captive-portal probe). Defaults to
   * `http://<host of u>:8081`.
   */
  b: z.string().url().optional(),
}).strict();
/** @see EnrollmentKeyPayload */
export type EnrollmentKeyPayload = z.infer<typeof EnrollmentKeyPayload>;
