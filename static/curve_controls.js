// Curve controls, as TensorBoard and W&B have them: smoothing (an exponential moving average
// with TensorBoard's debiasing, the raw curve kept faint behind), a log axis for loss, and x
// by epoch or by training time. Every figure whose layout.meta.curveControls says what it
// allows (app/web/charts.py) is drawn through here by charts.js; each of its traces gives
// each point's [epoch, training minutes] as customdata. The settings live in localStorage,
// so every page and every visit draws the curves the same way.
"use strict";

window.cifarlab = window.cifarlab || {};

(function (cifarlab) {
  const STORAGE_KEY = "cifarlab.curveControls";
  const SMOOTHED_KINDS = new Set(["train", "validation"]);
  const RAW_OPACITY = 0.3;
  const settings = load();

  function valid(stored) {
    const smoothing = Number(stored.smoothing);
    return {
      smoothing: Number.isFinite(smoothing) ? Math.min(0.99, Math.max(0, smoothing)) : 0,
      logY: stored.logY === true,
      x: stored.x === "time" ? "time" : "epoch",
    };
  }

  function load() {
    try {
      return valid(JSON.parse(window.localStorage.getItem(STORAGE_KEY) || "{}") || {});
    } catch (error) {
      return valid({}); // unreadable or blocked storage: the defaults
    }
  }

  function save() {
    try {
      window.localStorage.setItem(STORAGE_KEY, JSON.stringify(settings));
    } catch (error) {
      // Blocked storage: the settings hold for this page only.
    }
  }

  // TensorBoard's smoothing: an EMA started at zero and divided by 1 - weight^n, so the first
  // points are not pulled towards zero. Gaps stay gaps; a constant curve stays as it is.
  function smooth(values, weight) {
    const finite = values.filter(Number.isFinite);
    const constant = finite.every((value) => value === finite[0]);
    let last = 0;
    let count = 0;
    return values.map((value) => {
      if (constant || !Number.isFinite(value)) return value;
      last = last * weight + (1 - weight) * value;
      count += 1;
      return last / (1 - Math.pow(weight, count));
    });
  }

  const smoothable = (trace) => SMOOTHED_KINDS.has((trace.meta || {}).kind);
  const minutesOf = (trace) => (trace.customdata || []).map((point) => (point ? point[1] : null));

  // Epoch -> minutes at its end, to move the figure's own epoch-placed lines (the fine-tuning
  // boundary at epoch b - 0.5 goes where epoch b - 1 ended).
  function clockOf(data) {
    const trace = data.find((t) => Array.isArray(t.customdata) && t.customdata.length);
    return new Map(trace ? trace.customdata.filter(Boolean).map(([e, m]) => [e, m]) : []);
  }

  function minutesAt(clock, x) {
    if (clock.has(x)) return clock.get(x);
    const before = Math.floor(x);
    if (before <= 0) return 0;
    return clock.has(before) ? clock.get(before) : null;
  }

  function transformed(source) {
    const flags = source.layout.meta.curveControls;
    const byTime = flags.time && settings.x === "time";
    const weight = flags.smooth ? settings.smoothing : 0;
    const front = [];
    const behind = [];
    source.data.forEach((trace) => {
      // Copies: the live page extends the drawn arrays, never the kept figure's.
      const shown = { ...trace, x: [...(trace.x || [])], y: [...(trace.y || [])] };
      if (byTime && Array.isArray(trace.customdata)) shown.x = minutesOf(trace);
      if (weight > 0 && smoothable(trace)) {
        shown.y = smooth(trace.y, weight);
        behind.push({
          ...shown, y: [...trace.y], mode: "lines", opacity: RAW_OPACITY, showlegend: false,
          hoverinfo: "skip", zorder: -1, meta: { ...trace.meta, raw: true },
        });
      }
      front.push(shown);
    });
    const layout = { ...source.layout };
    if (byTime) {
      const clock = clockOf(source.data);
      const at = (x) => minutesAt(clock, x);
      layout.xaxis = {
        title: { text: flags.timeTitle }, gridcolor: (source.layout.xaxis || {}).gridcolor,
        zeroline: false, rangemode: "tozero",
      };
      layout.shapes = (source.layout.shapes || []).map((shape) =>
        shape.xref === "x" ? { ...shape, x0: at(shape.x0), x1: at(shape.x1) } : shape);
      layout.annotations = (source.layout.annotations || []).map((note) =>
        note.xref === "x" ? { ...note, x: at(note.x) } : note);
    }
    const hasPoints = source.data.some((trace) => (trace.y || []).some(Number.isFinite));
    if (flags.logY && settings.logY && hasPoints) {
      const { range, ...yaxis } = source.layout.yaxis;
      layout.yaxis = { ...yaxis, type: "log", autorange: true };
    }
    // Faint raw curves first, and zorder puts them under every smoothed one; the figure's own
    // traces keep their indices, which the live experiment page extends.
    return { ...source, data: [...front, ...behind], layout };
  }

  // charts.js calls this before drawing: the figure as the settings want it. The server's
  // figure is kept on the chart, to redraw from when a setting changes or a point arrives.
  function prepare(target, figure) {
    const meta = figure.layout && figure.layout.meta;
    if (!meta || !meta.curveControls) {
      delete target.curveSource;
      return figure;
    }
    const source = structuredClone(figure);
    target.curveSource = source;
    target.curveDrawn = {
      points: source.data.map((trace) => (trace.x || []).length),
      shapes: (source.layout.shapes || []).length,
      annotations: (source.layout.annotations || []).length,
    };
    return transformed(source);
  }

  function redraw(target) {
    if (target.curveSource) cifarlab.draw(target, target.curveSource);
  }

  // The live experiment page extends the drawn traces with each new epoch (experiment.js):
  // take those points into the kept figure, to draw it again as the settings want it.
  function takePoints(target) {
    const source = target.curveSource;
    let grew = false;
    source.data.forEach((trace, index) => {
      const drawn = target.data[index];
      const had = target.curveDrawn.points[index];
      if (!drawn || !drawn.x || drawn.x.length <= had) return;
      const x = Array.from(drawn.x).slice(had);
      trace.x = [...trace.x, ...x];
      trace.y = [...trace.y, ...Array.from(drawn.y).slice(had)];
      if (Array.isArray(trace.customdata)) {
        trace.customdata = [...trace.customdata, ...x.map((epoch) => [epoch, null])];
      }
      grew = true;
    });
    return grew;
  }

  function onRedraw(target) {
    if (!target.curveSource || !takePoints(target)) return;
    redraw(target);
    fillMinutes(target);
  }

  // New epochs arrive without their seconds: read them once from the API (the running sum
  // app/core/time_to_accuracy.py's elapsed_seconds makes on the server, empty seconds adding nothing).
  async function fillMinutes(target) {
    const source = target.curveSource;
    const url = source && source.layout.meta.curveControls.metricsUrl;
    const missing = source && source.data.some((t) => minutesOf(t).some((m) => m === null));
    if (!url || !missing || target.curveFilling) return;
    target.curveFilling = true;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const epochs = (await response.json()).epochs.sort((a, b) => a.epoch - b.epoch);
      const elapsed = new Map();
      let seconds = 0;
      epochs.forEach((row) => {
        seconds += row.seconds || 0;
        elapsed.set(row.epoch, seconds / 60);
      });
      const current = target.curveSource;
      current.data.forEach((trace) => {
        if (!Array.isArray(trace.customdata)) return;
        trace.customdata = trace.customdata.map(([epoch, minutes]) => [
          epoch, minutes === null && elapsed.has(epoch) ? elapsed.get(epoch) : minutes,
        ]);
      });
      redraw(target);
    } finally {
      target.curveFilling = false;
    }
  }

  // The live page's own layout changes (the waiting note cleared, a fine-tuning line added)
  // go into the kept figure too, so a redraw keeps them. Zooming changes nothing kept.
  function takeLayout(target, update) {
    const source = target.curveSource;
    if (!source || !update) return;
    // Plotly reports the layout change after the same turn's new points went into the traces.
    let changed = takePoints(target);
    ["shapes", "annotations"].forEach((key) => {
      if (!Array.isArray(update[key])) return;
      const added = update[key].slice(target.curveDrawn[key]);
      source.layout[key] = update[key].length ? [...(source.layout[key] || []), ...added] : [];
      changed = true;
    });
    if (update["yaxis.autorange"] === true && source.layout.yaxis.range) {
      const { range, ...yaxis } = source.layout.yaxis;
      source.layout.yaxis = { ...yaxis, autorange: true };
      changed = true;
    }
    if (!changed) return;
    redraw(target);
    fillMinutes(target);
  }

  function watch(target) {
    if (!target.curveSource || target.curveWatched || !target.on) return;
    target.curveWatched = true;
    target.on("plotly_redraw", () => onRedraw(target));
    target.on("plotly_relayout", (update) => takeLayout(target, update));
  }

  function redrawAll() {
    document.querySelectorAll(".js-plotly-plot").forEach(redraw);
  }

  function setupInputs() {
    const slider = document.getElementById("curve-smoothing");
    const shown = document.getElementById("curve-smoothing-value");
    const logY = document.getElementById("curve-log-y");
    const axes = document.querySelectorAll('input[name="curve-x"]');
    if (!slider) return;
    slider.value = String(settings.smoothing);
    shown.textContent = settings.smoothing.toFixed(2);
    logY.checked = settings.logY;
    axes.forEach((radio) => {
      radio.checked = radio.value === settings.x;
    });
    const apply = () => {
      save();
      redrawAll();
    };
    slider.addEventListener("input", () => {
      settings.smoothing = valid({ smoothing: slider.value }).smoothing;
      shown.textContent = settings.smoothing.toFixed(2);
      apply();
    });
    logY.addEventListener("change", () => {
      settings.logY = logY.checked;
      apply();
    });
    axes.forEach((radio) => {
      radio.addEventListener("change", () => {
        if (!radio.checked) return;
        settings.x = radio.value;
        apply();
      });
    });
  }

  cifarlab.curveControls = { prepare, watch, smooth };
  setupInputs();
})(window.cifarlab);
