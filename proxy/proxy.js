// A flash proxy: it stands between a Tor client's websocket-client (flashproxy method) and a
// bridge's websocket-server, and copies WebSocket messages between the two. Plain JavaScript,
// no dependency; see proxy.html and the README section "Flash-proxy mode".
//
// Query parameters (of the page, or of the iframe that embeds it):
//   client=HOST:PORT or ws[s]://...   the Tor client to serve (with relay=)
//   relay=HOST:PORT or ws[s]://...    the bridge's websocket-server
//   facilitator=URL                   instead of client= and relay=: poll URL?r=1&transport=websocket
//   max_clients=N                     at most N pairs at once (default 10)
//   ratelimit=100k|10m|off            bytes per second, both ways together (k, m: 1024, 1048576)
//   base64                            offer the "base64" subprotocol (text messages) on both sides
//   optin (or cookierequired)         do nothing until the visitor switches the proxy on
//   debug                             show a log on the page
// The visitor's on/off choice is kept in localStorage; without optin the proxy starts on.
//
// Flow control: a browser cannot stop reading a WebSocket, so each direction keeps a queue.
// Messages go from the queue to the other socket while its bufferedAmount is under HIGH_WATER
// (and the rate limit allows); when queue plus bufferedAmount pass MAX_PENDING the pair is
// closed, since the sender outruns the receiver beyond what this page will hold. For the same
// reason a pair counts against max_clients until the browser has really closed its sockets.
"use strict";

