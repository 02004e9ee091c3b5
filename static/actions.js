// Cancel, Retry and Delete on an experiment's page: buttons carrying data-action-url call the
// API with the page's CSRF token (a signed-in browser must prove the request is ours, see
// app/auth.py). What follows success is the button's data-after: "reload" (a retried run goes
// live again), "list" (a deleted one is gone), or nothing (the live stream shows the change).
"use strict";

(function () {
  const CSRF = document.querySelector('meta[name="csrf-token"]').content;
  const AFTER = {
    reload: () => window.location.reload(),
    list: () => window.location.assign("/"),
  };

  function showError(text) {
    const alert = document.getElementById("action-error");
    alert.textContent = text;
    alert.hidden = !text;
  }

  async function refusal(response) {
    try {
      return (await response.json()).detail || response.statusText;
    } catch {
      return `${response.status} ${response.statusText}`;
    }
  }

  async function run(button) {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    button.disabled = true;
    showError("");
    try {
      const response = await fetch(button.dataset.actionUrl, {
        method: button.dataset.method,
        headers: { "X-CSRF-Token": CSRF },
      });
      if (!response.ok) {
        showError(`${button.textContent.trim()} refused: ${await refusal(response)}`);
        button.disabled = false;
        return;
      }
      const after = AFTER[button.dataset.after];
      if (after) after();
    } catch (error) {
      showError(`${button.textContent.trim()} failed: ${error.message}`);
      button.disabled = false;
    }
  }

  document.querySelectorAll("[data-action-url]").forEach((button) => {
    button.addEventListener("click", () => run(button));
  });
})();
