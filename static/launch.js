// Launch form: only the chosen model's hyperparameters are shown and submitted, and the
// button says when the form launches a sweep.
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

  function updateButton() {
    const boxes = [...document.querySelectorAll("fieldset[data-models]:not([disabled]) [data-vary]")];
    const axes = boxes.map((box) => countValues(box.value)).filter((count) => count > 0);
    const seedCount = Math.max(1, Number.parseInt(seeds.value, 10) || 1);
    const trials = axes.reduce((product, count) => product * count, 1) * seedCount;
    const sweep = axes.length > 0 || !["", "1"].includes(seeds.value.trim());
    button.textContent = sweep ? `Launch sweep of ${trials} trial${trials === 1 ? "" : "s"}` : "Launch";
  }

  document.getElementById("launch-form").addEventListener("input", updateButton);
  select.addEventListener("change", () => {
    showModel(select.value);
    updateButton();
  });
  // The browser may restore another selection on "back"; follow it.
  showModel(select.value);
  updateButton();
})();
