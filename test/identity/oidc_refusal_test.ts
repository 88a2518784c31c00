/**
 * Crafted OIDC answers the edge must refuse, one per row: an ID token
 * signed by another key, with `alg: none`, a wrong nonce, issuer or
 * audience, an expired one, a code whose PKCE verifier does not match, an
 * unknown state, an IdP error. The IdP here is a small local server whose
 * token endpoint checks PKCE as a real one does and hands back the ID token
 * the row asks for (signed with jose); openid-client on the edge does every
 * check. Each refusal is a 4xx with its code and a sentence, an audit entry,
 * and no user or sign-in.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { setLogSinks } from "../../src/log.ts";
import { fixture } from "../http/helpers.ts";

setLogSinks([]);

type Claims = Record<string, unknown>;
interface Row {
  what: string;
  /** The ID token the IdP hands out, from the claims a correct one would carry. */
  token?: (
    good: Claims,
    sign: (c: Claims, key?: CryptoKey, alg?: string) => Promise<string>,
  ) => Promise<string>;
  /** The verifier the token endpoint sees is wrong (PKCE mismatch). */
  pkceMismatch?: boolean;
  /** The callback's query instead of code + state. */
  callback?: (state: string) => Record<string, string>;
  status: number;
  code: string;
}

Deno.test({
  name: "oidc refusals: forged, alg none, nonce, issuer, audience, expiry, PKCE, state, IdP error",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const edge = await fixture({ clockStart: Date.now() });
    const good = await generateKeyPair("RS256");
    const attacker = await generateKeyPair("RS256");
    const jwk = { ...(await exportJWK(good.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    let row: Row | undefined;
    // What the last authorization request carried.
    let asked = { nonce: "", challenge: "" };
    const ac = new AbortController();
    const idp: Deno.HttpServer<Deno.NetAddr> = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
      async (req): Promise<Response> => {
        const u = new URL(req.url);
        const iss: string = `http://127.0.0.1:${idp.addr.port}`;
        if (u.pathname === "/.well-known/openid-configuration") {
          return Response.json({
            issuer: iss,
            authorization_endpoint: `${iss}/auth`,
            token_endpoint: `${iss}/token`,
            jwks_uri: `${iss}/jwks`,
            response_types_supported: ["code"],
            subject_types_supported: ["public"],
            id_token_signing_alg_values_supported: ["RS256"],
            code_challenge_methods_supported: ["S256"],
          });
        }
        if (u.pathname === "/jwks") return Response.json({ keys: [jwk] });
        if (u.pathname === "/token") {
          const form = new URLSearchParams(await req.text());
          const verifier = form.get("code_verifier") ?? "";
          const challenge = createHash("sha256").update(verifier).digest("base64url");
          if (row?.pkceMismatch || challenge !== asked.challenge) {
            return Response.json({
              error: "invalid_grant",
              error_description: "PKCE verification failed",
            }, {
              status: 400,
            });
          }
          const now = Math.floor(Date.now() / 1000);
          const claims: Claims = {
            iss,
            aud: "portcullis-edge",
            sub: "ana",
            email: "ana@corp.example",
            nonce: asked.nonce,
            iat: now,
            exp: now + 300,
          };
          const sign = (c: Claims, key: CryptoKey = good.privateKey, alg = "RS256") =>
            new SignJWT(c).setProtectedHeader({ alg, kid: "k1" }).sign(key);
          const idToken = row?.token ? await row.token(claims, sign) : await sign(claims);
          return Response.json({ access_token: "at", token_type: "Bearer", id_token: idToken });
        }
        return new Response("no", { status: 404 });
      },
    );
    const ISS = `http://127.0.0.1:${idp.addr.port}`;
    try {
      const p = await edge.adminReq("POST", "/api/v1/admin/identity-providers", {
        name: "Crafted",
        kind: "oidc",
        domains: ["corp.example"],
        oidc: {
          issuer: ISS,
          clientId: "portcullis-edge",
          clientSecret: "crafted-secret-0123456789",
        },
      });
      assert.equal(p.status, 201, await p.text());
      const none = (c: Claims) => {
        const b = (o: unknown) =>
          btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
        return Promise.resolve(`${b({ alg: "none" })}.${b(c)}.`);
      };
      const rows: Row[] = [
        { what: "the correct answer (control)", status: 302, code: "" },
        {
          what: "ID token signed by another key",
          token: (c, sign) => sign(c, attacker.privateKey),
          status: 403,
          code: "oidc_signature_invalid",
        },
        { what: "alg none", token: (c) => none(c), status: 403, code: "oidc_token_invalid" },
        {
          what: "wrong nonce",
          token: (c, sign) => sign({ ...c, nonce: "not-the-nonce" }),
          status: 403,
          code: "oidc_nonce_mismatch",
        },
        {
          what: "wrong issuer",
          token: (c, sign) => sign({ ...c, iss: "https://evil.example" }),
          status: 403,
          code: "oidc_issuer_mismatch",
        },
        {
          what: "wrong audience",
          token: (c, sign) => sign({ ...c, aud: "another-client" }),
          status: 403,
          code: "oidc_audience_mismatch",
        },
        {
          what: "expired",
          token: (c, sign) => sign({ ...c, iat: Number(c.iat) - 7200, exp: Number(c.iat) - 3600 }),
          status: 403,
          code: "oidc_token_expired",
        },
        { what: "PKCE mismatch", pkceMismatch: true, status: 403, code: "oidc_code_rejected" },
        {
          what: "unknown state",
          callback: () => ({ code: "c", state: "forged-state" }),
          status: 400,
          code: "oidc_state_unknown",
        },
        {
          what: "IdP error",
          callback: (state) => ({ error: "access_denied", state }),
          status: 403,
          code: "oidc_idp_error",
        },
      ];
      for (const r of rows) {
        await t.step(r.what, async () => {
          row = r;
          const start = await edge.req(
            "GET",
            `/api/v1/signin/start?email=ana%40corp.example&return=${
              encodeURIComponent("http://127.0.0.1:9/done")
            }&state=client-state-0123456789`,
          );
          assert.equal(start.status, 302, await start.text());
          const auth = new URL(start.headers.get("location")!);
          asked = {
            nonce: auth.searchParams.get("nonce")!,
            challenge: auth.searchParams.get("code_challenge")!,
          };
          assert.equal(auth.searchParams.get("code_challenge_method"), "S256");
          const state = auth.searchParams.get("state")!;
          const q = r.callback ? r.callback(state) : { code: "code-1", state };
          const before = edge.store.tableCounts();
          const audits = edge.store.audit.count("signin.refused");
          const res = await edge.req(
            "GET",
            `/api/v1/signin/oidc/callback?${new URLSearchParams(q)}`,
          );
          if (r.status === 302) {
            assert.equal(res.status, 302, await res.text());
            assert.match(res.headers.get("location")!, /grant=/);
            return;
          }
          const j = await res.json();
          assert.equal(res.status, r.status, `${r.what}: ${JSON.stringify(j)}`);
          assert.equal(j.error.code, r.code, `${r.what}: ${j.error.message}`);
          assert.ok(j.error.message.length > 10);
          assert.equal(edge.store.audit.count("signin.refused"), audits + 1, "audited");
          const after = edge.store.tableCounts();
          assert.equal(after.user_signins, before.user_signins, "no sign-in");
          assert.equal(after.users, before.users, "no user");
        });
      }
    } finally {
      ac.abort();
      await idp.finished;
    }
  },
});
