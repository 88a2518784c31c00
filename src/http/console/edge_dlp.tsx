// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * The edge console's Data protection section: incidents (filterable, with
 * redacted samples, one page each, JSON export), dictionaries (create,
 * replace, delete, EDM CSV upload), rules (add, enable/disable, reorder,
 * delete) and a "test a file" tool. Like every edge page it only calls the
 * REST API in-process as the admin's session (see edge_console.tsx), so the
 * API's validation, audit and notifications hold here too.
 */
import type { Context, Hono } from "hono";
import type { Child } from "hono/jsx";
import type { Lang, Translate } from "../../../web/i18n/mod.ts";
import {
  ActionButton,
  Card,
  CsrfField,
  Flash,
  KeyValue,
  Pill,
  Table,
} from "../../../web/components.tsx";
import { formatBytes, formatTime } from "../../../web/format.ts";
import { CHANNELS, DICTIONARY_KINDS } from "../../dlp/types.ts";
import { readBodyLimited } from "../api/common.ts";
import { actionLabel, actionTone, channelLabel } from "./connector_dlp_page.tsx";
import { readForm } from "./common.ts";

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

interface MatchJson {
  dictionary: string;
  kind: string;
  count: number;
  samples: string[];
}
interface IncidentJson {
  id: string;
  source: string;
  deviceId: string | null;
  hostname: string;
  user: string | null;
  channel: string;
  fileName: string;
  fileSha256: string;
  fileSize: number;
  fileType: string;
  rule: string | null;
  action: string;
  outcome: string;
  matches: MatchJson[];
  occurredAt: string;
  receivedAt: string;
}
interface DictJson {
  def: {
    name: string;
    kind: string;
    description: string;
    threshold: number;
    proximity: { terms: string[]; window: number } | null;
    pattern?: string;
    terms?: string[];
    wholeWord: boolean;
    caseSensitive: boolean;
    minColumns: number;
  };
  edm: { rows: number; columns: string[]; uploadedAt: number } | null;
}
interface RuleJson {
  name: string;
  enabled: boolean;
  description: string;
  users: string[];
  groups: string[];
  channels: string[];
  dictionaries: string[];
  match: "any" | "all";
  action: string;
}

const base = (p: string) => p.split("/").pop() || p;

function SubNav(props: { t: Translate; active: string }) {
  const { t } = props;
  const items = [
    ["/dlp", "incidents", t("dlp.nav.incidents")],
    ["/dlp/dictionaries", "dictionaries", t("dlp.nav.dictionaries")],
    ["/dlp/rules", "rules", t("dlp.nav.rules")],
    ["/dlp/test", "test", t("dlp.nav.test")],
  ];
  return (
    <nav class="actions" aria-label={t("dlp.nav.label")} style="margin-bottom:18px" id="dlp-nav">
      {items.map(([href, id, label]) => (
        <a
          href={href}
          class={id === props.active ? "btn btn-primary btn-small" : "btn btn-secondary btn-small"}
          aria-current={id === props.active ? "page" : undefined}
          id={`dlp-nav-${id}`}
        >
          {label}
        </a>
      ))}
    </nav>
  );
}

function MatchList(props: { t: Translate; matches: MatchJson[] }) {
  return (
    <ul class="segments dlp-matches">
      {props.matches.map((m) => (
        <li>
          <strong>{m.dictionary}</strong>
          <span class="badge">{props.t("dlp.count", { count: m.count })}</span>
          <span class="muted">{m.samples.map((s) => <code class="sample">{s}</code>)}</span>
        </li>
      ))}
    </ul>
  );
}

