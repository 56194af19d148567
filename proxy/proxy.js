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
//   debug                             show a log on the page
//
// Flow control: a browser cannot stop reading a WebSocket, so each direction keeps a queue.
// Messages go from the queue to the other socket while its bufferedAmount is under HIGH_WATER
// (and the rate limit allows); when queue plus bufferedAmount pass MAX_PENDING the pair is
// closed, since the sender outruns the receiver beyond what this page will hold.
"use strict";

(function () {
  var HIGH_WATER = 256 * 1024; // bytes buffered by a socket before we stop handing it more
  var MAX_PENDING = 16 * 1024 * 1024; // bytes one direction may hold: then close the pair
  var MIN_CHECK_BACK = 10; // seconds between facilitator polls, at least
  var RETRY_MIN = 1000, RETRY_MAX = 60000; // ms before a new pair after a failure (doubles)
  var CONNECT_TIMEOUT = 30000; // ms for a WebSocket to open

  var params = new URLSearchParams(window.location.search);
  var debugOn = flag("debug");
  var cfg = {
    client: params.get("client"),
    relay: params.get("relay"),
    facilitator: params.get("facilitator"),
    maxClients: count("max_clients", 10),
    rate: byteRate(params.get("ratelimit") || "off"),
    base64: flag("base64")
  };
  var pairs = [];
  var stats = { bytes: 0, pairs: 0 };
  var lastError = null;
  var retry = RETRY_MIN;
  var bucket = { tokens: cfg.rate || 0, last: Date.now() };

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

  // wsURL turns HOST:PORT (IPv6 in brackets) into ws://HOST:PORT/; ws:// and wss:// URLs stay.
  function wsURL(s, name) {
    if (/^wss?:\/\/[^\s]+$/i.test(s)) return s;
    if (/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(s || "")) return "ws://" + s + "/";
    throw new Error(name + ": want HOST:PORT or a ws:// or wss:// URL");
  }

  // ---- what the page shows

  function log(msg) {
    if (!debugOn) return;
    var el = document.getElementById("log");
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
    var badge = document.getElementById("badge");
    var active = pairs.filter(function (p) { return p.used && p.relay; }).length;
    var state, text;
    if (lastError && active === 0) {
      state = "error";
      text = "error: " + lastError;
    } else if (active > 0) {
      state = "active";
      text = "active: " + active + (active === 1 ? " pair, " : " pairs, ") + fmtBytes(stats.bytes) + " relayed";
    } else {
      state = "idle";
      text = "idle" + (stats.pairs ? " (" + stats.pairs + " served, " + fmtBytes(stats.bytes) + ")" : "");
    }
    badge.className = state;
    badge.textContent = text;
    badge.setAttribute("data-bytes", stats.bytes);
    document.body.setAttribute("data-state", state);
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

  function openSocket(url, pair, name) {
    var ws = new WebSocket(url, cfg.base64 ? ["base64"] : []);
    ws.binaryType = "arraybuffer";
    ws.label = name;
    var timer = setTimeout(function () {
      if (ws.readyState === WebSocket.CONNECTING) pair.close(name + ": no connection within " + CONNECT_TIMEOUT / 1000 + " s");
    }, CONNECT_TIMEOUT);
    ws.onerror = function () { pair.close(name + ": connection failed or broken"); };
    ws.onclose = function (e) {
      clearTimeout(timer);
      pair.ended(ws, e);
    };
    ws.onmessage = function (e) {
      try {
        pair.received(ws, toBytes(e.data));
      } catch (err) {
        pair.close(name + ": " + err.message);
      }
    };
    ws.addEventListener("open", function () { clearTimeout(timer); });
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
    this.timer = setTimeout(function () { self.timer = null; self.flush(); }, ms);
  };

  function Pair(clientURL, relayURL) {
    this.id = ++stats.pairs;
    this.relayURL = relayURL;
    this.toRelay = new Direction(this);
    this.toClient = new Direction(this);
    this.used = false; // the client has sent data: tor uses this pair
    this.done = false;
    this.client = openSocket(clientURL, this, "client");
    var self = this;
    this.client.addEventListener("open", function () { self.clientOpen(); });
    pairs.push(this);
    log("pair " + this.id + ": connecting to the client");
  }

  Pair.prototype.clientOpen = function () {
    var self = this;
    log("pair " + this.id + ": client connected (" + (this.client.protocol || "binary") + "), connecting to the relay");
    this.relay = openSocket(this.relayURL, this, "relay");
    this.relay.addEventListener("open", function () {
      log("pair " + self.id + ": relay connected (" + (self.relay.protocol || "binary") + ")");
      retry = RETRY_MIN;
      lastError = null;
      self.toRelay.dst = self.relay;
      self.toClient.dst = self.client;
      self.toRelay.flush();
      show();
    });
    show();
  };

  Pair.prototype.received = function (ws, bytes) {
    if (ws === this.client && !this.used) {
      this.used = true;
      log("pair " + this.id + ": in use");
      if (cfg.client) spare(); // keep one pair waiting for the next connection from tor
    }
    var dir = ws === this.client ? this.toRelay : this.toClient;
    dir.push(bytes);
  };

  // ended: one socket closed; the other is closed after what is queued for it is sent.
  Pair.prototype.ended = function (ws, e) {
    log("pair " + this.id + ": " + ws.label + " closed (" + e.code + (e.reason ? " " + e.reason : "") + ")");
    var other = ws === this.client ? this.relay : this.client;
    var dir = ws === this.client ? this.toRelay : this.toClient;
    if (other && other.readyState <= WebSocket.OPEN) {
      dir.ending = true;
      if (other.readyState === WebSocket.OPEN) dir.dst = other;
      if (other.readyState === WebSocket.CONNECTING) other.close(); // nothing to send it yet
      dir.flush();
      return;
    }
    this.finish(e.code === 1000 || e.code === 1005 ? null : ws.label + " closed with " + e.code);
  };

  // close ends both sockets at once, after an error.
  Pair.prototype.close = function (err) {
    if (this.done) return;
    [this.client, this.relay].forEach(function (ws) {
      if (ws && ws.readyState <= WebSocket.OPEN) ws.close();
    });
    this.finish(err);
  };

  Pair.prototype.finish = function (err) {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.toRelay.timer);
    clearTimeout(this.toClient.timer);
    pairs.splice(pairs.indexOf(this), 1);
    log("pair " + this.id + ": done" + (err ? ", " + err : ""));
    if (err) {
      fail(err);
      retry = Math.min(retry * 2, RETRY_MAX);
    }
    show();
    if (cfg.client && !this.used) setTimeout(spare, err ? retry : RETRY_MIN);
    else if (cfg.client) spare();
  };

  // spare makes sure, in client= mode, that one pair waits for tor's next connection.
  function spare() {
    var waiting = pairs.filter(function (p) { return !p.used; }).length;
    if (waiting === 0 && pairs.length < cfg.maxClients) new Pair(cfg.clientURL, cfg.relayURL);
  }

  // ---- the facilitator

  function poll() {
    var next = MIN_CHECK_BACK;
    var sep = cfg.facilitator.indexOf("?") < 0 ? "?" : "&";
    var again = function () { setTimeout(poll, next * 1000); };
    if (pairs.length >= cfg.maxClients) return again();
    log("polling the facilitator");
    fetch(cfg.facilitator + sep + "r=1&transport=websocket", { cache: "no-store" }).then(function (resp) {
      if (!resp.ok) throw new Error("facilitator: HTTP " + resp.status);
      return resp.text();
    }).then(function (text) {
      var a = new URLSearchParams(text.trim());
      next = Math.max(MIN_CHECK_BACK, parseInt(a.get("check-back-in"), 10) || 0);
      if (!a.get("client")) {
        log("no client waiting; next poll in " + next + " s");
        return;
      }
      new Pair(wsURL(a.get("client"), "client"), wsURL(a.get("relay"), "relay"));
    }).catch(function (err) {
      fail(err.message);
    }).then(again);
  }

  // ---- start

  function start() {
    show();
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

  window.addEventListener("load", function () {
    if (debugOn) document.getElementById("log").hidden = false;
    try {
      start();
    } catch (err) {
      fail(err.message);
    }
  });
})();
