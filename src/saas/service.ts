/**
 * The SaaS tenant service: adding a tenant (authorized before it is kept),
 * Reauthorize, changes and deletion; admin consent (consents.ts) and the
 * validation itself (validate.ts) are apart, scans run in scans.ts.
 *
 * A tenant is saved only once the issuer accepted its credentials: a bad
 * tenant ID, a secret Entra rejects (`invalid_client`), a SharePoint key that
 * does not match its certificate, an unreachable issuer — each is refused
 * and nothing is written. A tenant whose token lacks permissions is saved as
 * Validation Failed, with the missing rows and the actions they disable, so
 * the admin can grant them in Entra and press Reauthorize without typing the
 * secret again (Entra shows it only once).
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
import type { SaasTenantRecord, Store } from "../store/mod.ts";
import { SaasConsents } from "./consents.ts";
import {
  checkApp,
  checkName,
  checkRemediation,
  checkScanInterval,
  checkSecret,
  normaliseGuid,
} from "./fields.ts";
import { parseSharePointKey, type SharePointKey } from "./sharepoint_key.ts";
import type { TokenSource } from "./token_client.ts";
import {
  DEFAULT_REMEDIATION,
  type NewTenant,
  type StoredValidation,
  type TenantChanges,
  type TenantView,
} from "./types.ts";
import { certificateOf, validateGrants } from "./validate.ts";
import { appOf, remediationOf, tenantView, validationOf } from "./views.ts";

export { certificateOf, credentialOf } from "./validate.ts";

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

/** Tenants: adding, Reauthorize, settings, deletion; their admin consent. */
export class SaasService {
  /** Admin-consent requests of tenants being added. */
  readonly consents: SaasConsents;

  constructor(private deps: SaasServiceDeps) {
    this.consents = new SaasConsents(deps);
  }

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
      tenantView(t, this.consents.record(t.consentId), now)
    );
  }

  /** One tenant. */
  tenant(id: string): TenantView {
    const t = this.#record(id);
    return tenantView(t, this.consents.record(t.consentId), this.#now());
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
    const app = checkApp(input.app);
    const name = checkName(input.name);
    const tenantId = normaliseGuid("tenantId", input.tenantId);
    const clientId = normaliseGuid("clientId", input.clientId);
    const secret = checkSecret(input.clientSecret);
    const remediation = checkRemediation(DEFAULT_REMEDIATION, input.remediation);
    const scanIntervalMin = checkScanInterval(input.scanIntervalMinutes, 0);
    let key: SharePointKey | null = null;
    if (app === "sharepoint") {
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
        `Invalid request: privateKeyJson: only a SharePoint tenant takes a private-key file, not ${app}`,
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
      ? this.consents.forTenant(input.consentId, { app, name, tenantId, clientId })
      : null;

    const validation = await validateGrants(this.deps.tokens, {
      app,
      name,
      tenantId,
      clientId,
      secret,
      key,
    });
    const now = this.#now();
    const rec: SaasTenantRecord = {
      id: randomId("saas"),
      name,
      app,
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
      scanIntervalMin,
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
    const useKey = key ?? (stored?.kind === "certificate" ? stored : null);
    const validation = await validateGrants(this.deps.tokens, {
      app: appOf(t),
      name: t.name,
      tenantId: t.tenantId,
      clientId: t.clientId,
      secret,
      key: useKey,
    });
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

  /** Changes what needs no new validation: remediation, the schedule, the secret's expiry date. */
  update(
    id: string,
    changes: Pick<TenantChanges, "remediation" | "secretExpiresAt" | "scanIntervalMinutes">,
    actor: string,
  ): TenantView {
    const t = this.#record(id);
    const remediation = checkRemediation(remediationOf(t), changes.remediation);
    const scanIntervalMin = checkScanInterval(changes.scanIntervalMinutes, t.scanIntervalMin);
    const next: SaasTenantRecord = {
      ...t,
      remediation,
      scanIntervalMin,
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
        scanIntervalMinutes: scanIntervalMin,
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
}
