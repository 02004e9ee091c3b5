// The experiments list: the column chooser and the row density (both remembered in
// localStorage), the column filter, sweep groups that fold, and the selection bar, stuck to
// the window's bottom: ticked rows go to /compare (2 to 12 side by side, more as seed groups)
// or get a tag, a cancel or a delete through the bulk API.
"use strict";

(function () {
  const MIN = 2;
  const MAX = 12;
  const COLUMNS_KEY = "cifarlab.list.columns";
  const RESULT_KEY = "cifarlab.list.bulk-result";

  // --- columns: the URL's `cols` is what the server draws; the browser remembers the last one.
  function withParams(changes) {
    const url = new URL(window.location.href);
    for (const [name, value] of Object.entries(changes)) {
      if (value) url.searchParams.set(name, value);
      else url.searchParams.delete(name);
    }
    url.searchParams.delete("page");
    return url.pathname + url.search;
  }

  const current = new URL(window.location.href).searchParams;
  const remembered = window.localStorage.getItem(COLUMNS_KEY);
  if (current.has("cols")) {
    window.localStorage.setItem(COLUMNS_KEY, current.get("cols"));
  } else if (remembered) {
    window.location.replace(withParams({ cols: remembered }));
    return;
  }

  document.querySelectorAll("[data-column-choice]").forEach((box) => {
    box.addEventListener("change", () => {
      const chosen = [...document.querySelectorAll("[data-column-choice]:checked")].map(
        (choice) => choice.value,
      );
      window.localStorage.setItem(COLUMNS_KEY, chosen.join(","));
      window.location.assign(withParams({ cols: chosen.join(",") }));
    });
  });

  // --- the column filter: the form sends it as `hp.learning_rate=…` or `….min=…`.
  const filterForm = document.querySelector("form.filters");
  if (filterForm) {
    filterForm.addEventListener("submit", () => {
      const name = document.getElementById("column-filter-name").value;
      const operator = document.getElementById("column-filter-operator").value;
      const value = document.getElementById("column-filter-value").value.trim();
      if (!name || !value) return;
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = operator === "eq" ? name : `${name}.${operator}`;
      input.value = value;
      filterForm.append(input);
    });
  }

  // --- density: compact rows (one line each) or comfortable ones, remembered in this browser.
  const DENSITY_KEY = "cifarlab.list.density";
  const densityToggle = document.getElementById("density-toggle");
  const table = document.getElementById("experiments");

  function showDensity(compact) {
    if (table) table.classList.toggle("compact", compact);
    densityToggle.setAttribute("aria-pressed", String(compact));
  }

  if (densityToggle) {
    showDensity(window.localStorage.getItem(DENSITY_KEY) === "compact");
    densityToggle.addEventListener("click", () => {
      const compact = densityToggle.getAttribute("aria-pressed") !== "true";
      window.localStorage.setItem(DENSITY_KEY, compact ? "compact" : "comfortable");
      showDensity(compact);
    });
  }

  // --- sweep groups fold under their header row.
  document.querySelectorAll("[data-group-toggle]").forEach((toggle) => {
    toggle.addEventListener("click", () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = open ? "▾" : "▸";
      toggle.closest("tbody").querySelectorAll("tr:not(.group-row)").forEach((row) => {
        row.hidden = !open;
      });
    });
  });

  // --- what the last bulk action did, said once on the page it reloaded into (an action
  // that deleted every row shown reloads into the empty page, which has no selection bar).
  const result = document.getElementById("bulk-result");

  function showResult(text) {
    result.textContent = text;
    result.hidden = !text;
  }

  const done = window.sessionStorage.getItem(RESULT_KEY);
  window.sessionStorage.removeItem(RESULT_KEY);
  if (done && result) showResult(done);

  // --- the selection bar.
  const form = document.getElementById("compare-form");
  if (!form) return;
  const button = document.getElementById("compare-button");
  const count = document.getElementById("selection-count");
  const all = document.getElementById("select-all");
  const boxes = [...document.querySelectorAll(".select-row")];
  const bulkButtons = [...document.querySelectorAll("[data-bulk]")];
  const CSRF = document.querySelector('meta[name="csrf-token"]').content;

  function ticked() {
    return boxes.filter((box) => box.checked).map((box) => Number(box.value));
  }

  function update() {
    const n = ticked().length;
    button.disabled = n < MIN;
    button.textContent =
      n > MAX ? `Compare ${n} as seed groups` : n ? `Compare ${n} selected` : "Compare selected";
    count.textContent =
      n < MIN
        ? `Tick ${MIN} to ${MAX} experiments to compare them side by side, or more to compare them as seed groups.`
        : `${n} selected`;
    bulkButtons.forEach((bulkButton) => (bulkButton.disabled = n === 0));
    all.checked = n === boxes.length;
    all.indeterminate = n > 0 && n < boxes.length;
    boxes.forEach((box) => box.closest("tr").classList.toggle("selected", box.checked));
    document.getElementById("selection-bar").classList.toggle("has-selection", n > 0);
  }

  // ids=1,2,3 rather than the form's ids=1&ids=2&ids=3: the URL people share and bookmark.
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const ids = ticked();
    const grouped = ids.length > MAX ? "&group=seed" : "";
    window.location.assign(`/compare?ids=${ids.join(",")}${grouped}`);
  });
  boxes.forEach((box) => box.addEventListener("change", update));
  all.addEventListener("change", () => {
    boxes.forEach((box) => (box.checked = all.checked));
    update();
  });

  function summary(action, results) {
    const counts = {};
    for (const item of results) counts[item.outcome] = (counts[item.outcome] || 0) + 1;
    const parts = Object.entries(counts).map(([outcome, n]) => `${n} ${outcome.replace("_", " ")}`);
    const refused = results.filter((item) => !["done", "unchanged"].includes(item.outcome));
    const why = refused.slice(0, 3).map((item) => `#${item.id}: ${item.detail}`);
    return `${action}: ${parts.join(", ")}${why.length ? ` (${why.join("; ")})` : ""}`;
  }

  async function bulk(actionButton) {
    const action = actionButton.dataset.bulk;
    const body = { ids: ticked(), action };
    if (action === "tag") {
      body.tag = document.getElementById("bulk-tag").value.trim();
      if (!body.tag) {
        showResult("Type the tag to add first.");
        return;
      }
    }
    if (actionButton.dataset.confirm && !window.confirm(actionButton.dataset.confirm)) return;
    bulkButtons.forEach((bulkButton) => (bulkButton.disabled = true));
    try {
      const response = await fetch("/api/experiments/bulk", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
        body: JSON.stringify(body),
      });
      const answer = await response.json();
      if (!response.ok) {
        showResult(`${actionButton.textContent.trim()} refused: ${answer.detail}`);
        update();
        return;
      }
      // The rows change (tags, statuses, deleted rows): draw the page again, saying what happened.
      window.sessionStorage.setItem(RESULT_KEY, summary(actionButton.textContent.trim(), answer.results));
      window.location.reload();
    } catch (error) {
      showResult(`${actionButton.textContent.trim()} failed: ${error.message}`);
      update();
    }
  }

  bulkButtons.forEach((bulkButton) => bulkButton.addEventListener("click", () => bulk(bulkButton)));
  update(); // the browser may restore ticks on "back"
})();
