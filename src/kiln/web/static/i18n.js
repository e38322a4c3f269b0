// The browser's half of Kiln's translations (kiln/i18n.py says how they are chosen). Pages carry the
// current language's JavaScript strings in <script type="application/json" id="kiln-i18n">; this file
// gives every other script gettext() and ngettext() over them, with the language's plural rules from
// Intl.PluralRules, and formatNumber() in the language's digits and separators.
(function () {
  'use strict';
  const node = document.getElementById('kiln-i18n');
  let messages = {};
  try { messages = node ? JSON.parse(node.textContent).messages || {} : {}; } catch (e) { messages = {}; }
  const lang = document.documentElement.lang || 'en';
  const plurals = new Intl.PluralRules(lang);
  const numbers = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });

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
})();
