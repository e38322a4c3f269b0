// Refreshes the processing panel while anything is still queued or processing.
(function () {
  "use strict";
  var busy = document.querySelectorAll('tr[data-state="queued"], tr[data-state="processing"]');
  if (busy.length) setTimeout(function () { window.location.reload(); }, 3000);
})();
