/**
 * Identity providers on the edge: several at once, each an OIDC issuer or a
 * SAML IdP, each serving the email domains it claims, one of them the
 * default for every other domain. `ana@corp.example` meets the provider
 * that claims `corp.example`; with no provider at all, end users sign in as
 * local users (password + TOTP).
 *
 * The service validates everything an admin types before anything is
 * written (so a refused change leaves the store as it was), seals the OIDC
 * client secret through the store's sealer, never hands the secret back
 * (views say only whether one is set), and imports SAML IdP metadata from
 * text or from a URL it fetches once, with a size and time bound.
 */
import type { Clock } from "../clock.ts";
import { InputError, NotFoundError, PortcullisError } from "../errors.ts";
import type { IdentityProviderRecord, Store } from "../store/mod.ts";
import { MAX_METADATA_BYTES, parseIdpMetadata } from "./saml_metadata.ts";
import { randomId } from "./secrets.ts";

/** Provider names: 1-64 letters, digits, space, '.', '-', '_'. */
export const PROVIDER_NAME = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;
/** @see PROVIDER_NAME */
export const PROVIDER_NAME_MSG = "expected 1-64 letters, digits, spaces, '.', '-' or '_'";
/** An email domain: dot-separated DNS labels, at most 253 characters. */
export const EMAIL_DOMAIN = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
/** @see EMAIL_DOMAIN */
export const EMAIL_DOMAIN_MSG = "expected a domain such as corp.example";
/** A claim or attribute name (OIDC claim, SAML attribute Name or FriendlyName). */
export const CLAIM_NAME = /^[A-Za-z0-9_.:/-]{1,256}$/;
/** @see CLAIM_NAME */
export const CLAIM_NAME_MSG = "expected 1-256 letters, digits, '_', '.', ':', '/' or '-'";
/** A Portcullis group name (as local users and enrolment keys use). */
export const GROUP_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
/** Most domains one provider may claim. */
export const MAX_DOMAINS = 100;
/** Most group mappings one provider may carry. */
export const MAX_GROUP_MAP = 500;
/** How long fetching IdP metadata from a URL may take. */
export const METADATA_FETCH_TIMEOUT_MS = 10_000;

/** What an admin gives for an OIDC provider. */
export interface OidcSettings {
  issuer: string;
  clientId: string;
  /** Kept when left out of an update. */
  clientSecret?: string;
}

/** What an admin gives for a SAML provider: the metadata's text or a URL to fetch it from. */
export interface SamlSettings {
  metadataXml?: string;
  metadataUrl?: string;
}

/** A new provider. */
export interface ProviderInput {
  name: string;
  kind: "oidc" | "saml";
  domains: string[];
  isDefault: boolean;
  groupsClaim: string;
  groupMap: Record<string, string>;
  oidc?: OidcSettings;
  saml?: SamlSettings;
}

/** A change to a provider (every field optional). */
export type ProviderPatch = Partial<Omit<ProviderInput, "kind">>;

/** A provider as the API and console show it: never the client secret. */
export interface ProviderView {
  id: string;
  name: string;
  kind: "oidc" | "saml";
  domains: string[];
  isDefault: boolean;
  groupsClaim: string;
  groupMap: Record<string, string>;
  oidc: { issuer: string; clientId: string; clientSecretSet: boolean } | null;
  saml:
    | { entityId: string; ssoUrl: string; metadataUrl: string | null; certificates: number }
    | null;
  createdAt: number;
  updatedAt: number;
}

/** The fetch the metadata import uses (injected so tests and a private CA can supply theirs). */
export type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

const invalid = (message: string) => new InputError("invalid_identity_provider", message);

/** Lower-cases and checks every domain; refuses duplicates in the list. */
export function normalizeDomains(domains: readonly string[]): string[] {
  if (domains.length > MAX_DOMAINS) {
    throw invalid(`A provider may claim at most ${MAX_DOMAINS} domains, got ${domains.length}`);
  }
  const out: string[] = [];
  for (const raw of domains) {
    const d = raw.trim().toLowerCase();
    if (d.length > 253 || !EMAIL_DOMAIN.test(d)) {
      throw invalid(`Domain ${JSON.stringify(raw.slice(0, 80))}: ${EMAIL_DOMAIN_MSG}`);
    }
    if (out.includes(d)) throw invalid(`Domain "${d}" is listed twice`);
    out.push(d);
  }
  return out.sort();
}

