// The operator dashboard in a real browser (headless Chromium, driven by
// playwright-core over the Debian binary). Setup goes through the API; every
// check is what a person sees and does on the pages. Screenshots of each
// page land in the output folder.
//
// Usage: node tests/browser/admin.mjs BASE_URL ADMIN_EMAIL ADMIN_PASSWORD OUT_DIR
import { chromium } from "playwright-core";
import { join } from "node:path";
import assert from "node:assert/strict";

const [base, adminEmail, adminPassword, out] = process.argv.slice(2);
const password = "browser-test-password";

async function api(method, path, body, token) {
  const response = await fetch(base + path, {
    method,
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function signUp(email, roles, adminToken) {
  const user = await api("POST", "/api/v1/auth/signup", { email, password });
  if (roles) await api("PUT", `/api/v1/users/${user.id}/roles`, { roles }, adminToken);
  return user;
}

const day = 24 * 3600 * 1000;
const iso = (offset) => new Date(Date.now() + offset).toISOString();

// Setup through the API: an event with a reward that needs approval, and a
// user who asked for it.
const admin = await api("POST", "/api/v1/auth/login", { email: adminEmail, password: adminPassword });
const token = admin.access_token;
const event = await api("POST", "/api/v1/events",
  { name: "Browser week", status: "ACTIVE", starts_at: iso(-day), ends_at: iso(day) }, token);
const reward = await api("POST", "/api/v1/rewards", { name: "100 points", type: "POINT", points: 100 }, token);
const offer = await api("POST", `/api/v1/events/${event.id}/rewards`,
  { reward_id: reward.id, condition: null, auto_resolve: false }, token);
await signUp("guest@browser.test", null, token);
const guest = await api("POST", "/api/v1/auth/login", { email: "guest@browser.test", password });
const request = await api("POST", `/api/v1/events/${event.id}/rewards/${offer.id}/requests`, {}, guest.access_token);
assert.equal(request.status, "PENDING");
await signUp("auditor@browser.test", ["AUDITOR"], token);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // Headless, and a fresh profile in a new temporary folder: Playwright
  // gives each launch both.
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const shot = (page, name) => page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
const otherHosts = [];

async function signedIn(email, pass) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("request", (r) => {
    const url = new URL(r.url());
    if (url.origin !== new URL(base).origin && url.protocol !== "data:") otherHosts.push(r.url());
  });
  await page.goto(base + "/admin/login");
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", pass);
  await Promise.all([page.waitForLoadState("load"), page.click("#sign-in")]);
  return { context, page };
}

let failures = 0;
async function check(name, body) {
  try {
    await body();
    console.log(`ok   ${name}`);
  } catch (e) {
    failures += 1;
    console.log(`FAIL ${name}\n     ${e.stack || e}`);
  }
}

await check("staff sign in and see what needs attention", async () => {
  const { page, context } = await signedIn(adminEmail, adminPassword);
  await page.waitForSelector("#pending");
  assert.equal((await page.textContent("#pending")).trim(), "1");
  await shot(page, "overview");
  await context.close();
});

await check("a user's request is in the queue, and approving it changes its status", async () => {
  const { page, context } = await signedIn(adminEmail, adminPassword);
  await page.goto(base + "/admin/requests");
  const row = page.locator(`td.status[data-id="${request.id}"]`);
  assert.equal((await row.textContent()).trim(), "PENDING");
  await shot(page, "requests");
  await page.check(`input[name=id][value="${request.id}"]`);
  await page.fill("input[name=reason]", "looks right");
  // The pages are boosted by htmx: the post is a fetch; wait for its answer.
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/admin/requests/decide")),
    page.click("#approve"),
  ]);
  await page.goto(base + "/admin/requests?status=APPROVED");
  await page.waitForSelector(`td.status[data-id="${request.id}"]`);
  assert.match(await page.textContent(`td.status[data-id="${request.id}"]`), /APPROVED/);
  const seen = await api("GET", "/api/v1/requests/mine", undefined, guest.access_token);
  assert.equal(seen.items[0].status, "APPROVED", "the API agrees");
  await context.close();
});

await check("the users and dead-letter pages render for an ADMIN", async () => {
  const { page, context } = await signedIn(adminEmail, adminPassword);
  await page.goto(base + "/admin/users");
  assert.ok(await page.isVisible("text=the last ADMIN"));
  await shot(page, "users");
  await page.goto(base + "/admin/dead-letters");
  assert.ok(await page.isVisible("h1:has-text('Dead letters')"));
  await shot(page, "dead-letters");
  await context.close();
});

