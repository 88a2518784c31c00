// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * The edge's admin console: server-rendered pages over the edge REST API.
 *
 * Pages and the API share one model by construction: every read and every
 * action goes through the edge app's own handlers, called in-process with
 * `api.request()` and the admin's session cookie and CSRF token. So login
 * rate limits, validation, audit entries, tunnel effects and notifications
 * are exactly those of the REST API, and a page can never do what the API
 * would refuse. The only other dependency is the notifier, whose live
 * stream feeds the pages' server-sent events.
 *
 * Forms are plain HTML forms with a hidden `_csrf` field (the API checks it
 * as `X-CSRF-Token`); htmx boosts them when JavaScript runs.
 */
import type { Context } from "hono";
import type { ZdxFleet } from "../../edge/zdx.ts";
import { EdgeZdxPage } from "./edge_zdx_page.tsx";
import { Hono } from "hono";
import { getCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import { type Clock, systemClock } from "../../clock.ts";
import { sha256Hex } from "../../identity/secrets.ts";
import type { Notifier } from "../../notify/mod.ts";
import type { NotificationRecord } from "../../store/mod.ts";
import { VERSION } from "../../version.ts";
import { hasMessage, type Lang, type Translate } from "../../../web/i18n/mod.ts";
import { FeedItem, NotFoundCard, type Tone } from "../../../web/components.tsx";
import { formatShortTime } from "../../../web/format.ts";
import { Layout } from "../../../web/layout.tsx";
import { SSE_HEADERS, sseStream, StreamSlots } from "../api/sse.ts";
import { allowedHostGuard, LOOPBACK_HOSTS } from "./host_guard.ts";
import {
  consoleErrorHandler,
  type ConsoleVars,
  fragment,
  installConsoleBasics,
  page,
  readForm,
  renderToString,
  safeNext,
} from "./common.ts";
import { type DeviceJson, summariseFleet } from "./fleet.ts";
import { installDlpConsole } from "./edge_dlp.tsx";
import { installAccessConsole } from "./edge_access.tsx";
import { installPasswordsConsole } from "./edge_passwords.tsx";
import { installWebConsole } from "./edge_web.tsx";
import { installIdpConsole } from "./edge_idp.tsx";
import { installFleetConsole } from "./edge_fleet.tsx";
import { installUpdatesConsole } from "./edge_updates.tsx";
import {
  installSaasConsentRedirect,
  installSaasConsole,
  type SaasConsoleHelpers,
} from "./edge_saas.tsx";
import {
  AuditPage,
  DashboardPage,
  DeleteDevicePage,
  DevicePage,
  DevicesPage,
  DevicesTable,
  KeysPage,
  LoginPage,
  NotificationsPage,
  SupportPage,
  UsersPage,
} from "./edge_pages.tsx";

/** What the edge console needs. */
export interface EdgeConsoleDeps {
  /** The edge HTTP app (`createEdgeApp`), called in-process. */
  api: {
    request: (req: Request, init?: RequestInit, env?: unknown) => Response | Promise<Response>;
  };
  /** The edge notifier; the pages' live events come from its stream. */
  notifier: Notifier;
  clock?: Clock;
  /** The connector release this edge ships; older connectors count as outdated. */
  currentConnectorVersion?: string;
  /** Version shown in the footer. */
  productVersion?: string;
  /** SSE keepalive interval (ms); default 15000. */
  sseKeepaliveMs?: number;
  /** Host names the console answers to besides the loopback ones (DNS-rebinding guard). */
  allowedHosts?: string[];
}

/** Result of an in-process API call. */
interface ApiResult {
  status: number;
  ok: boolean;
  // deno-lint-ignore no-explicit-any
  data: any;
  res: Response;
}

type EdgeConsoleEnv = {
  Variables: ConsoleVars & {
    user: { id: string; username: string; role: string };
    csrf: string;
  };
};

type Ctx = Context<EdgeConsoleEnv>;

/** Messages a redirect may ask the next page to show (`?msg=`). */
const FLASH = {
  device_disabled: "flash.device_disabled",
  device_enabled: "flash.device_enabled",
  device_deleted: "flash.device_deleted",
  key_revoked: "flash.key_revoked",
  user_deleted: "flash.user_deleted",
  user_disabled: "flash.user_disabled",
  user_enabled: "flash.user_enabled",
} as const;

/** Tone of an edge notification severity. */
export function severityTone(severity: string): Tone {
  return severity === "critical" || severity === "error"
    ? "bad"
    : severity === "warning" || severity === "warn"
    ? "warn"
    : "info";
}

/** A notification's message in the page's language (stored English text as the fallback). */
export function notificationText(
  t: Translate,
  n: { kind: string; message: string; data: Record<string, unknown> },
): string {
  const key = `notify.${n.kind}`;
  if (!hasMessage(key)) return n.message;
  const params: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(n.data ?? {})) {
    if (typeof v === "string" || typeof v === "number") params[k] = v;
  }
  if (n.kind === "device_enrolled" && n.data?.reenrolled === true) {
    return t("notify.device_reenrolled", params);
  }
  if (n.kind === "saas_tenant_validated" && n.data?.status === "failed") {
    return t("notify.saas_tenant_validation_failed", params);
  }
  if (n.kind === "edge_health" && n.data?.health === "healthy") {
    return t("notify.edge_healthy", params);
  }
  if (n.kind === "saas_scan_finished" && n.data?.state === "failed") {
    return t("notify.saas_scan_failed", params);
  }
  return t(key, params);
}

