/**
 * Benchmark (not a test): what an OIDC sign-in costs the edge.
 *
 *   deno task bench:signin [concurrent=50] [rounds=3]
 *
 * Against `oidc-provider` under Node on loopback (test/identity/oidc_idp.ts):
 * for each round, `concurrent` users go through the IdP's login form (not
 * timed) up to the redirect back to the edge; then all their callbacks hit
 * the edge at once and each is timed from the callback request to the
 * redeemed sign-in token (code exchange with PKCE, ID token checks, user
 * record, grant, redeem = the session). Side by side in the same run, the
 * reference: the same number of bare openid-client code exchanges against
 * the same IdP at once (what any relying party must pay). Prints p50/p99 of
 * both and their ratio.
 */
import * as client from "openid-client";
import { setLogSinks } from "../../src/log.ts";
import { fixture } from "../http/helpers.ts";
import { OIDC_ACCOUNTS, OidcIdp } from "../identity/oidc_idp.ts";

setLogSinks([]);
const concurrent = Number(Deno.args[0] ?? 50);
const rounds = Number(Deno.args[1] ?? 3);
const SECRET = "bench-client-secret-0123456789abcdef";
const REF_CB = "http://127.0.0.1:1/ref-callback";

/** Follows the IdP's redirects and forms with a cookie jar until a redirect to `stop`. */
async function loginUntil(url: string, stop: string, email: string, password: string) {
  const jar = new Map<string, string>();
  let current = url;
  let init: RequestInit = {};
  for (let hop = 0; hop < 20; hop++) {
    const headers = new Headers(init.headers);
    if (jar.size) headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
    const res = await fetch(current, { ...init, headers, redirect: "manual" });
    for (const sc of res.headers.getSetCookie()) {
      const [pair] = sc.split(";");
      const eq = pair.indexOf("=");
      if (eq > 0) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    const loc = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && loc) {
      await res.body?.cancel();
      const next = new URL(loc, current).href;
      if (next.startsWith(stop)) return next;
      current = next;
      init = {};
      continue;
    }
    const html = await res.text();
    const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
    if (!action) throw new Error(`No login form at ${current}: ${html.slice(0, 200)}`);
    current = new URL(action, current).href;
    init = {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ login: email, password }),
    };
  }
  throw new Error("Too many redirects");
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

const edge = await fixture({ clockStart: Date.now() });
const clockSync = setInterval(() => edge.clock.setWall(Date.now()), 100);
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  (req, info) => edge.app.fetch(req, { remoteAddr: info.remoteAddr }),
);
const E = `http://127.0.0.1:${server.addr.port}`;
const CB = `${E}/api/v1/signin/oidc/callback`;
const accounts = Array.from({ length: concurrent }, (_, i) => ({
  email: `user${i}@corp.example`,
  password: `password-${i}`,
  name: `User ${i}`,
  groups: ["staff", `team-${i % 5}`],
}));
try {
  await using idp = await OidcIdp.start({
    clients: [{
      client_id: "portcullis-edge",
      client_secret: SECRET,
      redirect_uris: [CB, REF_CB],
      grant_types: ["authorization_code"],
    }],
    accounts: [...OIDC_ACCOUNTS, ...accounts],
  });
  const created = await edge.adminReq("POST", "/api/v1/admin/identity-providers", {
    name: "Bench",
    kind: "oidc",
    domains: ["corp.example"],
    oidc: { issuer: idp.issuer, clientId: "portcullis-edge", clientSecret: SECRET },
  });
  if (created.status !== 201) throw new Error(await created.text());
  const ref = await client.discovery(new URL(idp.issuer), "portcullis-edge", SECRET, undefined, {
    execute: [client.allowInsecureRequests],
  });
  client.enableNonRepudiationChecks(ref);

  const edgeMs: number[] = [];
  const refMs: number[] = [];
  for (let round = 0; round < rounds; round++) {
    // Edge: each user logs in at the IdP up to the redirect back (not timed).
    const callbacks = await Promise.all(accounts.map(async (a, i) => {
      const start = await fetch(
        `${E}/api/v1/signin/start?email=${encodeURIComponent(a.email)}&return=${
          encodeURIComponent("http://127.0.0.1:9/done")
        }&state=bench-state-${round}-${i}-0123456789`,
        { redirect: "manual" },
      );
      return await loginUntil(start.headers.get("location")!, CB, a.email, a.password);
    }));
    // Reference: bare code exchanges, codes fetched the same way (not timed).
    const refCodes = await Promise.all(accounts.map(async (a) => {
      const verifier = client.randomPKCECodeVerifier();
      const nonce = client.randomNonce();
      const state = client.randomState();
      const url = client.buildAuthorizationUrl(ref, {
        redirect_uri: REF_CB,
        scope: "openid email profile groups",
        state,
        nonce,
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: "S256",
        prompt: "login",
      });
      const back = await loginUntil(url.href, REF_CB, a.email, a.password);
      return { back, verifier, nonce, state };
    }));
    // Timed, all at once: the edge's callback and redeem...
    const e = await Promise.all(callbacks.map(async (cb) => {
      const t0 = performance.now();
      const r = await fetch(cb, { redirect: "manual" });
      const grant = new URL(r.headers.get("location")!).searchParams.get("grant");
      await r.body?.cancel();
      const red = await fetch(`${E}/api/v1/signin/redeem`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ grant }),
      });
      if (red.status !== 200) throw new Error(`redeem: ${red.status} ${await red.text()}`);
      await red.body?.cancel();
      return performance.now() - t0;
    }));
    // ...and the reference exchanges.
    const r = await Promise.all(refCodes.map(async (c) => {
      const t0 = performance.now();
      await client.authorizationCodeGrant(ref, new URL(c.back), {
        pkceCodeVerifier: c.verifier,
        expectedNonce: c.nonce,
        expectedState: c.state,
        idTokenExpected: true,
      });
      return performance.now() - t0;
    }));
    edgeMs.push(...e);
    refMs.push(...r);
    console.log(
      `round ${round + 1}: edge p99 ${pct(e, 99).toFixed(1)} ms, bare openid-client p99 ${
        pct(r, 99).toFixed(1)
      } ms`,
    );
  }
  const line = (name: string, xs: number[]) =>
    `${name.padEnd(40)} p50 ${pct(xs, 50).toFixed(1).padStart(7)} ms   p99 ${
      pct(xs, 99).toFixed(1).padStart(7)
    } ms   (n=${xs.length})`;
  console.log(`\n${concurrent} concurrent sign-ins × ${rounds} rounds`);
  console.log(line("edge: callback → redeemed sign-in", edgeMs));
  console.log(line("reference: bare openid-client exchange", refMs));
  console.log(`ratio (p99 edge / p99 reference): ${(pct(edgeMs, 99) / pct(refMs, 99)).toFixed(2)}`);
} finally {
  clearInterval(clockSync);
  await server.shutdown();
}
