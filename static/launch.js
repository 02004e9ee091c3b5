// Launch form: only the chosen model's hyperparameters are shown and submitted, the button
// says when the form launches a sweep, and the time the run would take is shown before launch.
// A disabled <fieldset> submits none of its inputs, so hiding a model also drops its values.
"use strict";

(function () {
  const select = document.querySelector("[data-model-select]");
  if (!select) return;

  function showModel(model) {
    // One fieldset per hyperparameter class; data-models lists the models that use it.
    document.querySelectorAll("fieldset[data-models]").forEach((fieldset) => {
      const chosen = fieldset.dataset.models.split(" ").includes(model);
      fieldset.hidden = !chosen;
      fieldset.disabled = !chosen;
    });
    document.querySelectorAll("[data-model-help]").forEach((help) => {
      help.hidden = help.dataset.modelHelp !== model;
    });
  }

  // A vary box with values, or more than one seed, launches a sweep: say how many trials.
  const button = document.getElementById("launch-button");
  const seeds = document.querySelector("[data-seeds]");

  function countValues(text) {
    return text.split(",").filter((piece) => piece.trim()).length;
  }

  function trialCount() {
    const boxes = [...document.querySelectorAll("fieldset[data-models]:not([disabled]) [data-vary]")];
    const axes = boxes.map((box) => countValues(box.value)).filter((count) => count > 0);
    const seedCount = Math.max(1, Number.parseInt(seeds.value, 10) || 1);
    const trials = axes.reduce((product, count) => product * count, 1) * seedCount;
    const sweep = axes.length > 0 || !["", "1"].includes(seeds.value.trim());
    return { sweep, trials };
  }

  function updateButton() {
    const { sweep, trials } = trialCount();
    button.textContent = sweep ? `Launch sweep of ${trials} trial${trials === 1 ? "" : "s"}` : "Launch";
  }

  // The estimate: the spec this form would launch, sent to POST /api/experiments/estimate
  // (which launches nothing) a moment after the last change; only the newest answer is shown.
  const estimateBox = document.getElementById("launch-estimate");
  const estimateLines = estimateBox.querySelector("[data-estimate-lines]");
  const estimateNote = estimateBox.querySelector("[data-estimate-note]");
  const estimateWarning = estimateBox.querySelector("[data-estimate-warning]");
  const maxParallel = document.getElementById("max_parallel");
  const ESTIMATE_DELAY_MS = 400;
  let estimateTimer = null;
  let estimateRequest = null;

  function chosenSpec() {
    // As the server reads the form (app/web/forms.py spec_from_form): an empty box keeps the
    // default. The name and tags do not change the time, so they are left out.
    const hyperparameters = {};
    document.querySelectorAll('fieldset[data-models]:not([disabled]) [name^="hp."]').forEach((input) => {
      const value = input.value.trim();
      if (value) hyperparameters[input.name.slice("hp.".length)] = value;
    });
    return { model: select.value, hyperparameters };
  }

  function showEstimate(lines, note, warning) {
    estimateLines.replaceChildren(
      ...lines.map((line) => {
        const item = document.createElement("li");
        item.textContent = line;
        return item;
      }),
    );
    estimateNote.textContent = note;
    estimateWarning.textContent = warning || "";
    estimateWarning.hidden = !warning;
  }

  async function updateEstimate() {
    if (estimateRequest) estimateRequest.abort();
    estimateRequest = new AbortController();
    const { sweep, trials } = trialCount();
    const query = new URLSearchParams();
    if (sweep) query.set("trials", String(trials));
    if (sweep && maxParallel.value.trim()) query.set("max_parallel", maxParallel.value.trim());
    try {
      const response = await fetch(`${estimateBox.dataset.estimateUrl}?${query}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(chosenSpec()),
        signal: estimateRequest.signal,
      });
      const answer = await response.json();
      if (!response.ok) {
        showEstimate([`No estimate until the settings are valid: ${answer.detail}`], "", null);
        return;
      }
      showEstimate(answer.devices.map((device) => device.summary), answer.note, answer.warning);
    } catch (error) {
      if (error.name !== "AbortError") showEstimate([`No estimate: ${error.message}`], "", null);
    }
  }

  function scheduleEstimate() {
    window.clearTimeout(estimateTimer);
    estimateTimer = window.setTimeout(updateEstimate, ESTIMATE_DELAY_MS);
  }

  function formChanged() {
    updateButton();
    scheduleEstimate();
  }

  // Switching to a model with other hyperparameters ("launch again with changes", then another
  // model) carries every setting the two share that was changed from the old model's default:
  // epochs 3 stays 3. Settings left at a default take the new model's (its image size, its
  // learning rate), and the note says what came along, what is new and what was left behind.
  const switchNote = document.getElementById("model-switch-note");

  function chosenFieldset() {
    return document.querySelector("fieldset[data-models]:not([disabled])");
  }

  function settingInputs(fieldset) {
    return [...fieldset.querySelectorAll("[data-default][name]")];
  }

  function shown(input) {
    // A select as its option reads ("Yes", not "true"); an empty box means "all" (images).
    const text = input.tagName === "SELECT" ? input.selectedOptions[0]?.textContent : input.value;
    return (text || "").trim() || "all";
  }

  function assign(target, value) {
    if (target.tagName === "SELECT" && ![...target.options].some((option) => option.value === value)) {
      return false;
    }
    target.value = value;
    return true;
  }

  function carrySettings(from, to) {
    const kept = [];
    const reset = [];
    const dropped = [];
    for (const input of settingInputs(from)) {
      const value = input.value.trim();
      const changed = value !== input.dataset.default;
      const target = to.querySelector(`[name="${CSS.escape(input.name)}"]`);
      if (!target) {
        if (changed && value) dropped.push(`${input.dataset.label} ${shown(input)}`);
      } else if (changed && assign(target, input.value)) {
        kept.push(`${input.dataset.label} ${shown(input)}`);
        for (let group = target.closest("details"); group; group = group.parentElement.closest("details")) {
          group.open = true;
        }
      } else if (target.value.trim() !== value && !input.hasAttribute("data-vary")) {
        reset.push(`${input.dataset.label} ${shown(target)} (was ${shown(input)})`);
      }
    }
    return { kept, reset, dropped };
  }

  function describeSwitch(fromTitle, toTitle, { kept, reset, dropped }) {
    const lines = [
      ["kept", `Kept from ${fromTitle}`, kept],
      ["defaults", `${toTitle}'s defaults`, reset],
      ["dropped", `Not used by ${toTitle}, left out`, dropped],
    ].filter(([, , items]) => items.length);
    const heading = document.createElement("strong");
    heading.textContent = `Switched from ${fromTitle} to ${toTitle}.`;
    const list = document.createElement("ul");
    for (const [key, title, items] of lines) {
      const item = document.createElement("li");
      item.dataset.switch = key;
      item.textContent = `${title}: ${items.join(", ")}.`;
      list.append(item);
    }
    switchNote.replaceChildren(heading, ...(lines.length ? [list] : []));
    switchNote.hidden = false;
  }

  function modelTitle(model) {
    const option = [...select.options].find((candidate) => candidate.value === model);
    return option ? option.textContent.trim() : model;
  }

  let currentModel = select.value;
  document.getElementById("launch-form").addEventListener("input", formChanged);
  select.addEventListener("change", () => {
    const before = chosenFieldset();
    showModel(select.value);
    const after = chosenFieldset();
    if (before && after && before !== after) {
      describeSwitch(modelTitle(currentModel), modelTitle(select.value), carrySettings(before, after));
    }
    currentModel = select.value;
    formChanged();
  });
  // The browser may restore another selection on "back"; follow it.
  showModel(select.value);
  updateButton();
  updateEstimate();
})();
