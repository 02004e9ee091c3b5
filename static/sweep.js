// The sweep page: draws the figures the server built, sorts the trial table, sends ticked
// trials to /compare, and polls /sweeps/{id}/live every two seconds while a trial is queued
// or running, updating counts, cells and charts in place (the sort and the ticks stay).
"use strict";

(function (cifarlab) {
  const page = JSON.parse(document.getElementById("sweep-data").textContent);
  const byId = (id) => document.getElementById(id);
  const table = byId("trials");
  const body = table.querySelector("tbody");
  const boxes = () => [...body.querySelectorAll(".select-row")];
  const MIN = 2;
  const MAX = 12;
  const sort = { column: null, ascending: true };

  function drawFigures(figures) {
    Object.entries(figures).forEach(([id, figure]) => {
      const chart = byId(id);
      if (chart) cifarlab.draw(chart, figure);
    });
  }

  // --- counts, ETA, best trial ---------------------------------------------------------------

  function showProgress(data) {
    Object.entries(data.counts).forEach(([key, count]) => {
      const cell = document.querySelector(`[data-count="${key}"]`);
      if (cell) cell.textContent = count;
      const segment = document.querySelector(`[data-segment="${key}"]`);
      if (segment) segment.style.width = `${(100 * count) / (data.total || 1)}%`;
    });
    byId("eta").textContent = data.eta;
  }

  function showBest(best) {
    const target = byId("best-body");
    if (!best) return;
    // Built from text nodes: a trial's name is user text and is never parsed as HTML.
    const link = document.createElement("a");
    link.className = "row-link";
    link.id = "best-link";
    link.href = `/experiments/${best.id}`;
    link.textContent = best.name;
    const detail = document.createElement("span");
    detail.className = "muted";
    const metric = document.createElement("strong");
    metric.id = "best-metric";
    metric.textContent = best.metric;
    detail.append(` · ${page.metricTitle} `, metric);
    if (best.test) {
      const test = document.createElement("strong");
      test.textContent = best.test;
      detail.append(" · test accuracy ", test);
    }
    target.replaceChildren(link, " ", detail);
  }

  function showActions(data) {
    const cancel = byId("cancel-form");
    if (cancel) cancel.hidden = !data.active;
    const retry = byId("retry-form");
    if (retry) retry.hidden = !data.canRetry;
    const groups = byId("compare-groups");
    groups.hidden = !data.compare;
    if (data.compare) groups.href = data.compare.groups;
  }

  // --- the table -----------------------------------------------------------------------------

  function setCell(row, name, text, sortValue) {
    const cell = row.querySelector(`[data-cell="${name}"]`);
    if (!cell) return;
    cell.textContent = text;
    if (sortValue !== undefined) cell.dataset.sort = sortValue;
  }

  // The cells' text, as shown_cells words it in app/web/routes/sweep_pages.py.
  function cellText(trial) {
    return {
      epoch: trial.epochs ? `${trial.epoch}/${trial.epochs}` : "—",
      best: trial.best === null ? "" : trial.best.toFixed(4),
      test: trial.test === null ? "" : `${(trial.test * 100).toFixed(2)}%`,
    };
  }

  const sortValue = (value) => (value === null ? "" : String(value));

  function updateRow(trial) {
    const row = body.querySelector(`tr[data-trial="${trial.id}"]`);
    if (!row) return;
    const status = row.querySelector('[data-cell="status"]');
    status.dataset.sort = trial.status;
    const badge = status.querySelector(".badge");
    badge.className = `badge badge-${trial.status}`;
    badge.dataset.status = trial.status;
    badge.textContent = trial.status;
    status.querySelector('[data-cell="note"]').textContent = trial.note;
    const text = cellText(trial);
    ["epoch", "best", "test"].forEach((key) => setCell(row, key, text[key], sortValue(trial[key])));
  }

  // Numbers compare as numbers when both sides are numbers; empty cells go last either way.
  function compare(a, b) {
    if (a === "" || b === "") return a === b ? 0 : a === "" ? 1 : -1;
    const x = Number(a);
    const y = Number(b);
    const order = !Number.isNaN(x) && !Number.isNaN(y) ? x - y : a.localeCompare(b);
    return sort.ascending ? order : -order;
  }

  function sortRows() {
    if (sort.column === null) return;
    const index = sort.column + 1; // the checkbox column comes first
    const rows = [...body.rows];
    const value = (row) => row.cells[index].dataset.sort || "";
    rows.sort((a, b) => compare(value(a), value(b)) || a.dataset.trial - b.dataset.trial);
    body.append(...rows);
  }

  function setupSorting() {
    table.querySelectorAll("[data-sort-column]").forEach((button) => {
      button.addEventListener("click", () => {
        const column = Number(button.dataset.sortColumn);
        sort.ascending = sort.column === column ? !sort.ascending : true;
        sort.column = column;
        table.querySelectorAll("th").forEach((th) => th.removeAttribute("aria-sort"));
        button.closest("th").setAttribute("aria-sort", sort.ascending ? "ascending" : "descending");
        table.querySelectorAll("[data-sort-column]").forEach((other) => {
          other.classList.toggle("sort-active", other === button);
          other.querySelector(".sort-arrow").textContent =
            other === button ? (sort.ascending ? "▲" : "▼") : "↕";
        });
        sortRows();
      });
    });
  }

  // --- selection -> compare ------------------------------------------------------------------

  function updateSelection() {
    const ticked = boxes().filter((box) => box.checked);
    const button = byId("compare-button");
    button.disabled = ticked.length < MIN || ticked.length > MAX;
    button.textContent = ticked.length ? `Compare ${ticked.length} selected` : "Compare selected";
    byId("selection-count").textContent =
      ticked.length > MAX ? `Compare at most ${MAX} at a time.` : "";
    const all = byId("select-all");
    all.checked = ticked.length > 0 && ticked.length === boxes().length;
    all.indeterminate = ticked.length > 0 && ticked.length < boxes().length;
    boxes().forEach((box) => box.closest("tr").classList.toggle("selected", box.checked));
  }

  function setupSelection() {
    body.addEventListener("change", updateSelection);
    byId("select-all").addEventListener("change", (event) => {
      boxes().forEach((box) => (box.checked = event.target.checked));
      updateSelection();
    });
    byId("compare-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const ids = boxes().filter((box) => box.checked).map((box) => box.value);
      window.location.assign(`/compare?ids=${ids.join(",")}`);
    });
    updateSelection(); // the browser may restore ticks on "back"
  }

  // --- live ----------------------------------------------------------------------------------

  function apply(data) {
    showProgress(data);
    showBest(data.best);
    showActions(data);
    data.trials.forEach(updateRow);
    sortRows();
    drawFigures(data.figures);
  }

  async function poll() {
    try {
      const response = await fetch(page.liveUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const data = await response.json();
        apply(data);
        if (!data.active) {
          byId("live").hidden = true;
          return; // every trial finished: nothing more will change
        }
      }
    } catch (error) {
      // A dropped connection (the server restarting): try again at the next tick.
    }
    window.setTimeout(poll, page.pollMilliseconds);
  }

  drawFigures(page.figures);
  setupSorting();
  setupSelection();
  if (page.active) {
    byId("live").hidden = false;
    window.setTimeout(poll, page.pollMilliseconds);
  }
})(window.cifarlab);
