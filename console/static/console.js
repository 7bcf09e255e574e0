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
      if (data.html) {
        var open = {};
        box.querySelectorAll("details[open]").forEach(function (d) { open[d.getAttribute("data-code")] = 1; });
        box.innerHTML = data.html;
        box.querySelectorAll("details").forEach(function (d) {
          if (open[d.getAttribute("data-code")]) d.setAttribute("open", "");
        });
      }
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
