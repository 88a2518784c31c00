// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * The policy pages of the edge console's Data protection section:
 * dictionaries (with the EDM upload) and rules. Pure functions of the API's
 * JSON and a translator; routes in edge_dlp.tsx.
 */
import type { Lang, Translate } from "../../../web/i18n/mod.ts";
import { ActionButton, Card, CsrfField, Flash, Pill, Table } from "../../../web/components.tsx";
import { CHANNELS, DICTIONARY_KINDS } from "../../dlp/types.ts";
import { actionLabel, actionTone, channelLabel } from "./connector_dlp_page.tsx";
import { type DictJson, type RuleJson, SubNav } from "./edge_dlp_pages.tsx";

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
