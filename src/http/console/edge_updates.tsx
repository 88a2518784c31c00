// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * The edge console's "Updates" page: connector releases (upload a signed
 * bundle, delete one no rule targets), update rules (group, percentage,
 * target, rollback with the release key's signed authorisation — pasted or
 * chosen as a file; pause and resume; change the percentage or target) and,
 * per rule, how many devices it takes, how many it selected, and the
 * versions they report — the dashboard of a rollout. Every action goes
 * through the admin API (/api/v1/admin/updates).
 */
import type { Context, Hono } from "hono";
import type { Lang, Translate } from "../../../web/i18n/mod.ts";
import { ActionButton, Card, CsrfField, Flash, Pill, Table } from "../../../web/components.tsx";
import { formatTime } from "../../../web/format.ts";
import { parseRollback } from "../../fleet/rollback_auth.ts";
import { readForm, readMultipart } from "./common.ts";
import type { DlpConsoleHelpers } from "./edge_dlp.tsx";

interface ReleaseJson {
  version: string;
  sha256: string;
  size: number;
  keyId: string;
  uploadedAt: string;
  uploadedBy: string;
  available: boolean;
  rules: string[];
}

interface RuleJson {
  id: string;
  name: string;
  group: string | null;
  percent: number;
  targetVersion: string;
  paused: boolean;
  rollback: boolean;
  rollbackAuthorisation: string | null;
  position: number;
}

interface OverviewJson {
  rules: {
    rule: RuleJson | null;
    devices: number;
    selected: number;
    onTarget: number;
    byVersion: { version: string; devices: number }[];
  }[];
  reports: {
    deviceId: string;
    hostname: string | null;
    version: string;
    outcome: "installed" | "rolled_back" | "refused" | "failed";
    reason: string;
    at: string;
  }[];
}

const FLASH = {
  uploaded: "updates.flash.uploaded",
  deleted: "updates.flash.deleted",
  rule_saved: "updates.flash.rule_saved",
  rule_deleted: "updates.flash.rule_deleted",
} as const;

const OUTCOME = {
  installed: "updates.outcome.installed",
  rolled_back: "updates.outcome.rolled_back",
  refused: "updates.outcome.refused",
  failed: "updates.outcome.failed",
} as const;

