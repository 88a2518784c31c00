// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * The edge console's "Connector protection" page: per app profile, the
 * passwords a connector asks for before logout, disable, exit and uninstall,
 * the sign-in clock tolerance, and how long a user's sign-in lasts on its
 * devices (re-authentication every N hours).
 * The admin types each once; the form posts the plain text to the admin API
 * in-process, which stores only its scrypt hash. The page never shows a
 * hash, only whether an action is guarded; a blank field keeps the current
 * password and "Remove" drops it.
 */
import type { Context, Hono } from "hono";
import type { Translate } from "../../../web/i18n/mod.ts";
import { Card, CsrfField, Flash, Pill, Table } from "../../../web/components.tsx";
import { PROTECTED_ACTIONS, type ProtectedAction } from "../../policy/types.ts";
import { readForm } from "./common.ts";
import type { DlpConsoleHelpers } from "./edge_dlp.tsx";

/** What the page needs from the edge console around it: the same helpers as every section. */
export type PasswordsConsoleHelpers = DlpConsoleHelpers;

interface ProfileJson {
  profile: string;
  guarded: Record<ProtectedAction, boolean>;
  clockSkewToleranceSec: number;
  signInLifetimeHours: number;
}

const ACTION_KEY = {
  logout: "pw.action.logout",
  disable: "pw.action.disable",
  exit: "pw.action.exit",
  uninstall: "pw.action.uninstall",
} as const;

/** A profile name safe inside an element id. */
function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, "_");
}

function PasswordsPage(
  props: { t: Translate; csrf: string; profiles: ProfileJson[]; flash?: string; error?: string },
) {
  const { t } = props;
  return (
    <>
      {props.flash ? <Flash tone="ok">{props.flash}</Flash> : null}
      {props.error ? <Flash tone="bad">{props.error}</Flash> : null}
      <p class="muted">{t("pw.intro")}</p>
      {props.profiles.map((p) => {
        const id = slug(p.profile);
        return (
          <Card title={t("pw.profile", { name: p.profile })} id={`pw-${id}`}>
            <form
              method="post"
              action={`/passwords/${encodeURIComponent(p.profile)}`}
              id={`pw-form-${id}`}
            >
              <CsrfField token={props.csrf} />
              <Table
                id={`pw-table-${id}`}
                caption={t("pw.profile", { name: p.profile })}
                head={[t("pw.action"), t("pw.state"), t("pw.new"), t("pw.remove")]}
                empty=""
                rows={PROTECTED_ACTIONS.map((a) => [
                  <strong>{t(ACTION_KEY[a])}</strong>,
                  <Pill tone={p.guarded[a] ? "ok" : "idle"} id={`pw-state-${id}-${a}`}>
                    {p.guarded[a] ? t("pw.set") : t("pw.not_set")}
                  </Pill>,
                  <input
                    type="password"
                    id={`pw-${id}-${a}`}
                    name={a}
                    autocomplete="new-password"
                    aria-label={`${t(ACTION_KEY[a])}: ${t("pw.new")}`}
                  />,
                  p.guarded[a]
                    ? (
                      <input
                        type="checkbox"
                        id={`pw-clear-${id}-${a}`}
                        name={`clear_${a}`}
                        value="1"
                        aria-label={`${t(ACTION_KEY[a])}: ${t("pw.remove")}`}
                      />
                    )
                    : "—",
                ])}
              />
              <div class="actions" style="margin-top:14px">
                <button type="submit" class="btn btn-primary" id={`pw-save-${id}`}>
                  {t("pw.save")}
                </button>
              </div>
            </form>
            <form
              method="post"
              action={`/passwords/${encodeURIComponent(p.profile)}/clock-skew`}
              class="form"
              id={`skew-form-${id}`}
              style="margin-top:22px"
            >
              <CsrfField token={props.csrf} />
              <h3>{t("pw.skew_title")}</h3>
              <p class="muted">{t("pw.skew_help")}</p>
              <div class="form-row">
                <label for={`skew-${id}`}>{t("pw.skew_label")}</label>
                <input
                  type="number"
                  id={`skew-${id}`}
                  name="toleranceSec"
                  min="0"
                  max="1800"
                  step="1"
                  required
                  value={String(p.clockSkewToleranceSec)}
                />
              </div>
              <div class="actions">
                <button type="submit" class="btn btn-secondary" id={`skew-save-${id}`}>
                  {t("pw.skew_save")}
                </button>
              </div>
            </form>
            <form
              method="post"
              action={`/passwords/${encodeURIComponent(p.profile)}/signin-lifetime`}
              class="form"
              id={`life-form-${id}`}
              style="margin-top:22px"
            >
              <CsrfField token={props.csrf} />
              <h3>{t("pw.life_title")}</h3>
              <p class="muted">{t("pw.life_help")}</p>
              <div class="form-row">
                <label for={`life-${id}`}>{t("pw.life_label")}</label>
                <input
                  type="number"
                  id={`life-${id}`}
                  name="hours"
                  min="1"
                  max="720"
                  step="1"
                  required
                  value={String(p.signInLifetimeHours)}
                />
              </div>
              <div class="actions">
                <button type="submit" class="btn btn-secondary" id={`life-save-${id}`}>
                  {t("pw.life_save")}
                </button>
              </div>
            </form>
          </Card>
        );
      })}
    </>
  );
}

