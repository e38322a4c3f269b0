// The audio player's waveform: drawn from the peaks rendition on a canvas that shows the part
// already played, and seeks where it is clicked or dragged (or with the arrow keys when focused).
// Without JavaScript, or when the peaks cannot be fetched, the page keeps the waveform picture and
// the browser's own player; the picture then still seeks on click.
(function () {
  "use strict";

  if (!window.gettext) return; // static/i18n.js, loaded by every page
  var BASE = "#8aa4c0", PLAYED = "#b5471b", HOVER = "rgba(29,29,31,.35)";

  function setup(box) {
    var audio = box.parentNode.querySelector("audio");
    if (!audio) return;
    var picture = box.querySelector("img");
    var declared = parseFloat(box.getAttribute("data-duration")) || 0;
    var peaks = null, canvas = null, hover = -1, marker = null;

    function duration() {
      return isFinite(audio.duration) && audio.duration > 0 ? audio.duration : declared;
    }

    function fraction(event) {
      var rect = box.getBoundingClientRect();
      return Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width));
    }

    function seek(to) {
      var total = duration();
      if (!total) return;
      var go = function () { audio.currentTime = Math.min(total, Math.max(0, to * total)); draw(); };
      if (audio.readyState >= 1) go();
      else { audio.addEventListener("loadedmetadata", go, { once: true }); audio.load(); }
    }

    function played() {
      var total = duration();
      return total ? Math.min(1, audio.currentTime / total) : 0;
    }

    function draw() {
      var at = played();
      if (!canvas) {
        if (marker) marker.style.width = (at * 100) + "%";
        return;
      }
      var ratio = window.devicePixelRatio || 1;
      var width = Math.max(1, Math.round(box.clientWidth * ratio));
      var height = Math.max(1, Math.round(box.clientHeight * ratio));
      if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
      var ctx = canvas.getContext("2d");
      ctx.clearRect(0, 0, width, height);
      var bar = Math.max(1, Math.round(2 * ratio)), step = bar + Math.max(1, Math.round(ratio));
      var bars = Math.max(1, Math.floor(width / step));
      var loudest = 0;
      for (var i = 0; i < peaks.length; i++) loudest = Math.max(loudest, peaks[i]);
      var middle = height / 2;
      for (var b = 0; b < bars; b++) {
        var from = Math.floor(b * peaks.length / bars), to = Math.max(from + 1, Math.floor((b + 1) * peaks.length / bars));
        var value = 0;
        for (var j = from; j < to && j < peaks.length; j++) value = Math.max(value, peaks[j]);
        var reach = Math.max(1, (loudest ? value / loudest : 0) * middle * 0.9);
        ctx.fillStyle = (b + 0.5) / bars <= at ? PLAYED : BASE;
        ctx.fillRect(b * step, middle - reach, bar, reach * 2);
      }
      if (hover >= 0) {
        ctx.fillStyle = HOVER;
        ctx.fillRect(Math.round(hover * width), 0, Math.max(1, Math.round(ratio)), height);
      }
      canvas.setAttribute("aria-valuenow", String(Math.round(audio.currentTime)));
      canvas.setAttribute("aria-valuetext", gettext("%(position)s of %(duration)s",
                                                     { position: clock(audio.currentTime), duration: clock(duration()) }));
    }

    function clock(seconds) {
      seconds = Math.round(seconds || 0);
      var m = Math.floor(seconds / 60), s = seconds % 60;
      return m + ":" + (s < 10 ? "0" : "") + s;
    }

    function tick() {
      draw();
      if (!audio.paused) window.requestAnimationFrame(tick);
    }

    var dragging = false;
    box.addEventListener("pointerdown", function (event) {
      dragging = true;
      if (box.setPointerCapture) box.setPointerCapture(event.pointerId);
      seek(fraction(event));
    });
    box.addEventListener("pointermove", function (event) {
      hover = fraction(event);
      if (dragging) seek(hover); else draw();
    });
    box.addEventListener("pointerup", function () { dragging = false; });
    box.addEventListener("pointerleave", function () { hover = -1; draw(); });
    audio.addEventListener("play", tick);
    audio.addEventListener("timeupdate", draw);
    audio.addEventListener("seeked", draw);
    audio.addEventListener("loadedmetadata", function () {
      if (canvas) canvas.setAttribute("aria-valuemax", String(Math.round(duration())));
      draw();
    });
    window.addEventListener("resize", function () { if (canvas) draw(); });
    box.classList.add("audio-seekable");

    // Until (or unless) the peaks arrive, the picture seeks and a bar shows the played part.
    marker = document.createElement("span");
    marker.className = "audio-played";
    box.appendChild(marker);

    var url = box.getAttribute("data-peaks");
    if (!url || !window.fetch) return;
    fetch(url, { credentials: "same-origin" })
      .then(function (response) { if (!response.ok) throw new Error(response.status); return response.json(); })
      .then(function (data) {
        if (!data || !data.peaks || !data.peaks.length) return;
        peaks = data.peaks;
        if (!declared && data.duration) declared = data.duration;
        canvas = document.createElement("canvas");
        canvas.className = "audio-canvas";
        canvas.tabIndex = 0;
        canvas.setAttribute("role", "slider");
        canvas.setAttribute("aria-label", gettext("Position in the recording"));
        canvas.setAttribute("aria-valuemin", "0");
        canvas.setAttribute("aria-valuemax", String(Math.round(duration())));
        canvas.addEventListener("keydown", function (event) {
          var total = duration(), now = audio.currentTime, jump = null;
          if (event.key === "ArrowRight" || event.key === "ArrowUp") jump = now + 5;
          else if (event.key === "ArrowLeft" || event.key === "ArrowDown") jump = now - 5;
          else if (event.key === "Home") jump = 0;
          else if (event.key === "End") jump = total;
          else if (event.key === " " || event.key === "Enter") {
            event.preventDefault();
            if (audio.paused) audio.play(); else audio.pause();
            return;
          }
          if (jump === null || !total) return;
          event.preventDefault();
          seek(jump / total);
        });
        box.appendChild(canvas);
        box.removeChild(marker);
        marker = null;
        box.classList.add("audio-drawn");
        draw();
      })
      .catch(function () { /* keep the picture */ });
  }

  var boxes = document.querySelectorAll(".display-audio .audio-wave");
  for (var i = 0; i < boxes.length; i++) setup(boxes[i]);
})();
