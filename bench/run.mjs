#!/usr/bin/env node
// npm run bench [-- --scenario S1,S3] [--duration N] [--instances 2,4,8] [--json]
// Starts a fresh chatmesh cluster (two instances unless --instances says) for each scenario, drives it with WebSocket
// clients from this process, prints the figures, and exits 1 if any delivery was lost or
// duplicated (or a scenario failed). See bench/README.md.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { restWrites } from './rest-writes.mjs';
import { startCluster, stopAll, killAllSync } from './cluster.mjs';
import { runScenario } from './loadgen.mjs';

const SCENARIOS = [
  { id: 'S1', name: 'one big room', clients: 1000, rooms: 1, publishers: 2, rate: 0, window: 8, size: 100, warmupS: 2, durationS: 10 },
  { id: 'S2', name: 'many rooms', clients: 2000, rooms: 200, publishers: 200, rate: 0, window: 4, size: 100, warmupS: 2, durationS: 10 },
  { id: 'S3', name: 'fixed load', clients: 200, rooms: 20, publishers: 20, rate: 2000, size: 100, warmupS: 2, durationS: 10 },
  { id: 'S4', name: 'idle memory', clients: 10000, rooms: 100, publishers: 100, idle: true, size: 100 },
  // Durable mode: S2 again with DATA_DIR (a fresh temporary directory per instance), S2 at a
  // fixed offered load without and with it (latency compared at the same load: at max rate a
  // closed loop turns any CPU cost into queueing), and acknowledged REST writes per second.
  { id: 'S2D', name: 'many rooms, DATA_DIR', clients: 2000, rooms: 200, publishers: 200, rate: 0, window: 4, size: 100, warmupS: 2, durationS: 10, durable: true },
  { id: 'S2F', name: 'many rooms, fixed load', clients: 2000, rooms: 200, publishers: 200, rate: 3000, size: 100, warmupS: 2, durationS: 10 },
  { id: 'S2FD', name: 'many rooms, fixed load, DATA_DIR', clients: 2000, rooms: 200, publishers: 200, rate: 3000, size: 100, warmupS: 2, durationS: 10, durable: true },
  { id: 'W', name: 'REST writes', rest: true, concurrency: 32, size: 100, warmupS: 2, durationS: 10 },
  { id: 'WD', name: 'REST writes, DATA_DIR', rest: true, concurrency: 32, size: 100, warmupS: 2, durationS: 10, durable: true },
];

const USAGE = `usage: npm run bench [-- OPTIONS]
  --scenario S1,S3   scenarios to run (default: ${SCENARIOS.map((s) => s.id).join(',')})
  --duration N       seconds measured per traffic scenario (default 10; warm-up stays 2 s)
  --instances 2,4,8  cluster sizes: each scenario runs once per size, the same total load
                     spread over the instances (default 2); prints a scaling table
  --json             also print one JSON line per scenario
  --help             this text
scenarios: ${SCENARIOS.map((s) => `${s.id} ${s.name}`).join('; ')}`;

function parseArgs(argv) {
  const opts = { scenarios: SCENARIOS.map((s) => s.id), duration: null, json: false, instances: [2] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || v.startsWith('--')) usageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--scenario':
      case '--scenarios': {
        const ids = value().split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
        for (const id of ids) if (!SCENARIOS.some((s) => s.id === id)) usageError(`unknown scenario ${id}`);
        if (!ids.length) usageError('--scenario needs at least one scenario');
        opts.scenarios = ids;
        break;
      }
      case '--duration': {
        const v = value();
        const d = Number(v);
        if (!Number.isFinite(d) || d <= 0 || d > 3600) usageError(`--duration must be a number of seconds > 0, not ${v}`);
        opts.duration = d;
        break;
      }
      case '--instances': {
        const v = value();
        const sizes = v.split(',').map((x) => Number(x.trim()));
        if (!sizes.length || sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 16)) usageError(`--instances takes cluster sizes from 1 to 16, like 2,4,8, not ${v}`);
        opts.instances = sizes;
        break;
      }
      case '--json':
        opts.json = true;
        break;
      case '--help':
      case '-h':
        console.log(USAGE);
        process.exit(0);
      default:
        usageError(`unknown argument ${a}`);
    }
  }
  return opts;
}

