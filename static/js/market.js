// Market page: gate-closure countdowns, and the live parts (price chart, recent intervals,
// order book depth, the member's own fills) fed by static/js/live.js. Everything else on
// the page works without JavaScript.
(function () {
  "use strict";
  const started = Date.now();
  const CHART_POINTS = 96;

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

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function localTime(iso) {
    return new Date(iso).toLocaleString(undefined, { weekday: "short", hour: "2-digit", minute: "2-digit" });
  }

  function redrawChart(svg, prices) {
    const line = svg.querySelector("polyline");
    const box = svg.viewBox.baseVal;
    const values = prices.map(Number);
    const low = Math.min.apply(null, values), high = Math.max.apply(null, values);
    const span = high - low || 1;
    const step = box.width / Math.max(values.length - 1, 1);
    line.setAttribute("points", values.map(function (v, i) {
      return (i * step).toFixed(1) + "," + (box.height - 10 - ((v - low) / span) * (box.height - 20)).toFixed(1);
    }).join(" "));
    const range = document.getElementById("price-range");
    if (range) range.textContent = low.toFixed(5) + " – " + high.toFixed(5) + " per kWh";
  }

  function onCleared(message) {
    const rows = document.getElementById("recent-results-rows");
    if (rows) {
      const tr = document.createElement("tr");
      tr.dataset.intervalStart = message.interval_start;
      tr.append(cell(localTime(message.interval_start)), cell(message.price === null ? "–" : message.price),
                cell(String(message.volume_wh)));
      rows.prepend(tr);
      while (rows.children.length > 8) rows.lastElementChild.remove();
    }
    const svg = document.getElementById("price-chart");
    if (svg && message.price !== null) {
      const prices = (svg.dataset.prices || "").split(" ").filter(Boolean);
      prices.push(message.price);
      while (prices.length > CHART_POINTS) prices.shift();
      svg.dataset.prices = prices.join(" ");
      redrawChart(svg, prices);
    }
  }

  function fillRows(tbody, levels, empty) {
    tbody.replaceChildren();
    if (!levels.length) {
      const tr = document.createElement("tr");
      const td = cell(empty);
      td.colSpan = 2;
      tr.append(td);
      tbody.append(tr);
    }
    levels.forEach(function (level) {
      const tr = document.createElement("tr");
      tr.append(cell(String(level[0])), cell(String(level[1])));
      tbody.append(tr);
    });
  }

  function onDepth(message) {
    const depth = document.getElementById("depth");
    if (!depth || Date.parse(depth.dataset.interval) !== Date.parse(message.interval_start)) return;
    fillRows(document.getElementById("depth-bids"), message.bids, "No bids");
    fillRows(document.getElementById("depth-offers"), message.offers, "No offers");
  }

  function onFilled(message) {
    const list = document.getElementById("fills");
    if (list) {
      const li = document.createElement("li");
      li.textContent = "Order #" + message.order_id + " filled: " + message.quantity_wh + " Wh at " + message.price;
      list.prepend(li);
    }
    const row = document.getElementById("order-" + message.order_id);
    if (row) {
      const filled = row.querySelector(".order-filled");
      if (filled) filled.textContent = String(message.quantity_wh);
      const status = row.querySelector(".order-status");
      const quantity = row.querySelector('[data-label="Wh"]');
      if (status) {
        status.textContent = quantity && Number(quantity.textContent) === message.quantity_wh ? "Filled" : "Partially filled";
      }
    }
  }

  tick();
  setInterval(tick, 1000);
  if (window.EnergyLive) {
    window.EnergyLive.on("market.cleared", onCleared);
    window.EnergyLive.on("market.depth", onDepth);
    window.EnergyLive.on("trade.filled", onFilled);
  }
})();
