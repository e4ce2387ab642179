/**
 * The agent inbox (/agent), end to end: two real instances linked by static peers, with
 * AUTH=jwt; headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) on A,
 * and a customer on B speaking REST and WebSocket from the test. The conversation appears in
 * A's inbox with its unread count; opening it shows the newest page and "Load older" walks
 * back to the first message; the customer's typing shows; the agent's typing and reply reach
 * the customer on B; the customer's read receipt shows; assigning and resolving change the
 * conversation on B. The inbox follows the feed (no fetch while it is live), and falls back
 * to the 3 s poll when the server refuses it. A screenshot is taken and looked at (a PNG, not empty, the inbox and the
 * conversation visible); CHATMESH_UPDATE_SCREENSHOTS=1 also writes it to
 * docs/screenshots/agent.png (the README's). Without Chromium the test fails with a message,
 * unless CHATMESH_SKIP_BROWSER=1.
 */
import { expect } from 'chai';
import { copyFileSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { AUDIENCE, ISSUER, TEST_SECRET, authApi, connectWithQuery, mint } from '../helpers/auth.js';
import { ROOT, stopAll } from '../helpers/instance.js';
import { ClientPool, fullMesh } from '../helpers/mesh.js';
import { poll } from '../helpers/wait.js';

const WAIT = { timeout: 10_000 };
const AUTH_ENV = { AUTH: 'jwt', JWT_SECRET: TEST_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE };
const MESSAGES = 150;
const PAGE_SIZE = 40;

let browser: Browser | null = null;
const pageProblems: string[] = [];

async function launch(ctx: Mocha.Context): Promise<Browser> {
  browser = await launchChromium(ctx);
  return browser;
}

const chromeOf = (page: Page): Browser => page.context().browser()!;

async function openAgentPage(b: Browser, url: string): Promise<Page> {
  const page = await (await b.newContext({ viewport: { width: 1200, height: 860 } })).newPage();
  page.on('pageerror', (err) => pageProblems.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() !== 'error' || msg.location().url.endsWith('/favicon.ico')) return;
    pageProblems.push(msg.text());
  });
  const response = await page.goto(url);
  expect(response?.status()).to.equal(200);
  expect(response!.headers()['content-security-policy']).to.match(/^default-src 'self'/);
  return page;
}

/** Takes a full-page screenshot and checks it is a PNG of some size with the page's parts visible. */
async function screenshot(page: Page, path: string): Promise<void> {
  await page.screenshot({ path, fullPage: true });
  expect(readFileSync(path).subarray(0, 8).toString('hex')).to.equal('89504e470d0a1a0a'); // PNG signature
  expect(statSync(path).size).to.be.greaterThan(10 * 1024);
  for (const selector of ['h1', '#filters', '#conversations', '#conversation-title', '#actions', '#messages', '#reply-form']) {
    expect(await page.locator(selector).isVisible(), selector).to.equal(true);
  }
  const box = await page.locator('#messages').boundingBox();
  expect(box !== null && box.width > 300 && box.height > 200, 'the messages drawn at a visible size').to.equal(true);
}