/** The incidents list. */
export function IncidentsPage(
  props: { t: Translate; lang: Lang; incidents: IncidentJson[]; channel: string; action: string },
) {
  const { t, lang } = props;
  return (
    <>
      <SubNav t={t} active="incidents" />
      <Card
        wide
        title={t("dlp.incidents")}
        actions={
          <>
            <form method="get" action="/dlp" class="form-inline" id="incident-filter">
              <label for="f-channel">{t("dlp.channel")}</label>
              <select id="f-channel" name="channel" data-autosubmit="">
                <option value="">{t("dlp.all")}</option>
                {CHANNELS.map((ch) => (
                  <option value={ch} selected={ch === props.channel}>{channelLabel(t, ch)}</option>
                ))}
              </select>
              <label for="f-action">{t("dlp.action")}</label>
              <select id="f-action" name="action" data-autosubmit="">
                <option value="">{t("dlp.all")}</option>
                {["block", "notify"].map((a) => (
                  <option value={a} selected={a === props.action}>{actionLabel(t, a)}</option>
                ))}
              </select>
              <button type="submit" class="btn btn-secondary btn-small">{t("layout.apply")}</button>
            </form>
            <a
              href="/dlp/export"
              class="btn btn-secondary btn-small"
              hx-boost="false"
              download
              id="dlp-export"
            >
              {t("dlp.export")}
            </a>
          </>
        }
      >
        <Table
          id="incidents-table"
          caption={t("dlp.incidents")}
          head={[
            t("dlp.time"),
            t("dlp.device"),
            t("dlp.channel"),
            t("dlp.file"),
            t("dlp.rule"),
            t("dlp.action"),
            t("dlp.found"),
            "",
          ]}
          empty={t("dlp.no_incidents")}
          rowIds={props.incidents.map((i) => `incident-${i.id}`)}
          rows={props.incidents.map((i) => [
            formatTime(i.receivedAt, lang),
            i.deviceId
              ? <a href={`/devices/${encodeURIComponent(i.deviceId)}`}>{i.hostname}</a>
              : i.hostname,
            channelLabel(t, i.channel),
            <span title={i.fileName}>{base(i.fileName)}</span>,
            i.rule ?? "—",
            <Pill tone={actionTone(i.outcome === "quarantined" ? "quarantined" : i.action)}>
              {t(`dlp.outcome.${i.outcome}` as never)}
            </Pill>,
            <MatchList t={t} matches={i.matches} />,
            <a href={`/dlp/incidents/${encodeURIComponent(i.id)}`}>{t("dlp.details")}</a>,
          ])}
        />
      </Card>
    </>
  );
}

/** One incident. */
export function IncidentPage(props: { t: Translate; lang: Lang; i: IncidentJson }) {
  const { t, lang, i } = props;
  return (
    <>
      <SubNav t={t} active="incidents" />
      <div class="grid">
        <Card title={t("dlp.incident")}>
          <KeyValue
            id="incident-detail"
            rows={[
              [
                t("dlp.outcome"),
                <Pill tone={actionTone(i.outcome === "quarantined" ? "quarantined" : i.action)}>
                  {t(`dlp.outcome.${i.outcome}` as never)}
                </Pill>,
              ],
              [t("dlp.rule"), i.rule ?? "—"],
              [t("dlp.action"), actionLabel(t, i.action)],
              [t("dlp.channel"), channelLabel(t, i.channel)],
              [
                t("dlp.device"),
                i.deviceId
                  ? <a href={`/devices/${encodeURIComponent(i.deviceId)}`}>{i.hostname}</a>
                  : i.hostname,
              ],
              [t("dlp.user"), i.user ?? "—"],
              [t("dlp.file"), <code>{i.fileName}</code>],
              [t("dlp.file_type"), i.fileType],
              [t("dlp.size"), formatBytes(i.fileSize, lang)],
              [t("dlp.sha256"), <code>{i.fileSha256}</code>],
              [t("dlp.occurred"), formatTime(i.occurredAt, lang)],
              [t("dlp.received"), formatTime(i.receivedAt, lang)],
              [t("dlp.source"), t(`dlp.source.${i.source}` as never)],
            ]}
          />
        </Card>
        <Card title={t("dlp.found")}>
          <Table
            id="incident-matches"
            caption={t("dlp.found")}
            head={[t("dlp.dictionary"), t("dlp.count_head"), t("dlp.samples")]}
            empty="—"
            rows={i.matches.map((m) => [
              <strong>{m.dictionary}</strong>,
              String(m.count),
              <span>{m.samples.map((s) => <code class="sample">{s}</code>)}</span>,
            ])}
          />
          <p class="hint">{t("dlp.samples_hint")}</p>
        </Card>
      </div>
    </>
  );
}

function dictDetail(t: Translate, d: DictJson): string {
  const x = d.def;
  switch (x.kind) {
    case "regex":
      return x.pattern ?? "";
    case "keywords":
      return t("dlp.terms_n", { n: x.terms?.length ?? 0 }) +
        (x.wholeWord ? ` · ${t("dlp.whole_word")}` : "");
    case "edm":
      return d.edm
        ? t("dlp.edm_summary", {
          rows: d.edm.rows,
          columns: d.edm.columns.join(", "),
          min: x.minColumns,
        })
        : t("dlp.edm_missing");
    default:
      return t(`dlp.kind_hint.${x.kind}` as never);
  }
}

