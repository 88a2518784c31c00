/**
 * The connector console's ZDX tab: the device's digital-experience score,
 * each probe's latest result with its phase breakdown and the hop whose
 * time grew, and the last 24 hours of scores as a uPlot chart (vendored
 * under web/static; drawn by web/static/zdx_chart.js from a JSON block,
 * since the console's CSP allows no inline script).
 */
import type { ZdxStatus } from "../../zdx/runner.ts";
import { type Band, band } from "../../zdx/score.ts";
import type { Lang, Translate } from "../../../web/i18n/mod.ts";
import { Card, KeyValue, Pill, Table, type Tone } from "../../../web/components.tsx";
import { formatTime } from "../../../web/format.ts";

const TONE: Record<Band, Tone> = { good: "ok", okay: "warn", poor: "bad" };
const DAY_MS = 24 * 3600 * 1000;

/** A score with its band, as a pill ("—" without a score). */
export function scorePill(t: Translate, score: number | null, id?: string) {
  if (score === null) return <span id={id}>—</span>;
  const b = band(score);
  return <Pill tone={TONE[b]} id={id}>{`${score} · ${t(`zdx.band.${b}` as never)}`}</Pill>;
}

/** The chart's data: a JSON block the browser never runs (type application/json). */
export function dataBlock(json: string) {
  return (
    <script type="application/json" class="zdx-data" dangerouslySetInnerHTML={{ __html: json }} />
  );
}

function probeName(name: string, url: string) {
  return <span title={url}>{name}</span>;
}

/** Milliseconds as text ("—" when absent). */
export const ms = (x: number | undefined) => (x === undefined ? "—" : `${Math.round(x)} ms`);

/** uPlot and our chart script; a page with a ".zdx-chart" includes them once. */
export function ChartAssets() {
  return (
    <>
      <link rel="stylesheet" href="/static/uPlot-1.6.32.min.css" />
      <script src="/static/uPlot-1.6.32.iife.min.js"></script>
      <script src="/static/zdx_chart.js"></script>
    </>
  );
}

/** A chart box: the JSON spec (title, labels, yMax, series of [ms, value] points) and the plot. */
export function Chart(props: { id: string; label: string; spec: unknown }) {
  // "</" cannot end the JSON block early: names and URLs are the admin's text.
  const json = JSON.stringify(props.spec).replace(/</g, "\\u003c");
  return (
    <div class="zdx-chart" id={props.id}>
      {dataBlock(json)}
      <div class="zdx-plot" role="img" aria-label={props.label}></div>
    </div>
  );
}

/** The ZDX tab. */
export function ZdxPage(props: { t: Translate; lang: Lang; z: ZdxStatus; now: number }) {
  const { t, lang, z, now } = props;
  const chart = {
    title: t("zdx.chart"),
    xLabel: t("zdx.chart.time"),
    yLabel: t("zdx.chart.score"),
    yMax: 100,
    series: z.probes.map((p) => ({
      name: p.name,
      points: p.series.filter(([at]) => now - at <= DAY_MS),
    })),
  };
  return (
    <>
      <ChartAssets />
      <div class="grid">
        <Card title={t("zdx.device")}>
          <KeyValue
            id="zdx-device"
            rows={[
              [t("zdx.score"), scorePill(t, z.deviceScore, "zdx-device-score")],
              [t("zdx.probes"), String(z.probes.length)],
            ]}
          />
          <p class="hint">{t("zdx.formula")}</p>
        </Card>
      </div>
      <Card title={t("zdx.results")} wide>
        <Table
          id="zdx-table"
          caption={t("zdx.results")}
          head={[
            t("zdx.col.probe"),
            t("zdx.score"),
            "DNS",
            "TCP",
            "TLS",
            "TTFB",
            t("zdx.col.total"),
            t("zdx.col.status"),
            t("zdx.col.worst"),
            t("zdx.col.at"),
          ]}
          empty={t("zdx.none")}
          rowIds={z.probes.map((p) => `zdx-${p.name.replace(/[^A-Za-z0-9_-]/g, "_")}`)}
          rows={z.probes.map((p) => {
            const r = p.latest;
            return [
              probeName(p.name, p.url),
              scorePill(t, r?.score ?? null),
              ms(r?.phases?.dns),
              ms(r?.phases?.connect),
              ms(r?.phases?.tls),
              ms(r?.phases?.ttfb),
              ms(r?.phases?.total),
              r ? (r.status === null ? (r.error ?? "—") : String(r.status)) : "—",
              r?.worstHop ? t(`zdx.hop.${r.worstHop}` as never) : "—",
              r ? formatTime(r.at, lang) : "—",
            ];
          })}
        />
      </Card>
      <Card title={t("zdx.direct")} wide>
        <p class="hint">{t("zdx.direct.hint")}</p>
        <Table
          id="zdx-direct-table"
          caption={t("zdx.direct")}
          head={[
            t("zdx.col.probe"),
            t("zdx.col.via"),
            "DNS",
            "TCP",
            "TLS",
            "TTFB",
            t("zdx.col.total"),
            t("zdx.col.status"),
            t("zdx.col.tunnel_cost"),
          ]}
          empty={t("zdx.none")}
          rowIds={z.probes.map((p) => `zdx-direct-${p.name.replace(/[^A-Za-z0-9_-]/g, "_")}`)}
          rows={z.probes.map((p) => {
            const d = p.latest?.direct ?? null;
            const tunnelled = p.latest?.phases?.total;
            const cost = d?.phases && tunnelled !== undefined
              ? `${tunnelled - d.phases.total >= 0 ? "+" : "−"}${
                Math.round(Math.abs(tunnelled - d.phases.total))
              } ms`
              : "—";
            return [
              probeName(p.name, p.url),
              d?.via ?? "—",
              ms(d?.phases?.dns),
              ms(d?.phases?.connect),
              ms(d?.phases?.tls),
              ms(d?.phases?.ttfb),
              ms(d?.phases?.total),
              d ? (d.status === null ? (d.error ?? "—") : String(d.status)) : t("zdx.direct.none"),
              cost,
            ];
          })}
        />
      </Card>
      <Card title={t("zdx.chart")} wide>
        <Chart id="zdx-chart" label={t("zdx.chart")} spec={chart} />
      </Card>
    </>
  );
}
