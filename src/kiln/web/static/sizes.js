// Byte counts as people read them, the same text as kiln.units.format_size on the server:
// "700 B", "1.5 KiB", "100 MiB", "2 GiB" (1024s, at most one decimal, half up, never "0.0"). The
// decimal separator is the page's language's ("1,5 KiB" in German); digits are always Latin and never
// grouped, as on the server (kiln.units, kiln.i18n.decimal_symbol).
(function (root) {
  "use strict";
  var UNITS = ["KiB", "MiB", "GiB", "TiB"];

  // The decimal symbol of a language in Latin digits ("." for en and ar, "," for de, es, fr).
  function decimalSymbol(lang) {
    try {
      var parts = new Intl.NumberFormat(lang || "en", { numberingSystem: "latn" }).formatToParts(1.5);
      for (var i = 0; i < parts.length; i++) if (parts[i].type === "decimal") return parts[i].value;
    } catch (e) { /* an unknown language: English */ }
    return ".";
  }

  function pageDecimal() {
    var doc = root.document;
    return decimalSymbol(doc && doc.documentElement && doc.documentElement.lang);
  }

  function formatSize(size, decimal) {
    if (size < 1024) return size + " B";
    for (var i = 0; i < UNITS.length; i++) {
      var unit = Math.pow(1024, i + 1);
      var tenths = Math.floor((size * 10 + unit / 2) / unit);
      if (tenths < 10240 || i === UNITS.length - 1) {
        var whole = Math.floor(tenths / 10), tenth = tenths % 10;
        if (tenth === 0) return whole + " " + UNITS[i];
        return whole + (typeof decimal === "string" ? decimal : pageDecimal()) + tenth + " " + UNITS[i];
      }
    }
  }
  root.Kiln = root.Kiln || {};
  root.Kiln.formatSize = formatSize;
  root.Kiln.decimalSymbol = decimalSymbol;
})(typeof window !== "undefined" ? window : globalThis);
