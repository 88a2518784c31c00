/**
 * The edge console's Internet security section: the web log, URL rules,
 * SSL inspection settings (with the inspection CA to download) and
 * forwarding profiles. Like every edge page it only calls the REST API
 * in-process as the admin's session, so the API's validation and audit
 * hold here too. Page bodies are in edge_web_pages.tsx.
 */
import type { Context, Hono } from "hono";
import { editOrdered, readForm } from "./common.ts";
import type { DlpConsoleHelpers } from "./edge_dlp.tsx";
import {
  type ForwardingJson,
  ForwardingPage,
  InspectionPage,
  NETWORK_TYPES,
  PacTestPage,
  type UrlRuleJson,
  UrlRulesPage,
  WebLogPage,
} from "./edge_web_pages.tsx";
import { installPacConsole } from "./edge_pac.tsx";

const list = (s: string | undefined) =>
  (s ?? "").split(/[,\n]/).map((x) => x.trim()).filter(Boolean);
const FLASH: Record<string, string> = {
  rules_saved: "web.flash.rules_saved",
  inspection_saved: "web.flash.inspection_saved",
  profile_saved: "web.flash.profile_saved",
};

/** Installs the /web pages on the edge console (after its session middleware). */
export function installWebConsole(app: Hono<any>, h: DlpConsoleHelpers): void {
  const flashOf = (c: Context) => {
    const m = c.req.query("msg");
    return m && Object.hasOwn(FLASH, m) ? c.get("t")(FLASH[m] as never) : undefined;
  };
  const categories = async (c: Context) =>
    (await h.callApi(c, "GET", "/admin/web/categories")).data?.items ?? [];

  // ---- Web log ----
  app.get("/web", async (c) => {
    const t = c.get("t");
    const q = {
      host: (c.req.query("host") ?? "").trim().slice(0, 253),
      user: (c.req.query("user") ?? "").trim().slice(0, 256),
      action: c.req.query("action") ?? "",
    };
    const p = new URLSearchParams({ limit: "200" });
    if (q.host) p.set("host", q.host);
    if (q.user) p.set("user", q.user);
    if (["allow", "block", "caution", "allow_log"].includes(q.action)) p.set("action", q.action);
    const r = await h.callApi(c, "GET", `/admin/web/log?${p}`);
    return h.frame(
      c,
      "web",
      t("edge.tab.web"),
      <WebLogPage
        t={t}
        lang={c.get("lang")}
        entries={r.data?.entries ?? []}
        q={q}
        error={r.ok ? undefined : h.apiError(t, r)}
      />,
      r.ok ? 200 : r.status,
    );
  });

  // ---- URL rules ----
  const rulesPage = async (c: Context, extra: { error?: string } = {}, status = 200) => {
    const t = c.get("t");
    const r = await h.callApi(c, "GET", "/admin/web/url-rules");
    return h.frame(
      c,
      "web",
      t("web.rules"),
      <UrlRulesPage
        t={t}
        rules={r.data?.items ?? []}
        categories={await categories(c)}
        csrf={h.csrf(c)}
        flash={flashOf(c)}
        error={extra.error}
      />,
      status,
    );
  };
  const saveRules = async (
    c: Context,
    csrf: string,
    edit: (rules: UrlRuleJson[]) => UrlRuleJson[],
  ) => {
    const cur = await h.callApi(c, "GET", "/admin/web/url-rules");
    const r = await h.callApi(c, "PUT", "/admin/web/url-rules", {
      csrf,
      json: { items: edit(cur.data?.items ?? []) },
    });
    if (!r.ok) return rulesPage(c, { error: h.apiError(c.get("t"), r) }, r.status);
    return c.redirect("/web/rules?msg=rules_saved", 303);
  };
  app.get("/web/rules", (c) => rulesPage(c));
  app.post("/web/rules", async (c) => {
    const f = await readForm(c);
    const rule = {
      name: (f.name ?? "").trim(),
      hosts: list(f.hosts),
      categories: Object.keys(f).filter((k) => k.startsWith("cat.") && f[k] === "on").map((k) =>
        k.slice(4)
      ),
      paths: list(f.paths),
      methods: list(f.methods),
      users: list(f.users),
      groups: list(f.groups),
      action: f.action ?? "",
    } as UrlRuleJson;
    return saveRules(c, f._csrf ?? "", (rules) => [...rules, rule]);
  });
  for (const op of ["toggle", "up", "delete"] as const) {
    app.post(`/web/rules/:name/${op}`, async (c) => {
      const f = await readForm(c);
      const name = c.req.param("name");
      return saveRules(c, f._csrf ?? "", (rules) => editOrdered(rules, name, op));
    });
  }

  // ---- SSL inspection ----
  const inspectionPage = async (c: Context, extra: { error?: string } = {}, status = 200) => {
    const t = c.get("t");
    const r = await h.callApi(c, "GET", "/admin/web/inspection");
    return h.frame(
      c,
      "web",
      t("web.inspection"),
      <InspectionPage
        t={t}
        settings={r.data ??
          { enabled: false, doNotInspect: [], doNotInspectCategories: [], ca: null }}
        categories={await categories(c)}
        csrf={h.csrf(c)}
        flash={flashOf(c)}
        error={extra.error}
      />,
      status,
    );
  };
  app.get("/web/inspection", (c) => inspectionPage(c));
  app.post("/web/inspection", async (c) => {
    const f = await readForm(c);
    const r = await h.callApi(c, "PUT", "/admin/web/inspection", {
      csrf: f._csrf ?? "",
      json: {
        enabled: f.enabled === "on",
        doNotInspect: list(f.doNotInspect),
        doNotInspectCategories: Object.keys(f).filter((k) => k.startsWith("cat.") && f[k] === "on")
          .map((k) => k.slice(4)),
      },
    });
    if (!r.ok) return inspectionPage(c, { error: h.apiError(c.get("t"), r) }, r.status);
    return c.redirect("/web/inspection?msg=inspection_saved", 303);
  });
  app.get("/web/inspection/ca.crt", async (c) => {
    const r = await h.callApi(c, "GET", "/admin/web/inspection");
    if (!r.ok || !r.data?.ca) {
      return c.text(c.get("t")("web.ca_none"), r.ok ? 404 : r.status as 404);
    }
    return new Response(r.data.ca.certificate, {
      headers: {
        "content-type": "application/x-pem-file",
        "content-disposition": 'attachment; filename="portcullis-inspection-ca.crt"',
      },
    });
  });

  // ---- PAC files (per app profile) ----
  installPacConsole(app, h);

  // ---- PAC tester ----
  app.get("/web/pac", async (c) => {
    const t = c.get("t");
    const pac = await h.callApi(c, "GET", "/admin/web/pac");
    return h.frame(
      c,
      "web",
      t("web.pac_tester"),
      <PacTestPage
        t={t}
        pac={pac.ok ? await pac.res.clone().text().catch(() => "") : ""}
        url="https://www.example.com/"
        myIp="10.0.0.10"
        csrf={h.csrf(c)}
      />,
    );
  });
  app.post("/web/pac", async (c) => {
    const t = c.get("t");
    const f = await readForm(c, 300 * 1024);
    const body = {
      pac: f.pac ?? "",
      url: (f.url ?? "").trim(),
      ...(f.myIp ? { myIp: f.myIp.trim() } : {}),
    };
    const r = await h.callApi(c, "POST", "/admin/web/pac-test", {
      csrf: f._csrf ?? "",
      json: body,
    });
    return h.frame(
      c,
      "web",
      t("web.pac_tester"),
      <PacTestPage
        t={t}
        pac={body.pac}
        url={body.url}
        myIp={f.myIp ?? ""}
        csrf={h.csrf(c)}
        outcome={r.ok ? r.data : undefined}
        error={r.ok ? undefined : h.apiError(t, r)}
      />,
      r.ok ? 200 : r.status,
    );
  });

  // ---- Forwarding profiles ----
  const fwdPage = async (c: Context, extra: { error?: string } = {}, status = 200) => {
    const t = c.get("t");
    const r = await h.callApi(c, "GET", "/admin/policy/forwarding-profiles");
    return h.frame(
      c,
      "web",
      t("web.forwarding"),
      <ForwardingPage
        t={t}
        profiles={r.data?.items ?? []}
        csrf={h.csrf(c)}
        flash={flashOf(c)}
        error={extra.error}
      />,
      status,
    );
  };
  const saveProfiles = async (
    c: Context,
    csrf: string,
    edit: (ps: ForwardingJson[]) => ForwardingJson[],
  ) => {
    const cur = await h.callApi(c, "GET", "/admin/policy/forwarding-profiles");
    const r = await h.callApi(c, "PUT", "/admin/policy/forwarding-profiles", {
      csrf,
      json: { items: edit(cur.data?.items ?? []) },
    });
    if (!r.ok) return fwdPage(c, { error: h.apiError(c.get("t"), r) }, r.status);
    return c.redirect("/web/forwarding?msg=profile_saved", 303);
  };
  app.get("/web/forwarding", (c) => fwdPage(c));
  app.post("/web/forwarding", async (c) => {
    const f = await readForm(c);
    const pairs = (s: string | undefined) =>
      list(s).map((x) => {
        const i = x.indexOf("=");
        return i < 0 ? [x, ""] : [x.slice(0, i).trim(), x.slice(i + 1).trim()];
      });
    const profile = {
      name: (f.name ?? "").trim(),
      trusted: {
        dnsServers: list(f.dnsServers),
        dnsSearchDomains: list(f.dnsSearchDomains),
        hostnameIps: pairs(f.hostnameIps).map(([hostname, ips]) => ({
          hostname,
          ips: ips.split(/\s+/).filter(Boolean),
        })),
        defaultGateways: list(f.defaultGateways),
        networkRanges: list(f.networkRanges),
        egressIps: list(f.egressIps),
        tlsBeacons: pairs(f.tlsBeacons).map(([hp, sha256]) => {
          const j = hp.lastIndexOf(":");
          return {
            host: j < 0 ? hp : hp.slice(0, j),
            port: j < 0 ? 443 : Number(hp.slice(j + 1)),
            sha256,
          };
        }),
        match: f.match === "all" ? "all" : "any",
      },
      actions: Object.fromEntries(NETWORK_TYPES.map((n) => [n, f[`action.${n}`] ?? ""])),
      udpTimeoutSec: Number(f.udpTimeoutSec || 5),
      tlsFallback: f.tlsFallback === "on",
      mtu: Number(f.mtu || 1420),
    } as ForwardingJson;
    return saveProfiles(
      c,
      f._csrf ?? "",
      (ps) => [...ps.filter((p) => p.name !== profile.name), profile],
    );
  });
  app.post("/web/forwarding/:name/delete", async (c) => {
    const f = await readForm(c);
    const name = c.req.param("name");
    return saveProfiles(c, f._csrf ?? "", (ps) => ps.filter((p) => p.name !== name));
  });
}
