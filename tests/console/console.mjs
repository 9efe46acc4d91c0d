// End-to-end test of the operator console in headless Chromium (playwright-core), against a
// real proofmill server that tests/server/console.rs starts. Environment:
//   PROOFMILL_URL            the server
//   PROOFMILL_KEYS           JSON {"alice": key, "bob": key, "admin": key}
//   PROOFMILL_PLAYWRIGHT_DIR where scripts/browser-setup.sh installed playwright-core
//   PROOFMILL_CHROMIUM       the Chromium binary
//   PROOFMILL_CIRCUIT        the circuit to prove from the page
//   PROOFMILL_SCREENSHOT     optional: where to write a screenshot of the overview
// Exits 0 when every step passed; prints what failed otherwise.
import { createRequire } from "node:module";
import { strict as assert } from "node:assert";

const require = createRequire(process.env.PROOFMILL_PLAYWRIGHT_DIR + "/package.json");
const { chromium } = require("playwright-core");

const base = process.env.PROOFMILL_URL;
const keys = JSON.parse(process.env.PROOFMILL_KEYS);
const circuit = process.env.PROOFMILL_CIRCUIT;
const origin = new URL(base).origin;
const PROOF_TIMEOUT = 15 * 60 * 1000;

const foreign = [];
const pageErrors = [];
function step(name) {
  console.log(`console.mjs: ${name}`);
}

