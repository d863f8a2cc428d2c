// The browser client in real headless Chromium, driven by playwright-core
// (run by tests/browser.rs, which starts the server and installs what this
// needs). Page A plays through a TCP proxy that the script can cut, as a
// network would; page B connects straight to the server.
//
// Environment: MUDSHARD_ADDR (host:port of the server), PLAYWRIGHT_DIR (a
// folder with node_modules/playwright-core), CHROMIUM (the browser binary),
// SCREENSHOT (where the final picture of page A goes), RESUME_WINDOW_MS
// (how long the server keeps a dropped session).

import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (this script is run by tests/browser.rs)`);
  return v;
};
const [serverHost, serverPort] = env('MUDSHARD_ADDR').split(':');
const require = createRequire(path.join(env('PLAYWRIGHT_DIR'), 'package.json'));
const { chromium } = require('playwright-core');
const screenshot = env('SCREENSHOT');

const STEP_MS = 10000; // the most any one step may take
const RESUME_WINDOW_MS = Number(env('RESUME_WINDOW_MS')); // the server's
const BACKOFF_MAX_MS = 15000; // the client's longest wait between attempts (app.js)

function step(what) {
  console.log(`browser: ${what}`);
}

// A TCP proxy in front of the server. `cut()` ends every connection through
// it without a WebSocket close (FIN to both sides, as a dropped network
// path looks to the server) and turns new ones away until `mend()`.
function startProxy() {
  const pairs = new Set();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) return client.destroy();
    const upstream = net.connect(Number(serverPort), serverHost);
    const pair = [client, upstream];
    pairs.add(pair);
    const end = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        url: `http://127.0.0.1:${server.address().port}/`,
        cut() {
          refusing = true;
          for (const [a, b] of pairs) {
            a.destroy();
            b.destroy();
          }
          pairs.clear();
        },
        mend() {
          refusing = false;
        },
        close() {
          server.close();
        },
      });
    });
  });
}

// Waits for a log line of class k-<kind> containing `text`.
async function seeLine(page, kind, text, timeout = STEP_MS) {
  await page.waitForFunction(
    ([kind, text]) =>
      [...document.querySelectorAll('#log .k-' + kind)].some((l) => l.textContent.includes(text)),
    [kind, text],
    { timeout },
  );
}

async function roomName(page) {
  return (await page.textContent('#room-name')).trim();
}

async function type(page, line) {
  await page.fill('#line', line);
  await page.press('#line', 'Enter');
}

async function enterAsGuest(page, url, name) {
  await page.goto(url);
  await page.fill('#form-guest input[name=name]', name);
  await page.click('#form-guest button[type=submit]');
  await page.waitForFunction(() => window.mudshard.state().status === 'online' && window.mudshard.state().playing, null, { timeout: STEP_MS });
  await seeLine(page, 'client', `Welcome, ${name}.`);
}

const OPPOSITE = { north: 'south', south: 'north', east: 'west', west: 'east', up: 'down', down: 'up' };

