// Live experiment page: charts.js has drawn the server-rendered figures; this follows the
// SSE stream (app/routes/events.py), which also carries the diagnostics and evaluation
// sections rendered by the server. Formatting mirrors the Jinja filters in app/routes/pages.py so live and
// reloaded pages match. The Cancel, Retry and Delete buttons (actions.js) exist only for the
// experiment's owner or an admin; this shows each in the states where the API accepts it.
"use strict";

(function (cifarlab) {
  const DASH = "\u2014";
  const FINISHED = ["succeeded", "failed", "cancelled", "pruned"];
  const page = JSON.parse(document.getElementById("experiment-data").textContent);
  // Each chart's traces in order, by the epoch field each plots (LIVE_TRACES in app/charts.py).
  const TRACES = page.traces;
  const CURVE_CHARTS = Object.keys(TRACES);
  const state = {
    status: document.getElementById("status").dataset.status,
    lastEpoch: page.lastEpoch,
    lastPhase: page.lastPhase,
    seconds: page.seconds,
    imagesPerSecond: page.imagesPerSecond,
    hasEvaluation: page.hasEvaluation,
  };

  function formatDatetime(iso) {
    if (!iso) return DASH;
    // SQLite returns naive timestamps; every stored time is UTC.
    const hasZone = /(Z|[+-]\d\d:?\d\d)$/i.test(iso);
    const date = new Date(hasZone ? iso : iso + "Z");
    return date.toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined) return DASH;
    const total = Math.round(seconds);
    const hours = Math.floor(total / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const secs = String(total % 60).padStart(2, "0");
    if (hours) return `${hours}h ${String(minutes).padStart(2, "0")}m ${secs}s`;
    return minutes ? `${minutes}m ${secs}s` : `${total % 60}s`;
  }

  const formatInteger = (value) => value.toLocaleString("en-US");
  const orDash = (format) => (value) => (value === null || value === undefined ? DASH : format(value));
  const FACTS = {
    status: orDash(String),
    created_at: formatDatetime,
    started_at: formatDatetime,
    finished_at: formatDatetime,
    training_seconds: formatDuration,
    wall_clock_seconds: formatDuration,
    worker_host: orDash(String),
    device: orDash(String),
    parameters: orDash(formatInteger),
    trainable_parameters: orDash(formatInteger),
    test_accuracy: orDash((value) => `${(value * 100).toFixed(2)}%`),
    macro_f1: orDash((value) => value.toFixed(3)),
    attempts: String,
    interruption: orDash(String),
    stop_reason: orDash(String),
  };

  // format_mean_last in app/routes/pages.py: the mean over epochs and the last epoch's value.
  function formatMeanLast(values, digits, unit) {
    const known = values.filter((value) => value !== null && value !== undefined);
    if (!known.length) return DASH;
    const mean = known.reduce((sum, value) => sum + value, 0) / known.length;
    const options = { minimumFractionDigits: digits, maximumFractionDigits: digits };
    const format = (value) => value.toLocaleString("en-US", options) + unit;
    return `${format(mean)} mean \u00b7 ${format(known[known.length - 1])} last`;
  }

  function updateSpeed(row) {
    state.seconds.push(row.seconds);
    state.imagesPerSecond.push(row.images_per_second);
    // Training time is the sum of the epochs' seconds, as Experiment.training_seconds.
    const known = state.seconds.filter((value) => value !== null && value !== undefined);
    const cells = {
      seconds_per_epoch: formatMeanLast(state.seconds, 1, " s"),
      images_per_second: formatMeanLast(state.imagesPerSecond, 0, ""),
      training_seconds: known.length ? formatDuration(known.reduce((a, b) => a + b, 0)) : DASH,
    };
    Object.entries(cells).forEach(([key, text]) => {
      document.querySelector(`#facts [data-fact="${key}"]`).textContent = text;
    });
  }

  function updateStatus(status) {
    const badge = document.getElementById("status");
    badge.textContent = status;
    badge.className = `badge badge-${status}`;
    badge.dataset.status = status;
  }

  function updateFacts(experiment) {
    Object.entries(FACTS).forEach(([key, format]) => {
      const cell = document.querySelector(`#facts [data-fact="${key}"]`);
      if (cell) cell.textContent = format(experiment[key]);
    });
    document.getElementById("attempts-row").hidden = experiment.attempts <= 1;
    document.getElementById("interruption-row").hidden = !experiment.interruption;
    document.getElementById("stop-reason-row").hidden = !experiment.stop_reason;
    const alert = document.getElementById("error");
    alert.hidden = !(experiment.status === "failed" && experiment.error);
    alert.querySelector("[data-fact=error]").textContent = experiment.error || "";
  }

  function updateQueuePosition(position) {
    const note = document.getElementById("queue-position");
    note.hidden = position === null || position === undefined;
    note.querySelector("[data-queue-position]").textContent = note.hidden ? "" : String(position);
  }

  function updateActions(status) {
    const finished = FINISHED.includes(status);
    const shown = {
      cancel: !finished,
      retry: status === "failed" || status === "cancelled",
      delete: finished,
      download: status === "succeeded",
    };
    Object.entries(shown).forEach(([id, show]) => {
      const element = document.getElementById(id);
      if (element) element.hidden = !show;
    });
  }

  // The phase, the estimate and the resource readings: words the server wrote (run_outlook in
  // app/web/experiment_sections.py), carried by progress events and an experiment event's outlook.
  function updateOutlook(progress) {
    document.getElementById("phase").textContent = progress.phase;
    document.getElementById("progress-detail").textContent = progress.detail;
    const remaining = document.getElementById("remaining");
    remaining.hidden = !progress.remaining;
    remaining.textContent = progress.remaining ? `\u00b7 ${progress.remaining}` : "";
    const resources = document.getElementById("resources");
    resources.hidden = !progress.resources.length;
    resources.replaceChildren(
      ...progress.resources.map((line) => {
        const item = document.createElement("li");
        item.textContent = line;
        return item;
      }),
    );
  }

  // A progress event, or the same fields of an experiment event; the status is the last one seen.
  function updateProgress(progress) {
    const { current_epoch: current, total_epochs: total, epoch_progress: fraction } = progress;
    const done = current > 0 ? current - 1 + fraction : 0;
    const overall = state.status === "succeeded" ? 1 : total ? Math.min(done / total, 1) : 0;
    const box = document.getElementById("progress");
    box.dataset.currentEpoch = current;
    box.dataset.totalEpochs = total;
    box.dataset.epochProgress = fraction;
    const track = box.querySelector(".progress-track");
    track.setAttribute("aria-valuenow", String(Math.round(overall * 100)));
    const fill = box.querySelector(".progress-fill");
    fill.style.width = `${(overall * 100).toFixed(1)}%`;
    fill.className = `progress-fill progress-${state.status}`;
  }

  function layerRow(layer) {
    const row = document.createElement("tr");
    const name = document.createElement("code");
    name.dataset.layer = "";
    name.textContent = layer.name;
    const values = [name, layer.type, formatInteger(layer.parameters), layer.trainable ? "yes" : "no"];
    values.forEach((value, index) => {
      const cell = row.insertCell();
      cell.append(value);
      if (index === 2) cell.className = "num";
    });
    return row;
  }

  function updateLayers(layers) {
    const key = JSON.stringify(layers);
    if (key === state.layersKey) return;
    state.layersKey = key;
    const box = document.getElementById("layers");
    box.hidden = !(layers && layers.length);
    box.querySelector("[data-layer-count]").textContent = String((layers || []).length);
    box.querySelector("tbody").replaceChildren(...(layers || []).map(layerRow));
  }

  function onExperiment(experiment) {
    state.status = experiment.status;
    updateActions(experiment.status);
    updateQueuePosition(experiment.queue_position);
    updateStatus(experiment.status);
    updateFacts(experiment);
    updateProgress(experiment);
    updateOutlook(experiment.outlook);
    updateLayers(experiment.model_layers);
  }

  function onProgress(progress) {
    updateQueuePosition(progress.queue_position);
    updateProgress(progress);
    updateOutlook(progress);
  }

  // The tail of the run's own log, fetched every few seconds while the run lasts; put in as
  // text, so a line can never be markup.
  function refreshLog() {
    return fetch(page.logUrl, { headers: { Accept: "text/plain" } })
      .then((response) => (response.ok ? response.text() : null))
      .then((text) => {
        if (text === null) return;
        const box = document.getElementById("run-log");
        box.textContent = text || box.dataset.empty;
      })
      .catch(() => {}); // the next poll tries again
  }

  function followLog() {
    const timer = window.setInterval(() => {
      if (FINISHED.includes(state.status)) window.clearInterval(timer);
      refreshLog();
    }, page.logPollMilliseconds);
  }

  // "Copy as CLI command": to the clipboard where the browser allows it; shown either way.
  function setUpCopy() {
    const button = document.getElementById("copy-cli");
    if (!button) return;
    const box = document.getElementById("cli-command");
    const note = document.getElementById("cli-command-note");
    button.addEventListener("click", () => {
      const show = (text) => {
        note.textContent = text;
        box.hidden = false;
      };
      const copying = navigator.clipboard
        ? navigator.clipboard.writeText(button.dataset.command)
        : Promise.reject(new Error("no clipboard"));
      copying.then(
        () => show("Copied to the clipboard: the command that launches this experiment again."),
        () => show("Copy this command to launch the experiment again:"),
      );
    });
  }

  // The dashed "fine-tuning" line, drawn where the phase changes while the page watches;
  // app/routes/pages.py draws it into the figures of a reloaded page.
  function markFineTuning(epoch) {
    const x = epoch - 0.5;
    const { shape, annotation } = page.boundaryMarks;
    CURVE_CHARTS.forEach((id) => {
      const layout = document.getElementById(id).layout;
      Plotly.relayout(id, {
        shapes: [...(layout.shapes || []), { ...shape, x0: x, x1: x }],
        annotations: [...(layout.annotations || []), { ...annotation, x }],
      });
    });
  }

  function onEpoch(row) {
    if (row.epoch <= state.lastEpoch) return; // already drawn (page render or earlier event)
    if (state.lastEpoch === 0) {
      // The empty figures had a fixed axis and a "waiting" note (app/charts.py).
      const reset = { "yaxis.autorange": true, annotations: [] };
      CURVE_CHARTS.forEach((id) => Plotly.relayout(id, reset));
    }
    if (row.phase === "fine_tune" && state.lastPhase && state.lastPhase !== "fine_tune") {
      markFineTuning(row.epoch);
    }
    state.lastEpoch = row.epoch;
    state.lastPhase = row.phase;
    Object.entries(TRACES).forEach(([id, keys]) => {
      const update = { x: keys.map(() => [row.epoch]), y: keys.map((key) => [row[key]]) };
      Plotly.extendTraces(id, update, keys.map((_, index) => index));
    });
    updateSpeed(row);
  }

  function onEvaluation(section) {
    if (state.hasEvaluation) return;
    state.hasEvaluation = true;
    cifarlab.replaceSection(document.getElementById("evaluation"), section.html);
  }

  function showNoEvaluation(status) {
    const missing = document.getElementById("evaluation-missing");
    if (!missing) return;
    missing.querySelector("[data-ended-status]").textContent = status;
    missing.hidden = false;
    document.getElementById("evaluation-waiting").hidden = true;
  }

  // The gap chart, findings and verdict after each new epoch, and the final verdict at the end.
  function onDiagnostics(section) {
    cifarlab.replaceSection(document.getElementById("diagnostics"), section.html);
  }

  function setLive(on) {
    document.getElementById("live").hidden = !on;
  }

  function follow() {
    const source = new EventSource(page.eventsUrl);
    const handle = (name, handler) =>
      source.addEventListener(name, (event) => handler(JSON.parse(event.data)));
    source.addEventListener("open", () => setLive(true));
    handle("experiment", onExperiment);
    handle("progress", onProgress);
    handle("epoch", onEpoch);
    handle("diagnostics", onDiagnostics);
    handle("evaluation", onEvaluation);
    handle("end", (end) => {
      source.close();
      setLive(false);
      if (!state.hasEvaluation && end.status !== "succeeded") showNoEvaluation(end.status);
      if (state.lastEpoch === 0) {
        // Ended before its first epoch: the empty charts stop saying they wait for one.
        const note = { "annotations[0].text": page.noEpochsNote };
        CURVE_CHARTS.forEach((id) => Plotly.relayout(id, note));
      }
    });
    // The browser reconnects by itself (sending Last-Event-ID); only a closed source is final.
    source.addEventListener("error", () => setLive(source.readyState === EventSource.OPEN));
  }

  setUpCopy();
  if (!page.finished) {
    follow();
    followLog();
  }
})(window.cifarlab);