function usageError(msg) {
  console.error(`bench: ${msg}\n${USAGE}`);
  process.exit(2);
}

// ---- stop every server we started, whatever happens
let interrupted = false;
process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (interrupted) {
      killAllSync();
      process.exit(130);
    }
    interrupted = true;
    console.error(`\nbench: ${sig}, stopping the servers`);
    stopAll(2000).finally(() => process.exit(130));
  });
}
process.on('uncaughtException', (err) => {
  console.error('bench failed:', err && err.stack ? err.stack : err);
  killAllSync();
  process.exit(1);
});
process.on('unhandledRejection', (err) => {
  console.error('bench failed:', err && err.stack ? err.stack : err);
  killAllSync();
  process.exit(1);
});

// ---- formatting
const int = (n) => (n == null ? '–' : Math.round(n).toLocaleString('en-US'));
const ms = (n) => (n == null ? '–' : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0));
const pair = (a, b, f) => `${f(a)} / ${f(b)}`;

function table(rows) {
  const head = ['scenario', 'clients', 'msgs/s', 'deliveries/s', 'p50 ms same / cross', 'p99 ms same / cross', 'CPU ms/1k deliv', 'lost', 'dup', 'RSS KiB/conn per instance'];
  const body = rows.map(({ spec, r, error, label }) => {
    if (error) return [label, int(spec.clients), 'FAILED', '', '', '', '', '', '', String(error.message || error).split('\n')[0].slice(0, 100)];
    const idle = spec.idle;
    return [
      label,
      int(r.clients),
      idle ? '–' : int(r.publishedPerS),
      idle ? '–' : int(r.deliveriesPerS),
      idle ? '–' : pair(r.sameLatencyMs.p50, r.crossLatencyMs.p50, ms),
      idle ? '–' : pair(r.sameLatencyMs.p99, r.crossLatencyMs.p99, ms),
      idle ? '–' : r.cpuMsPer1kDeliveries == null ? '–' : r.cpuMsPer1kDeliveries.toFixed(2),
      int(r.lost),
      int(r.duplicates),
      idle ? r.servers.map((s) => (s.rssPerConnKiB == null ? '–' : s.rssPerConnKiB.toFixed(1))).join(' / ') : '–',
    ];
  });
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ').trimEnd();
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(line)].join('\n');
}

