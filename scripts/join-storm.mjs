#!/usr/bin/env node
// A join storm into one room: starts INSTANCES chatmesh processes (`node server.js`, no flags,
// static peers on 127.0.0.1), opens CLIENTS WebSockets spread over them, then sends every
// join at once. Prints the time until every client had `joined`, the time until the last
// presence / occupancy frame, the frames the clients received (by type), clients cut, and
// each instance's peak RSS (VmHWM). The last line is one JSON object.
//   node scripts/join-storm.mjs --clients 10000 --instances 2 [--max-members 1000]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { flagArgs, freePort } from './script-helpers.mjs';

const args = flagArgs();
const CLIENTS = Number(args.clients ?? 10000);
const INSTANCES = Number(args.instances ?? 2);
const ROOM = 'storm';
const QUIET_MS = 2000; // no presence or occupancy frame for this long: the storm is over
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const ports = [];
for (let i = 0; i < INSTANCES; i++) ports.push(await freePort());
const extra = args['max-members'] ? { PRESENCE_MAX_MEMBERS: String(args['max-members']) } : {};
const servers = ports.map((port) =>
  spawn(process.execPath, [join(root, 'server.js')], {
    env: { ...process.env, ...extra, PORT: String(port), DISCOVERY: 'static', LOG_LEVEL: 'warn', PEERS: ports.filter((p) => p !== port).map((p) => `ws://127.0.0.1:${p}`).join(',') },
    stdio: ['ignore', 'ignore', 'inherit'],
  }),
);
const stopAll = () => servers.forEach((s) => s.kill('SIGTERM'));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => { stopAll(); process.exit(130); });

const kib = (pid, field) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`${field}:\\s+(\\d+)`))?.[1] ?? 0);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitLinked() {
  const deadline = Date.now() + 15000;
  for (;;) {
    try {
      const all = await Promise.all(ports.map((p) => fetch(`http://127.0.0.1:${p}/health`, { signal: AbortSignal.timeout(3000) }).then((r) => r.json())));
      if (all.every((h) => h.peers.filter((p) => p.state === 'up').length === INSTANCES - 1)) return;
    } catch {}
    if (Date.now() > deadline) throw new Error('instances did not link');
    await sleep(100);
  }
}

const frames = {};
let bytes = 0, joined = 0, cut = 0, lastPresenceAt = 0, stormStart = 0, allJoinedAt = 0;
const clients = [];

function open(i) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${ports[i % INSTANCES]}/`, { perMessageDeflate: false });
    const c = { ws, joined: false, count: 0 };
    ws.on('open', () => resolve(c));
    ws.on('error', reject);
    ws.on('close', (code) => { if (code === 1013) cut++; });
    ws.on('message', (data) => {
      bytes += data.length;
      const f = JSON.parse(data);
      frames[f.type] = (frames[f.type] ?? 0) + 1;
      if (f.type === 'joined' && !c.joined) {
        c.joined = true;
        if (++joined === CLIENTS) allJoinedAt = performance.now();
      } else if (f.type === 'presence' || f.type === 'occupancy' || f.type === 'members') lastPresenceAt = performance.now();
    });
    clients.push(c);
  });
}

try {
  await waitLinked();
  const idle = servers.map((s) => kib(s.pid, 'VmRSS'));
  const t0 = performance.now();
  for (let i = 0; i < CLIENTS; i += 200) await Promise.all(Array.from({ length: Math.min(200, CLIENTS - i) }, (_, k) => open(i + k)));
  const connectMs = performance.now() - t0;
  const connected = servers.map((s) => kib(s.pid, 'VmRSS'));
  stormStart = performance.now();
  clients.forEach((c, i) => c.ws.send(JSON.stringify({ type: 'join', room: ROOM, user: `u${i}` })));
  const deadline = Date.now() + 120_000;
  while ((joined < CLIENTS || performance.now() - Math.max(lastPresenceAt, allJoinedAt) < QUIET_MS) && Date.now() < deadline) await sleep(50);
  // A server still busy with the storm answers late: give up on the reply after 5 s.
  const members = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ timedOut: true }), 5000);
    clients[0].ws.on('message', (data) => {
      const f = JSON.parse(data);
      if (f.type === 'members' && !f.joined) (clearTimeout(timer), resolve(f));
    });
    clients[0].ws.send(JSON.stringify({ type: 'members', room: ROOM }));
  });
  const result = {
    clients: CLIENTS, instances: INSTANCES, ...extra,
    connectMs: Math.round(connectMs),
    allJoinedMs: allJoinedAt ? Math.round(allJoinedAt - stormStart) : null,
    lastPresenceMs: lastPresenceAt ? Math.round(lastPresenceAt - stormStart) : null,
    joined, cut,
    framesToClients: Object.values(frames).reduce((a, b) => a + b, 0), framesByType: frames, bytesToClients: bytes,
    members: members.timedOut ? 'no answer within 5 s' : { count: members.count, truncated: members.truncated, listed: members.members?.length },
    servers: servers.map((s, i) => ({ idleRssKiB: idle[i], connectedRssKiB: connected[i], endRssKiB: kib(s.pid, 'VmRSS'), peakRssKiB: kib(s.pid, 'VmHWM') })),
  };
  console.log(`${joined}/${CLIENTS} joined in ${result.allJoinedMs} ms (last presence frame at ${result.lastPresenceMs} ms), ${cut} cut`);
  console.log(`frames to clients: ${result.framesToClients} (${JSON.stringify(frames)}), ${bytes} bytes; members answers ${JSON.stringify(result.members)}`);
  for (const [i, s] of result.servers.entries()) console.log(`instance ${i}: RSS idle ${s.idleRssKiB} KiB, connected ${s.connectedRssKiB} KiB, peak ${s.peakRssKiB} KiB, end ${s.endRssKiB} KiB`);
  console.log(JSON.stringify(result));
  process.exitCode = joined === CLIENTS && cut === 0 ? 0 : 1;
} finally {
  for (const c of clients) c.ws.terminate();
  stopAll();
}
