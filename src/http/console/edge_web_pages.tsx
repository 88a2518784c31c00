// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * The pages of the edge console's Internet security section: the web log
 * (searchable), URL rules, SSL inspection with its Do-Not-Inspect list, and
 * forwarding profiles (trusted-network criteria and the action per network
 * type). Pure functions of the API's JSON and a translator; routes in
 * edge_web.tsx.
 */
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
import { formatBytes, formatTime } from "../../../web/format.ts";

/** A URL rule as the API returns it. */
export interface UrlRuleJson {
  name: string;
  enabled: boolean;
  hosts: string[];
  categories: string[];
  paths: string[];
  methods: string[];
  users: string[];
  groups: string[];
  action: "allow" | "block" | "caution" | "allow_log";
}

/** A web log entry as the API returns it. */
export interface WebLogJson {
  id: number;
  at: string;
  deviceName: string | null;
  user: string | null;
  mode: string;
  method: string | null;
  scheme: string;
  host: string;
  port: number;
  path: string | null;
  action: UrlRuleJson["action"];
  rule: string | null;
  reason: string;
  status: number | null;
  bytesUp: number;
  bytesDown: number;
}

/** A forwarding profile as the API returns it. */
export interface ForwardingJson {
  name: string;
  trusted: {
    dnsServers: string[];
    dnsSearchDomains: string[];
    hostnameIps: { hostname: string; ips: string[] }[];
    defaultGateways: string[];
    networkRanges: string[];
    egressIps: string[];
    tlsBeacons: { host: string; port: number; sha256: string }[];
    match: "any" | "all";
  };
  actions: { on_trusted: string; off_trusted: string; vpn_trusted: string };
  udpTimeoutSec: number;
  tlsFallback: boolean;
  mtu: number;
}

/** URL actions in the order the forms offer them. */
export const URL_ACTION_LIST = ["block", "caution", "allow_log", "allow"] as const;
/**
 * Forwarding actions the form offers ("tunnel with local proxy" and "enforce
 * PAC" need the edge's web proxy, which the API says when it is off).
 */
export const FORWARDING_ACTIONS = ["tunnel", "tunnel_local_proxy", "enforce_pac", "none"] as const;
/** Network types. */
export const NETWORK_TYPES = ["on_trusted", "off_trusted", "vpn_trusted"] as const;

const tone = (a: string): Tone =>
  a === "block" ? "bad" : a === "caution" ? "warn" : a === "allow_log" ? "info" : "ok";

/** The label of a URL action. */
export const urlActionLabel = (t: Translate, a: string) => t(`web.action.${a}` as never);

/** The section's sub-navigation. */
export function WebNav(props: { t: Translate; active: string }) {
  const { t } = props;
  const items = [
    ["/web", "log", t("web.nav.log")],
    ["/web/rules", "rules", t("web.nav.rules")],
    ["/web/inspection", "inspection", t("web.nav.inspection")],
    ["/web/forwarding", "forwarding", t("web.nav.forwarding")],
    ["/web/pac-files", "pac_files", t("web.nav.pac_files")],
    ["/web/pac", "pac", t("web.nav.pac")],
  ];
  return (
    <nav class="actions" aria-label={t("web.nav.label")} style="margin-bottom:18px" id="web-nav">
      {items.map(([href, id, label]) => (
        <a
          href={href}
          class={id === props.active ? "btn btn-primary btn-small" : "btn btn-secondary btn-small"}
          aria-current={id === props.active ? "page" : undefined}
          id={`web-nav-${id}`}
        >
          {label}
        </a>
      ))}
    </nav>
  );
}

/** The page's flash and error lines. */
export function Messages(props: { flash?: string; error?: string }) {
  return (
    <>
      {props.flash ? <Flash tone="ok">{props.flash}</Flash> : null}
      {props.error ? <Flash tone="bad">{props.error}</Flash> : null}
    </>
  );
}

