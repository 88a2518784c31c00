/**
 * URL categories edited in the data directory take effect without a
 * restart: the real proxy engine on loopback with the edge's
 * WebSecurityService reading a CategorySource, curl as the client and a
 * real origin behind it. Adding a host to the data directory's copy of a
 * blocked category turns its next request (after the check interval) into
 * the block page and the origin stops seeing it; a broken edit keeps the
 * previous list; removing the copy brings back the shipped list.
 */
import { testStore } from "../http/test_store.ts";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import { DlpService } from "../../src/edge/dlp.ts";
import { CATEGORY_CHECK_MS, CategorySource } from "../../src/edge/url_categories.ts";
import { SHIPPED_CATEGORIES, WebSecurityService } from "../../src/edge/web_security.ts";
import { Notifier } from "../../src/notify/mod.ts";
import type { AccessSubject } from "../../src/policy/access.ts";
import { ProxyEngine } from "../../src/proxy/engine.ts";
import { startProxyServer } from "../../src/proxy/server.ts";

const SUBJECT: AccessSubject = {
  deviceId: "dev-1",
  deviceName: "workstation",
  user: "alice",
  groups: [],
  machine: false,
};

async function curl(proxy: string, url: string): Promise<{ status: number; body: string }> {
  const out = await new Deno.Command("curl", {
    args: ["-s", "--max-time", "10", "-x", proxy, "-w", "\n%{http_code}", url],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const i = text.lastIndexOf("\n");
  return { status: Number(text.slice(i + 1)), body: text.slice(0, i) };
}

Deno.test({
  name: "url categories: an edit in the data directory changes decisions without a restart",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "pccat" });
    const seen: string[] = [];
    const origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      seen.push(new URL(req.url).hostname);
      return new Response("origin says hello");
    });
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const store = await testStore();
    const notifier = new Notifier(store, clock);
    const source = CategorySource.load([SHIPPED_CATEGORIES, dataDir], clock);
    const web = new WebSecurityService(
      store,
      clock,
      notifier,
      new DlpService(store, clock, notifier),
      source,
    );
    const engine = new ProxyEngine({
      identify: () => SUBJECT,
      policy: () => web.policy(),
      log: (e) => web.record(e),
      clock,
      connect: () => Deno.connect({ hostname: "127.0.0.1", port: origin.addr.port }),
    });
    const server = startProxyServer({ hostname: "127.0.0.1", port: 0, engine });
    const proxy = `http://127.0.0.1:${server.port}`;
    const shipped = await Deno.readTextFile(`${SHIPPED_CATEGORIES}/gambling.txt`);
    const get = async () => {
      const before = seen.length;
      const r = await curl(proxy, "http://casino.test/");
      return { ...r, reached: seen.length > before };
    };
    try {
      web.replaceRules([{ name: "No gambling", categories: ["gambling"], action: "block" }], "t");
      assert.ok(!shipped.includes("casino.test"));

      const cases: {
        step: string;
        edit: () => Promise<void>;
        status: number;
        reached: boolean;
      }[] = [
        { step: "shipped list only", edit: async () => {}, status: 200, reached: true },
        {
          step: "host added to the data directory's copy",
          edit: () => Deno.writeTextFile(`${dataDir}/gambling.txt`, `${shipped}\ncasino.test\n`),
          status: 403,
          reached: false,
        },
        {
          step: "a broken edit keeps the previous list",
          edit: () => Deno.writeTextFile(`${dataDir}/gambling.txt`, `casino.test\nnot a domain!\n`),
          status: 403,
          reached: false,
        },
        {
          step: "the copy removed: the shipped list again",
          edit: () => Deno.remove(`${dataDir}/gambling.txt`),
          status: 200,
          reached: true,
        },
        {
          step: "a new category file, blocked by a rule naming it",
          edit: async () => {
            await Deno.writeTextFile(`${dataDir}/games.txt`, "casino.test\n");
            clock.advance(CATEGORY_CHECK_MS); // a rule can name the category once it is seen
            web.replaceRules([{ name: "No games", categories: ["games"], action: "block" }], "t");
          },
          status: 403,
          reached: false,
        },
      ];
      for (const c of cases) {
        await c.edit();
        clock.advance(CATEGORY_CHECK_MS);
        const r = await get();
        assert.equal(r.status, c.status, `${c.step}: ${r.body.slice(0, 200)}`);
        assert.equal(r.reached, c.reached, `${c.step}: origin reached`);
      }
      // The log names the rule and category of the block.
      const blocked = web.webLog({ host: "casino.test", limit: 1 })[0];
      assert.equal(blocked.action, "block");
      assert.equal(blocked.rule, "No games");
      assert.deepEqual(blocked.categories, ["games"]);
    } finally {
      await server.close();
      await origin.shutdown();
      web.close();
      store.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
