import type { SqlDatabase } from "../sql.ts";
import { num, type Row, str, strOrNull } from "./row.ts";
import type { Sealer } from "./users.ts";

/** A stored identity provider; `oidc.clientSecret` is opened (clear) in memory only. */
export interface IdentityProviderRecord {
  id: string;
  name: string;
  kind: "oidc" | "saml";
  /** Email domains routed to this provider, lower case. */
  domains: string[];
  /** Used for every domain no provider claims. */
  isDefault: boolean;
  /** OIDC claim or SAML attribute that carries the user's groups. */
  groupsClaim: string;
  /** IdP group name → Portcullis group name (unmapped IdP groups keep their name). */
  groupMap: Record<string, string>;
  oidc: { issuer: string; clientId: string; clientSecret: string } | null;
  saml: { metadataXml: string; metadataUrl: string | null; entityId: string } | null;
  createdAt: number;
  updatedAt: number;
}

const CLEAR: Sealer = { seal: (s) => s, open: (s) => s };

/** Identity providers and the email domains they serve. */
export class IdentityProvidersRepo {
  constructor(private db: SqlDatabase, private sealer: Sealer = CLEAR) {}

  #map(r: Row): IdentityProviderRecord {
    const id = str(r.id);
    return {
      id,
      name: str(r.name),
      kind: str(r.kind) === "saml" ? "saml" : "oidc",
      domains: this.db.all<Row>(
        "SELECT domain FROM identity_provider_domains WHERE provider_id = ? ORDER BY domain",
        id,
      ).map((d) => str(d.domain)),
      isDefault: num(r.is_default) === 1,
      groupsClaim: str(r.groups_claim),
      groupMap: JSON.parse(str(r.group_map)),
      oidc: r.oidc_issuer === null ? null : {
        issuer: str(r.oidc_issuer),
        clientId: str(r.oidc_client_id),
        clientSecret: this.sealer.open(str(r.oidc_client_secret)),
      },
      saml: r.saml_metadata === null ? null : {
        metadataXml: str(r.saml_metadata),
        metadataUrl: strOrNull(r.saml_metadata_url),
        entityId: str(r.saml_entity_id),
      },
      createdAt: num(r.created_at),
      updatedAt: num(r.updated_at),
    };
  }

  #domains(p: IdentityProviderRecord): void {
    this.db.run("DELETE FROM identity_provider_domains WHERE provider_id = ?", p.id);
    for (const d of p.domains) {
      this.db.run(
        "INSERT INTO identity_provider_domains (domain, provider_id) VALUES (?, ?)",
        d,
        p.id,
      );
    }
  }

  #default(p: IdentityProviderRecord): void {
    if (p.isDefault) {
      this.db.run("UPDATE identity_providers SET is_default = 0 WHERE id <> ?", p.id);
    }
  }

  /** Inserts a provider and its domains; being the default takes it from any other. */
  insert(p: IdentityProviderRecord): void {
    this.db.transaction(() => {
      this.#default(p);
      this.db.run(
        "INSERT INTO identity_providers (id, name, kind, is_default, groups_claim, group_map, oidc_issuer, oidc_client_id, oidc_client_secret, saml_metadata, saml_metadata_url, saml_entity_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        p.id,
        p.name,
        p.kind,
        p.isDefault ? 1 : 0,
        p.groupsClaim,
        JSON.stringify(p.groupMap),
        p.oidc?.issuer ?? null,
        p.oidc?.clientId ?? null,
        p.oidc ? this.sealer.seal(p.oidc.clientSecret) : null,
        p.saml?.metadataXml ?? null,
        p.saml?.metadataUrl ?? null,
        p.saml?.entityId ?? null,
        p.createdAt,
        p.updatedAt,
      );
      this.#domains(p);
    });
  }

  /** Replaces every column but the id, kind and creation time; false when it does not exist. */
  update(p: IdentityProviderRecord): boolean {
    return this.db.transaction(() => {
      this.#default(p);
      const changed = this.db.run(
        "UPDATE identity_providers SET name = ?, is_default = ?, groups_claim = ?, group_map = ?, oidc_issuer = ?, oidc_client_id = ?, oidc_client_secret = ?, saml_metadata = ?, saml_metadata_url = ?, saml_entity_id = ?, updated_at = ? WHERE id = ?",
        p.name,
        p.isDefault ? 1 : 0,
        p.groupsClaim,
        JSON.stringify(p.groupMap),
        p.oidc?.issuer ?? null,
        p.oidc?.clientId ?? null,
        p.oidc ? this.sealer.seal(p.oidc.clientSecret) : null,
        p.saml?.metadataXml ?? null,
        p.saml?.metadataUrl ?? null,
        p.saml?.entityId ?? null,
        p.updatedAt,
        p.id,
      ).changes === 1;
      if (changed) this.#domains(p);
      return changed;
    });
  }

  /** One provider by id. */
  get(id: string): IdentityProviderRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM identity_providers WHERE id = ?", id);
    return r && this.#map(r);
  }

  /** One provider by name (case-insensitive). */
  byName(name: string): IdentityProviderRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM identity_providers WHERE name = ?", name);
    return r && this.#map(r);
  }

  /** The provider that claims `domain`, else the default one. */
  forDomain(domain: string): IdentityProviderRecord | undefined {
    const r = this.db.get<Row>(
      "SELECT p.* FROM identity_providers p JOIN identity_provider_domains d ON d.provider_id = p.id WHERE d.domain = ?",
      domain,
    ) ?? this.db.get<Row>("SELECT * FROM identity_providers WHERE is_default = 1");
    return r && this.#map(r);
  }

  /** Which provider claims `domain` (id), if any. */
  domainOwner(domain: string): string | undefined {
    const r = this.db.get<Row>(
      "SELECT provider_id FROM identity_provider_domains WHERE domain = ?",
      domain,
    );
    return r ? str(r.provider_id) : undefined;
  }

  /** Every provider, by name. */
  list(): IdentityProviderRecord[] {
    return this.db.all<Row>("SELECT * FROM identity_providers ORDER BY name").map((r) =>
      this.#map(r)
    );
  }

  /** Number of providers. */
  count(): number {
    return num(this.db.get<Row>("SELECT COUNT(*) AS n FROM identity_providers")!.n);
  }

  /** Deletes a provider (its domains cascade); returns whether it existed. */
  delete(id: string): boolean {
    return this.db.run("DELETE FROM identity_providers WHERE id = ?", id).changes === 1;
  }
}