/** Dictionaries: list, add or replace, EDM upload. */
export function DictionariesPage(
  props: {
    t: Translate;
    lang: Lang;
    dicts: DictJson[];
    csrf: string;
    flash?: string;
    error?: string;
  },
) {
  const { t } = props;
  const edm = props.dicts.filter((d) => d.def.kind === "edm");
  return (
    <>
      <SubNav t={t} active="dictionaries" />
      {props.flash ? <Flash tone="ok">{props.flash}</Flash> : null}
      {props.error ? <Flash tone="bad">{props.error}</Flash> : null}
      <Card wide title={t("dlp.dictionaries")}>
        <Table
          id="dictionaries-table"
          caption={t("dlp.dictionaries")}
          head={[
            t("dlp.name"),
            t("dlp.kind"),
            t("dlp.threshold"),
            t("dlp.proximity"),
            t("dlp.details"),
            "",
          ]}
          empty={t("dlp.no_dictionaries")}
          rowIds={props.dicts.map((d) => `dict-${d.def.name.replace(/[^A-Za-z0-9_-]/g, "_")}`)}
          rows={props.dicts.map((d) => [
            <strong>{d.def.name}</strong>,
            t(`dlp.kind.${d.def.kind}` as never),
            String(d.def.threshold),
            d.def.proximity
              ? t("dlp.proximity_summary", {
                terms: d.def.proximity.terms.join(", "),
                window: d.def.proximity.window,
              })
              : "—",
            <code>{dictDetail(t, d)}</code>,
            <ActionButton
              action={`/dlp/dictionaries/${encodeURIComponent(d.def.name)}/delete`}
              label={t("dlp.delete")}
              csrf={props.csrf}
              variant="danger"
            />,
          ])}
        />
      </Card>
      <div class="grid">
        <Card title={t("dlp.add_dictionary")}>
          <form method="post" action="/dlp/dictionaries" class="form" id="dictionary-form">
            <CsrfField token={props.csrf} />
            <div class="form-inline">
              <div class="form-row">
                <label for="d-name">{t("dlp.name")}</label>
                <input
                  type="text"
                  id="d-name"
                  name="name"
                  required
                  maxlength={64}
                  pattern="[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}"
                />
              </div>
              <div class="form-row">
                <label for="d-kind">{t("dlp.kind")}</label>
                <select id="d-kind" name="kind">
                  {DICTIONARY_KINDS.map((k) => (
                    <option value={k}>{t(`dlp.kind.${k}` as never)}</option>
                  ))}
                </select>
              </div>
              <div class="form-row">
                <label for="d-threshold">{t("dlp.threshold")}</label>
                <input
                  type="number"
                  id="d-threshold"
                  name="threshold"
                  min={1}
                  max={100000}
                  value="1"
                />
              </div>
            </div>
            <div class="form-row">
              <label for="d-pattern">{t("dlp.pattern")}</label>
              <input
                type="text"
                id="d-pattern"
                name="pattern"
                maxlength={1000}
                aria-describedby="d-pattern-hint"
              />
              <p class="hint" id="d-pattern-hint">{t("dlp.pattern_hint")}</p>
            </div>
            <div class="form-row">
              <label for="d-terms">{t("dlp.terms")}</label>
              <textarea id="d-terms" name="terms" rows={3} aria-describedby="d-terms-hint">
              </textarea>
              <p class="hint" id="d-terms-hint">{t("dlp.terms_hint")}</p>
            </div>
            <div class="form-inline">
              <div class="form-row">
                <label for="d-prox">{t("dlp.proximity_terms")}</label>
                <input type="text" id="d-prox" name="proximityTerms" maxlength={2000} />
              </div>
              <div class="form-row">
                <label for="d-window">{t("dlp.window")}</label>
                <input type="number" id="d-window" name="window" min={1} max={10000} value="100" />
              </div>
              <div class="form-row">
                <label for="d-mincols">{t("dlp.min_columns")}</label>
                <input type="number" id="d-mincols" name="minColumns" min={1} max={32} value="2" />
              </div>
            </div>
            <label class="check">
              <input type="checkbox" name="wholeWord" checked />
              {t("dlp.whole_word")}
            </label>
            <label class="check">
              <input type="checkbox" name="caseSensitive" />
              {t("dlp.case_sensitive")}
            </label>
            <div>
              <button type="submit" class="btn btn-primary" id="dictionary-save">
                {t("dlp.save_dictionary")}
              </button>
            </div>
          </form>
        </Card>
        <Card title={t("dlp.edm_upload")}>
          <p class="hint">{t("dlp.edm_hint")}</p>
          {edm.length === 0 ? <p class="muted">{t("dlp.edm_none")}</p> : (
            <form
              method="post"
              action="/dlp/edm"
              class="form"
              id="edm-form"
              enctype="multipart/form-data"
              hx-boost="false"
            >
              <CsrfField token={props.csrf} />
              <div class="form-row">
                <label for="edm-dict">{t("dlp.dictionary")}</label>
                <select id="edm-dict" name="dictionary">
                  {edm.map((d) => <option value={d.def.name}>{d.def.name}</option>)}
                </select>
              </div>
              <div class="form-row">
                <label for="edm-file">{t("dlp.csv_file")}</label>
                <input type="file" id="edm-file" name="file" accept=".csv,text/csv" required />
              </div>
              <div>
                <button type="submit" class="btn btn-primary" id="edm-upload">
                  {t("dlp.upload")}
                </button>
              </div>
            </form>
          )}
        </Card>
      </div>
    </>
  );
}

