// Drive the real VS Code workbench (code-server) in headless Chromium with Playwright for the
// coder-lsp extension's end-to-end test. One scenario per run; the pytest wrapper
// (test_vscode.py) starts code-server, prepares the workspace and asserts on the JSON this
// prints as its last stdout line: {ok, scenario, status, ghost, toasts, screenshots, ...}.
//
// Usage: node vscode_e2e.mjs '<json config>'
//   config: {playwrightDir, chromium, url, folder, scenario, name?, artifacts, timeoutMs,
//            file?, type?, expectGhost?, diskFile?, releaseFile?, serverLog?}; scenario
//            explicit (Alt+\ asks the server again, past its cache) reads serverLog.
// Scenarios: complete (type, ghost text, Tab, save), missing (no server binary),
//            crash (server dies at start), loading (slow model load, then ready),
//            midword (type a word's start at human speed, pause, ghost text; accept a word,
//            then the rest; then at a line start), starting (type before the server runs),
//            reask (the first answer is cut short by the server's time limit; the ghost
//            text comes without another key).

import { createRequire } from "node:module";
import * as fs from "node:fs";
import * as path from "node:path";

const cfg = JSON.parse(process.argv[2]);
const require = createRequire(import.meta.url);
const { chromium } = require(cfg.playwrightDir);
const TIMEOUT = cfg.timeoutMs ?? 60000;
const result = { ok: false, scenario: cfg.scenario, screenshots: [], log: [] };
const t0 = Date.now();

