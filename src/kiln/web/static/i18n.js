// The browser's half of Kiln's translations (kiln/i18n.py says how they are chosen). Pages carry the
// current language's JavaScript strings in <script type="application/json" id="kiln-i18n">; this file
// gives every other script gettext() and ngettext() over them, with the language's plural rules from
// Intl.PluralRules, and formatNumber() with the language's separators. Digits are always Latin
// ("1,5", "1,234.5" in Arabic), as kiln.i18n.format_number writes them on the server (Babel's
// default numbering system is "latn"), so a page never mixes two kinds of digits.
(function () {
  'use strict';
  const node = document.getElementById('kiln-i18n');
  let messages = {};
  try { messages = node ? JSON.parse(node.textContent).messages || {} : {}; } catch (e) { messages = {}; }
  const lang = document.documentElement.lang || 'en';
  const plurals = new Intl.PluralRules(lang);
  // Babel's pattern "#,##0.###": up to three decimals, groups from four digits ("1.234" in Spanish too).
  const numbers = new Intl.NumberFormat(lang, { maximumFractionDigits: 3, numberingSystem: 'latn',
                                                useGrouping: 'always' });

  function fill(text, params) {
    if (!params) return text;
    return text.replace(/%\((\w+)\)s/g, function (whole, name) {
      if (!(name in params)) return whole;
      const value = params[name];
      return typeof value === 'number' ? numbers.format(value) : String(value);
    });
  }

  window.gettext = function (message, params) {
    const found = messages[message];
    return fill(typeof found === 'string' && found ? found : message, params);
  };

  window.ngettext = function (singular, plural, n, params) {
    const found = messages[singular];
    let text = n === 1 ? singular : plural;
    if (found && typeof found === 'object') text = found[plurals.select(n)] || found.other || text;
    return fill(text, Object.assign({ n: n }, params || {}));
  };

  window.formatNumber = function (n) { return numbers.format(n); };
  // A whole percentage the language's way ("50 %" in German and French), in Latin digits.
  const percents = new Intl.NumberFormat(lang, { style: 'percent', maximumFractionDigits: 0,
                                                 numberingSystem: 'latn' });
  window.formatPercent = function (n) { return percents.format(n / 100); };
})();
