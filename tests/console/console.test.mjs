// The console in a real browser: Debian's chromium driven by playwright-core against a fresh
// `colloquy serve` seeded through the API. Screenshots of each page at 375 and 1280 px are
// written to the test's temporary directory (printed).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { chromium } from "playwright-core";

const ROOT = new URL("../../", import.meta.url).pathname;
const BIN = process.env.COLLOQUY_BIN || join(ROOT, "target/debug/colloquy");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const AXE = readFileSync(join(ROOT, "tests/console/node_modules/axe-core/axe.min.js"), "utf8");
const CONVERSATIONS = 250;
const USERS = ["ada", "bo", "cy"];

const dir = mkdtempSync(join(tmpdir(), "colloquy-console-"));
const shots = join(dir, "screenshots");
let server, base, appId, appKey, operatorKey, browser;

const colloquy = (...args) => execFileSync(BIN, [...args, "--data-dir", join(dir, "data")], { encoding: "utf8" });

async function freePort() {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function api(key, path, { method = "GET", body } = {}) {
  const response = await fetch(`${base}/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

before(async () => {
  const config = join(dir, "app.json");
  writeFileSync(config, JSON.stringify({
    feedback_rate_limit_per_minute: 0,
    opening_statement: "Hello!",
    text_to_speech: { enabled: true },
    file_upload: { image: { enabled: true, number_limits: 3, transfer_methods: ["local_file"] } },
  }));
  const created = JSON.parse(colloquy("app", "create", "--name", "Demo", "--config", config, "--json"));
  appId = created.app_id;
  appKey = created.api_key;
  operatorKey = colloquy("key", "create", "--app", created.app_id, "--role", "operator").trim();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(BIN, ["serve", "--addr", `127.0.0.1:${port}`, "--data-dir", join(dir, "data")], {
    // espeak-ng speaks the answers (scripts/test.sh installs it with the other speech engines).
    env: { ...process.env, COLLOQUY_LOG: "warn", COLLOQUY_TTS: "espeak" },
    stdio: "ignore",
  });
  for (let i = 0; ; i += 1) {
    try {
      if ((await fetch(`${base}/v1/info`, { headers: { Authorization: `Bearer ${appKey}` } })).ok) break;
    } catch {}
    assert.ok(i < 200, "the server answers");
    await new Promise((r) => setTimeout(r, 50));
  }
  const seed = async (i) => {
    const user = USERS[i % USERS.length];
    const answer = await api(appKey, "/chat-messages", {
      method: "POST",
      body: { query: `question ${i}`, user, inputs: {}, response_mode: "blocking" },
    });
    if (i % 5 === 0) {
      await api(appKey, `/messages/${answer.message_id}/feedbacks`, { method: "POST", body: { rating: i % 10 ? "dislike" : "like", user } });
    }
  };
  for (let i = 0; i < CONVERSATIONS; i += 10) {
    await Promise.all(Array.from({ length: Math.min(10, CONVERSATIONS - i) }, (_, j) => seed(i + j)));
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  server?.kill();
  console.log(`screenshots: ${shots}`);
  if (!process.env.KEEP) rmSync(join(dir, "data"), { recursive: true, force: true });
});

/** A page of the console at `width`, collecting the browser console's errors. */
async function open(width = 1280) {
  const context = await browser.newContext({ viewport: { width, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  page.errors = [];
  page.on("console", (message) => { if (message.type() === "error") page.errors.push(message.text()); });
  page.on("pageerror", (error) => page.errors.push(String(error)));
  await page.goto(`${base}/console/`);
  return page;
}

async function signIn(page, key = operatorKey) {
  await page.fill("#key", key);
  await page.press("#key", "Enter");
}

async function accessible(page, name) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const serious = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(serious.map((v) => `${v.id}: ${v.help}`), [], `${name}: no serious or critical axe violations`);
}

test("sign in: a wrong key, an app key and a revoked key are told apart; the right one signs in", async () => {
  const page = await open();
  await signIn(page, "op-wrong");
  await page.getByText("This key is wrong or revoked.").waitFor();
  await signIn(page, appKey);
  await page.getByText("the console needs an operator key").waitFor();
  const spare = colloquy("key", "create", "--app", appId, "--role", "operator").trim();
  colloquy("key", "revoke", spare);
  await signIn(page, spare);
  await page.getByText("This key is wrong or revoked.").waitFor();
  await signIn(page);
  await page.getByRole("heading", { name: "Overview" }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("colloquy.operatorKey")), operatorKey);
  assert.ok(!page.url().includes(operatorKey), "the key is never in a URL");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("colloquy.operatorKey")), null);
  await page.context().close();
});

test("the overview's charts show the API's numbers", async () => {
  const page = await open();
  await signIn(page);
  await page.getByRole("heading", { name: "Overview" }).waitFor();
  const start = await page.inputValue("#start");
  const end = await page.inputValue("#end");
  const seconds = (date, plus = 0) => Date.parse(`${date}T00:00:00Z`) / 1000 + plus;
  const stats = await api(operatorKey, `/app/stats?granularity=day&start=${seconds(start)}&end=${seconds(end, 86400)}`);
  const cells = await page.$$eval('figure[data-chart="Messages per day"] tbody tr', (rows) =>
    rows.map((row) => [row.querySelector("th").textContent, Number(row.querySelector("td").textContent)]));
  const expected = stats.data.map((b) => [new Date(b.start * 1000).toISOString().slice(0, 10), b.messages]);
  assert.deepEqual(cells, expected);
  assert.equal(cells.reduce((sum, [, n]) => sum + n, 0), CONVERSATIONS);
  const likes = await page.$$eval('figure[data-chart="Likes and dislikes"] tbody td', (tds) => tds.map((td) => Number(td.textContent)));
  const apiLikes = stats.data.flatMap((b) => [b.likes, b.dislikes]);
  assert.deepEqual(likes, apiLikes);
  assert.equal(await page.locator("svg.chart").count(), 4);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

/** Calls `read` on each page of the conversation list, following "Next page" to the end. */
async function everyPage(page, read) {
  for (;;) {
    await page.waitForSelector("tbody tr[data-id]");
    await read();
    const next = page.getByRole("link", { name: "Next page" });
    if ((await next.count()) === 0) return;
    const first = await page.$eval("tbody tr[data-id]", (row) => row.dataset.id);
    await next.click();
    await page.waitForFunction((id) => document.querySelector("tbody tr[data-id]")?.dataset.id !== id, first);
  }
}

test("paging through 250 conversations of 3 users shows each once, and filters by user", async () => {
  const page = await open();
  await signIn(page);
  await page.goto(`${base}/console/#/conversations`);
  const seen = [];
  await everyPage(page, async () => {
    seen.push(...(await page.$$eval("tbody tr[data-id]", (rows) => rows.map((row) => row.dataset.id))));
  });
  assert.equal(seen.length, CONVERSATIONS);
  assert.equal(new Set(seen).size, CONVERSATIONS, "each conversation exactly once");
  // Back keeps its place: the previous page is the one before.
  await page.goBack();
  await page.waitForFunction((id) => document.querySelector("tbody tr[data-id]")?.dataset.id === id, seen[220]);
  const back = await page.$$eval("tbody tr[data-id]", (rows) => rows.map((row) => row.dataset.id));
  assert.deepEqual(back, seen.slice(seen.length - (seen.length % 20 || 20) - 20, seen.length - (seen.length % 20 || 20)));
  await page.goto(`${base}/console/#/conversations`);
  await page.fill("#user", "bo");
  await page.getByRole("button", { name: "Filter" }).click();
  let bo = 0;
  await page.waitForFunction(() => location.hash.includes("user=bo"));
  await everyPage(page, async () => {
    const users = await page.$$eval("tbody tr[data-id] td:nth-child(2)", (tds) => tds.map((td) => td.textContent));
    assert.ok(users.every((u) => u === "bo"), users.join(","));
    bo += users.length;
  });
  assert.equal(bo, Math.ceil((CONVERSATIONS - 1) / 3));
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("a thread shows its messages and feedback; operator ratings and annotations persist", async () => {
  const page = await open();
  await signIn(page);
  await page.goto(`${base}/console/#/conversations`);
  const link = page.locator("tbody tr[data-id] a").first();
  const id = await page.locator("tbody tr[data-id]").first().getAttribute("data-id");
  await link.click();
  await page.waitForSelector("ol.thread li");
  const stored = await api(operatorKey, `/app/conversations/${id}/messages`);
  assert.equal(await page.locator("ol.thread li .q").first().textContent(), stored.data[0].query);
  await page.getByRole("button", { name: "Dislike" }).first().click();
  await page.getByText("Rated dislike.").waitFor();
  const rated = await api(operatorKey, `/app/conversations/${id}/messages`);
  assert.ok(rated.data[0].feedbacks.some((f) => f.from_source === "admin" && f.rating === "dislike"));
  await page.getByText("Operators: dislike").waitFor();
  await page.getByRole("button", { name: "Annotate" }).first().click();
  await page.fill("#d-answer", "The answer the operators want.");
  await page.getByRole("button", { name: "Save annotation" }).click();
  await page.getByText("Annotation saved.").waitFor();
  const annotations = await api(operatorKey, "/apps/annotations?limit=100");
  assert.ok(annotations.data.some((a) => a.question === stored.data[0].query && a.answer === "The answer the operators want."));
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("by keyboard alone: sign in, open a conversation, annotate it", async () => {
  const page = await open();
  await page.keyboard.type(operatorKey);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Overview" }).waitFor();
  const tabTo = async (selector, text) => {
    for (let i = 0; i < 400; i += 1) {
      await page.keyboard.press("Tab");
      const there = await page.evaluate(([sel, want]) => {
        const el = document.activeElement;
        return Boolean(el && el.matches(sel) && (!want || el.textContent.trim() === want));
      }, [selector, text]);
      if (there) return;
    }
    assert.fail(`never reached ${selector} ${text || ""} by Tab`);
  };
  await tabTo('nav a[href="#/conversations"]');
  await page.keyboard.press("Enter");
  await page.waitForSelector("tbody tr[data-id]");
  await tabTo("tbody tr[data-id] a");
  await page.keyboard.press("Enter");
  await page.waitForSelector("ol.thread li");
  await tabTo("button", "Annotate");
  await page.keyboard.press("Enter");
  await page.waitForSelector("dialog[open]");
  await page.keyboard.press("Tab");
  await page.keyboard.press("Control+A");
  await page.keyboard.type("Typed without a mouse.");
  await tabTo("button", "Save annotation");
  await page.keyboard.press("Enter");
  await page.getByText("Annotation saved.").waitFor();
  const annotations = await api(operatorKey, "/apps/annotations?keyword=without%20a%20mouse");
  assert.equal(annotations.data.length, 1);
  await page.context().close();
});

test("an export reaches 100% and its download is the file", async () => {
  const page = await open();
  await signIn(page);
  await page.goto(`${base}/console/#/exports`);
  await page.getByRole("button", { name: "Export all messages" }).click();
  await page.getByText(/^(Done|Failed): /).waitFor({ timeout: 60000 });
  const state = await page.getByText(/^(Done|Failed): /).textContent();
  assert.ok(state.startsWith("Done"), state);
  assert.equal(await page.$eval("progress", (p) => p.value), 100);
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download the file" }).click()]);
  const lines = readFileSync(await download.path(), "utf8").trim().split("\n");
  assert.equal(lines.length, CONVERSATIONS);
  assert.ok(lines.every((line) => JSON.parse(line).message_id));
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("every page: no serious accessibility violation, no console error, screenshots at 375 and 1280 px", async () => {
  for (const width of [375, 1280]) {
    const page = await open(width);
    await page.screenshot({ path: join(shots, `sign-in-${width}.png`), fullPage: true });
    await accessible(page, "sign in");
    await signIn(page);
    for (const name of ["overview", "conversations", "feedback", "annotations", "exports", "audit"]) {
      await page.goto(`${base}/console/#/${name}`);
      await page.waitForSelector("#view h1");
      await page.waitForFunction(() => !document.querySelector("#view")?.textContent.startsWith("Loading"));
      await page.screenshot({ path: join(shots, `${name}-${width}.png`), fullPage: true });
      await accessible(page, name);
      const text = await page.textContent("#view");
      assert.ok(!/\b(null|undefined|NaN)\b/.test(text), `${name}: no stray null, undefined or NaN`);
      const wide = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
      assert.ok(!wide || name === "feedback" || name === "audit", `${name} fits ${width} px (tables scroll in their own box)`);
    }
    await page.goto(`${base}/console/#/conversations`);
    await page.locator("tbody tr[data-id] a").first().click();
    await page.waitForSelector("ol.thread li");
    await page.screenshot({ path: join(shots, `thread-${width}.png`), fullPage: true });
    assert.ok(!/\b(null|undefined|NaN)\b/.test(await page.textContent("#view")), "thread: no stray null");
    await accessible(page, "thread");
    assert.deepEqual(page.errors, []);
    await page.context().close();
  }
});

test("deleting a conversation and erasing an end user ask first, then take effect", async () => {
  const page = await open();
  await signIn(page);
  await page.goto(`${base}/console/#/conversations?user=ada`);
  await page.waitForSelector("tbody tr[data-id]");
  const id = await page.locator("tbody tr[data-id]").first().getAttribute("data-id");
  await page.locator("tbody tr[data-id] a").first().click();
  await page.waitForSelector("ol.thread li");
  page.once("dialog", (d) => d.dismiss());
  await page.getByRole("button", { name: "Delete this conversation…" }).click();
  await api(operatorKey, `/app/conversations/${id}/messages`);
  page.once("dialog", (d) => d.accept());
  await page.getByRole("button", { name: "Delete this conversation…" }).click();
  await page.getByText("Conversation deleted.").waitFor();
  const gone = await fetch(`${base}/v1/app/conversations/${id}/messages`, { headers: { Authorization: `Bearer ${operatorKey}` } });
  assert.equal(gone.status, 404);

  await page.goto(`${base}/console/#/conversations?user=cy`);
  await page.waitForSelector("tbody tr[data-id]");
  await page.locator("tbody tr[data-id] a").first().click();
  await page.waitForSelector("ol.thread li");
  let asked = "";
  page.once("dialog", (d) => { asked = d.message(); d.dismiss(); });
  await page.getByRole("button", { name: "Erase this end user…" }).click();
  await page.waitForFunction(() => true);
  assert.ok(asked.includes("“cy”"), asked);
  assert.ok((await api(operatorKey, "/app/conversations?user=cy&limit=1")).data.length > 0, "dismissed: nothing erased");
  page.once("dialog", (d) => d.accept());
  await page.getByRole("button", { name: "Erase this end user…" }).click();
  await page.getByText(/^Erasure .* started/).waitFor();
  assert.deepEqual((await api(operatorKey, "/app/conversations?user=cy")).data, []);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});


// A 1x1 PNG.
const PIXEL = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", "base64");

test("a long thread pages back; its image shows as a thumbnail and its answer speaks", async () => {
  const form = new FormData();
  form.append("user", "dee");
  form.append("file", new Blob([PIXEL], { type: "image/png" }), "pixel.png");
  const uploaded = await (await fetch(`${base}/v1/files/upload`, { method: "POST", headers: { Authorization: `Bearer ${appKey}` }, body: form })).json();
  const files = [{ type: "image", transfer_method: "local_file", upload_file_id: uploaded.id }];
  const first = await api(appKey, "/chat-messages", { method: "POST", body: { query: "what is in the picture", user: "dee", inputs: {}, files, response_mode: "blocking" } });
  const conversationId = first.conversation_id;
  for (let i = 1; i < 105; i += 1) {
    await api(appKey, "/chat-messages", { method: "POST", body: { query: `follow-up ${i}`, user: "dee", inputs: {}, conversation_id: conversationId, response_mode: "blocking" } });
  }
  const page = await open();
  await signIn(page);
  await page.waitForSelector("#view h1");
  await page.goto(`${base}/console/#/conversation/${conversationId}`);
  await page.waitForSelector("ol.thread li");
  assert.equal(await page.locator("ol.thread > li").count(), 100, "the newest 100 first");
  await page.getByRole("button", { name: "Show older messages" }).click();
  await page.getByText("5 older messages shown.").waitFor();
  assert.equal(await page.locator("ol.thread > li").count(), 105);
  assert.equal(await page.getByRole("button", { name: "Show older messages" }).count(), 0, "no more to show");
  const queries = await page.locator("ol.thread > li > .q").allTextContents();
  assert.equal(queries[0], "what is in the picture");
  assert.equal(new Set(queries).size, 105, "each message once");

  // The image, fetched with the operator key through the operator preview route.
  const thumb = page.locator("ol.thread > li").first().locator("img.thumb");
  assert.equal(await thumb.getAttribute("alt"), "pixel.png");
  await page.waitForFunction(() => document.querySelector("img.thumb")?.naturalWidth === 1);
  assert.match(await thumb.getAttribute("src"), /^blob:/);

  // The answer spoken: the player loads audio the browser can decode (the page's policy lets
  // it read no blob but play it), as the API speaks it.
  const firstAnswer = page.locator("ol.thread > li").first();
  await firstAnswer.getByRole("button", { name: "Listen" }).click();
  await firstAnswer.locator("audio").waitFor();
  await page.waitForFunction(() => document.querySelector("audio").readyState >= 1);
  const seconds = await page.evaluate(() => document.querySelector("audio").duration);
  assert.ok(seconds > 0.3 && seconds < 30, `${seconds} s of speech`);
  const spoken = await fetch(`${base}/v1/app/conversations/${conversationId}/messages/${first.message_id}/audio`, { headers: { Authorization: `Bearer ${operatorKey}` } });
  assert.equal(spoken.status, 200);
  assert.match(spoken.headers.get("content-type"), /^audio\//);
  assert.ok((await spoken.arrayBuffer()).byteLength > 1000);
  await page.screenshot({ path: join(shots, "thread-media-1280.png"), fullPage: false });
  await accessible(page, "thread with media");

  const log = await api(operatorKey, "/app/audit-log?limit=100");
  const targets = (action) => log.data.filter((e) => e.action === action).map((e) => e.target);
  assert.ok(targets("file.preview").includes(uploaded.id), "the preview is audited");
  assert.ok(targets("message.audio").includes(first.message_id), "the audio is audited");
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
