"use strict";
(function () {
  // Error codes in any written form: 0x80070005, 80070005, -2147024891, 2147942405 and the
  // Win32 code 5 are one value; each row lists its codes in data-codes (fragments.codes).
  var codeValues = function (query) {
    var text = query.replace(/^\s+|\s+$/g, ""), values = [];
    if (/^0x[0-9a-f]{1,8}$/i.test(text)) { values.push(parseInt(text.slice(2), 16)); }
    if (/^[0-9a-f]{8}$/i.test(text)) { values.push(parseInt(text, 16)); }
    if (/^-?[0-9]{1,10}$/.test(text)) {
      var number = Number(text);
      values.push(number < 0 ? number + 4294967296 : number);
    }
    return values.filter(function (value) { return value >= 0 && value <= 4294967295; })
      .map(function (value) { return ("0000000" + value.toString(16)).slice(-8); });
  };

  // Event table: filter by host, channel, event id, level, time span and free text (codes in
  // any form); sort by a column header.
  var form = document.getElementById("event-filters");
  var table = document.getElementById("event-table");
  var count = document.getElementById("event-count");
  if (form && table) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (row, index) { row.dataset.order = index; });
    var texts = null;
    var stamp = function (value) { return value.replace("T", " "); };
    // The section renders lazily (content-visibility: auto) until the table is used: a lazy
    // section whose height changes under a filter is laid out again and again (20 s on a
    // 5,000-row table), a rendered one once.
    var section = table.closest("section");
    var rendered = function () { if (section) { section.style.contentVisibility = "visible"; } };
    var apply = function () {
      rendered();
      var host = form.elements.host.value, channel = form.elements.channel.value;
      var id = form.elements.id.value.trim(), level = form.elements.level.value;
      var from = stamp(form.elements.from.value), to = stamp(form.elements.to.value);
      var query = form.elements.q.value.trim().toLowerCase();
      var code = query ? codeValues(query) : [];
      if (query && texts === null) {
        texts = rows.map(function (row) { return row.textContent.toLowerCase(); });
      }
      var shown = 0;
      rows.forEach(function (row, index) {
        var d = row.dataset, time = d.time || "";
        var keep = (!host || d.host === host) && (!channel || d.channel === channel) &&
          (!id || d.id === id) && (!level || d.level === level) &&
          (!from || time.slice(0, from.length) >= from) &&
          (!to || time.slice(0, to.length) <= to) &&
          (!query || texts[index].indexOf(query) !== -1 || code.some(function (value) {
            return (" " + (d.codes || "") + " ").indexOf(" " + value + " ") !== -1;
          }));
        row.hidden = !keep;
        if (keep) { shown += 1; }
      });
      count.textContent = shown + " of " + rows.length + " event(s)";
    };
    form.addEventListener("input", apply);
    form.addEventListener("change", apply);
    form.addEventListener("submit", function (event) { event.preventDefault(); apply(); });
    form.addEventListener("reset", function () { window.setTimeout(apply, 0); });

    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (th, column) {
      var kind = th.dataset.sort;
      if (!kind) { return; }
      th.classList.add("sortable");
      th.tabIndex = 0;
      var sort = function () {
        rendered();
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(headers, function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var key = function (row) {
          if (kind === "time") { return Number(row.dataset.order); }
          var text = row.cells[column].textContent;
          return kind === "num" ? Number(text) : text.toLowerCase();
        };
        var sorted = rows.slice().sort(function (a, b) {
          var ka = key(a), kb = key(b);
          var order = ka < kb ? -1 : ka > kb ? 1 : Number(a.dataset.order) - Number(b.dataset.order);
          return ascending ? order : -order;
        });
        sorted.forEach(function (row) { body.appendChild(row); });
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sort(); }
      });
    });
  }

  // Fix steps: copy to the clipboard (the button says whether it worked).
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = button.getAttribute("data-copy");
      var said = function (ok) {
        button.textContent = ok ? "Copied" : "Select and copy by hand";
        button.classList.toggle("done", ok);
        window.setTimeout(function () { button.textContent = "Copy"; button.classList.remove("done"); }, 2000);
      };
      var fallback = function () {
        var area = document.createElement("textarea");
        area.value = text;
        area.setAttribute("readonly", "");
        area.style.position = "fixed";
        area.style.opacity = "0";
        document.body.appendChild(area);
        area.select();
        var ok = false;
        try { ok = document.execCommand("copy"); } catch (error) { ok = false; }
        document.body.removeChild(area);
        said(ok);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { said(true); }, fallback);
      } else {
        fallback();
      }
    });
  });

  var print = document.getElementById("print");
  if (print) { print.addEventListener("click", function () { window.print(); }); }

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
