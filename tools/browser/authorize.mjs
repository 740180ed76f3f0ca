// Drives keycard's authorize page (/app/login/secure/authorizetoken.nl) in a real Chromium,
// the way a person would: open the URL, log in (optionally first with a wrong password), pick
// a role, press Allow or Deny, and follow the redirect to the application's callback.
//
//   node authorize.mjs '{"chromium": "/usr/bin/chromium", "url": "...", "email": "...",
//                        "password": "...", "wrongPassword": "...", "role": "Integrator",
//                        "action": "allow", "screenshots": "/tmp/shots"}' [URL]
//
// A URL after the options replaces theirs: so the script can stand as a `BROWSER` command, to
// which a program such as `keycard login` appends the URL it wants opened.
// Prints one JSON object: each page seen ({step, status, url, title, text}), the final URL,
// and everything the browser complained about (console errors, page errors, failed or
// blocked requests: a Content-Security-Policy violation shows there). The Rust test
// (crates/keycard-server/tests/http/browser.rs) judges it; this script only reports, and
// exits non-zero only when it could not drive the page at all.
import { mkdirSync } from "node:fs";
import puppeteer from "puppeteer-core";

const options = JSON.parse(process.argv[2] ?? "{}");
if (process.argv[3]) {
  options.url = process.argv[3];
}
for (const name of ["chromium", "url", "email", "password", "action"]) {
  if (!options[name]) {
    console.error(`authorize.mjs: missing "${name}" in the options`);
    process.exit(2);
  }
}

const report = { pages: [], complaints: [], finalUrl: null };
const browser = await puppeteer.launch({
  executablePath: options.chromium,
  headless: true,
  pipe: true,
  // Root in a container has no user namespaces for Chromium's sandbox.
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
});
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(15_000);
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warn") {
      report.complaints.push(`console ${message.type()}: ${message.text()}`);
    }
  });
  page.on("pageerror", (error) => report.complaints.push(`page error: ${error.message}`));
  page.on("requestfailed", (request) =>
    report.complaints.push(`request failed: ${request.url()} (${request.failure()?.errorText})`),
  );

  let shot = 0;
  const seen = async (step, response) => {
    report.pages.push({
      step,
      status: response ? response.status() : null,
      url: page.url(),
      title: await page.title(),
      text: await page.evaluate(() => document.body.innerText),
    });
    if (options.screenshots) {
      mkdirSync(options.screenshots, { recursive: true });
      shot += 1;
      await page.screenshot({ path: `${options.screenshots}/${shot}-${step}.png`, fullPage: true });
    }
  };
  // Submits by clicking, as a person does, and waits for the page the submission leads to.
  const submit = async (selector) => {
    const [response] = await Promise.all([page.waitForNavigation(), page.click(selector)]);
    return response;
  };
  const logIn = async (password) => {
    await page.type("#email", options.email);
    await page.type("#password", password);
    return submit("#login");
  };

  await seen("login", await page.goto(options.url));
  if (options.wrongPassword) {
    await seen("wrong-password", await logIn(options.wrongPassword));
  }
  await seen("consent", await logIn(options.password));
  if (options.role) {
    const value = await page.$$eval(
      "#role option",
      (choices, label) => choices.find((choice) => choice.textContent === label)?.value,
      options.role,
    );
    if (value === undefined) {
      throw new Error(`no role named ${options.role} on the consent page`);
    }
    await page.select("#role", value);
  }
  await seen("callback", await submit(`#${options.action}`));
  report.finalUrl = page.url();
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
