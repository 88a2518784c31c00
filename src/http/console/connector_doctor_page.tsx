/**
 * The doctor in the connector console (More ▸ Run the doctor): the same
 * report as `portcullis doctor` and GET /api/v1/diagnose, one row per hop
 * with its verdict, what was seen and the fix. Hop names, verdict words and
 * headings are translated; evidence and fixes are the doctor's own
 * sentences (they quote addresses, certificate names and sizes).
 */
import type { DoctorReport, HopStatus, Verdict } from "../../diag/doctor/mod.ts";
import type { Lang, Translate } from "../../../web/i18n/mod.ts";
import { Card, Flash, Pill, Table, type Tone } from "../../../web/components.tsx";
import { formatTime } from "../../../web/format.ts";

const TONE: Record<HopStatus, Tone> = {
  ok: "ok",
  warn: "warn",
  fault: "bad",
  unknown: "idle",
  skipped: "idle",
};

function verdictPill(t: Translate, v: Verdict) {
  return <Pill tone={TONE[v.status]}>{t(`doctor.status.${v.status}` as never)}</Pill>;
}

function evidenceCell(v: Verdict) {
  return (
    <span>
      {v.evidence} <code class="cause">{v.cause}</code>
    </span>
  );
}

/** The doctor page. */
export function DoctorPage(props: { t: Translate; lang: Lang; r: DoctorReport }) {
  const { t, lang, r } = props;
  const tone: Tone = r.overall === "healthy" ? "ok" : r.overall === "fault" ? "bad" : "warn";
  const summary = r.overall === "healthy"
    ? t("doctor.healthy")
    : r.overall === "fault"
    ? t("doctor.fault", { hop: t(`doctor.hop.${r.firstFault}` as never) })
    : t("doctor.unknown");
  return (
    <>
      <Flash tone={tone}>
        <span id="doctor-summary">{summary}</span>
      </Flash>
      <Card
        title={t("doctor.title")}
        wide
        actions={
          <a href="/doctor" class="btn btn-secondary" id="doctor-again">{t("doctor.again")}</a>
        }
      >
        <p class="hint">
          {t("doctor.checked", {
            time: formatTime(Date.parse(r.checkedAt), lang),
            ms: r.durationMs,
          })}
        </p>
        <Table
          id="doctor-table"
          caption={t("doctor.title")}
          head={[
            t("doctor.col.hop"),
            t("doctor.col.verdict"),
            t("doctor.col.evidence"),
            t(
              "doctor.col.fix",
            ),
          ]}
          empty="—"
          rowIds={r.verdicts.map((v) => `hop-${v.hop}`)}
          rows={r.verdicts.map((v) => [
            t(`doctor.hop.${v.hop}` as never),
            verdictPill(t, v),
            evidenceCell(v),
            v.fix && (v.status === "fault" || v.status === "warn") ? v.fix : "—",
          ])}
        />
      </Card>
    </>
  );
}
