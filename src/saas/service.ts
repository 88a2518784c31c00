/**
 * The SaaS tenant service: adding a tenant (authorized before it is kept),
 * Reauthorize, changes, deletion, admin consent, and data-at-rest scans
 * (scans.ts runs them).
 *
 * A tenant is saved only once the issuer accepted its credentials: a bad
 * tenant ID, a secret Entra rejects (`invalid_client`), a SharePoint key
 * that does not match its certificate, an unreachable issuer — each is
 * refused and nothing is written. A tenant whose token lacks permissions is
 * saved as Validation Failed, with the missing rows and the actions they
 * disable, so the admin can grant them in Entra and press Reauthorize
 * without typing the secret again (Entra shows it only once).
 *
 * Secrets: the client secret and the private key are sealed at rest (the
 * store's sealer, as for TOTP seeds), never returned by a view, never
 * logged, never audited; the audit log records names, IDs and outcomes.
 */
import type { Clock } from "../clock.ts";
import { InputError, NotFoundError } from "../errors.ts";
import { randomId } from "../identity/secrets.ts";
import { logger } from "../log.ts";
import type { Notifier } from "../notify/mod.ts";
import type { SaasConsentRecord, SaasTenantRecord, Store } from "../store/mod.ts";
import { APIS, apisFor, isSaasApp, requirementsFor, type SaasApp } from "./apps.ts";
import {
  adminConsentUrl,
  CONSENT_TTL_MS,
  consentAnswer,
  consentStateHash,
  newConsentState,
  validRedirectUri,
} from "./consent.ts";
import {
  checkField,
  CLIENT_SECRET,
  CLIENT_SECRET_MSG,
  normaliseGuid,
  TENANT_NAME,
  TENANT_NAME_MSG,
} from "./fields.ts";
import { type ApiGrant, describeMissing, evaluate, grantMap } from "./permissions.ts";
import { parseSharePointKey, type SharePointKey } from "./sharepoint_key.ts";
import { type ClientCredential, TokenError, type TokenSource } from "./token_client.ts";
import {
  type ConsentView,
  DEFAULT_REMEDIATION,
  type NewTenant,
  type Remediation,
  type StoredValidation,
  type TenantChanges,
  type TenantView,
} from "./types.ts";
import { consentView, remediationOf, tenantView, validationOf } from "./views.ts";

const log = logger("saas");

/** What the service needs. */
export interface SaasServiceDeps {
  store: Store;
  clock: Clock;
  notifier: Notifier;
  tokens: TokenSource;
  /** The authority host the consent URLs point at (the token source's). */
  authorityUrl: string;
}

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

function checkName(name: string): string {
  return checkField("name", name.trim(), TENANT_NAME, TENANT_NAME_MSG);
}

function checkSecret(secret: string): string {
  return checkField("clientSecret", secret, CLIENT_SECRET, CLIENT_SECRET_MSG, true);
}