/** The domain of an email address, lower case, or null when it has none. */
export function emailDomain(email: string): string | null {
  const at = email.lastIndexOf("@");
  if (at < 1 || at === email.length - 1) return null;
  const d = email.slice(at + 1).trim().toLowerCase();
  return EMAIL_DOMAIN.test(d) ? d : null;
}

/**
 * Checks an OIDC issuer URL: https, or http only to a loopback host (a test
 * IdP, an IdP on the same box); no credentials, query or fragment.
 */
export function checkIssuer(issuer: string): string {
  let u: URL;
  try {
    u = new URL(issuer);
  } catch {
    throw invalid(`OIDC issuer ${JSON.stringify(issuer.slice(0, 200))} is not a URL`);
  }
  const loopback = ["localhost", "127.0.0.1", "[::1]"].includes(u.hostname);
  if (u.protocol !== "https:" && !(u.protocol === "http:" && loopback)) {
    throw invalid(
      `OIDC issuer "${u.href}" must use https (http is allowed for a loopback host only)`,
    );
  }
  if (u.username || u.password || u.search || u.hash) {
    throw invalid(`OIDC issuer "${u.href}" must not carry credentials, a query or a fragment`);
  }
  // The issuer is compared as a string with the discovery document's; keep it as typed.
  return issuer;
}

function checkGroupMap(map: Record<string, string>): Record<string, string> {
  const entries = Object.entries(map);
  if (entries.length > MAX_GROUP_MAP) {
    throw invalid(`A provider may map at most ${MAX_GROUP_MAP} groups, got ${entries.length}`);
  }
  const out: Record<string, string> = {};
  for (const [from, to] of entries) {
    if (from.length < 1 || from.length > 256) {
      throw invalid(
        `Group mapping ${JSON.stringify(from.slice(0, 80))}: expected 1-256 characters`,
      );
    }
    if (!GROUP_NAME.test(to)) {
      throw invalid(
        `Group mapping "${from.slice(0, 80)}" → ${
          JSON.stringify(to.slice(0, 80))
        }: expected 1-64 letters, digits, '.', '-' or '_'`,
      );
    }
    out[from] = to;
  }
  return out;
}

/** The Portcullis groups of IdP groups: mapped names, others as they come, no duplicates. */
export function mapGroups(idpGroups: readonly string[], map: Record<string, string>): string[] {
  const out = new Set<string>();
  for (const g of idpGroups) out.add(Object.hasOwn(map, g) ? map[g] : g);
  return [...out];
}

/** The view of a stored provider (the SAML metadata parsed for its summary). */
export function providerView(p: IdentityProviderRecord): ProviderView {
  let saml: ProviderView["saml"] = null;
  if (p.saml) {
    const md = parseIdpMetadata(p.saml.metadataXml);
    saml = {
      entityId: md.entityId,
      ssoUrl: md.ssoUrl,
      metadataUrl: p.saml.metadataUrl,
      certificates: md.certificates.length,
    };
  }
  return {
    id: p.id,
    name: p.name,
    kind: p.kind,
    domains: p.domains,
    isDefault: p.isDefault,
    groupsClaim: p.groupsClaim,
    groupMap: p.groupMap,
    oidc: p.oidc
      ? { issuer: p.oidc.issuer, clientId: p.oidc.clientId, clientSecretSet: true }
      : null,
    saml,
    createdAt: p.createdAt,
    updatedAt: p.updatedAt,
  };
}

/** Reads a response body up to `limit` bytes; null when it is larger. */
async function readLimited(res: Response, limit: number): Promise<string | null> {
  const reader = res.body?.getReader();
  if (!reader) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return new TextDecoder().decode(out);
}

