/**
 * The one error type of the SAML service provider. Every refusal carries a
 * stable machine-readable code (for the API, the audit log and the console)
 * and a sentence a person can act on; the HTTP layer maps `status` as is.
 */
import { InputError } from "../errors.ts";

/** Why a SAML message, metadata document or configuration was refused. */
export type SamlErrorCode =
  /** The signature does not verify against any trusted IdP certificate, or its scope is wrong (wrapping). */
  | "saml_signature_invalid"
  /** Signed, but not with RSA-SHA256 over exclusive canonicalisation. */
  | "saml_signature_algorithm"
  /** The assertion carries no signature of its own. */
  | "saml_unsigned"
  /** NotOnOrAfter (or the IdP session end) has passed, beyond the allowed clock skew. */
  | "saml_expired"
  /** NotBefore or IssueInstant lies in the future, beyond the allowed clock skew. */
  | "saml_not_yet_valid"
  /** The assertion is not restricted to this service provider's entity ID. */
  | "saml_audience"
  /** Recipient or Destination is not this service provider's ACS URL. */
  | "saml_recipient"
  /** Not a response to a request this service provider issued (or it expired / was used). */
  | "saml_in_response_to"
  /** This assertion ID was accepted before. */
  | "saml_replayed"
  /** Issuer is not the configured identity provider. */
  | "saml_issuer"
  /** The identity provider answered with a non-success status (e.g. the user cancelled). */
  | "saml_status"
  /** Not a readable SAML 2.0 response (bad base64, not XML, DTD, wrong structure). */
  | "saml_malformed"
  /** Larger than the service provider accepts. */
  | "saml_too_large"
  /** IdP metadata that cannot be used (missing entity ID, SSO URL or signing certificate). */
  | "saml_metadata_invalid"
  /** A service-provider or IdP configuration value is not acceptable. */
  | "saml_config_invalid";

/** HTTP status per code: unreadable input is 400, a refused sign-in 403. */
const STATUS: Record<SamlErrorCode, number> = {
  saml_signature_invalid: 403,
  saml_signature_algorithm: 403,
  saml_unsigned: 403,
  saml_expired: 403,
  saml_not_yet_valid: 403,
  saml_audience: 403,
  saml_recipient: 403,
  saml_in_response_to: 403,
  saml_replayed: 403,
  saml_issuer: 403,
  saml_status: 403,
  saml_malformed: 400,
  saml_too_large: 413,
  saml_metadata_invalid: 400,
  saml_config_invalid: 400,
};

/** A refused SAML response, IdP metadata document or configuration value. */
export class SamlError extends InputError {
  /** Machine-readable reason, one of {@link SamlErrorCode}. */
  declare readonly code: SamlErrorCode;
  constructor(code: SamlErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, STATUS[code], options);
  }
}
