// Adds a progress bar per file and live processing status to the upload form. Each file shows its
// size (sizes.js, the same text as the server's) and one over the sender's limit is refused here,
// with the server's sentence, before a byte is sent.
// Without JavaScript the form posts all files at once and the server redirects to the panel.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  var list = document.getElementById("progress");
  if (!form || !list || !window.FormData || !window.XMLHttpRequest || !window.Kiln || !window.gettext) return;
  var limit = Number(form.getAttribute("data-limit")) || 0;

  function row(file) {
    var li = document.createElement("li");
    var title = document.createElement("div");
    title.textContent = file.name + " · " + window.Kiln.formatSize(file.size);
    var bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    var status = document.createElement("div");
    status.className = "status"; status.textContent = gettext("Waiting…");
    li.appendChild(title); li.appendChild(bar); li.appendChild(status);
    list.appendChild(li);
    return { li: li, bar: bar, status: status };
  }

  function watch(item, ui) {
    fetch("/m/" + item.id + "/status", { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (m) {
        if (m.state === "processed") {
          ui.status.innerHTML = "";
          var a = document.createElement("a"); a.href = m.url; a.textContent = gettext("Published — view it");
          ui.status.appendChild(a);
        } else if (m.state === "failed") {
          ui.li.className = "failed"; ui.status.textContent = gettext("Failed: %(reason)s", { reason: m.error.message });
        } else {
          ui.status.textContent = m.retry_at ? gettext("Waiting to retry…") : gettext("Processing…");
          setTimeout(function () { watch(item, ui); }, 1000);
        }
      })
      .catch(function () { setTimeout(function () { watch(item, ui); }, 3000); });
  }

  function send(file, ui) {
    return new Promise(function (resolve) {
      var data = new FormData();
      ["csrf_token", "title", "description", "alt_text", "tags", "license", "visibility", "collection_id"].forEach(function (name) {
        var el = form.elements[name]; if (el) data.append(name, el.value);
      });
      data.append("file", file, file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) {
          ui.bar.value = Math.round(100 * e.loaded / e.total);
          ui.status.textContent = gettext("Uploading: %(percent)s", { percent: formatPercent(ui.bar.value) });
        }
      };
      xhr.onload = function () {
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
        if (xhr.status === 202 && body.media) {
          ui.bar.value = 100; ui.status.textContent = gettext("Stored. Processing…");
          watch(body.media[0], ui);
        } else {
          ui.li.className = "failed";
          ui.status.textContent = (body.error && body.error.message) || gettext("Upload failed (HTTP status %(status)s).", { status: String(xhr.status) });
        }
        resolve();
      };
      xhr.onerror = function () { ui.li.className = "failed"; ui.status.textContent = gettext("Network error: the upload did not finish."); resolve(); };
      xhr.send(data);
    });
  }

  form.addEventListener("submit", function (event) {
    var files = form.elements.file.files;
    if (!files || !files.length) return;
    event.preventDefault();
    list.innerHTML = "";
    var alt = form.elements.alt_text;
    if (files.length > 1 && alt && alt.value.trim()) {  // one description is about one picture (as without JavaScript)
      var refusal = document.createElement("li");
      refusal.className = "failed";
      refusal.textContent = form.getAttribute("data-alt-for-many");
      list.appendChild(refusal);
      alt.focus();
      return;
    }
    var rows = Array.prototype.map.call(files, function (f) { return [f, row(f)]; });
    var queue = rows.filter(function (job) {
      if (!limit || job[0].size <= limit) return true;
      job[1].li.className = "failed";
      job[1].status.textContent = form.getAttribute("data-too-large");
      return false;
    });
    // Two uploads at a time: fast on a good link, fair on a slow one. Into a collection, one at a time,
    // so the files take their places there in the order they were chosen.
    function next() { var job = queue.shift(); return job ? send(job[0], job[1]).then(next) : Promise.resolve(); }
    var into = form.elements.collection_id;
    Promise.all(into && into.value ? [next()] : [next(), next()]).then(function () {
      form.reset();
      // One sentence when every file has been sent, for the live region (screen readers) as much as the eye.
      var stored = rows.filter(function (job) { return job[1].li.className !== "failed"; }).length;
      var summary = document.getElementById("upload-summary");
      if (summary) summary.textContent = ngettext("%(n)s file was stored; processing continues in the background.",
                                     "%(n)s files were stored; processing continues in the background.", stored);
    });
  });
})();
