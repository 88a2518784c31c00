/**
 * Wire schemas of the identity provider API (strict: an unknown field is an
 * error). Formats come from the domain (src/identity/providers.ts) so the
 * API and the service refuse the same values; the client secret is
 * write-only.
 */
import { z } from "zod";
import {
  CLAIM_NAME,
  CLAIM_NAME_MSG,
  MAX_DOMAINS,
  MAX_GROUP_MAP,
  PROVIDER_NAME,
  PROVIDER_NAME_MSG,
} from "../../identity/providers.ts";
import { MAX_METADATA_BYTES } from "../../identity/saml_metadata.ts";

const Name = z.string().trim().regex(PROVIDER_NAME, PROVIDER_NAME_MSG);
const Domains = z.array(z.string().max(253)).max(MAX_DOMAINS);
const Claim = z.string().regex(CLAIM_NAME, CLAIM_NAME_MSG);
const GroupMap = z.record(z.string().min(1).max(256), z.string().max(64)).refine(
  (m) => Object.keys(m).length <= MAX_GROUP_MAP,
  `expected at most ${MAX_GROUP_MAP} mappings`,
);
const Oidc = z.object({
  issuer: z.string().min(1).max(500),
  clientId: z.string().min(1).max(256).regex(/^[\x21-\x7e]+$/, "expected printable characters"),
  clientSecret: z.string().min(1).max(1024).optional(),
}).strict();
const Saml = z.object({
  metadataXml: z.string().min(1).max(MAX_METADATA_BYTES).optional(),
  metadataUrl: z.string().min(1).max(500).optional(),
}).strict();

/** POST /api/v1/admin/identity-providers. */
export const CreateProviderRequest = z.object({
  name: Name,
  kind: z.enum(["oidc", "saml"]),
  domains: Domains.default([]),
  isDefault: z.boolean().default(false),
  groupsClaim: Claim.default("groups"),
  groupMap: GroupMap.default({}),
  oidc: Oidc.optional(),
  saml: Saml.optional(),
}).strict();

/** PATCH /api/v1/admin/identity-providers/:id. */
export const UpdateProviderRequest = z.object({
  name: Name.optional(),
  domains: Domains.optional(),
  isDefault: z.boolean().optional(),
  groupsClaim: Claim.optional(),
  groupMap: GroupMap.optional(),
  oidc: Oidc.optional(),
  saml: Saml.optional(),
}).strict();

/** Largest provider body: fields plus a metadata document, escaped. */
export const PROVIDER_BODY_LIMIT = MAX_METADATA_BYTES * 2;
