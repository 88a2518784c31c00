/**
 * Admin-consent requests: started for a tenant being added (the URL to
 * send the admin to), answered once by the identity platform's redirect,
 * and checked when the tenant is then added. consent.ts says why the state
 * is what authenticates the redirect.
 */
import type { Clock } from "../clock.ts";
import { InputError, NotFoundError } from "../errors.ts";
import { randomId } from "../identity/secrets.ts";
import { logger } from "../log.ts";
import type { SaasConsentRecord, Store } from "../store/mod.ts";
import type { SaasApp } from "./apps.ts";
import {
  adminConsentUrl,
  CONSENT_TTL_MS,
  consentAnswer,
  consentStateHash,
  newConsentState,
  validRedirectUri,
} from "./consent.ts";
import { checkApp, checkName, normaliseGuid } from "./fields.ts";
import type { ConsentView } from "./types.ts";
import { consentView } from "./views.ts";

const log = logger("saas.consent");

/** Answered requests are kept this long (then pruned). */
const KEEP_MS = 30 * 86_400_000;

/** What a consent request is for. */
export interface ConsentInput {
  app: SaasApp;
  name: string;
  tenantId: string;
  clientId: string;
  redirectUri: string;
}

/** Admin consent for tenants being added. */
export class SaasConsents {
  constructor(private d: { store: Store; clock: Clock; authorityUrl: string }) {}

  #audit(actor: string, action: string, target: string, detail: Record<string, unknown>) {
    this.d.store.audit.insert({ at: this.d.clock.now(), actor, action, target, detail });
  }

  /** Starts admin consent: returns the request and the URL to send the admin to. */
  start(input: ConsentInput, actor: string): { consent: ConsentView; url: string } {
    const app = checkApp(input.app);
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
    if (this.d.store.saasTenants.byName(name)) {
      throw new InputError(
        "saas_tenant_exists",
        `Cannot add SaaS tenant "${name}": the name is in use`,
        409,
      );
    }
    const now = this.d.clock.now();
    const { state, hash } = newConsentState(name);
    const rec: SaasConsentRecord = {
      id: randomId("consent"),
      stateHash: hash,
      name,
      app,
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
    this.d.store.transaction(() => {
      this.d.store.saasConsents.prune(now, now - KEEP_MS);
      this.d.store.saasConsents.insert(rec);
      this.#audit(actor, "saas.consent.start", rec.id, { name, app, tenantId, clientId });
    });
    return {
      consent: consentView(rec),
      url: adminConsentUrl(this.d.authorityUrl, tenantId, clientId, input.redirectUri, state),
    };
  }

  /** One request. */
  get(id: string): ConsentView {
    const c = this.d.store.saasConsents.get(id);
    if (!c) {
      throw new NotFoundError(
        "consent_not_found",
        `Cannot find admin-consent request "${id.slice(0, 64)}"`,
      );
    }
    return consentView(c);
  }

  /** The stored request, when there is one. */
  record(id: string | null): SaasConsentRecord | undefined {
    return id ? this.d.store.saasConsents.get(id) : undefined;
  }

  /**
   * Handles the redirect back from the identity platform. A state this edge
   * did not issue, one already answered or one past its lifetime is refused
   * and changes nothing; otherwise the answer (granted, or declined with the
   * platform's error; consent given in another directory counts as declined)
   * is recorded once.
   */
  complete(q: Record<string, string | undefined>): ConsentView {
    const refuse = (code: string, why: string): never => {
      log.warn("Refused an admin-consent redirect", { reason: code });
      throw new InputError(code, `Refused the admin-consent redirect: ${why}`);
    };
    const hash = consentStateHash(q.state ?? "");
    const c = hash ? this.d.store.saasConsents.byStateHash(hash) : undefined;
    if (!c) return refuse("consent_state_mismatch", "its state was not issued by this edge");
    const now = this.d.clock.now();
    if (c.result !== null) return refuse("consent_state_used", "its state was answered already");
    if (c.expiresAt <= now) {
      return refuse("consent_state_expired", "its state has expired; start admin consent again");
    }
    const a = consentAnswer(q);
    const answer: { result: "granted" | "denied"; error: string | null; tenant: string | null } =
      a.kind === "denied"
        ? { result: "denied", error: `${a.error}: ${a.description}`.slice(0, 400), tenant: null }
        : a.tenant && a.tenant !== c.tenantId
        ? {
          result: "denied",
          error: `tenant_mismatch: consent was given in tenant ${a.tenant}, not ${c.tenantId}`,
          tenant: a.tenant,
        }
        : { result: "granted", error: null, tenant: a.tenant ?? c.tenantId };
    this.d.store.transaction(() => {
      if (!this.d.store.saasConsents.answer(c.id, { ...answer, at: now })) {
        refuse("consent_state_used", "its state was answered already");
      }
      this.#audit("identity-platform", "saas.consent.answer", c.id, {
        name: c.name,
        result: answer.result,
        error: answer.error,
      });
    });
    return this.get(c.id);
  }

  /** The granted request a tenant being added follows; refused when it does not fit. */
  forTenant(
    id: string,
    t: { app: SaasApp; name: string; tenantId: string; clientId: string },
  ): SaasConsentRecord {
    const c = this.d.store.saasConsents.get(id);
    if (!c) {
      throw new InputError(
        "consent_not_found",
        `Cannot find admin-consent request "${id.slice(0, 64)}"`,
      );
    }
    if (
      c.app !== t.app || c.tenantId !== t.tenantId || c.clientId !== t.clientId ||
      c.name.toLowerCase() !== t.name.toLowerCase()
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
}
