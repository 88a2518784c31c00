import type { SqlDatabase } from "../sql.ts";
import { num, numOrNull, type Row, str, strOrNull } from "./row.ts";
import type { Sealer } from "./users.ts";

/** A stored SaaS tenant; `clientSecret` and `privateKey` are opened (clear) in memory only. */
export interface SaasTenantRecord {
  id: string;
  name: string;
  app: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  secretExpiresAt: number | null;
  /** SharePoint: the PKCS#8 PEM key of the certificate credential. */
  privateKey: string | null;
  certificate: string | null;
  certThumbprint: string | null;
  certSubject: string | null;
  certNotAfter: number | null;
  status: "successful" | "failed";
  /** The last validation (grants per API, missing rows), as JSON. */
  validation: unknown;
  validatedAt: number;
  consentId: string | null;
  /** What a blocking finding triggers, as JSON. */
  remediation: unknown;
  /** Minutes between scheduled scans (0: none). */
  scanIntervalMin: number;
  createdAt: number;
  updatedAt: number;
}

const CLEAR: Sealer = { seal: (s) => s, open: (s) => s };

/** SaaS tenants; the client secret and private key are sealed at rest by the store's sealer. */
export class SaasTenantsRepo {
  constructor(private db: SqlDatabase, private sealer: Sealer = CLEAR) {}

  #map(r: Row): SaasTenantRecord {
    return {
      id: str(r.id),
      name: str(r.name),
      app: str(r.app),
      tenantId: str(r.tenant_id),
      clientId: str(r.client_id),
      clientSecret: this.sealer.open(str(r.client_secret)),
      secretExpiresAt: numOrNull(r.secret_expires_at),
      privateKey: r.private_key === null ? null : this.sealer.open(str(r.private_key)),
      certificate: strOrNull(r.certificate),
      certThumbprint: strOrNull(r.cert_thumbprint),
      certSubject: strOrNull(r.cert_subject),
      certNotAfter: numOrNull(r.cert_not_after),
      status: str(r.status) === "successful" ? "successful" : "failed",
      validation: JSON.parse(str(r.validation)),
      validatedAt: num(r.validated_at),
      consentId: strOrNull(r.consent_id),
      remediation: JSON.parse(str(r.remediation)),
      scanIntervalMin: num(r.scan_interval_min),
      createdAt: num(r.created_at),
      updatedAt: num(r.updated_at),
    };
  }

  /** Inserts a tenant; false when the name is taken. */
  insert(t: SaasTenantRecord): boolean {
    return this.db.run(
      "INSERT INTO saas_tenants (id, name, app, tenant_id, client_id, client_secret, secret_expires_at, private_key, certificate, cert_thumbprint, cert_subject, cert_not_after, status, validation, validated_at, consent_id, remediation, scan_interval_min, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
      t.id,
      t.name,
      t.app,
      t.tenantId,
      t.clientId,
      this.sealer.seal(t.clientSecret),
      t.secretExpiresAt,
      t.privateKey === null ? null : this.sealer.seal(t.privateKey),
      t.certificate,
      t.certThumbprint,
      t.certSubject,
      t.certNotAfter,
      t.status,
      JSON.stringify(t.validation),
      t.validatedAt,
      t.consentId,
      JSON.stringify(t.remediation),
      t.scanIntervalMin,
      t.createdAt,
      t.updatedAt,
    ).changes === 1;
  }

  /** Replaces every column of an existing tenant but its id, name, app and creation time. */
  update(t: SaasTenantRecord): boolean {
    return this.db.run(
      "UPDATE saas_tenants SET tenant_id = ?, client_id = ?, client_secret = ?, secret_expires_at = ?, private_key = ?, certificate = ?, cert_thumbprint = ?, cert_subject = ?, cert_not_after = ?, status = ?, validation = ?, validated_at = ?, consent_id = ?, remediation = ?, scan_interval_min = ?, updated_at = ? WHERE id = ?",
      t.tenantId,
      t.clientId,
      this.sealer.seal(t.clientSecret),
      t.secretExpiresAt,
      t.privateKey === null ? null : this.sealer.seal(t.privateKey),
      t.certificate,
      t.certThumbprint,
      t.certSubject,
      t.certNotAfter,
      t.status,
      JSON.stringify(t.validation),
      t.validatedAt,
      t.consentId,
      JSON.stringify(t.remediation),
      t.scanIntervalMin,
      t.updatedAt,
      t.id,
    ).changes === 1;
  }

  /** One tenant by id. */
  get(id: string): SaasTenantRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM saas_tenants WHERE id = ?", id);
    return r && this.#map(r);
  }

  /** One tenant by name (case-insensitive). */
  byName(name: string): SaasTenantRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM saas_tenants WHERE name = ?", name);
    return r && this.#map(r);
  }

  /** Every tenant, by name. */
  list(): SaasTenantRecord[] {
    return this.db.all<Row>("SELECT * FROM saas_tenants ORDER BY name").map((r) => this.#map(r));
  }

  /** Deletes a tenant (its scans, drives and items cascade); returns whether it existed. */
  delete(id: string): boolean {
    return this.db.run("DELETE FROM saas_tenants WHERE id = ?", id).changes === 1;
  }
}
