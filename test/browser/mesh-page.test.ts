/**
 * The live view of the mesh (/mesh), end to end: three real instances linked by static peers,
 * headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) on the first.
 * The graph shows the three nodes and their three links; one instance is killed with SIGKILL
 * and its node is drawn down within the detection time. Screenshots are taken and looked at
 * (a PNG, not empty, the graph and the table visible); CHATMESH_UPDATE_SCREENSHOTS=1 also
 * writes the one after the kill to docs/screenshots/mesh.png (the README's).
 * Without Chromium the test fails with a message, unless CHATMESH_SKIP_BROWSER=1.
 */
import { expect } from 'chai';
import { copyFileSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { AUDIENCE, ISSUER, TEST_SECRET, mint } from '../helpers/auth.js';
import { Instance, ROOT, stopAll } from '../helpers/instance.js';
import { ClientPool, fullMesh } from '../helpers/mesh.js';
import { poll } from '../helpers/wait.js';

const WAIT = { timeout: 10_000 };

let browser: Browser | null = null;
const pageProblems: string[] = [];

async function launch(ctx: Mocha.Context): Promise<Browser> {
  browser = await launchChromium(ctx);
  return browser;
}

async function openMeshPage(b: Browser, url: string): Promise<Page> {
  const page = await (await b.newContext({ viewport: { width: 1100, height: 900 } })).newPage();
  page.on('pageerror', (err) => pageProblems.push(err.message));
  page.on('console', (msg) => {
    // Expected noise: no favicon, and the 401 the page answers by asking for a token.
    if (msg.type() !== 'error' || msg.location().url.endsWith('/favicon.ico') || /status of 401/.test(msg.text())) return;
    pageProblems.push(msg.text());
  });
  const response = await page.goto(url);
  expect(response?.status()).to.equal(200);
  expect(response!.headers()['content-security-policy']).to.match(/^default-src 'self'/);
  return page;
}

const nodeIn = (page: Page, id: string, state: string) => page.locator(`#nodes g.node[data-node="${id}"][data-state="${state}"]`);

/** Takes a full-page screenshot and checks it is a PNG of some size with the view's parts visible. */
async function screenshot(page: Page, path: string, nodes: number): Promise<void> {
  await page.screenshot({ path, fullPage: true });
  expect(readFileSync(path).subarray(0, 8).toString('hex')).to.equal('89504e470d0a1a0a'); // PNG signature
  expect(statSync(path).size).to.be.greaterThan(10 * 1024);
  for (const selector of ['#graph', '#table', 'h1']) expect(await page.locator(selector).isVisible(), selector).to.equal(true);
  const circles = page.locator('#nodes g.node circle');
  expect(await circles.count()).to.equal(nodes);
  for (const circle of await circles.all()) {
    const box = await circle.boundingBox();
    expect(box !== null && box.width > 20 && box.height > 20, 'a node drawn at a visible size').to.equal(true);
  }
}

describe('browser mesh page (/mesh)', function () {
  this.timeout(60_000);
  const clients = new ClientPool();

  afterEach(async () => {
    const b = browser;
    browser = null;
    await b?.close().catch(() => {});
    await clients.closeAll();
    await stopAll();
  });

  it('draws three instances and their links live, and a killed one as down within the detection time', async function () {
    pageProblems.length = 0;
    const [a, b, c] = await fullMesh(3);
    // Some load to show: clients on B and C, a message from C.
    const onB = await clients.connect(b);
    await onB.join('lobby', 'ann');
    await onB.join('support', 'ann');
    const onC = await clients.connect(c);
    await onC.join('lobby', 'bob');
    await onC.say('lobby', 'hello');

    const page = await openMeshPage(await launch(this), `${a.httpUrl}/mesh`);
    for (const i of [a, b, c]) await nodeIn(page, i.nodeId, 'up').waitFor(WAIT);
    await page.locator('#nodes g.node.self').filter({ has: page.locator('title', { hasText: a.nodeId }) }).waitFor(WAIT);
    // Three links, each reported by both its ends (solid).
    await poll(async () => (await page.locator('#links g.link:not(.one-sided)').count()) === 3, { timeoutMs: 10_000, what: 'three links drawn' });
    // B's load comes with its heartbeats, about once a second.
    await page.locator(`#rows tr[data-node="${b.nodeId}"] td`).nth(4).filter({ hasText: /^2$/ }).waitFor(WAIT);
    await page.getByRole('status').filter({ hasText: 'Live: 3 of 3 nodes up, 3 links, seen from' }).waitFor(WAIT);
    await screenshot(page, join(tmpdir(), 'chatmesh-mesh-page.png'), 3);

    // C dies: its node is drawn down, and every link to it goes.
    await c.kill('SIGKILL');
    const killedAt = Date.now();
    const detectionMs = 4000; // PEER_TIMEOUT_MS (default)
    await nodeIn(page, c.nodeId, 'down').waitFor({ timeout: detectionMs + 2000 });
    const tookMs = Date.now() - killedAt;
    expect(tookMs).to.be.below(detectionMs + 2000);
    await poll(async () => (await page.locator('#links g.link').count()) === 1, { timeoutMs: 5000, what: 'only the link A–B drawn' });
    expect(await page.locator(`#links g.link[data-a="${c.nodeId}"], #links g.link[data-b="${c.nodeId}"]`).count()).to.equal(0);
    await nodeIn(page, b.nodeId, 'up').waitFor(WAIT);
    await page.getByRole('status').filter({ hasText: 'Live: 2 of 3 nodes up, 1 link,' }).waitFor(WAIT);
    const after = join(tmpdir(), 'chatmesh-mesh-page-down.png');
    await screenshot(page, after, 3);
    if (process.env.CHATMESH_UPDATE_SCREENSHOTS === '1') copyFileSync(after, join(ROOT, 'docs', 'screenshots', 'mesh.png'));
    if (process.env.CHATMESH_TEST_VERBOSE) console.log(`      node down after ${tookMs} ms`);
    expect(pageProblems, pageProblems.join('\n')).to.deep.equal([]);
  });

  it('with AUTH=jwt asks for a token, and takes a service token from #token= (never left in the address bar)', async function () {
    pageProblems.length = 0;
    const a = await Instance.start({ env: { AUTH: 'jwt', JWT_SECRET: TEST_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE } });
    const chrome = await launch(this);
    const page = await openMeshPage(chrome, `${a.httpUrl}/mesh`);
    const field = page.getByLabel('Token', { exact: true });
    await field.waitFor(WAIT);
    await page.getByRole('alert').getByText(/service token/).waitFor(WAIT);
    // A token of another role: refused, said so.
    await field.fill(await mint({ sub: 'ann', role: 'agent' }));
    await page.getByRole('button', { name: 'Show', exact: true }).click();
    await page.getByRole('alert').getByText(/role is agent/).waitFor(WAIT);
    expect(await page.locator('#nodes g.node').count()).to.equal(0);

    const token = await mint({ sub: 'ops', role: 'service' });
    const viaUrl = await openMeshPage(chrome, `${a.httpUrl}/mesh#token=${encodeURIComponent(token)}`);
    await nodeIn(viaUrl, a.nodeId, 'up').waitFor(WAIT);
    expect(viaUrl.url()).not.to.include('token');
    expect(await viaUrl.getByLabel('Token', { exact: true }).isVisible()).to.equal(false);
    expect(pageProblems.filter((p) => !/status of 403/.test(p)), pageProblems.join('\n')).to.deep.equal([]);
  });
});
