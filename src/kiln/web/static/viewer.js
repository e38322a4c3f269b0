// The photo viewer of image pages (markup and words: mediatypes/image/display.html).
//
// Without this script the photo is a plain link to its largest rendition. With it, the link opens
// a modal <dialog>: the full-size picture (data-full: the published original when browsers can
// show it) fills the screen; Left/Right, swipes and the two buttons
// go to the newer and older items (the page's own neighbour links, so the viewer follows exactly
// what the page would; within the list the page was opened from, see context.js); Escape or the close button shut it, landing on the page of the item last
// shown. A neighbour that is not a photo (a video, a PDF...) is opened as its page. Clicking the
// picture switches between fitting the screen and its actual pixels.
(function () {
  "use strict";
  var link = document.querySelector("a[data-viewer]");
  var dialog = document.querySelector("dialog[data-viewer-dialog]");
  if (!link || !dialog || typeof dialog.showModal !== "function" || !window.fetch || !window.DOMParser) {
    return; // the plain link stays
  }
  var stage = dialog.querySelector(".viewer-stage");
  var img = dialog.querySelector(".viewer-img");
  var title = dialog.querySelector(".viewer-title");
  var status = dialog.querySelector(".viewer-status");
  var newerButton = dialog.querySelector(".viewer-prev");
  var olderButton = dialog.querySelector(".viewer-next");
  var download = dialog.querySelector(".viewer-download");
  var closeButton = dialog.querySelector(".viewer-close");
  var SWIPE = 40; // px of horizontal travel that count as a swipe

  function entry(doc, page) {
    var photo = doc.querySelector("a[data-viewer]");
    var newer = doc.querySelector('nav.prevnext a[rel="prev"]');
    var older = doc.querySelector('nav.prevnext a[rel="next"]');
    return {
      page: page,
      photo: photo && {
        full: photo.dataset.full || photo.getAttribute("href"),
        title: photo.dataset.title || "",
        width: photo.dataset.width,
        height: photo.dataset.height,
        download: photo.dataset.download,
        downloadName: photo.dataset.downloadName,
        downloadLabel: photo.dataset.downloadLabel
      },
      newer: newer && newer.getAttribute("href"),
      older: older && older.getAttribute("href")
    };
  }

  // Within the list the page was opened from (context.js), its neighbours there instead.
  function inContext(item) {
    var found = window.kilnContext && window.kilnContext(item.page);
    if (found) {
      item.newer = found.newer;
      item.older = found.older;
    }
    return item;
  }

  var here = inContext(entry(document, window.location.pathname));
  var current = here;
  var pages = {}; // page URL -> Promise of its entry

  function load(url) {
    if (!pages[url]) {
      pages[url] = window.fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.text();
        })
        .then(function (html) {
          return inContext(entry(new window.DOMParser().parseFromString(html, "text/html"), url));
        });
      pages[url].catch(function () { delete pages[url]; });
    }
    return pages[url];
  }

  function preload(url) {
    if (!url) { return; }
    load(url).then(function (next) {
      if (next.photo) { new window.Image().src = next.photo.full; }
    }, function () { /* the page will be asked again when wanted */ });
  }

  function zoom(on) {
    dialog.classList.toggle("zoomed", on);
  }

  function show(item) {
    var photo = item.photo;
    current = item;
    zoom(false);
    status.textContent = dialog.dataset.loading || "";
    img.removeAttribute("src"); // never show the previous picture under the new title
    if (photo.width && photo.height) {
      img.width = Number(photo.width);
      img.height = Number(photo.height);
    } else {
      img.removeAttribute("width");
      img.removeAttribute("height");
    }
    img.alt = photo.title;
    img.src = photo.full;
    title.textContent = photo.title;
    download.href = photo.download;
    download.setAttribute("download", photo.downloadName || "");
    download.textContent = photo.downloadLabel || "";
    newerButton.disabled = !item.newer;
    olderButton.disabled = !item.older;
    preload(item.older);
    preload(item.newer);
  }

  function go(direction) {
    var url = current[direction];
    if (!url) { return; }
    load(url).then(function (item) {
      if (item.photo) { show(item); } else { window.location.assign(url); }
    }, function () { window.location.assign(url); });
  }

  img.addEventListener("load", function () { status.textContent = ""; });
  img.addEventListener("error", function () {
    if (img.getAttribute("src")) { status.textContent = dialog.dataset.failed || ""; }
  });

  link.addEventListener("click", function (event) {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return; // a new tab or a download, as the visitor asked
    }
    event.preventDefault();
    show(here);
    dialog.showModal();
  });

  dialog.addEventListener("close", function () {
    img.removeAttribute("src");
    if (current !== here) { window.location.assign(current.page); }
  });
  closeButton.addEventListener("click", function () { dialog.close(); });
  newerButton.addEventListener("click", function () { go("newer"); });
  olderButton.addEventListener("click", function () { go("older"); });

  // A modal dialog makes the page behind it inert, but Tab past its last control would leave for
  // the browser's own bar: wrap around instead, so keyboard users stay in the viewer until it closes.
  function wrapFocus(event) {
    var controls = Array.prototype.filter.call(dialog.querySelectorAll("button, a[href]"), function (c) {
      return !c.disabled && c.offsetParent !== null;
    });
    if (!controls.length) { return; }
    var first = controls[0], last = controls[controls.length - 1];
    var inside = dialog.contains(document.activeElement);
    if (event.shiftKey && (document.activeElement === first || !inside)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
      event.preventDefault();
      first.focus();
    }
  }

  dialog.addEventListener("keydown", function (event) {
    if (event.key === "Tab") { wrapFocus(event); return; }
    if (event.altKey || event.ctrlKey || event.metaKey) { return; }
    if (event.key === "ArrowRight") { event.preventDefault(); go("older"); }
    if (event.key === "ArrowLeft") { event.preventDefault(); go("newer"); }
  });

  img.addEventListener("click", function () {
    var larger = img.naturalWidth > img.clientWidth || img.naturalHeight > img.clientHeight;
    zoom(!dialog.classList.contains("zoomed") && larger);
  });
  stage.addEventListener("click", function (event) {
    if (event.target === stage) { dialog.close(); } // the dark space around the picture
  });

  // Swipes, with pointer events (touch, pen and mouse alike); off while zoomed, where a drag pans.
  var start = null, downX = null;
  stage.addEventListener("pointerdown", function (event) {
    downX = event.clientX;
    start = event.isPrimary ? { x: event.clientX, y: event.clientY } : null;
  });
  stage.addEventListener("pointercancel", function () { start = null; });
  stage.addEventListener("pointerup", function (event) {
    if (!start || dialog.classList.contains("zoomed")) { start = null; return; }
    var dx = event.clientX - start.x, dy = event.clientY - start.y;
    start = null;
    if (Math.abs(dx) >= SWIPE && Math.abs(dx) > 1.5 * Math.abs(dy)) {
      go(dx < 0 ? "older" : "newer"); // pulling the picture left brings the next one, as on phones
    }
  });
  // A mouse swipe ends with a click on the stage or the picture: it must not close or zoom.
  stage.addEventListener("click", function (event) {
    if (downX !== null && Math.abs(event.clientX - downX) >= SWIPE) { event.stopImmediatePropagation(); }
  }, true);
})();
