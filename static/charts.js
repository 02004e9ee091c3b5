// Shared chart drawing: every page's Plotly config, and the server-rendered figures a page
// embeds as <script type="application/json" data-chart="ELEMENT-ID">, drawn on load.
"use strict";

window.cifarlab = window.cifarlab || {};

(function (cifarlab) {
  // The modebar stays: its camera button saves the chart as PNG (figure.config names it).
  // plotly.js 4 also shows "Share chart...", which uploads the chart to cloud.plotly.com: a
  // run's figures never leave the server they were read from, so it is off, for every chart.
  const PLOT_CONFIG = {
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ["lasso2d", "select2d", "autoScale2d"],
  };

  function plotConfig(figure) {
    return { ...PLOT_CONFIG, ...(figure.config || {}), showSendToCloud: false };
  }

  // A legend pinned to the bottom of the chart (yref "container", as the compare curves have)
  // wraps to as many rows as the width needs: the bottom margin is set to its measured height
  // over the margin the server gave (ticks and axis title), after every draw and resize, so
  // the legend never covers the axis. Within a few pixels it is left alone, which ends the
  // relayout -> afterplot round.
  function fitLegend(target) {
    const legend = target.querySelector("g.legend");
    const base = Number(target.dataset.legendBase);
    if (!legend || !base) return;
    const wanted = Math.ceil(base + legend.getBoundingClientRect().height);
    if (Math.abs(target.layout.margin.b - wanted) > 4) Plotly.relayout(target, { "margin.b": wanted });
  }

  function bottomLegend(layout) {
    return layout.showlegend && layout.legend && layout.legend.yref === "container";
  }

  // Plotly.react updates a chart in place (keeping zoom), or draws it the first time. Curve
  // figures go through the page's curve controls (curve_controls.js) where it has them.
  function draw(target, figure) {
    const fresh = !target.data;
    const controls = cifarlab.curveControls;
    const shown = controls ? controls.prepare(target, figure) : figure;
    const drawn = Plotly.react(target, shown.data, shown.layout, plotConfig(figure));
    if (controls) drawn.then(() => controls.watch(target));
    if (bottomLegend(shown.layout)) {
      target.dataset.legendBase = shown.layout.margin.b;
      drawn.then(() => fitLegend(target));
      if (fresh) target.on("plotly_afterplot", () => fitLegend(target));
    }
    if (fresh && target.dataset.gallery && cifarlab.attachGallery) {
      drawn.then(() => cifarlab.attachGallery(target));
    }
  }

  function drawCharts(root) {
    root.querySelectorAll('script[type="application/json"][data-chart]').forEach((script) => {
      const target = document.getElementById(script.dataset.chart);
      if (target) draw(target, JSON.parse(script.textContent));
    });
  }

  // Swap a section for the server's fresh rendering of it (escaped by Jinja, so no user text
  // is ever parsed here unescaped), releasing the old charts first, then draw its figures.
  function replaceSection(container, html) {
    container.querySelectorAll(".js-plotly-plot").forEach((chart) => Plotly.purge(chart));
    container.innerHTML = html;
    drawCharts(container);
  }

  cifarlab.draw = draw;
  cifarlab.drawCharts = drawCharts;
  cifarlab.replaceSection = replaceSection;
  drawCharts(document);
})(window.cifarlab);