(function () {
  var HIGH_WATER = 256 * 1024; // bytes buffered by a socket before we stop handing it more
  var MAX_PENDING = 16 * 1024 * 1024; // bytes one direction may hold: then close the pair
  var MIN_CHECK_BACK = 10, MAX_CHECK_BACK = 3600; // seconds between facilitator polls
  var POLL_TIMEOUT = 15000; // ms for the facilitator's whole answer
  var MAX_ANSWER = 4096; // bytes of a facilitator answer (a few hundred are needed)
  var RETRY_MIN = 1000, RETRY_MAX = 300000; // ms before a new pair after a failure (doubles)
  var CONNECT_TIMEOUT = 30000; // ms for a WebSocket to open
  var SLOT = 10000, SLOTS = 30; // the history: bytes relayed per 10 s, for 5 minutes
  var STORE_KEY = "tor-flashproxy"; // localStorage: "on" or "off", the visitor's choice

  var params = new URLSearchParams(window.location.search);
  var debugOn = flag("debug");
  var cfg = {};
  var pairs = []; // pairs not yet released: their sockets count against max_clients
  var stats = { bytes: 0, pairs: 0, served: 0, slot: 0 };
  var history = [];
  var lastError = null;
  var retry = RETRY_MIN;
  var notBefore = 0; // Date.now() before which no new pair is made: the back-off
  var running = false;
  var timer = null; // the next poll, or the next spare pair
  var polling = null; // the AbortController of the current poll
  var bucket = { tokens: 0, last: Date.now() };

  // ---- parameters

  function flag(name) {
    var v = params.get(name);
    return v !== null && !/^(0|false|no|off)$/i.test(v);
  }

  function count(name, def) {
    var v = params.get(name);
    if (v === null) return def;
    var n = parseInt(v, 10);
    if (!(n > 0)) throw new Error(name + " must be a positive integer");
    return n;
  }

  // byteRate parses "off", "12345", "100k", "10m" into bytes per second (0 for off).
  function byteRate(s) {
    var m = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(s);
    if (/^off$/i.test(s)) return 0;
    if (!m) throw new Error("ratelimit: want a number with k or m, or off");
    return Math.floor(parseFloat(m[1]) * { "": 1, k: 1024, m: 1048576 }[m[2].toLowerCase()]);
  }

  // wsURL turns HOST:PORT (IPv6 in brackets) into ws://HOST:PORT/ and checks it, or a ws:// or
  // wss:// URL, before any WebSocket sees it: a plausible host, a port from 1 to 65535 (the URL
  // parser refuses larger ones; new WebSocket would throw on them).
  function wsURL(s, name) {
    var hostPort = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(s);
    var u = null;
    try {
      u = new URL(hostPort ? "ws://" + s + "/" : s);
    } catch (e) { /* u stays null */ }
    if (!u || !/^wss?:$/.test(u.protocol) || u.username || u.password || u.port === "0" || !plausibleHost(u.hostname)) {
      throw new Error(name + ": want HOST:PORT (port 1 to 65535) or a ws:// or wss:// URL");
    }
    return u.href;
  }

  // plausibleHost: a DNS name or an IPv4 address (the URL parser has checked its numbers), or
  // an IPv6 address in brackets.
  function plausibleHost(h) {
    return /^\[[0-9a-f:.]+\]$/.test(h) ||
      (h.length <= 253 && /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.?$/.test(h));
  }

  // ---- what the page shows (only textContent: nothing from a peer becomes markup)

  function $(id) { return document.getElementById(id); }

  function log(msg) {
    if (!debugOn) return;
    var el = $("log");
    var line = new Date().toISOString().substr(11, 8) + " " + msg + "\n";
    el.textContent = (el.textContent + line).slice(-20000);
    el.scrollTop = el.scrollHeight;
  }

  function fmtBytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
    return (n / 1048576).toFixed(1) + " MiB";
  }

  function show() {
    var live = pairs.filter(function (p) { return !p.done && p.used; }).length;
    var state, text;
    if (lastError && live === 0) {
      state = "error";
      text = "error: " + lastError;
    } else if (!running) {
      state = "off";
      text = "off: switch it on to help";
    } else if (live > 0) {
      state = "active";
      text = "active: relaying for " + live + (live === 1 ? " connection" : " connections");
    } else {
      state = "idle";
      text = "on: waiting for someone to connect";
    }
    $("badge").className = state;
    $("badge").textContent = text;
    $("badge").setAttribute("data-bytes", stats.bytes);
    document.body.setAttribute("data-state", state);
    $("switch").checked = running;
    $("now").textContent = live;
    $("total").textContent = fmtBytes(stats.bytes);
    $("served").textContent = stats.served;
  }

  // tick closes a slot of the history and draws it as bars, the newest on the right.
  function tick() {
    history.push(stats.bytes - stats.slot);
    stats.slot = stats.bytes;
    history = history.slice(-SLOTS);
    var most = Math.max.apply(null, history.concat(1));
    var bars = $("history").children;
    for (var i = 0; i < SLOTS; i++) {
      var v = history[i - SLOTS + history.length];
      bars[i].style.height = v ? Math.max(1, Math.round(v / most * 100)) + "%" : "0";
      bars[i].title = v === undefined ? "" : fmtBytes(v) + " in 10 s";
    }
    $("rate").textContent = fmtBytes(Math.round(history[history.length - 1] * 1000 / SLOT)) + "/s";
  }

  function fail(msg) {
    lastError = msg;
    log("error: " + msg);
    show();
  }

  // ---- bytes

  function toBytes(data) {
    if (typeof data !== "string") return new Uint8Array(data);
    var s = atob(data); // throws on bad base64: the pair is closed
    var b = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
    return b;
  }

  function toBase64(b) {
    var s = "";
    for (var i = 0; i < b.length; i += 0x8000) {
      s += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
    }
    return btoa(s);
  }

  // take spends n bytes of the rate limit; it returns the ms to wait first (0: go now).
  function take(n) {
    if (!cfg.rate) return 0;
    var now = Date.now();
    bucket.tokens = Math.min(cfg.rate, bucket.tokens + (now - bucket.last) * cfg.rate / 1000);
    bucket.last = now;
    if (bucket.tokens < 0) return Math.ceil(-bucket.tokens * 1000 / cfg.rate);
    bucket.tokens -= n; // may go below zero: the next message waits for it
    return 0;
  }

  // ---- a pair: one WebSocket to the client, then one to the relay

  function openSocket(url, pair, name, opened) {
    var ws = new WebSocket(url, cfg.base64 ? ["base64"] : []);
    ws.binaryType = "arraybuffer";
    ws.label = name;
    var timer = setTimeout(pair.guard(name, function () {
      if (ws.readyState === WebSocket.CONNECTING) this.close(name + ": no connection within " + CONNECT_TIMEOUT / 1000 + " s");
    }), CONNECT_TIMEOUT);
    ws.onerror = pair.guard(name, function () { this.close(name + ": connection failed or broken"); });
    ws.onclose = pair.guard(name, function (e) {
      clearTimeout(timer);
      this.ended(ws, e);
    });
    ws.onmessage = pair.guard(name, function (e) { this.received(ws, toBytes(e.data)); });
    ws.onopen = pair.guard(name, function () {
      clearTimeout(timer);
      opened.call(this);
    });
    return ws;
  }

  // Direction: messages from src waiting to go to dst.
  function Direction(pair) {
    this.pair = pair;
    this.queue = [];
    this.queued = 0;
    this.ending = false; // src has closed: close dst once the queue is sent
    this.timer = null;
  }

  Direction.prototype.push = function (bytes) {
    this.queue.push(bytes);
    this.queued += bytes.length;
    if (this.queued > MAX_PENDING) return this.pair.close("over " + fmtBytes(MAX_PENDING) + " pending");
    this.flush();
  };

  Direction.prototype.flush = function () {
    var dst = this.dst;
    if (this.timer || !dst || dst.readyState !== WebSocket.OPEN) return;
    while (this.queue.length && dst.bufferedAmount < HIGH_WATER) {
      var wait = take(this.queue[0].length);
      if (wait) return this.later(wait);
      var b = this.queue.shift();
      this.queued -= b.length;
      dst.send(dst.protocol === "base64" ? toBase64(b) : b);
      stats.bytes += b.length;
    }
    if (this.queued + dst.bufferedAmount > MAX_PENDING) {
      return this.pair.close(dst.label + " too slow: over " + fmtBytes(MAX_PENDING) + " pending");
    }
    if (this.queue.length || (this.ending && dst.bufferedAmount > 0)) return this.later(50);
    if (this.ending) dst.close(1000);
    show();
  };

  Direction.prototype.later = function (ms) {
    var self = this;
    this.timer = setTimeout(this.pair.guard(this.dst.label, function () { self.timer = null; self.flush(); }), ms);
  };

  function Pair(clientURL, relayURL) {
    this.id = ++stats.pairs;
    this.relayURL = relayURL;
    this.toRelay = new Direction(this);
    this.toClient = new Direction(this);
    this.used = false; // the client has sent data: tor uses this pair
    this.done = false;
    this.error = null; // the first socket closed with an error code, if any
    pairs.push(this);
    log("pair " + this.id + ": connecting to the client");
    this.guard("client", function () { this.client = openSocket(clientURL, this, "client", this.clientOpen); })();
  }

  // guard wraps a handler of this pair: an exception closes the pair rather than leaving it
  // half open, counted against max_clients for good.
  Pair.prototype.guard = function (name, fn) {
    var self = this;
    return function (e) {
      try {
        fn.call(self, e);
      } catch (err) {
        self.close(name + ": " + (err && err.message || err));
      }
    };
  };

  Pair.prototype.clientOpen = function () {
    log("pair " + this.id + ": client connected (" + (this.client.protocol || "binary") + "), connecting to the relay");
    this.relay = openSocket(this.relayURL, this, "relay", function () {
      log("pair " + this.id + ": relay connected (" + (this.relay.protocol || "binary") + ")");
      lastError = null;
      this.toRelay.dst = this.relay;
      this.toClient.dst = this.client;
      this.toRelay.flush();
      show();
    });
    show();
  };

  Pair.prototype.received = function (ws, bytes) {
    if (ws === this.client && !this.used) {
      this.used = true;
      stats.served++;
      log("pair " + this.id + ": in use");
      spare(); // keep one pair waiting for the next connection from tor
    }
    var dir = ws === this.client ? this.toRelay : this.toClient;
    dir.push(bytes);
  };

  // ended: one socket closed; the other is closed after what is queued for it is sent.
  Pair.prototype.ended = function (ws, e) {
    log("pair " + this.id + ": " + ws.label + " closed (" + e.code + (e.reason ? " " + e.reason : "") + ")");
    if (!/^100[015]$/.test(e.code)) this.error = this.error || ws.label + " closed with " + e.code;
    if (this.done) return this.release();
    var other = ws === this.client ? this.relay : this.client;
    var dir = ws === this.client ? this.toRelay : this.toClient;
    if (other && other.readyState <= WebSocket.OPEN) {
      dir.ending = true;
      if (other.readyState === WebSocket.OPEN) dir.dst = other;
      if (other.readyState === WebSocket.CONNECTING) other.close(); // nothing to send it yet
      dir.flush();
      return;
    }
    this.finish(null);
  };

  // close ends both sockets at once, after an error (or with none, when switched off).
  Pair.prototype.close = function (err) {
    if (this.done) return;
    [this.client, this.relay].forEach(function (ws) {
      if (ws && ws.readyState <= WebSocket.OPEN) ws.close();
    });
    this.finish(err);
  };

  // finish ends the pair's work; a failure (used or not) puts off the next pair, twice as long
  // as the previous one did, until a used pair ends well.
  Pair.prototype.finish = function (err) {
    if (this.done) return;
    this.done = true;
    err = err || this.error;
    clearTimeout(this.toRelay.timer);
    clearTimeout(this.toClient.timer);
    log("pair " + this.id + ": done" + (err ? ", " + err : ""));
    if (err && running) {
      fail(err);
      notBefore = Date.now() + retry;
      retry = Math.min(retry * 2, RETRY_MAX);
    } else if (this.used) {
      retry = RETRY_MIN;
    } else {
      notBefore = Math.max(notBefore, Date.now() + RETRY_MIN); // turned away: do not hammer
    }
    this.release();
  };

  // release forgets a finished pair once the browser has closed both its sockets: it goes on
  // reading a closing socket (up to its close timeout), so until then the pair takes a place.
  Pair.prototype.release = function () {
    var open = [this.client, this.relay].some(function (ws) { return ws && ws.readyState !== WebSocket.CLOSED; });
    if (open || pairs.indexOf(this) < 0) return show();
    pairs.splice(pairs.indexOf(this), 1);
    show();
    spare();
  };

  // spare makes sure, in client= mode, that one pair waits for tor's next connection.
  function spare() {
    if (!running || !cfg.clientURL) return;
    clearTimeout(timer);
    timer = null;
    var wait = notBefore - Date.now();
    if (wait > 0) {
      timer = setTimeout(spare, wait);
      return;
    }
    var waiting = pairs.filter(function (p) { return !p.used && !p.done; }).length;
    if (waiting === 0 && pairs.length < cfg.maxClients) new Pair(cfg.clientURL, cfg.relayURL);
  }

  // ---- the facilitator

  // readAnswer reads a response's text, failing past MAX_ANSWER bytes rather than holding an
  // answer of any size.
  function readAnswer(resp) {
    var reader = resp.body.getReader(), decoder = new TextDecoder(), text = "", size = 0;
    return reader.read().then(function more(r) {
      if (r.done) return text + decoder.decode();
      size += r.value.length;
      if (size > MAX_ANSWER) {
        reader.cancel();
        throw new Error("answer over " + MAX_ANSWER + " bytes");
      }
      text += decoder.decode(r.value, { stream: true });
      return reader.read().then(more);
    });
  }

  function poll() {
    var next = MIN_CHECK_BACK; // seconds
    var sep = cfg.facilitator.indexOf("?") < 0 ? "?" : "&";
    var controller = new AbortController();
    var deadline = setTimeout(function () { controller.abort(); }, POLL_TIMEOUT);
    var again = function () {
      clearTimeout(deadline);
      if (polling !== controller) return; // switched off meanwhile
      timer = setTimeout(poll, Math.max(next * 1000, notBefore - Date.now()));
    };
    polling = controller;
    if (pairs.length >= cfg.maxClients) return again();
    log("polling the facilitator");
    fetch(cfg.facilitator + sep + "r=1&transport=websocket",
      { cache: "no-store", credentials: "omit", signal: controller.signal }).then(function (resp) {
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      return readAnswer(resp);
    }).then(function (text) {
      var a = new URLSearchParams(text.trim());
      // Clamped: setTimeout wraps past 2^31 ms, and an hour is long enough to wait.
      next = Math.min(MAX_CHECK_BACK, Math.max(MIN_CHECK_BACK, parseInt(a.get("check-back-in"), 10) || 0));
      if (!a.get("client")) {
        log("no client waiting; next poll in " + next + " s");
        return;
      }
      new Pair(wsURL(a.get("client"), "client"), wsURL(a.get("relay"), "relay"));
    }).catch(function (err) {
      if (polling !== controller) return;
      fail("facilitator: " + (controller.signal.aborted ? "no answer within " + POLL_TIMEOUT / 1000 + " s" : err.message));
    }).then(again);
  }

  // ---- on and off

  function start() {
    if (cfg.facilitator) {
      log("facilitator mode, up to " + cfg.maxClients + " pairs");
      poll();
    } else if (cfg.client || cfg.relay) {
      cfg.clientURL = wsURL(cfg.client, "client");
      cfg.relayURL = wsURL(cfg.relay, "relay");
      log("serving " + cfg.clientURL + " through " + cfg.relayURL + ", up to " + cfg.maxClients + " pairs");
      spare();
    } else {
      throw new Error("give client= and relay=, or facilitator=");
    }
  }

  // turn switches the proxy on or off; off closes every pair and stops polling.
  function turn(on) {
    running = on;
    lastError = null;
    clearTimeout(timer);
    if (polling) polling.abort();
    polling = null;
    pairs.slice().forEach(function (p) { p.close(null); });
    log(on ? "switched on" : "switched off");
    try {
      if (on) start();
      show();
    } catch (err) {
      fail(err.message);
    }
  }

  function stored() {
    try {
      return window.localStorage.getItem(STORE_KEY);
    } catch (e) {
      return null; // storage refused (a sandboxed iframe, blocked cookies): not remembered
    }
  }

  window.addEventListener("load", function () {
    if (debugOn) $("log").hidden = false;
    for (var i = 0; i < SLOTS; i++) $("history").appendChild(document.createElement("span"));
    setInterval(tick, SLOT);
    try {
      cfg = {
        client: params.get("client"),
        relay: params.get("relay"),
        facilitator: params.get("facilitator"),
        maxClients: count("max_clients", 10),
        rate: byteRate(params.get("ratelimit") || "off"),
        base64: flag("base64")
      };
      bucket.tokens = cfg.rate;
      $("cost").textContent = cfg.rate ? "at most " + fmtBytes(cfg.rate) + "/s, both ways together" : "no limit set";
    } catch (err) {
      return fail(err.message);
    }
    $("switch").addEventListener("change", function (e) {
      try {
        window.localStorage.setItem(STORE_KEY, e.target.checked ? "on" : "off");
      } catch (err) { /* not remembered */ }
      turn(e.target.checked);
    });
    turn(stored() === "on" || (stored() === null && !flag("optin") && !flag("cookierequired")));
  });
})();
