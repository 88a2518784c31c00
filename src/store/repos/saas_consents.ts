import type { SqlDatabase } from "../sql.ts";
import { num, numOrNull, type Row, str, strOrNull } from "./row.ts";

/** An admin-consent request: what is being added and, once back, what the redirect said. */
export interface SaasConsentRecord {
  id: string;
  /** SHA-256 of the state sent to the identity platform (the state itself is not kept). */
  stateHash: string;
  name: string;
  app: string;
  tenantId: string;
  clientId: string;
  redirectUri: string;
  createdBy: string;
  createdAt: number;
  expiresAt: number;
  result: "granted" | "denied" | null;
  resultAt: number | null;
  error: string | null;
  /** The tenant the consent was given in, as the redirect said. */
  consentedTenant: string | null;
}

function toConsent(r: Row): SaasConsentRecord {
  const result = strOrNull(r.result);
  return {
    id: str(r.id),
    stateHash: str(r.state_hash),
    name: str(r.name),
    app: str(r.app),
    tenantId: str(r.tenant_id),
    clientId: str(r.client_id),
    redirectUri: str(r.redirect_uri),
    createdBy: str(r.created_by),
    createdAt: num(r.created_at),
    expiresAt: num(r.expires_at),
    result: result === "granted" || result === "denied" ? result : null,
    resultAt: numOrNull(r.result_at),
    error: strOrNull(r.error),
    consentedTenant: strOrNull(r.consented_tenant),
  };
}

/** Admin-consent requests. */
export class SaasConsentsRepo {
  constructor(private db: SqlDatabase) {}
  /** Stores a new request. */
  insert(c: SaasConsentRecord): void {
    this.db.run(
      "INSERT INTO saas_consents (id, state_hash, name, app, tenant_id, client_id, redirect_uri, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      c.id,
      c.stateHash,
      c.name,
      c.app,
      c.tenantId,
      c.clientId,
      c.redirectUri,
      c.createdBy,
      c.createdAt,
      c.expiresAt,
    );
  }
  /** One request by id. */
  get(id: string): SaasConsentRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM saas_consents WHERE id = ?", id);
    return r && toConsent(r);
  }
  /** The request a state belongs to. */
  byStateHash(hash: string): SaasConsentRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM saas_consents WHERE state_hash = ?", hash);
    return r && toConsent(r);
  }
  /**
   * Records the redirect's answer, once: false when the request was already
   * answered or has expired (a replayed or late redirect).
   */
  answer(
    id: string,
    a: { result: "granted" | "denied"; at: number; error: string | null; tenant: string | null },
  ): boolean {
    return this.db.run(
      "UPDATE saas_consents SET result = ?, result_at = ?, error = ?, consented_tenant = ? WHERE id = ? AND result IS NULL AND expires_at > ?",
      a.result,
      a.at,
      a.error,
      a.tenant,
      id,
      a.at,
    ).changes === 1;
  }
  /** Deletes unanswered requests past their expiry and answered ones older than `before`. */
  prune(now: number, before: number): number {
    return this.db.run(
      "DELETE FROM saas_consents WHERE (result IS NULL AND expires_at <= ?) OR created_at < ?",
      now,
      before,
    ).changes;
  }
}
