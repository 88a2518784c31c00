// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * The connector console's page bodies: pure functions of the engine's status,
 * the policy and the notification history. connector_console.tsx fetches
 * and frames them; the status cards are also served alone for live refresh.
 */
import { EdgeChoiceCard } from "./connector_edges.tsx";
import type { UpdateStatus } from "../../connector/updater.ts";
import type { Child } from "hono/jsx";
import type { EngineStatus } from "../../connector/engine/mod.ts";
import { formatSkew } from "../../connector/clock_skew.ts";
import type { CaptureInfo } from "../../diag/capture.ts";
import type { Level } from "../../log.ts";
import type { RepairReport, RepairStatus } from "../../connector/repair.ts";
import { hasMessage, type Lang, type Translate } from "../../../web/i18n/mod.ts";
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
import { formatBytes, formatDuration, formatTime } from "../../../web/format.ts";

/** Tone of an engine state. */
export function stateTone(kind: string): Tone {
  switch (kind) {
    case "connected":
      return "ok";
    case "trusted_network":
      return "info";
    case "connecting":
    case "authenticating":
    case "captive_portal":
    case "fail_open":
    case "disabled":
      return "warn";
    case "fail_closed":
    case "signin_required":
    case "error":
      return "bad";
    default:
      return "idle";
  }
}

/** An engine state's name in the page's language. */
export function stateLabel(t: Translate, kind: string): string {
  const key = `state.${kind}`;
  return hasMessage(key) ? t(key) : kind;
}

/** The state as a sentence in the page's language (the engine's English text as the fallback). */
export function stateSentence(t: Translate, s: EngineStatus): string {
  const key = `cnotify.state.${s.state}`;
  if (!hasMessage(key)) return s.description;
  return t(key, { transport: s.transport?.toUpperCase() ?? "", reason: s.reason ?? "" })
    .replace(/\s*\(\)\s*$/, "");
}

/** Authentication status derived from the state: authenticated, in progress, sign-in required, or not. */
export function authStatus(
  s: EngineStatus,
): {
  tone: Tone;
  key:
    | "auth.ok"
    | "auth.ok_user"
    | "auth.pending"
    | "auth.none"
    | "auth.signin_required"
    | "auth.signin_required_user";
  user?: string;
} {
  if (s.state === "authenticating") return { tone: "warn", key: "auth.pending" };
  // Enrolled, but the user's sign-in ended: they sign in again (same device).
  if (s.state === "signin_required") {
    return s.user
      ? { tone: "bad", key: "auth.signin_required_user", user: s.user }
      : { tone: "bad", key: "auth.signin_required" };
  }
  if (s.state === "unenrolled" || s.deviceId === null) {
    // The edge refused to enrol without a signed-in user.
    if (s.reason && /sign in first/i.test(s.reason)) {
      return { tone: "bad", key: "auth.signin_required" };
    }
    return { tone: "bad", key: "auth.none" };
  }
  if (s.user) return { tone: "ok", key: "auth.ok_user", user: s.user };
  return { tone: "ok", key: "auth.ok" };
}

/** The Internet Security status card (refreshes itself). */
export function InternetCard(props: { t: Translate; lang: Lang; s: EngineStatus; now: number }) {
  const { t, lang, s } = props;
  const net = s.network?.type;
  return (
    <div
      id="internet-card"
      hx-get="/fragments/internet"
      hx-trigger="every 3s, pc:any from:body"
      hx-swap="outerHTML"
    >
      <ClockSkewBanner t={t} s={s} />
      <Card title={t("conn.internet.title")}>
        <KeyValue
          id="internet-status"
          rows={[
            [
              t("conn.service_status"),
              <Pill tone={stateTone(s.state)} id="service-state">{stateLabel(t, s.state)}</Pill>,
            ],
            [
              t("conn.network_type"),
              net ? (hasMessage(`network.${net}`) ? t(`network.${net}` as never) : net) : "—",
            ],
            [t("conn.edge"), s.edge ? <code>{s.edge}</code> : "—"],
            [t("conn.client_address"), s.deviceAddress ? <code>{s.deviceAddress}</code> : "—"],
            [
              t("conn.transport"),
              <span id="transport">{s.transport ? s.transport.toUpperCase() : "—"}</span>,
            ],
            [
              t("conn.time_connected"),
              <span id="time-connected">
                {s.connectedSince === null ? "—" : formatDuration(props.now - s.connectedSince)}
              </span>,
            ],
            [t("conn.bytes_sent"), <span id="bytes-sent">{formatBytes(s.txBytes, lang)}</span>],
            [
              t("conn.bytes_received"),
              <span id="bytes-received">{formatBytes(s.rxBytes, lang)}</span>,
            ],
          ]}
        />
      </Card>
      {s.edgeSelection ? <EdgeChoiceCard t={t} lang={lang} sel={s.edgeSelection} /> : null}
    </div>
  );
}

