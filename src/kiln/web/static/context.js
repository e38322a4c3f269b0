// Previous and next within the list a media page was opened from: a gallery, a collection, a tag,
// a search, the front page or the explore page.
//
// Without this script (or opened from elsewhere), a media page's links go to its owner's newer and
// older items. With it, a click on a card of a grid (ul.grid) remembers that grid's items, in order,
// for this tab (sessionStorage: nothing leaves the browser); the media page then links to the items
// before and after it in that list, says which list, and links back to it. The photo viewer
// (viewer.js) follows the same links, so arrows and swipes walk the same list.
(function () {
  "use strict";
  var KEY = "kiln.context";
  var store;
  try { store = window.sessionStorage; } catch (e) { return; }
  if (!store) { return; }

  function read() {
    try { return JSON.parse(store.getItem(KEY) || "null"); } catch (e) { return null; }
  }

  document.addEventListener("click", function (event) {
    var card = event.target.closest && event.target.closest("ul.grid a[href]");
    if (!card) { return; }
    var grid = card.closest("ul.grid");
    var items = [];
    Array.prototype.forEach.call(grid.querySelectorAll("a[href]"), function (a) {
      var path = new URL(a.getAttribute("href"), window.location.href).pathname;
      if (/\/m\/[0-9]+$/.test(path) && items.indexOf(path) < 0) { items.push(path); } // not the authors' links
    });
    if (items.indexOf(new URL(card.getAttribute("href"), window.location.href).pathname) < 0) { return; }
    var heading = document.querySelector("main h1");
    try {
      store.setItem(KEY, JSON.stringify({
        from: window.location.pathname + window.location.search,
        label: heading ? heading.textContent.trim().slice(0, 120) : document.title,
        items: items
      }));
    } catch (e) { /* storage full or refused: the owner's neighbours stay */ }
  });

  // The neighbours of a media page's path in the remembered list, or null.
  function around(path) {
    var context = read();
    if (!context || !Array.isArray(context.items)) { return null; }
    var at = context.items.indexOf(path);
    if (at < 0) { return null; }
    return { newer: context.items[at - 1] || null, older: context.items[at + 1] || null,
             label: context.label, from: context.from };
  }
  window.kilnContext = around;

  function relink() {
    var nav = document.querySelector("article.media nav.prevnext");
    var found = nav && around(window.location.pathname);
    if (!found) { return; }
    nav.textContent = "";
    nav.classList.add("in-context");
    var back = document.createElement("a");
    back.href = found.from;
    back.className = "context-back";
    back.textContent = window.gettext("Back to “%(title)s”", { title: found.label });
    if (found.newer) {
      var prev = document.createElement("a");
      prev.rel = "prev";
      prev.href = found.newer;
      prev.textContent = window.gettext("← Previous");
      nav.appendChild(prev);
    }
    nav.appendChild(back);
    if (found.older) {
      var next = document.createElement("a");
      next.rel = "next";
      next.href = found.older;
      next.textContent = window.gettext("Next →");
      nav.appendChild(next);
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", relink);
  } else {
    relink();
  }
}());
