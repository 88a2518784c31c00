/**
 * The edge console's "SaaS application tenants" section: the tenant list,
 * adding a tenant (admin consent through Microsoft, then Authorize and
 * save), a tenant's page with Reauthorize, settings, scans and findings.
 * Like every edge page it only calls the REST API in-process as the
 * admin's session (edge_console.tsx), so validation, audit and
 * notifications are the API's.
 *
 * The consent redirect (`/saas/consent`) is installed before the console's
 * session check: it arrives as a cross-site navigation from Microsoft, so
 * the SameSite=Strict session cookie is not sent with it. Its state is
 * what the API checks; once accepted, the browser is sent on to the add
 * form, a same-site request that carries the session again.
 */
import type { Context, Hono } from "hono";
import type { Translate } from "../../../web/i18n/mod.ts";
import { CONSENT_REDIRECT_PATH, KEY_FILE_LIMIT } from "../../saas/mod.ts";
import { CSP, readForm, readMultipart } from "./common.ts";
import {
  type AppTableJson,
  ConsentRefusedPage,
  NewTenantPage,
  type NewTenantValues,
  TenantsPage,
} from "./edge_saas_pages.tsx";
import { ScansCard, TenantPage } from "./edge_saas_tenant_page.tsx";

/** What the section needs from the edge console around it. */
export interface SaasConsoleHelpers {
  frame(
    c: Context,
    active: string,
    title: string,
    body: unknown,
    status?: number,
  ): Response | Promise<Response>;
  /** A page outside the session (the consent redirect's refusal). */
  bare(c: Context, title: string, body: unknown, status?: number): Response | Promise<Response>;
  callApi(
    c: Context,
    method: string,
    path: string,
    opts?: { json?: unknown; csrf?: string },
  ): Promise<{ status: number; ok: boolean; data: any; res: Response }>;
  apiError(t: Translate, r: { data: any }): string;
  csrf(c: Context): string;
}

/** Largest form the section reads: the fields and a private-key file. */
const FORM_LIMIT = KEY_FILE_LIMIT + 64 * 1024;

const FLASH: Record<string, [string, "ok" | "warn" | "bad"]> = {
  added: ["saas.flash.added", "ok"],
  failed_saved: ["saas.error.failed_saved", "bad"],
  reauthorized: ["saas.flash.reauthorized", "ok"],
  still_failed: ["saas.error.failed_saved", "bad"],
  saved: ["saas.flash.saved", "ok"],
  scan_started: ["saas.flash.scan_started", "ok"],
  deleted: ["saas.flash.deleted", "ok"],
};

/** A form's fields and, for multipart forms, the private-key file's text. */
async function formWithKey(
  c: Context,
): Promise<{ fields: Record<string, string>; key: string | null; keyTooLarge: boolean } | null> {
  const multipart = await readMultipart(c, FORM_LIMIT);
  if (multipart) {
    const fields: Record<string, string> = {};
    let key: string | null = null;
    let keyTooLarge = false;
    for (const [k, v] of multipart) {
      if (typeof v === "string") fields[k] = v;
      else if (k === "privateKeyFile" && v.size > 0) {
        if (v.size > KEY_FILE_LIMIT) keyTooLarge = true;
        else key = await v.text();
      }
    }
    return { fields, key, keyTooLarge };
  }
  const ct = (c.req.header("content-type") ?? "").toLowerCase();
  if (ct.startsWith("multipart/form-data")) return null;
  return { fields: await readForm(c), key: null, keyTooLarge: false };
}

const on = (v: string | undefined) => v === "on" || v === "true";

/** Where Microsoft sends the admin back: this console's origin and the handler's path. */
function redirectUri(c: Context): string {
  return `${new URL(c.req.url).origin}${CONSENT_REDIRECT_PATH}`;
}

function valuesFrom(f: Record<string, string>): NewTenantValues {
  return {
    app: f.app ?? "onedrive",
    name: (f.name ?? "").trim(),
    tenantId: (f.tenantId ?? "").trim(),
    clientId: (f.clientId ?? "").trim(),
    consentId: f.consentId ?? "",
    secretExpiresAt: f.secretExpiresAt ?? "",
    quarantine: on(f.quarantine),
    removeSharingLinks: on(f.removeSharingLinks),
    quarantineFolder: (f.quarantineFolder ?? "").trim() || "Quarantine",
  };
}

/** Installs the consent redirect handler (before the console's session middleware). */
export function installSaasConsentRedirect(app: Hono<any>, h: SaasConsoleHelpers): void {
  app.get(CONSENT_REDIRECT_PATH, async (c) => {
    const t = c.get("t");
    const q = new URL(c.req.url).search;
    const r = await h.callApi(c, "GET", `/saas/consent${q}`);
    if (!r.ok) {
      return h.bare(
        c,
        t("saas.consent.title"),
        <ConsentRefusedPage t={t} message={h.apiError(t, r)} />,
        r.status >= 400 && r.status < 500 ? r.status : 502,
      );
    }
    return c.redirect(`/saas/new?consent=${encodeURIComponent(r.data.id)}`, 303);
  });
}

