// jobtrail web UI: draws each <canvas data-chart> with Chart.js, and re-fetches the page every
// few seconds while it is visible, swapping in the new <main> (server-rendered numbers move as
// the pipeline runs; no client-side templates).
"use strict";

const charts = new Map();

function drawCharts(root) {
  for (const canvas of root.querySelectorAll("canvas.chart")) {
    const config = JSON.parse(canvas.dataset.chart);
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false },
                                   config.options || {});
    const legend = config.options.plugins && config.options.plugins.legend;
    if (legend && legend.labels && legend.labels.filter === "nonEmpty") {
      legend.labels.filter = (item) => Boolean(item.text);  // JSON cannot carry a function
    }
    charts.set(canvas.id, new Chart(canvas, config));
  }
}

function destroyCharts() {
  for (const chart of charts.values()) chart.destroy();
  charts.clear();
}

async function refresh() {
  if (document.hidden) return;
  try {
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (!response.ok || response.redirected) return;
    const next = new DOMParser().parseFromString(await response.text(), "text/html");
    const main = next.querySelector("main");
    if (!main) return;
    destroyCharts();
    document.querySelector("main").replaceWith(main);
    drawCharts(main);
    document.body.dataset.refreshedAt = new Date().toISOString();
  } catch (error) {
    console.warn("refresh failed, keeping the page as it is", error);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  drawCharts(document);
  const every = Number(document.body.dataset.refreshS || 0);
  if (every > 0) window.setInterval(refresh, every * 1000);
});