await check("a campaign's remaining refreshes by itself during a drop", async () => {
  const campaign = await api("POST", "/api/v1/coupon-campaigns", {
    name: "Browser drop", discount: { kind: "PERCENT", value: 10 }, total_quantity: 50,
    per_user_limit: 10, issue_starts_at: iso(-3600 * 1000), issue_ends_at: iso(3600 * 1000),
    valid_until: iso(day),
  }, token);
  const { page, context } = await signedIn(adminEmail, adminPassword);
  await page.goto(base + "/admin/campaigns");
  const remaining = page.locator(`tr.campaign[data-id="${campaign.id}"] td.remaining .figure-sm`);
  assert.equal((await remaining.textContent()).trim(), "50");
  for (let i = 0; i < 4; i += 1) {
    await api("POST", `/api/v1/coupon-campaigns/${campaign.id}/issue`, {}, guest.access_token);
  }
  // No reload: the table polls every 2 s and swaps itself.
  await page.waitForFunction(
    (id) => document.querySelector(`tr.campaign[data-id="${id}"] td.remaining .figure-sm`)?.textContent.trim() === "46",
    campaign.id, { timeout: 10000 });
  await page.waitForFunction(
    (id) => /^\d+$/.test(document.querySelector(`tr.campaign[data-id="${id}"] td.rate`)?.textContent.trim()),
    campaign.id, { timeout: 10000 });
  await shot(page, "campaigns");
  await context.close();
});

await check("an AUDITOR reads the queue without action buttons", async () => {
  const { page, context } = await signedIn("auditor@browser.test", password);
  await page.goto(base + "/admin/requests?status=");
  assert.ok(await page.isVisible("text=read-only"));
  assert.equal(await page.locator("#approve").count(), 0);
  assert.equal(await page.locator("input[name=id]").count(), 0);
  await shot(page, "requests-auditor");
  await context.close();
});

await check("a USER is refused", async () => {
  const { page, context } = await signedIn("guest@browser.test", password);
  assert.ok(await page.isVisible("text=Not allowed"), await page.content());
  await shot(page, "refused");
  await context.close();
});

await check("a form post without the CSRF token is refused", async () => {
  const { page, context } = await signedIn(adminEmail, adminPassword);
  const status = await page.evaluate(async (id) => {
    const body = new URLSearchParams({ decision: "REJECTED", id });
    const r = await fetch("/admin/requests/decide", { method: "POST", body });
    return r.status;
  }, request.id);
  assert.equal(status, 403);
  await context.close();
});

await check("logout ends the session", async () => {
  const { page, context } = await signedIn(adminEmail, adminPassword);
  // The logout answer redirects to the login page; navigating again before
  // that redirect lands aborts one of the two (net::ERR_ABORTED).
  await Promise.all([page.waitForURL(/\/admin\/login$/), page.click("#logout")]);
  await page.goto(base + "/admin");
  assert.match(page.url(), /\/admin\/login$/);
  await context.close();
});

// A datetime-local value (UTC, to the minute) `offset` ms from now.
const local = (offset) => iso(offset).slice(0, 16);
let browserEventId;

