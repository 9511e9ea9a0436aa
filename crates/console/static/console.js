// Live parts of the console: graphs, the VM list, following the journal.
// No framework; every value from the server is inserted as text, never as HTML.
"use strict";

(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  const background = { headers: { "X-Hvnode-Background": "1" }, credentials: "same-origin" };
  const WIDTH = 300, HEIGHT = 100;

  function units(n) {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i + 1 < u.length) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + u[i];
  }

  function niceMax(values) {
    const m = Math.max(0, ...values);
    let top = 1024;
    while (top < m) top *= 2;
    return top;
  }

  function points(values, max) {
    if (!(max > 0)) max = 1;
    const offset = Math.max(0, WIDTH - values.length);
    return values.map((v, i) => {
      const y = HEIGHT - Math.min(Math.max(v, 0), max) / max * HEIGHT;
      return (offset + i) + "," + y.toFixed(1);
    }).join(" ");
  }

  function graphs() {
    const root = document.getElementById("graphs");
    if (!root) return;
    let history = [];
    const draw = () => {
      const last = history[history.length - 1];
      if (!last) return;
      for (const g of root.querySelectorAll(".graph")) {
        const keys = g.dataset.keys.split(",");
        const scale = g.dataset.scale;
        const series = keys.map(k => history.map(p => p[k]));
        let max = 100;
        if (scale === "memory") max = Math.max(...history.map(p => p.mem_total));
        if (scale === "rate") max = niceMax(series.flat());
        g.querySelectorAll("polyline").forEach((pl, i) => pl.setAttribute("points", points(series[i] || [], max)));
        const top = g.querySelector(".top");
        if (top && scale === "rate") top.textContent = units(max) + "/s";
        if (top && scale === "memory") top.textContent = units(max);
        const now = g.querySelector(".now");
        if (scale === "percent") now.textContent = last.cpu_percent.toFixed(0) + " %";
        if (scale === "memory") now.textContent = units(last.mem_used) + " of " + units(last.mem_total);
        if (scale === "rate") {
          const [a, b] = keys.map(k => units(last[k]) + "/s");
          now.textContent = (keys[0].startsWith("net") ? "↓ " + a + " ↑ " + b : "r " + a + " w " + b);
        }
      }
      root.dataset.updated = String(last.t);
    };
    fetch("/api/v1/metrics", background).then(r => r.json()).then(j => {
      history = j.data || [];
      draw();
      const es = new EventSource("/api/v1/metrics/stream");
      es.addEventListener("point", ev => {
        history.push(JSON.parse(ev.data));
        if (history.length > WIDTH) history.shift();
        draw();
      });
    });
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }

  // A limited session sees the actions but cannot use them (the server refuses them).
  const limited = () => document.body.dataset.admin !== "1";

  function vmRow(vm, actions) {
    const tr = document.createElement("tr");
    tr.dataset.vm = vm.name;
    const name = cell("", "name");
    const link = document.createElement("a");
    link.href = "/vms/" + encodeURIComponent(vm.name);
    link.textContent = vm.name;
    name.append(link);
    tr.append(name);
    const st = cell(vm.state, "state");
    st.dataset.state = vm.state;
    const cpu = vm.cpu_percent === null || vm.cpu_percent === undefined ? "" : vm.cpu_percent.toFixed(0) + " %";
    tr.append(st, cell(cpu, "cpu"), cell(String(vm.vcpus)), cell(Math.floor(vm.memory_kib / 1024) + " MiB"),
      cell(vm.autostart ? "yes" : "no"));
    const sv = cell("", "svirt");
    if (vm.seclabels.length === 0) {
      const s = document.createElement("span"); s.className = "muted"; s.textContent = "none"; sv.append(s);
    }
    for (const l of vm.seclabels) {
      const d = document.createElement("div");
      const b = document.createElement("b"); b.textContent = l.model;
      d.append(b, " (" + l.kind + ")");
      for (const [prefix, v] of [["", l.label], ["image ", l.image_label]]) {
        if (!v) continue;
        const s = document.createElement("span"); s.className = "mono"; s.textContent = prefix + v;
        d.append(document.createElement("br"), s);
      }
      sv.append(d);
    }
    tr.append(sv);
    const act = cell("", "actions");
    // The server says which actions apply to the VM's state.
    for (const name of vm.actions) {
      const label = actions[name] || name;
      const f = document.createElement("form");
      f.method = "post";
      f.action = "/vms/" + encodeURIComponent(vm.name) + "/" + name;
      const i = document.createElement("input");
      i.type = "hidden"; i.name = "csrf"; i.value = csrf();
      const b = document.createElement("button");
      b.type = "submit"; b.className = "action-" + name; b.textContent = label;
      if (limited()) { b.disabled = true; b.title = "Needs administrative access"; }
      f.append(i, b);
      act.append(f);
    }
    tr.append(act);
    return tr;
  }

  function vms() {
    const body = document.getElementById("vm-rows");
    if (!body) return;
    const err = document.getElementById("vm-error");
    const actions = {"start": "Start", "shutdown": "Shut down", "force-off": "Force off", "reboot": "Reboot",
      "pause": "Pause", "resume": "Resume"};
    const poll = async () => {
      try {
        const r = await fetch("/api/v1/vms", background);
        const j = await r.json();
        if (r.status === 401) { location.href = "/login"; return; }
        if (!r.ok) { err.textContent = j.error; err.hidden = false; return; }
        err.hidden = true;
        body.replaceChildren(...j.data.items.map(vm => vmRow(vm, actions)));
        const none = document.getElementById("no-vms");
        if (none) none.hidden = j.data.items.length > 0;
        body.dataset.updated = String(Date.now());
      } catch (e) {
        err.textContent = "The console is not reachable."; err.hidden = false;
      }
    };
    setInterval(poll, 2000);
  }

  // The VM page: its state, actions and usage from GET /api/v1/vms/NAME every 2 s,
  // the graphs drawn from what this page has seen since it opened.
  function vmDetail() {
    const root = document.getElementById("vm-graphs");
    if (!root) return;
    const name = root.dataset.vm;
    const err = document.getElementById("vm-error");
    const labels = {"start": "Start", "shutdown": "Shut down", "force-off": "Force off", "reboot": "Reboot",
      "pause": "Pause", "resume": "Resume"};
    const cpu = [], mem = [], disk = [], net = [];
    let max = 1, last = null;
    // Bytes a second between two looks at a VM's counters (null ones count 0).
    const sum = (items, keys) => items.reduce((t, i) => t + keys.reduce((u, k) => u + (i[k] || 0), 0), 0);
    const rate = (now, before, dt) => (before === null || now < before || dt <= 0) ? 0 : (now - before) / dt;
    const draw = (id, values, top, text) => {
      const g = document.getElementById(id);
      g.querySelector("polyline").setAttribute("points", points(values, top));
      g.querySelector(".now").textContent = text;
    };
    const poll = async () => {
      try {
        const r = await fetch("/api/v1/vms/" + encodeURIComponent(name), background);
        if (r.status === 401) { location.href = "/login"; return; }
        const j = await r.json();
        if (!r.ok) { err.textContent = j.error; err.hidden = false; return; }
        err.hidden = true;
        const vm = j.data;
        const st = document.getElementById("vm-state");
        st.textContent = vm.state; st.dataset.state = vm.state;
        const acts = document.getElementById("vm-actions");
        const have = Array.from(acts.querySelectorAll("button")).map(b => b.className.replace("action-", ""));
        if (have.join() !== vm.actions.join()) {
          acts.replaceChildren(...vm.actions.map(a => {
            const f = document.createElement("form");
            f.method = "post"; f.action = "/vms/" + encodeURIComponent(name) + "/" + a;
            const i = document.createElement("input");
            i.type = "hidden"; i.name = "csrf"; i.value = csrf();
            const b = document.createElement("button");
            b.type = "submit"; b.className = "action-" + a; b.textContent = labels[a] || a;
            if (limited()) { b.disabled = true; b.title = "Needs administrative access"; }
            f.append(i, b);
            return f;
          }));
        }
        cpu.push(vm.cpu_percent === null ? 0 : vm.cpu_percent);
        mem.push(vm.memory_kib * 1024);
        max = Math.max(max, vm.max_memory_kib * 1024);
        const now = {t: Date.now() / 1000, disk: sum(vm.disks || [], ["read_bytes", "write_bytes"]),
          net: sum(vm.nics || [], ["rx_bytes", "tx_bytes"])};
        const dt = last ? now.t - last.t : 0;
        disk.push(rate(now.disk, last ? last.disk : null, dt));
        net.push(rate(now.net, last ? last.net : null, dt));
        last = now;
        while (cpu.length > WIDTH) { cpu.shift(); mem.shift(); disk.shift(); net.shift(); }
        draw("vm-graph-cpu", cpu, 100, vm.cpu_percent === null ? "–" : vm.cpu_percent.toFixed(0) + " %");
        draw("vm-graph-memory", mem, max, units(vm.memory_kib * 1024) + " of " + units(vm.max_memory_kib * 1024));
        draw("vm-graph-disk", disk, Math.max(1, ...disk), units(disk[disk.length - 1]) + "/s");
        draw("vm-graph-network", net, Math.max(1, ...net), units(net[net.length - 1]) + "/s");
        root.dataset.updated = String(cpu.length);
      } catch (e) {
        err.textContent = "The console is not reachable."; err.hidden = false;
      }
    };
    poll();
    setInterval(poll, 2000);
  }

  function follow() {
    const btn = document.getElementById("follow");
    const rows = document.getElementById("log-rows");
    if (!btn || !rows) return;
    let es = null;
    btn.addEventListener("click", () => {
      if (es) { es.close(); es = null; btn.classList.remove("active-follow"); btn.textContent = "Follow"; return; }
      es = new EventSource("/api/v1/logs/stream?" + btn.dataset.query);
      btn.classList.add("active-follow"); btn.textContent = "Stop following";
      es.addEventListener("entry", ev => {
        const e = JSON.parse(ev.data);
        const tr = document.createElement("tr");
        tr.className = "prio-" + e.priority;
        tr.append(cell(e.time, "mono"), cell(e.priority_name), cell(e.source), cell(e.message, "msg"));
        rows.prepend(tr);
        document.getElementById("no-entries")?.remove();
        while (rows.children.length > 2000) rows.lastChild.remove();
      });
    });
  }

  // Forms that wait on a slow peer (the engine) say so and cannot be sent twice.
  function busyForms() {
    for (const f of document.querySelectorAll("form[data-busy]")) {
      f.addEventListener("submit", () => {
        for (const b of f.querySelectorAll("button")) b.disabled = true;
        const note = document.getElementById(f.dataset.busy);
        if (note) note.hidden = false;
      });
    }
  }

  // Long changes (a new VM's disk, a delete with its volumes): the button says what
  // is under way and cannot be pressed twice while the POST runs. Without script the
  // form posts all the same.
  function pendingForms() {
    for (const f of document.querySelectorAll("form[data-pending]")) {
      f.addEventListener("submit", (ev) => {
        const b = ev.submitter || f.querySelector('button[type="submit"]');
        if (!b) return;
        b.dataset.label = b.textContent;
        b.textContent = f.dataset.pending;
        // Disabled after the form's data is taken, so that the post is not cancelled.
        setTimeout(() => { b.disabled = true; }, 0);
      });
    }
    // Back from the next page (the browser's page cache): the buttons work again.
    window.addEventListener("pageshow", (ev) => {
      if (!ev.persisted) return;
      for (const b of document.querySelectorAll("form[data-pending] button[data-label]")) {
        b.textContent = b.dataset.label; b.disabled = false;
      }
    });
  }

  // The Node page's upload: the signature, then the bundle (with progress), to
  // PUT /api/v1/node/update/upload/NAME; then the check, as for a typed path.
  function upload() {
    const form = document.getElementById("update-upload");
    const check = document.getElementById("update-form");
    if (!form || !check) return;
    form.hidden = false;
    const status = document.getElementById("upload-status");
    const bar = document.getElementById("upload-progress");
    const put = (file, onProgress) => new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", "/api/v1/node/update/upload/" + encodeURIComponent(file.name));
      xhr.setRequestHeader("X-CSRF-Token", csrf());
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
      xhr.onload = () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
        if (xhr.status === 201 && body) resolve(body.data);
        else reject(new Error((body && body.error) || ("HTTP " + xhr.status)));
      };
      xhr.onerror = () => reject(new Error("the connection to the node broke"));
      xhr.send(file);
    });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const files = Array.from(document.getElementById("upload-files").files);
      const bundle = files.find((f) => f.name.endsWith(".update.tar"));
      const sig = files.find((f) => bundle && f.name === bundle.name + ".minisig");
      if (!bundle || !sig) {
        status.textContent = "Choose both NAME.update.tar and NAME.update.tar.minisig.";
        return;
      }
      for (const b of form.querySelectorAll("button")) b.disabled = true;
      try {
        status.textContent = "Uploading " + sig.name + "…";
        await put(sig, () => {});
        bar.hidden = false;
        const done = await put(bundle, (sent, total) => {
          bar.value = sent / total;
          status.textContent = "Uploading " + bundle.name + ": " + units(sent) + " of " + units(total);
        });
        status.textContent = "Uploaded " + units(done.bytes) + "; checking the bundle…";
        document.getElementById("update-source").value = done.path;
        check.requestSubmit();
      } catch (e) {
        status.textContent = "The upload failed: " + e.message;
        for (const b of form.querySelectorAll("button")) b.disabled = false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => { graphs(); vms(); vmDetail(); follow(); busyForms(); pendingForms(); upload(); });
})();