function checkRemediation(base: Remediation, r: Partial<Remediation> | undefined): Remediation {
  const out = { ...base, ...(r ?? {}) };
  const folder = out.quarantineFolder.trim();
  // A single folder name at the drive's root: no path separators, nothing Graph forbids.
  // deno-lint-ignore no-control-regex
  if (!/^[^"*:<>?/\\|#%\x00-\x1f]{1,128}$/.test(folder) || folder.startsWith(".")) {
    throw new InputError(
      "invalid_request",
      `Invalid request: remediation.quarantineFolder: expected a folder name of 1-128 characters without / \\ " * : < > ? | # %, got ${
        JSON.stringify(folder.slice(0, 80))
      }`,
    );
  }
  return { ...out, quarantineFolder: folder };
}

/** Tenants, consent and validation. */
export class SaasService {
  constructor(private deps: SaasServiceDeps) {}

  get #store() {
    return this.deps.store;
  }

  #now() {
    return this.deps.clock.now();
  }

  #record(id: string): SaasTenantRecord {
    const t = this.#store.saasTenants.get(id);
    if (!t) {
      throw new NotFoundError(
        "saas_tenant_not_found",
        `Cannot find SaaS tenant "${id.slice(0, 64)}"`,
      );
    }
    return t;
  }

  /** A tenant's stored record (with its opened secrets: for the scanner only). */
  record(id: string): SaasTenantRecord {
    return this.#record(id);
  }

  /** Every tenant. */
  tenants(): TenantView[] {
    const now = this.#now();
    return this.#store.saasTenants.list().map((t) =>
      tenantView(t, this.#consentOf(t.consentId), now)
    );
  }

  /** One tenant. */
  tenant(id: string): TenantView {
    const t = this.#record(id);
    return tenantView(t, this.#consentOf(t.consentId), this.#now());
  }

  #consentOf(id: string | null): SaasConsentRecord | undefined {
    return id ? this.#store.saasConsents.get(id) : undefined;
  }

  /**
   * Asks the issuer for a token per API the application needs and compares
   * the grants with its rows. Throws a TokenError when the credentials are
   * refused or the issuer cannot be reached; an API that is refused alone
   * counts as not granted.
   */
  async #validate(
    app: SaasApp,
    name: string,
    tenantId: string,
    clientId: string,
    secret: string,
    key: SharePointKey | null,
  ): Promise<StoredValidation> {
    const credential: ClientCredential = key
      ? {
        kind: "certificate",
        privateKeyPem: key.privateKeyPem,
        certificatePem: key.certificatePem,
        thumbprintSha256: key.thumbprintSha256,
      }
      : { kind: "secret", secret };
    const grants: ApiGrant[] = [];
    const ask = async (scope: string, cred: ClientCredential) => {
      try {
        return await this.deps.tokens.acquire({
          tenantId,
          clientId,
          credential: cred,
          scope,
          fresh: true,
        });
      } catch (e) {
        if (e instanceof TokenError && e.failure !== "resource") {
          const what = cred.kind === "certificate"
            ? "with its certificate"
            : "with its client secret";
          throw new TokenError(
            e.failure,
            e.issuerCode,
            `Cannot authorize SaaS tenant "${name}" ${what}: ${e.message}`,
          );
        }
        throw e;
      }
    };
    for (const api of apisFor(app)) {
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
    if (key) await ask(APIS.graph.scope, { kind: "secret", secret });
    return {
      grants,
      evaluation: evaluate(app, grantMap(grants)),
      source: requirementsFor(app).source,
    };
  }

  #audit(actor: string, action: string, target: string, detail: Record<string, unknown>) {
    this.#store.audit.insert({ at: this.#now(), actor, action, target, detail });
  }

  #announce(t: SaasTenantRecord, v: StoredValidation, by: string) {
    this.deps.notifier.publish({
      kind: "saas_tenant_validated",
      tenantId: t.id,
      tenant: t.name,
      app: t.app,
      status: v.evaluation.status,
      missing: v.evaluation.missing.length,
      by,
    });
  }

  /**
   * Authorizes and adds a tenant. Refused (nothing saved): bad fields, a
   * name in use, a consent that does not fit, a SharePoint key that does
   * not match, credentials the issuer rejects, an issuer out of reach.
   */
  async create(input: NewTenant, actor: string): Promise<TenantView> {
    if (!isSaasApp(input.app)) {
      throw new InputError(
        "invalid_request",
        `Invalid request: app: unknown application "${String(input.app).slice(0, 40)}"`,
      );
    }
    const name = checkName(input.name);
    const tenantId = normaliseGuid("tenantId", input.tenantId);
    const clientId = normaliseGuid("clientId", input.clientId);
    const secret = checkSecret(input.clientSecret);
    const remediation = checkRemediation(DEFAULT_REMEDIATION, input.remediation);
    let key: SharePointKey | null = null;
    if (input.app === "sharepoint") {
      if (!input.privateKeyJson) {
        throw new InputError(
          "sharepoint_key_required",
          `Cannot add SharePoint tenant "${name}": upload the private-key JSON file of its certificate`,
        );
      }
      key = parseSharePointKey(input.privateKeyJson);
    } else if (input.privateKeyJson) {
      throw new InputError(
        "invalid_request",
        `Invalid request: privateKeyJson: only a SharePoint tenant takes a private-key file, not ${input.app}`,
      );
    }
    const nameTaken = () => {
      if (this.#store.saasTenants.byName(name)) {
        throw new InputError(
          "saas_tenant_exists",
          `Cannot add SaaS tenant "${name}": the name is in use`,
          409,
        );
      }
    };
    nameTaken();
    const consent = input.consentId
      ? this.#consentFor(input.consentId, input.app, name, tenantId, clientId)
      : null;

    const validation = await this.#validate(input.app, name, tenantId, clientId, secret, key);
    const now = this.#now();
    const rec: SaasTenantRecord = {
      id: randomId("saas"),
      name,
      app: input.app,
      tenantId,
      clientId,
      clientSecret: secret,
      secretExpiresAt: input.secretExpiresAt,
      privateKey: key?.privateKeyPem ?? null,
      certificate: key?.certificatePem ?? null,
      certThumbprint: key?.thumbprintSha256 ?? null,
      certSubject: key?.subject ?? null,
      certNotAfter: key?.notAfter ?? null,
      status: validation.evaluation.status,
      validation,
      validatedAt: now,
      consentId: consent?.id ?? null,
      remediation,
      createdAt: now,
      updatedAt: now,
    };
    this.#store.transaction(() => {
      nameTaken(); // another request may have taken it while the issuer answered
      this.#store.saasTenants.insert(rec);
      this.#audit(actor, "saas.tenant.create", rec.id, {
        name,
        app: rec.app,
        tenantId,
        clientId,
        status: rec.status,
        missing: validation.evaluation.missing.map((m) => m.label),
      });
    });
    log.info("SaaS tenant added", { tenant: name, app: rec.app, status: rec.status });
    this.#announce(rec, validation, actor);
    return this.tenant(rec.id);
  }

  #consentFor(id: string, app: SaasApp, name: string, tenantId: string, clientId: string) {
    const c = this.#store.saasConsents.get(id);
    if (!c) {
      throw new InputError(
        "consent_not_found",
        `Cannot find admin-consent request "${id.slice(0, 64)}"`,
      );
    }
    if (
      c.app !== app || c.tenantId !== tenantId || c.clientId !== clientId ||
      c.name.toLowerCase() !== name.toLowerCase()
    ) {
      throw new InputError(
        "consent_mismatch",
        `Cannot use admin-consent request "${c.id}": it was made for tenant "${c.name}" (${c.app}, tenant ${c.tenantId}, client ${c.clientId})`,
      );
    }
    if (c.result !== "granted") {
      throw new InputError(
        "consent_not_granted",
        `Cannot use admin-consent request "${c.id}": consent was ${
          c.result === "denied" ? `declined (${c.error ?? "no reason given"})` : "not given yet"
        }`,
      );
    }
    return c;
  }

  /**
   * Validates again (Reauthorize), optionally with new credentials, and
   * keeps the outcome. New credentials the issuer refuses are not kept.
   */
  async reauthorize(id: string, actor: string, changes: TenantChanges = {}): Promise<TenantView> {
    const t = this.#record(id);
    const secret = changes.clientSecret !== undefined
      ? checkSecret(changes.clientSecret)
      : t.clientSecret;
    let key: SharePointKey | null = null;
    if (changes.privateKeyJson !== undefined) {
      if (t.app !== "sharepoint") {
        throw new InputError(
          "invalid_request",
          `Invalid request: privateKeyJson: only a SharePoint tenant takes a private-key file, not ${t.app}`,
        );
      }
      key = parseSharePointKey(changes.privateKeyJson);
    }
    const stored = certificateOf(t);
    const useKey: SharePointKey | null = key ?? (stored && stored.kind === "certificate"
      ? {
        privateKeyPem: stored.privateKeyPem,
        certificatePem: stored.certificatePem,
        thumbprintSha256: stored.thumbprintSha256,
        subject: t.certSubject ?? "",
        notAfter: t.certNotAfter ?? 0,
      }
      : null);
    const validation = await this.#validate(
      t.app as SaasApp,
      t.name,
      t.tenantId,
      t.clientId,
      secret,
      useKey,
    );
    const now = this.#now();
    const next: SaasTenantRecord = {
      ...t,
      clientSecret: secret,
      secretExpiresAt: changes.secretExpiresAt !== undefined
        ? changes.secretExpiresAt
        : t.secretExpiresAt,
      privateKey: key ? key.privateKeyPem : t.privateKey,
      certificate: key ? key.certificatePem : t.certificate,
      certThumbprint: key ? key.thumbprintSha256 : t.certThumbprint,
      certSubject: key ? key.subject : t.certSubject,
      certNotAfter: key ? key.notAfter : t.certNotAfter,
      status: validation.evaluation.status,
      validation,
      validatedAt: now,
      updatedAt: now,
    };
    this.#store.transaction(() => {
      if (!this.#store.saasTenants.update(next)) {
        throw new NotFoundError(
          "saas_tenant_not_found",
          `Cannot find SaaS tenant "${id.slice(0, 64)}"`,
        );
      }
      this.#audit(actor, "saas.tenant.reauthorize", t.id, {
        name: t.name,
        status: next.status,
        missing: validation.evaluation.missing.map((m) => m.label),
        newSecret: changes.clientSecret !== undefined,
        newCertificate: key !== null,
      });
    });
    this.#announce(next, validation, actor);
    return this.tenant(id);
  }

  /** Changes what needs no new validation: remediation and the secret's expiry date. */
  update(
    id: string,
    changes: Pick<TenantChanges, "remediation" | "secretExpiresAt">,
    actor: string,
  ): TenantView {
    const t = this.#record(id);
    const remediation = checkRemediation(remediationOf(t), changes.remediation);
    const next: SaasTenantRecord = {
      ...t,
      remediation,
      secretExpiresAt: changes.secretExpiresAt !== undefined
        ? changes.secretExpiresAt
        : t.secretExpiresAt,
      updatedAt: this.#now(),
    };
    this.#store.transaction(() => {
      this.#store.saasTenants.update(next);
      this.#audit(actor, "saas.tenant.update", t.id, {
        name: t.name,
        remediation,
        secretExpiresAt: next.secretExpiresAt === null
          ? null
          : new Date(next.secretExpiresAt).toISOString(),
      });
    });
    return this.tenant(id);
  }

  /** Deletes a tenant with its scans and cursors (its incidents stay in the DLP log). */
  delete(id: string, actor: string): void {
    const t = this.#record(id);
    this.#store.transaction(() => {
      this.#store.saasTenants.delete(id);
      this.#audit(actor, "saas.tenant.delete", id, { name: t.name, app: t.app });
    });
  }

  /** The evaluation a stored tenant's grants give now. */
  validationOf(id: string): StoredValidation {
    return validationOf(this.#record(id));
  }

  /** Starts admin consent for a tenant being added: returns the URL to send the admin to. */
  startConsent(
    input: { app: SaasApp; name: string; tenantId: string; clientId: string; redirectUri: string },
    actor: string,
  ): { consent: ConsentView; url: string } {
    if (!isSaasApp(input.app)) {
      throw new InputError(
        "invalid_request",
        `Invalid request: app: unknown application "${String(input.app).slice(0, 40)}"`,
      );
    }
    const name = checkName(input.name);
    const tenantId = normaliseGuid("tenantId", input.tenantId);
    const clientId = normaliseGuid("clientId", input.clientId);
    if (!validRedirectUri(input.redirectUri)) {
      throw new InputError(
        "invalid_request",
        `Invalid request: redirectUri: expected an http(s) URL ending in /saas/consent, got ${
          JSON.stringify(input.redirectUri.slice(0, 80))
        }`,
      );
    }
    if (this.#store.saasTenants.byName(name)) {
      throw new InputError(
        "saas_tenant_exists",
        `Cannot add SaaS tenant "${name}": the name is in use`,
        409,
      );
    }
    const now = this.#now();
    const { state, hash } = newConsentState(name);
    const rec: SaasConsentRecord = {
      id: randomId("consent"),
      stateHash: hash,
      name,
      app: input.app,
      tenantId,
      clientId,
      redirectUri: input.redirectUri,
      createdBy: actor,
      createdAt: now,
      expiresAt: now + CONSENT_TTL_MS,
      result: null,
      resultAt: null,
      error: null,
      consentedTenant: null,
    };
    this.#store.transaction(() => {
      this.#store.saasConsents.prune(now, now - 30 * 86_400_000);
      this.#store.saasConsents.insert(rec);
      this.#audit(actor, "saas.consent.start", rec.id, { name, app: rec.app, tenantId, clientId });
    });
    return {
      consent: consentView(rec),
      url: adminConsentUrl(this.deps.authorityUrl, tenantId, clientId, input.redirectUri, state),
    };
  }

  /** One consent request. */
  consent(id: string): ConsentView {
    const c = this.#store.saasConsents.get(id);
    if (!c) {
      throw new NotFoundError(
        "consent_not_found",
        `Cannot find admin-consent request "${id.slice(0, 64)}"`,
      );
    }
    return consentView(c);
  }

  /**
   * Handles the redirect back from the identity platform. A state this edge
   * did not issue, one already answered or one past its lifetime is refused
   * and changes nothing; otherwise the answer (granted, or declined with the
   * platform's error) is recorded once.
   */
  completeConsent(q: Record<string, string | undefined>): ConsentView {
    const refuse = (code: string, why: string): never => {
      log.warn("Refused an admin-consent redirect", { reason: code });
      throw new InputError(code, `Refused the admin-consent redirect: ${why}`);
    };
    const hash = consentStateHash(q.state ?? "");
    const c = hash ? this.#store.saasConsents.byStateHash(hash) : undefined;
    if (!c) return refuse("consent_state_mismatch", "its state was not issued by this edge");
    const now = this.#now();
    if (c.result !== null) return refuse("consent_state_used", "its state was answered already");
    if (c.expiresAt <= now) {
      return refuse("consent_state_expired", "its state has expired; start admin consent again");
    }
    const a = consentAnswer(q);
    let answer: { result: "granted" | "denied"; error: string | null; tenant: string | null };
    if (a.kind === "granted") {
      answer = a.tenant && a.tenant !== c.tenantId
        ? {
          result: "denied",
          error: `tenant_mismatch: consent was given in tenant ${a.tenant}, not ${c.tenantId}`,
          tenant: a.tenant,
        }
        : { result: "granted", error: null, tenant: a.tenant ?? c.tenantId };
    } else {
      answer = {
        result: "denied",
        error: `${a.error}: ${a.description}`.slice(0, 400),
        tenant: null,
      };
    }
    this.#store.transaction(() => {
      if (!this.#store.saasConsents.answer(c.id, { ...answer, at: now })) {
        refuse("consent_state_used", "its state was answered already");
      }
      this.#audit("identity-platform", "saas.consent.answer", c.id, {
        name: c.name,
        result: answer.result,
        error: answer.error,
      });
    });
    return this.consent(c.id);
  }

  /** A sentence of what a failed validation misses. */
  describe(id: string): string {
    const v = validationOf(this.#record(id));
    return describeMissing(v.evaluation);
  }
}