/** Rules: ordered list with enable/disable, move up and delete; a form to add one. */
export function RulesPage(
  props: {
    t: Translate;
    rules: RuleJson[];
    dictionaries: string[];
    csrf: string;
    flash?: string;
    error?: string;
  },
) {
  const { t } = props;
  const enc = encodeURIComponent;
  return (
    <>
      <SubNav t={t} active="rules" />
      {props.flash ? <Flash tone="ok">{props.flash}</Flash> : null}
      {props.error ? <Flash tone="bad">{props.error}</Flash> : null}
      <Card wide title={t("dlp.rules")}>
        <p class="hint">{t("dlp.rules_hint")}</p>
        <Table
          id="rules-table"
          caption={t("dlp.rules")}
          head={[
            "#",
            t("dlp.name"),
            t("dlp.who"),
            t("dlp.channels"),
            t("dlp.dictionaries"),
            t("dlp.action"),
            "",
          ]}
          empty={t("dlp.no_rules")}
          rowIds={props.rules.map((r) => `rule-${r.name.replace(/[^A-Za-z0-9_-]/g, "_")}`)}
          rows={props.rules.map((r, i) => [
            String(i + 1),
            <span>
              <strong>{r.name}</strong>
              {r.enabled ? null : <span class="badge">{t("dlp.disabled")}</span>}
            </span>,
            [...r.users, ...r.groups.map((g) => `@${g}`)].join(", ") || t("dlp.everyone"),
            r.channels.map((c) => channelLabel(t, c)).join(", "),
            `${r.dictionaries.join(r.match === "all" ? " + " : " | ")}`,
            <Pill tone={actionTone(r.action)}>{actionLabel(t, r.action)}</Pill>,
            <div class="actions">
              <ActionButton
                action={`/dlp/rules/${enc(r.name)}/toggle`}
                label={r.enabled ? t("dlp.disable") : t("dlp.enable")}
                csrf={props.csrf}
              />
              {i > 0
                ? (
                  <ActionButton
                    action={`/dlp/rules/${enc(r.name)}/up`}
                    label={t("dlp.move_up")}
                    csrf={props.csrf}
                  />
                )
                : null}
              <ActionButton
                action={`/dlp/rules/${enc(r.name)}/delete`}
                label={t("dlp.delete")}
                csrf={props.csrf}
                variant="danger"
              />
            </div>,
          ])}
        />
      </Card>
      <Card title={t("dlp.add_rule")}>
        {props.dictionaries.length === 0
          ? <p class="muted">{t("dlp.rules_need_dictionaries")}</p>
          : (
            <form method="post" action="/dlp/rules" class="form" id="rule-form">
              <CsrfField token={props.csrf} />
              <div class="form-inline">
                <div class="form-row">
                  <label for="r-name">{t("dlp.name")}</label>
                  <input
                    type="text"
                    id="r-name"
                    name="name"
                    required
                    maxlength={64}
                    pattern="[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}"
                  />
                </div>
                <div class="form-row">
                  <label for="r-action">{t("dlp.action")}</label>
                  <select id="r-action" name="action">
                    {["block", "notify", "allow"].map((a) => (
                      <option value={a}>{actionLabel(t, a)}</option>
                    ))}
                  </select>
                </div>
                <div class="form-row">
                  <label for="r-match">{t("dlp.match")}</label>
                  <select id="r-match" name="match">
                    <option value="any">{t("dlp.match_any")}</option>
                    <option value="all">{t("dlp.match_all")}</option>
                  </select>
                </div>
              </div>
              <div class="form-inline">
                <div class="form-row">
                  <label for="r-users">{t("dlp.users")}</label>
                  <input
                    type="text"
                    id="r-users"
                    name="users"
                    maxlength={2000}
                    placeholder={t("dlp.comma_hint")}
                  />
                </div>
                <div class="form-row">
                  <label for="r-groups">{t("dlp.groups")}</label>
                  <input
                    type="text"
                    id="r-groups"
                    name="groups"
                    maxlength={2000}
                    placeholder={t("dlp.comma_hint")}
                  />
                </div>
              </div>
              <fieldset class="form-row">
                <legend>{t("dlp.channels")}</legend>
                {CHANNELS.map((c) => (
                  <label class="check">
                    <input type="checkbox" name={`channel.${c}`} id={`r-ch-${c}`} />
                    {channelLabel(t, c)}
                  </label>
                ))}
              </fieldset>
              <fieldset class="form-row">
                <legend>{t("dlp.dictionaries")}</legend>
                {props.dictionaries.map((d) => (
                  <label class="check">
                    <input type="checkbox" name={`dict.${d}`} />
                    {d}
                  </label>
                ))}
              </fieldset>
              <div>
                <button type="submit" class="btn btn-primary" id="rule-add">
                  {t("dlp.add_rule")}
                </button>
              </div>
            </form>
          )}
      </Card>
    </>
  );
}