/** The edge's identity providers: validation, storage, routing by email domain. */
export class IdentityProviders {
  constructor(
    private store: Store,
    private clock: Clock,
    private fetchFn: FetchFn = fetch,
  ) {}

  /** Every provider, by name. */
  list(): ProviderView[] {
    return this.store.identityProviders.list().map(providerView);
  }

  /** One provider's stored record (with the clear secret: for sign-in only). */
  record(id: string): IdentityProviderRecord {
    const p = this.store.identityProviders.get(id);
    if (!p) {
      throw new NotFoundError(
        "identity_provider_not_found",
        `No identity provider with id "${id.slice(0, 64)}"`,
      );
    }
    return p;
  }

  /** One provider's view. */
  get(id: string): ProviderView {
    return providerView(this.record(id));
  }

  /** The provider for an email address (its domain's, else the default), or null: local sign-in. */
  forEmail(email: string): IdentityProviderRecord | null {
    const d = emailDomain(email);
    const p = d ? this.store.identityProviders.forDomain(d) : undefined;
    return p ?? this.store.identityProviders.list().find((x) => x.isDefault) ?? null;
  }

  /** Fetches and parses SAML metadata, or parses the text given. */
  async #samlFrom(s: SamlSettings): Promise<NonNullable<IdentityProviderRecord["saml"]>> {
    if ((s.metadataXml === undefined) === (s.metadataUrl === undefined)) {
      throw invalid(
        "A SAML provider needs its IdP metadata: give either metadataXml or metadataUrl",
      );
    }
    let xml = s.metadataXml;
    if (s.metadataUrl !== undefined) {
      let u: URL;
      try {
        u = new URL(s.metadataUrl);
      } catch {
        throw invalid(`Metadata URL ${JSON.stringify(s.metadataUrl.slice(0, 200))} is not a URL`);
      }
      if (u.protocol !== "https:" && u.protocol !== "http:") {
        throw invalid(`Metadata URL "${u.href}" must use https or http`);
      }
      let res: Response;
      try {
        res = await this.fetchFn(u.href, {
          signal: AbortSignal.timeout(METADATA_FETCH_TIMEOUT_MS),
          redirect: "error",
        });
      } catch (e) {
        throw new PortcullisError(
          "metadata_fetch_failed",
          `Cannot fetch the IdP metadata from "${u.href}": ${(e as Error).message}`,
          502,
        );
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw new PortcullisError(
          "metadata_fetch_failed",
          `Cannot fetch the IdP metadata from "${u.href}": it answered ${res.status}`,
          502,
        );
      }
      const text = await readLimited(res, MAX_METADATA_BYTES);
      if (text === null) {
        throw invalid(
          `The IdP metadata at "${u.href}" is larger than ${MAX_METADATA_BYTES} bytes`,
        );
      }
      xml = text;
    }
    const md = parseIdpMetadata(xml!); // SamlError (400 invalid_metadata) names what is wrong
    return { metadataXml: xml!, metadataUrl: s.metadataUrl ?? null, entityId: md.entityId };
  }

  #checkFree(name: string, domains: string[], self?: string): void {
    const byName = this.store.identityProviders.byName(name);
    if (byName && byName.id !== self) {
      throw new InputError(
        "identity_provider_exists",
        `An identity provider named "${name}" already exists`,
        409,
      );
    }
    for (const d of domains) {
      const owner = this.store.identityProviders.domainOwner(d);
      if (owner && owner !== self) {
        const other = this.store.identityProviders.get(owner)?.name ?? owner;
        throw new InputError(
          "domain_taken",
          `Domain "${d}" already belongs to the identity provider "${other}"`,
          409,
        );
      }
    }
  }

  #audit(actor: string, action: string, p: IdentityProviderRecord): void {
    this.store.audit.insert({
      at: this.clock.now(),
      actor,
      action,
      target: p.id,
      detail: { name: p.name, kind: p.kind, domains: p.domains, isDefault: p.isDefault },
    });
  }

  /** Adds a provider; every check runs before anything is written. */
  async create(input: ProviderInput, actor: string): Promise<ProviderView> {
    const name = input.name.trim();
    if (!PROVIDER_NAME.test(name)) throw invalid(`Provider name: ${PROVIDER_NAME_MSG}`);
    if (!CLAIM_NAME.test(input.groupsClaim)) {
      throw invalid(
        `Groups claim ${JSON.stringify(input.groupsClaim.slice(0, 80))}: ${CLAIM_NAME_MSG}`,
      );
    }
    const domains = normalizeDomains(input.domains);
    const groupMap = checkGroupMap(input.groupMap);
    let oidc: IdentityProviderRecord["oidc"] = null;
    let saml: IdentityProviderRecord["saml"] = null;
    if (input.kind === "oidc") {
      if (!input.oidc) throw invalid("An OIDC provider needs its issuer, client ID and secret");
      if (!input.oidc.clientSecret) throw invalid("An OIDC provider needs its client secret");
      oidc = {
        issuer: checkIssuer(input.oidc.issuer),
        clientId: input.oidc.clientId,
        clientSecret: input.oidc.clientSecret,
      };
    } else {
      if (!input.saml) throw invalid("A SAML provider needs its IdP metadata");
      saml = await this.#samlFrom(input.saml);
    }
    this.#checkFree(name, domains);
    const now = this.clock.now();
    const rec: IdentityProviderRecord = {
      id: randomId("idp"),
      name,
      kind: input.kind,
      domains,
      isDefault: input.isDefault,
      groupsClaim: input.groupsClaim,
      groupMap,
      oidc,
      saml,
      createdAt: now,
      updatedAt: now,
    };
    this.store.transaction(() => {
      this.#checkFree(name, domains); // again inside the transaction: the fetch may have taken a while
      this.store.identityProviders.insert(rec);
      this.#audit(actor, "identity_provider.create", rec);
    });
    return providerView(rec);
  }

  /** Changes a provider; fields left out keep their value (the secret too). */
  async update(id: string, patch: ProviderPatch, actor: string): Promise<ProviderView> {
    const cur = this.record(id);
    const name = patch.name?.trim() ?? cur.name;
    if (!PROVIDER_NAME.test(name)) throw invalid(`Provider name: ${PROVIDER_NAME_MSG}`);
    const groupsClaim = patch.groupsClaim ?? cur.groupsClaim;
    if (!CLAIM_NAME.test(groupsClaim)) {
      throw invalid(`Groups claim ${JSON.stringify(groupsClaim.slice(0, 80))}: ${CLAIM_NAME_MSG}`);
    }
    const domains = patch.domains ? normalizeDomains(patch.domains) : cur.domains;
    const groupMap = patch.groupMap ? checkGroupMap(patch.groupMap) : cur.groupMap;
    let oidc = cur.oidc;
    let saml = cur.saml;
    if (cur.kind === "oidc" && patch.oidc) {
      oidc = {
        issuer: checkIssuer(patch.oidc.issuer),
        clientId: patch.oidc.clientId,
        clientSecret: patch.oidc.clientSecret || cur.oidc!.clientSecret,
      };
    } else if (patch.oidc) {
      throw invalid(`"${cur.name}" is a SAML provider: it takes SAML settings, not OIDC ones`);
    }
    if (cur.kind === "saml" && patch.saml) saml = await this.#samlFrom(patch.saml);
    else if (patch.saml) {
      throw invalid(`"${cur.name}" is an OIDC provider: it takes OIDC settings, not SAML ones`);
    }
    const rec: IdentityProviderRecord = {
      ...cur,
      name,
      domains,
      isDefault: patch.isDefault ?? cur.isDefault,
      groupsClaim,
      groupMap,
      oidc,
      saml,
      updatedAt: this.clock.now(),
    };
    this.store.transaction(() => {
      this.#checkFree(name, domains, id);
      this.store.identityProviders.update(rec);
      this.#audit(actor, "identity_provider.update", rec);
    });
    return providerView(rec);
  }

  /** Deletes a provider. */
  delete(id: string, actor: string): void {
    const cur = this.record(id);
    this.store.transaction(() => {
      this.store.identityProviders.delete(id);
      this.#audit(actor, "identity_provider.delete", cur);
    });
  }
}
