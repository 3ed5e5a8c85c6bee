// A real browser for pando's tests: Playwright (npm playwright-core) driving the system chromium.
// Reads one JSON command per line on stdin, answers one JSON line on stdout ({ok, result|error}).
"use strict";
const { chromium } = require(process.env.PANDO_PLAYWRIGHT_CORE);
const readline = require("readline");

const TIMEOUT = Number(process.env.PANDO_BROWSER_TIMEOUT_MS || 30000);

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.PANDO_CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  page.on("dialog", (dialog) => dialog.accept());
  const console_lines = [];
  page.on("console", (message) => console_lines.push(`${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => console_lines.push(`pageerror: ${error.message}`));
  const answer = (data) => process.stdout.write(JSON.stringify(data) + "\n");
  answer({ ok: true, result: "ready" });
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const command = JSON.parse(line);
    const timeout = command.timeout || TIMEOUT;
    try {
      let result = null;
      switch (command.op) {
        case "goto":
          await page.goto(command.url, { timeout });
          break;
        case "wait_text":
          await page.locator(command.selector).filter({ hasText: command.text }).first().waitFor({ timeout });
          break;
        case "wait_gone":
          await page.locator(command.selector).first().waitFor({ state: "detached", timeout });
          break;
        case "click":
          await page.locator(command.selector).first().click({ timeout });
          break;
        case "fill":
          await page.locator(command.selector).first().fill(command.value, { timeout });
          break;
        case "text":
          result = await page.locator(command.selector).first().innerText({ timeout });
          break;
        case "url":
          result = page.url();
          break;
        case "screenshot":
          await page.screenshot({ path: command.path, fullPage: true });
          break;
        case "console":
          result = console_lines.slice();
          break;
        default:
          throw new Error(`unknown op ${command.op}`);
      }
      answer({ ok: true, result });
    } catch (error) {
      answer({ ok: false, error: String((error && error.message) || error) });
    }
  }
  await browser.close();
}

main().catch((error) => {
  process.stdout.write(JSON.stringify({ ok: false, error: String(error && error.stack || error) }) + "\n");
  process.exit(1);
});
