// The compare page's seed-group view: draws the figures the server built (one colour per
// group), switches the bands between ±1 std and the 95% CI in place, and hides groups.
"use strict";

(function (cifarlab) {
  const page = JSON.parse(document.getElementById("groups-data").textContent);
  const state = { band: page.band, hidden: new Set() };

  // Each trace's meta names its group and kind (app/web/charts.py); a band trace also
  // names its band, and only the chosen band is shown.
  function isVisible(meta) {
    if (!meta) return true;
    if (state.hidden.has(String(meta.group))) return false;
    return meta.kind !== "band" || meta.band === state.band;
  }

  function draw() {
    Object.entries(page.figures).forEach(([id, figure]) => {
      const chart = document.getElementById(id);
      if (!chart) return;
      const data = figure.data.map((trace) => ({ ...trace, visible: isVisible(trace.meta) }));
      cifarlab.draw(chart, { ...figure, data });
    });
  }

  document.querySelectorAll('input[name="band"]').forEach((radio) => {
    radio.addEventListener("change", () => {
      if (!radio.checked) return;
      state.band = radio.value;
      draw();
    });
  });
  document.querySelectorAll("[data-toggle-group]").forEach((box) => {
    box.addEventListener("change", () => {
      if (box.checked) state.hidden.delete(box.dataset.toggleGroup);
      else state.hidden.add(box.dataset.toggleGroup);
      draw();
    });
  });
  const baseline = document.getElementById("baseline-form");
  baseline.querySelector("[data-baseline-apply]").hidden = true;
  document.getElementById("baseline").addEventListener("change", () => baseline.submit());
  draw();
})(window.cifarlab);
