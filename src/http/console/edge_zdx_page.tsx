/**
 * The edge console's Digital Experience page: the edge's score (mean of its
 * devices'), the worst devices and apps, the newest result of every device
 * and probe, and the mean time of each hop per hour across the fleet
 * (uPlot, the same chart code as the connector's ZDX tab).
 */
import type { ZdxFleet } from "../../edge/zdx.ts";
import type { ZdxHop } from "../../zdx/score.ts";
import type { Lang, Translate } from "../../../web/i18n/mod.ts";
import { Card, KeyValue, Table } from "../../../web/components.tsx";
import { formatTime } from "../../../web/format.ts";
import { Chart, ChartAssets, ms, scorePill } from "./connector_zdx_page.tsx";

const HOPS: ZdxHop[] = ["dns", "device_to_edge", "edge_to_internet", "server", "transfer"];

/** The Digital Experience page. */
export function EdgeZdxPage(props: { t: Translate; lang: Lang; f: ZdxFleet }) {
  const { t, lang, f } = props;
  const hopChart = {
    title: t("zdx.edge.hops"),
    xLabel: t("zdx.chart.time"),
    yLabel: "ms",
    yMax: null,
    series: HOPS.map((h) => ({
      name: t(`zdx.hop.${h}` as never),
      points: f.hops.map(([at, m]) => [at, m[h]]),
    })),
  };
  return (
    <>
      <ChartAssets />
      <div class="grid">
        <Card title={t("zdx.edge.fleet")}>
          <KeyValue
            id="zdx-fleet"
            rows={[
              [t("zdx.edge.score"), scorePill(t, f.edgeScore, "zdx-edge-score")],
              [t("zdx.edge.devices"), String(f.devices.length)],
              [t("zdx.edge.apps"), String(f.apps.length)],
            ]}
          />
          <p class="hint">{t("zdx.formula")}</p>
        </Card>
        <Card title={t("zdx.edge.worst_devices")}>
          <Table
            id="zdx-devices"
            caption={t("zdx.edge.worst_devices")}
            head={[t("zdx.edge.device"), t("zdx.score"), t("zdx.edge.worst_app")]}
            empty={t("zdx.edge.none")}
            rows={f.devices.slice(0, 10).map((d) => [
              d.hostname,
              scorePill(t, d.score),
              d.worstProbe,
            ])}
          />
        </Card>
        <Card title={t("zdx.edge.worst_apps")}>
          <Table
            id="zdx-apps"
            caption={t("zdx.edge.worst_apps")}
            head={[t("zdx.col.probe"), t("zdx.score"), t("zdx.edge.devices"), t("zdx.band.poor")]}
            empty={t("zdx.edge.none")}
            rows={f.apps.slice(0, 10).map((a) => [
              a.probe,
              scorePill(t, a.score),
              String(a.devices),
              String(a.poor),
            ])}
          />
        </Card>
      </div>
      <Card title={t("zdx.edge.hops")} wide>
        <Chart id="zdx-hops" label={t("zdx.edge.hops")} spec={hopChart} />
      </Card>
      <Card title={t("zdx.edge.paths")} wide>
        <Table
          id="zdx-paths"
          caption={t("zdx.edge.paths")}
          head={[
            t("zdx.edge.host"),
            t("zdx.edge.path_hops"),
            t("zdx.edge.path_last"),
            t("zdx.edge.path_slowest"),
            t("zdx.col.at"),
          ]}
          empty={t("zdx.edge.no_paths")}
          rows={f.paths.map((p) => [
            p.host,
            p.hops.map((h) => h.host).join(" → "),
            ms(p.hops.at(-1)?.avgMs),
            p.slowest ? `${p.slowest.hop}: ${p.slowest.host} (+${p.slowest.addedMs} ms)` : "—",
            formatTime(p.at, lang),
          ])}
        />
      </Card>
      <Card title={t("zdx.edge.latest")} wide>
        <Table
          id="zdx-latest"
          caption={t("zdx.edge.latest")}
          head={[
            t("zdx.edge.device"),
            t("zdx.col.probe"),
            t("zdx.score"),
            "TCP",
            "TTFB",
            t("zdx.col.total"),
            t("zdx.col.worst"),
            t("zdx.col.at"),
          ]}
          empty={t("zdx.edge.none")}
          rows={f.latest.map((r) => [
            r.hostname,
            r.probe,
            scorePill(t, r.score),
            ms(r.phases?.connect),
            ms(r.phases?.ttfb),
            ms(r.phases?.total),
            r.worstHop ? t(`zdx.hop.${r.worstHop}` as never) : "—",
            formatTime(r.at, lang),
          ])}
        />
      </Card>
    </>
  );
}
