// Launch form: only the chosen model's hyperparameters are shown and submitted.
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

  select.addEventListener("change", () => showModel(select.value));
  // The browser may restore another selection on "back"; follow it.
  showModel(select.value);
})();