/** The web log with its search form. */
export function WebLogPage(
  props: {
    t: Translate;
    lang: Lang;
    entries: WebLogJson[];
    q: { host: string; user: string; action: string };
    error?: string;
  },
) {
  const { t } = props;
  return (
    <>
      <WebNav t={t} active="log" />
      <Messages error={props.error} />
      <Card
        wide
        title={t("web.log")}
        actions={
          <form method="get" action="/web" class="form-inline" id="web-log-filter">
            <label for="q-host">{t("web.host")}</label>
            <input type="search" id="q-host" name="host" value={props.q.host} maxlength={253} />
            <label for="q-user">{t("web.user")}</label>
            <input type="search" id="q-user" name="user" value={props.q.user} maxlength={256} />
            <label for="q-action">{t("web.action")}</label>
            <select id="q-action" name="action">
              <option value="">{t("web.all")}</option>
              {URL_ACTION_LIST.map((a) => (
                <option value={a} selected={props.q.action === a}>{urlActionLabel(t, a)}</option>
              ))}
            </select>
            <button type="submit" class="btn btn-secondary btn-small" id="web-log-search">
              {t("web.search")}
            </button>
          </form>
        }
      >
        <Table
          id="web-log-table"
          caption={t("web.log")}
          head={[
            t("web.time"),
            t("web.device"),
            t("web.user"),
            t("web.request"),
            t("web.action"),
            t("web.rule"),
            t("web.status"),
            t("web.bytes"),
          ]}
          empty={t("web.no_entries")}
          rows={props.entries.map((e) => [
            formatTime(e.at, props.lang),
            e.deviceName ?? "—",
            e.user ?? "—",
            <span title={e.reason}>
              <code>{e.method ?? ""}</code> {e.scheme}://{e.host}
              {e.port === (e.scheme === "https" ? 443 : 80) ? "" : `:${e.port}`}
              {e.path ?? ""} <span class="badge">{t(`web.mode.${e.mode}` as never)}</span>
            </span>,
            <Pill tone={tone(e.action)}>{urlActionLabel(t, e.action)}</Pill>,
            e.rule ?? "—",
            e.status === null ? "—" : String(e.status),
            `↑ ${formatBytes(e.bytesUp, props.lang)} ↓ ${formatBytes(e.bytesDown, props.lang)}`,
          ])}
        />
      </Card>
    </>
  );
}

