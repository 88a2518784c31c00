/**
 * A local Microsoft identity platform for SaaS tests: `oauth2-mock-server`
 * (an independent OAuth2 issuer, run here under Deno) over HTTPS, with the
 * paths of Entra's v2 endpoints for one directory —
 * `/{tenant}/v2.0/.well-known/openid-configuration`,
 * `/{tenant}/oauth2/v2.0/token`, `/{tenant}/discovery/v2.0/keys` — and an
 * `adminconsent` page that sends the browser back to the redirect URI as
 * Entra does (`admin_consent=True&tenant=…&state=…`, or
 * `error=access_denied`).
 *
 * What Entra decides, the test registers per application: its client
 * secret or certificate (client assertions are verified against the
 * certificate with jose, as Entra would), and per API scope the
 * application permissions it was granted, which the issuer puts into the
 * token's `roles`, or a refusal of that API. Wrong credentials get Entra's
 * errors: invalid_client (AADSTS7000215, AADSTS700027) and
 * unauthorized_client (AADSTS700016) for an app the directory lacks.
 *
 * oauth2-mock-server's hooks are synchronous and checking an assertion is
 * not, so the listener reads each token request first, decides, and hands
 * the request (its body replayed) to the library's handler, whose hooks
 * then apply the decision.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import { Readable } from "node:stream";
import { Events, OAuth2Issuer, OAuth2Service } from "oauth2-mock-server";
import { decodeProtectedHeader, importX509, jwtVerify } from "jose";
import { makeCaAndServer, type TlsFixture } from "../connector/tls_fixture.ts";

/** What the directory knows about one application. */
export interface AppRegistration {
  secret?: string;
  /** PEM certificate uploaded to the app registration (client assertions). */
  certificatePem?: string;
  /** Granted application permissions per API scope; "refuse" (or absent) for an API it cannot get. */
  grants: Record<string, string[] | "refuse">;
}

/** One token request the issuer saw. */
export interface SeenRequest {
  clientId: string;
  scope: string;
  /** How the client proved itself. */
  auth: "secret" | "assertion" | "none";
  /** "issued", or the OAuth error it got. */
  outcome: string;
}

/** A running issuer. */
export interface TestIssuer {
  /** The authority host URL (what saasAuthorityUrl is set to). */
  url: string;
  tenantId: string;
  tls: TlsFixture;
  apps: Map<string, AppRegistration>;
  seen: SeenRequest[];
  /** How the next admin-consent request is answered. */
  consentAnswer: "grant" | "deny" | { tenant: string };
  stop(): Promise<void>;
}

type Body = Record<string, string>;
type Refusal = { statusCode: number; body: Record<string, unknown> };

