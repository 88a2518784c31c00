/**
 * Validation of a tenant's credentials: a fresh token per API its
 * application needs (never a cached one: grants may have changed since),
 * the roles compared with the application's rows.
 */
import type { SaasTenantRecord } from "../store/mod.ts";
import { APIS, apisFor, requirementsFor, type SaasApp } from "./apps.ts";
import { type ApiGrant, evaluate, grantMap } from "./permissions.ts";
import type { SharePointKey } from "./sharepoint_key.ts";
import { type ClientCredential, TokenError, type TokenSource } from "./token_client.ts";
import type { StoredValidation } from "./types.ts";

/** The SharePoint key of a stored tenant, as a credential. */
export function certificateOf(t: SaasTenantRecord): ClientCredential | null {
  if (!t.privateKey || !t.certificate || !t.certThumbprint) return null;
  return {
    kind: "certificate",
    privateKeyPem: t.privateKey,
    certificatePem: t.certificate,
    thumbprintSha256: t.certThumbprint,
  };
}

/** The credential tokens are requested with: the certificate for SharePoint, else the secret. */
export function credentialOf(t: SaasTenantRecord): ClientCredential {
  return certificateOf(t) ?? { kind: "secret", secret: t.clientSecret };
}

/** What a validation asks with. */
export interface ValidationInput {
  app: SaasApp;
  /** The tenant's name, for messages. */
  name: string;
  tenantId: string;
  clientId: string;
  secret: string;
  /** SharePoint: tokens are asked for with its certificate; the secret is proven too. */
  key: Pick<SharePointKey, "privateKeyPem" | "certificatePem" | "thumbprintSha256"> | null;
}

/**
 * Asks the issuer for a token per API the application needs and compares
 * the grants with its rows. Throws a TokenError when the credentials are
 * refused or the issuer cannot be reached; an API that is refused alone
 * counts as not granted.
 */
export async function validateGrants(
  tokens: TokenSource,
  v: ValidationInput,
): Promise<StoredValidation> {
  const credential: ClientCredential = v.key
    ? {
      kind: "certificate",
      privateKeyPem: v.key.privateKeyPem,
      certificatePem: v.key.certificatePem,
      thumbprintSha256: v.key.thumbprintSha256,
    }
    : { kind: "secret", secret: v.secret };
  const ask = async (scope: string, cred: ClientCredential) => {
    try {
      return await tokens.acquire({
        tenantId: v.tenantId,
        clientId: v.clientId,
        credential: cred,
        scope,
        fresh: true,
      });
    } catch (e) {
      if (e instanceof TokenError && e.failure !== "resource") {
        const what = cred.kind === "certificate" ? "its certificate" : "its client secret";
        const api = Object.values(APIS).find((a) => a.scope === scope)?.name ?? scope;
        throw new TokenError(
          e.failure,
          e.issuerCode,
          e.failure === "credentials"
            ? `Cannot authorize SaaS tenant "${v.name}": the identity platform refused ${what} for ${api} (${e.detail})`
            : `Cannot authorize SaaS tenant "${v.name}": ${e.message}`,
          e.detail,
        );
      }
      throw e;
    }
  };
  const grants: ApiGrant[] = [];
  for (const api of apisFor(v.app)) {
    try {
      const t = await ask(APIS[api].scope, credential);
      grants.push({ api, issued: true, roles: t.roles, scopes: t.scopes });
    } catch (e) {
      if (!(e instanceof TokenError) || e.failure !== "resource") throw e;
      grants.push({
        api,
        issued: false,
        roles: [],
        scopes: null,
        error: { code: e.issuerCode ?? e.code, message: e.message.slice(0, 400) },
      });
    }
  }
  // SharePoint signs with its certificate; the secret it was given must work too.
  if (v.key) await ask(APIS.graph.scope, { kind: "secret", secret: v.secret });
  return {
    grants,
    evaluation: evaluate(v.app, grantMap(grants)),
    source: requirementsFor(v.app).source,
  };
}