/** URL rules: ordered list with enable/disable, move up, delete; a form to add one. */
export function UrlRulesPage(
  props: {
    t: Translate;
    rules: UrlRuleJson[];
    categories: { name: string; domains: number }[];
    csrf: string;
    flash?: string;
    error?: string;
  },
) {
  const { t } = props;
  const enc = encodeURIComponent;
  const what = (r: UrlRuleJson) =>
    [
      ...r.hosts,
      ...r.categories.map((c) => `[${c}]`),
    ].join(", ") || t("web.any_host");
  return (
    <>
      <WebNav t={t} active="rules" />
      <Messages flash={props.flash} error={props.error} />
      <Card wide title={t("web.rules")}>
        <p class="hint">{t("web.rules_hint")}</p>
        <Table
          id="url-rules-table"
          caption={t("web.rules")}
          head={[
            "#",
            t("web.name"),
            t("web.hosts"),
            t("web.paths_methods"),
            t("web.who"),
            t("web.action"),
            "",
          ]}
          empty={t("web.no_rules")}
          rowIds={props.rules.map((r) => `url-rule-${r.name.replace(/[^A-Za-z0-9_-]/g, "_")}`)}
          rows={props.rules.map((r, i) => [
            String(i + 1),
            <span>
              <strong>{r.name}</strong>
              {r.enabled ? null : <span class="badge">{t("web.disabled")}</span>}
            </span>,
            what(r),
            [...r.paths, ...r.methods].join(", ") || "—",
            [...r.users, ...r.groups.map((g) => `@${g}`)].join(", ") || t("web.everyone"),
            <Pill tone={tone(r.action)}>{urlActionLabel(t, r.action)}</Pill>,
            <div class="actions">
              <ActionButton
                action={`/web/rules/${enc(r.name)}/toggle`}
                label={r.enabled ? t("web.disable") : t("web.enable")}
                csrf={props.csrf}
              />
              {i > 0
                ? (
                  <ActionButton
                    action={`/web/rules/${enc(r.name)}/up`}
                    label={t("web.move_up")}
                    csrf={props.csrf}
                  />
                )
                : null}
              <ActionButton
                action={`/web/rules/${enc(r.name)}/delete`}
                label={t("web.delete")}
                csrf={props.csrf}
                variant="danger"
              />
            </div>,
          ])}
        />
      </Card>
      <Card title={t("web.add_rule")}>
        <form method="post" action="/web/rules" class="form" id="url-rule-form">
          <CsrfField token={props.csrf} />
          <div class="form-inline">
            <div class="form-row">
              <label for="u-name">{t("web.name")}</label>
              <input type="text" id="u-name" name="name" required maxlength={100} />
            </div>
            <div class="form-row">
              <label for="u-action">{t("web.action")}</label>
              <select id="u-action" name="action">
                {URL_ACTION_LIST.map((a) => <option value={a}>{urlActionLabel(t, a)}</option>)}
              </select>
            </div>
          </div>
          <div class="form-row">
            <label for="u-hosts">{t("web.hosts")}</label>
            <input
              type="text"
              id="u-hosts"
              name="hosts"
              maxlength={20000}
              placeholder={t("web.hosts_hint")}
            />
          </div>
          <fieldset class="form-row">
            <legend>{t("web.categories")}</legend>
            {props.categories.map((c) => (
              <label class="check">
                <input type="checkbox" name={`cat.${c.name}`} id={`u-cat-${c.name}`} />
                {c.name} <span class="muted">({t("web.domains_n", { n: c.domains })})</span>
              </label>
            ))}
          </fieldset>
          <div class="form-inline">
            <div class="form-row">
              <label for="u-paths">{t("web.paths")}</label>
              <input
                type="text"
                id="u-paths"
                name="paths"
                maxlength={4000}
                placeholder="/admin, /upload"
              />
            </div>
            <div class="form-row">
              <label for="u-methods">{t("web.methods")}</label>
              <input
                type="text"
                id="u-methods"
                name="methods"
                maxlength={200}
                placeholder="POST, PUT"
              />
            </div>
          </div>
          <div class="form-inline">
            <div class="form-row">
              <label for="u-users">{t("web.users")}</label>
              <input
                type="text"
                id="u-users"
                name="users"
                maxlength={2000}
                placeholder={t("web.comma_hint")}
              />
            </div>
            <div class="form-row">
              <label for="u-groups">{t("web.groups")}</label>
              <input
                type="text"
                id="u-groups"
                name="groups"
                maxlength={2000}
                placeholder={t("web.comma_hint")}
              />
            </div>
          </div>
          <div>
            <button type="submit" class="btn btn-primary" id="url-rule-add">
              {t("web.add_rule")}
            </button>
          </div>
        </form>
      </Card>
    </>
  );
}

/** SSL inspection: on/off, Do-Not-Inspect names and categories, the CA to install. */
export function InspectionPage(
  props: {
    t: Translate;
    settings: {
      enabled: boolean;
      doNotInspect: string[];
      doNotInspectCategories: string[];
      ca: { sha256: string } | null;
    };
    categories: { name: string; domains: number }[];
    csrf: string;
    flash?: string;
    error?: string;
  },
) {
  const { t, settings: s } = props;
  return (
    <>
      <WebNav t={t} active="inspection" />
      <Messages flash={props.flash} error={props.error} />
      <div class="grid">
        <Card title={t("web.inspection")}>
          <p class="hint">{t("web.inspection_hint")}</p>
          <form method="post" action="/web/inspection" class="form" id="inspection-form">
            <CsrfField token={props.csrf} />
            <label class="check">
              <input type="checkbox" name="enabled" id="i-enabled" checked={s.enabled} />
              {t("web.inspection_on")}
            </label>
            <div class="form-row">
              <label for="i-dni">{t("web.dni_hosts")}</label>
              <textarea id="i-dni" name="doNotInspect" rows={6} maxlength={40000}>
                {s.doNotInspect.join("\n")}
              </textarea>
              <span class="hint">{t("web.dni_hint")}</span>
            </div>
            <fieldset class="form-row">
              <legend>{t("web.dni_categories")}</legend>
              {props.categories.map((c) => (
                <label class="check">
                  <input
                    type="checkbox"
                    name={`cat.${c.name}`}
                    id={`i-cat-${c.name}`}
                    checked={s.doNotInspectCategories.includes(c.name)}
                  />
                  {c.name}
                </label>
              ))}
            </fieldset>
            <div>
              <button type="submit" class="btn btn-primary" id="inspection-save">
                {t("web.save")}
              </button>
            </div>
          </form>
        </Card>
        <Card title={t("web.inspection_ca")}>
          {s.ca
            ? (
              <>
                <KeyValue
                  id="inspection-ca"
                  rows={[[t("web.ca_sha256"), <code>{s.ca.sha256}</code>]]}
                />
                <p class="hint">{t("web.ca_hint")}</p>
                <a
                  class="btn btn-secondary"
                  href="/web/inspection/ca.crt"
                  id="ca-download"
                  hx-boost="false"
                >
                  {t("web.ca_download")}
                </a>
              </>
            )
            : <p class="muted">{t("web.ca_none")}</p>}
        </Card>
      </div>
    </>
  );
}