async function apiCall(key, path, options = {}) {
  const response = await fetch(base + path, {
    ...options,
    headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" },
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

async function signIn(browser, key) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("request", (request) => {
    const url = request.url();
    if (!url.startsWith(origin + "/") && !url.startsWith("data:") && !url.startsWith("blob:")) foreign.push(url);
  });
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.goto(base + "/");
  await page.fill("#key-input", key);
  await page.click("#key-form button[type=submit]");
  return { context, page };
}

const browser = await chromium.launch({ executablePath: process.env.PROOFMILL_CHROMIUM, args: ["--no-sandbox"] });
try {
  // --- alice: the overview, then a batch proved and verified from the page ----------------
  step("alice signs in and sees the devices");
  const alice = await signIn(browser, keys.alice);
  await alice.page.waitForSelector("#who:has-text('tenant alice')");
  await alice.page.waitForSelector("#devices .tile[data-device]");
  const tiles = await alice.page.locator("#devices .tile").count();
  assert.ok(tiles >= 1, "at least one device tile");
  await alice.page.waitForSelector("#devices .tile .spark");

  step("alice proves a generated example batch and watches it live");
  await alice.page.click("nav a[data-view=try]");
  await alice.page.waitForSelector(`#try-circuit option[value="${circuit}"]`, { state: "attached" });
  await alice.page.selectOption("#try-circuit", circuit);
  await alice.page.click("#try-example");
  // (Polled from here: the page's policy forbids the string evaluation waitForFunction uses.)
  for (let i = 0; (await alice.page.inputValue("#try-input")).length < 100; i++) {
    assert.ok(i < 100, "an example appeared in the text area");
    await alice.page.waitForTimeout(100);
  }
  await alice.page.click("#try-submit");
  await alice.page.waitForSelector("#try-status[data-job]");
  const tryJob = await alice.page.getAttribute("#try-status", "data-job");
  await alice.page.waitForSelector("#try-status[data-status=succeeded]", { timeout: PROOF_TIMEOUT });
  const events = await alice.page.locator("#try-events li").allTextContents();
  assert.ok(events.some((e) => e.includes("running")), "the event stream showed the job running: " + events.join(" | "));
  assert.ok(events.at(-1).includes("succeeded"), "the last event is the success");
  step("alice verifies the proof from the page");
  await alice.page.click("#try-verify");
  await alice.page.waitForSelector("#try-verdict.ok", { timeout: 120000 });
  assert.match(await alice.page.textContent("#try-verdict"), /^valid/);

  // The job page: its attempt history and a verification of the downloaded proof.
  await alice.page.goto(`${base}/#/jobs/${tryJob}`);
  await alice.page.waitForSelector("#job-fields dd[data-field=status]:has-text('succeeded')");
  assert.equal(await alice.page.locator("#job-history tbody tr").count(), 1, "one attempt");
  const download = alice.page.waitForEvent("download");
  await alice.page.click("#job-download");
  const proofFile = await download;
  assert.match(proofFile.suggestedFilename(), /\.proof\.json$/);

  // --- a queued job cancelled from the jobs page -------------------------------------------
  step("alice cancels a queued job from the jobs page");
  const example = await apiCall(keys.alice, "/v1/examples/" + circuit + "?seed=7");
  const submitted = [];
  for (let i = 0; i < 3; i++) {
    submitted.push((await apiCall(keys.alice, "/v1/jobs", { method: "POST", body: JSON.stringify({ type: "prove", circuit, input: example }) })).id);
  }
  // The device holds two jobs at most (one proving, one preparing): the third waits.
  const queuedJob = submitted[2];
  await alice.page.goto(`${base}/#/jobs`);
  const row = alice.page.locator(`#jobs tr[data-job="${queuedJob}"]`);
  await row.waitFor();
  const statusBefore = await row.getAttribute("data-status");
  await row.locator("button[data-cancel]").click();
  await alice.page.waitForSelector(`#jobs tr[data-job="${queuedJob}"][data-status=cancelled]`, { timeout: PROOF_TIMEOUT });
  console.log(`console.mjs: the cancelled job was ${statusBefore} when cancelled`);
  assert.equal(statusBefore, "queued", "the third job was still queued");

  // --- bob sees only bob's jobs --------------------------------------------------------------
  step("bob's page shows none of alice's jobs");
  const bobJob = (await apiCall(keys.bob, "/v1/jobs", { method: "POST", body: JSON.stringify({ type: "prove", circuit, input: example }) })).id;
  await apiCall(keys.bob, "/v1/jobs/" + bobJob, { method: "DELETE" });
  const bob = await signIn(browser, keys.bob);
  await bob.page.waitForSelector("#who:has-text('tenant bob')");
  await bob.page.click("nav a[data-view=jobs]");
  await bob.page.waitForSelector(`#jobs tr[data-job="${bobJob}"]`);
  const bobRows = await bob.page.locator("#jobs tbody tr").evaluateAll((rows) => rows.map((r) => [r.dataset.job, r.children[1].textContent]));
  assert.ok(bobRows.every(([, tenant]) => tenant === "bob"), "bob's rows are bob's: " + JSON.stringify(bobRows));
  for (const id of [tryJob, ...submitted]) assert.ok(!bobRows.some(([job]) => job === id), `alice's ${id} is not on bob's page`);
  assert.ok(await bob.page.locator("#jobs-tenant-label").isHidden(), "bob cannot pick another tenant");
  await bob.page.goto(`${base}/#/jobs/${tryJob}`);
  await bob.page.waitForSelector("#banner.error:not([hidden])");
  assert.match(await bob.page.textContent("#banner"), /no job/i);
  await bob.page.goto(`${base}/#/`);
  await bob.page.waitForSelector("#queue tbody tr");
  const bobQueue = await bob.page.locator("#queue tbody tr td:first-child").allTextContents();
  assert.ok(!bobQueue.includes("alice"), "bob's queue table shows no alice: " + bobQueue);
  assert.ok(await bob.page.locator("#usage-block").isHidden(), "no usage table for a tenant key");

  // --- the admin sees every tenant ------------------------------------------------------------
  step("the admin sees every tenant's jobs and the usage table");
  const admin = await signIn(browser, keys.admin);
  await admin.page.waitForSelector("#who:has-text('(admin)')");
  await admin.page.waitForSelector("#usage-block:not([hidden]) #usage tbody tr");
  const usageTenants = await admin.page.locator("#usage tbody tr td:first-child").allTextContents();
  assert.ok(usageTenants.includes("alice"), "usage lists alice: " + usageTenants);
  await admin.page.click("nav a[data-view=jobs]");
  await admin.page.selectOption("#jobs-tenant", "*");
  await admin.page.waitForSelector(`#jobs tr[data-job="${bobJob}"]`);
  await admin.page.waitForSelector(`#jobs tr[data-job="${tryJob}"]`);

  // Leave the device idle for the next test: cancel what is still outstanding.
  for (const id of submitted.slice(0, 2)) await apiCall(keys.alice, "/v1/jobs/" + id, { method: "DELETE" }).catch(() => {});

  if (process.env.PROOFMILL_SCREENSHOT) {
    step("screenshot of the overview");
    await admin.page.click("nav a[data-view=overview]");
    await admin.page.waitForSelector("#throughput-chart svg rect");
    await admin.page.waitForSelector("#device-time-chart svg rect");
    await admin.page.waitForTimeout(2500);
    await admin.page.screenshot({ path: process.env.PROOFMILL_SCREENSHOT, fullPage: true });
  }

  // The page can be read on a phone: nothing wider than the screen.
  step("the overview fits a phone's screen");
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const small = await phone.newPage();
  small.on("request", (request) => { const url = request.url(); if (!url.startsWith(origin + "/") && !url.startsWith("data:")) foreign.push(url); });
  await small.goto(base + "/");
  await small.fill("#key-input", keys.alice);
  await small.click("#key-form button[type=submit]");
  await small.waitForSelector("#devices .tile[data-device]");
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page is ${overflow}px wider than a phone's screen`);

  assert.deepEqual(foreign, [], "the console requested nothing from another host");
  assert.deepEqual(pageErrors, [], "no script errors on the page");
  step("all passed");
} finally {
  await browser.close();
}
