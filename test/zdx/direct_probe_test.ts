/**
 * The direct probe with the real curl, bound to the loopback interface,
 * against servers on loopback (a page, a 404, a closed port, a server that
 * answers late), and the choice of the physical interface from `ip -j route`
 * output (tables).
 */
import assert from "node:assert/strict";
import { physicalInterface, probeWebDirect, type RunFn } from "../../src/zdx/direct_probe.ts";

const BODY = "direct home page";

Deno.test("direct probe: curl bound to an interface measures every phase", async (t) => {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    async (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/slow") await new Promise((r) => setTimeout(r, 300));
      return path === "/missing" ? new Response("no", { status: 404 }) : new Response(BODY);
    },
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const gone = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (gone.addr as Deno.NetAddr).port;
  gone.close();
  try {
    const rows: {
      name: string;
      url: string;
      via: string | null;
      ok: boolean;
      status: number | null;
      check?: (r: Awaited<ReturnType<typeof probeWebDirect>>) => void;
      error?: RegExp;
    }[] = [
      {
        name: "a page",
        url: `${base}/`,
        via: "lo",
        ok: true,
        status: 200,
        check: (r) => {
          assert.equal(r.bytes, BODY.length);
          assert.equal(r.address, `127.0.0.1:${server.addr.port}`);
          assert.equal(r.phases!.dns, 0);
          assert.equal(r.phases!.tls, 0, "http: no TLS");
          assert.ok(r.phases!.total >= r.phases!.ttfb);
        },
      },
      {
        name: "a server that answers 300 ms late: time to first byte",
        url: `${base}/slow`,
        via: "lo",
        ok: true,
        status: 200,
        check: (r) => assert.ok(r.phases!.ttfb >= 280, `ttfb ${r.phases!.ttfb}`),
      },
      { name: "404", url: `${base}/missing`, via: "lo", ok: false, status: 404 },
      {
        name: "nothing listening",
        url: `http://127.0.0.1:${closedPort}/`,
        via: "lo",
        ok: false,
        status: null,
        error: /connect|refused/i,
      },
      {
        name: "no interface",
        url: `${base}/`,
        via: null,
        ok: false,
        status: null,
        error: /no physical interface/,
      },
      {
        name: "an option for an interface name",
        url: `${base}/`,
        via: "--proxy",
        ok: false,
        status: null,
        error: /not an interface name/,
      },
    ];
    for (const row of rows) {
      await t.step(row.name, async () => {
        const r = await probeWebDirect({ url: row.url, timeoutMs: 3000 }, row.via);
        assert.equal(r.ok, row.ok, JSON.stringify(r));
        assert.equal(r.status, row.status);
        assert.equal(r.via, row.via);
        if (row.error) assert.match(r.error ?? "", row.error);
        else assert.equal(r.error, null);
        row.check?.(r);
      });
    }
  } finally {
    ac.abort();
    await server.finished;
  }
});

Deno.test("direct probe: the physical interface is the default route's that is not ours", async () => {
  const rows: [string, string, number, string | null][] = [
    ["one uplink", '[{"dst":"default","gateway":"192.0.2.1","dev":"eth0"}]', 0, "eth0"],
    [
      "ours and a physical one, by metric",
      '[{"dst":"default","dev":"pcc0","metric":0},{"dst":"default","dev":"wlan0","metric":600},' +
      '{"dst":"default","dev":"eth0","metric":100}]',
      0,
      "eth0",
    ],
    ["only ours", '[{"dst":"default","dev":"pcc0"}]', 0, null],
    ["no default route", "[]", 0, null],
    ["ip failed", "", 1, null],
    ["garbage", "{not json", 0, null],
    ["a name no interface can have", '[{"dst":"default","dev":"-rf /"}]', 0, null],
  ];
  for (const [name, stdout, code, want] of rows) {
    const run: RunFn = (cmd, args) => {
      assert.equal(cmd, "ip");
      assert.deepEqual(args, ["-j", "route", "show", "default", "table", "main"]);
      return Promise.resolve({ code, stdout, stderr: "" });
    };
    assert.equal(await physicalInterface("pcc0", run), want, name);
  }
});

Deno.test("direct probe: a name's lookup is its DNS phase; an address has none", async () => {
  // What curl's -w '%{json}' reports (cumulative seconds), for each kind of host.
  const curl = (stdout: Record<string, unknown>): RunFn => () =>
    Promise.resolve({ code: 0, stdout: JSON.stringify(stdout), stderr: "" });
  const times = {
    http_code: 200,
    size_download: 10,
    remote_ip: "192.0.2.7",
    remote_port: 443,
    time_namelookup: 0.0002,
    time_connect: 0.0012,
    time_appconnect: 0.0052,
    time_starttransfer: 0.0102,
    time_total: 0.0112,
  };
  const rows: [url: string, namelookup: number, dns: number, connect: number][] = [
    ["https://app.example.test/", 0.0009, 0.9, 0.3],
    ["https://app.example.test/", 0.0002, 0.2, 1],
    ["https://192.0.2.7/", 0.0002, 0, 1.2],
    ["https://[2001:db8::7]/", 0.0002, 0, 1.2],
  ];
  for (const [url, namelookup, dns, connect] of rows) {
    const r = await probeWebDirect({ url }, "eth0", {
      run: curl({ ...times, time_namelookup: namelookup }),
    });
    assert.equal(r.phases?.dns, dns, `${url} (namelookup ${namelookup})`);
    assert.equal(r.phases?.connect, connect, `${url} (namelookup ${namelookup})`);
    assert.equal(r.phases?.tls, 4, url);
  }
});