/** Installs the /saas pages on the edge console (after its session middleware). */
export function installSaasConsole(app: Hono<any>, h: SaasConsoleHelpers): void {
  const flashOf = (c: Context) => {
    const m = c.req.query("msg");
    if (!m || !Object.hasOwn(FLASH, m)) return undefined;
    const [key, tone] = FLASH[m];
    return { tone, text: c.get("t")(key as never) };
  };

  app.get("/saas", async (c) => {
    const t = c.get("t");
    const r = await h.callApi(c, "GET", "/admin/saas/tenants");
    const f = flashOf(c);
    return h.frame(
      c,
      "saas",
      t("saas.title"),
      <TenantsPage
        t={t}
        lang={c.get("lang")}
        tenants={r.data?.tenants ?? []}
        flash={f?.tone === "ok" ? f.text : undefined}
      />,
    );
  });

  const newPage = async (
    c: Context,
    values: NewTenantValues,
    extra: { error?: string } = {},
    status = 200,
  ) => {
    const t = c.get("t");
    let consent: { result: string | null; error: string | null; name: string } | null = null;
    if (values.consentId) {
      const r = await h.callApi(
        c,
        "GET",
        `/admin/saas/consents/${encodeURIComponent(values.consentId)}`,
      );
      if (r.ok) consent = { result: r.data.result, error: r.data.error, name: r.data.name };
    }
    // The consent button's form is answered with a redirect to the identity
    // platform: this page's CSP lets forms lead there, and nowhere else new.
    const apps = await h.callApi(c, "GET", "/admin/saas/apps");
    const authority = typeof apps.data?.authorityUrl === "string"
      ? new URL(apps.data.authorityUrl).origin
      : null;
    if (authority) {
      c.header(
        "Content-Security-Policy",
        CSP.replace("form-action 'self'", `form-action 'self' ${authority}`),
      );
    }
    return h.frame(
      c,
      "saas",
      t("saas.new.title"),
      <NewTenantPage
        t={t}
        csrf={h.csrf(c)}
        values={values}
        redirectUri={redirectUri(c)}
        consent={consent}
        error={extra.error}
      />,
      status,
    );
  };

  app.get("/saas/new", async (c) => {
    const values = valuesFrom({ app: c.req.query("app") ?? "onedrive" });
    const consentId = c.req.query("consent");
    if (consentId) {
      const r = await h.callApi(c, "GET", `/admin/saas/consents/${encodeURIComponent(consentId)}`);
      if (r.ok) {
        Object.assign(values, {
          app: r.data.app,
          name: r.data.name,
          tenantId: r.data.tenantId,
          clientId: r.data.clientId,
          consentId: r.data.id,
        });
      }
    }
    return newPage(c, values);
  });

  // Admin consent: ask the API for the URL, then send the browser to Microsoft.
  app.post("/saas/consent-start", async (c) => {
    const t = c.get("t");
    const form = await formWithKey(c);
    if (!form) return newPage(c, valuesFrom({}), { error: t("saas.error.form") }, 400);
    const v = valuesFrom(form.fields);
    const r = await h.callApi(c, "POST", "/admin/saas/consents", {
      csrf: form.fields._csrf ?? "",
      json: {
        app: v.app,
        name: v.name,
        tenantId: v.tenantId,
        clientId: v.clientId,
        redirectUri: redirectUri(c),
      },
    });
    if (!r.ok) return newPage(c, v, { error: h.apiError(t, r) }, r.status);
    return c.redirect(r.data.url, 303);
  });

  app.post("/saas", async (c) => {
    const t = c.get("t");
    const form = await formWithKey(c);
    if (!form) return newPage(c, valuesFrom({}), { error: t("saas.error.form") }, 400);
    const v = valuesFrom(form.fields);
    if (form.keyTooLarge) return newPage(c, v, { error: t("saas.error.key_too_large") }, 413);
    const r = await h.callApi(c, "POST", "/admin/saas/tenants", {
      csrf: form.fields._csrf ?? "",
      json: {
        app: v.app,
        name: v.name,
        tenantId: v.tenantId,
        clientId: v.clientId,
        clientSecret: form.fields.clientSecret ?? "",
        secretExpiresAt: v.secretExpiresAt || null,
        privateKeyJson: form.key,
        consentId: v.consentId || null,
        remediation: {
          quarantine: v.quarantine,
          removeSharingLinks: v.removeSharingLinks,
          quarantineFolder: v.quarantineFolder,
        },
      },
    });
    if (r.status === 422 && r.data?.tenant?.id) {
      return c.redirect(`/saas/${encodeURIComponent(r.data.tenant.id)}?msg=failed_saved`, 303);
    }
    if (!r.ok) return newPage(c, v, { error: h.apiError(t, r) }, r.status);
    return c.redirect(`/saas/${encodeURIComponent(r.data.id)}?msg=added`, 303);
  });

  const scansOf = async (c: Context, id: string) => {
    const r = await h.callApi(c, "GET", `/admin/saas/tenants/${encodeURIComponent(id)}/scans`);
    return { scans: r.data?.scans ?? [], running: r.data?.running === true };
  };

  const tenantPage = async (c: Context, extra: { error?: string } = {}, status = 200) => {
    const t = c.get("t");
    const id = c.req.param("id") ?? "";
    const enc = encodeURIComponent(id);
    const r = await h.callApi(c, "GET", `/admin/saas/tenants/${enc}`);
    if (!r.ok) return h.frame(c, "saas", t("saas.title"), <p>{h.apiError(t, r)}</p>, r.status);
    const [apps, scans, findings] = await Promise.all([
      h.callApi(c, "GET", "/admin/saas/apps"),
      scansOf(c, id),
      h.callApi(c, "GET", `/admin/saas/tenants/${enc}/incidents?limit=200`),
    ]);
    const table = (apps.data?.apps as AppTableJson[] | undefined)?.find((a) =>
      a.app === r.data.app
    );
    return h.frame(
      c,
      "saas",
      r.data.name,
      <TenantPage
        t={t}
        lang={c.get("lang")}
        tenant={r.data}
        table={table}
        scans={scans.scans}
        running={scans.running}
        findings={findings.data?.incidents ?? []}
        csrf={h.csrf(c)}
        flash={flashOf(c)}
        error={extra.error}
      />,
      status,
    );
  };

  app.get("/saas/:id", (c) => tenantPage(c));
  app.get("/saas/:id/scans", async (c) => {
    const t = c.get("t");
    const id = c.req.param("id");
    const r = await h.callApi(c, "GET", `/admin/saas/tenants/${encodeURIComponent(id)}`);
    if (!r.ok) return c.text(h.apiError(t, r), r.status as 404);
    const s = await scansOf(c, id);
    return c.html(
      <ScansCard
        t={t}
        lang={c.get("lang")}
        tenant={r.data}
        scans={s.scans}
        running={s.running}
        csrf={h.csrf(c)}
      />,
    );
  });

  app.post("/saas/:id/reauthorize", async (c) => {
    const t = c.get("t");
    const id = c.req.param("id");
    const form = await formWithKey(c);
    if (!form) return tenantPage(c, { error: t("saas.error.form") }, 400);
    if (form.keyTooLarge) return tenantPage(c, { error: t("saas.error.key_too_large") }, 413);
    const json: Record<string, unknown> = {};
    if (form.fields.clientSecret) json.clientSecret = form.fields.clientSecret;
    if (form.key) json.privateKeyJson = form.key;
    const r = await h.callApi(
      c,
      "POST",
      `/admin/saas/tenants/${encodeURIComponent(id)}/reauthorize`,
      { csrf: form.fields._csrf ?? "", json },
    );
    if (r.status === 422) {
      return c.redirect(`/saas/${encodeURIComponent(id)}?msg=still_failed`, 303);
    }
    if (!r.ok) return tenantPage(c, { error: h.apiError(t, r) }, r.status);
    return c.redirect(`/saas/${encodeURIComponent(id)}?msg=reauthorized`, 303);
  });

  app.post("/saas/:id/settings", async (c) => {
    const t = c.get("t");
    const id = c.req.param("id");
    const f = await readForm(c);
    const json: Record<string, unknown> = { secretExpiresAt: f.secretExpiresAt || null };
    if (f.scanIntervalMinutes !== undefined) {
      // A number when it is one; otherwise the API names the field and what it expects.
      const v = f.scanIntervalMinutes.trim();
      json.scanIntervalMinutes = /^\d{1,6}$/.test(v) ? Number(v) : v;
    }
    if (f.quarantineFolder !== undefined) {
      json.remediation = {
        quarantine: on(f.quarantine),
        removeSharingLinks: on(f.removeSharingLinks),
        quarantineFolder: f.quarantineFolder,
      };
    }
    const r = await h.callApi(c, "PATCH", `/admin/saas/tenants/${encodeURIComponent(id)}`, {
      csrf: f._csrf ?? "",
      json,
    });
    if (!r.ok) return tenantPage(c, { error: h.apiError(t, r) }, r.status);
    return c.redirect(`/saas/${encodeURIComponent(id)}?msg=saved`, 303);
  });

  app.post("/saas/:id/scan", async (c) => {
    const t = c.get("t");
    const id = c.req.param("id");
    const f = await readForm(c);
    const r = await h.callApi(c, "POST", `/admin/saas/tenants/${encodeURIComponent(id)}/scans`, {
      csrf: f._csrf ?? "",
      json: { full: on(f.full) },
    });
    if (!r.ok) return tenantPage(c, { error: h.apiError(t, r) }, r.status);
    return c.redirect(`/saas/${encodeURIComponent(id)}?msg=scan_started`, 303);
  });

  app.post("/saas/:id/delete", async (c) => {
    const t = c.get("t");
    const id = c.req.param("id");
    const f = await readForm(c);
    const r = await h.callApi(c, "DELETE", `/admin/saas/tenants/${encodeURIComponent(id)}`, {
      csrf: f._csrf ?? "",
    });
    if (!r.ok) return tenantPage(c, { error: h.apiError(t, r) }, r.status);
    return c.redirect("/saas?msg=deleted", 303);
  });
}