const SAVED: Record<string, (t: Translate) => string> = {
  saved: (t) => t("pw.saved"),
  skew_saved: (t) => t("pw.skew_saved"),
  life_saved: (t) => t("pw.life_saved"),
};

/** Installs GET /passwords and POST /passwords/:profile (behind the console's session check). */
export function installPasswordsConsole(app: Hono<any>, h: PasswordsConsoleHelpers): void {
  const show = async (c: Context, extra: { flash?: string; error?: string } = {}, status = 200) => {
    const t = c.get("t") as Translate;
    const r = await h.callApi(c, "GET", "/admin/policy/passwords");
    return h.frame(
      c,
      "passwords",
      t("edge.tab.passwords"),
      <PasswordsPage
        t={t}
        csrf={h.csrf(c)}
        profiles={r.data?.profiles ?? []}
        flash={extra.flash ?? SAVED[c.req.query("msg") ?? ""]?.(t)}
        error={extra.error ?? (r.ok ? undefined : h.apiError(t, r))}
      />,
      status,
    );
  };
  app.get("/passwords", (c) => show(c));
  app.post("/passwords/:profile", async (c) => {
    const form = await readForm(c);
    const json: Record<string, string | null> = {};
    for (const a of PROTECTED_ACTIONS) {
      if (form[`clear_${a}`] === "1") json[a] = null;
      else if (form[a]) json[a] = form[a];
    }
    const r = await h.callApi(
      c,
      "PUT",
      `/admin/policy/app-profiles/${encodeURIComponent(c.req.param("profile"))}/passwords`,
      { csrf: form._csrf ?? "", json },
    );
    if (!r.ok) return show(c, { error: h.apiError(c.get("t") as Translate, r) }, r.status);
    return c.redirect("/passwords?msg=saved", 303);
  });
  app.post("/passwords/:profile/clock-skew", async (c) => {
    const form = await readForm(c);
    const raw = (form.toleranceSec ?? "").trim();
    const r = await h.callApi(
      c,
      "PUT",
      `/admin/policy/app-profiles/${encodeURIComponent(c.req.param("profile"))}/clock-skew`,
      // A non-number goes to the API as typed, so its refusal names the value's problem.
      { csrf: form._csrf ?? "", json: { toleranceSec: /^\d{1,6}$/.test(raw) ? Number(raw) : raw } },
    );
    if (!r.ok) return show(c, { error: h.apiError(c.get("t") as Translate, r) }, r.status);
    return c.redirect("/passwords?msg=skew_saved", 303);
  });
  app.post("/passwords/:profile/signin-lifetime", async (c) => {
    const form = await readForm(c);
    const raw = (form.hours ?? "").trim();
    const r = await h.callApi(
      c,
      "PUT",
      `/admin/policy/app-profiles/${encodeURIComponent(c.req.param("profile"))}/signin-lifetime`,
      // A non-number goes to the API as typed, so its refusal names the value's problem.
      { csrf: form._csrf ?? "", json: { hours: /^\d{1,6}$/.test(raw) ? Number(raw) : raw } },
    );
    if (!r.ok) return show(c, { error: h.apiError(c.get("t") as Translate, r) }, r.status);
    return c.redirect("/passwords?msg=life_saved", 303);
  });
}