/** Renders one edge notification as a feed item. */
export function EdgeFeedItem(
  props: { n: NotificationRecord; t: Translate; lang: Lang },
) {
  const { n, t } = props;
  const kindKey = `kind.${n.kind}`;
  const sevKey = `severity.${n.severity}`;
  return (
    <FeedItem
      id={`n-${n.id}`}
      type={n.kind}
      typeLabel={hasMessage(kindKey) ? t(kindKey) : n.kind}
      tone={severityTone(n.severity)}
      severityLabel={hasMessage(sevKey) ? t(sevKey) : n.severity}
      message={notificationText(t, n)}
      time={formatShortTime(n.createdAt, props.lang)}
      iso={new Date(n.createdAt).toISOString()}
    />
  );
}

/** Builds the edge console (mount at "/" of the console listener). */
export function createEdgeConsole(deps: EdgeConsoleDeps): Hono<EdgeConsoleEnv> {
  const clock = deps.clock ?? systemClock;
  const app = new Hono<EdgeConsoleEnv>();
  // DNS rebinding: only answer to loopback names and the configured ones.
  app.use("*", allowedHostGuard([...LOOPBACK_HOSTS, ...(deps.allowedHosts ?? [])]));
  installConsoleBasics(app);
  app.onError(consoleErrorHandler("error.unexpected"));
  // Open live-event streams per session.
  const eventStreams = new StreamSlots();

  /** Calls the edge API in-process as the browser's session. */
  async function callApi(
    c: Ctx,
    method: string,
    path: string,
    opts: { json?: unknown; csrf?: string; body?: BodyInit; contentType?: string } = {},
  ): Promise<ApiResult> {
    const headers = new Headers();
    const cookie = c.req.header("cookie");
    if (cookie) headers.set("cookie", cookie);
    if (opts.csrf !== undefined) headers.set("x-csrf-token", opts.csrf);
    if (opts.json !== undefined) headers.set("content-type", "application/json");
    if (opts.contentType) headers.set("content-type", opts.contentType);
    const res = await deps.api.request(
      new Request(`http://edge-console.internal/api/v1${path}`, {
        method,
        headers,
        body: opts.json === undefined ? opts.body : JSON.stringify(opts.json),
      }),
      undefined,
      c.env,
    );
    const type = res.headers.get("content-type") ?? "";
    const data = type.includes("application/json") ? await res.json() : null;
    return { status: res.status, ok: res.ok, data, res };
  }

  /** The API's error as a sentence in the page's language when we have one. */
  function apiError(t: Translate, r: ApiResult): string {
    const code = r.data?.error?.code as string | undefined;
    const key = `error.${code}`;
    if (code && hasMessage(key)) return t(key);
    return r.data?.error?.message ?? t("error.unexpected");
  }

  function frame(
    c: Ctx,
    active: string,
    title: string,
    body: unknown,
    status = 200,
  ) {
    const t = c.get("t");
    const tabs = [
      ["/", "dashboard", t("edge.tab.dashboard")],
      ["/devices", "devices", t("edge.tab.devices")],
      ["/keys", "keys", t("edge.tab.keys")],
      ["/users", "users", t("edge.tab.users")],
      ["/passwords", "passwords", t("edge.tab.passwords")],
      ["/idps", "idps", t("edge.tab.idps")],
      ["/notifications", "notifications", t("edge.tab.notifications")],
      ["/access", "access", t("edge.tab.access")],
      ["/web", "web", t("edge.tab.web")],
      ["/dlp", "dlp", t("edge.tab.dlp")],
      ["/saas", "saas", t("edge.tab.saas")],
      ["/zdx", "zdx", t("edge.tab.zdx")],
      ["/edges", "edges", t("edge.tab.edges")],
      ["/updates", "updates", t("edge.tab.updates")],
      ["/audit", "audit", t("edge.tab.audit")],
      ["/support", "support", t("edge.tab.support")],
    ].map(([href, id, label]) => ({ href, label, active: id === active, id: `tab-${id}` }));
    return page(
      c,
      <Layout
        t={t}
        lang={c.get("lang")}
        title={title}
        roleLabel={t("edge.role")}
        status={{ tone: "ok", label: t("edge.status.running") }}
        tabs={tabs}
        path={c.req.path}
        user={c.get("user").username}
        csrf={c.get("csrf")}
        logoutAction="/logout"
        live="/events"
        base=""
        footer={t("layout.footer", { version: deps.productVersion ?? VERSION })}
      >
        {body as never}
      </Layout>,
      status,
    );
  }

  function flashFor(c: Ctx): string | undefined {
    const msg = c.req.query("msg");
    if (msg && Object.hasOwn(FLASH, msg)) return c.get("t")(FLASH[msg as keyof typeof FLASH]);
    return undefined;
  }

  // ---- Login (no session needed) ----
  const loginPage = (c: Ctx, error?: string, status = 200) => {
    const t = c.get("t");
    return page(
      c,
      <Layout
        t={t}
        lang={c.get("lang")}
        title={t("login.title")}
        roleLabel={t("edge.role")}
        tabs={[]}
        path="/login"
        base=""
        footer={t("layout.footer", { version: deps.productVersion ?? VERSION })}
      >
        <LoginPage t={t} error={error} next={safeNext(c.req.query("next"))} />
      </Layout>,
      status,
    );
  };

  app.get("/login", async (c) => {
    const s = await callApi(c, "GET", "/auth/session");
    if (s.ok) return c.redirect("/", 303);
    return loginPage(c);
  });

  app.post("/login", async (c) => {
    const t = c.get("t");
    const form = await readForm(c);
    const totp = (form.totp ?? "").replace(/\s+/g, "");
    const r = await callApi(c, "POST", "/auth/login", {
      json: { username: form.username ?? "", password: form.password ?? "", totp },
    });
    if (!r.ok) {
      const code = r.data?.error?.code;
      const msg = code === "invalid_credentials"
        ? t("login.error.invalid")
        : code === "too_many_attempts"
        ? t("login.error.rate")
        : code === "invalid_request"
        ? t("login.error.input")
        : apiError(t, r);
      return loginPage(c, msg, r.status === 429 ? 429 : 401);
    }
    const out = c.redirect(safeNext(form.next), 303);
    for (const cookie of r.res.headers.getSetCookie()) out.headers.append("set-cookie", cookie);
    return out;
  });

  // ---- The admin-consent redirect: no session cookie comes with it, its state is checked ----
  const saasHelpers: SaasConsoleHelpers = {
    frame: (c, active, title, body, status) => frame(c as Ctx, active, title, body, status),
    bare: (c, title, body, status) => {
      const t = c.get("t") as Translate;
      return page(
        c,
        <Layout
          t={t}
          lang={c.get("lang")}
          title={title}
          roleLabel={t("edge.role")}
          tabs={[]}
          path={c.req.path}
          base=""
          footer={t("layout.footer", { version: deps.productVersion ?? VERSION })}
        >
          {body as never}
        </Layout>,
        status,
      );
    },
    callApi: (c, method, path, opts) => callApi(c as Ctx, method, path, opts),
    apiError,
    csrf: (c) => (c as Ctx).get("csrf"),
  };
  installSaasConsentRedirect(app, saasHelpers);

  // ---- Everything else needs an admin session ----
  app.use(
    "*",
    createMiddleware<EdgeConsoleEnv>(async (c, next) => {
      const s = await callApi(c, "GET", "/auth/session");
      if (!s.ok) {
        if (c.req.method === "GET" && c.req.path !== "/events") {
          return c.redirect(`/login?next=${encodeURIComponent(c.req.path)}`, 303);
        }
        return c.text(c.get("t")("error.unauthorized"), 401);
      }
      c.set("user", s.data.user);
      c.set("csrf", s.data.csrfToken);
      await next();
    }),
  );

  app.post("/logout", async (c) => {
    const form = await readForm(c);
    const r = await callApi(c, "POST", "/auth/logout", { csrf: form._csrf ?? "" });
    const out = c.redirect("/login", 303);
    for (const cookie of r.res.headers.getSetCookie()) out.headers.append("set-cookie", cookie);
    return out;
  });

  // ---- Dashboard ----
  app.get("/", async (c) => {
    const t = c.get("t"), lang = c.get("lang");
    const [devices, notes] = await Promise.all([
      callApi(c, "GET", "/admin/devices"),
      callApi(c, "GET", "/admin/notifications?limit=6"),
    ]);
    const list: DeviceJson[] = devices.data?.devices ?? [];
    const summary = summariseFleet(list, deps.currentConnectorVersion);
    return frame(
      c,
      "dashboard",
      t("edge.tab.dashboard"),
      <DashboardPage
        t={t}
        lang={lang}
        summary={summary}
        recent={[...(notes.data?.notifications ?? [])].reverse().map((n: NotificationRecord) => (
          <EdgeFeedItem n={n} t={t} lang={lang} />
        ))}
      />,
    );
  });

  // ---- Devices ----
  const devicesTable = async (c: Ctx) => {
    const r = await callApi(c, "GET", "/admin/devices");
    return (
      <DevicesTable
        t={c.get("t")}
        lang={c.get("lang")}
        devices={r.data?.devices ?? []}
        now={clock.now()}
      />
    );
  };
  app.get("/devices", async (c) => {
    const t = c.get("t");
    return frame(
      c,
      "devices",
      t("edge.tab.devices"),
      <DevicesPage t={t} flash={flashFor(c)} table={await devicesTable(c)} />,
    );
  });
  app.get("/devices/table", async (c) => fragment(c, await devicesTable(c)));

  app.get("/zdx", async (c) => {
    const t = c.get("t");
    const r = await callApi(c, "GET", "/admin/zdx");
    if (!r.ok) return frame(c, "zdx", t("edge.tab.zdx"), <p>{apiError(t, r)}</p>, r.status);
    return frame(
      c,
      "zdx",
      t("edge.tab.zdx"),
      <EdgeZdxPage t={t} lang={c.get("lang")} f={r.data as ZdxFleet} />,
    );
  });

  const deviceDetail = async (c: Ctx, flash?: string, error?: string) => {
    const t = c.get("t");
    const r = await callApi(c, "GET", `/admin/devices/${encodeURIComponent(c.req.param("id")!)}`);
    if (!r.ok) {
      return frame(c, "devices", t("edge.device.not_found"), <p>{apiError(t, r)}</p>, r.status);
    }
    return frame(
      c,
      "devices",
      r.data.hostname,
      <DevicePage
        t={t}
        lang={c.get("lang")}
        device={r.data}
        csrf={c.get("csrf")}
        now={clock.now()}
        flash={flash ?? flashFor(c)}
        error={error}
      />,
    );
  };
  app.get("/devices/:id", (c) => deviceDetail(c));
  for (const action of ["disable", "enable"] as const) {
    app.post(`/devices/:id/${action}`, async (c) => {
      const id = c.req.param("id");
      const form = await readForm(c);
      const r = await callApi(c, "POST", `/admin/devices/${encodeURIComponent(id)}/${action}`, {
        csrf: form._csrf ?? "",
      });
      if (!r.ok) return deviceDetail(c, undefined, apiError(c.get("t"), r));
      return c.redirect(`/devices/${encodeURIComponent(id)}?msg=device_${action}d`, 303);
    });
  }
  app.get("/devices/:id/delete", async (c) => {
    const t = c.get("t");
    const r = await callApi(c, "GET", `/admin/devices/${encodeURIComponent(c.req.param("id"))}`);
    if (!r.ok) {
      return frame(c, "devices", t("edge.device.not_found"), <p>{apiError(t, r)}</p>, r.status);
    }
    return frame(
      c,
      "devices",
      t("edge.device.delete_title", { hostname: r.data.hostname }),
      <DeleteDevicePage t={t} device={r.data} csrf={c.get("csrf")} />,
    );
  });
  app.post("/devices/:id/delete", async (c) => {
    const id = c.req.param("id");
    const form = await readForm(c);
    const r = await callApi(c, "DELETE", `/admin/devices/${encodeURIComponent(id)}`, {
      csrf: form._csrf ?? "",
    });
    if (!r.ok) return deviceDetail(c, undefined, apiError(c.get("t"), r));
    return c.redirect("/devices?msg=device_deleted", 303);
  });

  // ---- Enrolment keys ----
  const keysPage = async (
    c: Ctx,
    extra: { created?: { key: string; id: string }; error?: string } = {},
    status = 200,
  ) => {
    const t = c.get("t");
    const r = await callApi(c, "GET", "/admin/enrollment-keys");
    return frame(
      c,
      "keys",
      t("edge.tab.keys"),
      <KeysPage
        t={t}
        lang={c.get("lang")}
        keys={r.data?.keys ?? []}
        csrf={c.get("csrf")}
        created={extra.created}
        error={extra.error}
        flash={flashFor(c)}
      />,
      status,
    );
  };
  app.get("/keys", (c) => keysPage(c));
  app.post("/keys", async (c) => {
    const form = await readForm(c);
    const group = (form.group ?? "").trim();
    const r = await callApi(c, "POST", "/admin/enrollment-keys", {
      csrf: form._csrf ?? "",
      json: {
        reusable: form.reusable === "on" || form.reusable === "true",
        machine: !(form.userKey === "on" || form.userKey === "true"),
        expires: form.expires || "24h",
        group: group === "" ? null : group,
      },
    });
    if (!r.ok) return keysPage(c, { error: apiError(c.get("t"), r) }, r.status);
    return keysPage(c, { created: { key: r.data.key, id: r.data.id } }, 201);
  });
  app.post("/keys/:id/revoke", async (c) => {
    const form = await readForm(c);
    const r = await callApi(
      c,
      "POST",
      `/admin/enrollment-keys/${encodeURIComponent(c.req.param("id"))}/revoke`,
      { csrf: form._csrf ?? "" },
    );
    if (!r.ok) return keysPage(c, { error: apiError(c.get("t"), r) }, r.status);
    return c.redirect("/keys?msg=key_revoked", 303);
  });

  // ---- Users ----
  const usersPage = async (
    c: Ctx,
    extra: { created?: { username: string; secret: string; uri: string }; error?: string } = {},
    status = 200,
  ) => {
    const t = c.get("t");
    const r = await callApi(c, "GET", "/admin/users");
    return frame(
      c,
      "users",
      t("edge.tab.users"),
      <UsersPage
        t={t}
        lang={c.get("lang")}
        users={r.data?.users ?? []}
        me={c.get("user").id}
        csrf={c.get("csrf")}
        created={extra.created}
        error={extra.error}
        flash={flashFor(c)}
      />,
      status,
    );
  };
  app.get("/users", (c) => usersPage(c));
  app.post("/users", async (c) => {
    const form = await readForm(c);
    const r = await callApi(c, "POST", "/admin/users", {
      csrf: form._csrf ?? "",
      json: {
        username: form.username ?? "",
        password: form.password ?? "",
        role: form.role === "admin" ? "admin" : "user",
      },
    });
    if (!r.ok) return usersPage(c, { error: apiError(c.get("t"), r) }, r.status);
    return usersPage(c, {
      created: {
        username: r.data.user.username,
        secret: r.data.totp.secret,
        uri: r.data.totp.otpauthUri,
      },
    }, 201);
  });
  for (const action of ["disable", "enable"] as const) {
    app.post(`/users/:id/${action}`, async (c) => {
      const form = await readForm(c);
      const r = await callApi(
        c,
        "POST",
        `/admin/users/${encodeURIComponent(c.req.param("id"))}/${action}`,
        { csrf: form._csrf ?? "" },
      );
      if (!r.ok) return usersPage(c, { error: apiError(c.get("t"), r) }, r.status);
      return c.redirect(`/users?msg=user_${action}d`, 303);
    });
  }
  app.post("/users/:id/delete", async (c) => {
    const form = await readForm(c);
    const r = await callApi(c, "DELETE", `/admin/users/${encodeURIComponent(c.req.param("id"))}`, {
      csrf: form._csrf ?? "",
    });
    if (!r.ok) return usersPage(c, { error: apiError(c.get("t"), r) }, r.status);
    return c.redirect("/users?msg=user_deleted", 303);
  });

  // ---- Notifications, audit, support ----
  app.get("/notifications", async (c) => {
    const t = c.get("t"), lang = c.get("lang");
    const type = c.req.query("type") ?? "";
    const r = await callApi(c, "GET", "/admin/notifications?limit=200");
    const all: NotificationRecord[] = [...(r.data?.notifications ?? [])].reverse();
    const kinds = [...new Set(all.map((n) => n.kind))].sort();
    const shown = type ? all.filter((n) => n.kind === type) : all;
    return frame(
      c,
      "notifications",
      t("edge.tab.notifications"),
      <NotificationsPage
        t={t}
        kinds={kinds}
        type={type}
        items={shown.map((n) => <EdgeFeedItem n={n} t={t} lang={lang} />)}
      />,
    );
  });
  app.get("/audit", async (c) => {
    const t = c.get("t");
    const r = await callApi(c, "GET", "/admin/audit?limit=200");
    return frame(
      c,
      "audit",
      t("edge.tab.audit"),
      <AuditPage t={t} lang={c.get("lang")} entries={r.data?.entries ?? []} />,
    );
  });
  app.get("/support", async (c) => {
    const t = c.get("t");
    const r = await callApi(c, "GET", "/admin/support-requests");
    return frame(
      c,
      "support",
      t("edge.tab.support"),
      <SupportPage t={t} lang={c.get("lang")} requests={r.data?.requests ?? []} />,
    );
  });
  // The edge's own diagnostics bundle (decisions, state, notifications; secrets removed).
  app.get("/support/diagnostics", async (c) => {
    const r = await callApi(c, "GET", "/admin/diagnostics");
    if (!r.ok) return c.text(apiError(c.get("t"), r), r.status as 404);
    return new Response(r.res.body, {
      status: 200,
      headers: {
        "content-type": "application/zip",
        "content-disposition": r.res.headers.get("content-disposition") ?? "attachment",
      },
    });
  });
  app.get("/support/:id/bundle", async (c) => {
    const r = await callApi(
      c,
      "GET",
      `/admin/support-requests/${encodeURIComponent(c.req.param("id"))}/bundle`,
    );
    if (!r.ok) return c.text(apiError(c.get("t"), r), r.status as 404);
    return new Response(r.res.body, {
      status: 200,
      headers: {
        "content-type": "application/zip",
        "content-disposition": r.res.headers.get("content-disposition") ?? "attachment",
      },
    });
  });

  // ---- Data protection ----
  installDlpConsole(app, {
    frame: (c, active, title, body, status) => frame(c as Ctx, active, title, body, status),
    callApi: (c, method, path, opts) => callApi(c as Ctx, method, path, opts),
    apiError,
    csrf: (c) => (c as Ctx).get("csrf"),
  });

  // ---- Private access: segments, rules, posture profiles, decisions, "why?" ----
  installAccessConsole(app, saasHelpers);

  // ---- SaaS application tenants ----
  installSaasConsole(app, saasHelpers);
  installIdpConsole(app, saasHelpers);
  installFleetConsole(app, saasHelpers, () => clock.now());
  installUpdatesConsole(app, saasHelpers);

  // ---- Connector protection passwords ----
  installPasswordsConsole(app, saasHelpers);

  // ---- Internet security ----
  installWebConsole(app, saasHelpers);

  // ---- Live events ----
  app.get("/events", (c) => {
    const t = c.get("t"), lang = c.get("lang");
    // One slot pool per session cookie (the middleware above checked it); a
    // fifth stream closes the oldest.
    const evicted = new AbortController();
    const release = eventStreams.acquire(
      sha256Hex(getCookie(c, "pc_session") ?? ""),
      () => evicted.abort(),
    );
    const body = sseStream(deps.sseKeepaliveMs ?? 15_000, async (w, signal) => {
      for await (const n of deps.notifier.subscribe({ signal })) {
        const htmlText = await renderToString(
          <EdgeFeedItem n={n} t={t} lang={lang} />,
        );
        w.send("notification", {
          id: n.id,
          type: n.kind,
          html: htmlText,
          toast: notificationText(t, n),
        }, String(n.id));
      }
    }, {
      // The stream ends with the session (logout, expiry, idle timeout).
      stillValid: async () => (await callApi(c, "GET", "/auth/session?peek=1")).ok,
      onClose: release,
      signal: evicted.signal,
    });
    return c.body(body, 200, SSE_HEADERS);
  });

  // Unknown pages get the console's own page, not a bare "404 Not Found".
  app.notFound((c) => {
    const t = c.get("t");
    return frame(
      c,
      "",
      t("notfound.title"),
      <NotFoundCard
        title={t("notfound.title")}
        body={t("notfound.body", { path: c.req.path.slice(0, 200) })}
        back={t("notfound.back")}
      />,
      404,
    );
  });

  return app;
}
