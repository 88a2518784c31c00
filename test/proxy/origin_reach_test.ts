/**
 * Where the web proxy connects: the internet, not the edge. The check alone
 * (a table, with a fake resolver and fake interface addresses), then the
 * real engine and origin client in front of a real loopback origin that
 * counts its connections: refused by default (the origin sees nothing),
 * reached once loopback is allowed.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import { ProxyEngine } from "../../src/proxy/engine.ts";
import { OriginClient } from "../../src/proxy/origin_client.ts";
import { originFailure, OriginReach, OriginRefused } from "../../src/proxy/origin_reach.ts";
import { startProxyServer } from "../../src/proxy/server.ts";
import { UrlPolicy } from "../../src/proxy/url_policy.ts";
import type { AccessSubject } from "../../src/policy/access.ts";

const SUBJECT: AccessSubject = {
  deviceId: "dev-1",
  deviceName: "workstation",
  user: "alice",
  groups: [],
  machine: false,
};

const NAMES: Record<string, string[]> = {
  "mixed.test": ["127.0.0.1", "198.51.100.7", "::1", "2001:db8::7"],
  "inside.test": ["10.0.0.5", "169.254.169.254"],
  "edge.test": ["192.0.2.1"],
  "lab.test": ["10.9.1.1"],
  "nx.test": [],
};

const reach = new OriginReach({
  allow: ["10.9.0.0/16"],
  resolve: (host) => Promise.resolve(NAMES[host] ?? []),
  ownAddresses: () => ["192.0.2.1", "127.0.0.1", "fe80::1"],
});

Deno.test("origin reach: which addresses the proxy connects to", async (t) => {
  await t.step("one address at a time", () => {
    const table: [string, string | null][] = [
      ["198.51.100.7", null],
      ["8.8.8.8", null],
      ["2001:db8::7", null],
      ["192.0.2.1", "an address of the edge itself"],
      ["127.0.0.1", "an address of the edge itself"],
      ["127.0.0.2", "loopback address"],
      ["::ffff:127.0.0.1", "an address of the edge itself"],
      ["10.0.0.5", "private address"],
      ["10.9.1.1", null],
      ["100.64.0.9", "shared address"],
      ["169.254.169.254", "link-local address"],
      ["fd12::1", "unique-local address"],
      ["0.0.0.0", "unspecified address"],
      ["239.1.1.1", "multicast address"],
      ["nonsense", "not an address"],
    ];
    for (const [ip, want] of table) assert.equal(reach.refusal(ip), want, ip);
  });

  await t.step("a name connects to its allowed addresses only, in order", async () => {
    assert.deepEqual(await reach.addresses("mixed.test"), ["198.51.100.7", "2001:db8::7"]);
    assert.deepEqual(await reach.addresses("lab.test"), ["10.9.1.1"]);
    assert.deepEqual(await reach.addresses("203.0.113.9"), ["203.0.113.9"]);
    assert.deepEqual(await reach.addresses("[2001:db8::1]"), ["2001:db8::1"]);
  });

  await t.step("a name with none is refused, naming each address and why", async () => {
    for (
      const [host, why] of [
        ["inside.test", /10\.0\.0\.5: private address; 169\.254\.169\.254: link-local address/],
        ["edge.test", /192\.0\.2\.1: an address of the edge itself/],
        ["[::1]", /::1: loopback address/],
        ["0.0.0.0", /unspecified/],
      ] as const
    ) {
      const e = await reach.addresses(host).catch((e) => e);
      assert.ok(e instanceof OriginRefused, `${host}: ${e}`);
      assert.match(e.message, why);
      assert.equal(originFailure(e).code, "origin_refused");
      assert.equal(originFailure(e).status, 403);
    }
  });

  await t.step("a name without addresses is unreachable, not refused", async () => {
    const e = await reach.addresses("nx.test").catch((e) => e);
    assert.ok(!(e instanceof OriginRefused));
    assert.match(e.message, /Cannot resolve nx\.test/);
    assert.equal(originFailure(e).code, "origin_unreachable");
  });

  await t.step("the system resolver: localhost is refused by default", async () => {
    const e = await new OriginReach().addresses("localhost").catch((e) => e);
    assert.ok(e instanceof OriginRefused, `${e}`);
    assert.match(e.message, /127\.0\.0\.1/);
  });
});

Deno.test("origin reach: a client that leaves does not wait for a resolver that never answers", async () => {
  let asked = 0;
  const stuck = new OriginReach({
    resolve: () => {
      asked++;
      return new Promise<string[]>(() => {}); // a DNS server that never answers
    },
    ownAddresses: () => [],
  });
  const ac = new AbortController();
  const pending = stuck.connect("slow.test", 443, ac.signal);
  ac.abort(new Error("the client left"));
  await assert.rejects(pending, /the client left/);
  assert.equal(asked, 1);
  // Already aborted: not even asked.
  await assert.rejects(stuck.connect("slow.test", 443, ac.signal), /the client left/);
  assert.equal(asked, 1);
});

/** Reads one response head (and what came with it) from `conn`. */
async function readHead(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(64 * 1024);
  let text = "";
  while (!text.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}

Deno.test("origin reach: the engine and the origin client refuse loopback unless allowed", async (t) => {
  let reached = 0;
  const origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    reached++;
    return new Response("origin");
  });
  const port = origin.addr.port;
  const loopback = new OriginReach({ allow: ["127.0.0.0/8"] });
  const proxyWith = (r: OriginReach | undefined) => {
    const engine = new ProxyEngine({
      identify: () => SUBJECT,
      policy: () => new UrlPolicy([], new Map()),
      log: () => {},
      clock: new ManualClock(Date.UTC(2026, 0, 1)),
      reach: r,
      webPorts: [port],
    });
    return startProxyServer({ hostname: "127.0.0.1", port: 0, engine });
  };
  const ask = async (server: { port: number }, head: string) => {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      await c.write(new TextEncoder().encode(head));
      return await readHead(c);
    } finally {
      c.close();
    }
  };
  const strict = proxyWith(undefined), lab = proxyWith(loopback);
  try {
    await t.step("explicit HTTP: 403 origin_refused, the origin sees nothing", async () => {
      const r = await ask(
        strict,
        `GET http://127.0.0.1:${port}/ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
          `Accept: application/json\r\nConnection: close\r\n\r\n`,
      );
      assert.match(r, /^HTTP\/1\.1 403 /);
      assert.match(r, /"error":"origin_refused"/);
      assert.equal(reached, 0);
    });

    await t.step("CONNECT: refused before the tunnel is up", async () => {
      const r = await ask(strict, `CONNECT localhost:${port} HTTP/1.1\r\n\r\n`);
      assert.match(r, /^HTTP\/1\.1 403 /);
      assert.equal(reached, 0);
    });

    await t.step("with loopback allowed, the same request reaches the origin", async () => {
      const r = await ask(
        lab,
        `GET http://127.0.0.1:${port}/ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
      );
      assert.match(r, /^HTTP\/1\.1 200 /);
      assert.equal(reached, 1);
    });

    await t.step("the origin client refuses it too, before connecting", async () => {
      const client = new OriginClient();
      try {
        const e = await client.request({
          host: "localhost",
          port,
          method: "GET",
          path: "/",
          headers: [],
          body: null,
        }).catch((e) => e);
        assert.ok(e instanceof OriginRefused, `${e}`);
        assert.equal(client.opened, 0);
        assert.equal(reached, 1);
      } finally {
        client.close();
      }
    });
  } finally {
    await strict.close();
    await lab.close();
    await origin.shutdown();
  }
});
