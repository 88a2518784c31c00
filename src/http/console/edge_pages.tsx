// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * The edge console's page bodies. Pure functions of the API's JSON and a
 * translator; the route handlers in edge_console.tsx fetch and frame them.
 */
import type { Child } from "hono/jsx";
import type { Lang, Translate } from "../../../web/i18n/mod.ts";
import { hasMessage } from "../../../web/i18n/mod.ts";
import {
  ActionButton,
  BarList,
  Card,
  CopyField,
  CsrfField,
  Flash,
  KeyValue,
  Pill,
  Stat,
  Table,
  type Tone,
} from "../../../web/components.tsx";
import { formatAgo, formatBytes, formatNumber, formatTime } from "../../../web/format.ts";
import type { DeviceJson, FleetSummary } from "./fleet.ts";

const tunnelTone = (s: string): Tone => s === "up" ? "ok" : s === "disabled" ? "bad" : "idle";

function tunnelLabel(t: Translate, s: string): string {
  const key = `tunnel.${s}`;
  return hasMessage(key) ? t(key) : s;
}

/** The login form (password and one-time code). */
export function LoginPage(props: { t: Translate; error?: string; next: string }) {
  const { t } = props;
  return (
    <div class="login-wrap">
      <div class="login-card">
        <Card title={t("login.heading")}>
          {props.error ? <Flash tone="bad">{props.error}</Flash> : null}
          <p class="hint">{t("login.intro")}</p>
          <form method="post" action="/login" class="form" id="login-form">
            <input type="hidden" name="next" value={props.next} />
            <div class="form-row">
              <label for="username">{t("login.username")}</label>
              <input
                type="text"
                id="username"
                name="username"
                autocomplete="username"
                required
                maxlength={64}
                autofocus
              />
            </div>
            <div class="form-row">
              <label for="password">{t("login.password")}</label>
              <input
                type="password"
                id="password"
                name="password"
                autocomplete="current-password"
                required
                maxlength={1024}
              />
            </div>
            <div class="form-row">
              <label for="totp">{t("login.totp")}</label>
              <input
                type="text"
                id="totp"
                name="totp"
                inputmode="numeric"
                autocomplete="one-time-code"
                pattern="[0-9 ]{6,7}"
                maxlength={7}
                required
                aria-describedby="totp-hint"
              />
              <p class="hint" id="totp-hint">{t("login.totp_hint")}</p>
            </div>
            <button type="submit" class="btn btn-primary" id="login-submit">
              {t("login.submit")}
            </button>
          </form>
        </Card>
      </div>
    </div>
  );
}

/** The fleet dashboard. */
export function DashboardPage(
  props: { t: Translate; lang: Lang; summary: FleetSummary; recent: Child[] },
) {
  const { t, lang, summary: s } = props;
  return (
    <>
      <div class="stats" id="fleet-stats">
        <Stat label={t("dash.enrolled")} value={formatNumber(s.enrolled, lang)} />
        <Stat
          label={t("dash.online")}
          value={formatNumber(s.online, lang)}
          tone="ok"
          note={t("dash.online_note", { total: s.enrolled })}
        />
        <Stat
          label={t("dash.outdated")}
          value={formatNumber(s.outdated.length, lang)}
          tone={s.outdated.length ? "warn" : "ok"}
          note={s.latestVersion ? t("dash.latest", { version: s.latestVersion }) : undefined}
        />
        <Stat label={t("dash.disabled")} value={formatNumber(s.disabled, lang)} tone="idle" />
        <Stat
          label={t("dash.traffic")}
          value={formatBytes(s.rxBytes + s.txBytes, lang)}
          note={t("dash.traffic_note", {
            rx: formatBytes(s.rxBytes, lang),
            tx: formatBytes(s.txBytes, lang),
          })}
        />
      </div>
      <div class="grid">
        <Card title={t("dash.by_platform")}>
          <BarList items={s.byPlatform} empty={t("dash.no_devices")} />
        </Card>
        <Card title={t("dash.by_os")}>
          <BarList items={s.byOs} empty={t("dash.no_devices")} />
        </Card>
        <Card title={t("dash.by_version")}>
          <BarList items={s.byVersion} empty={t("dash.no_devices")} />
        </Card>
      </div>
      <div class="grid">
        <Card title={t("dash.outdated_title")}>
          {s.outdated.length === 0
            ? <p class="muted">{t("dash.none_outdated")}</p>
            : (
              <ul class="segments">
                {s.outdated.map((d) => (
                  <li>
                    <a href={`/devices/${encodeURIComponent(d.id)}`}>
                      <strong>{d.hostname}</strong>
                    </a>
                    <span class="badge badge-warn">{d.connectorVersion}</span>
                  </li>
                ))}
              </ul>
            )}
        </Card>
        <Card title={t("dash.recent")} actions={<a href="/notifications">{t("dash.view_all")}</a>}>
          {props.recent.length
            ? <ul class="feed">{props.recent}</ul>
            : <p class="muted">{t("notifications.empty")}</p>}
        </Card>
      </div>
    </>
  );
}

