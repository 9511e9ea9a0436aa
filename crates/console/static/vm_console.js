// The VM page's console card: the graphical console (noVNC's RFB on
// /vms/{name}/vnc) and the serial console (xterm.js on /vms/{name}/serial), one
// at a time behind two tabs. Each connects when asked and says why it could not:
// a refused socket is asked again as a plain GET, which answers the refusal's
// HTTP status and reason.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const card = document.getElementById("vm-console");
  if (!card) return;
  const vm = card.dataset.vm;
  const path = (kind) => "/vms/" + encodeURIComponent(vm) + "/" + kind;
  const wsUrl = (kind) => (location.protocol === "https:" ? "wss:" : "ws:") + "//" + location.host + path(kind);
  const $ = (id) => document.getElementById(id);

  // Why the socket of `kind` was refused, from the same URL without the upgrade.
  async function refusal(kind) {
    try {
      const r = await fetch(path(kind), { headers: { Accept: "application/json" }, redirect: "manual" });
      if (r.type === "opaqueredirect" || r.status === 401) return "the session has ended: log in again.";
      if (r.status === 426) return "the connection closed before it opened; try again.";
      let reason = "";
      try { reason = (await r.json()).error || ""; } catch (_) { reason = ""; }
      const status = r.status + (r.statusText ? " " + r.statusText : "");
      return "refused (" + status + ")" + (reason ? ": " + reason : "") + ".";
    } catch (e) {
      return "the console is not reachable (" + e.message + "); check the connection to the node.";
    }
  }

  // One panel's buttons and status line.
  function panel(kind) {
    const status = $(kind + "-status");
    return {
      connect: $(kind + "-connect"),
      disconnect: $(kind + "-disconnect"),
      say(text, state) {
        status.textContent = text;
        status.dataset.state = state;
        status.classList.toggle("warn", state === "refused" || state === "lost");
      },
      connected(on) {
        this.connect.disabled = on;
        this.disconnect.disabled = !on;
      },
    };
  }

  // Tabs: one panel shown at a time; the other keeps its connection.
  const tabs = card.querySelectorAll("[role=tab]");
  tabs.forEach((tab) => tab.addEventListener("click", () => {
    tabs.forEach((t) => {
      const on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.classList.toggle("selected", on);
      $(t.getAttribute("aria-controls")).hidden = !on;
    });
  }));

  // The graphical console.
  const vnc = panel("vnc");
  const screen = $("vnc-screen");
  const cad = $("vnc-cad");
  let rfb = null;
  // The box takes the guest screen's proportions once known; noVNC scales the
  // screen to the box, which is as wide as the card.
  const fitBox = () => {
    const canvas = screen.querySelector("canvas");
    if (canvas && canvas.width > 0 && canvas.height > 0) {
      screen.style.aspectRatio = canvas.width + " / " + canvas.height;
    }
  };
  const watch = new MutationObserver(fitBox);
  if (typeof window.RFB !== "function") {
    vnc.say("noVNC was not bundled into this build (run tests/deps.sh, then rebuild).", "missing");
    vnc.connect.disabled = true;
  }
  vnc.connect.addEventListener("click", () => {
    if (rfb || typeof window.RFB !== "function") return;
    vnc.say("Connecting…", "connecting");
    vnc.connected(true);
    let opened = false;
    rfb = new window.RFB(screen, wsUrl("vnc"), { shared: true, wsProtocols: ["binary"] });
    rfb.scaleViewport = true;
    rfb.resizeSession = false;
    rfb.background = "#000";
    const canvas = screen.querySelector("canvas");
    if (canvas) watch.observe(canvas, { attributes: true, attributeFilter: ["width", "height"] });
    rfb.addEventListener("connect", () => {
      opened = true;
      fitBox();
      cad.disabled = false;
      screen.dataset.connected = "1";
      vnc.say("Connected. Click the screen to type into the guest.", "connected");
    });
    rfb.addEventListener("desktopname", (e) => { screen.title = e.detail.name; });
    rfb.addEventListener("securityfailure", (e) => {
      vnc.say("The VNC server refused the connection: " + (e.detail.reason || "status " + e.detail.status) + ".", "refused");
    });
    rfb.addEventListener("credentialsrequired", () => {
      vnc.say("The VNC server asks for a password, which the console does not pass on; remove it from the VM's <graphics>.", "refused");
      if (rfb) rfb.disconnect();
    });
    rfb.addEventListener("disconnect", async (e) => {
      rfb = null;
      watch.disconnect();
      cad.disabled = true;
      screen.dataset.connected = "0";
      vnc.connected(false);
      if (!opened) {
        vnc.say("Graphical console " + (await refusal("vnc")), "refused");
      } else if (e.detail.clean) {
        vnc.say("Disconnected.", "closed");
      } else {
        vnc.say("The connection was lost (the VM stopped, the session ended or the network failed). Connect again to retry.", "lost");
      }
    });
  });
  vnc.disconnect.addEventListener("click", () => { if (rfb) rfb.disconnect(); });
  cad.addEventListener("click", () => { if (rfb) { rfb.sendCtrlAltDel(); rfb.focus(); } });

  // The serial console: 80×24 as a guest's serial line assumes, scrolled
  // sideways inside its own box on a narrow screen.
  const serial = panel("serial");
  const box = $("serial-terminal");
  let term = null;
  let ws = null;
  let leaving = false;
  if (typeof window.Terminal !== "function") {
    serial.say("xterm.js was not bundled into this build (run tests/deps.sh, then rebuild).", "missing");
    serial.connect.disabled = true;
  }
  serial.connect.addEventListener("click", () => {
    if (ws || typeof window.Terminal !== "function") return;
    if (!term) {
      term = new window.Terminal({ cols: 80, rows: 24, convertEol: false, scrollback: 2000 });
      term.open(box);
      term.onData((d) => { if (ws && ws.readyState === WebSocket.OPEN) ws.send(new TextEncoder().encode(d)); });
    }
    serial.say("Connecting…", "connecting");
    serial.connected(true);
    let opened = false;
    leaving = false;
    const sock = new WebSocket(wsUrl("serial"));
    ws = sock;
    sock.binaryType = "arraybuffer";
    sock.addEventListener("open", () => {
      opened = true;
      box.dataset.connected = "1";
      serial.say("Connected. Press Enter if the guest shows nothing yet.", "connected");
      term.focus();
    });
    sock.addEventListener("message", (ev) => term.write(new Uint8Array(ev.data)));
    sock.addEventListener("close", async (ev) => {
      if (ws === sock) ws = null;
      box.dataset.connected = "0";
      serial.connected(false);
      if (!opened) {
        serial.say("Serial console " + (await refusal("serial")), "refused");
      } else if (leaving) {
        serial.say("Disconnected.", "closed");
      } else if (ev.wasClean) {
        serial.say("The console was closed (the VM stopped or the session ended).", "lost");
      } else {
        serial.say("The connection was lost. Connect again to retry.", "lost");
      }
    });
  });
  serial.disconnect.addEventListener("click", () => { if (ws) { leaving = true; ws.close(); } });
});
