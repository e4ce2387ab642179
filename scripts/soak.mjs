#!/usr/bin/env node
// npm run soak: thousands of connect / join / send / disconnect cycles against a small
// cluster (3 instances, static peers, 127.0.0.1), printing each instance's RSS and heap at
// intervals. Memory must flatten: the script fails if RSS still grows over the last third.
//   npm run soak -- --cycles 20000 --concurrency 50 --instances 3
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { WebSocket } from 'ws';
import { flagArgs, freePort } from './script-helpers.mjs';

const args = flagArgs();
const CYCLES = Number(args.cycles ?? 20000);
const CONCURRENCY = Number(args.concurrency ?? 50);
const INSTANCES = Number(args.instances ?? 3);
const REPORTS = 10;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const ports = [];
for (let i = 0; i < INSTANCES; i++) ports.push(await freePort());
const servers = ports.map((port) =>
  spawn(process.execPath, [join(root, 'server.js')], {
    // A small history bound: the store reaches its steady size early, so growth after that is a leak.
    env: { ...process.env, PORT: String(port), DISCOVERY: 'static', LOG_LEVEL: 'warn', MAX_MESSAGES_PER_CONVERSATION: '20', PEERS: ports.filter((p) => p !== port).map((p) => `ws://127.0.0.1:${p}`).join(',') },
    stdio: ['ignore', 'ignore', 'inherit'],
  }),
);
const stopAll = () => servers.forEach((s) => s.kill('SIGTERM'));
process.on('SIGINT', () => { stopAll(); process.exit(130); });

async function health(port) {
  const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(3000) });
  return res.json();
}
async function waitLinked() {
  const deadline = Date.now() + 15000;
  for (;;) {
    try {
      const all = await Promise.all(ports.map(health));
      if (all.every((h) => h.peers.filter((p) => p.state === 'up').length === INSTANCES - 1)) return;
    } catch {}
    if (Date.now() > deadline) throw new Error('instances did not link');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One cycle: connect to an instance, join a room, send a message, wait for its echo, leave. */
function cycle(n) {
  const port = ports[n % INSTANCES];
  const room = `soak-${n % 100}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`cycle ${n} timed out`)); }, 10000);
    ws.on('error', (err) => { clearTimeout(timer); reject(err); });
    ws.on('open', () => ws.send(JSON.stringify({ type: 'join', room, user: `u${n}` })));
    ws.on('message', (data) => {
      const f = JSON.parse(data);
      if (f.type === 'joined') ws.send(JSON.stringify({ type: 'message', room, text: `hello ${n}` }));
      else if (f.type === 'message' && f.text === `hello ${n}`) {
        clearTimeout(timer);
        // Half leave politely, half just drop the connection.
        if (n % 2) ws.close(); else ws.terminate();
        resolve();
      }
    });
  });
}

const samples = [];
async function report(done) {
  const all = await Promise.all(ports.map(health));
  const rss = all.map((h) => h.memory.rssBytes / 1048576);
  const heap = all.map((h) => h.memory.heapUsedBytes / 1048576);
  samples.push(rss);
  console.log(`${String(done).padStart(7)} cycles | RSS MiB ${rss.map((v) => v.toFixed(1)).join(' / ')} | heap MiB ${heap.map((v) => v.toFixed(1)).join(' / ')} | connections ${all.map((h) => h.connections).join(' / ')} | rooms ${all.map((h) => h.rooms).join(' / ')}`);
}

try {
  await waitLinked();
  console.log(`soak: ${CYCLES} cycles, ${CONCURRENCY} at a time, over ${INSTANCES} instances`);
  await report(0);
  let next = 0, done = 0, failed = 0;
  const every = Math.ceil(CYCLES / REPORTS);
  let nextReport = every;
  const started = Date.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < CYCLES) {
      const n = next++;
      try { await cycle(n); } catch { failed++; }
      done++;
      if (done >= nextReport) { nextReport += every; await report(done); }
    }
  }));
  // Let the servers notice the last closes, then a final sample.
  await new Promise((r) => setTimeout(r, 1000));
  await report(done);
  const secs = (Date.now() - started) / 1000;
  const third = Math.max(1, Math.floor(samples.length / 3));
  const growth = samples[samples.length - 1].map((v, i) => v - samples[samples.length - third][i]);
  const early = samples[third].map((v, i) => v - samples[0][i]);
  console.log(`${done} cycles in ${secs.toFixed(1)} s (${Math.round(done / secs)}/s), ${failed} failed`);
  console.log(`RSS growth over the first third: ${early.map((v) => v.toFixed(1)).join(' / ')} MiB; over the last third: ${growth.map((v) => v.toFixed(1)).join(' / ')} MiB`);
  // Flat: the last third grows by less than 10 MiB (allocator noise), whatever the start did.
  const flat = growth.every((g) => g < 10);
  console.log(flat && failed === 0 ? 'soak: RSS flat, no failed cycle' : `soak: FAILED (${flat ? '' : 'RSS still growing; '}${failed} failed cycles)`);
  stopAll();
  process.exit(flat && failed === 0 ? 0 : 1);
} catch (err) {
  console.error(`soak: ${err.message}`);
  stopAll();
  process.exit(1);
}
