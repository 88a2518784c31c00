import assert from "node:assert/strict";
import { ManualTimers } from "../../src/clock.ts";
import { HISTORY_LIMIT, ZdxRunner } from "../../src/zdx/runner.ts";
import type { WebProbeResult, WebProbeTarget } from "../../src/zdx/web_probe.ts";
import { ZdxProbe } from "../../src/policy/types.ts";

/** A fake network: each URL's connect time (ms) is what the test says it is now. */
class FakeWeb {
  connect = new Map<string, number>();
  calls: string[] = [];
  probe = (t: WebProbeTarget): Promise<WebProbeResult> => {
    this.calls.push(t.url);
    const c = this.connect.get(t.url) ?? 30;
    return Promise.resolve({
      url: t.url,
      at: this.calls.length,
      ok: c >= 0,
      status: c >= 0 ? 200 : null,
      bytes: 100,
      address: "192.0.2.80:443",
      phases: c >= 0 ? { dns: 1, connect: c, tls: c, ttfb: c + 10, total: 1 + 3 * c + 10 } : null,
      error: c >= 0 ? null : "refused",
    });
  };
}

const probe = (name: string, url: string, intervalSec = 10) =>
  ZdxProbe.parse({ name, url, intervalSec });

Deno.test("zdx runner: runs each probe at its interval and scores against its baseline", async () => {
  const timers = new ManualTimers();
  const web = new FakeWeb();
  const r = new ZdxRunner({ probe: web.probe, edgeRtt: () => Promise.resolve(10), timers });
  r.configure([probe("portal", "https://portal.example/"), probe("wiki", "https://wiki/", 30)]);
  await timers.advance(0);
  assert.deepEqual(web.calls.sort(), ["https://portal.example/", "https://wiki/"]);
  await timers.advance(60_000);
  const s = r.status();
  assert.equal(s.probes.find((p) => p.name === "portal")!.series.length, 7);
  assert.equal(s.probes.find((p) => p.name === "wiki")!.series.length, 3);
  assert.equal(s.deviceScore, 100);
  // 150 ms more beyond the edge: the portal turns Poor, naming edge → internet.
  web.connect.set("https://portal.example/", 180);
  await timers.advance(10_000);
  const bad = r.status().probes.find((p) => p.name === "portal")!.latest!;
  assert.equal(bad.band, "poor");
  assert.equal(bad.worstHop, "edge_to_internet");
  assert.ok(r.status().deviceScore! < 100);
  // Removing the delay: Good again.
  web.connect.delete("https://portal.example/");
  await timers.advance(10_000);
  assert.equal(r.status().probes.find((p) => p.name === "portal")!.latest!.band, "good");
  r.stop();
  assert.equal(timers.pending, 0);
});

Deno.test("zdx runner: a new policy stops removed probes and forgets their history", async () => {
  const timers = new ManualTimers();
  const web = new FakeWeb();
  const r = new ZdxRunner({ probe: web.probe, edgeRtt: () => Promise.resolve(null), timers });
  r.configure([probe("a", "https://a/"), probe("b", "https://b/")]);
  await timers.advance(20_000);
  r.configure([probe("a", "https://a/")]);
  const before = web.calls.length;
  await timers.advance(20_000);
  assert.ok(web.calls.slice(before).every((u) => u === "https://a/"));
  assert.deepEqual(r.status().probes.map((p) => p.name), ["a"]);
  r.stop();
});

Deno.test("zdx runner: history is bounded", async () => {
  const timers = new ManualTimers();
  const web = new FakeWeb();
  const r = new ZdxRunner({ probe: web.probe, edgeRtt: () => Promise.resolve(null), timers });
  const p = probe("a", "https://a/", 5);
  r.configure([p]);
  for (let i = 0; i < HISTORY_LIMIT + 10; i++) await r.runOnce(p);
  assert.equal(r.status().probes[0].series.length, HISTORY_LIMIT);
  r.stop();
});

Deno.test("zdx runner: the direct run rides along after the tunnelled one, never scored", async () => {
  const timers = new ManualTimers();
  const web = new FakeWeb();
  const order: string[] = [];
  const tunnelled = (t: WebProbeTarget) => {
    order.push("tunnel");
    return web.probe(t);
  };
  const direct = async (t: WebProbeTarget) => {
    order.push("direct");
    // A direct path that fails scores nothing: the tunnelled result stays Good.
    return {
      ...(await web.probe(t)),
      ok: false,
      status: null,
      phases: null,
      error: "refused",
      via: "eth0",
    };
  };
  const r = new ZdxRunner({ probe: tunnelled, direct, edgeRtt: () => Promise.resolve(10), timers });
  r.configure([probe("portal", "https://portal.example/")]);
  await timers.advance(30_000);
  const latest = r.status().probes[0].latest!;
  assert.deepEqual(order.slice(0, 4), ["tunnel", "direct", "tunnel", "direct"]);
  assert.equal(latest.direct?.via, "eth0");
  assert.equal(latest.direct?.error, "refused");
  assert.equal(latest.band, "good");
  // Without a direct probe configured there is none.
  const plain = new ZdxRunner({ probe: web.probe, edgeRtt: () => Promise.resolve(null), timers });
  assert.equal((await plain.runOnce(probe("wiki", "https://wiki/"))).direct, null);
  r.stop();
  plain.stop();
});
