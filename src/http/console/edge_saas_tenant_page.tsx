// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * A SaaS tenant's console page: validation with the missing permissions
 * and the actions they disable, Reauthorize, scans (refreshed while one
 * runs), findings, the application's permission table, settings. Pure
 * functions of the API's JSON and a translator.
 */
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
  type Tone,
} from "../../../web/components.tsx";
import { formatNumber, formatTime } from "../../../web/format.ts";
import { type ApiKey, APIS } from "../../saas/apps.ts";
import {
  actionName,
  appLabel,
  type AppTableJson,
  ExpiryPill,
  type FindingJson,
  label,
  RemediationFields,
  type ScanJson,
  StatusPill,
  type TenantJson,
} from "./edge_saas_pages.tsx";

/** The scans card (also served alone to refresh while a scan runs). */
export function ScansCard(
  props: {
    t: Translate;
    lang: Lang;
    tenant: TenantJson;
    scans: ScanJson[];
    running: boolean;
    csrf: string;
  },
) {
  const { t, lang, tenant } = props;
  const id = encodeURIComponent(tenant.id);
  return (
    <div
      id="saas-scans"
      hx-get={`/saas/${id}/scans`}
      hx-trigger={props.running
        ? "every 2s, pc:saas_scan_finished from:body"
        : "pc:saas_scan_finished from:body"}
      hx-swap="outerHTML"
    >
      <Card
        wide
        title={t("saas.scans")}
        actions={tenant.scannable
          ? (
            <div class="actions">
              <ActionButton
                action={`/saas/${id}/scan`}
                label={t("saas.scan_now")}
                csrf={props.csrf}
                variant="primary"
                id="saas-scan"
                disabled={props.running || !tenant.enabledActions.includes("scanning")}
              />
              <ActionButton
                action={`/saas/${id}/scan`}
                label={t("saas.scan_full")}
                csrf={props.csrf}
                fields={{ full: "on" }}
                id="saas-scan-full"
                disabled={props.running || !tenant.enabledActions.includes("scanning")}
              />
            </div>
          )
          : undefined}
      >
        {!tenant.scannable ? <p class="muted">{t("saas.not_scannable")}</p> : (
          <>
            {props.running
              ? (
                <p id="scan-running">
                  <Pill tone="info">{t("saas.scan_running")}</Pill>
                </p>
              )
              : null}
            {!tenant.enabledActions.includes("scanning")
              ? <p class="hint" id="scan-disabled">{t("saas.scan_disabled")}</p>
              : null}
            <Table
              id="scans-table"
              caption={t("saas.scans")}
              head={[
                t("saas.col.started"),
                t("saas.col.state"),
                t("saas.col.pages"),
                t("saas.col.files"),
                t("saas.col.findings"),
                t("saas.col.remediations"),
                t("saas.col.throttled"),
              ]}
              empty={t("saas.scans_empty")}
              rowIds={props.scans.map((s) => `scan-${s.id}`)}
              rows={props.scans.map((s) => [
                formatTime(s.startedAt, lang),
                s.error
                  ? (
                    <span title={s.error}>
                      <Pill tone="bad">{t(`saas.scan.state.${s.state}` as never)}</Pill>
                    </span>
                  )
                  : (
                    <Pill tone={s.state === "completed" ? "ok" : "info"}>
                      {t(`saas.scan.state.${s.state}` as never)}
                    </Pill>
                  ),
                formatNumber(s.pages, lang),
                formatNumber(s.filesScanned, lang),
                formatNumber(s.findings, lang),
                formatNumber(s.remediations, lang),
                formatNumber(s.throttled, lang),
              ])}
            />
            {props.scans[0]?.error
              ? <p class="hint" id="scan-error">{props.scans[0].error}</p>
              : null}
          </>
        )}
      </Card>
    </div>
  );
}