/** The devices table (also served alone for live refresh). */
export function DevicesTable(
  props: { t: Translate; lang: Lang; devices: DeviceJson[]; now: number },
) {
  const { t, lang } = props;
  return (
    <div
      id="devices-live"
      hx-get="/devices/table"
      hx-trigger="pc:device_enrolled from:body, pc:device_disabled from:body, pc:device_enabled from:body, pc:device_deleted from:body, every 15s"
      hx-swap="outerHTML"
    >
      <Table
        id="devices-table"
        caption={t("edge.tab.devices")}
        head={[
          t("device.hostname"),
          t("device.address"),
          t("device.os"),
          t("device.version"),
          t("device.tunnel"),
          t("device.transport"),
          t("device.last_seen"),
          t("device.rx"),
          t("device.tx"),
        ]}
        empty={t("devices.empty")}
        rowIds={props.devices.map((d) => `device-${d.id}`)}
        rows={props.devices.map((d) => [
          <a href={`/devices/${encodeURIComponent(d.id)}`} class="device-link">{d.hostname}</a>,
          <code>{d.address ?? "—"}</code>,
          `${d.os} ${d.osVersion}`,
          d.connectorVersion,
          <Pill tone={tunnelTone(d.tunnel.state)}>{tunnelLabel(t, d.tunnel.state)}</Pill>,
          d.tunnel.transport ? d.tunnel.transport.toUpperCase() : "—",
          formatAgo(d.lastSeenAt, props.now, lang),
          formatBytes(d.tunnel.rxBytes, lang),
          formatBytes(d.tunnel.txBytes, lang),
        ])}
      />
    </div>
  );
}

/** The devices list page. */
export function DevicesPage(props: { t: Translate; flash?: string; table: Child }) {
  return (
    <>
      {props.flash ? <Flash tone="ok">{props.flash}</Flash> : null}
      <Card
        wide
        title={props.t("devices.title")}
        actions={<a href="/keys" class="btn btn-secondary btn-small">{props.t("devices.add")}</a>}
      >
        {props.table}
      </Card>
    </>
  );
}

type DeviceDetail = DeviceJson & {
  posture: {
    passed: boolean;
    receivedAt: string;
    /** The edge's standing per profile now (expired counts as failed). */
    profiles?: { profile: string; passed: boolean; reason: string; expiresAt: string }[];
    /** Every check the edge evaluated, expected vs actual. */
    results?: {
      profile: string;
      check: string;
      passed: boolean;
      expected: string;
      actual: string;
    }[];
  } | null;
  clientToClient: { fqdn: string; valid: boolean; reason: string } | null;
};

