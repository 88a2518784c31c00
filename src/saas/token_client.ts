/**
 * Tokens by client credentials through `@azure/msal-node` — with a client
 * secret, or, for SharePoint, with a client assertion signed by the
 * uploaded certificate's key. The authority URL is configurable (national
 * clouds; tests point it at a local issuer), and MSAL talks through a
 * network module over `fetch` (fetch_network.ts), the same one the Graph
 * client uses, so a deployment's trust settings apply to both.
 *
 * The granted permissions are read from the token MSAL hands back: its
 * `roles` (application permissions) and `scp` (delegated ones). The token
 * is decoded, not verified: it came from the issuer over TLS, and tokens
 * for Microsoft's own APIs are not meant to be verified by clients.
 *
 * Issuer refusals are sorted into three kinds, because they mean different
 * things for a tenant: the credentials are wrong (nothing to save), one API
 * is not granted (its rows are missing), or the issuer cannot be reached.
 */
import { ConfidentialClientApplication, LogLevel, ServerError } from "@azure/msal-node";
import { decodeJwt } from "jose";
import { PortcullisError } from "../errors.ts";
import { sha256Hex } from "../identity/secrets.ts";
import { logger } from "../log.ts";
import { type FetchFn, fetchNetworkModule } from "./fetch_network.ts";

const log = logger("saas.token");

/** Microsoft's public-cloud authority host. */
export const DEFAULT_AUTHORITY_URL = "https://login.microsoftonline.com";

/** How a client proves itself. */
export type ClientCredential =
  | { kind: "secret"; secret: string }
  | {
    kind: "certificate";
    privateKeyPem: string;
    certificatePem: string;
    thumbprintSha256: string;
  };

/** One token request. */
export interface TokenRequest {
  tenantId: string;
  clientId: string;
  credential: ClientCredential;
  /** e.g. "https://graph.microsoft.com/.default". */
  scope: string;
  /** Ask the issuer even when a cached token is still valid (validation: grants may have changed). */
  fresh?: boolean;
}

/** A token and what it grants. */
export interface IssuedToken {
  accessToken: string;
  /** Expiry (ms), when the issuer said. */
  expiresAt: number | null;
  roles: string[];
  /** Delegated permissions, or null when the token has no `scp`. */
  scopes: string[] | null;
}

/** Why no token was issued. */
export type TokenFailure = "credentials" | "resource" | "unreachable";

/** The issuer did not issue a token. */
export class TokenError extends PortcullisError {
  /** What the refusal means for the tenant. */
  readonly failure: TokenFailure;
  /** The issuer's OAuth error code (e.g. "invalid_client"), when it sent one. */
  readonly issuerCode: string | null;
  /** The issuer's own words ("AADSTS7000215: Invalid client secret provided. …"), trimmed. */
  readonly detail: string;
  constructor(failure: TokenFailure, issuerCode: string | null, message: string, detail = "") {
    const [code, status] = failure === "credentials"
      ? ["client_credentials_rejected", 400]
      : failure === "resource"
      ? ["api_not_granted", 400]
      : ["issuer_unreachable", 502];
    super(code, message, status);
    this.failure = failure;
    this.issuerCode = issuerCode;
    this.detail = detail;
  }
}

/** Issues tokens; the seam between the service and MSAL. */
export interface TokenSource {
  /** A token for `req` (cached until shortly before it expires); throws TokenError. */
  acquire(req: TokenRequest): Promise<IssuedToken>;
}

// AADSTS codes that say the app or tenant is not what was entered.
const CREDENTIAL_AADSTS = new Set([
  "7000215", // invalid client secret
  "7000222", // expired client secret
  "700016", // application not found in the directory
  "700027", // client assertion signature invalid
  "700023", // certificate not registered
  "90002", // tenant not found
  "900023", // tenant identifier not valid
  "90033", // tenant not found (national cloud)
  "7000112", // application disabled
]);
// AADSTS codes that say one API is not available to the app.
const RESOURCE_AADSTS = new Set([
  "500011", // resource principal not found in the tenant
  "65001", // consent missing
  "650057", // API not in the app's requested permissions
  "70011", // invalid scope
  "500014", // service principal of the API disabled
]);

function classify(code: string | null, message: string): TokenFailure {
  const aadsts = /AADSTS(\d{5,7})/.exec(message)?.[1];
  if (aadsts && CREDENTIAL_AADSTS.has(aadsts)) return "credentials";
  if (aadsts && RESOURCE_AADSTS.has(aadsts)) return "resource";
  switch (code) {
    case "invalid_client":
    case "unauthorized_client":
    case "invalid_tenant":
      return "credentials";
    case "invalid_resource":
    case "invalid_scope":
    case "consent_required":
    case "invalid_grant":
      return "resource";
    case "server_error":
    case "temporarily_unavailable":
      return "unreachable";
    default:
      return code ? "credentials" : "unreachable";
  }
}

/** The issuer's words, trimmed for a sentence: first line, no trace ids, no secret. */
function issuerText(text: string, secret: string | null): string {
  // Peer text: bounded first, then cut with string search (no regex over it).
  let t = text.slice(0, 2000).split(/\r?\n/)[0];
  // MSAL formats Entra's answer as "Error(s): … - Timestamp: … - Description: … - Trace ID: …".
  const d = t.indexOf("Description: ");
  if (d >= 0) t = t.slice(d + "Description: ".length);
  for (const marker of ["Trace ID:", "Correlation ID:"]) {
    const i = t.indexOf(marker);
    if (i >= 0) t = t.slice(0, i);
  }
  t = t.trim();
  if (t.endsWith("-")) t = t.slice(0, -1).trim();
  if (secret && secret.length >= 4) t = t.split(secret).join("[redacted]");
  // deno-lint-ignore no-control-regex
  return t.replace(/[\x00-\x1f\x7f]/g, " ").slice(0, 300);
}

