// The phone's menu (a <details>, which opens and closes without a script) also closes on
// Escape and on a click outside it, returning focus to its button, as a menu is expected to.
"use strict";

(function () {
  const menu = document.getElementById("nav-menu");
  if (!menu) return;
  const button = menu.querySelector("summary");

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !menu.open) return;
    menu.open = false;
    button.focus();
  });
  document.addEventListener("click", (event) => {
    if (menu.open && !menu.contains(event.target)) menu.open = false;
  });
})();