await check("staff create an event, attach a reward with a condition, see the parsed tree, move its status", async () => {
  const { page, context } = await signedIn(adminEmail, adminPassword);
  await page.goto(base + "/admin/events");
  await page.click("details.create summary");
  await page.fill("#create-event-form input[name=name]", "Browser launch");
  await page.fill("#create-event-form input[name=starts_at]", local(-3600 * 1000));
  await page.fill("#create-event-form input[name=ends_at]", local(day));
  await page.fill("#create-event-form textarea[name=description]", "Made in a real browser");
  await Promise.all([page.waitForSelector("#event-status"), page.click("#create-event")]);
  browserEventId = (await page.textContent("#event-id")).trim();
  assert.equal((await page.textContent("#event-status")).trim(), "DRAFT");
  assert.deepEqual(await page.locator("button.move").evaluateAll((bs) => bs.map((b) => b.dataset.to)), ["ACTIVE"]);

  // A catalogue reward of a type with its own fields: only that type's inputs show.
  await page.click("#new-reward summary");
  await page.fill("#new-reward-form input[name=name]", "Browser badge");
  await page.selectOption("#reward-type", "BADGE");
  assert.equal(await page.isVisible("#new-reward-form fieldset[data-kind=POINT]"), false);
  await page.fill("#new-reward-form input[name=badge_id]", "browser-badge");
  // The answer is a new page with the new reward chosen; the old page's
  // select may hold a value already, so wait for the new page first.
  await Promise.all([page.waitForURL(/[?&]reward=/), page.click("#create-reward")]);
  await page.waitForFunction(() => document.querySelector("#attach-form select[name=reward_id]")?.value !== "");

  // The condition editor answers as the operator types.
  await page.fill("#condition", '{"type": "ALL", "of": [');
  await page.waitForSelector("#condition-preview .preview-error");
  assert.match(await page.textContent("#condition-preview"), /Not JSON at line 1, column/);
  await page.fill("#condition", JSON.stringify({ type: "ALL", of: [
    { type: "CONTINUOUS_LOGIN", days: 1 },
    { type: "ANY", of: [{ type: "FRIEND_INVITE", count: 1 }, { type: "CUSTOM", metric: "quests", op: ">=", value: 1 }] },
  ] }, null, 2));
  await page.waitForFunction(() => document.querySelectorAll("#condition-preview ul.tree li").length === 5);
  assert.match(await page.textContent("#condition-preview"), /3 clause\(s\), depth 3/);
  await page.fill("input[name=sample_email]", "guest@browser.test");
  await page.click("#sample-check");
  await page.waitForSelector("#sample-result .sample-result");
  assert.equal(await page.locator("#sample-result .clauses li").count(), 3, "clause by clause");
  await shot(page, "event-editor");

  await page.click("#attach-reward");
  await page.waitForSelector("tr.event-reward");
  assert.match(await page.textContent("tr.event-reward"), /CONTINUOUS_LOGIN/);
  assert.equal(await page.locator("tr.event-reward ul.tree li").count(), 5);

  await page.click("button.move[data-to=ACTIVE]");
  await page.waitForFunction(() => document.querySelector("#event-status")?.textContent.trim() === "ACTIVE");
  assert.deepEqual(await page.locator("button.move").evaluateAll((bs) => bs.map((b) => b.dataset.to)),
    ["INACTIVE", "COMPLETED"]);
  // ACTIVE events are public (the admin's tokens ended with the logout check).
  const seen = await api("GET", `/api/v1/events/${browserEventId}`);
  assert.equal(seen.status, "ACTIVE", "the API agrees");
  const offers = await api("GET", `/api/v1/events/${browserEventId}/rewards`);
  assert.equal(offers.items[0].reward.type, "BADGE");
  assert.equal(offers.items[0].condition.of[1].type, "ANY");
  await shot(page, "event");
  await page.goto(base + "/admin/events?name=browser");
  assert.equal(await page.locator("tr.event").count(), 2, "Browser week and Browser launch");
  await shot(page, "events");
  await context.close();
});

await check("an AUDITOR reads the events without a button", async () => {
  const { page, context } = await signedIn("auditor@browser.test", password);
  await page.goto(base + "/admin/events");
  assert.equal(await page.locator("#create-event").count(), 0);
  await page.goto(base + `/admin/events/${browserEventId}`);
  assert.match(await page.textContent("tr.event-reward"), /CONTINUOUS_LOGIN/);
  assert.equal(await page.locator("main button").count(), 0);
  assert.equal(await page.locator("main form").count(), 0);
  await shot(page, "event-auditor");
  await context.close();
});

// Commerce: a product made on its page, sold out, waited for, and a paid
// order cancelled from its page (refunded, the unit offered to the line).
let browserOrderId;
let browserProductId;

// Reloads `path` until `selector`'s text is `want` (at most 10 s).
async function reloadUntil(page, path, selector, want) {
  for (let i = 0; i < 50; i += 1) {
    await page.goto(base + path);
    if ((await page.textContent(selector))?.trim() === want) return;
    await page.waitForTimeout(200);
  }
  assert.equal((await page.textContent(selector))?.trim(), want, `${selector} on ${path}`);
}

