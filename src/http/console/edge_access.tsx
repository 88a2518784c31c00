/**
 * The edge console's Private access section: application segments, ordered
 * access rules, posture profiles, the decision log and "why can't <device>
 * reach <app>?". Like every edge page it only calls the REST API in-process
 * as the admin's session (see edge_console.tsx), so the API's validation,
 * audit and the policy swap at the data plane hold here too: a collection is
 * read, edited and PUT back whole (the API replaces it in one transaction).
 * A refusal shows the API's sentence with its 4xx status. Page bodies are in
 * edge_access_pages.tsx and edge_access_views.tsx.
 */
import type { Context, Hono } from "hono";
import { canonicalIp } from "../../policy/cidr.ts";
import { readForm } from "./common.ts";
import type { DlpConsoleHelpers } from "./edge_dlp.tsx";
import {
  type AccessRuleJson,
  type DevicePick,
  PROTOCOLS,
  RulesPage,
  type SegmentJson,
  SegmentsPage,
} from "./edge_access_pages.tsx";
import {
  CHECK_FIELDS,
  checkFromForm,
  type CheckJson,
  type DecisionJson,
  DecisionsPage,
  minutesFromForm,
  PosturePage,
  type PostureProfileJson,
  WhyPage,
} from "./edge_access_views.tsx";

/** What the section needs from the console around it (the same as the DLP section's). */
export type AccessConsoleHelpers = DlpConsoleHelpers;

/** Splits a field on commas and line breaks, dropping blanks. */
export const splitList = (s: string | undefined) =>
  (s ?? "").split(/[,\n\r]+/).map((x) => x.trim()).filter(Boolean);

/** The values ticked in checkboxes named `${prefix}.${value}`. */
const ticked = (f: Record<string, string>, prefix: string) =>
  Object.keys(f).filter((k) => k.startsWith(`${prefix}.`) && f[k] === "on").map((k) =>
    k.slice(prefix.length + 1)
  );

const FLASH: Record<string, string> = {
  segment_saved: "access.flash.segment_saved",
  segment_deleted: "access.flash.segment_deleted",
  rules_saved: "access.flash.rules_saved",
  posture_saved: "access.flash.posture_saved",
  posture_deleted: "access.flash.posture_deleted",
};

