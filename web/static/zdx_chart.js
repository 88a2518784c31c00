// This file runs in the browser, where `window` is the global object.
// deno-lint-ignore-file no-window
// Digital-experience charts: every element with class "zdx-chart" holds a
// JSON block (type application/json, never executed) with the series to draw
// and the translated labels; uPlot (vendored beside this file) draws them.
(function () {
  "use strict";
  const COLOURS = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2"];

  function draw(box) {
    if (box.dataset.drawn === "1" || !window.uPlot) return;
    const src = box.querySelector("script.zdx-data");
    if (!src) return;
    const spec = JSON.parse(src.textContent || "{}");
    const times = [...new Set(spec.series.flatMap((s) => s.points.map((p) => p[0])))].sort(
      (a, b) => a - b,
    );
    const data = [times.map((t) => t / 1000)];
    for (const s of spec.series) {
      const at = new Map(s.points.map((p) => [p[0], p[1]]));
      data.push(times.map((t) => (at.has(t) ? at.get(t) : null)));
    }
    const width = Math.max(320, box.clientWidth || 800);
    const opts = {
      title: spec.title,
      width,
      height: 260,
      scales: {
        ...(spec.yMax ? { y: { range: [0, spec.yMax] } } : {}),
        // One point (a first hour): an hour either side instead of a range of years.
        ...(times.length < 2 && times.length
          ? { x: { time: true, range: [data[0][0] - 3600, data[0][0] + 3600] } }
          : {}),
      },
      axes: [{}, { label: spec.yLabel }],
      series: [
        { label: spec.xLabel },
        ...spec.series.map((s, i) => ({
          label: s.name,
          stroke: COLOURS[i % COLOURS.length],
          width: 2,
          spanGaps: true,
        })),
      ],
    };
    box.dataset.drawn = "1";
    new window.uPlot(opts, data, box.querySelector(".zdx-plot"));
  }

  function drawAll() {
    document.querySelectorAll(".zdx-chart").forEach(draw);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
  document.addEventListener("htmx:afterSettle", drawAll);
})();
