/**
 * The browser page, end to end: two real chatmesh processes linked by static peers, one
 * headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core), one page on
 * each instance. Without Chromium the test fails with a message, unless
 * CHATMESH_SKIP_BROWSER=1 (then it is skipped). CHATMESH_CHROMIUM overrides the path.
 */
import { expect } from 'chai';
import { existsSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { AUDIENCE, ISSUER, TEST_SECRET, mint } from '../helpers/auth.js';
import { Instance, freePort, stopAll } from '../helpers/instance.js';
import { readmeExample } from '../helpers/readme-example.js';

const WAIT = { timeout: 20_000 };
const SCREENSHOT = join(tmpdir(), 'chatmesh-chat-page.png');

let browser: Browser | null = null;
const pageProblems: string[] = [];

async function launch(ctx: Mocha.Context): Promise<Browser> {
  browser = await launchChromium(ctx);
  return browser;
}

async function openPage(b: Browser, instance: Instance, label: string): Promise<Page> {
  const page = await (await b.newContext()).newPage();
  page.on('pageerror', (err) => pageProblems.push(`${label}: ${err.message}`));
  page.on('console', (msg) => {
    // Expected noise: no favicon, and refused WebSocket connections while an instance is down.
    if (msg.type() !== 'error' || msg.location().url.endsWith('/favicon.ico') || msg.text().startsWith('WebSocket connection to')) return;
    pageProblems.push(`${label}: ${msg.text()}`);
  });
  const response = await page.goto(`${instance.httpUrl}/`);
  expect(response?.status()).to.equal(200);
  const headers = response!.headers();
  expect(headers['content-type']).to.equal('text/html; charset=utf-8');
  expect(headers['cache-control']).to.equal('no-cache');
  expect(headers['content-security-policy']).to.match(/^default-src 'self'; connect-src 'self' ws: wss:/);
  return page;
}

async function joinRoom(page: Page, user: string, room: string): Promise<void> {
  await page.getByLabel('Your name', { exact: true }).fill(user);
  await page.getByLabel('Room', { exact: true }).fill(room);
  await page.getByRole('button', { name: 'Join', exact: true }).click();
  await page.getByRole('status').filter({ hasText: `Connected as ${user}` }).waitFor(WAIT);
}

async function say(page: Page, text: string): Promise<void> {
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  await messageText(page, text).waitFor(WAIT); // the echo is the acknowledgement
}

const messageText = (page: Page, text: string) => page.locator('#messages li[data-id] .text').getByText(text, { exact: true });
const member = (page: Page, user: string) => page.locator(`#members li[data-user="${user}"]`);
const shownTexts = (page: Page) => page.locator('#messages li[data-id] .text').allTextContents();

describe('browser chat page', function () {
  this.timeout(120_000);

  // Even when a test failed: the browser, then every instance it started.
  afterEach(async () => {
    const b = browser;
    browser = null;
    await b?.close().catch(() => {});
    await stopAll();
  });

  it('serves the page at / with its assets, and HEAD too', async () => {
    const a = await Instance.start();
    for (const [path, type] of [['/', 'text/html'], ['/app.js', 'text/javascript'], ['/style.css', 'text/css']]) {
      const res = await fetch(`${a.httpUrl}${path}`);
      expect(res.status, path).to.equal(200);
      expect(res.headers.get('content-type'), path).to.equal(`${type}; charset=utf-8`);
      expect(res.headers.get('cache-control'), path).to.equal('no-cache');
      expect(res.headers.get('content-security-policy'), path).to.contain("default-src 'self'");
      const body = await res.text();
      expect(body.length, path).to.be.greaterThan(100);
      const head = await fetch(`${a.httpUrl}${path}`, { method: 'HEAD' });
      expect(head.status).to.equal(200);
      expect(head.headers.get('content-length')).to.equal(String(Buffer.byteLength(body)));
      expect(await head.text()).to.equal('');
    }
    expect((await fetch(`${a.httpUrl}/`, { method: 'POST' })).status).to.equal(405);
    expect((await fetch(`${a.httpUrl}/nope.js`)).status).to.equal(404);
    expect((await fetch(`${a.httpUrl}/health`)).status).to.equal(200);
    // No inline script anywhere: the CSP forbids it.
    expect(await (await fetch(`${a.httpUrl}/`)).text()).to.not.match(/<script(?![^>]*\bsrc=)[^>]*>/);
  });

  it('serves the client library at /client.js as ES modules with no bare imports (and not its Node entry)', async () => {
    const a = await Instance.start();
    // Every module /client.js reaches, following its imports: each must be a relative path.
    const seen = new Set<string>();
    const queue = ['/client.js'];
    while (queue.length > 0) {
      const path = queue.shift()!;
      if (seen.has(path)) continue;
      seen.add(path);
      const res = await fetch(`${a.httpUrl}${path}`);
      expect(res.status, path).to.equal(200);
      expect(res.headers.get('content-type'), path).to.equal('text/javascript; charset=utf-8');
      expect(res.headers.get('access-control-allow-origin'), path).to.equal('*');
      const code = await res.text();
      for (const [, spec] of code.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]/g)) {
        if (spec === undefined) continue;
        expect(spec, `${path} imports ${spec}`).to.match(/^\.\.?\//);
        queue.push(new URL(spec, `http://x${path}`).pathname);
      }
      expect(code, path).to.not.match(/\bimport\s*\(\s*['"][^./]/); // no dynamic bare import either
    }
    expect(seen.size).to.be.greaterThan(5);
    expect([...seen]).to.include('/client/chat-client.js');
    expect((await fetch(`${a.httpUrl}/client/node.js`)).status).to.equal(404);
    expect((await fetch(`${a.httpUrl}/client/nope.js`)).status).to.equal(404);
    expect(await (await fetch(`${a.httpUrl}/app.js`)).text()).to.include("from './client.js'");
  });

  it('shows the errors the server sends, and goes back to the form when a join is refused', async function () {
    pageProblems.length = 0;
    const a = await Instance.start({ env: { MAX_NAME_LENGTH: '8', MAX_TEXT_LENGTH: '10' } });
    const page = await openPage(await launch(this), a, 'page');
    await page.getByLabel('Your name', { exact: true }).fill('a-much-too-long-name');
    await page.getByLabel('Room', { exact: true }).fill('lobby');
    await page.getByRole('button', { name: 'Join', exact: true }).click();
    await page.getByRole('alert').getByText(/^invalid_field: /).waitFor(WAIT);
    await page.getByRole('button', { name: 'Join', exact: true }).waitFor(WAIT); // the form again
    await joinRoom(page, 'ann', 'lobby');
    await page.getByLabel('Message', { exact: true }).fill('longer than ten');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await page.getByRole('alert').getByText(/^invalid_field: .*text/).waitFor(WAIT);
    await say(page, 'short'); // still connected
    expect(await shownTexts(page)).to.deep.equal(['short']);
    expect(pageProblems, pageProblems.join('\n')).to.deep.equal([]);
  });

  it('chats across two instances, and resumes without loss or duplicates after its instance dies', async function () {
    pageProblems.length = 0;
    const [portA, portB] = [await freePort(), await freePort()];
    const envA = { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${portB}`, LOG_LEVEL: 'info' };
    const envB = { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${portA}`, LOG_LEVEL: 'info' };
    const [a, b] = await Promise.all([Instance.start({ port: portA, env: envA }), Instance.start({ port: portB, env: envB })]);
    await a.waitForPeersUp([b.nodeId], 10_000);
    await b.waitForPeersUp([a.nodeId], 10_000);

    const chrome = await launch(this);
    const page1 = await openPage(chrome, a, 'page 1');
    const page2 = await openPage(chrome, b, 'page 2');
    await joinRoom(page1, 'alice', 'lobby');
    await joinRoom(page2, 'bob', 'lobby');
    await member(page1, 'bob').waitFor(WAIT);
    await member(page2, 'alice').waitFor(WAIT);

    await say(page1, 'hello from alice');
    await messageText(page2, 'hello from alice').waitFor(WAIT);
    await say(page2, 'hello from bob');
    await messageText(page1, 'hello from bob').waitFor(WAIT);
    // Text is text: markup typed by a user is shown, never parsed.
    await say(page1, '<b>not bold</b>');
    await messageText(page2, '<b>not bold</b>').waitFor(WAIT);
    expect(await page2.locator('#messages b').count()).to.equal(0);

    await page2.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).to.equal(true);
    expect(statSync(SCREENSHOT).size).to.be.greaterThan(5 * 1024);
    expect(readFileSync(SCREENSHOT).subarray(0, 8).toString('hex')).to.equal('89504e470d0a1a0a'); // PNG signature

    // What page 1 is told when it joins again (its resume).
    const rejoins: { gap?: boolean; since?: string; history: { text: string }[] }[] = [];
    page1.on('websocket', (ws) =>
      ws.on('framereceived', ({ payload }) => {
        const frame = JSON.parse(String(payload)) as { type: string; gap?: boolean; since?: string; history: { text: string }[] };
        if (frame.type === 'joined') rejoins.push(frame);
      }),
    );

    // Instance A dies: page 1 loses its socket and retries (refused: nothing listens on A's port).
    await a.kill('SIGKILL');
    await page1.getByRole('status').filter({ hasText: /reconnect/i }).waitFor(WAIT);
    await member(page2, 'alice').waitFor({ state: 'detached', ...WAIT });
    const missed = ['while away 1', 'while away 2', 'while away 3'];
    for (const text of missed) await say(page2, text);

    // A comes back on its port with the same environment (an empty store: B's catch-up refills it).
    const a2 = await Instance.start({ port: portA, env: envA });
    await a2.waitForPeersUp([b.nodeId], 15_000);
    await page1.getByRole('status').filter({ hasText: 'Connected as alice' }).waitFor(WAIT);
    for (const text of missed) await messageText(page1, text).waitFor(WAIT);
    await member(page2, 'alice').waitFor(WAIT);
    await member(page1, 'bob').waitFor(WAIT);
    // Live again, both ways.
    await say(page2, 'welcome back');
    await messageText(page1, 'welcome back').waitFor(WAIT);
    await say(page1, 'thanks');
    await messageText(page2, 'thanks').waitFor(WAIT);

    // Page 1 resumed with `since` = the last message it had. If it reached the new A before
    // B's catch-up did, A knew nothing of that id (gap, then the messages came live);
    // otherwise `history` held exactly what it missed.
    expect(rejoins.length).to.be.greaterThan(0);
    const rejoin = rejoins.at(-1)!;
    expect(rejoin.since).to.be.a('string');
    if (!rejoin.gap) expect(rejoin.history.map((m) => m.text)).to.deep.equal(missed);
    if (process.env.CHATMESH_TEST_VERBOSE) console.log(`      resume: ${rejoins.map((r) => (r.gap ? 'gap' : `since, ${r.history.length} in history`)).join('; ')}`);

    const expected = ['hello from alice', 'hello from bob', '<b>not bold</b>', ...missed, 'welcome back', 'thanks'];
    expect(await shownTexts(page1)).to.deep.equal(expected);
    expect(await shownTexts(page2)).to.deep.equal(expected);
    const ids = await page1.locator('#messages li[data-id]').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-id')));
    expect(new Set(ids).size).to.equal(ids.length);
    expect(pageProblems, pageProblems.join('\n')).to.deep.equal([]);
  });

  it('runs the README\'s browser example of the client library as written, from a page of another origin', async function () {
    pageProblems.length = 0;
    const [portA, portB] = [await freePort(), await freePort()];
    const [a, b] = await Promise.all([
      Instance.start({ port: portA, env: { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${portB}`, LOG_LEVEL: 'info' } }),
      Instance.start({ port: portB, env: { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${portA}`, LOG_LEVEL: 'info' } }),
    ]);
    const page = await (await (await launch(this)).newContext()).newPage();
    page.on('pageerror', (err) => pageProblems.push(`example: ${err.message}`));
    await page.setContent(readmeExample('html', a, b));
    await page.locator('#log li').getByText('bea: hello from a browser', { exact: true }).waitFor(WAIT);
    expect(pageProblems, pageProblems.join('\n')).to.deep.equal([]);
  });

  it('with AUTH=jwt takes a token from its own URL (?token=), joins as the token\'s subject and chats', async function () {
    const b = await launch(this);
    const a = await Instance.start({ env: { AUTH: 'jwt', JWT_SECRET: TEST_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE } });
    const token = await mint({ sub: 'ann', role: 'agent' });
    const page = await (await b.newContext()).newPage();
    page.on('pageerror', (err) => pageProblems.push(`auth: ${err.message}`));
    await page.goto(`${a.httpUrl}/?token=${encodeURIComponent(token)}`);
    const field = page.getByLabel('Token', { exact: true });
    await field.waitFor(WAIT);
    expect(await field.inputValue()).to.equal(token);
    expect(page.url()).not.to.include('token='); // not left in the address bar
    await page.getByLabel('Room', { exact: true }).fill('support');
    await page.getByRole('button', { name: 'Join', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Connected as ann' }).waitFor(WAIT);
    await say(page, 'hello with a token');
    expect(pageProblems, pageProblems.join('\n')).to.deep.equal([]);
  });
});
