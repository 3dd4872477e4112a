/* energycoop live client: one websocket per page, reconnect with backoff, dispatch by type.
 *
 *   <script src="{% static 'js/live.js' %}" defer></script>
 *   EnergyLive.on("market.depth", function (message) { ... });   // any time, before or after start
 *   EnergyLive.on("*", function (message) { ... });              // every message
 *   EnergyLive.start();                 // optional: starts by itself when the page has a
 *                                       // [data-live-url] or [data-live-state] element
 *
 * The socket URL is the first [data-live-url] attribute on the page ("/ws/live/" for members,
 * "/ws/ticker/" for the public ticker), else "/ws/live/". Every [data-live-state] element shows
 * the connection state as text and as its data-state attribute: connecting, live,
 * reconnecting, closed. Messages are also re-dispatched as DOM events "live:<type>" on
 * document (detail = the message). Built-in widgets: [data-live-tile="price"] (the price tile)
 * and [data-live-ticker] (a table body of cleared intervals), both on market.cleared.
 * No framework, no build step.
 */
(function () {
  "use strict";
  if (window.EnergyLive) {
    return; // one socket per page, however many partials load this file
  }

  var BACKOFF_FIRST_MS = 1000;
  var BACKOFF_MAX_MS = 30000;
  // Close codes after which reconnecting cannot help (see apps/realtime/consumers.py).
  var FINAL_CODES = { 4401: "signed out", 4403: "membership not active" };

  var handlers = {};
  var socket = null;
  var started = false;
  var attempts = 0;
  var retryTimer = null;
  var state = "idle";

  function setState(next, detail) {
    state = next;
    var label = {
      connecting: "connecting…",
      live: "live",
      reconnecting: "reconnecting…",
      closed: "offline"
    }[next] || next;
    var nodes = document.querySelectorAll("[data-live-state]");
    for (var i = 0; i < nodes.length; i++) {
      nodes[i].setAttribute("data-state", next);
      nodes[i].textContent = detail ? label + " (" + detail + ")" : label;
    }
    document.dispatchEvent(new CustomEvent("live:state", { detail: { state: next, detail: detail || "" } }));
  }

  function socketUrl() {
    var holder = document.querySelector("[data-live-url]");
    var path = (holder && holder.getAttribute("data-live-url")) || "/ws/live/";
    if (/^wss?:\/\//.test(path)) {
      return path;
    }
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  }

  function dispatch(message) {
    var lists = [handlers[message.type] || [], handlers["*"] || []];
    for (var l = 0; l < lists.length; l++) {
      for (var i = 0; i < lists[l].length; i++) {
        try {
          lists[l][i](message);
        } catch (error) {
          console.error("live handler for " + message.type + " failed", error);
        }
      }
    }
    document.dispatchEvent(new CustomEvent("live:" + message.type, { detail: message }));
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    setState(attempts ? "reconnecting" : "connecting");
    var ws = new WebSocket(socketUrl());
    socket = ws;
    ws.onopen = function () {
      attempts = 0;
      setState("live");
    };
    ws.onmessage = function (event) {
      var message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        console.error("live: not JSON", event.data);
        return;
      }
      if (message && typeof message.type === "string") {
        dispatch(message);
      }
    };
    ws.onclose = function (event) {
      if (socket !== ws) {
        return;
      }
      socket = null;
      if (FINAL_CODES[event.code]) {
        setState("closed", FINAL_CODES[event.code]);
        return;
      }
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    // Exponential backoff with jitter: 1 s, 2 s, 4 s ... 30 s, so a restarted server is not
    // hit by every page at the same instant.
    var delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * Math.pow(2, attempts));
    delay = delay / 2 + Math.random() * (delay / 2);
    attempts += 1;
    setState("reconnecting", "in " + Math.ceil(delay / 1000) + " s");
    retryTimer = setTimeout(connect, delay);
  }

  function start() {
    if (started) {
      return EnergyLive;
    }
    started = true;
    connect();
    // Come back at once when the network or the tab does, rather than at the next backoff step.
    window.addEventListener("online", function () {
      if (!socket) {
        attempts = 0;
        connect();
      }
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible" && !socket && retryTimer) {
        connect();
      }
    });
    return EnergyLive;
  }

  function on(type, handler) {
    (handlers[type] = handlers[type] || []).push(handler);
    return EnergyLive;
  }

  // --- Formatting shared by the widgets (the server renders the same on first paint) -------

  function formatWh(value) {
    return Number(value).toLocaleString("en") + " Wh";
  }

  function formatInterval(iso, timeZone) {
    // "Thu 26 Nov, 10:15" in the coop's time zone, as Django's date:"D j M, H:i" renders it.
    var parts = {};
    var format = new Intl.DateTimeFormat("en-GB", {
      timeZone: timeZone || undefined,
      weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23"
    });
    format.formatToParts(new Date(iso)).forEach(function (part) {
      parts[part.type] = part.value;
    });
    return parts.weekday + " " + parts.day + " " + parts.month + ", " + parts.hour + ":" + parts.minute;
  }

  function setField(root, name, text) {
    var node = root.querySelector('[data-field="' + name + '"]');
    if (node) {
      node.textContent = text;
    }
    return node;
  }

  function updatePriceTiles(message) {
    var tiles = document.querySelectorAll('[data-live-tile="price"]');
    for (var i = 0; i < tiles.length; i++) {
      var tile = tiles[i];
      var shown = tile.getAttribute("data-interval-start");
      if (shown && new Date(shown) > new Date(message.interval_start)) {
        continue; // a late message for an older interval never replaces a newer price
      }
      tile.setAttribute("data-interval-start", message.interval_start);
      setField(tile, "price", message.price === null ? "–" : message.price);
      setField(tile, "volume", formatWh(message.volume_wh));
      setField(tile, "trades", String(message.trades));
      var when = setField(tile, "interval", formatInterval(message.interval_start, tile.getAttribute("data-tz")));
      if (when) {
        when.setAttribute("datetime", message.interval_start);
      }
      tile.classList.remove("live-flash");
      void tile.offsetWidth; // restart the highlight animation
      tile.classList.add("live-flash");
    }
  }

  function updateTickers(message) {
    var bodies = document.querySelectorAll("[data-live-ticker]");
    for (var i = 0; i < bodies.length; i++) {
      var body = bodies[i];
      var keep = parseInt(body.getAttribute("data-live-ticker"), 10) || 24;
      var row = body.querySelector('tr[data-interval-start="' + message.interval_start + '"]');
      if (!row) {
        row = document.createElement("tr");
        row.setAttribute("data-interval-start", message.interval_start);
        ["interval", "price", "volume", "trades"].forEach(function (name) {
          var cell = document.createElement("td");
          cell.setAttribute("data-field", name);
          row.appendChild(cell);
        });
        var before = null;
        var rows = body.querySelectorAll("tr[data-interval-start]");
        for (var r = 0; r < rows.length; r++) {
          if (new Date(rows[r].getAttribute("data-interval-start")) < new Date(message.interval_start)) {
            before = rows[r];
            break;
          }
        }
        body.insertBefore(row, before);
        var empty = body.querySelector("[data-live-empty]");
        if (empty) {
          empty.remove();
        }
      }
      setField(row, "interval", formatInterval(message.interval_start, body.getAttribute("data-tz")));
      setField(row, "price", message.price === null ? "–" : message.price);
      setField(row, "volume", formatWh(message.volume_wh));
      setField(row, "trades", String(message.trades));
      var all = body.querySelectorAll("tr[data-interval-start]");
      for (var k = keep; k < all.length; k++) {
        all[k].remove();
      }
    }
  }

  var EnergyLive = {
    on: on,
    start: start,
    get state() {
      return state;
    },
    format: { wh: formatWh, interval: formatInterval }
  };
  window.EnergyLive = EnergyLive;

  on("market.cleared", updatePriceTiles);
  on("market.cleared", updateTickers);

  function autostart() {
    if (document.querySelector("[data-live-url], [data-live-state]")) {
      start();
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", autostart);
  } else {
    autostart();
  }
})();
