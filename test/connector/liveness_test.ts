/**
 * Tunnel liveness: how often an idle tunnel probes the edge. The connector's
 * tunnel builds its monitor with `intervalMs: <its own optional setting>`,
 * which is undefined unless configured; that must mean the 2 s default, not
 * "no wait" (a tight loop of ~250 queries a second per connector).
 */
import assert from "node:assert/strict";
import { ManualClock, ManualTimers } from "../../src/clock.ts";
import { dnsProbe, LivenessMonitor } from "../../src/connector/liveness.ts";
import { protectedRecord, startDnsServer } from "../../src/edge/dns.ts";
import { setLogSinks } from "../../src/log.ts";
import { waitUntil } from "../e2e/netns.ts";

setLogSinks([]);

Deno.test("liveness: an idle tunnel probes 30 times a minute, options passed as the tunnel does", async () => {
  const timers = new ManualTimers(new ManualClock());
  let probes = 0;
  let monitor: LivenessMonitor | null = null;
  monitor = new LivenessMonitor({
    probe: () => {
      probes++;
      // A tight loop would never let the clock move: stop it and fail below.
      if (probes > 1000) monitor?.stop();
      return Promise.resolve(1.5);
    },
    onDead: () => assert.fail("an answering edge is not dead"),
    // Exactly what src/connector/tunnel.ts passes when livenessMs is not set.
    intervalMs: undefined,
    misses: undefined,
    timers,
  });
  monitor.start();
  await timers.advance(60_000);
  monitor.stop();
  assert.equal(probes, 30, "one probe every 2 s");
  assert.equal(timers.pending, 0);
  assert.equal(monitor.rtts.length, 30);
});

Deno.test("liveness: two misses in a row mean dead (default), an answer means alive again", async () => {
  const timers = new ManualTimers(new ManualClock());
  const answers = [1, null, 2, null, null, null, 3];
  const seen: string[] = [];
  const m = new LivenessMonitor({
    probe: () => Promise.resolve(answers.length ? answers.shift() as number | null : 1),
    onDead: () => seen.push("dead"),
    onMiss: (n) => seen.push(`miss ${n}`),
    onAlive: () => seen.push("alive"),
    timers,
  });
  m.start();
  await timers.advance(7 * 2000);
  m.stop();
  assert.deepEqual(seen, ["miss 1", "miss 1", "miss 2", "dead", "miss 3", "dead", "alive"]);
  assert.equal(m.dead, false);
});

Deno.test("liveness: intervals that would flood the edge are refused", () => {
  for (const bad of [0, 10, Number.NaN, Infinity]) {
    assert.throws(
      () =>
        new LivenessMonitor({ probe: () => Promise.resolve(1), onDead: () => {}, intervalMs: bad }),
      /Cannot probe the tunnel every .* ms: the interval must be at least 100 ms/,
    );
  }
});

Deno.test("liveness: real DNS probes at a real edge DNS listener wait the default 2 s", async () => {
  const dns = await startDnsServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    zones: ["portcullis.internal"],
    records: [protectedRecord("127.0.0.1")],
    lookup: () => null,
    upstream: [],
    allow: () => true,
    tcp: false,
  });
  const m = new LivenessMonitor({
    probe: dnsProbe("127.0.0.1", 1000, dns.port),
    onDead: () => {},
    intervalMs: undefined,
  });
  const started = performance.now();
  try {
    m.start();
    await waitUntil(
      "the first probe answered",
      () => Promise.resolve(m.rtts.length >= 1),
      10_000,
      20,
    );
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 1900, `the first probe waited the interval (${Math.round(elapsed)} ms)`);
    assert.equal(dns.stats.queries, 1, "one query reached the listener");
    assert.equal(dns.stats.authoritative, 1, "and was answered by the edge's own zone");
  } finally {
    m.stop();
    await dns.close();
  }
});
