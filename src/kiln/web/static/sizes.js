// Byte counts as people read them, the same text as kiln.units.format_size on the server:
// "700 B", "1.5 KiB", "100 MiB", "2 GiB" (1024s, at most one decimal, half up, never "0.0").
(function (root) {
  "use strict";
  var UNITS = ["KiB", "MiB", "GiB", "TiB"];
  function formatSize(size) {
    if (size < 1024) return size + " B";
    for (var i = 0; i < UNITS.length; i++) {
      var unit = Math.pow(1024, i + 1);
      var tenths = Math.floor((size * 10 + unit / 2) / unit);
      if (tenths < 10240 || i === UNITS.length - 1) {
        var whole = Math.floor(tenths / 10), tenth = tenths % 10;
        return (tenth === 0 ? String(whole) : whole + "." + tenth) + " " + UNITS[i];
      }
    }
  }
  root.Kiln = root.Kiln || {};
  root.Kiln.formatSize = formatSize;
})(typeof window !== "undefined" ? window : globalThis);
