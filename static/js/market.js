// Market page: gate-closure countdowns. Live updates (prices, depth, fills) are wired below
// when the live client (live.js) is on the page; everything else works without JavaScript.
(function () {
  "use strict";
  const started = Date.now();

  function formatLeft(ms) {
    if (ms <= 0) return "closed";
    const s = Math.floor(ms / 1000);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return (h ? h + " h " : "") + m + " min " + String(sec).padStart(2, "0") + " s";
  }

  function tick() {
    document.querySelectorAll(".countdown[data-gate][data-now]").forEach(function (cell) {
      // Business time on the server when the page was rendered, advanced by real time here.
      const gate = Date.parse(cell.dataset.gate);
      const serverNow = Date.parse(cell.dataset.now) + (Date.now() - started);
      cell.textContent = formatLeft(gate - serverNow);
    });
  }

  tick();
  setInterval(tick, 1000);
})();
