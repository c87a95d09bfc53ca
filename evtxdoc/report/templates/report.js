"use strict";
(function () {
  // Event table: filter by host, channel, event id, level and free text.
  var form = document.getElementById("event-filters");
  var table = document.getElementById("event-table");
  var count = document.getElementById("event-count");
  if (form && table) {
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var texts = null;
    var apply = function () {
      var host = form.elements.host.value, channel = form.elements.channel.value;
      var id = form.elements.id.value.trim(), level = form.elements.level.value;
      var query = form.elements.q.value.trim().toLowerCase();
      if (query && texts === null) {
        texts = rows.map(function (row) { return row.textContent.toLowerCase(); });
      }
      var shown = 0;
      rows.forEach(function (row, index) {
        var d = row.dataset;
        var keep = (!host || d.host === host) && (!channel || d.channel === channel) &&
          (!id || d.id === id) && (!level || d.level === level) &&
          (!query || texts[index].indexOf(query) !== -1);
        row.hidden = !keep;
        if (keep) { shown += 1; }
      });
      count.textContent = shown + " of " + rows.length + " event(s)";
    };
    form.addEventListener("input", apply);
    form.addEventListener("change", apply);
    form.addEventListener("submit", function (event) { event.preventDefault(); apply(); });
  }

  // Swimlanes: hover details (the <title> elements give the same text without JavaScript).
  var tip = document.getElementById("tip");
  var show = function (event) {
    var target = event.currentTarget;
    tip.textContent = target.getAttribute("data-tip");
    tip.hidden = false;
    var box = target.getBoundingClientRect();
    tip.style.left = Math.min(box.left, window.innerWidth - 500) + "px";
    tip.style.top = (box.bottom + 8) + "px";
  };
  var hide = function () { tip.hidden = true; };
  document.querySelectorAll("svg [data-tip]").forEach(function (node) {
    node.addEventListener("mouseenter", show);
    node.addEventListener("focus", show);
    node.addEventListener("mouseleave", hide);
    node.addEventListener("blur", hide);
  });

  // Findings: expand or collapse all; a link to a finding opens it.
  var findings = document.querySelectorAll("details.finding");
  var setAll = function (open) {
    findings.forEach(function (node) { node.open = open; });
  };
  var expand = document.getElementById("expand-all");
  var collapse = document.getElementById("collapse-all");
  if (expand) { expand.addEventListener("click", function () { setAll(true); }); }
  if (collapse) { collapse.addEventListener("click", function () { setAll(false); }); }
  var openTarget = function () {
    var id = decodeURIComponent(window.location.hash.slice(1));
    var node = id && document.getElementById(id);
    if (node && node.tagName === "DETAILS") { node.open = true; }
  };
  window.addEventListener("hashchange", openTarget);
  openTarget();

  // Printing: open every <details> so the paper copy holds the evidence; restore after.
  var closed = [];
  window.addEventListener("beforeprint", function () {
    closed = Array.prototype.filter.call(document.querySelectorAll("details"),
      function (node) { return !node.open; });
    closed.forEach(function (node) { node.open = true; });
  });
  window.addEventListener("afterprint", function () {
    closed.forEach(function (node) { node.open = false; });
    closed = [];
  });
})();