/** One device with its identity, tunnel and actions. */
export function DevicePage(
  props: {
    t: Translate;
    lang: Lang;
    device: DeviceDetail;
    csrf: string;
    now: number;
    flash?: string;
    error?: string;
  },
) {
  const { t, lang, device: d } = props;
  const id = encodeURIComponent(d.id);
  return (
    <>
      {props.flash ? <Flash tone="ok">{props.flash}</Flash> : null}
      {props.error ? <Flash tone="bad">{props.error}</Flash> : null}
      <div class="actions" style="margin-bottom:18px">
        <Pill tone={tunnelTone(d.tunnel.state)} id="device-state">
          {tunnelLabel(t, d.tunnel.state)}
        </Pill>
        {d.disabled
          ? (
            <ActionButton
              action={`/devices/${id}/enable`}
              label={t("device.enable")}
              csrf={props.csrf}
              variant="primary"
              id="device-enable"
            />
          )
          : (
            <ActionButton
              action={`/devices/${id}/disable`}
              label={t("device.disable")}
              csrf={props.csrf}
              id="device-disable"
            />
          )}
        <a href={`/devices/${id}/delete`} class="btn btn-danger" id="device-delete">
          {t("device.delete")}
        </a>
      </div>
      <div class="grid">
        <Card title={t("device.identity")}>
          <KeyValue
            rows={[
              [t("device.hostname"), d.hostname],
              [t("device.id"), <code>{d.id}</code>],
              [t("device.fingerprint"), <code id="device-fingerprint">{d.fingerprint}</code>],
              [t("device.machine_id"), <code>{d.machineId}</code>],
              [t("device.macs"), d.macs.length ? <code>{d.macs.join(", ")}</code> : "—"],
              [t("device.os"), `${d.os} ${d.osVersion}`],
              [t("device.version"), d.connectorVersion],
              [t("device.group"), d.group ?? "—"],
              [t("device.user"), d.user ?? "—"],
              [t("device.enrolled_at"), formatTime(d.enrolledAt, lang)],
            ]}
          />
        </Card>
        <Card title={t("device.tunnel_title")}>
          <KeyValue
            rows={[
              [t("device.address"), <code>{d.address ?? "—"}</code>],
              [
                t("device.tunnel"),
                <Pill tone={tunnelTone(d.tunnel.state)}>{tunnelLabel(t, d.tunnel.state)}</Pill>,
              ],
              [t("device.transport"), d.tunnel.transport?.toUpperCase() ?? "—"],
              [t("device.endpoint"), d.tunnel.endpoint ?? "—"],
              [t("device.last_handshake"), formatTime(d.tunnel.lastHandshake, lang)],
              [t("device.last_seen"), formatAgo(d.lastSeenAt, props.now, lang)],
              [t("device.reported_state"), d.reportedState ?? "—"],
              [t("device.rx"), formatBytes(d.tunnel.rxBytes, lang)],
              [t("device.tx"), formatBytes(d.tunnel.txBytes, lang)],
              [
                t("device.clock_skew"),
                d.clockSkewMs === null ? "—" : `${formatNumber(d.clockSkewMs, lang)} ms`,
              ],
              [t("device.wg_key"), <code>{d.wgPublicKey}</code>],
            ]}
          />
        </Card>
        <Card title={t("device.posture_title")}>
          <KeyValue
            rows={[
              [
                t("device.posture"),
                d.posture
                  ? (
                    <Pill tone={d.posture.passed ? "ok" : "bad"}>
                      {d.posture.passed ? t("posture.passed") : t("posture.failed")}
                    </Pill>
                  )
                  : t("posture.none"),
              ],
              [
                t("device.posture_at"),
                d.posture ? formatTime(d.posture.receivedAt, lang) : "—",
              ],
              [t("device.fqdn"), d.clientToClient?.fqdn ?? "—"],
              [
                t("device.c2c"),
                d.clientToClient
                  ? (
                    <span id="device-c2c-valid" data-valid={String(d.clientToClient.valid)}>
                      <Pill tone={d.clientToClient.valid ? "ok" : "warn"}>
                        {d.clientToClient.valid ? t("c2c.valid") : t("c2c.invalid")}
                      </Pill>
                      {d.clientToClient.valid
                        ? null
                        : <span class="muted">{` ${d.clientToClient.reason ?? ""}`}</span>}
                    </span>
                  )
                  : "—",
              ],
            ]}
          />
        </Card>
        <Card wide title={t("device.posture_checks_title")}>
          <PostureChecks t={t} posture={d.posture} />
        </Card>
      </div>
    </>
  );
}

/**
 * The edge's own evaluation of a device's signed report: one row per check,
 * expected vs what the device reported, so an admin sees why a rule needing
 * the profile refuses the device. A profile whose result expired shows so.
 */
function PostureChecks(props: { t: Translate; posture: DeviceDetail["posture"] }) {
  const { t } = props;
  const expired = new Set(
    (props.posture?.profiles ?? []).filter((p) => /^expired/.test(p.reason)).map((p) => p.profile),
  );
  const rows = (props.posture?.results ?? []).map((r) => [
    r.profile,
    <code>{r.check}</code>,
    expired.has(r.profile)
      ? <Pill tone="warn">{t("posture.expired")}</Pill>
      : (
        <Pill tone={r.passed ? "ok" : "bad"}>
          {r.passed ? t("posture.passed") : t("posture.failed")}
        </Pill>
      ),
    r.expected,
    r.actual,
  ]);
  return (
    <Table
      id="posture-checks"
      caption={t("device.posture_checks_title")}
      head={[
        t("posture.col_profile"),
        t("posture.col_check"),
        t("posture.col_result"),
        t("posture.col_expected"),
        t("posture.col_actual"),
      ]}
      rows={rows}
      empty={t("posture.no_checks")}
    />
  );
}

