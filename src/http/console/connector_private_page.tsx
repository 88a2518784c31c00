// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * The connector console's Private Access tab: the status card (how many of
 * the segments that apply to this device the edge allows now, the device
 * FQDN and "Valid Hostname" as the edge answered) and the segment list with
 * each segment's state and the edge's reason, both from the policy bundle.
 */
import type { EngineStatus } from "../../connector/engine/mod.ts";
import type { AppSegment, SegmentAccess } from "../../policy/types.ts";
import type { Translate } from "../../../web/i18n/mod.ts";
import { Card, KeyValue, Pill, type Tone } from "../../../web/components.tsx";
import { authStatus, stateLabel, stateTone } from "./connector_pages.tsx";

/** Client-to-client standing of this device, as the edge answered its registration. */
export interface C2cStanding {
  fqdn: string | null;
  /** null: client-to-client off, or the edge has not answered yet. */
  valid: boolean | null;
  reason: string | null;
}

const ACCESS_TONE: Record<SegmentAccess["state"], Tone> = {
  allowed: "ok",
  denied: "bad",
  posture_failing: "warn",
};

/**
 * The Private Access status card (refreshes itself): not "available" because
 * the tunnel is up, but how many of the segments that apply to this device
 * the edge allows it now (the standings the edge put in the bundle).
 */
export function PrivateCard(
  props: { t: Translate; s: EngineStatus; c2c: C2cStanding; access: SegmentAccess[] },
) {
  const { t, s, c2c, access } = props;
  const auth = authStatus(s);
  const tunnelled = s.state === "connected";
  const allowed = access.filter((a) => a.state === "allowed").length;
  const tone: Tone = !tunnelled
    ? stateTone(s.state)
    : allowed === access.length
    ? "ok"
    : allowed === 0 && access.length > 0
    ? "bad"
    : "warn";
  return (
    <div
      id="private-card"
      hx-get="/fragments/private"
      hx-trigger="every 3s, pc:any from:body"
      hx-swap="outerHTML"
    >
      <Card title={t("conn.private.title")}>
        <KeyValue
          rows={[
            [
              t("conn.private_status"),
              <Pill tone={tone} id="private-state">
                {!tunnelled
                  ? stateLabel(t, s.state)
                  : access.length === 0
                  ? t("conn.private_none")
                  : t("conn.private_summary", { allowed, total: access.length })}
              </Pill>,
            ],
            [
              t("conn.auth_status"),
              <Pill tone={auth.tone} id="auth-state">{t(auth.key, { user: auth.user ?? "" })}
              </Pill>,
            ],
            [t("conn.edge"), s.edge ? <code>{s.edge}</code> : "—"],
            [t("conn.fqdn"), c2c.fqdn ? <code id="device-fqdn">{c2c.fqdn}</code> : t("c2c.off")],
            [
              t("conn.c2c"),
              c2c.fqdn === null ? "—" : c2c.valid === false
                ? (
                  <span id="c2c-valid" data-valid="false">
                    <Pill tone="warn">{t("c2c.invalid")}</Pill>{" "}
                    <span class="muted">{c2c.reason}</span>
                  </span>
                )
                : c2c.valid === true
                ? (
                  <span id="c2c-valid" data-valid="true">
                    <Pill tone="ok">{t("c2c.valid")}</Pill>
                  </span>
                )
                : (
                  <span id="c2c-valid" data-valid="">
                    <Pill tone="info">{t("c2c.pending")}</Pill>
                  </span>
                ),
            ],
          ]}
        />
      </Card>
    </div>
  );
}

/**
 * The application segments that apply to this device, each with its state
 * for this device and the edge's reason (refreshes on a policy update).
 */
export function SegmentsCard(
  props: {
    t: Translate;
    segments: AppSegment[];
    access: SegmentAccess[];
    version: string | null;
  },
) {
  const { t } = props;
  const standing = new Map(props.access.map((a) => [a.segment, a]));
  return (
    <div
      id="segments-card"
      hx-get="/fragments/segments"
      hx-trigger="pc:policy_updated from:body, every 30s"
      hx-swap="outerHTML"
    >
      <Card
        title={t("conn.segments")}
        actions={props.version
          ? <span class="badge">{props.version.slice(0, 12)}</span>
          : undefined}
      >
        {props.segments.length === 0
          ? <p class="muted">{t("conn.segments_empty")}</p>
          : (
            <ul class="segments" id="segment-list">
              {props.segments.map((seg) => {
                const a = standing.get(seg.name);
                return (
                  <li data-segment={seg.name} data-state={a?.state ?? ""}>
                    <div class="segment-head">
                      <strong>{seg.name}</strong>
                      <Pill tone={a ? ACCESS_TONE[a.state] : "info"}>
                        {t(a ? `access.state.${a.state}` : "access.state.unknown")}
                      </Pill>
                    </div>
                    <div class="muted">
                      {[...seg.domains, ...seg.cidrs].join(", ") || "—"}
                      {seg.ports.length ? ` · ${t("conn.ports")} ${seg.ports.join(", ")}` : ""}
                    </div>
                    {a ? <div class="segment-reason">{a.reason}</div> : null}
                  </li>
                );
              })}
            </ul>
          )}
      </Card>
    </div>
  );
}
