/**
 * Benchmark (not a test): SAML response validation per second and latency,
 * ours (envelope gate + node-saml + assertion checks + stores) side by side
 * with bare node-saml `validatePostResponseAsync` (the reference, with its
 * own clock and audience checks on) in the same run, over the same kind of
 * signed response, reported as a ratio. Also the time to refuse the cheapest
 * and the costliest kinds of garbage, so a flood of junk is priced.
 *
 * Usage: deno run -A test/bench/saml.ts [count=400]
 */
import { SAML, ValidateInResponseTo } from "@node-saml/node-saml";
import { systemClock } from "../../src/clock.ts";
import {
  MAX_RESPONSE_CHARS,
  MemoryReplayCache,
  MemoryRequestStore,
  SamlError,
  SamlServiceProvider,
  type SamlSpConfig,
} from "../../src/identity/saml.ts";
import {
  assertionXml,
  b64,
  defaultFields,
  makeTestKey,
  responseXml,
  sign,
} from "../identity/saml_craft.ts";

const count = Number(Deno.args[0] ?? 400);
const key = await makeTestKey("bench idp");
const SP: SamlSpConfig = {
  entityId: "https://edge.bench/sp",
  acsUrl: "https://edge.bench/acs",
  groupAttribute: "groups",
  emailAttribute: "email",
  wantAssertionsSigned: true,
};
const IDP = {
  entityId: "https://idp.bench",
  ssoUrl: "https://idp.bench/sso",
  certificates: [key.certificate],
};
const sp = new SamlServiceProvider(SP, IDP, {
  replay: new MemoryReplayCache(systemClock),
  requests: new MemoryRequestStore(systemClock),
  clock: systemClock,
});
const reference = new SAML({
  issuer: SP.entityId,
  callbackUrl: SP.acsUrl,
  idpCert: key.certificate,
  audience: SP.entityId,
  wantAssertionsSigned: true,
  wantAuthnResponseSigned: false,
  acceptedClockSkewMs: 120_000,
  validateInResponseTo: ValidateInResponseTo.never,
});

async function responses(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const { requestId } = await sp.loginUrl("");
    const base = {
      idpEntityId: IDP.entityId,
      spEntityId: SP.entityId,
      acsUrl: SP.acsUrl,
      now: Date.now(),
    };
    const f = defaultFields(base, requestId);
    f.attributes.groups = Array.from({ length: 20 }, (_, g) => `group-${g}`);
    out.push(b64(responseXml(f, sign(assertionXml(f), "Assertion", key))));
  }
  return out;
}

function stats(name: string, ms: number[]): number {
  const s = [...ms].sort((a, b) => a - b);
  const total = ms.reduce((a, b) => a + b, 0);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(2);
  const perSec = (ms.length / total) * 1000;
  console.log(
    `${name.padEnd(34)} ${perSec.toFixed(0).padStart(6)}/s  p50 ${q(0.5)} ms  p99 ${q(0.99)} ms`,
  );
  return perSec;
}

async function time(fn: (r: string) => Promise<unknown>, inputs: string[]): Promise<number[]> {
  const ms: number[] = [];
  for (const r of inputs) {
    const t = performance.now();
    await fn(r);
    ms.push(performance.now() - t);
  }
  return ms;
}

const ours = await responses(count);
const theirs = await responses(count);
// Warm both paths (JIT, module initialisation) before measuring.
for (const r of (await responses(20))) await sp.validatePostResponse({ SAMLResponse: r });
for (const r of (await responses(20))) {
  await reference.validatePostResponseAsync({ SAMLResponse: r });
}

const refusedWith = async (r: string) => {
  try {
    await sp.validatePostResponse({ SAMLResponse: r });
  } catch (e) {
    if (e instanceof SamlError) return;
    throw e;
  }
  throw new Error("Benchmark input was accepted");
};

console.log(`SAML response validation, ${count} signed responses each (20 groups, ~5 KB):`);
// Interleaved, one of ours then one of theirs, so load from other work on
// the machine falls on both alike.
const oursMs: number[] = [];
const theirsMs: number[] = [];
for (let i = 0; i < count; i++) {
  oursMs.push(...(await time((r) => sp.validatePostResponse({ SAMLResponse: r }), [ours[i]])));
  theirsMs.push(
    ...(await time((r) => reference.validatePostResponseAsync({ SAMLResponse: r }), [theirs[i]])),
  );
}
const a = stats("portcullis SamlServiceProvider", oursMs);
const b = stats("bare node-saml (reference)", theirsMs);
console.log(`ratio ours/reference: ${(a / b).toFixed(2)} (throughput)`);
const replays = ours.slice(0, Math.min(200, count));
stats("refuse a replay", await time(refusedWith, replays));
stats("refuse garbage (not base64)", await time(refusedWith, Array(200).fill("!!")));
const wide = b64(
  `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" Version="2.0">${
    "<x a='1'>t</x>".repeat(Math.floor((MAX_RESPONSE_CHARS * 3) / 4 / 16))
  }</samlp:Response>`,
);
stats(
  `refuse ${(wide.length / 1024).toFixed(0)} KiB of wide junk XML`,
  await time(refusedWith, Array(20).fill(wide)),
);
