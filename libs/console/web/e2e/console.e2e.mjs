// The console end to end in a real Chromium (Debian's, driven by playwright-core), against a
// `goosectl dev` the Rust test (services/goosectl/tests/it/console.rs) set up with the quick
// start's services, evidence and package. What a person does, through the pages only:
//   olga (operator + approver) uploads evidence, starts the package's promotion, and is refused
//   approving her own request with the API's words; ada (approver; through SSO when a provider
//   is given) approves it; the pipeline is followed live to its end with service-c's coverage
//   failure shown; audrey (auditor) sees no action buttons, exports the audit record, downloads a
//   blob, and verifies a fact in the browser — and a lying server (tampered proof, another
//   event's proof, a checkpoint under another key) is caught.
// Every page is checked with axe-core (WCAG 2 A/AA), no request leaves the origin (and the
// provider), and no script error or CSP violation happens. Screenshots go to GOOSE_SCREENSHOTS.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const URL_ = env("GOOSE_URL");
const KEYS = JSON.parse(env("GOOSE_KEYS"));
const PACKAGE = env("GOOSE_PACKAGE");
const LOG_VKEY = env("GOOSE_LOG_VKEY");
const UPLOAD = env("GOOSE_UPLOAD_FILE");
const SSO = process.env.GOOSE_SSO ? JSON.parse(process.env.GOOSE_SSO) : null;
const SHOTS = process.env.GOOSE_SCREENSHOTS || null;
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const step = (s) => console.log(`· ${s}`);
const allowed = new Set([new URL(URL_).origin, ...(SSO ? [new URL(SSO.issuer).origin] : [])]);
const external = [];
const errors = [];

const browser = await chromium.launch({
  executablePath: env("GOOSE_CHROMIUM"),
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true });
context.setDefaultTimeout(20_000);
const page = await context.newPage();
page.on("request", (r) => {
  const u = new URL(r.url());
  if (!["data:", "blob:"].includes(u.protocol) && !allowed.has(u.origin)) external.push(r.url());
});
page.on("pageerror", (e) => errors.push(`page error: ${e}`));
page.on("console", (m) => {
  // A refused API call (403/422) is logged by Chromium as a failed resource: expected here.
  if (m.type() === "error" && !/Failed to load resource/.test(m.text())) errors.push(`console: ${m.text()}`);
});

async function axe(name) {
  const result = await page.evaluate(
    `${axeSource}; axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] })`,
  );
  const bad = result.violations.filter((v) => ["serious", "critical"].includes(v.impact));
  assert.deepEqual(
    bad.map(
      (v) =>
        `${v.id}: ${v.help} (${v.nodes
          .map((n) => n.target.join(" "))
          .slice(0, 3)
          .join("; ")})`,
    ),
    [],
    `accessibility violations on ${name}`,
  );
}

async function shot(name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

async function signIn(user, { keyboard = false } = {}) {
  await page.goto(`${URL_}/`);
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  if (keyboard) {
    // Keyboard only, from a fresh page: Tab to the first field, type, Tab, type, Enter.
    await page.reload();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.keyboard.press("Tab");
    if (SSO) await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("name")), "user");
    await page.keyboard.type(user);
    await page.keyboard.press("Tab");
    await page.keyboard.type(KEYS[user]);
    await page.keyboard.press("Enter");
  } else {
    await page.getByLabel("User name").fill(user);
    await page.getByLabel("API key", { exact: true }).fill(KEYS[user]);
    await page.getByRole("button", { name: "Sign in with API key" }).click();
  }
  await page.getByTestId("signed-in-as").filter({ hasText: user }).waitFor();
}

// The token lives in the page's memory only: nothing a script (or another tab) can read holds
// a JWT, and nothing of the sign-in is left in storage.
async function noTokenStored(who) {
  const stored = await page.evaluate(() => ({
    local: Object.values(localStorage),
    session: Object.values(sessionStorage),
    cookie: document.cookie,
  }));
  assert.deepEqual(stored.local, [], `${who}: localStorage`);
  assert.deepEqual(stored.session, [], `${who}: sessionStorage`);
  assert.ok(!/eyJ/.test(stored.cookie), `${who}: a token in a readable cookie: ${stored.cookie}`);
}