function log(msg) {
  result.log.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${msg}`);
}

/** Poll `fn` until it returns a truthy value or `timeout` ms pass; returns the value or null. */
async function poll(fn, timeout = TIMEOUT, every = 250) {
  const end = Date.now() + timeout;
  for (;;) {
    const value = await fn().catch(() => null);
    if (value) return value;
    if (Date.now() > end) return null;
    await new Promise((r) => setTimeout(r, every));
  }
}

async function statusText(page) {
  const items = page.locator("#workbench\\.parts\\.statusbar .statusbar-item", { hasText: "coder-lsp" });
  // All at once: counting, then reading item i, waits 30 s on an item that went away in
  // between (a progress item that ended).
  return (await items.allInnerTexts()).map((t) => t.trim()).join(" | ");
}

async function waitStatus(page, re, timeout = TIMEOUT) {
  const found = await poll(async () => {
    const t = await statusText(page);
    return re.test(t) ? t : null;
  }, timeout);
  const now = await statusText(page);
  log(`status ${found ? "matched" : "did NOT match"} ${re}: ${JSON.stringify(now)}`);
  if (!found) throw new Error(`status bar never matched ${re}; last: ${JSON.stringify(now)}`);
  return found;
}

async function toasts(page) {
  const items = page.locator(".notifications-toasts .notification-list-item-message");
  const n = await items.count();
  const out = [];
  for (let i = 0; i < n; i++) out.push((await items.nth(i).innerText()).trim());
  return out;
}

async function ghostText(page) {
  // Inline ghost text is split into one span per syntax token on the cursor's line; extra
  // lines of a multi-line suggestion live in a separate view zone (.ghost-text).
  return page.evaluate(() => {
    const inline = [...document.querySelectorAll(".monaco-editor .ghost-text-decoration")]
      .map((e) => e.textContent)
      .join("");
    const blocks = [...document.querySelectorAll(".monaco-editor .ghost-text")].map((block) => {
      const lines = [...block.querySelectorAll(".view-line")].map((l) => l.textContent);
      return lines.length ? lines.join("\n") : block.textContent;
    });
    return [inline, ...blocks]
      .filter((t) => t)
      .join("\n")
      .replace(/\u00a0/g, " ");
  });
}

async function shot(page, name) {
  const p = path.join(cfg.artifacts, `${cfg.name ?? cfg.scenario}-${name}.png`);
  await page.screenshot({ path: p });
  result.screenshots.push(p);
  log(`screenshot ${p}`);
}

async function openFile(page, name) {
  // Quick Open (Ctrl+P), the way a user opens a file by name.
  for (let attempt = 0; attempt < 3; attempt++) {
    await page.keyboard.press("Control+P");
    const input = page.locator(".quick-input-widget input");
    if (!(await poll(async () => input.isVisible(), 5000))) continue;
    await input.fill(name);
    const row = page.locator(".quick-input-list .monaco-list-row", { hasText: name }).first();
    if (!(await poll(async () => row.isVisible(), 10000))) {
      await page.keyboard.press("Escape");
      continue;
    }
    await page.keyboard.press("Enter");
    const tab = page.locator(".tabs-container .tab.active", { hasText: name });
    if (await poll(async () => tab.isVisible(), 10000)) {
      log(`opened ${name}`);
      return;
    }
  }
  throw new Error(`could not open ${name} with Quick Open`);
}

async function focusEditorEnd(page) {
  await page.locator(".editor-instance .monaco-editor .view-lines").first().click();
  await page.keyboard.press("Control+End");
}

async function scenarioComplete(page) {
  await openFile(page, cfg.file);
  // The extension activates on startup; wait until the server says the model is ready.
  result.statusBeforeTyping = await waitStatus(page, /coder-lsp: ready/);
  await focusEditorEnd(page);
  await page.keyboard.type(cfg.type, { delay: 40 });
  await page.keyboard.press("Enter");
  log("typed; waiting for ghost text");
  let ghost = await poll(async () => {
    const g = await ghostText(page);
    return g.trim() ? g : null;
  }, 15000);
  result.autoTriggered = Boolean(ghost);
  if (!ghost) {
    // Not shown on its own (e.g. the request raced the typing): ask explicitly, like Alt+\.
    log("no automatic ghost text; triggering inline suggestion explicitly");
    await page.keyboard.press("Alt+Backslash");
    ghost = await poll(async () => {
      const g = await ghostText(page);
      return g.trim() ? g : null;
    }, 30000);
  }
  result.ghost = ghost ?? "";
  log(`ghost text: ${JSON.stringify(result.ghost)}`);
  await shot(page, "ghost");
  if (!ghost) throw new Error("no ghost text appeared");
  if (cfg.expectGhost && !ghost.includes(cfg.expectGhost)) {
    throw new Error(`ghost text ${JSON.stringify(ghost)} lacks ${JSON.stringify(cfg.expectGhost)}`);
  }
  await page.keyboard.press("Tab");
  const gone = await poll(async () => ((await ghostText(page)).trim() ? null : true), 10000);
  log(`ghost text ${gone ? "accepted" : "still visible after Tab"}`);
  await page.keyboard.press("Control+S");
  const saved = await poll(async () => {
    const text = fs.readFileSync(cfg.diskFile, "utf8");
    return text.includes(ghost.trim().split("\n")[0].trim()) ? text : null;
  }, 15000);
  result.disk = fs.readFileSync(cfg.diskFile, "utf8");
  log(`file on disk ${saved ? "contains" : "LACKS"} the completion`);
  // Saving clears the dirty dot; let the tab settle before the picture.
  await poll(async () => !(await page.locator(".tabs-container .tab.active.dirty").count()), 5000);
  result.status = await waitStatus(page, /coder-lsp: (ready|working)/, 10000);
  await shot(page, "accepted");
  if (!saved) throw new Error("the accepted completion is not in the saved file");
  if (cfg.toggle) await toggleOffAndOn(page);
}

async function runCommand(page, title) {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ state: "visible", timeout: 10000 });
  await input.fill(`>${title}`);
  const row = page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first();
  await row.waitFor({ state: "visible", timeout: 10000 });
  await page.keyboard.press("Enter");
  log(`ran command ${title}`);
}

async function toggleOffAndOn(page) {
  // Off: the status bar says so and an explicit request (Alt+\) shows no ghost text.
  await runCommand(page, "coder-lsp: Toggle Completions");
  result.statusOff = await waitStatus(page, /coder-lsp: off/, 15000);
  await focusEditorEnd(page);
  await page.keyboard.press("Enter");
  await page.keyboard.type("def sub(a, b):", { delay: 20 });
  await page.keyboard.press("Enter");
  await page.keyboard.press("Alt+Backslash");
  const ghost = await poll(async () => ((await ghostText(page)).trim() ? await ghostText(page) : null), 3000);
  result.ghostWhileOff = ghost ?? "";
  await shot(page, "off");
  await runCommand(page, "coder-lsp: Toggle Completions");
  result.statusOn = await waitStatus(page, /coder-lsp: ready/, 15000);
  await focusEditorEnd(page);
  await page.keyboard.press("Enter");
  await page.keyboard.type("def mul(a, b):", { delay: 20 });
  await page.keyboard.press("Enter");
  await page.keyboard.press("Alt+Backslash");
  const back = await poll(async () => ((await ghostText(page)).trim() ? await ghostText(page) : null), 20000);
  result.ghostAfterOn = back ?? "";
  await shot(page, "on-again");
  await page.keyboard.press("Escape");
}

/** Poll for non-empty ghost text for up to `timeout` ms; returns it or null. */
async function waitGhost(page, timeout) {
  return poll(async () => {
    const g = await ghostText(page);
    return g.trim() ? g : null;
  }, timeout, 50);
}

/** Save and return the file on disk once it differs from `before` (or after 10 s). */
async function saveAndRead(page, before) {
  await page.keyboard.press("Control+S");
  const text = await poll(async () => {
    const t = fs.readFileSync(cfg.diskFile, "utf8");
    return t !== before ? t : null;
  }, 10000);
  return text ?? fs.readFileSync(cfg.diskFile, "utf8");
}

/**
 * The scenario, with VS Code's default settings: inside a function body type the
 * start of a keyword one key per `keyDelayMs` (a person typing), stop, and wait for ghost
 * text; accept its next word (Ctrl+Right), then the rest (Tab); then the same at the start
 * of a new body line. Times run from the last key to the ghost text's appearance.
 */
async function scenarioMidword(page) {
  await openFile(page, cfg.file);
  result.statusBeforeTyping = await waitStatus(page, /coder-lsp: ready/);
  await focusEditorEnd(page);
  await page.keyboard.type(cfg.header, { delay: 60 });
  await page.keyboard.press("Enter");
  for (const ch of cfg.prefix) {
    await page.keyboard.type(ch);
    await new Promise((r) => setTimeout(r, cfg.keyDelayMs));
  }
  const paused = Date.now();
  log(`typed ${JSON.stringify(cfg.prefix)}; waiting for ghost text`);
  const ghost = await waitGhost(page, cfg.ghostTimeoutMs);
  result.midwordMs = Date.now() - paused;
  result.ghost = ghost ?? "";
  log(`mid-word ghost text after ${result.midwordMs} ms: ${JSON.stringify(result.ghost)}`);
  await shot(page, "midword");
  if (!ghost) throw new Error("no ghost text appeared mid-word");
  let disk = fs.readFileSync(cfg.diskFile, "utf8");
  await page.keyboard.press("Control+ArrowRight"); // editor.action.inlineSuggest.acceptNextWord
  await new Promise((r) => setTimeout(r, 300));
  result.ghostAfterWord = (await waitGhost(page, 3000)) ?? "";
  disk = await saveAndRead(page, disk);
  result.diskAfterWord = disk;
  log(`after accepting a word: ghost ${JSON.stringify(result.ghostAfterWord)}`);
  await page.keyboard.press("Tab");
  await new Promise((r) => setTimeout(r, 300));
  disk = await saveAndRead(page, disk);
  result.diskAfterRest = disk;
  await shot(page, "midword-accepted");
  // At the start of a fresh body line.
  await page.keyboard.press("End");
  await page.keyboard.press("Enter");
  await page.keyboard.press("Enter");
  await page.keyboard.press("Shift+Tab");
  await page.keyboard.type(cfg.header2, { delay: 60 });
  await page.keyboard.press("Enter");
  const lineStart = Date.now();
  const ghost2 = await waitGhost(page, cfg.ghostTimeoutMs);
  result.lineStartMs = Date.now() - lineStart;
  result.ghost2 = ghost2 ?? "";
  log(`line-start ghost text after ${result.lineStartMs} ms: ${JSON.stringify(result.ghost2)}`);
  await shot(page, "linestart");
  if (ghost2) {
    await page.keyboard.press("Tab");
    await new Promise((r) => setTimeout(r, 300));
  }
  result.diskFinal = await saveAndRead(page, disk);
  result.status = await statusText(page);
}

/**
 * A busy machine: the server's time limit cuts the first generation short (the test sets
 * maxPredictMs to 0), so its answer is empty; the server finishes it in the background and
 * sends coder-lsp/completionReady. Type a function header and Enter, then press nothing:
 * the ghost text must still appear; Tab accepts it and the file is saved.
 */
async function scenarioReask(page) {
  await openFile(page, cfg.file);
  result.statusBeforeTyping = await waitStatus(page, /coder-lsp: ready/);
  await focusEditorEnd(page);
  await page.keyboard.type(cfg.type, { delay: 40 });
  await page.keyboard.press("Enter");
  const typed = Date.now();
  log("typed; waiting for ghost text (no more keys)");
  const ghost = await waitGhost(page, cfg.ghostTimeoutMs);
  result.ghostMs = Date.now() - typed;
  result.ghost = ghost ?? "";
  log(`ghost text after ${result.ghostMs} ms: ${JSON.stringify(result.ghost)}`);
  await shot(page, "reask");
  if (!ghost) throw new Error("no ghost text appeared without a key");
  const before = fs.readFileSync(cfg.diskFile, "utf8");
  await page.keyboard.press("Tab");
  await new Promise((r) => setTimeout(r, 300));
  result.disk = await saveAndRead(page, before);
  result.status = await statusText(page);
}

/** Type while the server is still starting; the ghost text must come once it runs. */
async function scenarioStarting(page) {
  await openFile(page, cfg.file);
  result.statusWhileTyping = await waitStatus(page, /coder-lsp: starting/);
  await focusEditorEnd(page);
  await page.keyboard.type(cfg.type, { delay: 40 });
  await page.keyboard.press("Enter");
  result.statusAfterTyping = await statusText(page);
  log(`typed while ${JSON.stringify(result.statusAfterTyping)}; waiting (no more keys)`);
  const ghost = await waitGhost(page, cfg.ghostTimeoutMs);
  result.ghost = ghost ?? "";
  result.status = await statusText(page);
  await shot(page, "starting");
  if (!ghost) throw new Error("no ghost text after the server started");
}

/** The server's answers so far, from its log (``--log-file``, cfg.serverLog): one
 * {line, character, cache} per completion it logged ("complete FILE:L:C ... cache=HIT"). */
function serverAnswers() {
  if (!fs.existsSync(cfg.serverLog)) return [];
  const out = [];
  for (const m of fs.readFileSync(cfg.serverLog, "utf8").matchAll(/ complete \S+:(\d+):(\d+) .*? cache=(\w+)/g)) {
    out.push({ line: Number(m[1]), character: Number(m[2]), cache: m[3] });
  }
  return out;
}

/** Poll the server's log for an answer after the first `from` with `cache` (any when
 * undefined); returns it or null. */
async function answerAfter(from, cache, timeout) {
  return poll(async () => serverAnswers().slice(from).find((a) => cache === undefined || a.cache === cache) ?? null, timeout, 100);
}

/**
 * Alt+\ pressed as a key (the extension binds it to "Trigger Inline Suggestion"): VS Code
 * asks again at once, and the server answers from the model, not from its completion
 * cache, although the cache holds an answer for that very spot (an automatic request after
 * an edit that leaves the text as it was is answered from it first).
 */
async function scenarioExplicit(page) {
  await openFile(page, cfg.file);
  result.statusBeforeTyping = await waitStatus(page, /coder-lsp: ready/);
  await focusEditorEnd(page);
  await page.keyboard.type(cfg.type, { delay: 40 });
  await page.keyboard.press("Enter");
  result.ghost = (await waitGhost(page, cfg.ghostTimeoutMs)) ?? "";
  log(`ghost text: ${JSON.stringify(result.ghost)}`);
  if (!result.ghost) throw new Error("no ghost text appeared");
  const spot = serverAnswers().at(-1);
  result.spot = spot;
  // The same spot again through an edit: VS Code's automatic request, the cache's answer.
  await page.keyboard.press("Escape");
  let from = serverAnswers().length;
  await page.keyboard.type("x");
  await page.keyboard.press("Backspace");
  const cached = await answerAfter(from, "exact", 15000);
  result.cacheBeforeKey = cached ? cached.cache : serverAnswers().slice(from).map((a) => a.cache).join(",");
  result.ghostBeforeKey = (await waitGhost(page, 15000)) ?? "";
  // Dismiss, then the key.
  await page.keyboard.press("Escape");
  await poll(async () => ((await ghostText(page)).trim() ? null : true), 5000, 50);
  from = serverAnswers().length;
  await page.keyboard.press("Alt+Backslash");
  log("pressed Alt+\\");
  const fresh = await answerAfter(from, undefined, cfg.ghostTimeoutMs);
  result.answersAfterKey = serverAnswers().slice(from);
  result.ghostAfterKey = (await waitGhost(page, cfg.ghostTimeoutMs)) ?? "";
  log(`after the key: answers ${JSON.stringify(result.answersAfterKey)}, ghost ${JSON.stringify(result.ghostAfterKey)}`);
  await shot(page, "explicit");
  if (!fresh) throw new Error("Alt+\\ sent no request the server answered");
}

async function scenarioMissing(page) {
  result.status = await waitStatus(page, /coder-lsp: not installed/);
  const toast = await poll(async () => (await toasts(page)).find((t) => /not found/.test(t)) ?? null);
  result.toasts = await toasts(page);
  await shot(page, "toast");
  if (!toast) throw new Error(`no 'not found' notification; toasts: ${JSON.stringify(result.toasts)}`);
}

async function scenarioCrash(page) {
  result.status = await waitStatus(page, /coder-lsp: stopped/, TIMEOUT);
  const toast = await poll(async () => (await toasts(page)).find((t) => /crashed/.test(t)) ?? null);
  // Give a spurious extra restart / message time to show up before counting.
  await new Promise((r) => setTimeout(r, 2000));
  result.toasts = await toasts(page);
  await shot(page, "stopped");
  if (!toast) throw new Error(`no 'crashed' notification; toasts: ${JSON.stringify(result.toasts)}`);
}

async function scenarioLoading(page) {
  result.statusLoading = await waitStatus(page, /coder-lsp: loading .*40%/);
  await openFile(page, cfg.file);
  await focusEditorEnd(page);
  await page.keyboard.type(cfg.type, { delay: 40 });
  await page.keyboard.press("Enter");
  await page.keyboard.press("Alt+Backslash");
  // Let the completion requests made while loading come back (empty), then look for toasts.
  await new Promise((r) => setTimeout(r, 2000));
  result.toastsWhileLoading = await toasts(page);
  result.statusWhileTyping = await statusText(page);
  await shot(page, "loading");
  fs.writeFileSync(cfg.releaseFile, "go\n");
  log("released the model load");
  result.status = await waitStatus(page, /coder-lsp: ready \(fake-model\)/);
  // The request kept while loading is answered now: its ghost text shows, no key pressed.
  result.ghostAfterLoad = (await waitGhost(page, 15000)) ?? "";
  result.toasts = await toasts(page);
  await shot(page, "ready");
}

const SCENARIOS = {
  explicit: scenarioExplicit,
  complete: scenarioComplete,
  missing: scenarioMissing,
  crash: scenarioCrash,
  loading: scenarioLoading,
  midword: scenarioMidword,
  starting: scenarioStarting,
  reask: scenarioReask,
};

async function main() {
  fs.mkdirSync(cfg.artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("console", (m) => {
    if (m.type() === "error" && /coder-lsp/i.test(m.text())) log(`console: ${m.text().slice(0, 300)}`);
  });
  try {
    const url = `${cfg.url}/?folder=${encodeURIComponent(cfg.folder)}`;
    await page.goto(url, { waitUntil: "domcontentloaded", timeout: TIMEOUT });
    await page.locator(".monaco-workbench").waitFor({ timeout: TIMEOUT });
    await page.locator("#workbench\\.parts\\.statusbar").waitFor({ timeout: TIMEOUT });
    log("workbench loaded");
    await SCENARIOS[cfg.scenario](page);
    result.ok = true;
  } catch (err) {
    result.error = String(err && err.stack ? err.stack : err);
    try {
      result.status = result.status ?? (await statusText(page));
      result.toasts = result.toasts ?? (await toasts(page));
      await shot(page, "failure");
    } catch (e) {
      log(`could not record the failure: ${e}`);
    }
  } finally {
    result.seconds = (Date.now() - t0) / 1000;
    await browser.close();
  }
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(result.ok ? 0 : 1);
}

await main();