/** The page. */
function UpdatesPage(
  props: {
    t: Translate;
    lang: Lang;
    releases: ReleaseJson[];
    overview: OverviewJson;
    csrf: string;
    flash?: string;
    error?: string;
  },
) {
  const { t, lang, csrf } = props;
  const versions = props.releases.map((r) => r.version);
  // Devices no rule takes get a row of their own, when there are any.
  const shown = props.overview.rules.filter((o) => o.rule || o.devices > 0);
  const options = (selected?: string) =>
    versions.map((v) => <option value={v} selected={v === selected}>{v}</option>);
  return (
    <>
      {props.flash ? <Flash tone="ok">{props.flash}</Flash> : null}
      {props.error ? <Flash tone="bad">{props.error}</Flash> : null}
      <p class="muted">{t("updates.intro")}</p>
      <Card title={t("updates.by_rule")} wide>
        <Table
          id="rules-table"
          caption={t("updates.by_rule")}
          head={[
            t("updates.col.rule"),
            t("updates.col.group"),
            t("updates.col.target"),
            t("updates.col.state"),
            t("updates.col.devices"),
            t("updates.col.versions"),
            "",
          ]}
          empty={t("updates.no_rules")}
          rowIds={shown.map((o) => `rule-${o.rule?.name ?? "none"}`)}
          rows={shown.map((o) => {
            const r = o.rule;
            const versionsRun = o.byVersion.map((v) => `${v.version} × ${v.devices}`).join(", ") ||
              "—";
            if (!r) {
              return [
                <em>{t("updates.no_rule")}</em>,
                "—",
                "—",
                "—",
                String(o.devices),
                <span class="mono">{versionsRun}</span>,
                "",
              ];
            }
            return [
              <strong>{r.name}</strong>,
              r.group ?? t("updates.all_devices"),
              <span class="mono">{r.targetVersion}</span>,
              <span>
                <Pill tone={r.paused ? "warn" : "ok"} id={`rule-state-${r.name}`}>
                  {r.paused ? t("updates.paused") : t("updates.active")}
                </Pill>
                {r.rollback ? <Pill tone="idle">{t("updates.rollback")}</Pill> : null}
                {r.rollback
                  ? (
                    <span class="hint" id={`rule-rollback-${r.name}`}>
                      {rollbackNote(t, lang, r.rollbackAuthorisation)}
                    </span>
                  )
                  : null}
              </span>,
              <span id={`rule-devices-${r.name}`}>
                {t("updates.selection", {
                  selected: o.selected,
                  devices: o.devices,
                  percent: r.percent,
                  onTarget: o.onTarget,
                })}
              </span>,
              <span class="mono" id={`rule-versions-${r.name}`}>{versionsRun}</span>,
              <span>
                <form
                  method="post"
                  action={`/updates/rules/${r.id}`}
                  class="inline-form"
                  enctype="multipart/form-data"
                  hx-boost="false"
                >
                  <CsrfField token={csrf} />
                  <label class="sr-only" for={`percent-${r.name}`}>{t("updates.percent")}</label>
                  <input
                    type="number"
                    min="0"
                    max="100"
                    name="percent"
                    id={`percent-${r.name}`}
                    value={String(r.percent)}
                    style="width:5em"
                  />
                  <label class="sr-only" for={`target-${r.name}`}>{t("updates.target")}</label>
                  <select name="targetVersion" id={`target-${r.name}`}>
                    {options(r.targetVersion)}
                  </select>
                  <label>
                    <input type="checkbox" name="rollback" value="on" checked={r.rollback} />{" "}
                    {t("updates.rollback")}
                  </label>
                  <label class="sr-only" for={`rollback-auth-${r.name}`}>
                    {t("updates.rollback_auth")}
                  </label>
                  <input
                    type="file"
                    name="rollbackAuthorisationFile"
                    id={`rollback-auth-${r.name}`}
                    title={t("updates.rollback_auth")}
                  />
                  <button type="submit" class="btn btn-secondary" id={`rule-save-${r.name}`}>
                    {t("updates.save")}
                  </button>
                </form>
                <ActionButton
                  action={`/updates/rules/${r.id}/${r.paused ? "resume" : "pause"}`}
                  label={r.paused ? t("updates.resume") : t("updates.pause")}
                  csrf={csrf}
                  id={`rule-${r.paused ? "resume" : "pause"}-${r.name}`}
                />
                <ActionButton
                  action={`/updates/rules/${r.id}/delete`}
                  label={t("updates.delete")}
                  csrf={csrf}
                  variant="danger"
                  id={`rule-delete-${r.name}`}
                />
              </span>,
            ];
          })}
        />
      </Card>
      <div class="grid">
        <Card title={t("updates.new_rule")}>
          {versions.length === 0 ? <p class="muted">{t("updates.upload_first")}</p> : (
            <form
              method="post"
              action="/updates/rules"
              class="form"
              id="rule-form"
              enctype="multipart/form-data"
              hx-boost="false"
            >
              <CsrfField token={csrf} />
              <div class="form-row">
                <label for="rule-name">{t("updates.col.rule")}</label>
                <input type="text" id="rule-name" name="name" required maxLength={64} />
              </div>
              <div class="form-row">
                <label for="rule-group">{t("updates.col.group")}</label>
                <input
                  type="text"
                  id="rule-group"
                  name="group"
                  placeholder={t("updates.all_devices")}
                />
              </div>
              <div class="form-row">
                <label for="rule-percent">{t("updates.percent")}</label>
                <input
                  id="rule-percent"
                  name="percent"
                  type="number"
                  min="0"
                  max="100"
                  value="10"
                />
              </div>
              <div class="form-row">
                <label for="rule-target">{t("updates.target")}</label>
                <select id="rule-target" name="targetVersion">{options()}</select>
              </div>
              <label>
                <input type="checkbox" name="rollback" value="on" id="rule-rollback" />{" "}
                {t("updates.rollback_hint")}
              </label>
              <div class="form-row">
                <label for="rule-rollback-auth">{t("updates.rollback_auth")}</label>
                <textarea
                  id="rule-rollback-auth"
                  name="rollbackAuthorisation"
                  rows={3}
                  class="mono"
                  placeholder='{"format":"portcullis-rollback-1",…}'
                />
                <label for="rule-rollback-auth-file">{t("updates.rollback_auth_file")}</label>
                <input type="file" id="rule-rollback-auth-file" name="rollbackAuthorisationFile" />
                <p class="hint">{t("updates.rollback_auth_hint")}</p>
              </div>
              <div>
                <button type="submit" class="btn btn-primary" id="rule-create">
                  {t("updates.create_rule")}
                </button>
              </div>
            </form>
          )}
        </Card>
        <Card title={t("updates.upload")}>
          <p class="hint">{t("updates.upload_hint")}</p>
          <form
            method="post"
            action="/updates/releases"
            class="form"
            id="release-form"
            enctype="multipart/form-data"
            hx-boost="false"
          >
            <CsrfField token={csrf} />
            <div class="form-row">
              <label for="release-file">{t("updates.bundle")}</label>
              <input type="file" id="release-file" name="file" required />
            </div>
            <div>
              <button type="submit" class="btn btn-primary" id="release-upload">
                {t("updates.upload_button")}
              </button>
            </div>
          </form>
        </Card>
      </div>
      <Card title={t("updates.releases")} wide>
        <Table
          id="releases-table"
          caption={t("updates.releases")}
          head={[
            t("updates.col.version"),
            t("updates.col.sha256"),
            t("updates.col.size"),
            t("updates.col.key"),
            t("updates.col.uploaded"),
            t("updates.col.rules"),
            "",
          ]}
          empty={t("updates.no_releases")}
          rowIds={props.releases.map((r) => `release-${r.version}`)}
          rows={props.releases.map((r) => [
            <strong class="mono">{r.version}</strong>,
            <span class="mono" title={r.sha256}>{r.sha256.slice(0, 16)}…</span>,
            r.size < 1024 ? `${r.size} B` : `${Math.round(r.size / 1024)} KiB`,
            <span class="mono">{r.keyId}</span>,
            <span>
              {formatTime(Date.parse(r.uploadedAt), lang)} · {r.uploadedBy}
              {r.available ? null : <Pill tone="warn">{t("updates.not_here")}</Pill>}
            </span>,
            r.rules.join(", ") || "—",
            r.rules.length ? "" : (
              <ActionButton
                action={`/updates/releases/${encodeURIComponent(r.version)}/delete`}
                label={t("updates.delete")}
                csrf={csrf}
                variant="danger"
                id={`release-delete-${r.version}`}
              />
            ),
          ])}
        />
      </Card>
      <Card title={t("updates.reports")} wide>
        <Table
          id="reports-table"
          caption={t("updates.reports")}
          head={[
            t("updates.col.device"),
            t("updates.col.version"),
            t("updates.col.outcome"),
            t("updates.col.reason"),
            t("updates.col.when"),
          ]}
          empty={t("updates.no_reports")}
          rows={props.overview.reports.map((x) => [
            x.hostname ?? x.deviceId,
            <span class="mono">{x.version}</span>,
            <Pill tone={x.outcome === "installed" ? "ok" : "bad"}>{t(OUTCOME[x.outcome])}</Pill>,
            x.reason,
            formatTime(Date.parse(x.at), lang),
          ])}
        />
      </Card>
    </>
  );
}

