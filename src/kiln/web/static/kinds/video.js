// Video pages: a resolution chooser for the <video> element. Without this script the browser
// plays the first <source> it can; with it, people pick a size and keep their place.
(function () {
  "use strict";
  if (!window.gettext) return; // static/i18n.js, loaded by every page
  var KEY = "kiln.video.quality";

  function remembered() {
    try { return window.localStorage.getItem(KEY); } catch (e) { return null; }
  }

  function remember(label) {
    try { window.localStorage.setItem(KEY, label); } catch (e) { /* private mode */ }
  }

  function switchTo(video, source) {
    if (video.currentSrc === source.src) { return; }
    var at = video.currentTime, playing = !video.paused && !video.ended, rate = video.playbackRate;
    video.addEventListener("loadedmetadata", function resume() {
      video.removeEventListener("loadedmetadata", resume);
      if (at > 0) { video.currentTime = Math.min(at, video.duration || at); }
      video.playbackRate = rate;
      if (playing) { video.play().catch(function () { /* autoplay refused: stay paused */ }); }
    });
    video.src = source.src;
    video.load();
  }

  function enhance(video) {
    var sources = Array.prototype.filter.call(video.querySelectorAll("source"), function (s) {
      return !s.type || video.canPlayType(s.type) !== "";
    });
    if (sources.length < 2) { return; }
    var label = document.createElement("label");
    label.className = "video-quality";
    label.appendChild(document.createTextNode(gettext("Quality") + " "));
    var select = document.createElement("select");
    sources.forEach(function (source, index) {
      var option = document.createElement("option");
      option.value = String(index);
      option.textContent = source.getAttribute("data-label") || gettext("Version %(number)s", { number: index + 1 });
      select.appendChild(option);
    });
    label.appendChild(select);
    video.parentNode.insertBefore(label, video.nextSibling);

    var wanted = remembered();
    sources.forEach(function (source, index) {
      if (wanted && source.getAttribute("data-label") === wanted) {
        select.value = String(index);
        switchTo(video, source);
      }
    });
    select.addEventListener("change", function () {
      var source = sources[Number(select.value)];
      remember(source.getAttribute("data-label"));
      switchTo(video, source);
    });
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("video.video-player"), enhance);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