function decode(accessToken: string): { roles: string[]; scopes: string[] | null; tid?: string } {
  let claims: Record<string, unknown>;
  try {
    claims = decodeJwt(accessToken);
  } catch {
    throw new TokenError(
      "unreachable",
      null,
      "Cannot read the token the issuer returned: it is not a JWT",
    );
  }
  const roles = Array.isArray(claims.roles)
    ? claims.roles.filter((r): r is string => typeof r === "string")
    : [];
  const scopes = typeof claims.scp === "string" ? claims.scp.split(" ").filter(Boolean) : null;
  return { roles, scopes, tid: typeof claims.tid === "string" ? claims.tid : undefined };
}

/** Options of `MsalTokenSource`. */
export interface MsalOptions {
  /** Authority host URL; default https://login.microsoftonline.com. */
  authorityUrl?: string;
  /** The fetch every request goes through (default: global fetch). */
  fetch?: FetchFn;
  /** Request timeout (ms); default 30 s. */
  timeoutMs?: number;
}

/** Client-credential tokens from Entra (or any issuer at `authorityUrl`) through MSAL. */
export class MsalTokenSource implements TokenSource {
  readonly authorityUrl: string;
  #apps = new Map<string, ConfidentialClientApplication>();
  #network;

  constructor(opts: MsalOptions = {}) {
    this.authorityUrl = (opts.authorityUrl ?? DEFAULT_AUTHORITY_URL).replace(/\/+$/, "");
    this.#network = fetchNetworkModule(opts.fetch ?? fetch, opts.timeoutMs ?? 30_000);
  }

  #app(req: TokenRequest): ConfidentialClientApplication {
    // One MSAL application (and token cache) per credential; the key is a
    // hash, so no secret sits in the map's keys.
    const cred = req.credential.kind === "secret"
      ? `s:${sha256Hex(req.credential.secret)}`
      : `c:${req.credential.thumbprintSha256}:${sha256Hex(req.credential.privateKeyPem)}`;
    const key = `${req.tenantId}|${req.clientId}|${cred}`;
    let app = this.#apps.get(key);
    if (app) return app;
    const host = new URL(this.authorityUrl).host;
    app = new ConfidentialClientApplication({
      auth: {
        clientId: req.clientId,
        authority: `${this.authorityUrl}/${req.tenantId}`,
        // A host other than Microsoft's is trusted as configured, without
        // Microsoft's instance discovery.
        knownAuthorities: host === new URL(DEFAULT_AUTHORITY_URL).host ? [] : [host],
        ...(req.credential.kind === "secret" ? { clientSecret: req.credential.secret } : {
          clientCertificate: {
            thumbprintSha256: req.credential.thumbprintSha256,
            privateKey: req.credential.privateKeyPem,
            x5c: req.credential.certificatePem,
          },
        }),
      },
      system: {
        networkClient: this.#network,
        loggerOptions: {
          piiLoggingEnabled: false,
          logLevel: LogLevel.Warning,
          loggerCallback: (_level, message, containsPii) => {
            if (!containsPii) log.debug("msal", { message: message.slice(0, 300) });
          },
        },
      },
    });
    if (this.#apps.size >= 256) this.#apps.delete(this.#apps.keys().next().value!);
    this.#apps.set(key, app);
    return app;
  }

  /** A token for `req`; throws TokenError. */
  async acquire(req: TokenRequest): Promise<IssuedToken> {
    const secret = req.credential.kind === "secret" ? req.credential.secret : null;
    let result;
    try {
      result = await this.#app(req).acquireTokenByClientCredential({
        scopes: [req.scope],
        skipCache: req.fresh === true,
      });
    } catch (e) {
      const err = e as { errorCode?: string; errorMessage?: string; message?: string };
      const code = typeof err.errorCode === "string" ? err.errorCode : null;
      const text = issuerText(err.errorMessage || err.message || String(e), secret);
      // MSAL's own client-side codes (discovery, network) mean the issuer was not reached.
      const serverSide = e instanceof ServerError;
      const failure = serverSide ? classify(code, text) : "unreachable";
      const what = failure === "credentials"
        ? "the issuer refused the client credentials"
        : failure === "resource"
        ? "the issuer refused a token for this API"
        : "the issuer could not be reached or did not answer as an OAuth issuer";
      throw new TokenError(
        failure,
        serverSide ? code : null,
        `Cannot get a token for ${req.scope} in tenant ${req.tenantId} from ${this.authorityUrl}: ${what} (${
          code ? `${code}: ` : ""
        }${text})`,
        `${code ? `${code}: ` : ""}${text}`,
      );
    }
    if (!result?.accessToken) {
      throw new TokenError(
        "unreachable",
        null,
        `Cannot get a token for ${req.scope} in tenant ${req.tenantId}: the issuer returned none`,
      );
    }
    const claims = decode(result.accessToken);
    if (claims.tid && claims.tid.toLowerCase() !== req.tenantId.toLowerCase()) {
      throw new TokenError(
        "credentials",
        null,
        `Cannot use the token for tenant ${req.tenantId}: the issuer issued it for tenant ${
          claims.tid.slice(0, 64)
        }`,
      );
    }
    return {
      accessToken: result.accessToken,
      expiresAt: result.expiresOn ? result.expiresOn.getTime() : null,
      roles: claims.roles,
      scopes: claims.scopes,
    };
  }
}
