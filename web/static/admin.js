// Warden admin UI: progressive enhancement only; every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Ask before destructive forms (data-confirm="question").
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (ev) {
      if (!window.confirm(f.getAttribute("data-confirm"))) {
        ev.preventDefault();
      }
    });
  });
  // Filter table rows as one types (the server filters on submit too).
  document.querySelectorAll("input[data-filter-table]").forEach(function (input) {
    var tables = document.querySelectorAll(input.getAttribute("data-filter-table"));
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      tables.forEach(function (t) {
        t.querySelectorAll("tbody tr").forEach(function (tr) {
          tr.hidden = q !== "" && tr.textContent.toLowerCase().indexOf(q) < 0;
        });
      });
    });
  });
});