async function main() {
  const proxy = await startProxy();
  const browser = await chromium.launch({
    executablePath: env('CHROMIUM'),
    headless: true,
    // Root in a container has no user namespace for the sandbox.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  const problems = [];
  const watch = (page, label) => {
    page.on('pageerror', (e) => problems.push(`${label}: page error: ${e.message}`));
    page.on('console', (m) => {
      // The browser's own notes on failed connections are expected while
      // the proxy is cut; anything else logged as an error is a fault.
      if (m.type() === 'error' && !m.text().startsWith('WebSocket connection to')) {
        problems.push(`${label}: console error: ${m.text()}`);
      }
    });
  };
  const a = await browser.newPage({ viewport: { width: 1000, height: 720 } });
  const b = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  watch(a, 'page A');
  watch(b, 'page B');
  try {
    step('page A: log in as the guest walker');
    await enterAsGuest(a, proxy.url, 'walker');
    const start = await roomName(a);
    step(`page A: in ${start}; look`);
    await type(a, 'look');
    await seeLine(a, 'echo', '> look');
    await seeLine(a, 'reply', 'Exits:');

    const dir = await a.getAttribute('#exits .exit', 'data-dir');
    if (!dir || !OPPOSITE[dir]) throw new Error(`no usable exit in ${start} (got ${dir})`);
    step(`page A: type ${dir}`);
    await type(a, dir);
    await a.waitForFunction((start) => document.querySelector('#room-name').textContent.trim() !== start, start, { timeout: STEP_MS });
    const there = await roomName(a);
    step(`page A: now in ${there}; click the exit ${OPPOSITE[dir]} back`);
    await a.click(`#exits .exit[data-dir=${OPPOSITE[dir]}]`);
    await a.waitForFunction((start) => document.querySelector('#room-name').textContent.trim() === start, start, { timeout: STEP_MS });

    step('page B: log in as the guest talker (phone-sized)');
    await enterAsGuest(b, `http://${serverHost}:${serverPort}/`, 'talker');
    await seeLine(a, 'enter', 'talker has entered the world');
    await type(a, 'say hello, talker');
    await seeLine(b, 'say', 'walker says, "hello, talker"');
    await type(b, 'say hello, walker');
    await seeLine(a, 'say', 'talker says, "hello, walker"');
    step('page B saw the say of page A, and A the say of B');

    const before = await a.evaluate(() => window.mudshard.state());
    step(`cut page A's connection (last seq ${before.lastSeq})`);
    proxy.cut();
    await a.waitForFunction(() => window.mudshard.state().status !== 'online', null, { timeout: STEP_MS });
    // The server has noticed when the room hears of it.
    await seeLine(b, 'system', 'walker has lost their link');
    await type(b, 'say said while you were away');
    await seeLine(b, 'say', 'You say, "said while you were away"');
    step('page B spoke while page A was cut off; mend the network');
    proxy.mend();
    await seeLine(a, 'client', 'session resumed');
    await seeLine(a, 'say', 'talker says, "said while you were away"');
    await seeLine(b, 'system', 'walker is back');
    const after = await a.evaluate(() => window.mudshard.state());
    const log = await a.textContent('#log');
    if (log.includes('Logged in again')) throw new Error('page A logged in again instead of resuming');
    if (after.name !== 'walker') throw new Error(`page A is ${after.name} after the drop, not walker`);
    if (!(after.lastSeq > before.lastSeq)) throw new Error(`seq did not move on: ${before.lastSeq} → ${after.lastSeq}`);
    const resumed = await a.$$eval('#log .k-client', (ls) => ls.map((l) => l.textContent).filter((t) => t.includes('resumed')));
    step(`page A reconnected: ${resumed.join(' / ')}`);

    await type(a, 'say back again');
    await seeLine(b, 'say', 'walker says, "back again"');

    // Cut for longer than the resume window: the session is let go, and the
    // page logs in again (as the same guest name, now free) and says so.
    step('cut page A again, for longer than the resume window');
    proxy.cut();
    await a.waitForFunction(() => window.mudshard.state().status !== 'online', null, { timeout: STEP_MS });
    await seeLine(b, 'leave', 'walker has left the world', RESUME_WINDOW_MS + STEP_MS);
    proxy.mend();
    await seeLine(a, 'client', 'Could not resume the session', BACKOFF_MAX_MS + STEP_MS);
    await seeLine(a, 'client', 'Logged in again as walker');
    await seeLine(b, 'enter', 'walker has entered the world');
    const again = await a.evaluate(() => window.mudshard.state());
    if (again.status !== 'online' || again.name !== 'walker' || again.lastSeq < 1) {
      throw new Error(`after logging in again page A is ${JSON.stringify(again)}`);
    }
    step('page A could not resume, logged in again and said so');
    await type(b, 'say welcome back');
    await seeLine(a, 'say', 'talker says, "welcome back"');

    step('page C: a wrong password is refused at the form; register; reload');
    const c = await browser.newPage({ viewport: { width: 800, height: 600 } });
    watch(c, 'page C');
    const direct = `http://${serverHost}:${serverPort}/`;
    await c.goto(direct);
    await c.click('.tabs button[data-tab=login]');
    await c.fill('#form-login input[name=name]', 'keeper');
    await c.fill('#form-login input[name=password]', 'not the password');
    await c.click('#form-login button[type=submit]');
    await c.waitForFunction(() => document.querySelector('#gate-error').textContent.length > 0, null, { timeout: STEP_MS });
    if (!(await c.isVisible('#gate'))) throw new Error('a refused login hid the form');
    await c.click('.tabs button[data-tab=register]');
    await c.fill('#form-register input[name=name]', 'keeper');
    await c.fill('#form-register input[name=password]', 'correct horse');
    await c.click('#form-register button[type=submit]');
    await seeLine(c, 'client', 'Welcome, keeper.');
    await seeLine(a, 'enter', 'keeper has entered the world');
    await c.reload();
    // A reload closes the socket with a goodbye, so the session is over:
    // the page comes back with its account token.
    await seeLine(c, 'client', 'Logged in again as keeper');
    await c.waitForFunction(() => window.mudshard.state().status === 'online', null, { timeout: STEP_MS });
    await type(c, 'say still here');
    await seeLine(a, 'say', 'keeper says, "still here"');

    if (problems.length) throw new Error(problems.join('\n'));
    await a.screenshot({ path: screenshot });
    await b.screenshot({ path: screenshot.replace(/\.png$/, '-phone.png') });
    step(`screenshots: ${screenshot}, ${screenshot.replace(/\.png$/, '-phone.png')}`);
  } catch (e) {
    const failed = screenshot.replace(/\.png$/, '-failed.png');
    await a.screenshot({ path: failed }).catch(() => {});
    console.error(`browser: FAILED: ${e.stack || e}`);
    for (const p of problems) console.error(`browser: ${p}`);
    console.error(`browser: page A's log:\n${await a.textContent('#log').catch(() => '?')}`);
    console.error(`browser: page B's log:\n${await b.textContent('#log').catch(() => '?')}`);
    console.error(`browser: screenshot of the failure: ${failed}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
    proxy.close();
  }
}

main().catch((e) => {
  console.error(`browser: ${e.stack || e}`);
  process.exit(1);
});