/** The skew in words: "6 min 12 s behind the edge (tolerance 2 min 0 s)", or a dash. */
function skewText(t: Translate, s: EngineStatus): string {
  const k = s.clockSkew;
  if (!k) return "—";
  const key = Math.abs(k.skewMs) < 500
    ? "more.skew_none"
    : k.direction === "behind"
    ? "more.skew_behind"
    : "more.skew_ahead";
  return t(key, {
    size: k.size,
    tolerance: formatSkew(k.toleranceMs),
  });
}

/**
 * The clock-skew warning: shown while this host's clock is further from the
 * edge's than sign-in tolerates, gone with the next refresh once it is right.
 */
export function ClockSkewBanner(props: { t: Translate; s: EngineStatus }) {
  const k = props.s.clockSkew;
  if (!k?.exceeded) return null;
  return (
    <div id="clock-skew">
      <Flash tone="bad">
        {props.t(k.direction === "behind" ? "skew.behind" : "skew.ahead", { size: k.size })}
      </Flash>
    </div>
  );
}

/** Why the engine is in its state, when it says. */
export function StateExplanation(props: { t: Translate; s: EngineStatus }) {
  const { t, s } = props;
  return (
    <Card title={t("conn.details")}>
      <KeyValue
        rows={[
          [t("conn.state_detail"), stateSentence(t, s)],
          [t("conn.reason"), s.reason ?? "—"],
          [t("conn.network_detail"), s.network?.explanation ?? "—"],
          [t("conn.endpoint"), s.endpoint ? <code>{s.endpoint}</code> : "—"],
        ]}
      />
    </Card>
  );
}

