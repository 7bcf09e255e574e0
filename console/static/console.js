// 网格警务控制台: live notice progress (server-sent events) and small niceties.
// No framework, nothing loaded from the internet.
(function () {
  "use strict";
  function live() {
    var box = document.getElementById("live");
    if (!box || !window.EventSource) return;
    var source = new EventSource(box.getAttribute("data-src"));
    source.addEventListener("progress", function (ev) {
      var data = JSON.parse(ev.data);
      var summary = document.getElementById("summary");
      if (summary && data.summary) summary.innerHTML = data.summary;
      var nodes = data.nodes || {};
      box.querySelectorAll("details[data-code]").forEach(function (d) {
        var row = nodes[d.getAttribute("data-code")];
        if (!row) return;
        var head = d.querySelector("summary");
        head.className = row[2];
        head.querySelector("b").textContent = row[0] + "/" + row[1];
      });
      var waiting = data.waiting || {};
      box.querySelectorAll("li[data-chat]").forEach(function (li) {
        var state = waiting[li.getAttribute("data-chat")];
        if (state === undefined) { li.className = "g done"; return; }
        li.querySelector("small").textContent = state;
      });
      box.setAttribute("data-delivered", data.delivered);
      box.setAttribute("data-updated", String(Date.now()));
      if (data.since) box.setAttribute("data-delay-ms", String(Math.round(Date.now() - data.since * 1000)));
    });
    window.addEventListener("beforeunload", function () { source.close(); });
  }
  function confirmForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (ev) {
        if (!window.confirm(f.getAttribute("data-confirm"))) ev.preventDefault();
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { live(); confirmForms(); });
})();
