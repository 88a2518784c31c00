/**
 * The edge console's Data protection section: incidents (filterable, with
 * redacted samples, one page each, JSON export), dictionaries (create,
 * replace, delete, EDM CSV upload), rules (add, enable/disable, reorder,
 * delete) and a "test a file" tool. Like every edge page it only calls the
 * REST API in-process as the admin's session (see edge_console.tsx), so the
 * API's validation, audit and notifications hold here too. Page bodies are
 * in edge_dlp_pages.tsx.
 */
import type { Context, Hono } from "hono";
import type { Translate } from "../../../web/i18n/mod.ts";
import { CHANNELS } from "../../dlp/types.ts";
import { editOrdered, readForm, readMultipart as multipart } from "./common.ts";
import {
  type DictJson,
  IncidentPage,
  IncidentsPage,
  type RuleJson,
  TestPage,
} from "./edge_dlp_pages.tsx";
import { DictionariesPage, RulesPage } from "./edge_dlp_policy_pages.tsx";

/** What the section needs from the edge console around it. */
export interface DlpConsoleHelpers {
  frame(
    c: Context,
    active: string,
    title: string,
    body: unknown,
    status?: number,
  ): Response | Promise<Response>;
  callApi(
    c: Context,
    method: string,
    path: string,
    opts?: { json?: unknown; csrf?: string; body?: BodyInit; contentType?: string },
  ): Promise<{ status: number; ok: boolean; data: any; res: Response }>;
  apiError(t: Translate, r: { data: any }): string;
  csrf(c: Context): string;
}

const list = (s: string | undefined) => (s ?? "").split(",").map((x) => x.trim()).filter(Boolean);
const FLASH: Record<string, string> = {
  dict_saved: "dlp.flash.dict_saved",
  dict_deleted: "dlp.flash.dict_deleted",
  edm_uploaded: "dlp.flash.edm_uploaded",
  rules_saved: "dlp.flash.rules_saved",
};

