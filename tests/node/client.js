// A WebSocket client on node's "ws" package, for TestInteropNodeClient
// (tests/interop_peers_test.go): it connects to websocket-server, whose ORPort
// is an echo. Usage: node client.js URL binary|base64
// Sends random data of several sizes, each in several messages (binary, or
// base64 text with the "base64" subprotocol), checks the echo is identical,
// prints one JSON line with what it checked, exits 0 on success, 1 otherwise.
"use strict";
const crypto = require("crypto");
const WebSocket = require("ws");

const [url, mode] = process.argv.slice(2);
const base64 = mode === "base64";
const SIZES = [1, 1024, 64 * 1024, 1024 * 1024];
const r = { url, mode, protocol: null, extensions: null, pong: false, sizes: [], sent: 0, text: 0, binary: 0,
  ok: false, error: "" };

function finish(err) {
  if (err) r.error = String(err.message || err);
  else r.ok = true;
  console.log(JSON.stringify(r));
  process.exit(r.ok ? 0 : 1);
}
setTimeout(() => finish(new Error("timed out")), 60000).unref();

// exchange sends data in messages of at most chunk bytes; resolves with the
// bytes echoed once as many came back.
function exchange(ws, data, chunk) {
  return new Promise((resolve, reject) => {
    const parts = [];
    let n = 0;
    ws.removeAllListeners("message");
    ws.on("message", (msg, isBinary) => {
      if (isBinary) r.binary++; else r.text++;
      if (isBinary === base64) return reject(new Error((isBinary ? "binary" : "text") + " message in " + mode + " mode"));
      const b = base64 ? Buffer.from(msg.toString("latin1"), "base64") : msg;
      parts.push(b);
      n += b.length;
      if (n >= data.length) resolve(Buffer.concat(parts));
    });
    for (let i = 0; i < data.length; i += chunk) {
      const part = data.subarray(i, Math.min(i + chunk, data.length));
      ws.send(base64 ? part.toString("base64") : part, { binary: !base64 });
      r.sent++;
    }
  });
}

const ws = new WebSocket(url, base64 ? ["base64"] : []);
ws.on("error", finish);
ws.on("close", (code) => finish(new Error("closed early with " + code)));
ws.on("open", async () => {
  r.protocol = ws.protocol;
  r.extensions = ws.extensions; // ws offers permessage-deflate: the server must decline
  try {
    if (ws.protocol !== (base64 ? "base64" : "")) throw new Error("protocol is '" + ws.protocol + "'");
    // A Ping must come back as a Pong with the same payload.
    const payload = crypto.randomBytes(16);
    const pong = new Promise((resolve) => ws.once("pong", resolve));
    ws.ping(payload);
    r.pong = (await pong).equals(payload);
    for (const size of SIZES) {
      const data = crypto.randomBytes(size);
      const got = await exchange(ws, data, Math.max(1, Math.min(Math.ceil(size / 4), 48 * 1024)));
      if (!got.equals(data)) throw new Error("echo of " + size + " bytes differs");
      r.sizes.push(size);
    }
    ws.removeAllListeners("close");
    ws.on("close", () => finish());
    ws.close(1000);
  } catch (e) {
    finish(e);
  }
});
