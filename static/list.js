// The experiments list: ticked rows go to /compare (2 to 12 of them).
"use strict";

(function () {
  const MIN = 2;
  const MAX = 12;
  const form = document.getElementById("compare-form");
  if (!form) return;
  const button = document.getElementById("compare-button");
  const count = document.getElementById("selection-count");
  const all = document.getElementById("select-all");
  const boxes = [...document.querySelectorAll(".select-row")];

  function update() {
    const ticked = boxes.filter((box) => box.checked).length;
    button.disabled = ticked < MIN || ticked > MAX;
    button.textContent = ticked ? `Compare ${ticked} selected` : "Compare selected";
    count.textContent =
      ticked > MAX
        ? `${ticked} ticked: compare at most ${MAX} at a time.`
        : ticked < MIN
          ? `Tick ${MIN} to ${MAX} experiments to compare them side by side.`
          : "";
    all.checked = ticked === boxes.length;
    all.indeterminate = ticked > 0 && ticked < boxes.length;
    boxes.forEach((box) => box.closest("tr").classList.toggle("selected", box.checked));
  }

  // ids=1,2,3 rather than the form's ids=1&ids=2&ids=3: the URL people share and bookmark.
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const ids = boxes.filter((box) => box.checked).map((box) => box.value);
    window.location.assign(`/compare?ids=${ids.join(",")}`);
  });
  boxes.forEach((box) => box.addEventListener("change", update));
  all.addEventListener("change", () => {
    boxes.forEach((box) => (box.checked = all.checked));
    update();
  });
  update(); // the browser may restore ticks on "back"
})();
