/* Live preview of comment forms: as you type, the server renders the Markdown through the same
   allow-list as the page (POST /api/v1/comments/preview) and the sanitised HTML shows under the box.
   Without JavaScript the form's Preview button does the same on a page of its own. */
(function () {
  "use strict";
  function wire(area) {
    var box = document.getElementById(area.getAttribute("data-preview"));
    var form = area.form;
    var token = form && form.elements.namedItem("csrf_token");
    if (!box || !token) { return; }
    var timer = null;
    var asked = 0;
    function show() {
      var text = area.value;
      if (!text.trim()) { box.hidden = true; box.innerHTML = ""; return; }
      var mine = ++asked;
      fetch("/api/v1/comments/preview", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": token.value, Accept: "application/json" },
        body: JSON.stringify({ body: text })
      }).then(function (response) {
        return response.ok ? response.json() : null;
      }).then(function (data) {
        if (data && mine === asked) { box.innerHTML = data.body_html; box.hidden = false; }  // nh3-sanitised
      }).catch(function () { /* the Preview button still works */ });
    }
    area.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(show, 400);
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("textarea[data-preview]"), wire);
})();
