// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * Page bodies of the "SaaS application tenants" section: the tenant list,
 * the add form (admin consent, then Authorize) and the consent redirect's
 * answer, with the pieces a tenant's page (edge_saas_tenant_page.tsx)
 * shares. Pure functions of the API's JSON and a
 * translator; edge_saas.tsx fetches and frames them.
 */
import type { Lang, Translate } from "../../../web/i18n/mod.ts";
import { hasMessage } from "../../../web/i18n/mod.ts";
import { Card, CsrfField, Flash, Pill, Table, type Tone } from "../../../web/components.tsx";
import { formatDate, formatShortTime } from "../../../web/format.ts";
import { SAAS_APPS } from "../../saas/apps.ts";

/** A tenant as the API returns it (the fields the pages read). */
export interface TenantJson {
  id: string;
  name: string;
  app: string;
  tenantId: string;
  clientId: string;
  status: "successful" | "failed";
  validatedAt: string;
  secretExpiry: { at: string | null; state: string };
  certificate: {
    subject: string;
    thumbprintSha256: string;
    expiry: { at: string | null; state: string };
  } | null;
  consent: { status: string; at: string | null; error: string | null };
  remediation: { quarantine: boolean; removeSharingLinks: boolean; quarantineFolder: string };
  scanIntervalMinutes: number;
  scannable: boolean;
  enabledActions: string[];
  validation: {
    source: string;
    grants: { api: string; issued: boolean; roles: string[]; error?: { message: string } }[];
    evaluation: {
      status: string;
      missing: { api: string; permission: string; label: string; actions: string[] }[];
      disabledActions: string[];
      enabledActions: string[];
    };
  };
}

/** One application's permission table from GET /admin/saas/apps. */
export interface AppTableJson {
  app: string;
  source: string;
  listedInReference: boolean;
  rows: { api: string; apiName: string; permission: string; type: string; actions: string[] }[];
}

/** A scan from the API. */
export interface ScanJson {
  id: string;
  state: string;
  startedBy: string;
  startedAt: string;
  finishedAt: string | null;
  pages: number;
  filesSeen: number;
  filesScanned: number;
  findings: number;
  remediations: number;
  throttled: number;
  error: string | null;
}

/** An incident from the API (the fields the findings table shows). */
export interface FindingJson {
  id: string;
  fileName: string;
  user: string | null;
  rule: string | null;
  action: string;
  outcome: string;
  receivedAt: string;
}

/** The add form's values when it is shown again (never the secret). */
export interface NewTenantValues {
  app: string;
  name: string;
  tenantId: string;
  clientId: string;
  consentId: string;
  secretExpiresAt: string;
  quarantine: boolean;
  removeSharingLinks: boolean;
  quarantineFolder: string;
}

/** A message when the catalogue has `key`, else `fallback`. */
export const label = (t: Translate, key: string, fallback: string) =>
  hasMessage(key) ? t(key) : fallback;

/** An application's name in the page's language. */
export function appLabel(t: Translate, app: string): string {
  return label(t, `saas.app.${app}`, app);
}

/** An action's name in the page's language. */
export function actionName(t: Translate, action: string): string {
  return label(t, `saas.action.${action}`, action.replace(/_/g, " "));
}

/** The Validation Successful / Failed pill. */
export function StatusPill(props: { t: Translate; status: string; id?: string }) {
  const ok = props.status === "successful";
  return (
    <Pill tone={ok ? "ok" : "bad"} id={props.id}>
      {props.t(ok ? "saas.status.successful" : "saas.status.failed")}
    </Pill>
  );
}

const expiryTone = (s: string): Tone =>
  s === "expired" ? "bad" : s === "expiring" ? "warn" : s === "ok" ? "ok" : "idle";

/** A secret's or certificate's expiry flag. */
export function ExpiryPill(
  props: { t: Translate; lang: Lang; expiry: { at: string | null; state: string }; id?: string },
) {
  const { t, expiry } = props;
  const date = expiry.at ? formatDate(expiry.at, props.lang) : "";
  return (
    <Pill tone={expiryTone(expiry.state)} id={props.id}>
      {t(`saas.expiry.${expiry.state}` as never, { date })}
    </Pill>
  );
}

/** The tenant list. */
export function TenantsPage(
  props: { t: Translate; lang: Lang; tenants: TenantJson[]; flash?: string },
) {
  const { t, lang } = props;
  return (
    <>
      {props.flash ? <Flash tone="ok">{props.flash}</Flash> : null}
      <Card
        wide
        title={t("saas.title")}
        actions={
          // A real navigation: the add page's own CSP lets its consent form lead to Microsoft.


            <a href="/saas/new" class="btn btn-primary btn-small" id="saas-add" hx-boost="false">
              {t("saas.add")}
            </a>

        }
      >
        <p class="hint">{t("saas.intro")}</p>
        <Table
          id="saas-tenants"
          caption={t("saas.title")}
          head={[
            t("saas.col.name"),
            t("saas.col.app"),
            t("saas.col.status"),
            t("saas.col.secret"),
            t("saas.col.consent"),
            t("saas.col.validated"),
          ]}
          empty={t("saas.empty")}
          rowIds={props.tenants.map((x) => `tenant-${x.id}`)}
          rows={props.tenants.map((x) => [
            <a href={`/saas/${encodeURIComponent(x.id)}`} class="tenant-link">{x.name}</a>,
            appLabel(t, x.app),
            <StatusPill t={t} status={x.status} />,
            <ExpiryPill t={t} lang={lang} expiry={x.certificate?.expiry ?? x.secretExpiry} />,
            t(`saas.consent.${x.consent.status}` as never),
            formatShortTime(x.validatedAt, lang),
          ])}
        />
      </Card>
    </>
  );
}

