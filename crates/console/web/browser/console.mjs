// Drives Debian's headless Chromium through the console like an administrator:
// log in, find the session limited (actions disabled, no terminal), turn on
// administrative access with the password (a wrong one first), watch the graphs move,
// force off and start a VM with confirmation, see the
// list update without a reload, upload an update bundle and have it checked, follow the journal, register with an engine after
// confirming its CA's fingerprint, run a command in the terminal, log out.
// Run by tests/browser.rs, which starts the console and a loopback engine and passes:
//   HV_URL, HV_USER, HV_PASSWORD, HV_SHOTS (directory for screenshots), HV_PROFILE,
//   HV_ENGINE, HV_ENGINE_PORT, HV_ENGINE_FP (the engine CA's SHA-256 fingerprint).
import { execFileSync } from "node:child_process";
import { chromium } from "playwright-core";

const { HV_URL, HV_USER, HV_PASSWORD, HV_SHOTS, HV_PROFILE, HV_ENGINE, HV_ENGINE_PORT, HV_ENGINE_FP } = process.env;
const fail = (msg) => { throw new Error(msg); };
const step = (msg) => console.log("step: " + msg);

const context = await chromium.launchPersistentContext(HV_PROFILE, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  ignoreHTTPSErrors: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 860 },
});
const page = context.pages()[0] || await context.newPage();
const problems = [];
page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
page.on("pageerror", (e) => problems.push(String(e)));
// Polls a function in the page (page.waitForFunction would need 'unsafe-eval', which
// the console's CSP rightly refuses).
async function until(fn, arg, what, timeout = 15000) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if (await page.evaluate(fn, arg)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  fail("timed out waiting for " + what);
}
const shot = (name) => page.screenshot({ path: `${HV_SHOTS}/${name}.png`, fullPage: true });