/** Asks before deleting a device (works without JavaScript). */
export function DeleteDevicePage(props: { t: Translate; device: DeviceJson; csrf: string }) {
  const { t, device: d } = props;
  const id = encodeURIComponent(d.id);
  return (
    <Card title={t("device.delete_confirm_title")}>
      <p>{t("device.delete_confirm", { hostname: d.hostname })}</p>
      <div class="actions">
        <form method="post" action={`/devices/${id}/delete`} class="inline-form">
          <CsrfField token={props.csrf} />
          <button type="submit" class="btn btn-danger" id="confirm-delete">
            {t("device.delete_yes")}
          </button>
        </form>
        <a href={`/devices/${id}`} class="btn btn-secondary">{t("common.cancel")}</a>
      </div>
    </Card>
  );
}

interface KeyJson {
  id: string;
  reusable: boolean;
  machine?: boolean;
  group: string | null;
  status: string;
  useCount: number;
  expiresAt: string | null;
  createdBy: string;
  createdAt: string;
}

const keyTone = (s: string): Tone => s === "active" ? "ok" : s === "used" ? "idle" : "bad";

/** Enrolment keys: create (shown once), list, revoke. */
export function KeysPage(
  props: {
    t: Translate;
    lang: Lang;
    keys: KeyJson[];
    csrf: string;
    created?: { key: string; id: string };
    error?: string;
    flash?: string;
  },
) {
  const { t, lang } = props;
  return (
    <>
      {props.flash ? <Flash tone="ok">{props.flash}</Flash> : null}
      {props.error ? <Flash tone="bad">{props.error}</Flash> : null}
      {props.created
        ? (
          <Card title={t("keys.created_title")} id="created-key">
            <Flash tone="warn">{t("keys.shown_once")}</Flash>
            <CopyField
              id="new-key"
              value={props.created.key}
              label={t("common.copy")}
              copied={t("common.copied")}
            />
            <p class="hint">{t("keys.usage", { command: "portcullis connect KEY" })}</p>
          </Card>
        )
        : null}
      <div class="grid">
        <Card title={t("keys.create")}>
          <form method="post" action="/keys" class="form" id="key-form">
            <CsrfField token={props.csrf} />
            <div class="form-inline">
              <div class="form-row">
                <label for="expires">{t("keys.expires")}</label>
                <select id="expires" name="expires">
                  <option value="1h">{t("keys.expires_1h")}</option>
                  <option value="24h" selected>{t("keys.expires_24h")}</option>
                  <option value="7d">{t("keys.expires_7d")}</option>
                  <option value="30d">{t("keys.expires_30d")}</option>
                  <option value="never">{t("keys.expires_never")}</option>
                </select>
              </div>
              <div class="form-row">
                <label for="group">{t("keys.group")}</label>
                <input
                  type="text"
                  id="group"
                  name="group"
                  maxlength={64}
                  pattern="[A-Za-z0-9_.\-]{1,64}"
                  placeholder={t("keys.group_placeholder")}
                />
              </div>
            </div>
            <label class="check">
              <input type="checkbox" name="reusable" id="reusable" />
              {t("keys.reusable")}
            </label>
            <label class="check">
              <input type="checkbox" name="userKey" id="user-key" />
              {t("keys.user_key")}
            </label>
            <div>
              <button type="submit" class="btn btn-primary" id="key-create">
                {t("keys.create_button")}
              </button>
            </div>
          </form>
        </Card>
      </div>
      <Card title={t("keys.list")} wide>
        <Table
          id="keys-table"
          caption={t("keys.list")}
          head={[
            t("keys.id"),
            t("keys.status"),
            t("keys.kind"),
            t("keys.group"),
            t("keys.uses"),
            t("keys.expires_at"),
            t("keys.created"),
            "",
          ]}
          empty={t("keys.empty")}
          rows={props.keys.map((k) => [
            <code>{k.id}</code>,
            <Pill tone={keyTone(k.status)}>
              {hasMessage(`key_status.${k.status}`)
                ? t(`key_status.${k.status}` as never)
                : k.status}
            </Pill>,
            <span>
              {k.reusable ? t("keys.reusable_short") : t("keys.single_use")}
              <div class="muted">
                {k.machine === false ? t("keys.kind_user") : t("keys.kind_machine")}
              </div>
            </span>,
            k.group ?? "—",
            String(k.useCount),
            k.expiresAt ? formatTime(k.expiresAt, lang) : t("keys.never"),
            formatTime(k.createdAt, lang),
            k.status === "active"
              ? (
                <ActionButton
                  action={`/keys/${encodeURIComponent(k.id)}/revoke`}
                  label={t("keys.revoke")}
                  csrf={props.csrf}
                  variant="danger"
                  id={`revoke-${k.id}`}
                />
              )
              : "",
          ])}
        />
      </Card>
    </>
  );
}

