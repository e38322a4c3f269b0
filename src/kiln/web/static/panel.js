// Keeps the processing panel up to date in place: while anything is queued, processing or waiting
// to retry, it asks /panel.json and swaps the rows that changed. "Retry now" is sent in the
// background. Without JavaScript the page shows the same, with a Reload link and plain forms.
(function () {
  "use strict";
  var table = document.querySelector("table.panel");
  var live = document.getElementById("panel-live");
  if (!table || !window.fetch || !window.gettext) return;
  var body = table.tBodies[0];
  var filter = table.getAttribute("data-state-filter") || "";
  var timer = null;
  var shown = {}; // the HTML last put in each row, so unchanged rows are left alone

  var heldUntil = 0; // an answer to something the person did stays a while before routine updates

  function say(text, holdSeconds) {
    if (!live || (!holdSeconds && Date.now() < heldUntil)) return;
    live.textContent = text;
    heldUntil = holdSeconds ? Date.now() + holdSeconds * 1000 : 0;
  }

  function clock() {
    var d = new Date();
    return [d.getHours(), d.getMinutes(), d.getSeconds()].map(function (n) { return (n < 10 ? "0" : "") + n; }).join(":");
  }

  function placeRow(row, id) {
    // Rows are newest (highest id) first.
    var rows = body.rows;
    for (var i = 0; i < rows.length; i++) {
      if (Number(rows[i].getAttribute("data-media")) < id) { body.insertBefore(row, rows[i]); return; }
    }
    body.appendChild(row);
  }

  function applyItem(item) {
    var row = body.querySelector('tr[data-media="' + item.id + '"]');
    if (!row) {
      row = document.createElement("tr");
      row.setAttribute("data-media", item.id);
      placeRow(row, item.id);
    }
    if (shown[item.id] !== item.html) {
      row.innerHTML = item.html;
      shown[item.id] = item.html;
    }
    row.setAttribute("data-state", item.state);
    row.setAttribute("data-phase", item.phase);
  }

  function applyCounts(counts) {
    var all = 0;
    Object.keys(counts).forEach(function (state) {
      all += counts[state];
      var el = document.querySelector('[data-count="' + state + '"]');
      if (el) el.textContent = counts[state];
    });
    var total = document.querySelector('[data-count="all"]');
    if (total) total.textContent = all;
  }

  function schedule(seconds) {
    clearTimeout(timer);
    timer = null;
    if (seconds) timer = setTimeout(poll, seconds * 1000);
  }

  function poll() {
    timer = null;
    if (document.hidden) return; // resumes on visibilitychange
    var shown = Array.prototype.map.call(body.rows, function (r) { return r.getAttribute("data-media"); });
    var query = "?shown=" + shown.join(",") + (filter ? "&state=" + encodeURIComponent(filter) : "");
    fetch("/panel.json" + query, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        data.items.forEach(applyItem);
        applyCounts(data.counts);
        say(data.poll ? gettext("Updating live · %(time)s", { time: clock() })
                      : gettext("Everything is finished · %(time)s", { time: clock() }));
        schedule(data.poll);
      })
      .catch(function () { say(gettext("Could not reach the server; trying again…")); schedule(10); });
  }

  function busy() {
    return body.querySelector('tr[data-phase="queued"], tr[data-phase="running"], tr[data-phase="retrying"]');
  }

  // "Retry now" without leaving the page.
  table.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("retry") || !window.FormData) return;
    event.preventDefault();
    var button = form.querySelector("button");
    if (button) { button.disabled = true; button.textContent = gettext("Retrying…"); }
    fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin",
                         headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (data.item) applyItem(data.item);
        say(data.message || (data.error && data.error.message) || "", 8);
        schedule(0.5);
      })
      .catch(function () { form.submit(); }); // fall back to the plain form
  });

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && !timer && busy()) poll();
  });

  if (busy()) schedule(2);
})();