const listOf = (xs: string[]) => xs.join(", ") || "—";

/** Forwarding profiles: trusted-network criteria and actions; add or replace, delete. */
export function ForwardingPage(
  props: { t: Translate; profiles: ForwardingJson[]; csrf: string; flash?: string; error?: string },
) {
  const { t } = props;
  const enc = encodeURIComponent;
  return (
    <>
      <WebNav t={t} active="forwarding" />
      <Messages flash={props.flash} error={props.error} />
      <Card wide title={t("web.forwarding")}>
        <p class="hint">{t("web.forwarding_hint")}</p>
        <Table
          id="forwarding-table"
          caption={t("web.forwarding")}
          head={[
            t("web.name"),
            t("web.criteria"),
            ...NETWORK_TYPES.map((n) => t(`web.net.${n}` as never)),
            t("web.transport"),
            "",
          ]}
          empty={t("web.no_profiles")}
          rowIds={props.profiles.map((p) => `fp-${p.name.replace(/[^A-Za-z0-9_-]/g, "_")}`)}
          rows={props.profiles.map((p) => [
            <strong>{p.name}</strong>,
            <KeyValue
              rows={[
                [t("web.dns_servers"), listOf(p.trusted.dnsServers)],
                [t("web.search_domains"), listOf(p.trusted.dnsSearchDomains)],
                [
                  t("web.hostname_ips"),
                  listOf(p.trusted.hostnameIps.map((h) => `${h.hostname}=${h.ips.join(" ")}`)),
                ],
                [t("web.gateways"), listOf(p.trusted.defaultGateways)],
                [t("web.ranges"), listOf(p.trusted.networkRanges)],
                [t("web.egress"), listOf(p.trusted.egressIps)],
                [t("web.beacons"), listOf(p.trusted.tlsBeacons.map((b) => `${b.host}:${b.port}`))],
                [t("web.match"), t(`web.match.${p.trusted.match}` as never)],
              ]}
            />,
            ...NETWORK_TYPES.map((n) => t(`web.fwd.${p.actions[n]}` as never)),
            `UDP ${p.udpTimeoutSec} s · TLS ${p.tlsFallback ? "✓" : "✗"} · MTU ${p.mtu}`,
            <ActionButton
              action={`/web/forwarding/${enc(p.name)}/delete`}
              label={t("web.delete")}
              csrf={props.csrf}
              variant="danger"
            />,
          ])}
        />
      </Card>
      <Card title={t("web.add_profile")}>
        <form method="post" action="/web/forwarding" class="form" id="forwarding-form">
          <CsrfField token={props.csrf} />
          <div class="form-inline">
            <div class="form-row">
              <label for="f-name">{t("web.name")}</label>
              <input type="text" id="f-name" name="name" required maxlength={100} />
            </div>
            <div class="form-row">
              <label for="f-match">{t("web.match")}</label>
              <select id="f-match" name="match">
                <option value="any">{t("web.match.any")}</option>
                <option value="all">{t("web.match.all")}</option>
              </select>
            </div>
          </div>
          {(
            [
              ["dnsServers", "f-dns", "web.dns_servers", "10.0.0.53"],
              ["dnsSearchDomains", "f-search", "web.search_domains", "corp.example"],
              ["hostnameIps", "f-hip", "web.hostname_ips", "intranet.corp=10.0.0.5"],
              ["defaultGateways", "f-gw", "web.gateways", "10.0.0.1"],
              ["networkRanges", "f-ranges", "web.ranges", "10.0.0.0/8"],
              ["egressIps", "f-egress", "web.egress", "203.0.113.7"],
              ["tlsBeacons", "f-beacons", "web.beacons", "beacon.corp:443=<sha256>"],
            ] as const
          ).map(([name, id, label, ph]) => (
            <div class="form-row">
              <label for={id}>{t(label)}</label>
              <input type="text" id={id} name={name} maxlength={4000} placeholder={ph} />
            </div>
          ))}
          <div class="form-inline">
            {NETWORK_TYPES.map((n) => (
              <div class="form-row">
                <label for={`f-${n}`}>{t(`web.net.${n}` as never)}</label>
                <select id={`f-${n}`} name={`action.${n}`}>
                  {FORWARDING_ACTIONS.map((a) => (
                    <option value={a} selected={a === (n === "on_trusted" ? "none" : "tunnel")}>
                      {t(`web.fwd.${a}` as never)}
                    </option>
                  ))}
                </select>
              </div>
            ))}
          </div>
          <div class="form-inline">
            <div class="form-row">
              <label for="f-udp">{t("web.udp_timeout")}</label>
              <input type="number" id="f-udp" name="udpTimeoutSec" min={5} max={60} value="5" />
            </div>
            <div class="form-row">
              <label for="f-mtu">MTU</label>
              <input type="number" id="f-mtu" name="mtu" min={576} max={2000} value="1420" />
            </div>
            <label class="check">
              <input type="checkbox" name="tlsFallback" id="f-tls" checked />
              {t("web.tls_fallback")}
            </label>
          </div>
          <div>
            <button type="submit" class="btn btn-primary" id="forwarding-save">
              {t("web.save_profile")}
            </button>
          </div>
        </form>
      </Card>
    </>
  );
}

