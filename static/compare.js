// The compare page: draws the figures the server built (one colour per experiment on every
// chart), applies the toggles, folds the sections the reader closed last time, and polls
// /compare/live while an experiment is queued or running, updating charts in place and
// swapping the sections whose HTML changed.
"use strict";

(function (cifarlab) {
  const page = JSON.parse(document.getElementById("compare-data").textContent);
  const state = {
    figures: page.figures,
    matrices: page.matrices,
    matrixMode: page.matrixMode,
    active: page.active,
    sections: {},
    hiddenExperiments: new Set(),
    hiddenKinds: new Set(),
  };
  const byId = (id) => document.getElementById(id);

  // Each trace's meta names its experiment and kind (app/charts.py); marks sit on the
  // validation curve, so they follow its toggle.
  function isVisible(meta) {
    if (!meta) return true;
    if (state.hiddenExperiments.has(String(meta.experiment))) return false;
    return !state.hiddenKinds.has(meta.kind === "mark" ? "validation" : meta.kind);
  }

  function withToggles(figure) {
    const data = figure.data.map((trace) => ({ ...trace, visible: isVisible(trace.meta) }));
    return { ...figure, data };
  }

  function drawFigures() {
    Object.entries(state.figures).forEach(([id, figure]) => {
      const chart = byId(id);
      if (chart) cifarlab.draw(chart, withToggles(figure));
    });
  }

  function showCards() {
    document.querySelectorAll(".matrix-card, .diagnosis[data-experiment]").forEach((card) => {
      const hidden = state.hiddenExperiments.has(card.dataset.experiment);
      const shown = card.hidden && !hidden;
      card.hidden = hidden;
      const chart = card.querySelector(".js-plotly-plot");
      if (shown && chart) Plotly.Plots.resize(chart); // it had no size while hidden
    });
  }

  function drawMatrices() {
    Object.entries(state.matrices).forEach(([id, variants]) => {
      const chart = byId(id);
      if (chart) cifarlab.draw(chart, variants[state.matrixMode]);
    });
    showCards();
  }

  function differenceError(text) {
    const error = byId("difference-error");
    error.textContent = text;
    error.hidden = !text;
  }

  async function drawDifference() {
    const first = byId("difference-a");
    const second = byId("difference-b");
    if (!first || !second) return;
    if (first.value === second.value) {
      differenceError("Pick two different experiments.");
      return;
    }
    const query = new URLSearchParams({
      a: first.value, b: second.value, normalized: state.matrixMode === "normalized",
    });
    const response = await fetch(`${page.differenceUrl}?${query}`);
    const body = await response.json();
    differenceError(response.ok ? "" : body.detail);
    if (response.ok) cifarlab.draw(byId("difference-chart"), body);
  }

  function setupDifference() {
    ["difference-a", "difference-b"].forEach((id) => {
      const select = byId(id);
      if (select) select.addEventListener("change", drawDifference);
    });
  }

  // --- live --------------------------------------------------------------------------------

  function selections(ids) {
    return Object.fromEntries(ids.map((id) => [id, byId(id) && byId(id).value]));
  }

  function restore(values) {
    Object.entries(values).forEach(([id, value]) => {
      const select = byId(id);
      if (select && value && [...select.options].some((o) => o.value === value)) select.value = value;
    });
  }

  function applyLive(live) {
    const picked = selections(["difference-a", "difference-b"]);
    Object.entries(live.sections).forEach(([name, html]) => {
      if (html === state.sections[name]) return;
      state.sections[name] = html;
      cifarlab.replaceSection(byId(`section-${name}`), html);
      if (name === "matrices") {
        restore(picked);
        setupDifference();
        drawDifference();
      }
    });
    state.figures = live.figures;
    state.matrices = live.matrices;
    drawFigures();
    drawMatrices();
    state.active = live.active;
    byId("live").hidden = !live.active;
  }

  async function poll() {
    try {
      const response = await fetch(page.liveUrl, { headers: { Accept: "application/json" } });
      if (response.ok) applyLive(await response.json());
    } finally {
      if (state.active) window.setTimeout(poll, page.pollMilliseconds);
    }
  }

  // --- collapsible sections ----------------------------------------------------------------
  // Each <details data-collapsible> is open unless the reader closed it; the closed ones are
  // kept by name in localStorage, for every compare page. Live swaps replace the sections
  // inside a <details>, never the <details> itself, so a folded part stays folded.

  const CLOSED_KEY = "cifarlab.compare.closed";

  function closedParts() {
    try {
      const stored = JSON.parse(window.localStorage.getItem(CLOSED_KEY) || "[]");
      return new Set(Array.isArray(stored) ? stored : []);
    } catch (error) {
      return new Set(); // storage refused (private mode) or holds something else
    }
  }

  function remember(key, open) {
    const closed = closedParts();
    if (open) closed.delete(key);
    else closed.add(key);
    try {
      window.localStorage.setItem(CLOSED_KEY, JSON.stringify([...closed]));
    } catch (error) {
      // storage refused: the part folds for this visit only
    }
  }

  function setupCollapsible() {
    const closed = closedParts();
    document.querySelectorAll("details[data-collapsible]").forEach((part) => {
      if (closed.has(part.dataset.collapsible)) part.open = false;
      // Charts drawn while folded fill their cards once opened (Plotly's responsive config).
      part.addEventListener("toggle", () => remember(part.dataset.collapsible, part.open));
    });
  }

  // --- controls ----------------------------------------------------------------------------

  function onToggle(selector, set, key) {
    document.querySelectorAll(selector).forEach((box) => {
      box.addEventListener("change", () => {
        if (box.checked) set.delete(box.dataset[key]);
        else set.add(box.dataset[key]);
        drawFigures();
        showCards();
      });
    });
  }

  function onRadio(name, handler) {
    document.querySelectorAll(`input[name="${name}"]`).forEach((radio) => {
      radio.addEventListener("change", () => radio.checked && handler(radio.value));
    });
  }

  function setupControls() {
    onToggle("[data-toggle-experiment]", state.hiddenExperiments, "toggleExperiment");
    onToggle("[data-toggle-kind]", state.hiddenKinds, "toggleKind");
    onRadio("matrix-mode", (mode) => {
      state.matrixMode = mode;
      drawMatrices();
      drawDifference();
    });
    onRadio("metric-view", (view) => {
      byId("per-class-view").className = `metric-view-${view}`;
    });
    const showAll = byId("show-all-hyperparameters"); // absent when only imports are compared
    if (showAll) {
      showAll.addEventListener("change", (event) => {
        byId("hyperparameters").classList.toggle("show-all", event.target.checked);
      });
    }
    const baseline = byId("baseline-form");
    baseline.querySelector("[data-baseline-apply]").hidden = true;
    byId("baseline").addEventListener("change", () => baseline.submit());
  }

  setupCollapsible();
  setupControls();
  setupDifference();
  drawFigures();
  drawMatrices();
  if (page.difference) cifarlab.draw(byId("difference-chart"), page.difference);
  byId("live").hidden = !state.active;
  if (state.active) window.setTimeout(poll, page.pollMilliseconds);
})(window.cifarlab);