function summaryLines(spec, r) {
  if (spec.rest) return [`  ${int(r.acked)} writes acknowledged (201) in ${spec.durationS} s: ${int(r.perSec)}/s; latency p50 ${ms(r.p50)} ms, p99 ${ms(r.p99)} ms; ${r.errors} other answers`];
  const s = r.servers;
  const out = [];
  if (spec.idle) {
    out.push(`  ${int(r.clients)} connections joined in ${(r.joinMs / 1000).toFixed(1)} s; RSS settled in ${(r.settleMs / 1000).toFixed(1)} s`);
    out.push(`  RSS per instance: ${s.map((x) => `${int(x.rssBeforeKiB)} → ${int(x.rssKiB)} KiB for ${int(x.connections)} conns = ${x.rssPerConnKiB} KiB/conn`).join('; ')}`);
    out.push(`  probe (1 message per room): ${int(r.deliveries)}/${int(r.expectedDeliveries)} delivered, lost ${r.lost}, dup ${r.duplicates}, p99 ${ms(r.latencyMs.p99)} ms`);
  } else {
    out.push(`  ${int(r.published)} msgs in ${r.durationS} s (${int(r.publishedPerS)}/s), deliveries ${int(r.deliveries)}/${int(r.expectedDeliveries)} (${int(r.deliveriesPerS)}/s), lost ${r.lost}, dup ${r.duplicates}`);
    out.push(`  latency ms: all p50 ${ms(r.latencyMs.p50)} p90 ${ms(r.latencyMs.p90)} p99 ${ms(r.latencyMs.p99)} max ${ms(r.latencyMs.max)} | same-instance p50 ${ms(r.sameLatencyMs.p50)} p99 ${ms(r.sameLatencyMs.p99)} | cross-instance p50 ${ms(r.crossLatencyMs.p50)} p99 ${ms(r.crossLatencyMs.p99)}`);
    out.push(`  server CPU ${s.map((x) => `${x.cpuPct}%`).join(' + ')} = ${r.cpuMsPer1kDeliveries} ms per 1k deliveries; load generator CPU ${r.loadgenCpuPct}%`);
  }
  const odd = [];
  if (r.outOfOrder) odd.push(`${r.outOfOrder} out of order`);
  if (r.misrouted) odd.push(`${r.misrouted} to non-members`);
  if (r.foreignMessages) odd.push(`${r.foreignMessages} foreign messages`);
  if (r.errorFrames) odd.push(`${r.errorFrames} error frames (last: ${r.lastErrorFrame})`);
  if (r.badFrames) odd.push(`${r.badFrames} unparsable frames`);
  if (r.socketErrors) odd.push(`${r.socketErrors} socket errors`);
  if (r.unexpectedCloses) odd.push(`${r.unexpectedCloses} connections closed by the server`);
  const logs = s.reduce((n, x) => n + x.logLines, 0);
  if (logs) odd.push(`${logs} server log lines at warn/error, last: ${s.flatMap((x) => x.lastLogLines || []).slice(-1)[0]}`);
  if (odd.length) out.push(`  note: ${odd.join('; ')}`);
  return out;
}

/** --instances: the same scenario at each cluster size, side by side (docs/scaling.md). */
function scalingTable(rows) {
  const lines = ['scaling (same total load at each size)', '| scenario | instances | deliveries/s | CPU ms per 1k deliveries | cross-instance p99 ms | lost | dup |', '|---|---|---|---|---|---|---|'];
  for (const { spec, r, error } of rows) {
    if (spec.rest || spec.idle) continue;
    if (error) lines.push(`| ${spec.id} | ${spec.instances} | FAILED | | | | |`);
    else lines.push(`| ${spec.id} | ${spec.instances} | ${int(r.deliveriesPerS)} | ${r.cpuMsPer1kDeliveries == null ? '–' : r.cpuMsPer1kDeliveries.toFixed(2)} | ${ms(r.crossLatencyMs.p99)} | ${r.lost} | ${r.duplicates} |`);
  }
  return lines.join('\n');
}

/** DATA_DIR beside memory only, from the same run: S2D against S2, S2FD against S2F, WD against W. */
const signed = (v) => `${v >= 0 ? '+' : ''}${ms(v)}`;

function durableComparison(rows) {
  const get = (id) => rows.find((x) => x.spec.id === id && x.r)?.r;
  const out = [];
  const w = get('W');
  const wd = get('WD');
  if (w || wd) out.push('', `REST writes acknowledged per second (32 writers): memory only ${w ? int(w.perSec) : '–'} (p99 ${ms(w?.p99)} ms), DATA_DIR ${wd ? int(wd.perSec) : '–'} (p99 ${ms(wd?.p99)} ms)`);
  const s2 = get('S2');
  const s2d = get('S2D');
  if (s2 && s2d && s2.cpuMsPer1kDeliveries && s2d.cpuMsPer1kDeliveries) {
    const ratio = s2d.cpuMsPer1kDeliveries / s2.cpuMsPer1kDeliveries;
    const dp99 = s2d.latencyMs.p99 - s2.latencyMs.p99;
    out.push(`S2 with DATA_DIR: CPU per delivery ${ratio.toFixed(2)}x memory only (target <= 1.3x), p99 ${signed(dp99)} ms (target <= +5 ms)`);
  }
  const s2f = get('S2F');
  const s2fd = get('S2FD');
  if (s2f && s2fd && s2f.cpuMsPer1kDeliveries && s2fd.cpuMsPer1kDeliveries) {
    const ratio = s2fd.cpuMsPer1kDeliveries / s2f.cpuMsPer1kDeliveries;
    const same = s2fd.sameLatencyMs.p99 - s2f.sameLatencyMs.p99;
    const cross = s2fd.crossLatencyMs.p99 - s2f.crossLatencyMs.p99;
    out.push(`S2 at ${int(s2f.rate)} msgs/s with DATA_DIR: CPU per delivery ${ratio.toFixed(2)}x memory only, p99 ${signed(s2fd.latencyMs.p99 - s2f.latencyMs.p99)} ms (same instance ${signed(same)}, cross-instance ${signed(cross)})`);
  }
  return out;
}