/** The PAC tester: a PAC file (the default profile's to start with), a URL, the answer. */
export function PacTestPage(
  props: {
    t: Translate;
    pac: string;
    url: string;
    myIp: string;
    csrf: string;
    outcome?: { ok: true; result: string } | { ok: false; error: string; line: number | null };
    error?: string;
  },
) {
  const { t, outcome: o } = props;
  return (
    <>
      <WebNav t={t} active="pac" />
      <Messages error={props.error} />
      <Card wide title={t("web.pac_tester")}>
        <p class="hint">{t("web.pac_hint")}</p>
        <form method="post" action="/web/pac" class="form" id="pac-form">
          <CsrfField token={props.csrf} />
          <div class="form-row">
            <label for="p-pac">{t("web.pac_file")}</label>
            <textarea
              id="p-pac"
              name="pac"
              rows={14}
              maxlength={262144}
              style="font-family:monospace"
            >
              {props.pac}
            </textarea>
          </div>
          <div class="form-inline">
            <div class="form-row">
              <label for="p-url">{t("web.pac_url")}</label>
              <input
                type="text"
                id="p-url"
                name="url"
                required
                maxlength={2048}
                value={props.url}
              />
            </div>
            <div class="form-row">
              <label for="p-ip">{t("web.pac_my_ip")}</label>
              <input type="text" id="p-ip" name="myIp" maxlength={15} value={props.myIp} />
            </div>
          </div>
          <div>
            <button type="submit" class="btn btn-primary" id="pac-test">{t("web.pac_run")}</button>
          </div>
        </form>
        {o
          ? (
            <div id="pac-result" style="margin-top:14px">
              {o.ok
                ? <Pill tone="ok">{t("web.pac_result", { result: o.result })}</Pill>
                : (
                  <Flash tone="bad">
                    {o.line === null
                      ? o.error
                      : t("web.pac_error_line", { error: o.error, line: o.line })}
                  </Flash>
                )}
            </div>
          )
          : null}
      </Card>
    </>
  );
}
