// An echo WebSocket server on node's "ws" package, for TestInteropNodeServer
// (tests/interop_peers_test.go): websocket-client connects to it.
// Usage: node server.js PORT
// Accepts the "base64" subprotocol when offered: then it expects base64 text
// messages and echoes the decoded bytes as base64 text; otherwise it expects
// binary messages and echoes them. Anything else closes with 1003.
// Prints one JSON line when listening and one per closed connection.
"use strict";
const { WebSocketServer } = require("ws");

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const port = Number(process.argv[2]);
const wss = new WebSocketServer({
  host: "127.0.0.1",
  port,
  handleProtocols: (protocols) => (protocols.has("base64") ? "base64" : false),
});
wss.on("listening", () => console.log(JSON.stringify({ event: "listening", port })));
wss.on("connection", (ws, req) => {
  const base64 = ws.protocol === "base64";
  const st = { event: "close", protocol: ws.protocol, offered: req.headers["sec-websocket-protocol"] || "",
    text: 0, binary: 0, bytes: 0, pongs: 0, error: "" };
  // A Ping must come back as a Pong with the same payload.
  const payload = Buffer.from("interop ping");
  ws.on("pong", (data) => { if (data.equals(payload)) st.pongs++; });
  ws.ping(payload);
  ws.on("message", (data, isBinary) => {
    if (isBinary) st.binary++; else st.text++;
    if (isBinary === base64) {
      st.error = (isBinary ? "binary" : "text") + " message on a " + (base64 ? "base64" : "binary") + " connection";
      return ws.close(1003, "wrong message type");
    }
    if (base64) {
      const s = data.toString("latin1");
      if (!BASE64.test(s)) {
        st.error = "bad base64 text";
        return ws.close(1007, "bad base64");
      }
      data = Buffer.from(s, "base64");
    }
    st.bytes += data.length;
    ws.send(base64 ? data.toString("base64") : data, { binary: !base64 });
  });
  ws.on("close", (code) => {
    st.code = code;
    console.log(JSON.stringify(st));
  });
});
