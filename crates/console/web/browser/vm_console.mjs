// Drives Debian's headless Chromium to a real VM's consoles: the VM page's
// graphical console (noVNC) must show the guest's screen (SeaBIOS's text, so
// pixels that are not black on the canvas), Send Ctrl+Alt+Del must be offered,
// and the serial tab must open its terminal. A screenshot of the page with the
// console at 1280×800, and one at 390×844 where the page must not scroll
// sideways. Last, the VM is forced off and the next connection must say why it
// was refused.
// Run by tests/browser.rs, which makes the VM through the API and passes:
//   HV_URL, HV_COOKIE (name=value of an administrative session), HV_VM,
//   HV_SHOTS (directory for screenshots), HV_PROFILE.
import { chromium } from "playwright-core";

const { HV_URL, HV_COOKIE, HV_VM, HV_SHOTS, HV_PROFILE } = process.env;
const fail = (msg) => { throw new Error(msg); };
const step = (msg) => console.log("step: " + msg);

const context = await chromium.launchPersistentContext(HV_PROFILE, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  ignoreHTTPSErrors: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 800 },
});
const [name, value] = [HV_COOKIE.slice(0, HV_COOKIE.indexOf("=")), HV_COOKIE.slice(HV_COOKIE.indexOf("=") + 1)];
await context.addCookies([{ name, value, url: HV_URL + "/", secure: true, httpOnly: true, sameSite: "Strict" }]);
const page = context.pages()[0] || await context.newPage();
const problems = [];
page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
page.on("pageerror", (e) => problems.push(String(e)));
// Polls a function in the page (page.waitForFunction would need 'unsafe-eval',
// which the console's CSP rightly refuses).
async function until(fn, arg, what, timeout = 15000) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if (await page.evaluate(fn, arg)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  fail("timed out waiting for " + what);
}
const shot = (file) => page.screenshot({ path: `${HV_SHOTS}/${file}.png`, fullPage: true });
// How many of the canvas's pixels are not black (a sample of at most ~20,000),
// once it shows the guest's own screen: until the guest sets a display mode, qemu
// shows a 640×480 one of its own ("Guest has not initialized the display"), and
// SeaBIOS's text mode is 720×400.
const lit = () => {
  const c = document.querySelector("#vnc-screen canvas");
  if (!c || !c.width || !c.height || (c.width === 640 && c.height === 480)) return 0;
  const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  const step = Math.max(1, Math.floor(data.length / 4 / 20000)) * 4;
  let n = 0;
  for (let i = 0; i < data.length; i += step) if (data[i] > 16 || data[i + 1] > 16 || data[i + 2] > 16) n++;
  return n;
};

try {
  const vmUrl = HV_URL + "/vms/" + encodeURIComponent(HV_VM);
  step("VM page");
  await page.goto(vmUrl);
  if (page.url() !== vmUrl) fail("not on the VM page: " + page.url());
  await page.waitForSelector("#vm-console");
  await page.waitForSelector('#vnc-status[data-state="idle"]');

  step("graphical console");
  await page.click("#vnc-connect");
  await until(() => document.getElementById("vnc-screen").dataset.connected === "1"
    || document.getElementById("vnc-status").dataset.state === "refused", null, "the VNC connection", 30000);
  const said = await page.textContent("#vnc-status");
  if (said.includes("refused")) fail("the graphical console was refused: " + said);
  await until(lit, null, "the guest's screen with pixels that are not black on the noVNC canvas", 30000);
  const pixels = await page.evaluate(lit);
  const [cw, ch, bw] = await page.evaluate(() => {
    const c = document.querySelector("#vnc-screen canvas");
    return [c.width, c.height, document.getElementById("vnc-screen").getBoundingClientRect().width];
  });
  console.log(`vnc: ${cw}x${ch} guest screen in a ${Math.round(bw)} px wide box, ${pixels} sampled pixels lit`);
  if (await page.isDisabled("#vnc-cad")) fail("Send Ctrl+Alt+Del is not offered while connected");
  await page.click("#vnc-cad");
  await page.waitForTimeout(1500);
  await shot("vm-console");

  step("phone");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(800);
  const [sw, iw, canvasW] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth,
    document.querySelector("#vnc-screen canvas").getBoundingClientRect().width]);
  console.log(`phone: scrollWidth ${sw}, innerWidth ${iw}, canvas shown ${Math.round(canvasW)} px wide`);
  if (sw > iw) fail(`the VM page scrolls sideways at 390 px with the console: ${sw} > ${iw}`);
  if (canvasW > iw) fail(`the console canvas is wider than the window: ${canvasW} > ${iw}`);
  await shot("vm-console-phone");
  await page.setViewportSize({ width: 1280, height: 800 });

  step("disconnect");
  await page.click("#vnc-disconnect");
  await page.waitForSelector('#vnc-status[data-state="closed"]');

  step("serial console");
  await page.click("#console-tab-serial");
  await page.waitForSelector("#console-serial:not([hidden])");
  if (await page.isVisible("#console-vnc")) fail("the graphical panel is still shown");
  await page.click("#serial-connect");
  await page.waitForSelector('#serial-terminal[data-connected="1"]', { timeout: 15000 });
  await page.waitForSelector("#serial-terminal .xterm");
  await shot("vm-console-serial");
  await page.click("#serial-disconnect");
  await page.waitForSelector('#serial-status[data-state="closed"]');

  step("a refused console says why");
  // The VM forced off behind the page's back: the next connection is refused,
  // and the page says with which status and why.
  const off = await page.evaluate(async (vm) => {
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const r = await fetch("/api/v1/vms/" + encodeURIComponent(vm) + "/force-off", { method: "POST", headers: { "X-CSRF-Token": csrf } });
    return r.status;
  }, HV_VM);
  if (off !== 200) fail("force-off answered " + off);
  await page.click("#console-tab-vnc");
  await page.click("#vnc-connect");
  await page.waitForSelector('#vnc-status[data-state="refused"]', { timeout: 15000 });
  const refusal = await page.textContent("#vnc-status");
  console.log("refused: " + refusal);
  if (!/refused \(409[^)]*\): .*start it/.test(refusal)) fail("the refusal does not say why: " + refusal);
  await shot("vm-console-refused");
  // The browser logs the failed upgrade itself; that is not a page error.
  for (let i = problems.length - 1; i >= 0; i--) if (/WebSocket connection to .* failed/.test(problems[i])) problems.splice(i, 1);

  const csp = problems.filter((p) => /Content Security Policy|Refused to/.test(p));
  if (csp.length) fail("CSP violations: " + csp.join(" | "));
  console.log("browser: all steps passed");
} catch (e) {
  await shot("vm-console-failure").catch(() => {});
  console.error("browser: " + (e.stack || e));
  console.error("page errors: " + JSON.stringify(problems));
  process.exitCode = 1;
} finally {
  await context.close();
}
