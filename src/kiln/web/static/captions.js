// Captions for audio: browsers show a video's text tracks themselves, but not an audio element's.
// The menu next to the player picks a track; its current caption is written under the player.
(function () {
  "use strict";
  document.querySelectorAll("[data-audio-captions]").forEach(function (box) {
    var player = box.parentNode.querySelector("audio");
    var choice = box.querySelector(".audio-caption-choice");
    var line = box.querySelector(".audio-caption-text");
    if (!player || !choice || !line || !player.textTracks) return;
    var shown = null;
    function show() {
      var cues = shown && shown.activeCues ? Array.prototype.map.call(shown.activeCues, function (c) { return c.text; }) : [];
      line.textContent = cues.join("\n");
    }
    choice.addEventListener("change", function () {
      Array.prototype.forEach.call(player.textTracks, function (track) {
        var on = track.language === choice.value;
        track.mode = on ? "hidden" : "disabled";  // hidden: cues fire, the browser draws nothing
        if (on) { shown = track; line.lang = track.language; }
      });
      if (!choice.value) shown = null;
      show();
    });
    Array.prototype.forEach.call(player.textTracks, function (track) { track.addEventListener("cuechange", show); });
    box.hidden = false;
  });
})();
