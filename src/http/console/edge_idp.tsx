// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * The edge console's "Identity providers" page: the OIDC and SAML providers
 * users sign in through, the email domains each one serves, which one is the
 * default, the claim or attribute their groups come from and how IdP groups
 * map to Portcullis groups; adding and deleting providers. Like every edge
 * page it calls the REST API in-process as the admin's session, so
 * validation and audit are the API's, and the client secret is only ever
 * typed, never shown.
 */
import type { Context, Hono } from "hono";
import type { Translate } from "../../../web/i18n/mod.ts";
import { ActionButton, Card, CsrfField, Flash, Pill, Table } from "../../../web/components.tsx";
import { MAX_METADATA_BYTES } from "../../identity/saml_metadata.ts";
import { readForm } from "./common.ts";
import type { SaasConsoleHelpers } from "./edge_saas.tsx";

/** A provider as the API returns it. */
interface ProviderJson {
  id: string;
  name: string;
  kind: "oidc" | "saml";
  domains: string[];
  isDefault: boolean;
  groupsClaim: string;
  groupMap: Record<string, string>;
  oidc: { issuer: string; clientId: string } | null;
  saml: { entityId: string; ssoUrl: string; metadataUrl: string | null } | null;
}

/** What the add form keeps when it is shown again after a refusal. */
interface FormValues {
  kind: string;
  name: string;
  domains: string;
  isDefault: boolean;
  groupsClaim: string;
  groupMap: string;
  issuer: string;
  clientId: string;
  metadataUrl: string;
  metadataXml: string;
}

const EMPTY: FormValues = {
  kind: "oidc",
  name: "",
  domains: "",
  isDefault: false,
  groupsClaim: "groups",
  groupMap: "",
  issuer: "",
  clientId: "",
  metadataUrl: "",
  metadataXml: "",
};

/** "a = b" lines into a map; a line without "=" is an error the API will not see. */
export function parseGroupMap(text: string): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (!line) continue;
    const eq = line.lastIndexOf("=");
    if (eq < 1) return `line ${i + 1}`;
    out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}

/** The page: the providers table and the add form. */
export function IdentityProvidersPage(
  props: {
    t: Translate;
    providers: ProviderJson[];
    csrf: string;
    values: FormValues;
    flash?: string;
    error?: string;
  },
) {
  const { t, values: v } = props;
  return (
    <>
      {props.flash ? <Flash tone="ok">{props.flash}</Flash> : null}
      {props.error ? <Flash tone="bad">{props.error}</Flash> : null}
      <p class="muted">{t("idp.intro")}</p>
      <div class="grid">
        <Card title={t("idp.list")} wide>
          <Table
            id="idp-table"
            caption={t("idp.list")}
            head={[
              t("idp.col.name"),
              t("idp.col.kind"),
              t("idp.col.domains"),
              t("idp.col.groups"),
              t("idp.col.endpoint"),
              "",
            ]}
            empty={t("idp.empty")}
            rowIds={props.providers.map((p) => `idp-${p.id}`)}
            rows={props.providers.map((p) => [
              <span>
                <strong>{p.name}</strong>{" "}
                {p.isDefault ? <Pill tone="info">{t("idp.default")}</Pill> : null}
              </span>,
              p.kind === "oidc" ? "OIDC" : "SAML 2.0",
              p.domains.length ? p.domains.join(", ") : <span class="muted">—</span>,
              <span>
                <code>{p.groupsClaim}</code>
                {Object.entries(p.groupMap).map(([from, to]) => (
                  <div class="muted">
                    {from} → {to}
                  </div>
                ))}
              </span>,
              p.oidc ? <code>{p.oidc.issuer}</code> : <code>{p.saml?.entityId ?? ""}</code>,
              <ActionButton
                action={`/idps/${encodeURIComponent(p.id)}/delete`}
                label={t("idp.delete")}
                csrf={props.csrf}
                variant="danger"
              />,
            ])}
          />
        </Card>
        <Card title={t("idp.add")}>
          <form method="post" action="/idps" class="form" id="idp-form">
            <CsrfField token={props.csrf} />
            <div class="form-row">
              <label for="idp-kind">{t("idp.col.kind")}</label>
              <select id="idp-kind" name="kind">
                <option value="oidc" selected={v.kind === "oidc"}>OIDC</option>
                <option value="saml" selected={v.kind === "saml"}>SAML 2.0</option>
              </select>
            </div>
            <div class="form-row">
              <label for="idp-name">{t("idp.col.name")}</label>
              <input type="text" id="idp-name" name="name" required maxlength={64} value={v.name} />
            </div>
            <div class="form-row">
              <label for="idp-domains">{t("idp.col.domains")}</label>
              <input
                type="text"
                id="idp-domains"
                name="domains"
                value={v.domains}
                aria-describedby="idp-domains-hint"
              />
              <p class="hint" id="idp-domains-hint">{t("idp.domains_hint")}</p>
            </div>
            <div class="form-row">
              <label>
                <input type="checkbox" name="isDefault" id="idp-default" checked={v.isDefault} />
                {" "}
                {t("idp.make_default")}
              </label>
            </div>
            <div class="form-row">
              <label for="idp-claim">{t("idp.groups_claim")}</label>
              <input
                type="text"
                id="idp-claim"
                name="groupsClaim"
                maxlength={256}
                value={v.groupsClaim}
              />
            </div>
            <div class="form-row">
              <label for="idp-map">{t("idp.group_map")}</label>
              <textarea id="idp-map" name="groupMap" rows={3} aria-describedby="idp-map-hint">
                {v.groupMap}
              </textarea>
              <p class="hint" id="idp-map-hint">{t("idp.group_map_hint")}</p>
            </div>
            <fieldset>
              <legend>OIDC</legend>
              <div class="form-row">
                <label for="idp-issuer">{t("idp.issuer")}</label>
                <input
                  type="text"
                  inputmode="url"
                  id="idp-issuer"
                  name="issuer"
                  maxlength={500}
                  value={v.issuer}
                />
              </div>
              <div class="form-row">
                <label for="idp-client-id">{t("idp.client_id")}</label>
                <input
                  type="text"
                  id="idp-client-id"
                  name="clientId"
                  maxlength={256}
                  value={v.clientId}
                />
              </div>
              <div class="form-row">
                <label for="idp-secret">{t("idp.client_secret")}</label>
                <input
                  type="password"
                  id="idp-secret"
                  name="clientSecret"
                  maxlength={1024}
                  autocomplete="off"
                />
              </div>
            </fieldset>
            <fieldset>
              <legend>SAML 2.0</legend>
              <div class="form-row">
                <label for="idp-md-url">{t("idp.metadata_url")}</label>
                <input
                  type="text"
                  inputmode="url"
                  id="idp-md-url"
                  name="metadataUrl"
                  maxlength={500}
                  value={v.metadataUrl}
                />
              </div>
              <div class="form-row">
                <label for="idp-md-xml">{t("idp.metadata_xml")}</label>
                <textarea id="idp-md-xml" name="metadataXml" rows={4}>{v.metadataXml}</textarea>
              </div>
            </fieldset>
            <div>
              <button type="submit" class="btn btn-primary" id="idp-submit">
                {t("idp.add_button")}
              </button>
            </div>
          </form>
        </Card>
      </div>
    </>
  );
}

