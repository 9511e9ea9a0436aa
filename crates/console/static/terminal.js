// The terminal page: xterm.js on a WebSocket to a login shell on the node.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const el = document.getElementById("terminal");
  const status = document.getElementById("terminal-status");
  const show = (text) => { status.textContent = text; status.hidden = false; };
  if (typeof window.Terminal !== "function") {
    show("xterm.js was not bundled into this build (run tests/deps.sh, then rebuild).");
    return;
  }
  const term = new window.Terminal({ cursorBlink: true, convertEol: false, scrollback: 5000 });
  term.open(el);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(scheme + "//" + location.host + "/terminal/socket");
  ws.binaryType = "arraybuffer";
  const enc = new TextEncoder();
  const fit = () => {
    // Size the terminal to its box from the size of one character cell.
    const cell = el.querySelector(".xterm-char-measure-element") || el.querySelector(".xterm-rows > div");
    const box = el.getBoundingClientRect();
    const w = (cell && cell.getBoundingClientRect().width / Math.max(1, (cell.textContent || "W").length)) || 9;
    const h = (cell && cell.getBoundingClientRect().height) || 17;
    const cols = Math.max(20, Math.floor((box.width - 12) / w));
    const rows = Math.max(5, Math.floor((box.height - 8) / h));
    term.resize(cols, rows);
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ resize: [rows, cols] }));
  };
  // Sized to the box at once, not only when the socket opens: on a slow start the
  // default 80 columns would otherwise widen a phone's page until then.
  fit();
  ws.addEventListener("open", () => { fit(); term.focus(); el.dataset.connected = "1"; });
  ws.addEventListener("message", (ev) => term.write(new Uint8Array(ev.data)));
  ws.addEventListener("close", () => { show("The shell has ended."); el.dataset.connected = "0"; });
  term.onData((d) => { if (ws.readyState === WebSocket.OPEN) ws.send(enc.encode(d)); });
  window.addEventListener("resize", fit);
});
