/**
 * "Enforce PAC" end to end (issue 12), in the web lab's namespaces with a
 * real Chromium on the workstation:
 *
 *        ┌──────────── wan (router) ─────────────┐
 *      edge 192.0.2.1      ws 198.51.100.10      inet 198.18.0.80 (HTTP, DNS)
 *   (proxy :3128 on 100.64.0.1)
 *
 * The default app profile gets its own PAC template (DIRECT for
 * dni.example.test, the edge proxy for the rest) and the action enforce_pac
 * on the workstation's (off-trusted) network. The connector serves the PAC at
 * 127.0.0.1:9000/proxy.pac and writes `auto_proxy` into the namespace's
 * /etc/profile.d/portcullis-proxy.sh; Chromium, started with the environment
 * that file sets, loads both hosts, and the ORIGIN says who came: the
 * workstation's own address for the DIRECT host, the edge for the other (in
 * the web log with the user and the device). Traffic that ignores the PAC
 * goes direct (no full tunnel). Back to "tunnel", the file and the listener are gone; with the
 * edge unreachable the cached PAC is still served.
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, waitUntil } from "./netns.ts";
import { ADDR, inNs, LAB_USER, startWebLab } from "./web_lab.ts";
import { CHROMIUM, hasChromium } from "./chromium.ts";

const TEMPLATE = `// The lab's PAC: one host direct, the rest through the edge.
function FindProxyForURL(url, host) {
  if (dnsDomainIs(host, "dni.example.test")) return "DIRECT";
  return "PROXY " + \${PROXY};
}
`;
const ENV_FILE = "/etc/profile.d/portcullis-proxy.sh";

Deno.test({
  name: "enforce PAC: Chromium follows the edge's PAC, DIRECT leaves the workstation itself",
  ignore: !canUseNetns || !hasChromium,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await using lab = new NetnsLab("pac");
    const dir = await Deno.makeTempDir({ prefix: "pcpac" });
    lab.defer(() => Deno.remove(dir, { recursive: true }));
    let failed = false;
    lab.defer(async () => {
      if (!failed) return;
      for (const f of ["edge.log", "ws.log", "inet.log"]) {
        const text = await Deno.readTextFile(`${dir}/${f}`).catch(() => "");
        console.error(
          `----- ${f} (last 40 lines) -----\n${text.split("\n").slice(-40).join("\n")}`,
        );
      }
    });
    const step = async (name: string, fn: () => Promise<void>) => {
      if (!(await t.step(name, fn))) failed = true;
    };
    const { ns: { ws }, api, inWorkstation } = await startWebLab(lab, dir);
    const curl = async (args: string[]) =>
      (await inNs(ws, ["curl", "-s", "--max-time", "10", ...args])).stdout;
    const profile = (off: string) => ({
      items: [{
        name: "default",
        forwarding: { name: "default", actions: { off_trusted: off } },
        pacTemplate: TEMPLATE,
      }],
    });

    await step(
      "the API takes the template and enforce_pac (the edge runs the web proxy)",
      async () => {
        const put = await api("/api/v1/admin/policy/app-profiles", "PUT", profile("enforce_pac"));
        assert.equal(
          put.items?.[0]?.forwarding?.actions?.off_trusted,
          "enforce_pac",
          JSON.stringify(put),
        );
        const bad = await api("/api/v1/admin/web/pac-templates/default", "PUT", {
          template: "function FindProxyForURL(u, h) { for (;;) {} }",
        });
        assert.equal(bad.error?.code, "invalid_pac_template", JSON.stringify(bad));
      },
    );

    /** Chromium on the workstation with the environment the connector wrote: the page's DOM. */
    const dom = async (url: string) => {
      const env = (await inWorkstation(["cat", ENV_FILE])).stdout;
      const vars = [...env.matchAll(/export ([^\n]+)/g)].flatMap((m) => m[1].split(" "));
      const r = await inWorkstation([
        "env",
        ...vars,
        `HOME=${dir}`,
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        `--user-data-dir=${dir}/chromium-${crypto.randomUUID().slice(0, 8)}`,
        "--virtual-time-budget=5000",
        "--dump-dom",
        url,
      ]);
      return r.stdout;
    };

    let pacUrl = "";
    await step("the connector serves the device's PAC and points the system at it", async () => {
      await waitUntil("the PAC URL in the system proxy file", async () => {
        const env = (await inWorkstation(["cat", ENV_FILE])).stdout;
        pacUrl = /export auto_proxy=(\S+)/.exec(env)?.[1] ?? "";
        return pacUrl !== "" && !/http_proxy/.test(env);
      }, 30_000);
      assert.equal(pacUrl, "http://127.0.0.1:9000/proxy.pac");
      assert.equal(
        await Deno.stat(ENV_FILE).then(() => true, () => false),
        false,
        "the machine's own profile.d is untouched",
      );
      await waitUntil(
        "the PAC file with the edge proxy filled in",
        async () => (await curl([pacUrl])).includes('"PROXY " + "100.64.0.1:3128"'),
        30_000,
      );
      // No full tunnel: what ignores the PAC leaves the workstation itself (port
      // 8080 is not redirected at the edge, so a tunnelled request would show the edge).
      await waitUntil(
        "the full tunnel routes to go",
        async () =>
          (await curl(["http://good.example.test:8080/ignores-pac"])).includes(
            `You came from ${ADDR.ws}.`,
          ),
        30_000,
      );
    });

    await step(
      "Chromium with that environment: DIRECT from the workstation, PROXY via the edge",
      async () => {
        const direct = await dom("http://dni.example.test/pac-direct");
        assert.match(
          direct,
          new RegExp(
            `Hello from dni\\.example\\.test\\. You came from ${ADDR.ws.replaceAll(".", "\\.")}\\.`,
          ),
          direct.slice(0, 400),
        );
        const proxied = await dom("http://good.example.test/pac-proxied");
        assert.match(
          proxied,
          new RegExp(
            `Hello from good\\.example\\.test\\. You came from ${
              ADDR.edge.replaceAll(".", "\\.")
            }\\.`,
          ),
          proxied.slice(0, 400),
        );
        await waitUntil("the proxied request in the web log with the user", async () => {
          const e = (await api("/api/v1/admin/web/log?host=good.example.test")).entries ?? [];
          return e.some((x: { path: string; deviceName: string; user: string; mode: string }) =>
            x.path === "/pac-proxied" && x.deviceName === "workstation" &&
            x.user === LAB_USER && x.mode === "explicit"
          );
        }, 10_000);
        const d = (await api("/api/v1/admin/web/log?host=dni.example.test")).entries ?? [];
        assert.equal(
          d.some((x: { path: string }) => x.path === "/pac-direct"),
          false,
          "the DIRECT host never reached the edge",
        );
      },
    );

    await step('back to "tunnel": the PAC URL and its listener are gone', async () => {
      await api("/api/v1/admin/policy/app-profiles", "PUT", profile("tunnel"));
      await waitUntil(
        "the system proxy file to go and the listener to stop",
        async () =>
          (await inWorkstation(["test", "-e", ENV_FILE])).code !== 0 &&
          (await inNs(ws, ["curl", "-s", "--max-time", "2", pacUrl])).code === 7,
        30_000,
      );
      await api("/api/v1/admin/policy/app-profiles", "PUT", profile("enforce_pac"));
      await waitUntil(
        "the PAC again",
        async () => (await curl([pacUrl])).includes("dni.example.test"),
        30_000,
      );
    });

    await step("the edge unreachable: the cached PAC is still served", async () => {
      const cached = await Deno.readTextFile(`${dir}/ws/proxy.pac`);
      assert.match(cached, /"PROXY " \+ "100\.64\.0\.1:3128"/);
      await lab.exec(ws, ["ip", "route", "add", "prohibit", `${ADDR.edge}/32`]);
      await waitUntil(
        "the connector to fail open",
        async () => /"state":"fail_open"/.test(await curl(["http://127.0.0.1:9080/api/v1/status"])),
        120_000,
        500,
      );
      assert.equal(await curl([pacUrl]), cached);
      // And browsers still follow it: the DIRECT host loads without the edge.
      const direct = await dom("http://dni.example.test/edge-down");
      assert.match(direct, /Hello from dni\.example\.test\. You came from 198\.51\.100\.10\./);
    });
  },
});