/** A tenant's page. */
export function TenantPage(
  props: {
    t: Translate;
    lang: Lang;
    tenant: TenantJson;
    table: AppTableJson | undefined;
    scans: ScanJson[];
    running: boolean;
    findings: FindingJson[];
    csrf: string;
    flash?: { tone: Tone; text: string };
    error?: string;
  },
) {
  const { t, lang, tenant: x } = props;
  const id = encodeURIComponent(x.id);
  const ev = x.validation.evaluation;
  const missing = new Set(ev.missing.map((m) => `${m.api}:${m.permission}`));
  const detailRows: [Child, Child][] = [
    [t("saas.col.status"), <StatusPill t={t} status={x.status} id="saas-status" />],
    [t("saas.col.app"), appLabel(t, x.app)],
    [t("saas.field.tenant_id"), <code>{x.tenantId}</code>],
    [t("saas.field.client_id"), <code>{x.clientId}</code>],
    [
      t("saas.field.secret"),
      <ExpiryPill t={t} lang={lang} expiry={x.secretExpiry} id="secret-expiry" />,
    ],
  ];
  if (x.certificate) {
    detailRows.push(
      [
        t("saas.certificate"),
        <span>
          {x.certificate.subject}{" "}
          <ExpiryPill t={t} lang={lang} expiry={x.certificate.expiry} id="cert-expiry" />
        </span>,
      ],
      [t("saas.cert_thumbprint"), <code>{x.certificate.thumbprintSha256}</code>],
    );
  }
  detailRows.push(
    [t("saas.col.consent"), t(`saas.consent.${x.consent.status}` as never)],
    [t("saas.col.validated"), formatTime(x.validatedAt, lang)],
    [
      t("saas.enabled_actions"),
      <span id="enabled-actions">
        {ev.enabledActions.length ? ev.enabledActions.map((a) => actionName(t, a)).join(", ") : "—"}
      </span>,
    ],
  );
  return (
    <>
      {props.error ? <Flash tone="bad">{props.error}</Flash> : null}
      {props.flash ? <Flash tone={props.flash.tone}>{props.flash.text}</Flash> : null}
      <div class="grid">
        <Card title={t("saas.validation")} id="saas-validation">
          <KeyValue id="tenant-detail" rows={detailRows} />
        </Card>
        <Card title={t("saas.missing")} id="saas-missing">
          {ev.missing.length === 0
            ? <p class="muted" id="missing-none">{t("saas.missing_none")}</p>
            : (
              <Table
                id="missing-table"
                caption={t("saas.missing")}
                head={[t("saas.col.permission"), t("saas.col.api"), t("saas.col.disables")]}
                empty="—"
                rows={ev.missing.map((m) => [
                  <code>{m.permission}</code>,
                  APIS[m.api as ApiKey]?.name ?? m.api,
                  m.actions.map((a) => actionName(t, a)).join(", "),
                ])}
              />
            )}
          {ev.disabledActions.length
            ? (
              <p class="hint" id="disabled-actions">
                {t("saas.disabled_actions")}:{" "}
                {ev.disabledActions.map((a) => actionName(t, a)).join(", ")}
              </p>
            )
            : null}
        </Card>
      </div>
      <Card wide title={t("saas.reauthorize")} id="saas-reauthorize">
        <p class="hint">{t("saas.reauthorize_hint")}</p>
        <form
          method="post"
          action={`/saas/${id}/reauthorize`}
          enctype="multipart/form-data"
          class="form-inline"
          hx-boost="false"
        >
          <CsrfField token={props.csrf} />
          <div class="form-row">
            <label for="r-secret">{t("saas.new_secret")}</label>
            <input
              type="password"
              id="r-secret"
              name="clientSecret"
              autocomplete="new-password"
              maxlength={1024}
            />
          </div>
          {x.app === "sharepoint"
            ? (
              <div class="form-row">
                <label for="r-key">{t("saas.new_key")}</label>
                <input
                  type="file"
                  id="r-key"
                  name="privateKeyFile"
                  accept=".json,application/json"
                />
              </div>
            )
            : null}
          <button type="submit" class="btn btn-primary" id="saas-reauthorize-btn">
            {t("saas.reauthorize")}
          </button>
        </form>
      </Card>
      <ScansCard
        t={t}
        lang={lang}
        tenant={x}
        scans={props.scans}
        running={props.running}
        csrf={props.csrf}
      />
      {x.scannable
        ? (
          <Card wide title={t("saas.findings")} id="saas-findings">
            <Table
              id="findings-table"
              caption={t("saas.findings")}
              head={[
                t("saas.col.file"),
                t("saas.col.owner"),
                t("saas.col.rule"),
                t("saas.col.outcome"),
                t("saas.col.time"),
                "",
              ]}
              empty={t("saas.findings_empty")}
              rowIds={props.findings.map((f) => `finding-${f.id}`)}
              rows={props.findings.map((f) => [
                <code>{f.fileName}</code>,
                f.user ?? "—",
                f.rule ?? "—",
                <Pill tone={f.action === "block" ? "bad" : "warn"}>
                  {label(t, `dlp.outcome.${f.outcome}`, f.outcome)}
                </Pill>,
                formatTime(f.receivedAt, lang),
                <a href={`/dlp/incidents/${encodeURIComponent(f.id)}`}>{t("saas.details")}</a>,
              ])}
            />
          </Card>
        )
        : null}
      <Card wide title={t("saas.permissions")} id="saas-permissions">
        {props.table && props.table.source !== x.app
          ? <p class="hint" id="permissions-source">{t("saas.permissions_source")}</p>
          : null}
        <Table
          id="permissions-table"
          caption={t("saas.permissions")}
          head={[
            t("saas.col.api"),
            t("saas.col.permission"),
            t("saas.col.type"),
            t("saas.col.actions"),
            t("saas.col.granted"),
          ]}
          empty="—"
          rows={(props.table?.rows ?? []).map((r) => [
            r.apiName,
            <code>{r.permission}</code>,
            t(`saas.type.${r.type}` as never),
            r.actions.map((a) => actionName(t, a)).join(", "),
            missing.has(`${r.api}:${r.permission}`)
              ? <Pill tone="bad">{t("saas.granted_no")}</Pill>
              : <Pill tone="ok">{t("saas.granted_yes")}</Pill>,
          ])}
        />
      </Card>
      <Card wide title={t("saas.settings")} id="saas-settings">
        <form method="post" action={`/saas/${id}/settings`} class="form">
          <CsrfField token={props.csrf} />
          <div class="form-row">
            <label for="s-expires">{t("saas.field.secret_expires")}</label>
            <input
              type="date"
              id="s-expires"
              name="secretExpiresAt"
              value={x.secretExpiry.at?.slice(0, 10) ?? ""}
            />
          </div>
          {x.scannable
            ? (
              <div class="form-row">
                <label for="s-interval">{t("saas.field.interval")}</label>
                <input
                  type="number"
                  id="s-interval"
                  name="scanIntervalMinutes"
                  min={0}
                  max={10080}
                  step={1}
                  value={String(x.scanIntervalMinutes)}
                  aria-describedby="s-interval-hint"
                />
                <p class="hint" id="s-interval-hint">{t("saas.field.interval_hint")}</p>
              </div>
            )
            : null}
          {x.scannable ? <RemediationFields t={t} v={x.remediation} /> : null}
          <div>
            <button type="submit" class="btn btn-primary" id="saas-save">{t("saas.save")}</button>
          </div>
        </form>
        <hr />
        <p class="hint">{t("saas.delete_hint")}</p>
        <ActionButton
          action={`/saas/${id}/delete`}
          label={t("saas.delete")}
          csrf={props.csrf}
          variant="danger"
          id="saas-delete"
        />
      </Card>
    </>
  );
}