await check("staff create a product, watch its waiting list, and cancel a paid order", async () => {
  const { page, context } = await signedIn(adminEmail, adminPassword);
  await page.goto(base + "/admin/products");
  await page.click("details.create summary");
  await page.fill("#create-product-form input[name=name]", "Browser pass");
  await page.selectOption("#create-product-form select[name=kind]", "ANNUAL_PASS");
  await page.fill("#create-product-form input[name=price]", "50000");
  await page.fill("#create-product-form input[name=stock]", "1");
  await page.fill("#create-product-form input[name=sale_starts_at]", local(-3600 * 1000));
  await page.fill("#create-product-form input[name=sale_ends_at]", local(day));
  await Promise.all([page.waitForSelector("#product-status"), page.click("#create-product")]);
  browserProductId = (await page.textContent("#product-id")).trim();
  assert.equal((await page.textContent("#product-status")).trim(), "ON_SALE");
  await shot(page, "product");

  // The guest buys the only unit; another user waits for one.
  const buyer = await api("POST", "/api/v1/auth/login", { email: "guest@browser.test", password });
  const hold = await api("POST", `/api/v1/products/${browserProductId}/reservations`, { quantity: 1 }, buyer.access_token);
  const placed = await api("POST", "/api/v1/orders", { reservation_ids: [hold.id] }, buyer.access_token);
  browserOrderId = placed.id;
  const paid = await api("POST", `/api/v1/orders/${placed.id}/payments`, { provider: "fake" }, buyer.access_token);
  assert.equal(paid.status, "PAID");
  await api("POST", "/api/v1/auth/signup", { email: "waiter@browser.test", password });
  const waiter = await api("POST", "/api/v1/auth/login", { email: "waiter@browser.test", password });
  await api("POST", `/api/v1/products/${browserProductId}/waiting-list`, { quantity: 1 }, waiter.access_token);

  await page.goto(base + "/admin/products");
  const row = page.locator(`tr.product[data-id="${browserProductId}"]`);
  assert.match(await row.textContent(), /SOLD_OUT/);
  await shot(page, "products");
  await page.goto(base + `/admin/products/${browserProductId}/waiting-list`);
  assert.equal((await page.textContent("#waiting-count")).trim(), "1");
  assert.equal((await page.textContent("tr.entry td.rank")).trim(), "1");
  await shot(page, "waiting-list");

  await page.goto(base + "/admin/orders?status=PAID");
  assert.equal(await page.locator(`tr.order[data-id="${placed.id}"]`).count(), 1);
  await shot(page, "orders");
  await page.goto(base + `/admin/orders/${placed.id}`);
  assert.match(await page.textContent("#order-lines"), /Browser pass/);
  // The cancel asks first (hx-confirm); accept it.
  page.once("dialog", (dialog) => dialog.accept());
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith(`/admin/orders/${placed.id}/cancel`)),
    page.click("#cancel-order"),
  ]);
  await page.waitForFunction(() => document.querySelector("#order-status")?.textContent.trim() === "CANCELLED");
  await reloadUntil(page, `/admin/orders/${placed.id}`, "#refund-status", "REFUNDED");
  assert.match(await page.textContent("#order-history"), /REFUNDED/);
  await shot(page, "order");
  // The unit came back and went to the waiting list first.
  await reloadUntil(page, `/admin/products/${browserProductId}/waiting-list`, "#offered-count", "1");
  await shot(page, "waiting-list-offer");
  await context.close();
});

await check("an AUDITOR reads the products and orders without a button", async () => {
  const { page, context } = await signedIn("auditor@browser.test", password);
  for (const path of ["/admin/products", `/admin/products/${browserProductId}`, `/admin/orders/${browserOrderId}`]) {
    await page.goto(base + path);
    assert.equal(await page.locator("main form[method=post]").count(), 0, path);
  }
  assert.match(await page.textContent("#order-status"), /CANCELLED/);
  await shot(page, "order-auditor");
  await context.close();
});

// Charts: what the overview draws, over the range selected, and its CSVs.
const chartData = (page, id) => page.evaluate((id) => {
  const canvas = document.querySelector(`#chart-${id} canvas`);
  const chart = canvas && window.Chart && window.Chart.getChart(canvas);
  if (!chart) return null;
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) inked++;
  return { labels: chart.data.labels, values: chart.data.datasets.map((d) => d.data), inked };
}, id);

