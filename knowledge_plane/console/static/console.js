// Keyboard shortcuts and "select all" for the review queue. Plain DOM, no framework; rows loaded
// later by htmx ("Next 50") are picked up because every lookup is done at key time.
(function () {
  "use strict";
  function rows() { return Array.from(document.querySelectorAll("tr.fact-row")); }
  function current() { return document.querySelector("tr.fact-row.cursor"); }
  function move(step) {
    var all = rows(); if (!all.length) return;
    var i = all.indexOf(current());
    var next = all[Math.max(0, Math.min(all.length - 1, i + step))];
    all.forEach(function (r) { r.classList.remove("cursor"); });
    next.classList.add("cursor"); next.focus();
  }
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea" || event.ctrlKey || event.metaKey || event.altKey) return;
    var row = current();
    if (event.key === "j") move(1);
    else if (event.key === "k") move(-1);
    else if (event.key === "x" && row) { var box = row.querySelector("input[type=checkbox]"); box.checked = !box.checked; }
    else if (event.key === "o" && row) { window.location = row.querySelector("a").href; }
    else if (event.key === "a") { var approve = document.getElementById("bulk-approve"); if (approve) approve.click(); }
    else if (event.key === "r") { var reason = document.getElementById("bulk-reason"); if (reason) { reason.focus(); event.preventDefault(); } }
    else return;
  });
  document.addEventListener("change", function (event) {
    if (event.target.id !== "select-all") return;
    rows().forEach(function (r) { r.querySelector("input[type=checkbox]").checked = event.target.checked; });
  });
})();