interface UserJson {
  id: string;
  username: string;
  role: string;
  groups: string[];
  groupSources?: { name: string; source: "idp" | "local" | "machine" }[];
  provider?: string | null;
  disabled?: boolean;
  devices?: { id: string; hostname: string }[];
  createdAt: string;
}

/** Users: list, create (TOTP secret shown once), delete. */
export function UsersPage(
  props: {
    t: Translate;
    lang: Lang;
    users: UserJson[];
    me: string;
    csrf: string;
    created?: { username: string; secret: string; uri: string };
    error?: string;
    flash?: string;
  },
) {
  const { t, lang } = props;
  return (
    <>
      {props.flash ? <Flash tone="ok">{props.flash}</Flash> : null}
      {props.error ? <Flash tone="bad">{props.error}</Flash> : null}
      {props.created
        ? (
          <Card title={t("users.created_title", { username: props.created.username })}>
            <Flash tone="warn">{t("users.totp_once")}</Flash>
            <KeyValue
              rows={[
                [
                  t("users.totp_secret"),
                  <CopyField
                    id="new-totp"
                    value={props.created.secret}
                    label={t("common.copy")}
                    copied={t("common.copied")}
                  />,
                ],
                [t("users.totp_uri"), <code>{props.created.uri}</code>],
              ]}
            />
          </Card>
        )
        : null}
      <div class="grid">
        <Card title={t("users.list")} wide>
          <Table
            id="users-table"
            caption={t("users.list")}
            head={[
              t("users.username"),
              t("users.role"),
              t("users.groups"),
              t("users.devices"),
              t("users.created"),
              "",
            ]}
            empty={t("users.empty")}
            rowIds={props.users.map((u) => `user-${u.id}`)}
            rows={props.users.map((u) => {
              const groups = u.groupSources ??
                u.groups.map((name) => ({ name, source: "local" as const }));
              return [
                <span>
                  <strong>{u.username}</strong>
                  {u.provider
                    ? <div class="muted">{t("users.via", { provider: u.provider })}</div>
                    : null}
                  {u.disabled ? <Pill tone="bad">{t("users.disabled")}</Pill> : null}
                </span>,
                <Pill tone={u.role === "admin" ? "info" : "idle"}>
                  {u.role === "admin" ? t("users.role_admin") : t("users.role_user")}
                </Pill>,
                groups.length
                  ? (
                    <span class="user-groups">
                      {groups.map((g) => (
                        <div>
                          {g.name}{" "}
                          <span class="muted">
                            ({g.source === "idp" ? t("users.source_idp") : t("users.source_local")})
                          </span>
                        </div>
                      ))}
                    </span>
                  )
                  : "—",
                u.devices?.length ? u.devices.map((d) => d.hostname).join(", ") : "—",
                formatTime(u.createdAt, lang),
                u.id === props.me ? <span class="muted">{t("users.you")}</span> : (
                  <span>
                    <ActionButton
                      action={`/users/${encodeURIComponent(u.id)}/${
                        u.disabled ? "enable" : "disable"
                      }`}
                      label={u.disabled ? t("users.enable") : t("users.disable")}
                      csrf={props.csrf}
                    />{" "}
                    <ActionButton
                      action={`/users/${encodeURIComponent(u.id)}/delete`}
                      label={t("users.delete")}
                      csrf={props.csrf}
                      variant="danger"
                    />
                  </span>
                ),
              ];
            })}
          />
        </Card>
        <Card title={t("users.create")}>
          <form method="post" action="/users" class="form" id="user-form">
            <CsrfField token={props.csrf} />
            <div class="form-row">
              <label for="new-username">{t("users.username")}</label>
              <input
                type="text"
                id="new-username"
                name="username"
                required
                maxlength={64}
                autocomplete="off"
              />
            </div>
            <div class="form-row">
              <label for="new-password">{t("users.password")}</label>
              <input
                type="password"
                id="new-password"
                name="password"
                required
                minlength={12}
                maxlength={1024}
                autocomplete="new-password"
                aria-describedby="pw-hint"
              />
              <p class="hint" id="pw-hint">{t("users.password_hint")}</p>
            </div>
            <div class="form-row">
              <label for="new-role">{t("users.role")}</label>
              <select id="new-role" name="role">
                <option value="user">{t("users.role_user")}</option>
                <option value="admin">{t("users.role_admin")}</option>
              </select>
            </div>
            <div>
              <button type="submit" class="btn btn-primary">{t("users.create_button")}</button>
            </div>
          </form>
        </Card>
      </div>
    </>
  );
}

