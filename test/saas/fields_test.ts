/**
 * The SaaS domain's pure pieces with tables: the SharePoint private-key
 * file (a PEM key and a certificate that match), admin-consent URL, state
 * and redirect answers, expiry flags, Retry-After, and the Graph client's
 * refusal to send its token off the Graph origin.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { InputError } from "../../src/errors.ts";
import {
  adminConsentUrl,
  consentAnswer,
  expiryState,
  GraphClient,
  GraphError,
  parseRetryAfter,
  parseSharePointKey,
} from "../../src/saas/mod.ts";
import { consentStateHash, newConsentState, validRedirectUri } from "../../src/saas/consent.ts";
import { sharePointKeyFile } from "./issuer.ts";

async function openssl(args: string[], cwd: string) {
  const o = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!o.success) throw new Error(new TextDecoder().decode(o.stderr));
}

Deno.test("saas SharePoint key file: a matching RSA key and certificate, and every way it can be wrong", async () => {
  const good = await sharePointKeyFile("sp-good");
  const other = await sharePointKeyFile("sp-other");
  const k = parseSharePointKey(good.json);
  assert.match(k.privateKeyPem, /^-----BEGIN PRIVATE KEY-----/);
  assert.match(k.certificatePem, /^-----BEGIN CERTIFICATE-----/);
  assert.match(k.thumbprintSha256, /^[0-9a-f]{64}$/);
  assert.match(k.subject, /CN=sp-good/);
  assert.ok(k.notAfter > Date.now() + 300 * 86_400_000);

  // openssl pkcs12 output keeps "Bag Attributes" around the PEM blocks; \n escapes as the guide says.
  const bagged = JSON.stringify({
    private_key:
      `Bag Attributes\n    localKeyID: 01 02\nKey Attributes: <No Attributes>\n${good.keyPem}`,
    public_cert: `Bag Attributes\n    localKeyID: 01 02\nsubject=CN = sp-good\n${good.certPem}`,
  });
  assert.equal(parseSharePointKey(bagged).thumbprintSha256, k.thumbprintSha256);

  const dir = await Deno.makeTempDir();
  try {
    await openssl(["genrsa", "-traditional", "-out", "rsa.pem", "2048"], dir);
    await openssl(
      ["pkcs8", "-topk8", "-in", "rsa.pem", "-out", "enc.pem", "-passout", "pass:x"],
      dir,
    );
    const traditional = await Deno.readTextFile(`${dir}/rsa.pem`);
    const encrypted = await Deno.readTextFile(`${dir}/enc.pem`);
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey
      .export({ format: "pem", type: "pkcs8" }) as string;
    const small = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey
      .export({ format: "pem", type: "pkcs8" }) as string;
    const cases: [string, string, RegExp][] = [
      ["not JSON", "{private_key:", /not valid JSON/],
      ["an array", "[]", /expected a JSON object/],
      ["no private_key", JSON.stringify({ public_cert: good.certPem }), /"private_key" is missing/],
      ["no public_cert", JSON.stringify({ private_key: good.keyPem }), /"public_cert" is missing/],
      [
        "an unknown field",
        JSON.stringify({ private_key: good.keyPem, public_cert: good.certPem, pfx: "x" }),
        /unknown field "pfx"/,
      ],
      [
        "a key that is not PEM",
        JSON.stringify({ private_key: "MIIE...", public_cert: good.certPem }),
        /not a PEM private key/,
      ],
      [
        "a certificate that is not PEM",
        JSON.stringify({ private_key: good.keyPem, public_cert: "hello" }),
        /not a PEM certificate/,
      ],
      [
        "a corrupt certificate",
        JSON.stringify({
          private_key: good.keyPem,
          public_cert: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
        }),
        /not a readable X\.509/,
      ],
      [
        "an encrypted key",
        JSON.stringify({ private_key: encrypted, public_cert: good.certPem }),
        /encrypted; export it without a passphrase/,
      ],
      [
        "an EC key",
        JSON.stringify({ private_key: ec, public_cert: good.certPem }),
        /ec key; Entra certificate credentials need RSA/,
      ],
      [
        "a 1024-bit key",
        JSON.stringify({ private_key: small, public_cert: good.certPem }),
        /1024-bit RSA key/,
      ],
      [
        "the key of another certificate",
        JSON.stringify({ private_key: other.keyPem, public_cert: good.certPem }),
        /does not belong to the certificate \(CN=sp-good/,
      ],
      [
        "a traditional RSA key of another certificate",
        JSON.stringify({ private_key: traditional, public_cert: good.certPem }),
        /does not belong/,
      ],
      [
        "over 64 KiB",
        JSON.stringify({
          private_key: good.keyPem + " ".repeat(70_000),
          public_cert: good.certPem,
        }),
        /larger than 65536 bytes/,
      ],
    ];
    for (const [name, text, re] of cases) {
      let err: unknown;
      try {
        parseSharePointKey(text);
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof InputError, `${name}: refused`);
      assert.equal(err.code, "sharepoint_key_invalid", name);
      assert.equal(err.status, 400, name);
      assert.match(err.message, re, name);
      const material = [good.keyPem, other.keyPem, traditional, good.certPem]
        .flatMap((p) => p.split("\n")).filter((l) => l.length >= 40);
      for (const line of material) {
        assert.ok(!err.message.includes(line), `${name}: no key material in the message`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saas consent: URL, state naming the tenant, and what the redirect says", () => {
  const { state, hash } = newConsentState("Contoso OneDrive");
  assert.match(state, /^add-saas-tenant\/Contoso%20OneDrive\/[A-Za-z0-9_-]{43}$/);
  assert.equal(consentStateHash(state), hash);
  assert.equal(consentStateHash(state.replace("Contoso", "Fabrikam")) === hash, false);
  for (const bad of ["", "x", "add-saas-tenant//abc", `${state}x`, "a".repeat(500)]) {
    assert.equal(consentStateHash(bad), null, bad.slice(0, 30));
  }
  const url = new URL(adminConsentUrl(
    "https://login.microsoftonline.com/",
    "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "0c0c0c0c-1111-2222-3333-444444444444",
    "http://127.0.0.1:8080/saas/consent",
    state,
  ));
  assert.equal(
    url.origin + url.pathname,
    "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/adminconsent",
  );
  assert.equal(url.searchParams.get("client_id"), "0c0c0c0c-1111-2222-3333-444444444444");
  assert.equal(url.searchParams.get("state"), state);
  assert.equal(url.searchParams.get("redirect_uri"), "http://127.0.0.1:8080/saas/consent");

  assert.deepEqual(consentAnswer({ admin_consent: "True", tenant: "ABC" }), {
    kind: "granted",
    tenant: "abc",
  });
  assert.deepEqual(
    consentAnswer({ error: "access_denied", error_description: "AADSTS65004: declined\u0000" }),
    {
      kind: "denied",
      error: "access_denied",
      description: "AADSTS65004: declined ",
    },
  );
  assert.equal(consentAnswer({}).kind, "denied");
  assert.equal(consentAnswer({ admin_consent: "False" }).kind, "denied");

  for (
    const [uri, ok] of [
      ["https://edge.example/saas/consent", true],
      ["http://127.0.0.1:8080/saas/consent", true],
      ["https://edge.example/other", false],
      ["https://user:pw@edge.example/saas/consent", false],
      ["https://edge.example/saas/consent#x", false],
      ["javascript:alert(1)//saas/consent", false],
      ["not a url", false],
    ] as const
  ) {
    assert.equal(validRedirectUri(uri), ok, uri);
  }
});

Deno.test("saas fields: expiry flags and Retry-After", () => {
  const now = Date.UTC(2026, 0, 1);
  const day = 86_400_000;
  assert.equal(expiryState(null, now), "unknown");
  assert.equal(expiryState(now - 1, now), "expired");
  assert.equal(expiryState(now, now), "expired");
  assert.equal(expiryState(now + 29 * day, now), "expiring");
  assert.equal(expiryState(now + 30 * day, now), "expiring");
  assert.equal(expiryState(now + 31 * day, now), "ok");

  assert.equal(parseRetryAfter(null, now), null);
  assert.equal(parseRetryAfter("3", now), 3000);
  assert.equal(parseRetryAfter(" 0 ", now), 0);
  assert.equal(parseRetryAfter(new Date(now + 5000).toUTCString(), now), 5000);
  assert.equal(parseRetryAfter(new Date(now - 5000).toUTCString(), now), 0);
  assert.equal(parseRetryAfter("soon", now), null);
  assert.equal(parseRetryAfter("-1", now), null);
});

Deno.test("saas graph client: links off the Graph origin are refused before the token is sent", async () => {
  let sent = 0;
  const graph = new GraphClient({
    baseUrl: "https://graph.example/v1.0",
    token: () => Promise.resolve("tok"),
    fetch: (_u, init) => {
      sent++;
      assert.equal(new Headers(init?.headers).get("authorization"), "Bearer tok");
      return Promise.resolve(Response.json({
        value: [],
        "@odata.nextLink": "https://evil.example/v1.0/steal",
      }));
    },
  });
  assert.equal(graph.resolve("/users"), "https://graph.example/v1.0/users");
  assert.equal(
    graph.resolve("https://graph.example/v1.0/x?y=1"),
    "https://graph.example/v1.0/x?y=1",
  );
  await assert.rejects(graph.page("/drives/d/root/delta"), (e) => {
    assert.ok(e instanceof GraphError);
    assert.match(e.message, /Refused to follow a Graph link to https:\/\/evil\.example/);
    return true;
  });
  assert.equal(sent, 1);
  assert.throws(() => graph.resolve("ftp://graph.example/x"), GraphError);
});

Deno.test("saas graph client: gives up when asked to wait longer than it accepts", async () => {
  let calls = 0;
  const graph = new GraphClient({
    baseUrl: "https://graph.example/v1.0",
    token: () => Promise.resolve("tok"),
    maxWaitMs: 10_000,
    fetch: () => {
      calls++;
      return Promise.resolve(
        new Response("{}", { status: 429, headers: { "retry-after": "3600" } }),
      );
    },
  });
  await assert.rejects(
    graph.get("/users"),
    /kept throttling GET \/v1\.0\/users .*asked to wait 3600 s/,
  );
  assert.equal(calls, 1);
});
