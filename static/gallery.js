// The misclassified gallery: clicking a confusion-matrix cell (a chart whose element has
// data-gallery="EXPERIMENT-ID") shows that cell's test images, most confident first.
// Everything shown is set as text or attributes, never parsed as HTML.
"use strict";

window.cifarlab = window.cifarlab || {};

(function (cifarlab) {
  const LIMIT = 60;
  const dialog = document.getElementById("gallery");
  const title = document.getElementById("gallery-title");
  const summary = document.getElementById("gallery-summary");
  const message = document.getElementById("gallery-message");
  const grid = document.getElementById("gallery-grid");
  let request = 0; // a later click wins over a slower earlier response

  function heading(name, body, correct) {
    const cell = correct
      ? `${body.true_class} classified correctly`
      : `true ${body.true_class}, predicted ${body.predicted_class}`;
    return `${name}: ${cell}`;
  }

  function countText(body) {
    const images = `${body.total.toLocaleString("en-US")} test image${body.total === 1 ? "" : "s"}`;
    if (!body.total) return images;
    const shown = body.items.length;
    const which = shown < body.total ? `the ${shown} most confident shown` : "most confident first";
    return `${images}, ${which}; each with the probability the model gave its prediction.`;
  }

  function thumbnail(item, body) {
    const figure = document.createElement("figure");
    figure.className = "thumb";
    const image = document.createElement("img");
    image.src = item.image_url;
    image.alt = `test image ${item.position}: true ${body.true_class}, predicted ${body.predicted_class}`;
    image.width = 96;
    image.height = 96;
    image.loading = "lazy";
    const caption = document.createElement("figcaption");
    caption.textContent = `${(item.confidence * 100).toFixed(1)}%`;
    caption.title = `probability given to ${body.predicted_class}`;
    figure.append(image, caption);
    return figure;
  }

  function showMessage(text) {
    message.textContent = text;
    message.hidden = false;
  }

  async function open(experimentId, name, trueClass, predictedClass) {
    const mine = ++request;
    title.textContent = name;
    summary.textContent = "Loading…";
    message.hidden = true;
    grid.replaceChildren();
    if (!dialog.open) dialog.showModal();
    const query = new URLSearchParams({
      true_class: trueClass, predicted_class: predictedClass, limit: LIMIT,
    });
    const response = await fetch(`/api/experiments/${experimentId}/gallery?${query}`);
    const body = await response.json();
    if (mine !== request) return;
    if (!response.ok) {
      summary.textContent = "";
      showMessage(body.detail || "These images cannot be shown.");
      return;
    }
    title.textContent = heading(name, body, trueClass === predictedClass);
    summary.textContent = countText(body);
    if (!body.total) showMessage("No test image fell in this cell.");
    grid.replaceChildren(...body.items.map((item) => thumbnail(item, body)));
  }

  function classSelect(label, classes) {
    const select = document.createElement("select");
    classes.forEach((name, index) => select.add(new Option(name, String(index))));
    const wrapper = document.createElement("label");
    wrapper.append(`${label} `, select);
    return [wrapper, select];
  }

  // A cell picked from the keyboard: the heatmap's cells take no focus, so a form under the
  // chart names the same cell by its true and predicted class (the heatmap's y and x).
  function keyboardPicker(chart) {
    const classes = chart.data[0].y;
    const form = document.createElement("form");
    form.className = "gallery-picker small";
    form.setAttribute("aria-label", `Test images of a cell of ${chart.dataset.galleryName}`);
    const [trueLabel, trueSelect] = classSelect("True", classes);
    const [predictedLabel, predictedSelect] = classSelect("predicted", classes);
    const button = document.createElement("button");
    button.type = "submit";
    button.className = "button button-small";
    button.textContent = "Show test images";
    form.append(trueLabel, " ", predictedLabel, " ", button);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const [row, column] = [trueSelect.value, predictedSelect.value].map(Number);
      open(chart.dataset.gallery, chart.dataset.galleryName, row, column);
    });
    chart.after(form);
  }

  // A heatmap click reports its cell as pointNumber [row, column]: [true, predicted].
  function attachGallery(chart) {
    chart.classList.add("clickable");
    chart.on("plotly_click", (event) => {
      const cell = event.points && event.points[0] && event.points[0].pointNumber;
      if (!Array.isArray(cell)) return;
      open(chart.dataset.gallery, chart.dataset.galleryName, cell[0], cell[1]);
    });
    keyboardPicker(chart);
  }

  if (!dialog) return;
  dialog.querySelector("[data-gallery-close]").addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close(); // a click on the backdrop
  });
  cifarlab.attachGallery = attachGallery;
})(window.cifarlab);