/** Notifications, live, filterable by type. */
export function NotificationsPage(
  props: { t: Translate; kinds: string[]; type: string; items: Child[] },
) {
  const { t } = props;
  return (
    <Card
      wide
      title={t("notifications.title")}
      actions={
        <form method="get" action="/notifications" class="form-inline">
          <label for="type-filter">{t("notifications.filter")}</label>
          <select id="type-filter" name="type" data-autosubmit="">
            <option value="">{t("notifications.all")}</option>
            {props.kinds.map((k) => (
              <option value={k} selected={k === props.type}>
                {hasMessage(`kind.${k}`) ? t(`kind.${k}` as never) : k}
              </option>
            ))}
          </select>
          <button type="submit" class="btn btn-secondary btn-small">{t("layout.apply")}</button>
        </form>
      }
    >
      <ul class="feed" id="live-feed" data-filter={props.type}>
        {props.items.length
          ? props.items
          : <li class="feed-empty muted">{t("notifications.empty")}</li>}
      </ul>
    </Card>
  );
}

/** The audit log. */
export function AuditPage(
  props: {
    t: Translate;
    lang: Lang;
    entries: {
      id: number;
      at: string;
      actor: string;
      action: string;
      target: string | null;
      detail: Record<string, unknown>;
    }[];
  },
) {
  const { t, lang } = props;
  return (
    <Card wide title={t("audit.title")}>
      <Table
        id="audit-table"
        caption={t("audit.title")}
        head={[
          t("audit.time"),
          t("audit.actor"),
          t("audit.action"),
          t("audit.target"),
          t(
            "audit.detail",
          ),
        ]}
        empty={t("audit.empty")}
        rows={props.entries.map((e) => [
          formatTime(e.at, lang),
          <code>{e.actor}</code>,
          <span class="badge">{e.action}</span>,
          e.target ? <code>{e.target}</code> : "—",
          Object.keys(e.detail).length
            ? (
              <code>
                {Object.entries(e.detail).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ")}
              </code>
            )
            : "—",
        ])}
      />
    </Card>
  );
}

/** Support requests with their bundles. */
export function SupportPage(
  props: {
    t: Translate;
    lang: Lang;
    requests: {
      id: string;
      deviceId: string | null;
      hostname: string;
      message: string;
      bundleSize: number;
      createdAt: string;
    }[];
  },
) {
  const { t, lang } = props;
  return (
    <Card
      wide
      title={t("support.title")}
      actions={
        <a
          id="export-diagnostics"
          href="/support/diagnostics"
          hx-boost="false"
          download
          class="btn btn-secondary btn-small"
        >
          {t("support.export_diagnostics")}
        </a>
      }
    >
      <Table
        id="support-table"
        caption={t("support.title")}
        head={[t("support.time"), t("support.device"), t("support.message"), t("support.bundle")]}
        empty={t("support.empty")}
        rows={props.requests.map((r) => [
          formatTime(r.createdAt, lang),
          r.deviceId
            ? <a href={`/devices/${encodeURIComponent(r.deviceId)}`}>{r.hostname}</a>
            : r.hostname,
          r.message,
          <a
            href={`/support/${encodeURIComponent(r.id)}/bundle`}
            hx-boost="false"
            download
            class="btn btn-secondary btn-small"
          >
            {t("support.download", { size: formatBytes(r.bundleSize, lang) })}
          </a>,
        ])}
      />
    </Card>
  );
}
