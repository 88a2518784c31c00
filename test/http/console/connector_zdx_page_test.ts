/**
 * The ZDX tab's comparison table in the three languages: the direct run's
 * interface and phases beside the probe, and the time the tunnel adds
 * (tunnelled total minus direct total); "not run" when there was none.
 */
import assert from "node:assert/strict";
import { ZdxPage } from "../../../src/http/console/connector_zdx_page.tsx";
import type { ZdxResult, ZdxStatus } from "../../../src/zdx/runner.ts";
import { LANGUAGES, translator } from "../../../web/i18n/mod.ts";

const phases = (total: number) => ({ dns: 2, connect: 10, tls: 12, ttfb: 20, total });
function result(direct: ZdxResult["direct"]): ZdxResult {
  return {
    url: "https://portal.example/",
    at: Date.UTC(2026, 11, 2, 5),
    ok: true,
    status: 200,
    bytes: 10,
    address: "192.0.2.80:443",
    phases: phases(180),
    error: null,
    probe: "portal",
    edgeRttMs: 30,
    score: 90,
    band: "good",
    z: 0,
    worstHop: null,
    direct,
  };
}

Deno.test("connector console: the ZDX tab shows the direct run beside the tunnelled one", async () => {
  const direct = { ...result(null), phases: phases(140), via: "eth0" };
  const withDirect: ZdxStatus = {
    deviceScore: 90,
    probes: [{
      name: "portal",
      url: "https://portal.example/",
      intervalSec: 60,
      latest: result(direct),
      series: [],
    }],
  };
  const without: ZdxStatus = {
    ...withDirect,
    probes: [{ ...withDirect.probes[0], latest: result(null) }],
  };
  const words = { en: "Tunnel adds", de: "Tunnel kostet", fr: "Surcoût du tunnel" } as const;
  const none = { en: "not run", de: "nicht gelaufen", fr: "non exécuté" } as const;
  for (const lang of LANGUAGES) {
    const t = translator(lang);
    const html = String(await ZdxPage({ t, lang, z: withDirect, now: Date.now() }));
    const row = html.slice(html.indexOf('id="zdx-direct-portal"'));
    assert.ok(html.includes('id="zdx-direct-table"'), lang);
    assert.ok(html.includes(words[lang]), `${lang}: column head`);
    assert.match(row, /eth0/);
    assert.match(row, /140 ms/);
    assert.match(row, /\+40 ms/, `${lang}: the tunnel adds 40 ms`);
    const html2 = String(await ZdxPage({ t, lang, z: without, now: Date.now() }));
    assert.ok(html2.slice(html2.indexOf('id="zdx-direct-portal"')).includes(none[lang]), lang);
  }
});