/** The notifications tab: history plus live events, filterable by type. */
export function ConnectorNotificationsPage(
  props: { t: Translate; types: string[]; type: string; items: Child[] },
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
            {props.types.map((k) => (
              <option value={k} selected={k === props.type}>{typeLabel(t, k)}</option>
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

/** A notification type's name in the page's language. */
export function typeLabel(t: Translate, type: string): string {
  const key = `ctype.${type}`;
  if (hasMessage(key)) return t(key);
  return stateLabel(t, type);
}

/** Everything the More tab shows. */
export interface MoreModel {
  s: EngineStatus;
  version: string;
  logMode: Level;
  csrf: string;
  captures: CaptureInfo[] | null;
  canReport: boolean;
  canExit: boolean;
  passwordFor: { disable: boolean; logout: boolean; exit: boolean; uninstall: boolean };
  canUninstall: boolean;
  flash?: { tone: Tone; text: string };
  now: number;
  /** The last "Repair app" report; null before the first, undefined when repair is unavailable. */
  repair?: RepairReport | null;
  /** The updater's status (absent: no updater). */
  update?: UpdateStatus;
}

const UPDATE_TONE: Record<UpdateStatus["state"], Tone> = {
  disabled: "idle",
  idle: "idle",
  checking: "info",
  up_to_date: "ok",
  downloading: "info",
  restarting: "info",
  confirming: "info",
  updated: "ok",
  refused: "bad",
  failed: "bad",
  rolled_back: "warn",
};

/** The Updates card: the version this connector runs, the updater's state, a check button. */
export function UpdateCard(props: { t: Translate; lang: Lang; u: UpdateStatus; csrf: string }) {
  const { t, lang, u } = props;
  return (
    <Card title={t("more.update_title")}>
      <KeyValue
        id="update-status"
        rows={[
          [t("more.version"), <code id="update-version">{u.version}</code>],
          [
            t("more.update_state"),
            <span>
              <Pill tone={UPDATE_TONE[u.state]} id="update-state">
                {t(`update.state.${u.state}`)}
              </Pill>{" "}
              <span id="update-message">{u.message}</span>
            </span>,
          ],
          [t("more.update_offered"), u.offered ?? "—"],
          [t("more.update_checked"), formatTime(u.lastCheckAt, lang)],
          [t("more.update_key"), u.keyId ? <code>{u.keyId}</code> : t("more.update_no_key")],
        ]}
      />
      {u.state === "disabled" ? null : (
        <div class="actions" style="margin-top:14px">
          <ActionButton
            action="/actions/check-update"
            label={t("more.check_update")}
            csrf={props.csrf}
            id="check-update"
          />
        </div>
      )}
    </Card>
  );
}

const REPAIR_TONE: Record<RepairStatus, Tone> = {
  ok: "ok",
  repaired: "warn",
  failed: "bad",
  skipped: "info",
};

/** The last repair's checks: what was found and what was done, one row each. */
export function RepairCard(props: { t: Translate; lang: Lang; r: RepairReport }) {
  const { t, lang, r } = props;
  return (
    <Card title={t("more.repair_title")} wide>
      <p class="hint" id="repair-summary">
        {t("more.repair_when", {
          time: formatTime(r.at, lang),
          repaired: r.repaired,
          failed: r.failed,
        })}
      </p>
      <Table
        id="repair-table"
        caption={t("more.repair_title")}
        head={[t("more.repair_check"), t("more.repair_status"), t("more.repair_detail")]}
        empty="—"
        rowIds={r.checks.map((c) => `repair-${c.id}`)}
        rowAttrs={r.checks.map((c) => ({ "data-status": c.status }))}
        rows={r.checks.map((c) => [
          t(`repair.check.${c.id}`),
          <Pill tone={REPAIR_TONE[c.status]}>{t(`repair.status.${c.status}`)}</Pill>,
          hasMessage(`repair.reason.${c.reason}`)
            ? t(`repair.reason.${c.reason}` as never, c.params)
            : c.detail,
        ])}
      />
    </Card>
  );
}

/** The More tab: version, policy, actions and troubleshooting. */
export function MorePage(props: { t: Translate; lang: Lang; m: MoreModel }) {
  const { t, lang, m } = props;
  const running = m.captures?.find((c) => c.running) ?? null;
  const disabled = m.s.state === "disabled";
  const pw = (id: string, needed: boolean) =>
    needed
      ? (
        <span class="form-row">
          <label for={id}>{t("more.password")}</label>
          <input type="password" id={id} name="password" required autocomplete="off" />
        </span>
      )
      : null;
  /** A one-button form for an action the policy may guard with a password. */
  const guarded = (
    action: "logout" | "exit" | "uninstall",
    id: string,
    label: string,
    variant: "secondary" | "danger",
    needed: boolean,
  ) => (
    <form method="post" action={`/actions/${action}`} class="form-inline">
      <CsrfField token={m.csrf} />
      {pw(`pw-${action}`, needed)}
      <button type="submit" class={`btn btn-${variant}`} id={id}>{label}</button>
    </form>
  );
  return (
    <>
      {m.flash ? <Flash tone={m.flash.tone}>{m.flash.text}</Flash> : null}
      <div class="grid">
        <Card title={t("more.about")}>
          <KeyValue
            id="about"
            rows={[
              [t("more.version"), m.version],
              [
                t("more.policy_version"),
                <code id="policy-version">{m.s.policyVersion ?? "—"}</code>,
              ],
              [
                t("more.policy_updated"),
                <span id="policy-updated">{formatTime(m.s.policyUpdatedAt, lang)}</span>,
              ],
              [t("more.device_id"), m.s.deviceId ? <code>{m.s.deviceId}</code> : "—"],
              [t("more.clock_skew"), <span id="clock-skew-value">{skewText(t, m.s)}</span>],
            ]}
          />
          <div class="actions" style="margin-top:14px">
            <ActionButton
              action="/actions/update-policy"
              label={t("more.update_policy")}
              csrf={m.csrf}
              variant="primary"
              id="update-policy"
            />
            <ActionButton
              action="/actions/restart"
              label={t("more.restart")}
              csrf={m.csrf}
              id="restart-service"
            />
          </div>
        </Card>
        {m.update ? <UpdateCard t={t} lang={lang} u={m.update} csrf={m.csrf} /> : null}
        <Card title={t("more.troubleshooting")}>
          <div class="actions">
            {m.captures === null ? null : running
              ? (
                <ActionButton
                  action="/actions/capture/stop"
                  label={t("more.capture_stop")}
                  csrf={m.csrf}
                  variant="danger"
                  id="capture-stop"
                />
              )
              : (
                <ActionButton
                  action="/actions/capture/start"
                  label={t("more.capture_start")}
                  csrf={m.csrf}
                  id="capture-start"
                />
              )}
            <a href="/doctor" class="btn btn-primary" id="run-doctor">{t("doctor.run")}</a>
            <a
              href="/export.zip"
              class="btn btn-secondary"
              hx-boost="false"
              download
              id="export-logs"
            >
              {t("more.export")}
            </a>
            <ActionButton
              action="/actions/clear-logs"
              label={t("more.clear_logs")}
              csrf={m.csrf}
              id="clear-logs"
            />
            {m.repair !== undefined
              ? (
                <ActionButton
                  action="/actions/repair"
                  label={t("more.repair")}
                  csrf={m.csrf}
                  id="repair-app"
                />
              )
              : null}
          </div>
          {running
            ? (
              <p class="hint" id="capture-running">
                {t("more.capture_running", {
                  packets: running.packets,
                  size: formatBytes(running.bytes, lang),
                })}
              </p>
            )
            : null}
          <form
            method="post"
            action="/actions/log-mode"
            class="form-inline"
            style="margin-top:14px"
          >
            <CsrfField token={m.csrf} />
            <div class="form-row">
              <label for="log-mode">{t("more.log_mode")}</label>
              <select id="log-mode" name="level">
                {(["error", "warn", "info", "debug"] as const).map((l) => (
                  <option value={l} selected={l === m.logMode}>{t(`log.${l}`)}</option>
                ))}
              </select>
            </div>
            <button type="submit" class="btn btn-secondary" id="log-mode-apply">
              {t("layout.apply")}
            </button>
          </form>
        </Card>
      </div>
      {m.repair ? <RepairCard t={t} lang={lang} r={m.repair} /> : null}
      {m.captures !== null
        ? (
          <Card title={t("more.captures")} wide>
            <Table
              id="captures-table"
              caption={t("more.captures")}
              head={[
                t("more.capture_started"),
                t("more.capture_packets"),
                t(
                  "more.capture_size",
                ),
                "",
              ]}
              empty={t("more.captures_empty")}
              rows={m.captures.map((c) => [
                formatTime(c.startedAt, lang),
                c.packets < 0 ? "—" : String(c.packets),
                formatBytes(c.bytes, lang),
                c.running ? <Pill tone="warn">{t("more.capture_live")}</Pill> : (
                  <a
                    href={`/captures/${c.id}.pcap`}
                    hx-boost="false"
                    download
                    class="btn btn-secondary btn-small capture-download"
                  >
                    {t("more.download")}
                  </a>
                ),
              ])}
            />
          </Card>
        )
        : null}
      <div class="grid">
        {m.canReport
          ? (
            <Card title={t("more.report")}>
              <form method="post" action="/actions/report" class="form" id="report-form">
                <CsrfField token={m.csrf} />
                <div class="form-row">
                  <label for="report-message">{t("more.report_message")}</label>
                  <textarea id="report-message" name="message" required maxlength={4000}></textarea>
                  <p class="hint">{t("more.report_hint")}</p>
                </div>
                <div>
                  <button type="submit" class="btn btn-primary" id="report-send">
                    {t("more.report_send")}
                  </button>
                </div>
              </form>
            </Card>
          )
          : null}
        <Card title={t("more.session")}>
          {m.s.deviceId === null
            ? (
              <form method="post" action="/actions/enroll" class="form" id="enroll-form">
                <CsrfField token={m.csrf} />
                <div class="form-row">
                  <label for="enroll-key">{t("more.enroll_key")}</label>
                  <input
                    type="password"
                    id="enroll-key"
                    name="key"
                    required
                    maxlength={2048}
                    autocomplete="off"
                    spellcheck={false}
                  />
                  <p class="hint">{t("more.enroll_hint")}</p>
                </div>
                <div>
                  <button type="submit" class="btn btn-primary" id="enroll">
                    {t("more.enroll")}
                  </button>
                </div>
              </form>
            )
            : null}
          <div class="service-actions">
            <form
              method="post"
              action={disabled ? "/actions/enable" : "/actions/disable"}
              class="form-inline"
            >
              <CsrfField token={m.csrf} />
              {disabled ? null : pw("pw-disable", m.passwordFor.disable)}
              <button
                type="submit"
                class={disabled ? "btn btn-primary" : "btn btn-secondary"}
                id={disabled ? "enable" : "disable"}
              >
                {disabled ? t("more.enable") : t("more.disable")}
              </button>
            </form>
            {guarded(
              "logout",
              "logout-device",
              t("more.logout"),
              "secondary",
              m.passwordFor.logout,
            )}
            {m.canExit
              ? guarded("exit", "exit", t("more.exit"), "danger", m.passwordFor.exit)
              : null}
            {m.canUninstall
              ? guarded(
                "uninstall",
                "uninstall",
                t("more.uninstall"),
                "danger",
                m.passwordFor.uninstall,
              )
              : null}
          </div>
        </Card>
      </div>
    </>
  );
}