await check("the overview's charts draw the API's figures", async () => {
  const { page, context } = await signedIn("auditor@browser.test", password);
  await page.goto(base + "/admin?range=day");
  await page.waitForFunction(() => window.Chart && window.Chart.getChart(document.querySelector("#chart-request-status canvas")));
  const from = new Date(Date.now() - day - 60_000).toISOString();
  // A fresh token: logging out above ended the admin's earlier ones.
  const reader = await api("POST", "/api/v1/auth/login", { email: "auditor@browser.test", password });
  const rewards = await api("GET", `/api/v1/analytics/rewards?from=${encodeURIComponent(from)}`,
    undefined, reader.access_token);
  const drawn = await chartData(page, "request-status");
  assert.deepEqual(drawn.labels, rewards.requests_by_status.map((s) => s.status));
  assert.deepEqual(drawn.values[0], rewards.requests_by_status.map((s) => s.count));
  assert.ok(drawn.inked > 100, `the canvas has ink: ${drawn.inked}`);
  const perMinute = await chartData(page, "coupons-per-minute");
  assert.ok(perMinute.labels.length >= 1440, `a day of minutes: ${perMinute.labels.length}`);
  for (const id of ["requests-per-day", "rewards-per-event", "event-status", "participation", "users-per-day", "sales-per-product", "orders-per-day"]) {
    assert.ok(await chartData(page, id), `${id} is drawn`);
  }
  assert.ok((await chartData(page, "rewards-per-event")).labels.includes("Browser week"));
  await shot(page, "overview-charts");
  await context.close();
});

await check("the range selector changes every chart's data", async () => {
  const { page, context } = await signedIn(adminEmail, adminPassword);
  await page.goto(base + "/admin?range=day");
  const before = await chartData(page, "request-status");
  assert.ok(before.labels.length > 0);
  const yearAgo = new Date(Date.now() - 365 * day).toISOString().slice(0, 10);
  await page.selectOption("select[name=range]", "custom");
  await page.fill("input[name=from]", yearAgo);
  await page.fill("input[name=to]", yearAgo);
  await Promise.all([page.waitForURL(/range=custom/), page.click("#show-range")]);
  await page.waitForFunction(() => window.Chart && window.Chart.getChart(document.querySelector("#chart-request-status canvas")));
  const after = await chartData(page, "request-status");
  assert.deepEqual(after.labels, []);
  assert.deepEqual((await chartData(page, "requests-per-day")).labels, [yearAgo]);
  await shot(page, "overview-charts-custom");
  await context.close();
});

await check("each chart's CSV downloads and parses to its data", async () => {
  const { page, context } = await signedIn(adminEmail, adminPassword);
  await page.goto(base + "/admin?range=week");
  const links = await page.$$eval("a.csv", (as) => as.map((a) => a.getAttribute("href")));
  assert.equal(links.length, 9);
  for (const href of links) {
    const id = href.match(/charts\/([a-z-]+)\.csv/)[1];
    const csv = await page.evaluate((href) => fetch(href).then((r) => r.text()), href);
    const rows = csv.trim().split("\r\n").map((line) => line.split(","));
    const drawn = await chartData(page, id);
    assert.equal(rows[0][0], "label", href);
    assert.equal(rows.length - 1, drawn.labels.length, href);
    drawn.values.forEach((values, series) => values.forEach((v, i) => assert.equal(Number(rows[i + 1][series + 1]), v, href)));
  }
  await context.close();
});

// Lines: setup through the API with a fresh token (the logout check ended
// the admin's first ones), then everything an operator does at the gate.
const staffToken = (await api("POST", "/api/v1/auth/login", { email: adminEmail, password: adminPassword })).access_token;
const ride = await api("POST", "/api/v1/attractions",
  { name: "Browser coaster", kind: "RIDE", hashtags: ["thrill"], capacity_per_cycle: 4, cycle_seconds: 60 }, staffToken);
async function rider(n) {
  await signUp(`rider${n}@browser.test`, null, staffToken);
  const session = await api("POST", "/api/v1/auth/login", { email: `rider${n}@browser.test`, password });
  return api("POST", `/api/v1/attractions/${ride.id}/line`, { party_size: n }, session.access_token);
}
const called = (page) => page.locator("tr.line-entry[data-status=CALLED]").count();

