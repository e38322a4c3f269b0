// The share box's copy buttons (templates/_share.html). Without this script the texts are still there,
// read-only and selectable; with it, each gets a button that copies it and says so.
(function () {
  'use strict';
  const box = document.querySelector('.share-box');
  if (!box) return;
  const status = box.querySelector('.share-status');
  box.querySelectorAll('.share-text').forEach(function (field) {
    field.addEventListener('focus', function () { field.select(); });
  });
  box.querySelectorAll('.share-copy').forEach(function (button) {
    const field = document.getElementById(button.dataset.copy);
    if (!field) return;
    button.hidden = false;
    button.addEventListener('click', function () {
      field.select();
      const done = function () { status.textContent = status.dataset.copied; };
      const failed = function () { status.textContent = status.dataset.failed; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, failed);
      } else {
        try { if (document.execCommand('copy')) done(); else failed(); } catch (e) { failed(); }
      }
    });
  });
})();
