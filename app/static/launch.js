// Launch form: only the chosen model's hyperparameters are shown and submitted.
// A disabled <fieldset> submits none of its inputs, so hiding a model also drops its values.
"use strict";

(function () {
  const select = document.querySelector("[data-model-select]");
  if (!select) return;

  function showModel(model) {
    document.querySelectorAll("fieldset[data-model]").forEach((fieldset) => {
      const chosen = fieldset.dataset.model === model;
      fieldset.hidden = !chosen;
      fieldset.disabled = !chosen;
    });
    document.querySelectorAll("[data-model-help]").forEach((help) => {
      help.hidden = help.dataset.modelHelp !== model;
    });
  }

  select.addEventListener("change", () => showModel(select.value));
  // The browser may restore another selection on "back"; follow it.
  showModel(select.value);
})();
