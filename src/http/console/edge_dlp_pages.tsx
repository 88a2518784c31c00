// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * The page bodies of the edge console's Data protection section (routes in
 * edge_dlp.tsx): pure functions of the API's JSON and a translator.
 */
import type { Child } from "hono/jsx";
import type { Lang, Translate } from "../../../web/i18n/mod.ts";
import { Card, CsrfField, Flash, KeyValue, Pill, Table } from "../../../web/components.tsx";
import { formatBytes, formatTime } from "../../../web/format.ts";
import { CHANNELS } from "../../dlp/types.ts";
import { actionLabel, actionTone, channelLabel } from "./connector_dlp_page.tsx";

/** A match as the API returns it. */
export interface MatchJson {
  dictionary: string;
  kind: string;
  count: number;
  samples: string[];
}
/** An incident as the API returns it. */
export interface IncidentJson {
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
/** A dictionary as the API returns it. */
export interface DictJson {
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
/** A rule as the API returns it. */
export interface RuleJson {
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

/** The section's own navigation. */
export function SubNav(props: { t: Translate; active: string }) {
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

/** Matches with their redacted samples. */
export function MatchList(props: { t: Translate; matches: MatchJson[] }) {
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
                  [
                    t("dlp.reason"),
                    r.rule
                      ? t("dlp.test_reason_rule", { rule: r.rule })
                      : t("dlp.test_reason_none"),
                  ],
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