/** What the rule's authorisation allows, for its state column. */
function rollbackNote(t: Translate, lang: Lang, text: string | null): string {
  if (!text) return t("updates.rollback_unauthorised");
  try {
    const a = parseRollback(text).authorisation;
    return t("updates.rollback_until", {
      from: a.from.join(", "),
      time: formatTime(Date.parse(a.expiresAt), lang),
    });
  } catch {
    return t("updates.rollback_unauthorised");
  }
}

/** Largest rule form (a rollback authorisation is well under 2 KiB). */
const RULE_FORM_LIMIT = 64 * 1024;

/**
 * Reads a rule form (multipart, for the authorisation file; or urlencoded):
 * its fields, with `rollbackAuthorisation` taken from the file when one was
 * chosen, else from the text field.
 */
async function readRuleForm(c: Context): Promise<Record<string, string>> {
  const form = await readMultipart(c, RULE_FORM_LIMIT);
  if (!form) return await readForm(c, RULE_FORM_LIMIT);
  const out: Record<string, string> = {};
  for (const [k, v] of form) if (typeof v === "string") out[k] = v;
  const file = form.get("rollbackAuthorisationFile");
  if (file instanceof File && file.size > 0) out.rollbackAuthorisation = await file.text();
  return out;
}

/** A form's authorisation text, or undefined when none was given. */
const authOf = (f: Record<string, string>) => f.rollbackAuthorisation?.trim() || undefined;