function aadError(statusCode: number, error: string, description: string): Refusal {
  return { statusCode, body: { error, error_description: description } };
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Starts an issuer for directory `tenantId` on a free port of 127.0.0.1. */
export async function startIssuer(tenantId: string, tls?: TlsFixture): Promise<TestIssuer> {
  const fixture = tls ?? await makeCaAndServer("pc-saas-test-ca");
  const oauth = new OAuth2Issuer();
  await oauth.keys.generate("RS256");
  const service = new OAuth2Service(oauth, {
    wellKnownDocument: `/${tenantId}/v2.0/.well-known/openid-configuration`,
    token: `/${tenantId}/oauth2/v2.0/token`,
    jwks: `/${tenantId}/discovery/v2.0/keys`,
    authorize: `/${tenantId}/oauth2/v2.0/authorize`,
  });
  const issuer: TestIssuer = {
    url: "",
    tenantId,
    tls: fixture,
    apps: new Map(),
    seen: [],
    consentAnswer: "grant",
    stop: () => Promise.resolve(),
  };
  const tokenPath = `/${tenantId}/oauth2/v2.0/token`;
  const verdicts = new WeakMap<object, Refusal | string[]>();

  const judge = async (body: Body): Promise<Refusal | string[]> => {
    const clientId = body.client_id ?? "";
    const scope = body.scope ?? "";
    const seen: SeenRequest = {
      clientId,
      scope,
      auth: body.client_secret ? "secret" : body.client_assertion ? "assertion" : "none",
      outcome: "issued",
    };
    issuer.seen.push(seen);
    const refuse = (r: Refusal) => {
      seen.outcome = String(r.body.error);
      return r;
    };
    const reg = issuer.apps.get(clientId);
    if (!reg) {
      return refuse(aadError(
        400,
        "unauthorized_client",
        `AADSTS700016: Application with identifier '${clientId}' was not found in the directory '${tenantId}'.`,
      ));
    }
    if (body.client_secret !== undefined) {
      if (!reg.secret || body.client_secret !== reg.secret) {
        return refuse(aadError(
          401,
          "invalid_client",
          `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
        ));
      }
    } else if (body.client_assertion !== undefined) {
      try {
        if (!reg.certificatePem) throw new Error("no certificate is registered");
        const alg = decodeProtectedHeader(body.client_assertion).alg ?? "RS256";
        await jwtVerify(body.client_assertion, await importX509(reg.certificatePem, alg), {
          issuer: clientId,
          subject: clientId,
          audience: `${issuer.url}${tokenPath}`,
          // Entra allows five minutes of clock skew (MSAL rounds nbf to the nearest second).
          clockTolerance: 300,
        });
      } catch (e) {
        return refuse(aadError(
          401,
          "invalid_client",
          `AADSTS700027: The certificate used to sign the client assertion is not registered on application '${clientId}', or the signature is not valid (${
            (e as Error).message
          }).`,
        ));
      }
    } else {
      return refuse(aadError(
        401,
        "invalid_client",
        "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
      ));
    }
    const grant = reg.grants[scope];
    if (grant === undefined || grant === "refuse") {
      return refuse(aadError(
        400,
        "invalid_resource",
        `AADSTS500011: The resource principal named ${
          scope.replace(/\/\.default$/, "")
        } was not found in the tenant named ${tenantId}.`,
      ));
    }
    return grant;
  };

  service.on(Events.BeforeTokenSigning, (token, req) => {
    const body = (req.body ?? {}) as Body;
    token.payload.tid = tenantId;
    token.payload.azp = body.client_id;
    token.payload.aud = (body.scope ?? "").replace(/\/\.default$/, "");
    const v = verdicts.get(req);
    if (Array.isArray(v)) token.payload.roles = v;
  });
  service.on(Events.BeforeResponse, (res, req) => {
    const v = verdicts.get(req);
    if (v && !Array.isArray(v)) {
      res.statusCode = v.statusCode;
      res.body = v.body;
    }
  });
  // Entra's admin-consent page, answered at once: the admin "accepts" or "declines".
  service.addRoute("GET", `/${tenantId}/adminconsent`, (req, res) => {
    const q = req.query as Record<string, string>;
    const back = new URL(q.redirect_uri);
    const a = issuer.consentAnswer;
    if (a === "deny") {
      back.searchParams.set("error", "access_denied");
      back.searchParams.set(
        "error_description",
        "AADSTS65004: User declined to consent to access the app.",
      );
    } else {
      back.searchParams.set("admin_consent", "True");
      back.searchParams.set("tenant", typeof a === "object" ? a.tenant : tenantId);
    }
    back.searchParams.set("state", q.state);
    res.writeHead(302, { location: back.toString() });
    res.end();
  });

  const handler = service.requestHandler;
  const server = createServer(
    { key: fixture.keyPem, cert: fixture.certPem },
    (req: IncomingMessage, res: ServerResponse) => {
      if (req.method !== "POST" || !(req.url ?? "").startsWith(tokenPath)) {
        handler(req, res);
        return;
      }
      (async () => {
        const raw = await readAll(req);
        const body = Object.fromEntries(new URLSearchParams(raw.toString("utf8")));
        // The same request, with its body readable again, for the library.
        const replay = Object.assign(Readable.from([raw]), {
          headers: req.headers,
          method: req.method,
          url: req.url,
          socket: req.socket,
          httpVersion: req.httpVersion,
        }) as unknown as IncomingMessage;
        verdicts.set(replay, await judge(body));
        handler(replay, res);
      })().catch((e) => {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(String(e));
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  issuer.url = `https://127.0.0.1:${port}`;
  // Entra's issuer is on the authority's host; MSAL checks that they agree.
  oauth.url = issuer.url;
  issuer.stop = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    });
  return issuer;
}

/** A fetch that trusts the issuer's (and the Graph emulator's) CA, for the edge's SaaS side. */
export function trustingFetch(tls: TlsFixture): {
  fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
  close(): void;
} {
  const client = Deno.createHttpClient({ caCerts: [tls.caPem] });
  return {
    fetch: (input, init) => fetch(input, { ...init, client }),
    close: () => client.close(),
  };
}

/** A fresh RSA key and self-signed certificate, as a SharePoint private-key JSON file. */
export async function sharePointKeyFile(cn = "pc-sharepoint-test"): Promise<
  { json: string; keyPem: string; certPem: string }
> {
  const dir = await Deno.makeTempDir({ prefix: "pc-spkey-" });
  try {
    const out = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
        "-days",
        "365",
        "-subj",
        `/CN=${cn}`,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    const keyPem = await Deno.readTextFile(`${dir}/key.pem`);
    const certPem = await Deno.readTextFile(`${dir}/cert.pem`);
    return { json: JSON.stringify({ private_key: keyPem, public_cert: certPem }), keyPem, certPem };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
