/**
 * The connector's PAC file: fetched when the bundle names a new hash, kept in
 * the data directory and served from it by the local listener at /proxy.pac
 * when the edge cannot be reached (a new process included); the listener
 * still relays proxy requests, and the system proxy file names the PAC URL
 * (alone for "enforce PAC", beside http_proxy for the local proxy mode).
 */
import assert from "node:assert/strict";
import { PacCache } from "../../src/connector/pac_cache.ts";
import { LocalProxy } from "../../src/connector/local_proxy.ts";
import type { EdgeApi } from "../../src/connector/edge_api.ts";
import { EdgeUnreachableError } from "../../src/connector/edge_api.ts";
import { sha256Hex } from "../../src/identity/secrets.ts";

const PAC = 'function FindProxyForURL(u, h) { return "PROXY 100.64.0.1:3128; DIRECT"; }\n';

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** The edge's PAC endpoint as the connector sees it: `text`, or unreachable when null. */
function edge(state: { text: string | null; calls: number }): EdgeApi {
  return {
    fetchPac(etag?: string | null) {
      state.calls++;
      if (state.text === null) {
        return Promise.reject(new EdgeUnreachableError("Cannot reach the edge: refused"));
      }
      return Promise.resolve(
        etag === sha256Hex(state.text)
          ? { status: "unchanged" as const }
          : { status: "updated" as const, text: state.text },
      );
    },
  } as unknown as EdgeApi;
}

async function get(port: number, path: string) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, type: res.headers.get("content-type"), text: await res.text() };
}

Deno.test("PAC cache and the local listener: fetch, serve, cache for when the edge is gone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pcpac" });
  const upstream = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const proxies: LocalProxy[] = [];
  try {
    // A stand-in for the edge proxy: answers each request with the line it got.
    void (async () => {
      for await (const c of upstream) {
        void (async () => {
          const buf = new Uint8Array(4096);
          const n = await c.read(buf) ?? 0;
          const line = new TextDecoder().decode(buf.subarray(0, n)).split("\r\n")[0];
          const body = `relayed: ${line}`;
          await c.write(new TextEncoder().encode(
            `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
          ));
          c.close();
        })();
      }
    })();
    const target = { address: "127.0.0.1", port: (upstream.addr as Deno.NetAddr).port };
    const state = { text: PAC as string | null, calls: 0 };
    const cache = new PacCache({ dataDir: dir, client: () => edge(state) });
    const port = freePort();
    const envFile = `${dir}/proxy.sh`;
    const lp = new LocalProxy({ port, envFile, pac: () => cache.text() });
    proxies.push(lp);

    await lp.set(target, "enforce_pac");
    assert.equal((await get(port, "/proxy.pac")).status, 503, "nothing fetched yet");
    assert.equal(
      await Deno.readTextFile(envFile),
      `# Written by the Portcullis connector ("enforce PAC"); removed when it stops.\n` +
        `export auto_proxy=http://127.0.0.1:${port}/proxy.pac\n`,
    );
    await cache.sync({ sha256: sha256Hex(PAC) });
    const served = await get(port, "/proxy.pac");
    assert.deepEqual(served, {
      status: 200,
      type: "application/x-ns-proxy-autoconfig",
      text: PAC,
    });
    assert.equal(await Deno.readTextFile(`${dir}/proxy.pac`), PAC);
    // The same hash again: no fetch.
    const calls = state.calls;
    await cache.sync({ sha256: sha256Hex(PAC) });
    assert.equal(state.calls, calls);
    // Proxy requests still go to the edge proxy, whole.
    const relayed = await fetch(`http://127.0.0.1:${port}/other`).then((r) => r.text());
    assert.equal(relayed, "relayed: GET /other HTTP/1.1");

    // The local proxy mode offers the same PAC URL beside http_proxy.
    await lp.set(target, "local_proxy");
    const env = await Deno.readTextFile(envFile);
    assert.match(env, new RegExp(`export http_proxy=http://127\\.0\\.0\\.1:${port} `));
    assert.match(env, new RegExp(`export auto_proxy=http://127\\.0\\.0\\.1:${port}/proxy\\.pac`));

    // A new PAC on the edge, but the edge is gone: the copy held is served.
    state.text = null;
    await cache.sync({ sha256: "f".repeat(64) });
    assert.equal((await get(port, "/proxy.pac")).text, PAC);
    await lp.stop();
    assert.equal(await Deno.stat(envFile).then(() => true, () => false), false, "restored");

    // A new process while the edge is unreachable: the cached file is served.
    const cold = new PacCache({ dataDir: dir, client: () => edge(state) });
    const lp2 = new LocalProxy({ port, envFile: null, pac: () => cold.text() });
    proxies.push(lp2);
    await lp2.set(target, "enforce_pac");
    await cold.sync({ sha256: "f".repeat(64) });
    assert.equal((await get(port, "/proxy.pac")).text, PAC);
    // HEAD answers headers only; a garbage first line is relayed (the edge proxy judges it).
    const head = await fetch(`http://127.0.0.1:${port}/proxy.pac`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
  } finally {
    for (const p of proxies) await p.stop();
    upstream.close();
    await Deno.remove(dir, { recursive: true });
  }
});