/** Installs GET /updates and its forms (behind the session check). */
export function installUpdatesConsole(app: Hono<any>, h: DlpConsoleHelpers) {
  const show = async (c: Context, extra: { error?: string } = {}, status = 200) => {
    const t = c.get("t") as Translate;
    const [rel, ov] = await Promise.all([
      h.callApi(c, "GET", "/admin/updates/releases"),
      h.callApi(c, "GET", "/admin/updates/overview"),
    ]);
    const msg = c.req.query("msg");
    const flash = msg && Object.hasOwn(FLASH, msg)
      ? t(FLASH[msg as keyof typeof FLASH])
      : undefined;
    return h.frame(
      c,
      "updates",
      t("edge.tab.updates"),
      <UpdatesPage
        t={t}
        lang={c.get("lang") as Lang}
        releases={rel.data?.releases ?? []}
        overview={ov.data ?? { rules: [], reports: [] }}
        csrf={h.csrf(c)}
        flash={flash}
        error={extra.error ?? (rel.ok ? undefined : h.apiError(t, rel))}
      />,
      status,
    );
  };
  const done = async (
    c: Context,
    r: { ok: boolean; status: number; data: any },
    msg: keyof typeof FLASH,
  ) =>
    r.ok ? c.redirect(`/updates?msg=${msg}`, 303) : await show(c, {
      error: h.apiError(c.get("t") as Translate, r),
    }, r.status);

  app.get("/updates", (c) => show(c));
  app.post("/updates/releases", async (c) => {
    const t = c.get("t") as Translate;
    const form = await readMultipart(c, 256 * 1024 * 1024 + 64 * 1024);
    const file = form?.get("file");
    if (!(file instanceof File)) return show(c, { error: t("updates.error.no_file") }, 400);
    const r = await h.callApi(c, "POST", "/admin/updates/releases", {
      csrf: String(form!.get("_csrf") ?? ""),
      body: new Uint8Array(await file.arrayBuffer()),
      contentType: "application/octet-stream",
    });
    return done(c, r, "uploaded");
  });
  app.post("/updates/releases/:version/delete", async (c) => {
    const f = await readForm(c);
    const r = await h.callApi(
      c,
      "DELETE",
      `/admin/updates/releases/${encodeURIComponent(c.req.param("version"))}`,
      { csrf: f._csrf ?? "" },
    );
    return done(c, r, "deleted");
  });
  app.post("/updates/rules", async (c) => {
    const f = await readRuleForm(c);
    const r = await h.callApi(c, "POST", "/admin/updates/rules", {
      csrf: f._csrf ?? "",
      json: {
        name: f.name ?? "",
        group: f.group?.trim() ? f.group.trim() : null,
        percent: Number(f.percent),
        targetVersion: f.targetVersion ?? "",
        rollback: f.rollback === "on",
        rollbackAuthorisation: authOf(f) ?? null,
      },
    });
    return done(c, r, "rule_saved");
  });
  const patch = async (c: Context, body: (f: Record<string, string>) => unknown) => {
    const f = await readRuleForm(c);
    const r = await h.callApi(
      c,
      "PATCH",
      `/admin/updates/rules/${encodeURIComponent(c.req.param("id") ?? "")}`,
      { csrf: f._csrf ?? "", json: body(f) },
    );
    return done(c, r, "rule_saved");
  };
  app.post("/updates/rules/:id", (c) =>
    patch(c, (f) => ({
      percent: Number(f.percent),
      targetVersion: f.targetVersion,
      rollback: f.rollback === "on",
      // None chosen: the rule keeps the one it has.
      rollbackAuthorisation: authOf(f),
    })));
  app.post("/updates/rules/:id/pause", (c) => patch(c, () => ({ paused: true })));
  app.post("/updates/rules/:id/resume", (c) => patch(c, () => ({ paused: false })));
  app.post("/updates/rules/:id/delete", async (c) => {
    const f = await readForm(c);
    const r = await h.callApi(
      c,
      "DELETE",
      `/admin/updates/rules/${encodeURIComponent(c.req.param("id"))}`,
      { csrf: f._csrf ?? "" },
    );
    return done(c, r, "rule_deleted");
  });
}
