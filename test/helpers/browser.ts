/**
 * Headless Chromium for the browser tests: Debian's /usr/bin/chromium (or CHATMESH_CHROMIUM),
 * driven by playwright-core, which downloads no browser of its own. Without Chromium a test
 * fails with how to get it, unless CHATMESH_SKIP_BROWSER=1 (then it is skipped).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.CHATMESH_CHROMIUM ?? '/usr/bin/chromium';
// Without the background-networking flags Chromium tries to reach the internet.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

export async function launchChromium(ctx: Mocha.Context): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CHATMESH_SKIP_BROWSER === '1') ctx.skip();
    throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's chromium package (apt-get install chromium; .ci/run does) or set CHATMESH_SKIP_BROWSER=1 to skip the browser test`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30_000 });
}
