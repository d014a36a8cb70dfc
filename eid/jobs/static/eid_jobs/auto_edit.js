// Auto-edits: the status and batch pages keep themselves current by polling their JSON endpoint
// (every 2 s, until the auto-edit or the batch is final), and the panel's form shows the video
// resolution only for video. A static file: the site's CSP allows no inline script.
(function () {
  if (window.__eidJobs) return;
  window.__eidJobs = true;

  var FINAL = ["done", "failed", "cancelled"];
  var EVERY_MS = 2000;

  function $(id) { return document.getElementById(id); }
  function show(el, visible) { if (el) el.hidden = !visible; }
  function text(el, value) { if (el) el.textContent = value == null ? "" : String(value); }
  function el(tag, cls, value) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (value != null) node.textContent = String(value);
    return node;
  }
  // Only http(s) links from the JSON become hrefs (never javascript: or data:).
  function safeUrl(url) {
    if (!url) return "";
    try {
      var parsed = new URL(url, window.location.href);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : "";
    } catch (e) { return ""; }
  }
  function isFinal(s) { return s.final === true || FINAL.indexOf(s.state) >= 0; }

  // Ask `url` every EVERY_MS, hand each answer to `render`, stop when it is final.
  function poll(box, render) {
    function tick() {
      fetch(box.dataset.poll, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
        .then(function (s) {
          render(s);
          if (isFinal(s)) { delete box.dataset.active; box.dataset.final = "1"; return; }
          setTimeout(tick, EVERY_MS);
        })
        .catch(function () { setTimeout(tick, EVERY_MS * 2.5); });
    }
    setTimeout(tick, EVERY_MS);
  }

  function renderStep(step) {
    var li = el("li");
    li.dataset.kind = step.kind || "";
    li.dataset.state = step.state || "";
    li.appendChild(el("span", "ae-step-name", step.kind_words || step.kind));
    li.appendChild(el("span", "ae-step-state", step.state_words || step.state));
    li.appendChild(el("span", "ae-step-label", step.progress_label || ""));
    if (step.progress_percent != null) {
      li.appendChild(el("span", "ae-step-percent", step.progress_percent + "%"));
      var bar = el("progress", null, step.progress_percent + "%");
      bar.max = 100;
      bar.value = step.progress_percent;
      li.appendChild(bar);
    }
    li.appendChild(el("span", "ae-step-error", step.error || ""));
    return li;
  }

  function renderAutoEdit(box, s) {
    box.dataset.state = s.state;
    text($("ae-state"), s.state_words);
    var steps = $("ae-steps");
    if (steps) steps.replaceChildren.apply(steps, (s.steps || []).map(renderStep));

    show($("ae-choice"), !!s.can_choose);
    var failed = $("ae-failed-files");
    if (failed) {
      var files = s.failed_files || {};
      failed.replaceChildren.apply(failed, Object.keys(files).map(function (name) {
        var li = el("li");
        li.appendChild(el("strong", null, name));
        li.appendChild(document.createTextNode(": " + files[name]));
        return li;
      }));
    }
    text($("ae-imported-count"), s.imported_count);

    show($("ae-summary"), !!s.agent_summary);
    text($("ae-summary-text"), s.agent_summary);
    var project = safeUrl(s.project_url);
    show($("ae-project"), !!project);
    if (project) $("ae-project-link").href = project;

    show($("ae-version"), s.state === "done");
    text($("ae-version-number"), s.version_number);
    var item = safeUrl(s.item_url);
    if (item && $("ae-version-link")) $("ae-version-link").href = item;

    show($("ae-reason"), !!s.reason);
    text($("ae-reason"), s.reason);
    show($("ae-cancel"), !!s.can_cancel);
  }

  function renderBatch(box, s) {
    text($("batch-total"), s.total);
    var counts = $("batch-counts");
    if (counts) {
      counts.replaceChildren.apply(counts, (s.by_state || []).map(function (c) {
        var li = el("li");
        li.dataset.state = c.state;
        li.appendChild(el("span", "batch-count", c.n));
        li.appendChild(document.createTextNode(" "));
        li.appendChild(el("span", "muted", c.words));
        return li;
      }));
    }
    var rows = $("batch-items");
    if (rows) {
      rows.replaceChildren.apply(rows, (s.items || []).map(function (i) {
        var tr = el("tr");
        tr.dataset.id = i.id;
        tr.dataset.state = i.state;
        var name = el("td");
        var url = safeUrl(i.url);
        if (url) { var a = el("a", null, i.item_title); a.href = url; name.appendChild(a); }
        else name.textContent = i.item_title;
        tr.appendChild(name);
        tr.appendChild(el("td", "batch-item-state", i.state_words));
        tr.appendChild(el("td", "batch-item-detail", i.version_number ? "Version " + i.version_number : (i.reason || "")));
        return tr;
      }));
    }
    if (s.final) box.dataset.final = "1";
  }

  // The panel: the resolution is Descript's video setting, hidden while "Audio" is chosen.
  function panel() {
    var form = $("auto-edit-form");
    if (!form) return;
    var select = form.querySelector("select[name=resolution]");
    if (!select) return;
    var label = form.querySelector("label[for='" + select.id + "']");
    function update() {
      var chosen = form.querySelector("input[name=media_type]:checked");
      var video = !!chosen && chosen.value === "Video";
      show(select, video);
      show(label, video);
      if (!video) select.value = "";
    }
    form.querySelectorAll("input[name=media_type]").forEach(function (r) { r.addEventListener("change", update); });
    update();
  }

  function start() {
    var box = $("auto-edit");
    if (box && box.dataset.active) poll(box, function (s) { renderAutoEdit(box, s); });
    var batch = $("auto-edit-batch");
    if (batch && batch.dataset.active) poll(batch, function (s) { renderBatch(batch, s); });
    panel();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
