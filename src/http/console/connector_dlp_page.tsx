// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * The connector console's Data protection tab: whether endpoint DLP
 * enforces (fanotify) or only reports (and why), which removable media and
 * network shares it watches, the rules from the edge, whether printing is
 * covered, and the latest DLP events. A pure function of the DLP status.
 */
import type { Child } from "hono/jsx";
import type { DlpStatus } from "../../connector/dlp_agent.ts";
import { hasMessage, type Lang, type Translate } from "../../../web/i18n/mod.ts";
import { Card, Flash, KeyValue, Pill, Table, type Tone } from "../../../web/components.tsx";
import { formatTime } from "../../../web/format.ts";

/** A channel's name in the page's language. */
export function channelLabel(t: Translate, channel: string): string {
  const key = `dlp.channel.${channel}`;
  return hasMessage(key) ? t(key) : channel;
}

/** An action's name in the page's language. */
export function actionLabel(t: Translate, action: string): string {
  const key = `dlp.action.${action}`;
  return hasMessage(key) ? t(key) : action;
}

/** Tone of a DLP action or outcome. */
export function actionTone(action: string): Tone {
  return action === "block" || action === "quarantined"
    ? "bad"
    : action === "allow"
    ? "ok"
    : "warn";
}

/** The Data protection tab. */
export function ConnectorDlpPage(
  props: { t: Translate; lang: Lang; s: DlpStatus | null; events: Child[] },
) {
  const { t, s } = props;
  if (!s || s.mode === "off" || !s.endpoint) {
    return (
      <Card title={t("cdlp.title")}>
        <Pill tone="idle" id="dlp-mode">{t("cdlp.mode.off")}</Pill>
        <p class="muted">{t("cdlp.off_hint")}</p>
      </Card>
    );
  }
  const e = s.endpoint;
  const mode = e.mode === "enforcing"
    ? <Pill tone="ok" id="dlp-mode">{t("cdlp.mode.enforcing")}</Pill>
    : e.mode === "report_only"
    ? <Pill tone="warn" id="dlp-mode">{t("cdlp.mode.report_only")}</Pill>
    : <Pill tone="idle" id="dlp-mode">{t("cdlp.mode.stopped")}</Pill>;
  return (
    <>
      {e.mode === "report_only"
        ? <Flash tone="warn">{t("cdlp.report_only_warning", { reason: e.reason ?? "" })}</Flash>
        : null}
      <div class="grid">
        <Card title={t("cdlp.title")}>
          <KeyValue
            id="dlp-summary"
            rows={[
              [t("cdlp.mode"), mode],
              [
                t("cdlp.policy"),
                s.policyVersion ? <code>{s.policyVersion.slice(0, 12)}</code> : t("cdlp.no_policy"),
              ],
              [t("cdlp.last_fetch"), s.lastFetch ? formatTime(s.lastFetch, props.lang) : "—"],
              [t("cdlp.inspected"), String(e.inspected)],
              [t("cdlp.quarantined"), String(e.quarantined)],
              [t("cdlp.outbox"), String(s.outbox)],
              ...(s.lastError ? [[t("cdlp.last_error"), s.lastError] as [Child, Child]] : []),
            ]}
          />
        </Card>
        <Card title={t("cdlp.printing")}>
          <Pill tone={s.printing.covered ? "ok" : "warn"} id="dlp-printing">
            {s.printing.covered ? t("cdlp.printing_covered") : t("cdlp.printing_not_covered")}
          </Pill>
          <p class="hint">{s.printing.reason}</p>
        </Card>
      </div>
      <Card wide title={t("cdlp.locations")}>
        <Table
          id="dlp-mounts"
          caption={t("cdlp.locations")}
          head={[
            t("cdlp.mount"),
            t("cdlp.source"),
            t("dlp.channel"),
            t("cdlp.why"),
            t("cdlp.covered"),
          ]}
          empty={t("cdlp.no_locations")}
          rows={e.mounts.map((m) => [
            <code>{m.mountPoint}</code>,
            <span>
              {m.source} <span class="muted">({m.fsType})</span>
            </span>,
            channelLabel(t, m.channel),
            m.reason,
            <Pill tone={m.covered ? "ok" : "idle"}>
              {m.covered ? t("cdlp.covered_yes") : t("cdlp.covered_no")}
            </Pill>,
          ])}
        />
      </Card>
      <div class="grid">
        <Card title={t("cdlp.rules")}>
          <Table
            id="dlp-rules"
            caption={t("cdlp.rules")}
            head={[t("dlp.rule"), t("dlp.channels"), t("dlp.action")]}
            empty={t("cdlp.no_rules")}
            rows={s.rules.map((r) => [
              <strong>{r.name}</strong>,
              r.channels.map((c) => channelLabel(t, c)).join(", "),
              <Pill tone={actionTone(r.action)}>{actionLabel(t, r.action)}</Pill>,
            ])}
          />
        </Card>
        <Card title={t("cdlp.events")}>
          {props.events.length
            ? <ul class="feed" id="dlp-events">{props.events}</ul>
            : <p class="muted">{t("cdlp.no_events")}</p>}
        </Card>
      </div>
    </>
  );
}
