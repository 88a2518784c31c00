// Server-rendered hono/jsx: lists are rendered once to HTML, never reconciled, so keys mean nothing.
// deno-lint-ignore-file jsx-key
/**
 * The connector console's "Service edge" card: the edge this device tunnels
 * to among the fleet's healthy edges, its measured round trip, the other
 * edges with theirs, and the last move with its reason (edge selection,
 * src/connector/edge_selector.ts). Shown on the Internet Security tab.
 */
import type { Lang, Translate } from "../../../web/i18n/mod.ts";
import { Card, KeyValue, Table } from "../../../web/components.tsx";
import { formatTime } from "../../../web/format.ts";
import type { EdgeSelectionStatus } from "../../connector/edge_selector.ts";

const REASON = {
  initial: "conn.edges.reason.initial",
  nearer: "conn.edges.reason.nearer",
  failover: "conn.edges.reason.failover",
  unlisted: "conn.edges.reason.unlisted",
} as const;

/** A round trip in words: "12.3 ms", or why there is none. */
function rtt(t: Translate, ms: number | null, measured: boolean): string {
  if (ms === null) return measured ? t("conn.edges.no_answer") : t("conn.edges.unmeasured");
  return `${Math.round(ms * 10) / 10} ms`;
}

/** The Service edge card. */
export function EdgeChoiceCard(props: { t: Translate; lang: Lang; sel: EdgeSelectionStatus }) {
  const { t, lang, sel } = props;
  const measured = sel.measuredAt !== null;
  const move = sel.lastMove;
  const reason = move && Object.hasOwn(REASON, move.reason)
    ? t(REASON[move.reason as keyof typeof REASON])
    : move?.reason ?? "";
  return (
    <Card title={t("conn.edges.title")} id="edge-choice">
      <KeyValue
        id="edge-current"
        rows={[
          [
            t("conn.edges.current"),
            sel.current
              ? (
                <span id="edge-current-name">
                  <strong>{sel.current.name}</strong>
                  {sel.current.region ? ` (${sel.current.region})` : ""}
                </span>
              )
              : "—",
          ],
          [
            t("conn.edges.rtt"),
            <span id="edge-current-rtt">
              {sel.current ? rtt(t, sel.current.rttMs, measured) : "—"}
            </span>,
          ],
          [t("conn.edges.measured"), measured ? formatTime(sel.measuredAt, lang) : "—"],
          [
            t("conn.edges.last_move"),
            move
              ? (
                <span id="edge-last-move">
                  {t("conn.edges.move", { from: move.from ?? "—", to: move.to, reason })}
                  {" · "}
                  {formatTime(move.at, lang)}
                </span>
              )
              : "—",
          ],
        ]}
      />
      <h3>{t("conn.edges.alternatives")}</h3>
      <Table
        id="edge-alternatives"
        caption={t("conn.edges.alternatives")}
        head={[t("conn.edges.col.edge"), t("conn.edges.col.region"), t("conn.edges.col.rtt")]}
        empty={t("conn.edges.none")}
        rows={sel.alternatives.map((e) => [e.name, e.region || "—", rtt(t, e.rttMs, measured)])}
      />
      <p class="hint">{t("conn.edges.help")}</p>
    </Card>
  );
}
