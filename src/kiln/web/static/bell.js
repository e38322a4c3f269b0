// The notification bell: asks GET /api/v1/notifications/count every 30 seconds while the tab is
// visible (and once when it becomes visible again), and updates the count in place, so new
// notifications show without reloading. Screen readers hear one polite sentence only when the
// count goes up, never on every poll. Without JavaScript the count is the one the page was served with.
(function () {
  'use strict';
  const bell = document.getElementById('kiln-bell');
  if (!bell) return;
  const count = bell.querySelector('.bell-count');
  const number = bell.querySelector('.bell-n');
  const news = document.getElementById('kiln-bell-news');
  const every = 30000;
  let shown = parseInt(bell.getAttribute('data-unseen') || '0', 10) || 0;
  let timer = null;

  function show(n) {
    if (n === shown) return;
    const grew = n > shown;
    shown = n;
    bell.setAttribute('data-unseen', String(n));
    number.textContent = window.formatNumber ? window.formatNumber(n) : String(n);
    count.hidden = n === 0;
    if (grew && news) {
      news.textContent = window.ngettext('You have %(n)s unread notification.',
                                         'You have %(n)s unread notifications.', n);
    }
  }

  function ask() {
    fetch(bell.getAttribute('data-count-url'), { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) { if (body && typeof body.unseen === 'number') show(body.unseen); })
      .catch(function () { /* offline for a moment: the next poll tries again */ });
  }

  function start() { if (timer === null) timer = window.setInterval(ask, every); }
  function stop() { if (timer !== null) { window.clearInterval(timer); timer = null; } }

  document.addEventListener('visibilitychange', function () {
    if (document.hidden) { stop(); } else { ask(); start(); }
  });
  if (!document.hidden) start();
}());