async function signOut() {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
}

async function signInWithSso(login) {
  await page.goto(`${URL_}/`);
  await page.getByRole("button", { name: `Sign in with ${new URL(SSO.issuer).host}` }).click();
  // The provider's own pages (served by oidc-provider in the test).
  await page.getByLabel("Login").fill(login);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByTestId("signed-in-as").filter({ hasText: login }).waitFor();
  assert.ok(!page.url().includes("code="), `the code is gone from the address bar: ${page.url()}`);
}

let promotion;
let eventId;
try {
  // ---- sign-in page
  await page.goto(`${URL_}/`);
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  await axe("sign-in");
  await shot("sign-in");
  step("sign-in page: accessible");

  // A forged return from the provider (a code this tab never asked for) signs no one in.
  await page.goto(`${URL_}/?code=forged-code&state=forged-state`);
  const forged = await page.getByRole("alert").textContent();
  assert.match(forged, /no sign-in was started from this tab/, forged);
  assert.ok(!page.url().includes("code="), "the forged code is removed from the address bar");
  step(`a forged provider callback is refused: ${forged}`);

  await page.getByLabel("User name").fill("olga");
  await page.getByLabel("API key", { exact: true }).fill("gk_not_a_real_key");
  await page.getByRole("button", { name: "Sign in with API key" }).click();
  const refused = await page.getByRole("alert").textContent();
  assert.match(refused, /401/, refused);
  step(`a wrong key is refused as the API says: ${refused}`);

  // ---- olga, operator and approver
  await signIn("olga");
  await page.getByRole("table", { name: "Service compliance status" }).waitFor();
  for (const s of ["service-a", "service-b", "service-c"]) {
    await page.locator(`tr[data-service="${s}"]`).waitFor();
    await page.locator(`svg.graph [data-node="${s}"]`).waitFor();
  }
  const edges = await page.locator("svg.graph line.edge").count();
  assert.ok(edges >= 2, `the graph draws the dependencies (${edges} edges)`);
  await axe("compliance");
  step("compliance grid and dependency graph drawn");

  await page.getByRole("link", { name: "service-a" }).first().click();
  await page.getByRole("heading", { name: "service-a" }).waitFor();
  await page.getByRole("heading", { name: "Versions" }).waitFor();
  await axe("service");
  step("service page");

  await page.goto(`${URL_}/#/evidence/service-a/1.0.1`);
  await page.getByLabel("File").setInputFiles(UPLOAD);
  await page.getByRole("button", { name: "Upload for service-a@1.0.1" }).click();
  await page.getByText(/Recorded as evidence/).waitFor();
  await page.locator('tr[data-kind="junit"]').filter({ hasText: "passed" }).waitFor();
  await axe("evidence");
  step("evidence uploaded through the page and summarised");

  await page.getByRole("link", { name: "Promotions" }).click();
  await page.getByRole("link", { name: "Start a promotion" }).click();
  await page.getByRole("combobox", { name: "Package" }).selectOption(PACKAGE);
  await page.getByLabel("Reason").fill("release 1.0.0 from the console");
  await axe("start promotion");
  await shot("start-promotion");
  await page.getByRole("button", { name: "Request promotion" }).click();
  await page.waitForURL(/#\/promotions\/[0-9a-f-]{36}$/);
  promotion = page.url().split("/").pop();
  await page.getByTestId("promotion-status").waitFor();
  step(`promotion ${promotion} started from the page`);

  await page.getByRole("link", { name: "Approvals" }).click();
  const mine = page.locator("article.card").filter({ hasText: promotion });
  await mine.getByRole("button", { name: "Approve" }).click();
  const sod = await mine.getByRole("alert").textContent();
  assert.match(sod, /segregation of duties: olga requested this and cannot approve or reject it/, sod);
  step(`her own approval is refused as the API words it: ${sod}`);
  await signOut();

  // ---- ada, approver
  if (SSO) await signInWithSso("ada");
  else await signIn("ada");
  await noTokenStored("ada");
  assert.equal(await page.getByRole("link", { name: "Start a promotion" }).count(), 0);
  await page.getByRole("link", { name: "Approvals" }).click();
  const card = page.locator("article.card").filter({ hasText: promotion });
  await card.getByText("olga").first().waitFor();
  await axe("approvals");
  await shot("approvals");
  await card.getByLabel("Comment").fill("reviewed in the console");
  await card.getByRole("button", { name: "Approve" }).click();
  await page
    .getByTestId("decision")
    .filter({ hasText: /Approved promotion:.* \(1 of 1 approvals, now approved\)/ })
    .waitFor();
  step("ada approved");

  await page.goto(`${URL_}/#/promotions/${promotion}`);
  await page
    .getByTestId("promotion-status")
    .filter({ hasText: "Finished: partially succeeded" })
    .waitFor({ timeout: 90_000 });
  const c = page.locator('li[data-target="service-c"]');
  assert.equal(await c.getAttribute("data-status"), "failed");
  await c.locator('tr[data-check="test_coverage_threshold"][data-outcome="fail"]').waitFor();
  const why = await c.getByTestId("target-reason").textContent();
  assert.match(why, /test_coverage_threshold: below threshold: line coverage 40\.00%/, why);
  for (const s of ["service-a", "service-b"]) {
    assert.equal(await page.locator(`li[data-target="${s}"]`).getAttribute("data-status"), "promoted");
  }
  assert.equal(await page.getByRole("button", { name: "Export audit record" }).count(), 0, "export needs audit.read");
  await axe("promotion");
  await shot("promotion");
  step(`the pipeline finished live: ${why}`);
  await signOut();

  // ---- audrey, auditor: reads everything, acts on nothing
  await signIn("audrey", { keyboard: true });
  await noTokenStored("audrey");
  step("audrey signed in with the keyboard only; no token in storage or cookies");
  const actions = ["Start a promotion", "Approve", "Reject", "Request promotion"];
  async function noActions(where) {
    for (const name of actions) {
      assert.equal(await page.getByRole("button", { name }).count(), 0, `${name} button on ${where}`);
      assert.equal(await page.getByRole("link", { name }).count(), 0, `${name} link on ${where}`);
    }
    assert.equal(await page.getByRole("form", { name: "Upload evidence" }).count(), 0, `upload on ${where}`);
  }
  await page.getByRole("link", { name: "Promotions" }).click();
  await page.getByRole("table", { name: "Promotions" }).waitFor();
  await noActions("promotions");
  await page.getByRole("link", { name: "Approvals" }).click();
  await page.locator("article.card").filter({ hasText: promotion }).waitFor();
  await noActions("approvals");
  // The buttons are absent, and the API refuses anyway.
  const pendingOrDecided = await (
    await page.request.get(`${URL_}/v1/approvals`, {
      headers: { authorization: `Bearer ${await token("audrey")}` },
    })
  ).json();
  const forced = await page.request.post(`${URL_}/v1/approvals/${pendingOrDecided[0].id}/grant`, {
    headers: { authorization: `Bearer ${await token("audrey")}` },
    data: { comment: "from outside the console" },
  });
  assert.equal(forced.status(), 403, "an auditor's grant through the API is refused");
  await page.goto(`${URL_}/#/evidence/service-a/1.0.0`);
  await page.locator('tr[data-kind="junit"]').waitFor();
  await noActions("evidence");
  await shot("evidence");
  const blob = page.waitForEvent("download");
  await page.locator('tr[data-kind="junit"]').getByRole("button").first().click();
  const junit = readFileSync(await (await blob).path(), "utf8");
  assert.match(junit, /<testsuite/, "the blob is the JUnit file");
  step("no action buttons for the auditor; a blob downloaded");

  await page.goto(`${URL_}/#/promotions/${promotion}`);
  await page.getByTestId("promotion-status").filter({ hasText: "Finished" }).waitFor();
  await noActions("promotion");
  await page.getByText("Facts this decision read").first().waitFor();
  const exported = page.waitForEvent("download");
  await page.getByRole("button", { name: "Export audit record" }).click();
  const record = readFileSync(await (await exported).path(), "utf8");
  assert.ok(record.includes(promotion), "the export is this promotion's");
  step("audit record exported");

  // "verify this fact": the promotion's last step, checked in the browser.
  await page
    .getByRole("link", { name: /^Verify step/ })
    .last()
    .click();
  await page.getByRole("heading", { name: "Evidence chain" }).waitFor();
  eventId = page.url().split("/").pop();
  await page.getByLabel("Log public key").fill(LOG_VKEY);
  await page.getByTestId("checkpoint-signature").filter({ hasText: "✓ signed by the log key you pinned" }).waitFor();
  await page.getByRole("button", { name: "Verify in this browser" }).click();
  const ok = await page.getByTestId("proof-result").textContent();
  assert.match(ok, /✓ Verified: event .* is entry \d+ of the log/, ok);
  assert.match(ok, /PromotionCompleted/, ok);
  await axe("chain");
  await shot("chain");
  step(`fact ${eventId} verified in the browser`);

  async function verifyExpecting(what, pattern) {
    await page.getByRole("button", { name: "Verify in this browser" }).click();
    const text = await page
      .getByTestId("proof-result")
      .filter({ hasText: /Not verified|Verified/ })
      .textContent();
    assert.match(text, pattern, `${what}: ${text}`);
    step(`${what}: ${text.trim().split("\n")[0]}`);
  }

  // A key of the same name that is not the log's.
  const attacker = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", attacker.publicKey));
  const origin = LOG_VKEY.split("+")[0];
  const keyBytes = new Uint8Array([1, ...raw]);
  const hash = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new Uint8Array([...new TextEncoder().encode(origin), 0x0a, ...keyBytes])),
  ).slice(0, 4);
  const fakeVkey = `${origin}+${Buffer.from(hash).toString("hex")}+${Buffer.from(keyBytes).toString("base64")}`;
  await page.getByLabel("Log public key").fill(fakeVkey);
  await page.getByTestId("checkpoint-signature").filter({ hasText: "✗" }).waitFor();
  await verifyExpecting("caught: a key that is not the log's", /not signed by .* with this key/);
  await page.getByLabel("Log public key").fill(LOG_VKEY);

  // The server lies: one hash of the inclusion path changed.
  await page.route("**/v1/chain/proofs/inclusion/**", async (route) => {
    const res = await route.fetch();
    const lines = (await res.text()).split("\n");
    const i = lines.findIndex((l) => /^index /.test(l)) + 1;
    const h = Buffer.from(lines[i], "base64");
    h[0] ^= 1;
    lines[i] = h.toString("base64");
    await route.fulfill({ response: res, body: lines.join("\n") });
  });
  await verifyExpecting("caught: a tampered inclusion path", /does not lead to the checkpoint's root/);
  await page.unroute("**/v1/chain/proofs/inclusion/**");

  // The server answers with another event's (valid) proof.
  const steps = await (
    await page.request.get(`${URL_}/v1/promotions/${promotion}/steps`, {
      headers: { authorization: `Bearer ${await token("audrey")}` },
    })
  ).json();
  const other = steps.events[0].event_id;
  assert.notEqual(other, eventId);
  await page.route("**/v1/chain/proofs/inclusion/**", async (route) => {
    const u = new URL(route.request().url());
    u.pathname = u.pathname.replace(eventId, other);
    await route.continue({ url: u.toString() });
  });
  await verifyExpecting("caught: another event's proof", /the proof is for event/);
  await page.unroute("**/v1/chain/proofs/inclusion/**");
  await verifyExpecting("the genuine proof again", /✓ Verified/);

  async function token(user) {
    const res = await page.request.post(`${URL_}/v1/auth/token`, { data: { user, api_key: KEYS[user] } });
    return (await res.json()).access_token;
  }

  // ---- the registries' pages: what the services hold, or an empty state that says so
  for (const [link, heading, expect] of [
    ["Models", "Models", ".empty"],
    ["Use cases", "Use cases", ".empty"],
    ["Incidents", "Incidents", 'tr:has-text("service-c coverage below the gate")'],
    ["SLAs", "Service level objectives", 'tr[data-slo="service-a-availability"]'],
  ]) {
    await page.getByRole("link", { name: link, exact: true }).click();
    await page.getByRole("heading", { name: heading }).waitFor();
    await page.locator(expect).first().waitFor();
    assert.equal(await page.getByRole("alert").count(), 0, `${link} shows an error`);
    await axe(link);
  }
  step("models, use cases, incidents and SLAs pages");

  await page.getByRole("link", { name: "Compliance" }).click();
  await page.locator('tr[data-service="service-a"] td[data-state="compliant"]').filter({ hasText: "1.0.0" }).waitFor();
  await shot("compliance");
  step("service-a shows as compliant in the grid");
  // The dark scheme keeps its contrast too.
  await page.emulateMedia({ colorScheme: "dark" });
  await axe("compliance (dark)");
  await page.getByRole("link", { name: "Promotions" }).click();
  await page.getByRole("table", { name: "Promotions" }).waitFor();
  await axe("promotions (dark)");
  await page.emulateMedia({ colorScheme: "light" });
  await page.getByRole("link", { name: "Compliance" }).click();
  step("accessible in the dark scheme");

  // An administrator deactivates audrey while she is signed in: the page's next call is refused
  // and she is back at the sign-in page, told why.
  const admin = await page.request.post(`${URL_}/v1/users/audrey/deactivate`, {
    headers: { authorization: `Bearer ${env("GOOSE_ADMIN_TOKEN")}` },
  });
  assert.ok(admin.ok(), `deactivate: ${admin.status()}`);
  await page.getByText("Your session ended").waitFor();
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  step("a deactivated user's open console signs her out");

  // One service version, with a version the API refuses: its words are shown, nothing is started.
  await signIn("olga");
  await page.goto(`${URL_}/#/promotions/new`);
  await page.getByRole("radio", { name: "One service version" }).check();
  await page.getByRole("combobox", { name: "Service" }).selectOption("service-b");
  await page.getByLabel("Version", { exact: true }).fill("not a version!");
  await page.getByLabel("Reason").fill("hotfix");
  await page.getByRole("button", { name: "Request promotion" }).click();
  const invalid = await page.getByRole("alert").textContent();
  assert.match(invalid, /version/i, invalid);
  assert.match(page.url(), /#\/promotions\/new$/);
  await page.getByLabel("Version", { exact: true }).fill("1.0.1");
  await page.getByRole("button", { name: "Request promotion" }).click();
  await page.waitForURL(/#\/promotions\/[0-9a-f-]{36}$/);
  await page.locator('li[data-target="service-b"]').waitFor();
  step(`a single service version: a bad version refused (${invalid.trim()}), 1.0.1 started`);
} catch (e) {
  // What the page showed when a step failed, to read in the test's output.
  console.error(
    `failed at ${page.url()}; the page said:\n${await page
      .locator("body")
      .innerText()
      .catch(() => "?")}`,
  );
  if (errors.length) console.error(`script errors: ${errors.join("\n")}`);
  await page
    .screenshot({ path: process.env.GOOSE_FAILURE_SCREENSHOT ?? "/tmp/goose-console-failure.png" })
    .catch(() => {});
  await browser.close();
  throw e;
}
await browser.close();
assert.deepEqual(external, [], "requests left the origin");
assert.deepEqual(errors, [], "script errors or CSP violations");
writeFileSync(process.env.GOOSE_RESULT ?? "/dev/null", JSON.stringify({ promotion, eventId }));
console.log("console e2e: all steps passed");