/** Installs the /access pages on the edge console (after its session middleware). */
export function installAccessConsole(app: Hono<any>, h: AccessConsoleHelpers): void {
  const flashOf = (c: Context) => {
    const m = c.req.query("msg");
    return m && Object.hasOwn(FLASH, m) ? c.get("t")(FLASH[m] as never) : undefined;
  };
  const items = async <T,>(c: Context, col: string): Promise<T[]> =>
    (await h.callApi(c, "GET", `/admin/policy/${col}`)).data?.items ?? [];
  const devices = async (c: Context): Promise<DevicePick[]> =>
    ((await h.callApi(c, "GET", "/admin/devices")).data?.devices ?? [])
      .map((d: DevicePick) => ({ id: d.id, hostname: d.hostname }));
  /** Rules in the order the evaluator tries them. */
  const orderedRules = async (c: Context) =>
    (await items<AccessRuleJson>(c, "access-rules")).map((r, i) => ({ r, i }))
      .sort((a, b) => a.r.ruleOrder - b.r.ruleOrder || a.i - b.i).map((x) => x.r);
  /** Which rules name each value of `key`. */
  const usage = (rules: AccessRuleJson[], key: "segments" | "postureProfiles") => {
    const m = new Map<string, string[]>();
    for (const r of rules) for (const n of r[key]) m.set(n, [...(m.get(n) ?? []), r.name]);
    return m;
  };
  /** A refusal to show: the sentence, its status, and the submitted object to fill the form again. */
  type Extra<T = unknown> = { error?: string; status?: number; draft?: T; isNew?: boolean };
  const put = (c: Context, col: string, csrf: string, body: unknown[]) =>
    h.callApi(c, "PUT", `/admin/policy/${col}`, { csrf, json: { items: body } });

  app.get("/access", (c) => c.redirect("/access/segments", 303));

  // ---- Segments ----
  const segmentsPage = async (c: Context, x: Extra<SegmentJson> = {}) => {
    const t = c.get("t");
    const [segments, rules] = await Promise.all([
      items<SegmentJson>(c, "segments"),
      orderedRules(c),
    ]);
    const editName = c.req.query("edit");
    return h.frame(
      c,
      "access",
      t("access.segments"),
      <SegmentsPage
        t={t}
        csrf={h.csrf(c)}
        flash={flashOf(c)}
        error={x.error}
        segments={segments}
        usedBy={usage(rules, "segments")}
        edit={x.draft ?? segments.find((s) => s.name === editName) ?? null}
        draft={x.draft !== undefined && x.isNew}
      />,
      x.status ?? 200,
    );
  };
  app.get("/access/segments", (c) => segmentsPage(c));
  app.post("/access/segments", async (c) => {
    const t = c.get("t");
    const f = await readForm(c);
    const name = (f.name ?? "").trim(), original = f.original ?? "";
    const seg = {
      name,
      domains: splitList(f.domains).map((d) => d.toLowerCase()),
      cidrs: splitList(f.cidrs),
      ports: splitList(f.ports),
      protocols: PROTOCOLS.filter((p) => f[`proto.${p}`] === "on"),
    };
    const cur = await items<SegmentJson>(c, "segments");
    if (!original && cur.some((s) => s.name === name)) {
      const msg = t("access.error.exists", { name });
      return segmentsPage(c, { error: msg, status: 409, draft: seg, isNew: true });
    }
    const next = original ? cur.map((s) => (s.name === original ? seg : s)) : [...cur, seg];
    const r = await put(c, "segments", f._csrf ?? "", next);
    if (!r.ok) {
      const x = { draft: seg, isNew: !original };
      return segmentsPage(c, { error: h.apiError(t, r), status: r.status, ...x });
    }
    return c.redirect("/access/segments?msg=segment_saved", 303);
  });
  app.post("/access/segments/:name/delete", async (c) => {
    const t = c.get("t");
    const f = await readForm(c);
    const name = c.req.param("name");
    const users = usage(await orderedRules(c), "segments").get(name);
    if (users) {
      const msg = t("access.error.in_use", { name, rules: users.join(", ") });
      return segmentsPage(c, { error: msg, status: 409 });
    }
    const cur = await items<SegmentJson>(c, "segments");
    const r = await put(c, "segments", f._csrf ?? "", cur.filter((s) => s.name !== name));
    if (!r.ok) return segmentsPage(c, { error: h.apiError(t, r), status: r.status });
    return c.redirect("/access/segments?msg=segment_deleted", 303);
  });

  // ---- Rules ----
  const rulesPage = async (c: Context, x: Extra<AccessRuleJson> = {}) => {
    const t = c.get("t");
    const [rules, segments, profiles, devs, keys, users] = await Promise.all([
      orderedRules(c),
      items<SegmentJson>(c, "segments"),
      items<PostureProfileJson>(c, "posture-profiles"),
      devices(c),
      h.callApi(c, "GET", "/admin/enrollment-keys"),
      h.callApi(c, "GET", "/admin/users"),
    ]);
    // Names an admin can pick from: key groups, local users and their groups.
    const known = (xs: (string | null | undefined)[]) =>
      [...new Set(xs.filter((x): x is string => !!x))].sort();
    const userList: { username: string; groups: string[] }[] = users.data?.users ?? [];
    const editName = c.req.query("edit");
    return h.frame(
      c,
      "access",
      t("access.rules"),
      <RulesPage
        t={t}
        csrf={h.csrf(c)}
        flash={flashOf(c)}
        error={x.error}
        rules={rules}
        segments={segments.map((s) => s.name)}
        postureProfiles={profiles.map((p) => p.name)}
        devices={devs}
        known={{
          machineGroups: known(
            (keys.data?.keys ?? []).map((k: { group: string | null }) => k.group),
          ),
          users: known(userList.map((u) => u.username)),
          groups: known(userList.flatMap((u) => u.groups)),
        }}
        edit={x.draft ?? rules.find((r) => r.name === editName) ?? null}
        draft={x.draft !== undefined && x.isNew}
      />,
      x.status ?? 200,
    );
  };
  /** Applies `edit` to the ordered rules, numbers them 1… in that order and saves. */
  const saveRules = async (
    c: Context,
    csrf: string,
    edit: (rules: AccessRuleJson[]) => AccessRuleJson[] | string,
    form: Pick<Extra<AccessRuleJson>, "draft" | "isNew"> = {},
  ) => {
    const next = edit(await orderedRules(c));
    if (typeof next === "string") return rulesPage(c, { error: next, status: 409, ...form });
    const r = await put(c, "access-rules", csrf, next.map((x, i) => ({ ...x, ruleOrder: i + 1 })));
    if (!r.ok) {
      return rulesPage(c, { error: h.apiError(c.get("t"), r), status: r.status, ...form });
    }
    return c.redirect("/access/rules?msg=rules_saved", 303);
  };
  app.get("/access/rules", (c) => rulesPage(c));
  app.post("/access/rules", async (c) => {
    const t = c.get("t");
    const f = await readForm(c);
    const name = (f.name ?? "").trim(), original = f.original ?? "";
    const rule = {
      name,
      ruleOrder: 0,
      action: f.action as AccessRuleJson["action"],
      segments: ticked(f, "seg"),
      users: splitList(f.users),
      groups: splitList(f.groups),
      machineGroups: splitList(f.machineGroups),
      devices: ticked(f, "dev"),
      postureProfiles: ticked(f, "pp"),
    };
    return saveRules(c, f._csrf ?? "", (rules) => {
      if (!original) {
        return rules.some((r) => r.name === name)
          ? t("access.error.exists", { name })
          : [...rules, rule];
      }
      return rules.map((r) => (r.name === original ? rule : r));
    }, { draft: rule, isNew: !original });
  });
  for (const op of ["up", "down", "delete"] as const) {
    app.post(`/access/rules/:name/${op}`, async (c) => {
      const f = await readForm(c);
      const name = c.req.param("name");
      return saveRules(c, f._csrf ?? "", (rules) => {
        const i = rules.findIndex((r) => r.name === name);
        if (i < 0) return c.get("t")("access.error.not_found", { name });
        if (op === "delete") return rules.filter((_, k) => k !== i);
        const j = op === "up" ? i - 1 : i + 1;
        if (j < 0 || j >= rules.length) return rules;
        const next = rules.slice();
        [next[i], next[j]] = [next[j], next[i]];
        return next;
      });
    });
  }

  // ---- Posture profiles ----
  const posturePage = async (c: Context, x: Extra<PostureProfileJson> = {}) => {
    const t = c.get("t");
    const [profiles, rules] = await Promise.all([
      items<PostureProfileJson>(c, "posture-profiles"),
      orderedRules(c),
    ]);
    const editName = c.req.query("edit");
    return h.frame(
      c,
      "access",
      t("access.posture_profiles"),
      <PosturePage
        t={t}
        csrf={h.csrf(c)}
        flash={flashOf(c)}
        error={x.error}
        profiles={profiles}
        usedBy={usage(rules, "postureProfiles")}
        edit={x.draft ?? profiles.find((p) => p.name === editName) ?? null}
        draft={x.draft !== undefined && x.isNew}
      />,
      x.status ?? 200,
    );
  };
  app.get("/access/posture", (c) => posturePage(c));
  app.post("/access/posture", async (c) => {
    const t = c.get("t");
    const f = await readForm(c);
    const name = (f.name ?? "").trim(), original = f.original ?? "";
    const checks: CheckJson[] = [];
    for (const [type, fields] of Object.entries(CHECK_FIELDS)) {
      const check = checkFromForm(f, type, fields);
      if (check) checks.push(check);
    }
    let extra: unknown;
    try {
      extra = JSON.parse(f.extra || "[]");
    } catch {
      extra = null;
    }
    if (!Array.isArray(extra)) {
      return posturePage(c, { error: t("access.error.extra"), status: 400 });
    }
    const profile: PostureProfileJson = { name, checks: [...checks, ...extra] };
    const validity = minutesFromForm(f.validityMinutes);
    const reevaluate = minutesFromForm(f.reevaluateMinutes);
    if (validity !== undefined) profile.validityMinutes = validity;
    if (reevaluate !== undefined) profile.reevaluateMinutes = reevaluate;
    const cur = await items<PostureProfileJson>(c, "posture-profiles");
    if (!original && cur.some((p) => p.name === name)) {
      const x = { draft: profile, isNew: true };
      return posturePage(c, { error: t("access.error.exists", { name }), status: 409, ...x });
    }
    const next = original ? cur.map((p) => (p.name === original ? profile : p)) : [...cur, profile];
    const r = await put(c, "posture-profiles", f._csrf ?? "", next);
    if (!r.ok) {
      const x = { draft: profile, isNew: !original };
      return posturePage(c, { error: h.apiError(t, r), status: r.status, ...x });
    }
    return c.redirect("/access/posture?msg=posture_saved", 303);
  });
  app.post("/access/posture/:name/delete", async (c) => {
    const t = c.get("t");
    const f = await readForm(c);
    const name = c.req.param("name");
    const users = usage(await orderedRules(c), "postureProfiles").get(name);
    if (users) {
      const msg = t("access.error.in_use", { name, rules: users.join(", ") });
      return posturePage(c, { error: msg, status: 409 });
    }
    const cur = await items<PostureProfileJson>(c, "posture-profiles");
    const r = await put(c, "posture-profiles", f._csrf ?? "", cur.filter((p) => p.name !== name));
    if (!r.ok) return posturePage(c, { error: h.apiError(t, r), status: r.status });
    return c.redirect("/access/posture?msg=posture_deleted", 303);
  });

  // ---- Decision log ----
  app.get("/access/decisions", async (c) => {
    const t = c.get("t");
    const filter = {
      device: c.req.query("device") ?? "",
      user: (c.req.query("user") ?? "").trim(),
      dst: (c.req.query("dst") ?? "").trim(),
      verdict: c.req.query("verdict") ?? "",
    };
    const q = new URLSearchParams({ limit: "200" });
    for (const [k, v] of Object.entries(filter)) if (v) q.set(k, v);
    const before = c.req.query("before");
    if (before) q.set("before", before);
    const [r, devs] = await Promise.all([
      h.callApi(c, "GET", `/admin/decisions?${q}`),
      devices(c),
    ]);
    return h.frame(
      c,
      "access",
      t("access.decisions"),
      <DecisionsPage
        t={t}
        lang={c.get("lang")}
        csrf={h.csrf(c)}
        error={r.ok ? undefined : h.apiError(t, r)}
        devices={devs}
        filter={filter}
        decisions={(r.data?.decisions ?? []) as DecisionJson[]}
        older={r.data?.next
          ? `/access/decisions?${new URLSearchParams({ ...filter, before: String(r.data.next) })}`
          : null}
      />,
      r.ok ? 200 : r.status,
    );
  });

  // ---- Why can't <device> reach <app>? ----
  app.get("/access/why", async (c) => {
    const t = c.get("t");
    const query = {
      device: c.req.query("device") ?? "",
      dest: (c.req.query("dest") ?? "").trim(),
      port: (c.req.query("port") ?? "").trim(),
      protocol: c.req.query("protocol") ?? "tcp",
    };
    const devs = await devices(c);
    let result = null, error: string | undefined, status = 200;
    if (query.device && query.dest) {
      const ip = canonicalIp(query.dest);
      const body: Record<string, unknown> = { device: query.device, protocol: query.protocol };
      if (ip !== null) body.ip = ip;
      else body.name = query.dest.toLowerCase();
      // A port the API would refuse as a number is sent as typed, so its sentence names it.
      if (query.port) body.port = /^\d{1,5}$/.test(query.port) ? Number(query.port) : query.port;
      const r = await h.callApi(c, "POST", "/admin/access/explain", {
        csrf: h.csrf(c),
        json: body,
      });
      if (r.ok) result = r.data;
      else [error, status] = [h.apiError(t, r), r.status];
    }
    return h.frame(
      c,
      "access",
      t("access.why_title"),
      <WhyPage
        t={t}
        lang={c.get("lang")}
        csrf={h.csrf(c)}
        error={error}
        devices={devs}
        query={query}
        result={result}
      />,
      status,
    );
  });
}
