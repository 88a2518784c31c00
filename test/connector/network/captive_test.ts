import assert from "node:assert/strict";
import {
  boundFetch,
  CHALLENGE_HEADER,
  type FetchFn,
  probeCaptivePortal,
  probeUrl,
  randomChallenge,
  RESPONSE_HEADER,
} from "../../../src/connector/network/captive.ts";

interface Fixture {
  description: string;
  response: { status: number; headers: Record<string, string>; body: string };
  echo: "correct" | "none";
  expect: { kind: string; reason?: string; status?: number; location?: string };
}

const FIXTURES = new URL("../../../fixtures/captive/", import.meta.url);

async function loadFixtures(): Promise<[string, Fixture][]> {
  const out: [string, Fixture][] = [];
  for await (const e of Deno.readDir(FIXTURES)) {
    if (e.name.endsWith(".json")) {
      out.push([e.name, JSON.parse(await Deno.readTextFile(new URL(e.name, FIXTURES)))]);
    }
  }
  return out.sort(([a], [b]) => a.localeCompare(b));
}

/** A fake fetch answering with a canned response; echoes the challenge when told to. */
function cannedFetch(f: Fixture, seen: RequestInit[]): FetchFn {
  return (_url, init) => {
    seen.push(init);
    const challenge = new Headers(init.headers).get(CHALLENGE_HEADER) ?? "";
    const headers = new Headers(f.response.headers);
    if (f.echo === "correct") headers.set(RESPONSE_HEADER, challenge);
    const nullBody = [204, 205, 304].includes(f.response.status);
    if (nullBody && f.response.body) {
      // The Fetch API forbids a body with 204; model the non-conforming middlebox anyway.
      const res = new Response(f.response.body, { status: 200, headers });
      Object.defineProperty(res, "status", { value: f.response.status });
      return Promise.resolve(res);
    }
    return Promise.resolve(
      new Response(nullBody ? null : f.response.body, { status: f.response.status, headers }),
    );
  };
}

Deno.test("captive: canned responses from fixtures/captive", async () => {
  const fixtures = await loadFixtures();
  assert.ok(fixtures.length >= 8);
  for (const [name, f] of fixtures) {
    const seen: RequestInit[] = [];
    const r = await probeCaptivePortal({ url: "http://edge.test", fetch: cannedFetch(f, seen) });
    assert.equal(r.kind, f.expect.kind, name);
    if (r.kind === "captive") {
      assert.equal(r.reason, f.expect.reason, name);
      assert.equal(r.status, f.expect.status, name);
      assert.equal(r.location, f.expect.location, name);
      assert.ok(r.detail.length > 0);
    }
    assert.equal(seen[0].redirect, "manual", name);
  }
});

Deno.test("captive: every probe sends a fresh challenge", async () => {
  const challenges: string[] = [];
  const fake: FetchFn = (_u, init) => {
    const c = new Headers(init.headers).get(CHALLENGE_HEADER) ?? "";
    challenges.push(c);
    return Promise.resolve(new Response(null, { status: 204, headers: { [RESPONSE_HEADER]: c } }));
  };
  for (let i = 0; i < 3; i++) {
    assert.equal((await probeCaptivePortal({ url: "http://e.test", fetch: fake })).kind, "clear");
  }
  assert.equal(new Set(challenges).size, 3);
  assert.ok(challenges.every((c) => /^[0-9a-f]{32}$/.test(c)));
  assert.notEqual(randomChallenge(), randomChallenge());
});

Deno.test("captive: network errors and timeouts are unreachable, not captive", async () => {
  const failing: FetchFn = () => Promise.reject(new TypeError("connection refused"));
  const r1 = await probeCaptivePortal({ url: "http://e.test", fetch: failing });
  assert.equal(r1.kind, "unreachable");
  assert.match(
    (r1 as { detail: string }).detail,
    /Cannot reach http:\/\/e.test\/generate_204: connection refused/,
  );
  const hanging: FetchFn = (_u, init) =>
    new Promise((_res, rej) =>
      init.signal?.addEventListener("abort", () => rej(new Error("aborted")))
    );
  const t0 = performance.now();
  const r2 = await probeCaptivePortal({ url: "http://e.test", fetch: hanging, timeoutMs: 100 });
  assert.equal(r2.kind, "unreachable");
  assert.match((r2 as { detail: string }).detail, /No answer from .* within 100 ms/);
  assert.ok(performance.now() - t0 < 1000);
});

Deno.test("captive: probe URLs", () => {
  assert.equal(probeUrl("http://203.0.113.7:8080"), "http://203.0.113.7:8080/generate_204");
  assert.equal(probeUrl("http://[2001:db8::1]/x?y#z"), "http://[2001:db8::1]/generate_204");
  assert.throws(() => probeUrl("https://edge.test"), /must be plain http/);
});

Deno.test("captive: a real local edge, then a real hotel portal", async () => {
  let mode: "edge" | "portal_redirect" | "portal_form" | "signed_in" = "edge";
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    if (mode === "edge" || mode === "signed_in") {
      if (url.pathname !== "/generate_204") return new Response("not found", { status: 404 });
      const c = req.headers.get(CHALLENGE_HEADER) ?? "";
      return new Response(null, { status: 204, headers: { [RESPONSE_HEADER]: c } });
    }
    if (mode === "portal_redirect") {
      return new Response(null, {
        status: 302,
        headers: { Location: "http://portal.hotel.test/login" },
      });
    }
    return new Response('<form method="post" action="/accept"><button>OK</button></form>', {
      status: 200,
      headers: { "Content-Type": "text/html" },
    });
  });
  try {
    const url = `http://127.0.0.1:${server.addr.port}`;
    assert.equal((await probeCaptivePortal({ url })).kind, "clear");
    // Bound to a local source address, as the engine does for the physical interface.
    const bound = boundFetch("127.0.0.1");
    try {
      assert.equal((await probeCaptivePortal({ url, fetch: bound.fetch })).kind, "clear");
    } finally {
      bound.close();
    }
    mode = "portal_redirect";
    const r = await probeCaptivePortal({ url });
    assert.equal(r.kind, "captive");
    assert.equal(r.kind === "captive" && r.reason, "redirect");
    assert.equal(r.kind === "captive" && r.location, "http://portal.hotel.test/login");
    mode = "portal_form";
    const f = await probeCaptivePortal({ url });
    assert.equal(f.kind === "captive" && f.reason, "status");
    mode = "signed_in";
    assert.equal((await probeCaptivePortal({ url })).kind, "clear");
  } finally {
    await server.shutdown();
  }
  // The same port, now closed: unreachable.
  const gone = await probeCaptivePortal({
    url: `http://127.0.0.1:${server.addr.port}`,
    timeoutMs: 1000,
  });
  assert.equal(gone.kind, "unreachable");
});