// ---- main
const opts = parseArgs(process.argv.slice(2));
const sizes = opts.instances;
const chosen = sizes.flatMap((n) =>
  SCENARIOS.filter((s) => opts.scenarios.includes(s.id)).map((s) => ({
    ...(s.idle || opts.duration == null ? s : { ...s, durationS: opts.duration }),
    instances: n,
  })),
);
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
console.log(`chatmesh ${pkg.version} benchmark: node ${process.version}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`each scenario: a fresh cluster of ${sizes.join(', ')} instance(s) (node server.js, DISCOVERY=static) on 127.0.0.1; clients in this process\n`);

const rows = [];
const t0 = Date.now();
for (const spec of chosen) {
  if (interrupted) break;
  const label = `${spec.id} ${spec.name}${sizes.length > 1 || spec.instances !== 2 ? ` (${spec.instances} instances)` : ''}`;
  const note = (text) => console.error(`[${label}] ${text}`);
  let cluster = null;
  let row;
  const dataDir = spec.durable ? mkdtempSync(join(os.tmpdir(), 'chatmesh-bench-')) : null;
  try {
    const tc = Date.now();
    cluster = await startCluster({ count: spec.instances, env: dataDir ? (k) => ({ DATA_DIR: join(dataDir, `h${k}`) }) : {} });
    note(`cluster up and linked on ports ${cluster.instances.map((i) => i.port).join(', ')} in ${((Date.now() - tc) / 1000).toFixed(1)} s${dataDir ? `, DATA_DIR under ${dataDir}` : ''}`);
    const r = spec.rest ? await restWrites(cluster, { seconds: spec.durationS, warmupS: spec.warmupS, concurrency: spec.concurrency, size: spec.size }) : await runScenario(spec, cluster, note);
    row = { spec, r };
  } catch (error) {
    row = { spec, error };
    if (!interrupted) console.error(`[${label}] FAILED: ${error && error.stack ? error.stack : error}`);
  } finally {
    if (cluster) await cluster.stop(); // (already stopped, unless the cluster failed to start)
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
  if (interrupted) break;
  row.label = label;
  rows.push(row);
  console.log(`${label}${row.error ? `: FAILED: ${String(row.error.message || row.error).split('\n')[0]}` : ''}`);
  if (row.r) for (const l of summaryLines(spec, row.r)) console.log(l);
  if (opts.json) {
    const j = { scenario: spec.id, name: spec.name, instances: spec.instances, ok: !!row.r && row.r.lost === 0 && row.r.duplicates === 0 };
    if (row.r) Object.assign(j, row.r);
    else j.error = String(row.error && row.error.message ? row.error.message : row.error);
    console.log(JSON.stringify(j));
  }
}

console.log(`\n${table(rows.filter((x) => !x.spec.rest))}`);
console.log(durableComparison(rows).join('\n'));
if (sizes.length > 1) console.log(`\n${scalingTable(rows)}`);
const ok = rows.length === chosen.length && rows.every((x) => x.r && (x.spec.rest ? x.r.errors === 0 : x.r.lost === 0 && x.r.duplicates === 0));
console.log(`\n${ok ? 'OK' : 'FAIL'}: ${rows.length} scenario(s) in ${((Date.now() - t0) / 1000).toFixed(0)} s; ${ok ? 'no delivery lost or duplicated' : 'lost or duplicate deliveries, or a scenario failed'}`);
process.exit(ok ? 0 : 1);
