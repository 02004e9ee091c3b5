// The workers page: its tables come again from the server every few seconds (rendered and
// escaped there, templates/_workers.html), one request at a time, none while the tab is
// hidden.
"use strict";

(function () {
  const box = document.getElementById("workers-live");
  const live = document.getElementById("live");
  const every = Number(box.dataset.pollMilliseconds);

  async function refresh() {
    if (document.hidden) return;
    try {
      const response = await fetch(box.dataset.url, { headers: { Accept: "text/html" } });
      live.hidden = !response.ok;
      if (response.ok) box.innerHTML = await response.text();
    } catch {
      live.hidden = true;
    }
  }

  async function loop() {
    await refresh();
    window.setTimeout(loop, every);
  }

  live.hidden = false;
  window.setTimeout(loop, every);
})();
