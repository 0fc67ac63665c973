// Draws every canvas[data-chart] with Chart.js: on the first load, and on
// each page htmx swaps in (hx-boost). The data is the server's, in the
// attribute; nothing is fetched. No animation, so what is drawn is final.
(function () {
  "use strict";
  const palette = ["#2f5bd3", "#e0892b", "#2e9d6a", "#b42318", "#7a4cc2", "#5b6478", "#c2a21b", "#1b9bb3"];

  function config(spec) {
    const round = spec.kind === "doughnut";
    const stacked = spec.kind === "stacked";
    return {
      type: round ? "doughnut" : spec.kind === "line" ? "line" : "bar",
      data: {
        labels: spec.labels,
        datasets: spec.series.map((series, i) => ({
          label: series.name,
          data: series.values,
          backgroundColor: round ? spec.labels.map((_, j) => palette[j % palette.length]) : palette[i % palette.length],
          borderColor: round ? "#fff" : palette[i % palette.length],
          pointRadius: spec.labels.length > 60 ? 0 : 2,
          tension: 0.2,
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: round ? {} : {
          x: { stacked, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } },
          y: { stacked, beginAtZero: true },
        },
        plugins: { legend: { display: round || spec.series.length > 1, position: "bottom" } },
      },
    };
  }

  function draw(root) {
    if (typeof Chart === "undefined" || !root.querySelectorAll) return;
    for (const canvas of root.querySelectorAll("canvas[data-chart]")) {
      if (Chart.getChart(canvas)) continue;
      try {
        new Chart(canvas, config(JSON.parse(canvas.dataset.chart)));
      } catch (e) {
        canvas.replaceWith(document.createTextNode("This chart cannot be drawn: " + e.message));
      }
    }
  }

  document.addEventListener("DOMContentLoaded", () => draw(document));
  document.addEventListener("htmx:load", (event) => draw(event.detail.elt));
})();