try {
  step("login");
  await page.goto(HV_URL + "/");
  if (!page.url().endsWith("/login")) fail("not sent to the login page: " + page.url());
  await page.fill("#username", HV_USER);
  await page.fill("#password", "wrong password");
  await page.click("#login-button");
  await page.waitForSelector("#login-error");
  await page.fill("#password", HV_PASSWORD);
  await shot("login");
  await page.click("#login-button");
  await page.waitForURL(HV_URL + "/");
  const cookies = await context.cookies();
  const c = cookies.find((x) => x.name === "__Host-hvnode-session") || fail("no session cookie");
  if (!c.httpOnly || !c.secure || c.sameSite !== "Strict") fail("cookie flags: " + JSON.stringify(c));
  if (await page.evaluate(() => document.cookie.includes("__Host-hvnode-session"))) fail("cookie readable by script");

  step("limited access");
  // Every session starts limited: the mode is shown, actions are disabled and the
  // server refuses them anyway.
  if ((await page.textContent("#access-mode")).trim() !== "Limited access") fail("not limited after login");
  await page.waitForSelector("#limited-banner");
  await page.click('nav a[href="/vms"]');
  await page.waitForSelector('tr[data-vm="test"] button.action-force-off[disabled]');
  const refused = await page.evaluate(async () => {
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const r = await fetch("/api/v1/vms/idle/force-off", { method: "POST", headers: { "X-CSRF-Token": csrf } });
    return r.status + " " + (await r.json()).error;
  });
  if (!refused.startsWith("403 administrative access is off")) fail("a limited session's action: " + refused);
  await page.click('nav a[href="/terminal"]');
  await page.waitForSelector("#terminal-limited");
  await shot("limited");

  step("administrative access");
  await page.click("#access-mode");
  await page.fill("#admin-password", "wrong password");
  await page.click("#admin-on");
  await page.waitForSelector("p.alert");
  if (!(await page.textContent("p.alert")).includes("administrative access refused")) fail("a wrong password was not refused");
  if ((await page.textContent("#access-mode")).trim() !== "Limited access") fail("a wrong password turned it on");
  await page.click("#access-mode");
  await page.fill("#admin-password", HV_PASSWORD);
  await shot("admin-form");
  await page.click("#admin-on");
  await page.waitForSelector('#access-mode[data-admin="1"]');
  if (await page.$("#limited-banner")) fail("still says limited");
  await page.click('nav a[href="/"]');

  step("graphs move");
  await until(() => Number(document.getElementById("graphs").dataset.updated || 0) > 0, null, "the first graph update");
  const before = await page.$eval("#graph-cpu polyline", (p) => p.getAttribute("points"));
  const t0 = await page.$eval("#graphs", (g) => Number(g.dataset.updated));
  await until((t) => Number(document.getElementById("graphs").dataset.updated) >= t + 2, t0, "two more points");
  const after = await page.$eval("#graph-cpu polyline", (p) => p.getAttribute("points"));
  if (before === after) fail("the CPU graph did not change");
  await shot("overview");

  step("virtual machines");
  await page.click('nav a[href="/vms"]');
  await page.waitForSelector('tr[data-vm="test"] [data-state="running"]');
  const label = await page.textContent('tr[data-vm="test"] .svirt');
  if (!label.includes("svirt_t")) fail("no sVirt label shown: " + label);
  await page.click('tr[data-vm="test"] button.action-force-off');
  await page.waitForSelector("#confirm");
  if (!(await page.textContent("main")).includes("Force off virtual machine")) fail("no confirmation");
  await shot("vm-confirm");
  await page.click("#confirm");
  await page.waitForURL(HV_URL + "/vms");
  await page.waitForSelector('tr[data-vm="test"] [data-state="shut off"]');
  await page.click('tr[data-vm="test"] button.action-start');
  await page.click("#confirm");
  await page.waitForSelector('tr[data-vm="test"] [data-state="running"]');

  step("VM list updates without a reload");
  await page.evaluate(() => { window.__sameDocument = true; });
  const status = await page.evaluate(async () => {
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const r = await fetch("/api/v1/vms/idle/force-off", { method: "POST", headers: { "X-CSRF-Token": csrf } });
    return r.status;
  });
  if (status !== 200) fail("API force-off answered " + status);
  await page.waitForSelector('tr[data-vm="idle"] [data-state="shut off"]', { timeout: 10000 });
  if (!(await page.evaluate(() => window.__sameDocument === true))) fail("the page was reloaded");
  await shot("vms");

  step("VM page");
  await page.click('tr[data-vm="test"] td.name a');
  await page.waitForURL(HV_URL + "/vms/test");
  await page.waitForSelector('#vm-state[data-state="running"]');
  const facts = await page.textContent("main");
  for (const want of ["UEFI, Secure Boot", "pc-q35-7.2", "svirt_t", "52:54:00:ab:cd:ef", "after-update", "no medium"]) {
    if (!facts.includes(want)) fail("the VM page does not show " + want);
  }
  if (await page.$("#vm-actions button.action-start")) fail("a running VM offers start");
  await until(() => Number(document.getElementById("vm-graphs").dataset.updated || 0) >= 2, null, "two VM usage points");
  await page.setViewportSize({ width: 1280, height: 800 });
  await shot("vm-detail");

  step("create a VM from the form");
  await page.goto(HV_URL + "/vms/new");
  await page.fill('input[name="name"]', "web1");
  await page.fill('input[name="memory_mib"]', "512");
  // The POST held back for a moment, as a large disk takes: meanwhile the button
  // says so and cannot be pressed again (noted by the page itself, which lives on
  // until the answer comes).
  await page.evaluate(() => {
    document.getElementById("vm-new").addEventListener("submit", () => setTimeout(() => {
      const b = document.getElementById("vm-new-submit");
      sessionStorage.setItem("pending", (b.disabled ? "disabled " : "enabled ") + b.textContent.trim());
    }, 100));
  });
  const hold = async (route) => {
    if (route.request().method() === "POST") await new Promise((r) => setTimeout(r, 1500));
    await route.continue();
  };
  await page.route("**/vms/new", hold);
  await page.click("#vm-new-submit");
  await page.waitForURL(HV_URL + "/vms/web1");
  const pending = await page.evaluate(() => sessionStorage.getItem("pending"));
  if (pending !== "disabled Creating…") fail("while the POST ran the create button was: " + pending);
  await page.unroute("**/vms/new", hold);
  await page.waitForSelector("#vm-delete");

  step("phone layout");
  // 390×844: no page scrolls sideways; the sidebar is a menu behind a button.
  await page.setViewportSize({ width: 390, height: 844 });
  const phone = {};
  for (const href of ["/", "/vms", "/vms/test", "/vms/new", "/pools", "/services", "/logs", "/storage", "/networking", "/node", "/registration", "/terminal"]) {
    await page.goto(HV_URL + href);
    await page.waitForSelector("main h1");
    const [sw, iw] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    phone[href] = sw + "/" + iw;
    if (sw > iw) fail(`${href} scrolls sideways at 390 px: scrollWidth ${sw} > innerWidth ${iw}`);
    if (href === "/vms/test") await shot("vm-detail-phone");
    if (href === "/vms") await shot("vms-phone");
    if (href === "/vms/new") await shot("vm-new-phone");
    if (href === "/pools") await shot("pools-phone");
  }
  console.log("phone: scrollWidth/innerWidth " + JSON.stringify(phone));
  if (await page.isVisible('nav a[href="/services"]')) fail("the menu is open before it is asked for");
  await page.click("#nav-button");
  await page.click('nav a[href="/services"]');
  await page.waitForURL(HV_URL + "/services");
  await shot("services-phone");
  await page.setViewportSize({ width: 1280, height: 860 });

  step("other pages");
  for (const href of ["/services", "/logs", "/storage", "/networking", "/node"]) {
    await page.click(`nav a[href="${href}"]`);
    await page.waitForSelector(`nav a[href="${href}"].active`);
  }
  await shot("storage-node");

  step("update bundle upload");
  // On the update page: the signature and a 2 MiB bundle uploaded, then checked
  // (on the test host nodectl is not where a node has it, and the check says so).
  await page.goto(HV_URL + "/node/update");
  const bundle = Buffer.alloc(2 << 20, 7);
  await page.setInputFiles("#upload-files", [
    { name: "hvnode-9.9-1.update.tar", mimeType: "application/x-tar", buffer: bundle },
    { name: "hvnode-9.9-1.update.tar.minisig", mimeType: "text/plain", buffer: Buffer.from("sig\n") },
  ]);
  await page.click("#action-update-upload");
  await page.waitForSelector("p.alert", { timeout: 30000 });
  const checked = await page.textContent("p.alert");
  if (!checked.includes("is nodectl installed")) fail("the uploaded bundle was not checked: " + checked.slice(0, 400));
  await shot("update-upload");

  step("logs follow");
  const marker = "hv-browser-" + process.pid;
  await page.goto(HV_URL + "/logs?grep=" + marker);
  await page.click("#follow");
  await new Promise((r) => setTimeout(r, 700));
  execFileSync("systemd-cat", ["-t", "hvnode-browser", "-p", "warning"], { input: marker + " followed\n" });
  await until((m) => document.getElementById("log-rows").textContent.includes(m + " followed"), marker, "the followed entry");
  await shot("logs");

  step("registration");
  await page.click('nav a[href="/registration"]');
  await page.waitForSelector('#reg-headline[data-state="unregistered"]');
  await page.fill("#reg-engine", HV_ENGINE);
  await page.fill("#reg-port", HV_ENGINE_PORT);
  await page.fill("#reg-node-name", "browser-node");
  await page.click("#reg-fetch-button");
  await page.waitForSelector("#reg-fingerprint");
  const shown = (await page.textContent("#reg-fingerprint")).trim();
  if (shown !== HV_ENGINE_FP) fail("fingerprint shown " + shown + ", the engine's is " + HV_ENGINE_FP);
  await shot("registration-confirm");
  await page.click("#reg-confirm-button");
  await page.waitForSelector("#reg-notice");
  const headline = await page.textContent("#reg-headline");
  if (!headline.includes("pending approval")) fail("not pending approval: " + headline);
  await shot("registration");

  step("terminal");
  await page.click('nav a[href="/terminal"]');
  await page.waitForSelector('#terminal[data-connected="1"]', { timeout: 15000 });
  await page.click("#terminal");
  await page.keyboard.type("echo hv-$((6*7)) $(id -un)\n");
  await until((u) => document.querySelector("#terminal .xterm-rows")?.textContent.includes("hv-42 " + u), HV_USER, "the command's output");
  await shot("terminal");

  step("turn administrative access off");
  await page.click('nav a[href="/vms"]');
  await page.click("#admin-off");
  await page.waitForURL(HV_URL + "/vms");
  await page.waitForSelector('#access-mode[data-admin="0"]');
  await page.waitForSelector('tr[data-vm="test"] button[disabled]');

  step("logout");
  await page.click("#logout");
  await page.waitForURL(HV_URL + "/login");
  await page.goto(HV_URL + "/vms");
  if (!page.url().endsWith("/login")) fail("still logged in after logout");

  const csp = problems.filter((p) => /Content Security Policy|Refused to/.test(p));
  if (csp.length) fail("CSP violations: " + csp.join(" | "));
  console.log("browser: all steps passed");
} catch (e) {
  await shot("failure").catch(() => {});
  console.error("browser: " + (e.stack || e));
  console.error("page errors: " + JSON.stringify(problems));
  process.exitCode = 1;
} finally {
  await context.close();
}
