// Real-browser test of the live view: Debian's chromium, driven by playwright-core, headless.
//
//   node live-view.test.js BIN OUTDIR      starts `BIN serve` on a free loopback port (input:
//                                          this script, through the server's stdin) and checks
//                                          the page; saves OUTDIR/live-view.png
//   node live-view.test.js --screenshot URL OUT [SECONDS]
//                                          loads a running page, waits, saves a screenshot
//
// CHROMIUM overrides the browser path (default /usr/bin/chromium). Exit 0 when every check
// passes; the first failed check is printed with what the page showed.
"use strict";
const { chromium } = require("playwright-core");
const { spawn } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

async function launch() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "st-chromium-"));
  // A fresh --user-data-dir (playwright passes it from launchPersistentContext).
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 1000 },
    // The page's Content-Security-Policy forbids eval, which waitForFunction uses; bypassing
    // it also means the hostile-text checks below hold without the CSP's help.
    bypassCSP: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  return { browser, profile };
}

async function screenshotMode(url, out, seconds) {
  const { browser, profile } = await launch();
  try {
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitForTimeout(seconds * 1000);
    // Show the messages of the busiest recent bucket of the first chart.
    const canvas = page.locator("#charts .card canvas.volume").first();
    const x = await canvas.getAttribute("data-last-x");
    if (x) await canvas.click({ position: { x: Math.max(1, parseInt(x, 10) - 40), y: 80 } });
    await page.waitForTimeout(700);
    await page.screenshot({ path: out, fullPage: true });
    console.log("saved " + out);
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

function check(ok, what, detail) {
  if (!ok) throw new Error("FAILED: " + what + (detail === undefined ? "" : " (saw: " + JSON.stringify(detail) + ")"));
  console.log("ok: " + what);
}

// The URL a started `serve` prints on its standard output (within 20 s, or an error).
function serveUrl(serve) {
  return new Promise((resolve, reject) => {
    let buf = "";
    const t = setTimeout(() => reject(new Error("serve printed no URL in 20 s")), 20000);
    serve.stdout.on("data", (d) => {
      buf += d;
      const m = buf.match(/http:\/\/[0-9.:]+\//);
      if (m) { clearTimeout(t); resolve(m[0]); }
    });
    serve.on("exit", (c) => reject(new Error("serve exited with " + c)));
  });
}

async function testMode(bin, outDir) {
  fs.mkdirSync(outDir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "st-serve-"));
  const rules = path.join(tmp, "rules.jsonl");
  fs.writeFileSync(rules, '{"id":"love","value":"love"}\n{"id":"launch","value":"launch OR keynote"}\n');
  const serve = spawn(bin, ["serve", "--rules", rules, "--input", "-", "--bind", "127.0.0.1:0"],
    { stdio: ["pipe", "pipe", "inherit"] });
  const url = await serveUrl(serve);
  let n = 0;
  const send = (obj) => { n++; serve.stdin.write(JSON.stringify(Object.assign({ id: "m" + n }, obj)) + "\n"); return obj.id || "m" + n; };
  let browser, profile, page;
  try {
    ({ browser, profile } = await launch());
    page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("dialog", (d) => { errors.push("dialog: " + d.message()); d.dismiss(); });
    const resp = await page.goto(url);
    const csp = resp.headers()["content-security-policy"] || "";
    check(/script-src 'self'/.test(csp), "the page is served with a Content-Security-Policy", csp);
    await page.waitForSelector('#charts .card[data-rule="love"] canvas.volume');
    await page.waitForSelector('#status[data-state="live"]', { timeout: 15000 });
    check(true, "page loaded, SSE connected");

    // A plot point appears within 2 s of a message entering the input.
    const vol = page.locator('#charts .card[data-rule="love"] canvas.volume');
    const t0 = Date.now();
    const firstId = send({ id: "first", text: "I love this new keyboard", user: "alice", urls: ["https://example.com/k"] });
    await page.waitForFunction(() => {
      const c = document.querySelector('#charts .card[data-rule="love"] canvas.volume');
      return c && parseInt(c.dataset.points || "0", 10) > 0;
    }, null, { timeout: 2000 });
    const latency = Date.now() - t0;
    check(latency <= 2000, "plot point appeared " + latency + " ms after the message entered the input");
    // The header counts messages in and rule matches (it said "N matched" of a count that
    // can exceed the messages: a message matching two rules is two).
    const header = await page.waitForFunction(
      () => /1 message in · 1 rule match ·/.test(document.getElementById("figures").textContent),
      null, { timeout: 5000 }).then(() => true, () => false);
    check(header, "the header says 1 message in · 1 rule match", await page.textContent("#figures"));
    // The rate comes with the same answer and counts the current second (closed buckets
    // only would say 0.0/s for 5 s more).
    const rate = await page.textContent('#charts .card[data-rule="love"] .rate');
    check(rate !== "0.0/s" && /^\d+\.\d\/s$/.test(rate), "the rate counts the current second", rate);

    // Clicking the bucket lists that message, with the matched term highlighted.
    // The chart scrolls once a second: on a loaded machine the bar can move between reading
    // its position and the click, so a click that lands on a later, empty bucket is retried.
    const item = page.locator('#messages li[data-id="' + firstId + '"]');
    for (let attempt = 1; ; attempt++) {
      const x = parseInt(await vol.getAttribute("data-last-x"), 10);
      await vol.click({ position: { x, y: 80 } });
      try { await item.waitFor({ timeout: 2500 }); break; } catch (e) { if (attempt >= 6) throw e; }
    }
    const text = await item.locator(".text").textContent();
    check(text === "I love this new keyboard", "the clicked bucket lists the message's text", text);
    check(await item.locator("mark").textContent() === "love", "the matched term is highlighted");
    check(await item.locator(".meta").textContent().then((t) => t.includes("@alice")), "author shown");
    check(await item.locator('a[href="https://example.com/k"]').count() === 1, "link shown");

    // An invalid rule shows its error with the column.
    await page.fill("#rule-value", "nice (unbalanced");
    await page.click("#add-rule");
    await page.waitForSelector("#rule-error:not([hidden])", { timeout: 10000 });
    const err = await page.textContent("#rule-error");
    check(/column 6/.test(err), "an invalid rule shows its error with the column", err);

    // A dry run, then a valid rule whose series starts.
    await page.fill("#rule-id", "hello");
    await page.fill("#rule-value", "hello OR love");
    await page.click("#dry-run");
    await page.waitForSelector("#dry-result:not([hidden])", { timeout: 10000 });
    const dry = await page.textContent("#dry-result");
    check(/would have matched 1 of the last 1 messages/.test(dry), "the dry run counts recent messages", dry);
    await page.click("#add-rule");
    await page.waitForSelector('#charts .card[data-rule="hello"] canvas.volume', { timeout: 10000 });
    send({ text: "hello world" });
    await page.waitForFunction(() => {
      const c = document.querySelector('#charts .card[data-rule="hello"] canvas.volume');
      return c && parseInt(c.dataset.points || "0", 10) > 0;
    }, null, { timeout: 10000 });
    check(true, "the added rule's series starts");

    // Removing it.
    await page.click('#rule-list li[data-rule="hello"] button.remove');
    await page.waitForSelector('#charts .card[data-rule="hello"]', { state: "detached", timeout: 10000 });
    const listed = await page.evaluate(async () => (await (await fetch("/api/rules")).json()).rules.map((r) => r.id));
    check(!listed.includes("hello"), "the removed rule is gone", listed);

    // Hostile text is shown as text, never as HTML.
    const hostile = "love <script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\"> " +
      "<a href=\"javascript:window.__pwned=3\">click</a> \u202Egnirts desrever\u202C end";
    send({ id: "evil", text: hostile, user: "<b>mallory</b>", urls: ["javascript:window.__pwned=4"] });
    await page.waitForTimeout(1300);
    const evil = page.locator('#messages li[data-id="evil"]');
    for (let attempt = 1; ; attempt++) {  // retried as the first click is (the chart scrolls)
      const x2 = parseInt(await vol.getAttribute("data-last-x"), 10);
      await vol.click({ position: { x: x2, y: 80 } });
      try { await evil.waitFor({ timeout: 2500 }); break; } catch (e) { if (attempt >= 6) throw e; }
    }
    check(await evil.locator(".text").textContent() === hostile, "hostile text shown verbatim as text");
    check(await page.locator("#messages script, #messages img, #messages b, #messages .text a").count() === 0,
      "no element made from message text");
    check(await evil.locator("a").count() === 0, "a javascript: link is not shown");
    check(await evil.locator(".meta").textContent().then((t) => t.includes("@<b>mallory</b>")), "hostile author shown as text");
    check(await page.evaluate(() => window.__pwned === undefined), "no script ran");
    check(errors.length === 0, "no page error or dialog", errors);

    // A few more posts, so that the saved screenshot shows something.
    for (let i = 0; i < 12; i++) send({ text: i % 3 ? "love the launch keynote, great" : "the launch was awful, I hate it", user: "user" + i });
    await page.waitForTimeout(1500);
    await page.screenshot({ path: path.join(outDir, "live-view.png"), fullPage: true });
    console.log("screenshot: " + path.join(outDir, "live-view.png"));
    await replayPhase(bin, browser, tmp, rules, outDir);
    console.log("PASS");
  } catch (e) {
    if (page) await page.screenshot({ path: path.join(outDir, "live-view-failed.png"), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    if (browser) await browser.close();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
    serve.kill("SIGTERM");
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// `serve --input FILE` on an archive from 2023 (40 s, one "love" a second, 20 more in its
// 25th second): once it is read, the page stays on the archive's own time and says the input
// ended; the minute chart shows it too, and the burst is listed though it started before the
// page was opened.
async function replayPhase(bin, browser, tmp, rules, outDir) {
  const t0 = 1700000000000;
  const lines = [];
  for (let s = 0; s < 40; s++) {
    const k = s === 25 ? 21 : 1;
    for (let j = 0; j < k; j++) lines.push(JSON.stringify({ id: "a" + lines.length, text: "love the launch " + s, timestamp: t0 + s * 1000 + 100 + j * 10 }));
  }
  const last = t0 + 39 * 1000 + 100;
  const archive = path.join(tmp, "archive.jsonl");
  fs.writeFileSync(archive, lines.join("\n") + "\n");
  const serve = spawn(bin, ["serve", "--rules", rules, "--input", archive, "--bind", "127.0.0.1:0"],
    { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const url = await serveUrl(serve);
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitForSelector('#figures[data-ended="1"]', { timeout: 10000 });
    await page.waitForTimeout(2500);
    const clock = await page.getAttribute("#figures", "data-clock");
    check(clock === String(last), "after the replay the clock stays on its last event time", [clock, last]);
    check(/input ended/.test(await page.textContent("#figures")), "the page says the input ended");
    await page.waitForSelector('#status[data-state="ended"]', { timeout: 10000 })
      .catch(() => { throw new Error("FAILED: the status pill still says live after the input ended"); });
    check(/input ended/.test(await page.textContent("#status")), "the status pill says the input ended");
    const card = '#charts .card[data-rule="love"] ';
    await page.waitForFunction((c) => parseInt(document.querySelector(c + "canvas.volume").dataset.points || "0", 10) === 40, card, { timeout: 10000 });
    check(true, "the replayed seconds are all in view");
    await page.waitForFunction((c) => parseInt(document.querySelector(c + "canvas.minutes").dataset.points || "0", 10) > 0, card, { timeout: 10000 })
      .catch(() => { throw new Error("FAILED: the minute chart shows the replay (no point)"); });
    check(true, "the minute chart shows the replay");
    const bursts = await page.locator("#burst-list li").allTextContents();
    check(bursts.some((b) => /love {2}burst \(1s\)/.test(b)), "the burst of the replay is listed", bursts);
    await page.screenshot({ path: path.join(outDir, "live-view-replay.png"), fullPage: true });
    await page.close();
  } finally {
    serve.kill("SIGTERM");
  }
}

(async () => {
  const a = process.argv.slice(2);
  if (a[0] === "--screenshot") await screenshotMode(a[1], a[2], parseFloat(a[3] || "20"));
  else if (a.length === 2) await testMode(a[0], a[1]);
  else { console.error("usage: node live-view.test.js BIN OUTDIR | --screenshot URL OUT [SECONDS]"); process.exit(2); }
})().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
