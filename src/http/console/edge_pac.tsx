/**
 * The console's "PAC files" page: each app profile's PAC file as devices
 * get it — its own template, or the one generated from its lists — to edit
 * (variables ${PROXY}, ${EDGE}, ${DEVICE_HOSTNAME}, ${USER}, ${GROUPS}) or
 * to reset to the generated file. It calls the REST API in-process as the
 * admin's session, so the template is checked in the sandbox there, and a
 * refused one comes back in the form with the API's sentence, unsaved.
 */
import type { Context, Hono } from "hono";
import { readForm } from "./common.ts";
import type { DlpConsoleHelpers } from "./edge_dlp.tsx";
import { Messages, WebNav } from "./edge_web_pages.tsx";
import { Card, CsrfField, Pill } from "../../../web/components.tsx";
import type { Translate } from "../../../web/i18n/mod.ts";

/** One profile as the page shows it. */
export interface PacFileView {
  profile: string;
  template: string | null;
  generated: string | null;
}

const domId = (name: string) => name.replace(/[^A-Za-z0-9_-]/g, "_");

/** The page body. */
export function PacFilesPage(
  props: {
    t: Translate;
    items: PacFileView[];
    csrf: string;
    flash?: string;
    error?: string;
    /** A refused edit, shown again in its form. */
    draft?: { profile: string; template: string };
  },
) {
  const { t } = props;
  return (
    <>
      <WebNav t={t} active="pac_files" />
      <Messages flash={props.flash} error={props.error} />
      <Card wide title={t("web.pac_files")}>
        <p class="hint">{t("web.pac_files_hint")}</p>
      </Card>
      {props.items.map((p) => {
        const id = domId(p.profile);
        const text = props.draft?.profile === p.profile
          ? props.draft.template
          : p.template ?? p.generated ?? "";
        return (
          <Card wide title={t("web.pac_profile", { name: p.profile })}>
            <p id={`pac-state-${id}`}>
              {p.template === null
                ? <Pill tone="info">{t("web.pac_generated")}</Pill>
                : <Pill tone="ok">{t("web.pac_custom")}</Pill>}
            </p>
            <form method="post" action="/web/pac-files" class="form" id={`pac-form-${id}`}>
              <CsrfField token={props.csrf} />
              <input type="hidden" name="profile" value={p.profile} />
              <div class="form-row">
                <label for={`pac-t-${id}`}>{t("web.pac_template")}</label>
                <textarea
                  id={`pac-t-${id}`}
                  name="template"
                  rows={16}
                  maxlength={65536}
                  style="font-family:monospace"
                >
                  {text}
                </textarea>
              </div>
              <div class="actions">
                <button
                  type="submit"
                  name="op"
                  value="save"
                  class="btn btn-primary"
                  id={`pac-save-${id}`}
                >
                  {t("web.pac_save")}
                </button>
                <button
                  type="submit"
                  name="op"
                  value="reset"
                  class="btn btn-secondary"
                  id={`pac-reset-${id}`}
                  formnovalidate
                >
                  {t("web.pac_use_generated")}
                </button>
              </div>
            </form>
          </Card>
        );
      })}
    </>
  );
}

const FLASH: Record<string, string> = {
  pac_saved: "web.flash.pac_saved",
  pac_reset: "web.flash.pac_reset",
};

/** Installs /web/pac-files on the edge console. */
export function installPacConsole(app: Hono<any>, h: DlpConsoleHelpers): void {
  const page = async (
    c: Context,
    extra: { error?: string; draft?: { profile: string; template: string } } = {},
    status = 200,
  ) => {
    const t = c.get("t");
    const items = await h.callApi(c, "GET", "/admin/web/pac-templates");
    const m = c.req.query("msg");
    return h.frame(
      c,
      "web",
      t("web.pac_files"),
      <PacFilesPage
        t={t}
        items={items.data?.items ?? []}
        csrf={h.csrf(c)}
        flash={m && Object.hasOwn(FLASH, m) ? t(FLASH[m] as never) : undefined}
        {...extra}
      />,
      status,
    );
  };
  app.get("/web/pac-files", (c) => page(c));
  app.post("/web/pac-files", async (c) => {
    const t = c.get("t");
    const f = await readForm(c, 200 * 1024);
    const profile = f.profile ?? "";
    const reset = f.op === "reset";
    // Browsers send textarea line ends as CRLF; the template is stored as typed, with LF.
    const template = (f.template ?? "").replace(/\r\n/g, "\n");
    const r = await h.callApi(
      c,
      "PUT",
      `/admin/web/pac-templates/${encodeURIComponent(profile)}`,
      { csrf: f._csrf ?? "", json: { template: reset ? null : template } },
    );
    if (r.ok) return c.redirect(`/web/pac-files?msg=${reset ? "pac_reset" : "pac_saved"}`, 303);
    return page(c, { error: h.apiError(t, r), draft: { profile, template } }, r.status);
  });
}
