// Tags and notes edited in place: PATCH /api/experiments/{id}, then every element that
// shows them ([data-tags-for], [data-notes-for]) is redrawn as text, never as HTML.
// An experiment's page carries its form; the list carries one form in a <template>, copied
// under a row, with what the row shows, when that row is first opened.
"use strict";

(function () {
  // A signed-in browser proves the request comes from our page (app/auth.py).
  const CSRF = document.querySelector('meta[name="csrf-token"]').content;
  const splitTags = (text) => text.split(",").map((tag) => tag.trim()).filter(Boolean);

  function tagLink(tag) {
    const link = document.createElement("a");
    link.className = "tag";
    link.href = `/?tag=${encodeURIComponent(tag)}`;
    link.title = `Experiments tagged ${tag}`;
    link.textContent = tag;
    return link;
  }

  function showSaved(id, experiment) {
    document.querySelectorAll(`[data-tags-for="${id}"]`).forEach((element) => {
      element.replaceChildren(...experiment.tags.map(tagLink));
    });
    document.querySelectorAll(`[data-notes-for="${id}"]`).forEach((element) => {
      const empty = element.dataset.empty || "";
      element.textContent = experiment.notes || empty;
      if (element.hasAttribute("title")) element.title = experiment.notes;
      element.hidden = !experiment.notes && !empty;
    });
  }

  function listPanel(id) {
    const row = document.querySelector(`tr[data-experiment="${id}"]`);
    const template = document.getElementById("annotate-template");
    const form = template.content.firstElementChild.cloneNode(true);
    form.dataset.annotate = id;
    form.dataset.url = `/api/experiments/${id}`;
    form.querySelectorAll("[id]").forEach((element) => (element.id += id));
    form.querySelectorAll("label[for]").forEach((label) => (label.htmlFor += id));
    const tags = [...document.querySelectorAll(`[data-tags-for="${id}"] .tag`)];
    const notes = document.querySelector(`[data-notes-for="${id}"]`);
    keepAsDefaults(form, { tags: tags.map((tag) => tag.textContent), notes: notes.textContent });
    const cell = document.createElement("td");
    cell.colSpan = row.cells.length;
    cell.append(form);
    const panel = document.createElement("tr");
    panel.className = "annotate-row";
    panel.id = `annotate-${id}`;
    panel.hidden = true;
    panel.append(cell);
    row.after(panel);
    wire(form);
    return panel;
  }

  function panelFor(id) {
    return document.getElementById(`annotate-${id}`) || listPanel(id);
  }

  function setOpen(id, open) {
    const panel = panelFor(id);
    panel.hidden = !open;
    document.querySelectorAll(`[data-annotate-open="${id}"]`).forEach((button) => {
      button.setAttribute("aria-expanded", String(open));
    });
    if (open) panel.querySelector("[name=tags]").focus();
  }

  // API errors name their field ("tags.0", "notes"); each goes next to its input, which is
  // marked invalid and described by it for a screen reader, and the first such input takes
  // the focus. An error that names neither field is announced (role="alert").
  function showErrors(form, errors) {
    form.querySelectorAll(".field-error").forEach((line) => {
      line.textContent = "";
      line.hidden = true;
    });
    form.querySelectorAll("[aria-invalid]").forEach((input) => {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
    });
    errors.forEach((error) => {
      const field = (error.field || "").split(".")[0];
      const line =
        form.querySelector(`.field-error[data-field="${field}"]`) ||
        form.querySelector('.field-error[data-field=""]');
      line.textContent = [line.textContent, error.message].filter(Boolean).join(" ");
      line.hidden = false;
      const input = line.dataset.field && form.elements[line.dataset.field];
      if (input) {
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", line.id);
      }
    });
    form.querySelector("[aria-invalid]")?.focus();
  }

  function keepAsDefaults(form, experiment) {
    form.elements.tags.value = form.elements.tags.defaultValue = experiment.tags.join(", ");
    form.elements.notes.value = form.elements.notes.defaultValue = experiment.notes;
  }

  async function save(form) {
    const body = { tags: splitTags(form.elements.tags.value), notes: form.elements.notes.value };
    const button = form.querySelector("[type=submit]");
    button.disabled = true;
    try {
      const response = await fetch(form.dataset.url, {
        method: "PATCH",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
        body: JSON.stringify(body),
      });
      const result = await response.json();
      if (!response.ok) {
        showErrors(form, result.errors || [{ field: "", message: result.detail }]);
        return;
      }
      showErrors(form, []);
      keepAsDefaults(form, result);
      showSaved(form.dataset.annotate, result);
      setOpen(form.dataset.annotate, false);
    } catch (error) {
      showErrors(form, [{ field: "", message: `Not saved: ${error.message}` }]);
    } finally {
      button.disabled = false;
    }
  }

  function wire(form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      save(form);
    });
    form.querySelector("[data-annotate-cancel]").addEventListener("click", () => {
      form.reset(); // back to what was last saved
      showErrors(form, []);
      setOpen(form.dataset.annotate, false);
    });
  }

  document.querySelectorAll("[data-annotate-open]").forEach((button) => {
    button.addEventListener("click", () => {
      const id = button.dataset.annotateOpen;
      setOpen(id, panelFor(id).hidden);
    });
  });
  document.querySelectorAll("form[data-annotate]").forEach(wire);
})();
