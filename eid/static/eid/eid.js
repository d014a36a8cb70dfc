// Edit in Descript: the behaviour of eid's buttons and pages, with no inline script (strict CSP).
// Loaded once per page however many buttons include it.
(function () {
  if (window.__eid) return;
  window.__eid = true;

  // Busy state for forms that must not be sent twice (Edit in Descript, confirm import, retry).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("form[data-once]")) return;
    if (form.dataset.sent) { event.preventDefault(); return; }
    form.dataset.sent = "1";
    form.querySelectorAll("button[type=submit]").forEach(function (b) {
      b.disabled = true;
      if (b.dataset.busy) b.textContent = b.dataset.busy;
      b.setAttribute("aria-busy", "true");
    });
  });
  // A page restored from the back/forward cache gets its buttons back.
  window.addEventListener("pageshow", function (e) {
    if (!e.persisted) return;
    document.querySelectorAll("form[data-once]").forEach(function (form) {
      delete form.dataset.sent;
      form.querySelectorAll("button[type=submit]").forEach(function (b) {
        b.disabled = false; b.removeAttribute("aria-busy");
        if (b.dataset.label) b.textContent = b.dataset.label;
      });
    });
  });

  // The import status page: reload when the state or progress changes.
  function watch() {
    var box = document.getElementById("import-status");
    if (!box || !box.dataset.active) return;
    var seen = null;
    function tick() {
      fetch(box.dataset.poll, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (s) {
        var key = [s.state, s.checks, s.bytes_copied].join("/");
        if (seen !== null && key !== seen) { window.location.reload(); return; }
        seen = key;
        setTimeout(tick, 1500);
      }).catch(function () { setTimeout(tick, 5000); });
    }
    tick();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", watch);
  else watch();
})();
