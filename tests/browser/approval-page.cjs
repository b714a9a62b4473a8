// An approver's browser on the approval pages: opens the approve link in
// headless Chromium (Debian's, driven by playwright-core from local/.node),
// reads the confirmation page's DOM, types a reason, clicks the button and
// reads the result page; screenshots of both go to OUT_DIR.
//
//   node tests/browser/approval-page.cjs <approve-link> <out-dir>
//
// Prints one JSON document: {confirmation: {title, text, button, evidence[],
// approved_so_far}, result: {status, title, text}, screenshots: [paths]}.
const path = require("path");
const root = path.resolve(__dirname, "..", "..");
const { chromium } = require(path.join(root, "local", ".node", "node_modules", "playwright-core"));

async function main() {
  const [link, outDir] = process.argv.slice(2);
  if (!link || !outDir) {
    throw new Error("usage: approval-page.cjs <approve-link> <out-dir>");
  }
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    const opened = await page.goto(link, { waitUntil: "load" });
    const confirmation = {
      status: opened ? opened.status() : 0,
      title: await page.title(),
      text: await page.innerText("body"),
      button: await page.innerText("form button[type=submit]"),
      evidence: await page.$$eval("#evidence li", (items) => items.map((li) => li.textContent)),
      approved_so_far: await page.innerText("#approved-so-far"),
    };
    const shots = [path.join(outDir, "confirmation.png"), path.join(outDir, "result.png")];
    await page.screenshot({ path: shots[0], fullPage: true });
    await page.fill("textarea[name=reason]", "checked in a real browser");
    const [answer] = await Promise.all([
      page.waitForNavigation({ waitUntil: "load" }),
      page.click("form button[type=submit]"),
    ]);
    const result = {
      status: answer ? answer.status() : 0,
      title: await page.title(),
      text: await page.innerText("body"),
    };
    await page.screenshot({ path: shots[1], fullPage: true });
    process.stdout.write(JSON.stringify({ confirmation, result, screenshots: shots }) + "\n");
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  process.stderr.write(`approval-page: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