describe('browser agent inbox (/agent)', function () {
  this.timeout(60_000);
  const clients = new ClientPool();

  afterEach(async () => {
    const b = browser;
    browser = null;
    await b?.close().catch(() => {});
    await clients.closeAll();
    await stopAll();
  });

  it('shows a conversation from the other instance with its unread count, pages its history, and answers, types, assigns and resolves it live', async function () {
    pageProblems.length = 0;
    const [a, b] = await fullMesh(2, AUTH_ENV);
    const agent = await mint({ sub: 'agent-ann', role: 'agent' });
    const customer = await mint({ sub: 'cust-7', role: 'customer' });

    // The customer, on B: a conversation of 150 messages, and another one for the list.
    const created = await authApi(b.httpUrl, customer, 'POST', '/api/conversations');
    expect(created.status).to.equal(201);
    const id = created.body.id as string;
    for (let i = 0; i < MESSAGES; i++) {
      const posted = await authApi(b.httpUrl, customer, 'POST', `/api/conversations/${id}/messages`, { content: `question ${i}` });
      expect(posted.status).to.equal(201);
    }
    const other = (await authApi(b.httpUrl, await mint({ sub: 'cust-8', role: 'customer' }), 'POST', '/api/conversations')).body.id as string;
    await authApi(b.httpUrl, await mint({ sub: 'cust-8', role: 'customer' }), 'POST', `/api/conversations/${other}/messages`, { content: 'Is the Pro plan billed monthly?' });
    const onB = clients.track(await connectWithQuery(b.url, customer));
    onB.send({ type: 'join', room: id });
    await onB.waitFor((f) => f.type === 'joined' && f.room === id);

    const chrome = await launch(this);
    const page = await openAgentPage(chrome, `${a.httpUrl}/agent?pageSize=${PAGE_SIZE}#token=${encodeURIComponent(agent)}`);
    expect(page.url()).not.to.include('token');
    await page.getByRole('status').filter({ hasText: 'Signed in as agent-ann' }).waitFor(WAIT);

    // A's inbox holds B's conversations, with the unread counts of this agent.
    const item = page.locator(`#conversations li[data-id="${id}"]`);
    await item.locator('.unread', { hasText: new RegExp(`^${MESSAGES}$`) }).waitFor(WAIT);
    await page.locator(`#conversations li[data-id="${other}"] .unread`, { hasText: /^1$/ }).waitFor(WAIT);
    expect(await page.locator('#conversations li').first().getAttribute('data-id'), 'newest activity first').to.equal(other);

    // Open it: the newest page, then older pages down to the first message.
    await item.getByRole('button').click();
    const shown = page.locator('#messages li.message');
    await poll(async () => (await shown.count()) === PAGE_SIZE, { timeoutMs: 10_000, what: 'the newest page shown' }).catch(async (err) => {
      throw new Error(`${err.message}: ${await shown.count()} shown; ${(await page.locator('#errors').allTextContents()).join(' | ')}; ${pageProblems.join(' | ')}`);
    });
    expect(await shown.last().locator('.text').textContent()).to.equal(`question ${MESSAGES - 1}`);
    expect(await shown.first().locator('.text').textContent()).to.equal(`question ${MESSAGES - PAGE_SIZE}`);
    const older = page.getByRole('button', { name: 'Load older' });
    for (let pages = 2; pages <= Math.ceil(MESSAGES / PAGE_SIZE); pages++) {
      await older.click();
      const expected = Math.min(MESSAGES, pages * PAGE_SIZE);
      await poll(async () => (await shown.count()) === expected, { timeoutMs: 5000, what: `${expected} messages shown` });
    }
    await older.waitFor({ state: 'hidden', ...WAIT });
    const texts = await shown.locator('.text').allTextContents();
    expect(texts).to.deep.equal(Array.from({ length: MESSAGES }, (_, i) => `question ${i}`));
    // Shown is read: the cursor moved (the badge goes, and B's inbox says so for this agent).
    await item.locator('.unread').waitFor({ state: 'detached', ...WAIT });
    await poll(async () => (await authApi(b.httpUrl, agent, 'GET', '/api/conversations?status=open')).body.items.find((i: { id: string }) => i.id === id)?.unread === 0, { timeoutMs: 5000, what: 'unread 0 on B' });

    // The agent types and replies: the customer on B gets the typing, then the message.
    await page.getByLabel('Reply', { exact: true }).pressSequentially('Hello! Let me check that for you.');
    await onB.waitFor((f) => f.type === 'typing' && f.room === id && f.user === 'agent-ann', 5000, 'the agent typing, on B');
    await page.getByLabel('Reply', { exact: true }).press('Enter');
    const reply = await onB.waitFor((f) => f.type === 'message' && f.room === id && f.user === 'agent-ann', 5000, 'the reply, on B');
    expect(reply.text).to.equal('Hello! Let me check that for you.');
    await page.locator(`#messages li.mine[data-id="${reply.id}"]`).waitFor(WAIT);

    // The customer reads it: the receipt shows on A.
    onB.send({ type: 'read', room: id, upTo: reply.id });
    await page.locator('#receipts', { hasText: 'Read by cust-7' }).waitFor(WAIT);
    await page.locator(`#messages li[data-id="${reply.id}"] .seen`, { hasText: 'read by cust-7' }).waitFor(WAIT);

    // Assign to me: on the page and on B.
    await page.getByRole('button', { name: 'Assign to me' }).click();
    await page.locator('#conversation-assignee', { hasText: 'assigned to agent-ann' }).waitFor(WAIT);
    await onB.waitFor((f) => f.type === 'conversation' && f.id === id && f.assignee === 'agent-ann', 5000, 'the assignment, on B');

    // The inbox follows: the reply is the item's last message.
    await item.locator('.preview', { hasText: 'agent-ann: Hello! Let me check that for you.' }).waitFor(WAIT);

    // The customer types on B: the page says so (the screenshot shows it).
    onB.send({ type: 'typing', room: id });
    await page.locator('#typing', { hasText: 'cust-7 is typing' }).waitFor(WAIT);
    const shot = join(tmpdir(), 'chatmesh-agent-page.png');
    await screenshot(page, shot);
    if (process.env.CHATMESH_UPDATE_SCREENSHOTS === '1') copyFileSync(shot, join(ROOT, 'docs', 'screenshots', 'agent.png'));

    // Resolve: B says resolved; it leaves the Open list and shows under Resolved.
    await page.getByRole('button', { name: 'Resolve', exact: true }).click();
    await page.locator('#conversation-status[data-status="resolved"]').waitFor(WAIT);
    await poll(async () => (await authApi(b.httpUrl, agent, 'GET', '/api/conversations?status=resolved')).body.items.some((i: { id: string }) => i.id === id), { timeoutMs: 5000, what: 'resolved on B' });
    await item.waitFor({ state: 'detached', ...WAIT });
    await page.getByRole('button', { name: 'Resolved', exact: true }).click();
    await item.waitFor(WAIT);

    expect(pageProblems, pageProblems.join('\n')).to.deep.equal([]);
  });

  it('without auth takes a name; snoozes, assigns and unassigns; shows an edit made on the other instance', async function () {
    pageProblems.length = 0;
    const [a, b] = await fullMesh(2);
    const id = (await authApi(b.httpUrl, undefined, 'POST', '/api/conversations')).body.id as string;
    const first = (await authApi(b.httpUrl, undefined, 'POST', `/api/conversations/${id}/messages`, { sender: 'customer', content: 'my order is late' })).body.id as string;

    const page = await openAgentPage(await launch(this), `${a.httpUrl}/agent`);
    await page.getByLabel('Your agent name').fill('bo');
    await page.getByRole('button', { name: 'Open the inbox' }).click();
    await page.getByRole('status').filter({ hasText: 'Signed in as bo' }).waitFor(WAIT);
    const item = page.locator(`#conversations li[data-id="${id}"]`);
    await item.getByRole('button').click();
    await page.locator(`#messages li[data-id="${first}"]`, { hasText: 'my order is late' }).waitFor(WAIT);
    expect(await page.getByRole('button', { name: 'Load older' }).isVisible()).to.equal(false);

    // An edit on B reaches the page over the mesh.
    expect((await authApi(b.httpUrl, undefined, 'PATCH', `/api/conversations/${id}/messages/${first}`, { content: 'my order is very late' })).status).to.equal(200);
    await page.locator(`#messages li[data-id="${first}"]`, { hasText: 'my order is very late(edited)' }).waitFor(WAIT);

    await page.getByRole('button', { name: 'Assign to me' }).click();
    await page.locator('#conversation-assignee', { hasText: 'assigned to bo' }).waitFor(WAIT);
    await page.getByRole('button', { name: 'Unassign' }).click();
    await page.locator('#conversation-assignee', { hasText: 'unassigned' }).waitFor(WAIT);
    await page.getByRole('button', { name: 'Snooze 1 h' }).click();
    await page.locator('#conversation-status[data-status="snoozed"]', { hasText: 'snoozed until' }).waitFor(WAIT);
    await poll(async () => {
      const found = (await authApi(b.httpUrl, undefined, 'GET', '/api/conversations?status=snoozed')).body.items.find((i: { id: string }) => i.id === id);
      return found !== undefined && found.assignee === null && found.snoozedUntil > Date.now() + 3500_000;
    }, { timeoutMs: 5000, what: 'snoozed and unassigned on B' });
    await item.waitFor({ state: 'detached', ...WAIT });
    await page.getByRole('button', { name: 'Snoozed', exact: true }).click();
    await item.waitFor(WAIT);
    expect(await page.locator('#errors li').allTextContents()).to.deep.equal([]);
    expect(pageProblems, pageProblems.join('\n')).to.deep.equal([]);
  });

  it('keeps the inbox current through the feed, without polling; falls back to the 3 s poll when the server refuses the feed', async function () {
    pageProblems.length = 0;
    const [a, b] = await fullMesh(2);
    const page = await openAgentPage(await launch(this), `${a.httpUrl}/agent`);
    const inboxGets: number[] = [];
    page.on('request', (r) => r.method() === 'GET' && new URL(r.url()).pathname === '/api/conversations' && inboxGets.push(Date.now()));
    await page.getByLabel('Your agent name').fill('cy');
    await page.getByRole('button', { name: 'Open the inbox' }).click();
    await page.locator('#conversations[data-feed="live"]').waitFor({ state: 'attached', ...WAIT });
    // One fetch at sign-in, one when the feed answered; then none for 30 s.
    await poll(() => inboxGets.length >= 2, { what: 'the inbox fetched twice' });
    const fetched = inboxGets.length;

    const id = (await authApi(b.httpUrl, undefined, 'POST', '/api/conversations')).body.id as string;
    await authApi(b.httpUrl, undefined, 'POST', `/api/conversations/${id}/messages`, { sender: 'customer', content: 'pushed, not polled' });
    const item = page.locator(`#conversations li[data-id="${id}"]`);
    await item.locator('.preview', { hasText: 'customer: pushed, not polled' }).waitFor(WAIT);
    // Resolved on B: it leaves the Open list shown.
    expect((await authApi(b.httpUrl, undefined, 'PATCH', `/api/conversations/${id}`, { status: 'resolved' })).status).to.equal(200);
    await item.waitFor({ state: 'detached', ...WAIT });
    expect(inboxGets.length, 'no inbox fetch while the feed is live').to.equal(fetched);

    // A server without the feed (its refusal stood in for): the page polls every 3 s.
    const older = await (await chromeOf(page).newContext()).newPage();
    await older.routeWebSocket(/.*/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => {
        if (String(message).includes('"type":"inbox"')) ws.send(JSON.stringify({ type: 'error', code: 'unknown_type', message: 'unknown type "inbox"' }));
        else server.send(message);
      });
    });
    const olderGets: number[] = [];
    older.on('request', (r) => r.method() === 'GET' && new URL(r.url()).pathname === '/api/conversations' && olderGets.push(Date.now()));
    await older.goto(`${a.httpUrl}/agent`);
    await older.getByLabel('Your agent name').fill('di');
    await older.getByRole('button', { name: 'Open the inbox' }).click();
    await older.locator('#conversations[data-feed="unsupported"]').waitFor({ state: 'attached', ...WAIT });
    await poll(() => olderGets.length >= 2, { timeoutMs: 8000, what: 'the inbox polled again (sign-in, then 3 s later)' });
    expect(await older.locator('#errors li').allTextContents()).to.deep.equal([]);
    expect(pageProblems, pageProblems.join('\n')).to.deep.equal([]);
  });

  it('with AUTH=jwt goes back to the token field when the token is refused', async function () {
    pageProblems.length = 0;
    const [a] = await fullMesh(1, AUTH_ENV);
    const forged = await mint({ sub: 'agent-eve', role: 'agent' }, new TextEncoder().encode('another-secret-of-enough-length-0123456789'));
    const page = await openAgentPage(await launch(this), `${a.httpUrl}/agent#token=${encodeURIComponent(forged)}`);
    await page.getByRole('alert').getByText(/refused this token \(unauthorized/).waitFor(WAIT);
    await page.getByLabel('Agent token').waitFor(WAIT);
    expect(await page.locator('#desk').isVisible()).to.equal(false);
    // The browser logs the 401 (and the refused WebSocket upgrade): nothing else.
    expect(pageProblems.filter((p) => !/status of 401|WebSocket connection/.test(p)), pageProblems.join('\n')).to.deep.equal([]);
  });
});