await check("staff call the next parties, admit one and pause the ride while the line refreshes by itself", async () => {
  for (const n of [1, 2, 3]) await rider(n);
  const { page, context } = await signedIn(adminEmail, adminPassword);
  await page.goto(base + "/admin/attractions");
  const length = page.locator(`tr.attraction[data-id="${ride.id}"] td.line-length .figure-sm`);
  assert.equal((await length.textContent()).trim(), "3");
  await shot(page, "attractions");
  await page.click(`tr.attraction[data-id="${ride.id}"] a`);
  await page.waitForSelector("#line-live");
  await page.fill("#call-form input[name=count]", "2");
  await page.click("#call-next");
  await page.waitForFunction(() => document.querySelectorAll("tr.line-entry[data-status=CALLED]").length === 2);
  // No reload: a party joining through the API shows at the next refresh.
  await rider(4);
  await page.waitForFunction(() => document.querySelectorAll("tr.line-entry").length === 4, null, { timeout: 10000 });
  await shot(page, "attraction-line");
  await page.locator("tr.line-entry[data-status=CALLED] button.admit").first().click();
  await page.waitForFunction(() => document.querySelectorAll("tr.line-entry[data-status=CALLED]").length === 1);
  assert.equal(await called(page), 1);
  const line = await api("GET", `/api/v1/attractions/${ride.id}/line`, undefined, staffToken);
  assert.deepEqual(line.items.map((e) => e.status), ["CALLED", "WAITING", "WAITING"], "the API agrees");

  await page.click("button.move[data-to=DOWN]");
  await page.waitForFunction(() => document.querySelector("#attraction-status")?.textContent.trim() === "DOWN");
  assert.equal((await api("GET", `/api/v1/attractions/${ride.id}`)).status, "DOWN");
  await page.click("#call-next");
  await page.waitForSelector("#gate .form-error");
  assert.match(await page.textContent("#gate .form-error"), /not operating/);
  await shot(page, "attraction-paused");
  await page.click("button.move[data-to=OPERATING]");
  await page.waitForFunction(() => document.querySelector("#attraction-status")?.textContent.trim() === "OPERATING");
  await context.close();
});

await check("an AUDITOR watches a line without a button", async () => {
  const { page, context } = await signedIn("auditor@browser.test", password);
  await page.goto(base + `/admin/attractions/${ride.id}`);
  await page.waitForSelector("tr.line-entry[data-status=CALLED]");
  assert.equal(await page.locator("main button").count(), 0);
  assert.equal(await page.locator("main form").count(), 0);
  assert.equal(await page.locator("a[href='/admin/webhooks']").count(), 0, "webhooks are for an ADMIN");
  await shot(page, "attraction-auditor");
  await context.close();
});

await check("an ADMIN registers a webhook endpoint, sees its secret once and reads its delivery log", async () => {
  const { page, context } = await signedIn(adminEmail, adminPassword);
  await page.goto(base + "/admin/webhooks");
  await page.click("details.create summary");
  // Nothing listens on port 9: every delivery fails, and can be replayed.
  await page.fill("#create-webhook-form input[name=url]", "http://127.0.0.1:9/browser-hook");
  await page.check("#create-webhook-form input[value='line_entry.called']");
  await page.fill("#create-webhook-form input[name=description]", "the browser suite");
  await page.click("#create-webhook");
  await page.waitForSelector("#signing-secret");
  const secret = (await page.textContent("#signing-secret")).trim();
  assert.match(secret, /^whsec_/);
  await shot(page, "webhook-created");
  await page.goto(base + "/admin/webhooks");
  assert.equal((await page.content()).includes(secret), false, "the secret is shown only once");
  await shot(page, "webhooks");
  await page.click("tr.webhook a");
  await page.waitForSelector("#delivery-log");
  assert.equal((await page.content()).includes("whsec_"), false);
  await page.click("#send-test");
  // The log refreshes by itself until the failed attempt shows.
  await page.waitForSelector("tr.delivery button.replay", { timeout: 15000 });
  assert.match(await page.textContent("tr.delivery td.error"), /\S/);
  await shot(page, "webhook-log");
  await page.click("#disable");
  await page.waitForFunction(() => document.querySelector("#endpoint-state")?.textContent.trim() === "disabled");
  await context.close();
});

await check("no page reached another host", async () => {
  assert.deepEqual(otherHosts, []);
});

await browser.close();
if (failures) {
  console.log(`${failures} browser check(s) failed; screenshots in ${out}`);
  process.exit(1);
}
console.log(`all browser checks passed; screenshots in ${out}`);