/** The test tool: upload a file, see what the policy would do. */
export function TestPage(
  props: { t: Translate; csrf: string; result?: any; error?: string },
) {
  const { t, result: r } = props;
  return (
    <>
      <SubNav t={t} active="test" />
      {props.error ? <Flash tone="bad">{props.error}</Flash> : null}
      <div class="grid">
        <Card title={t("dlp.test_title")}>
          <p class="hint">{t("dlp.test_hint")}</p>
          <form
            method="post"
            action="/dlp/test"
            class="form"
            id="test-form"
            enctype="multipart/form-data"
            hx-boost="false"
          >
            <CsrfField token={props.csrf} />
            <div class="form-row">
              <label for="t-file">{t("dlp.file")}</label>
              <input type="file" id="t-file" name="file" required />
            </div>
            <div class="form-inline">
              <div class="form-row">
                <label for="t-channel">{t("dlp.channel")}</label>
                <select id="t-channel" name="channel">
                  {CHANNELS.map((c) => <option value={c}>{channelLabel(t, c)}</option>)}
                </select>
              </div>
              <div class="form-row">
                <label for="t-user">{t("dlp.user")}</label>
                <input type="text" id="t-user" name="user" maxlength={256} />
              </div>
              <div class="form-row">
                <label for="t-groups">{t("dlp.groups")}</label>
                <input
                  type="text"
                  id="t-groups"
                  name="groups"
                  maxlength={2000}
                  placeholder={t("dlp.comma_hint")}
                />
              </div>
            </div>
            <div>
              <button type="submit" class="btn btn-primary" id="test-run">
                {t("dlp.test_run")}
              </button>
            </div>
          </form>
        </Card>
        {r
          ? (
            <Card title={t("dlp.test_result")} id="test-result">
              <KeyValue
                rows={[
                  [
                    t("dlp.action"),
                    <Pill tone={actionTone(r.action)} id="test-action">
                      {actionLabel(t, r.action)}
                    </Pill>,
                  ],
                  [t("dlp.rule"), r.rule ?? "—"],
                  [t("dlp.reason"), r.reason],
                  [
                    t("dlp.file_type"),
                    (r.files ?? []).map((f: { name: string; fileType: string }) =>
                      `${f.name}: ${f.fileType}`
                    ).join(", "),
                  ],
                ] as [Child, Child][]}
              />
              {r.matches?.length
                ? <MatchList t={t} matches={r.matches} />
                : <p class="muted">{t("dlp.nothing_found")}</p>}
            </Card>
          )
          : null}
      </div>
    </>
  );
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
      return saveRules(c, f._csrf ?? "", (rules) => {
        const i = rules.findIndex((r) => r.name === name);
        if (i < 0) return rules;
        if (op === "delete") return rules.filter((_, k) => k !== i);
        if (op === "toggle") {
          return rules.map((r, k) => (k === i ? { ...r, enabled: !r.enabled } : r));
        }
        if (i === 0) return rules;
        const next = rules.slice();
        [next[i - 1], next[i]] = [next[i], next[i - 1]];
        return next;
      });
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

/** Reads a multipart form with files up to `limit` bytes; null when it is not one. */
async function multipart(c: Context, limit: number): Promise<FormData | null> {
  const ct = c.req.header("content-type") ?? "";
  if (!ct.toLowerCase().startsWith("multipart/form-data")) return null;
  const bytes = await readBodyLimited(c, limit);
  try {
    return await new Response(bytes, { headers: { "content-type": ct } }).formData();
  } catch {
    return null;
  }
}