/** Installs the /idps pages on the edge console (after its session middleware). */
export function installIdpConsole(app: Hono<any>, h: SaasConsoleHelpers): void {
  const show = async (
    c: Context,
    o: { values?: FormValues; error?: string; status?: number } = {},
  ) => {
    const t = c.get("t") as Translate;
    const r = await h.callApi(c, "GET", "/admin/identity-providers");
    const msg = c.req.query("msg");
    const flash = msg === "added"
      ? t("idp.flash.added")
      : msg === "deleted"
      ? t("idp.flash.deleted")
      : undefined;
    return h.frame(
      c,
      "idps",
      t("idp.title"),
      <IdentityProvidersPage
        t={t}
        providers={r.data?.providers ?? []}
        csrf={h.csrf(c)}
        values={o.values ?? EMPTY}
        flash={flash}
        error={o.error}
      />,
      o.status,
    );
  };

  app.get("/idps", (c) => show(c));
  app.post("/idps", async (c) => {
    const t = c.get("t") as Translate;
    const f = await readForm(c, MAX_METADATA_BYTES * 2);
    const values: FormValues = {
      kind: f.kind === "saml" ? "saml" : "oidc",
      name: (f.name ?? "").trim(),
      domains: f.domains ?? "",
      isDefault: f.isDefault === "on",
      groupsClaim: (f.groupsClaim ?? "").trim() || "groups",
      groupMap: f.groupMap ?? "",
      issuer: (f.issuer ?? "").trim(),
      clientId: (f.clientId ?? "").trim(),
      metadataUrl: (f.metadataUrl ?? "").trim(),
      metadataXml: f.metadataXml ?? "",
    };
    const groupMap = parseGroupMap(values.groupMap);
    if (typeof groupMap === "string") {
      return show(c, { values, error: t("idp.error.group_map", { line: groupMap }), status: 400 });
    }
    const body: Record<string, unknown> = {
      name: values.name,
      kind: values.kind,
      domains: values.domains.split(/[\s,]+/).filter(Boolean),
      isDefault: values.isDefault,
      groupsClaim: values.groupsClaim,
      groupMap,
    };
    if (values.kind === "oidc") {
      body.oidc = {
        issuer: values.issuer,
        clientId: values.clientId,
        ...(f.clientSecret ? { clientSecret: f.clientSecret } : {}),
      };
    } else {
      body.saml = values.metadataUrl
        ? { metadataUrl: values.metadataUrl }
        : { metadataXml: values.metadataXml };
    }
    const r = await h.callApi(c, "POST", "/admin/identity-providers", {
      csrf: f._csrf ?? "",
      json: body,
    });
    if (!r.ok) return show(c, { values, error: h.apiError(t, r), status: r.status });
    return c.redirect("/idps?msg=added", 303);
  });
  app.post("/idps/:id/delete", async (c) => {
    const f = await readForm(c);
    const r = await h.callApi(
      c,
      "DELETE",
      `/admin/identity-providers/${encodeURIComponent(c.req.param("id"))}`,
      { csrf: f._csrf ?? "" },
    );
    if (!r.ok) return show(c, { error: h.apiError(c.get("t"), r), status: r.status });
    return c.redirect("/idps?msg=deleted", 303);
  });
}