/** The remediation checkboxes and folder (add form and settings). */
export function RemediationFields(
  props: {
    t: Translate;
    v: { quarantine: boolean; removeSharingLinks: boolean; quarantineFolder: string };
  },
) {
  const { t, v } = props;
  return (
    <fieldset class="form-row" id="remediation">
      <legend>{t("saas.field.remediation")}</legend>
      <label class="check">
        <input type="checkbox" name="quarantine" id="f-quarantine" checked={v.quarantine} />
        {t("saas.field.quarantine")}
      </label>
      <label class="check">
        <input
          type="checkbox"
          name="removeSharingLinks"
          id="f-unshare"
          checked={v.removeSharingLinks}
        />
        {t("saas.field.unshare")}
      </label>
      <label for="f-folder">{t("saas.field.folder")}</label>
      <input
        type="text"
        id="f-folder"
        name="quarantineFolder"
        value={v.quarantineFolder}
        maxlength={128}
      />
    </fieldset>
  );
}

/** The add form: application, names and IDs; admin consent; secret, key file; Authorize. */
export function NewTenantPage(
  props: {
    t: Translate;
    csrf: string;
    values: NewTenantValues;
    redirectUri: string;
    consent?: { result: string | null; error: string | null; name: string } | null;
    error?: string;
  },
) {
  const { t, values: v } = props;
  return (
    <>
      {props.error ? <Flash tone="bad">{props.error}</Flash> : null}
      {props.consent?.result === "granted"
        ? <Flash tone="ok">{t("saas.consent.done", { name: props.consent.name })}</Flash>
        : null}
      {props.consent?.result === "denied"
        ? (
          <Flash tone="bad">
            {t("saas.consent.declined", { error: props.consent.error ?? "" })}
          </Flash>
        )
        : null}
      <Card wide title={t("saas.new.title")}>
        <form
          method="post"
          action="/saas"
          enctype="multipart/form-data"
          class="form"
          id="saas-new-form"
          hx-boost="false"
        >
          <CsrfField token={props.csrf} />
          <input type="hidden" name="consentId" value={v.consentId} />
          <h3>{t("saas.step.app")}</h3>
          <div class="form-row">
            <label for="f-app">{t("saas.field.app")}</label>
            <select id="f-app" name="app">
              {SAAS_APPS.map((a) => (
                <option value={a} selected={a === v.app}>{appLabel(t, a)}</option>
              ))}
            </select>
          </div>
          <div class="form-row">
            <label for="f-name">{t("saas.field.name")}</label>
            <input
              type="text"
              id="f-name"
              name="name"
              value={v.name}
              required
              maxlength={64}
              aria-describedby="f-name-hint"
            />
            <p class="hint" id="f-name-hint">{t("saas.field.name_hint")}</p>
          </div>
          <div class="form-row">
            <label for="f-tenant">{t("saas.field.tenant_id")}</label>
            <input
              type="text"
              id="f-tenant"
              name="tenantId"
              value={v.tenantId}
              required
              maxlength={36}
              placeholder="00000000-0000-0000-0000-000000000000"
            />
          </div>
          <div class="form-row">
            <label for="f-client">{t("saas.field.client_id")}</label>
            <input
              type="text"
              id="f-client"
              name="clientId"
              value={v.clientId}
              required
              maxlength={36}
              placeholder="00000000-0000-0000-0000-000000000000"
            />
          </div>
          <h3>{t("saas.step.consent")}</h3>
          <p class="hint" id="consent-hint">{t("saas.consent.hint")}</p>
          <code class="secret" id="redirect-uri">{props.redirectUri}</code>
          <div>
            <button
              type="submit"
              class="btn btn-secondary"
              id="saas-consent"
              formaction="/saas/consent-start"
              formnovalidate
            >
              {t("saas.consent.button")}
            </button>
          </div>
          <h3>{t("saas.step.credentials")}</h3>
          <div class="form-row">
            <label for="f-secret">{t("saas.field.secret")}</label>
            <input
              type="password"
              id="f-secret"
              name="clientSecret"
              autocomplete="new-password"
              maxlength={1024}
              aria-describedby="f-secret-hint"
            />
            <p class="hint" id="f-secret-hint">{t("saas.field.secret_hint")}</p>
          </div>
          <div class="form-row">
            <label for="f-expires">{t("saas.field.secret_expires")}</label>
            <input
              type="date"
              id="f-expires"
              name="secretExpiresAt"
              value={v.secretExpiresAt}
              aria-describedby="f-expires-hint"
            />
            <p class="hint" id="f-expires-hint">{t("saas.field.secret_expires_hint")}</p>
          </div>
          <div class="form-row">
            <label for="f-key">{t("saas.field.key")}</label>
            <input
              type="file"
              id="f-key"
              name="privateKeyFile"
              accept=".json,application/json"
              aria-describedby="f-key-hint"
            />
            <p class="hint" id="f-key-hint">{t("saas.field.key_hint")}</p>
          </div>
          <RemediationFields t={t} v={v} />
          <div>
            <button type="submit" class="btn btn-primary" id="saas-authorize">
              {t("saas.authorize")}
            </button>
          </div>
        </form>
      </Card>
    </>
  );
}

/** The answer to a refused consent redirect. */
export function ConsentRefusedPage(props: { t: Translate; message: string }) {
  const { t } = props;
  return (
    <Card title={t("saas.consent.title")}>
      <Flash tone="bad">{t("saas.consent.refused", { message: props.message })}</Flash>
      <p>
        <a href="/saas" id="consent-back">{t("saas.consent.back")}</a>
      </p>
    </Card>
  );
}