/** Installs the /dlp pages on the edge console (after its session middleware). */
export function installDlpConsole(app: Hono<any>, h: DlpConsoleHelpers): void {
  const flashOf = (c: Context) => {
    const m = c.req.query("msg");
    return m && Object.hasOwn(FLASH, m) ? c.get("t")(FLASH[m] as never) : undefined;
  };

  app.get("/dlp", async (c) => {
    const t = c.get("t");
    const q = new URLSearchParams({ limit: "200" });
    const channel = c.req.query("channel") ?? "", action = c.req.query("action") ?? "";
    if ((CHANNELS as readonly string[]).includes(channel)) q.set("channel", channel);
    if (action === "block" || action === "notify") q.set("action", action);
    const r = await h.callApi(c, "GET", `/admin/dlp/incidents?${q}`);
    return h.frame(
      c,
      "dlp",
      t("edge.tab.dlp"),
      <IncidentsPage
        t={t}
        lang={c.get("lang")}
        incidents={r.data?.incidents ?? []}
        channel={channel}
        action={action}
      />,
    );
  });
  app.get("/dlp/export", async (c) => {
    const r = await h.callApi(c, "GET", "/admin/dlp/incidents/export");
    return new Response(r.res.body, {
      status: r.status,
      headers: {
        "content-type": "application/json; charset=utf-8",
        "content-disposition": r.res.headers.get("content-disposition") ?? "attachment",
      },
    });
  });
  app.get("/dlp/incidents/:id", async (c) => {
    const t = c.get("t");
    const r = await h.callApi(
      c,
      "GET",
      `/admin/dlp/incidents/${encodeURIComponent(c.req.param("id"))}`,
    );
    if (!r.ok) return h.frame(c, "dlp", t("dlp.incident"), <p>{h.apiError(t, r)}</p>, r.status);
    return h.frame(
      c,
      "dlp",
      t("dlp.incident"),
      <IncidentPage t={t} lang={c.get("lang")} i={r.data} />,
    );
  });

  // ---- Dictionaries ----
  const dictPage = async (c: Context, extra: { error?: string } = {}, status = 200) => {
    const t = c.get("t");
    const r = await h.callApi(c, "GET", "/admin/dlp/dictionaries");
    return h.frame(
      c,
      "dlp",
      t("dlp.dictionaries"),
      <DictionariesPage
        t={t}
        lang={c.get("lang")}
        dicts={r.data?.dictionaries ?? []}
        csrf={h.csrf(c)}
        flash={flashOf(c)}
        error={extra.error}
      />,
      status,
    );
  };
  app.get("/dlp/dictionaries", (c) => dictPage(c));
  app.post("/dlp/dictionaries", async (c) => {
    const f = await readForm(c);
    const kind = f.kind ?? "";
    // Unchecked "case-sensitive" leaves each kind's default (regex: RE2's, case matters unless "(?i)").
    const body: Record<string, unknown> = { kind, threshold: Number(f.threshold || 1) };
    if (f.caseSensitive === "on") body.caseSensitive = true;
    else if (kind === "keywords") body.caseSensitive = false;
    if (kind === "regex") body.pattern = f.pattern ?? "";
    if (kind === "keywords") {
      body.terms = (f.terms ?? "").split(/\r?\n/).map((x) => x.trim()).filter(Boolean);
      body.wholeWord = f.wholeWord === "on";
    }
    if (kind === "edm") body.minColumns = Number(f.minColumns || 2);
    const prox = list(f.proximityTerms);
    if (prox.length) body.proximity = { terms: prox, window: Number(f.window || 100) };
    const name = (f.name ?? "").trim();
    const r = await h.callApi(
      c,
      "PUT",
      `/admin/dlp/dictionaries/${encodeURIComponent(name || "-")}`,
      {
        csrf: f._csrf ?? "",
        json: body,
      },
    );
    if (!r.ok) return dictPage(c, { error: h.apiError(c.get("t"), r) }, r.status);
    return c.redirect("/dlp/dictionaries?msg=dict_saved", 303);
  });
  app.post("/dlp/dictionaries/:name/delete", async (c) => {
    const f = await readForm(c);
    const r = await h.callApi(
      c,
      "DELETE",
      `/admin/dlp/dictionaries/${encodeURIComponent(c.req.param("name"))}`,
      {
        csrf: f._csrf ?? "",
      },
    );
    if (!r.ok) return dictPage(c, { error: h.apiError(c.get("t"), r) }, r.status);
    return c.redirect("/dlp/dictionaries?msg=dict_deleted", 303);
  });
  app.post("/dlp/edm", async (c) => {
    const t = c.get("t");
    const form = await multipart(c, 16 * 1024 * 1024 + 64 * 1024);
    if (!form) return dictPage(c, { error: t("dlp.error.form") }, 400);
    const file = form.get("file");
    const dict = String(form.get("dictionary") ?? "");
    if (!(file instanceof File)) return dictPage(c, { error: t("dlp.error.no_file") }, 400);
    const r = await h.callApi(
      c,
      "POST",
      `/admin/dlp/dictionaries/${encodeURIComponent(dict)}/edm`,
      {
        csrf: String(form.get("_csrf") ?? ""),
        body: new Uint8Array(await file.arrayBuffer()),
        contentType: "text/csv",
      },
    );
    if (!r.ok) return dictPage(c, { error: h.apiError(t, r) }, r.status);
    return c.redirect("/dlp/dictionaries?msg=edm_uploaded", 303);
  });

  // ---- Rules ----
  const rulesPage = async (c: Context, extra: { error?: string } = {}, status = 200) => {
    const t = c.get("t");
    const [rules, dicts] = await Promise.all([
      h.callApi(c, "GET", "/admin/dlp/rules"),
      h.callApi(c, "GET", "/admin/dlp/dictionaries"),
    ]);
    return h.frame(
      c,
      "dlp",
      t("dlp.rules"),
      <RulesPage
        t={t}
        rules={rules.data?.items ?? []}
        dictionaries={(dicts.data?.dictionaries ?? []).map((d: DictJson) => d.def.name)}
        csrf={h.csrf(c)}
        flash={flashOf(c)}
        error={extra.error}
      />,
      status,
    );
  };
  const saveRules = async (c: Context, csrf: string, edit: (rules: RuleJson[]) => RuleJson[]) => {
    const cur = await h.callApi(c, "GET", "/admin/dlp/rules");
    const r = await h.callApi(c, "PUT", "/admin/dlp/rules", {
      csrf,
      json: { items: edit(cur.data?.items ?? []) },
    });
    if (!r.ok) return rulesPage(c, { error: h.apiError(c.get("t"), r) }, r.status);
    return c.redirect("/dlp/rules?msg=rules_saved", 303);
  };
  app.get("/dlp/rules", (c) => rulesPage(c));
  app.post("/dlp/rules", async (c) => {
    const f = await readForm(c);
    const rule = {
      name: (f.name ?? "").trim(),
      users: list(f.users),
      groups: list(f.groups),
      channels: CHANNELS.filter((ch) => f[`channel.${ch}`] === "on"),
      dictionaries: Object.keys(f).filter((k) => k.startsWith("dict.") && f[k] === "on").map((k) =>
        k.slice(5)
      ),
      match: f.match === "all" ? "all" : "any",
      action: f.action ?? "",
    } as RuleJson;
    return saveRules(c, f._csrf ?? "", (rules) => [...rules, rule]);
  });
  for (const op of ["toggle", "up", "delete"] as const) {
    app.post(`/dlp/rules/:name/${op}`, async (c) => {
      const f = await readForm(c);
      const name = c.req.param("name");
      return saveRules(c, f._csrf ?? "", (rules) => editOrdered(rules, name, op));
    });
  }

  // ---- Test a file ----
  app.get(
    "/dlp/test",
    (c) =>
      h.frame(c, "dlp", c.get("t")("dlp.test_title"), <TestPage t={c.get("t")} csrf={h.csrf(c)} />),
  );
  app.post("/dlp/test", async (c) => {
    const t = c.get("t");
    const form = await multipart(c, 32 * 1024 * 1024 + 64 * 1024);
    const page = (p: { result?: unknown; error?: string }, status = 200) =>
      h.frame(c, "dlp", t("dlp.test_title"), <TestPage t={t} csrf={h.csrf(c)} {...p} />, status);
    if (!form || !(form.get("file") instanceof File)) {
      return page({ error: t("dlp.error.no_file") }, 400);
    }
    const out = new FormData();
    for (const k of ["file", "channel", "user", "groups"]) {
      const v = form.get(k);
      if (v !== null) out.append(k, v);
    }
    const req = new Request("http://x/", { method: "POST", body: out });
    const r = await h.callApi(c, "POST", "/admin/dlp/inspect", {
      csrf: String(form.get("_csrf") ?? ""),
      body: new Uint8Array(await req.arrayBuffer()),
      contentType: req.headers.get("content-type")!,
    });
    if (!r.ok) return page({ error: h.apiError(t, r) }, r.status);
    return page({ result: r.data });
  });
}
